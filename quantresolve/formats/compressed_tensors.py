"""compressed-tensors configs → our schemes: parsing through the torch-free mirror, and labels.

:func:`parse_ct_config` validates a ``quantization_config`` with
:class:`~quantresolve.formats.ct_config.QuantizationConfig` — our mirror of the library's own
model, checked against it in ``tests/formats/test_ct_conformance.py`` — so reading a
compressed-tensors checkpoint imports no torch. Preset group names (``"W4A16": ["Linear"]``) are
expanded there. :func:`ct_scheme` / :func:`to_quant_args` accept the mirror's objects and the
library's alike (the dispatcher's preset helper and the tests hand it the library's).

:func:`ct_label` gives a scheme its readable canonical label from its weight and
activation arguments::

    >>> from quantresolve.formats.scheme import QuantArgs
    >>> w = QuantArgs(num_bits=4, type="int", strategy="group", group_size=128)
    >>> ct_label(w, None)
    'W4A16'
    >>> a = QuantArgs(num_bits=8, type="float", strategy="token", dynamic=True)
    >>> ct_label(QuantArgs(num_bits=8, type="float", strategy="channel"), a)
    'FP8_DYNAMIC'
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from quantresolve.formats.ct_config import COMPRESSION_FORMATS, QuantizationConfig
from quantresolve.formats.scheme import QuantArgs, QuantScheme
from quantresolve.formats.validation import validation_error

#: compressed-tensors ``format`` values quantresolve knows (``CompressionFormat``).
KNOWN_FORMATS = COMPRESSION_FORMATS


def parse_ct_config(data: dict[str, Any], *, file: str, prefix: str = "") -> QuantizationConfig:
    """Validate ``data`` as compressed-tensors does (our mirror of its ``QuantizationConfig``)."""
    try:
        return QuantizationConfig.model_validate(data)
    except ValidationError as err:
        raise validation_error(err, file=file, prefix=prefix) from None


def _dtype_name(dtype: Any) -> str | None:
    if dtype is None:
        return None
    return str(dtype).removeprefix("torch.")


def to_quant_args(args: Any) -> QuantArgs | None:
    """Convert a compressed-tensors ``QuantizationArgs`` into our :class:`QuantArgs`."""
    if args is None:
        return None
    block = tuple(args.block_structure) if args.block_structure else None
    actorder = getattr(args.actorder, "value", args.actorder)
    return QuantArgs(
        num_bits=int(args.num_bits), type=str(getattr(args.type, "value", args.type)),  # type: ignore[arg-type]
        strategy=str(getattr(args.strategy, "value", args.strategy)),  # type: ignore[arg-type]
        group_size=args.group_size, block_structure=block,  # type: ignore[arg-type]
        symmetric=bool(args.symmetric), dynamic=args.dynamic, scale_dtype=_dtype_name(args.scale_dtype),
        actorder=None if actorder is None else str(actorder),
    )


def _float_weight_family(w: QuantArgs) -> str | None:
    """NVFP4 / MXFP4 / MXFP8 / FP8 from a float weight's bits, strategy and scale dtype."""
    if w.type != "float":
        return None
    if w.num_bits == 4:
        return "NVFP4" if w.strategy == "tensor_group" else "MXFP4"
    if w.num_bits == 8 and w.scale_dtype == "uint8":
        return "MXFP8"
    if w.num_bits == 8:
        return "FP8"
    return f"FP{w.num_bits}"


def ct_label(weights: QuantArgs | None, acts: QuantArgs | None) -> str:
    """Readable canonical label of a compressed-tensors scheme (the preset name it matches).

    Rules (the CT preset names): int weights → ``W{b}A16`` / ``W{b}A8`` (int8
    activations; ``W8A8`` is CT's INT8 preset) / ``W4AFP8``, with ``_ASYM`` when
    asymmetric; float weights → ``NVFP4A16`` / ``NVFP4``, ``MXFP4A16`` /
    ``MXFP4``, ``MXFP8A16`` / ``MXFP8``, ``FP8`` (static activations),
    ``FP8_DYNAMIC`` (dynamic per-token), ``FP8_BLOCK`` (block weights),
    ``FP8A16`` (weight-only).
    """
    if weights is None:
        return "UNQUANTIZED" if acts is None else f"A{acts.num_bits}_ONLY"
    fam = _float_weight_family(weights)
    if fam is None:  # integer weights
        asym = "" if weights.symmetric else "_ASYM"
        if acts is None:
            return f"W{weights.num_bits}A16{asym}"
        if acts.type == "float":
            return f"W{weights.num_bits}AFP{acts.num_bits}{asym}"
        return f"W{weights.num_bits}A{acts.num_bits}{asym}"
    if fam == "FP8":
        if weights.strategy == "block":
            return "FP8_BLOCK" if acts is not None else "FP8_BLOCK_A16"
        if acts is None:
            return "FP8A16"
        return "FP8_DYNAMIC" if acts.dynamic else "FP8"
    if acts is None:
        return f"{fam}A16"
    if acts.type == "float" and acts.num_bits == weights.num_bits:
        return fam
    return f"{fam}A{acts.num_bits}" if acts.type == "int" else f"{fam}AFP{acts.num_bits}"


def ct_scheme(scheme: Any, *, fmt: str | None, version: str | None) -> QuantScheme:
    """Our :class:`QuantScheme` for one compressed-tensors group (``fmt``: the group's effective format)."""
    weights = to_quant_args(scheme.weights)
    acts = to_quant_args(scheme.input_activations)
    outs = to_quant_args(scheme.output_activations)
    options: dict[str, Any] = {}
    if version:
        options["version"] = version
    return QuantScheme(algo=ct_label(weights, acts), producer="compressed-tensors", format=fmt or "unknown",
                       weights=weights, input_activations=acts, output_activations=outs, options=options)


def kv_scheme(args: Any, *, version: str | None) -> QuantScheme:
    """The KV-cache scheme of a compressed-tensors ``kv_cache_scheme`` (QuantizationArgs)."""
    out = to_quant_args(args)
    assert out is not None
    label = ("FP8" if out.type == "float" and out.num_bits == 8 else f"{out.type.upper()}{out.num_bits}")
    return QuantScheme(algo=label, producer="compressed-tensors", format="kv-cache", output_activations=out,
                       options={"version": version} if version else {})
