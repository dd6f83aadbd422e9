"""Schemes from producer labels, for the ``kernels`` CLI, the benchmark and tests.

compressed-tensors labels are expanded with the library's own presets
(``preset_name_to_scheme``) and its own format inference
(``infer_module_format``) — so ``W8A16`` is the group-128 int8 preset, packed.

Place in the flow: beside the dispatcher's bottom layer — it imports only the formats' scheme
builders (and compressed-tensors, lazily); nothing in the dispatcher imports it.

    >>> scheme_from_label("W4A16", "compressed-tensors").format
    'pack-quantized'
    >>> scheme_from_label("NVFP4", "modelopt").weights.group_size
    16
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quantresolve.errors import ConfigError
from quantresolve.formats.algos import canonical_modelopt_algo
from quantresolve.formats.compressed_tensors import ct_scheme
from quantresolve.formats.normalize_fp8 import AUTOFP8, FINEGRAINED, fp8_scheme
from quantresolve.formats.normalize_mxfp4 import MXFP4_SCHEME
from quantresolve.formats.scheme import QuantScheme, bnb_scheme, modelopt_scheme


def ct_preset_scheme(label: str, *, version: str | None = None) -> QuantScheme:
    """The :class:`QuantScheme` of a compressed-tensors preset name (``W4A16``, ``FP8_BLOCK``, ...)."""
    import torch
    from compressed_tensors.compressors.format import infer_module_format
    from compressed_tensors.quantization import preset_name_to_scheme

    try:
        ct = preset_name_to_scheme(label.upper(), ["Linear"])
    except (KeyError, ValueError) as err:
        raise ConfigError(f"unknown compressed-tensors preset {label!r}", field="scheme") from err
    fmt = infer_module_format(torch.nn.Linear, ct)
    return ct_scheme(ct, fmt=getattr(fmt, "value", str(fmt)), version=version)


def _modelopt(label: str, **options: Any) -> QuantScheme:
    canonical = canonical_modelopt_algo(label)
    if canonical is None:
        raise ConfigError(f"{label!r} names no ModelOpt algorithm", field="scheme")
    return modelopt_scheme(canonical, **options)


def _bitsandbytes(label: str, **options: Any) -> QuantScheme:
    upper = label.upper()
    return bnb_scheme(upper if upper.startswith("BNB_") else f"BNB_{upper}", **options)


#: HF fine-grained FP8 labels → (block, activation scheme, tensor dialect) of the configs that carry them.
_FP8_LABELS = {"FP8_BLOCK": ((128, 128), "dynamic", FINEGRAINED), "FP8": (None, "static", AUTOFP8),
               "FP8_DYNAMIC": (None, "dynamic", AUTOFP8)}


def _fp8(label: str, **options: Any) -> QuantScheme:
    found = _FP8_LABELS.get(label.upper())
    if found is None:
        raise ConfigError(f"{label!r} names no fp8 scheme; known: {', '.join(_FP8_LABELS)}", field="scheme")
    block, activations, dialect = found
    return fp8_scheme(block, activations, dialect=dialect)


def _mxfp4(label: str, **options: Any) -> QuantScheme:
    if label.upper() != MXFP4_SCHEME.algo:
        raise ConfigError(f"{label!r} names no mxfp4 scheme; known: {MXFP4_SCHEME.algo}", field="scheme")
    return MXFP4_SCHEME


#: producer → the scheme of one of its labels.
BUILDERS: dict[str, Callable[..., QuantScheme]] = {
    "modelopt": _modelopt,
    "compressed-tensors": lambda label, **options: ct_preset_scheme(label, version=options.get("version")),
    "bitsandbytes": _bitsandbytes,
    "fp8": _fp8,
    "mxfp4": _mxfp4,
}
PRODUCERS = tuple(BUILDERS)


def scheme_from_label(label: str, producer: str | None = None, **options: Any) -> QuantScheme:
    """A scheme from a label; ``producer`` defaults by label (``BNB_*`` → bitsandbytes, ModelOpt
    labels → modelopt, anything else → a compressed-tensors preset).

        >>> scheme_from_label("FP8_BLOCK", "fp8").summary()
        'FP8_BLOCK (fp8:finegrained-fp8, w8 block/128x128, a8 dynamic)'
    """
    upper = label.upper()
    if producer is None:
        if upper.startswith("BNB_"):
            producer = "bitsandbytes"
        else:
            try:
                producer = "modelopt" if canonical_modelopt_algo(label) else "compressed-tensors"
            except ConfigError:
                producer = "compressed-tensors"
    build = BUILDERS.get(producer)
    if build is None:
        raise ConfigError(f"unknown producer {producer!r}; known: {', '.join(PRODUCERS)}", field="producer")
    return build(label, **options)
