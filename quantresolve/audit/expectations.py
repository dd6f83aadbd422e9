"""What tensors a resolved scheme should have, and the comparison with what they are.

:func:`expected_kinds` maps a :class:`QuantScheme` to the evidence kinds
(:mod:`quantresolve.checkpoint.evidence`) its producer writes for it; ``None``
means "no registered expectation" (the format is then not checked, never
guessed). :func:`compare` returns ``(code, detail)`` pairs for one module::

    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> from quantresolve.checkpoint import Evidence
    >>> sorted(expected_kinds(modelopt_scheme("NVFP4")))
    ['nvfp4']
    >>> compare(modelopt_scheme("NVFP4"), Evidence("fp8", weight_dtype="F8_E4M3"))
    [('format-mismatch', 'config says NVFP4 (expects nvfp4 tensors) but the tensors are fp8 (weight F8_E4M3)')]
    >>> compare(None, Evidence("dense", scale_params=("input_scale",), has_input_scale=True))
    [('config-unquantized-scales-present', 'config leaves it unquantized and its weight is dense, but input_scale ship(s)')]
"""

from __future__ import annotations

import math
from collections.abc import Callable

from quantresolve.checkpoint import Evidence, packed_logical_shape
from quantresolve.formats.scheme import QuantArgs, QuantScheme

Issue = tuple[str, str]


def _modelopt(s: QuantScheme) -> frozenset[str] | None:
    w = s.weights
    if w is None:
        return None
    microscaled = w.scale_dtype == "uint8"
    table = {
        ("float", 8, False): "fp8", ("float", 8, True): "mxfp8",
        ("float", 4, False): "nvfp4", ("float", 4, True): "mxfp4",
        ("int", 4, False): "int4-awq", ("int", 8, False): "int8",
    }
    kind = table.get((w.type, w.num_bits, microscaled))
    return None if kind is None else frozenset({kind})


#: compressed-tensors per-group format → evidence kinds.
CT_FORMATS: dict[str, frozenset[str]] = {
    "pack-quantized": frozenset({"int4-packed"}),
    "int-quantized": frozenset({"int8"}),
    "float-quantized": frozenset({"fp8"}),
    "naive-quantized": frozenset({"int8", "fp8"}),
    "nvfp4-pack-quantized": frozenset({"nvfp4"}),
    "mxfp4-pack-quantized": frozenset({"mxfp4"}),
    "mxfp8-quantized": frozenset({"mxfp8"}),
    "dense": frozenset({"dense"}),
}


def _compressed_tensors(s: QuantScheme) -> frozenset[str] | None:
    return CT_FORMATS.get(s.format)


def _bitsandbytes(s: QuantScheme) -> frozenset[str] | None:
    if s.weights is None:
        return None
    return frozenset({"bnb-int8"}) if s.weights.num_bits == 8 else frozenset({"bnb-4bit"})


def _fp8(s: QuantScheme) -> frozenset[str] | None:
    return frozenset({"fp8"}) if s.weights is not None else None


def _mxfp4(s: QuantScheme) -> frozenset[str] | None:
    return frozenset({"mxfp4"}) if s.weights is not None else None


#: producer → expectation rule.
EXPECTATIONS: dict[str, Callable[[QuantScheme], frozenset[str] | None]] = {
    "modelopt": _modelopt,
    "compressed-tensors": _compressed_tensors,
    "bitsandbytes": _bitsandbytes,
    "gptq": lambda s: frozenset({"gptq-packed"}),
    "awq": lambda s: frozenset({"awq-packed"}),
    "fp8": _fp8,
    "mxfp4": _mxfp4,
}

#: HF fine-grained FP8: the weight-scale parameter each tensor dialect (``scheme.format``) writes.
FP8_SCALE_PARAMS = {"finegrained-fp8": "weight_scale_inv", "autofp8": "weight_scale"}


def _fp8_dialect(s: QuantScheme, e: Evidence) -> list[Issue]:
    want = FP8_SCALE_PARAMS.get(s.format)
    if want is None or not e.scale_params or want in e.scale_params:
        return []
    return [("format-mismatch", f"config's layout ({s.format}) stores the weight scale as {want}, but the tensors "
             f"carry {', '.join(e.scale_params)}: an engine reading {want} finds no scale (transformers 5.23 then "
             "leaves the FP8 codes unscaled)")]


def _mxfp4_layout(s: QuantScheme, e: Evidence) -> list[Issue]:
    if e.fused_experts:
        return []
    return [("format-mismatch", f"config says {s.algo} in gpt-oss' layout (every expert in fused *_blocks / *_scales "
             "tensors on the experts module) but these are one module's own MXFP4 tensors")]


#: producer → further checks of the tensors against the scheme, once the evidence kind agrees.
TENSOR_CHECKS: dict[str, Callable[[QuantScheme, Evidence], list[Issue]]] = {
    "fp8": _fp8_dialect,
    "mxfp4": _mxfp4_layout,
}


def scale_grid_issue(scheme: QuantScheme, w: QuantArgs, e: Evidence) -> Issue | None:
    """An FP8 weight scale whose shape is not the scheme's: a ``ceil(N/bn) × ceil(K/bk)`` block grid, or
    one scalar per tensor.

        >>> from quantresolve.formats.scheme import QuantArgs
        >>> w = QuantArgs(num_bits=8, type="float", strategy="block", block_structure=(128, 128))
        >>> s = QuantScheme(algo="FP8_BLOCK", producer="fp8", format="finegrained-fp8", weights=w)
        >>> scale_grid_issue(s, w, Evidence("fp8", logical_shape=(200, 256), scale_shape=(1, 2)))[1]
        'config says 128x128 blocks for FP8_BLOCK: a [200, 256] weight needs a 2x2 scale grid, the weight scale is [1, 2]'
    """
    if e.kind != "fp8" or e.scale_shape is None or e.logical_shape is None or e.confidence != "headers":
        return None
    n, k = e.logical_shape
    if w.strategy == "block" and w.block_structure:
        bn, bk = w.block_structure
        want = (math.ceil(n / bn), math.ceil(k / bk))
        if tuple(e.scale_shape) != want:
            return ("scale-grid-mismatch", f"config says {bn}x{bk} blocks for {scheme.algo}: a [{n}, {k}] weight needs "
                    f"a {want[0]}x{want[1]} scale grid, the weight scale is {list(e.scale_shape)}")
    elif w.strategy == "tensor" and math.prod(e.scale_shape) != 1:
        return ("scale-grid-mismatch", f"config says one weight scale per tensor for {scheme.algo}, the weight scale "
                f"is {list(e.scale_shape)}")
    return None

#: Evidence kinds whose weight-scale columns are groups along K.
GROUPED_KINDS = frozenset({"nvfp4", "mxfp4", "mxfp8", "int4-awq", "int4-packed", "gptq-packed", "awq-packed"})
#: Evidence kinds whose packed shapes state the code width (``Evidence.bits``) and the scale groups.
PACKED_KINDS = frozenset({"gptq-packed", "awq-packed"})


def _packed(scheme: QuantScheme, evidence: Evidence) -> list[Issue]:
    """GPTQ / AWQ: the code width and the number of scale groups the packed shapes give, against the config.

        >>> from quantresolve.formats.normalize_gptq import gptq_scheme
        >>> _packed(gptq_scheme(4, 128, True, False), Evidence("gptq-packed", bits=8, groups_along_k=2))
        [('format-mismatch', 'config says 4-bit W4A16 but the packed shapes hold 8-bit codes')]
    """
    w = scheme.weights
    assert w is not None
    if (evidence.bits is None and evidence.notes) or (evidence.kind == "awq-packed" and evidence.notes):
        return [("format-mismatch", f"config says {scheme.algo} but its packed tensors are inconsistent: "
                 + "; ".join(evidence.notes))]
    if evidence.bits is not None and evidence.bits != w.num_bits:
        return [("format-mismatch", f"config says {w.num_bits}-bit {scheme.algo} but the packed shapes hold "
                 f"{evidence.bits}-bit codes")]
    if w.strategy == "channel" and evidence.groups_along_k not in (None, 1):
        return [("group-size-mismatch", f"config says one scale group per row (group_size -1) but the scales have "
                 f"{evidence.groups_along_k} groups along K")]
    return []


def expected_kinds(scheme: QuantScheme) -> frozenset[str] | None:
    rule = EXPECTATIONS.get(scheme.producer)
    return None if rule is None else rule(scheme)


def evidence_group_size(evidence: Evidence, scheme: QuantScheme | None) -> int | None:
    """K elements per weight-scale column, using the scheme's bit width for CT packed weights."""
    if evidence.kind == "int4-packed" and scheme is not None and scheme.weights is not None:
        logical = packed_logical_shape(evidence, scheme.weights.num_bits)
        if logical is None or not evidence.groups_along_k:
            return None
        k = logical[1]
        return k // evidence.groups_along_k if k % evidence.groups_along_k == 0 else -1
    return evidence.group_size


def _describe(e: Evidence) -> str:
    return f"{e.kind} (weight {e.weight_dtype})" if e.weight_dtype else e.kind


def compare(scheme: QuantScheme | None, evidence: Evidence) -> list[Issue]:
    """What the tensors of one module contradict in its resolved ``scheme`` (``None``: unquantized)."""
    kind = evidence.kind
    if kind == "no-weight":
        return []
    if kind == "unknown":
        if evidence.confidence != "headers":
            return []  # names alone cannot tell fp8 / int8 / mx apart, config-only has no tensor: said once, globally
        return [("unknown-tensor-format", "; ".join(evidence.notes) or "no recogniser accepts these tensors")]
    if scheme is None:
        if kind != "dense":
            return [("config-unquantized-tensors-quantized",
                     f"config leaves it unquantized but the tensors are {_describe(evidence)}")]
        if evidence.scale_params:
            return [("config-unquantized-scales-present",
                     f"config leaves it unquantized and its weight is dense, but "
                     f"{', '.join(evidence.scale_params)} ship(s)")]
        return []
    if scheme.weights is None:
        return []
    if kind == "dense":
        return [("config-quantized-tensors-dense",
                 f"config says {scheme.algo} but the tensors are dense (weight {evidence.weight_dtype or '?'})")]
    expected = expected_kinds(scheme)
    if expected is not None and kind not in expected:
        return [("format-mismatch",
                 f"config says {scheme.algo} (expects {'/'.join(sorted(expected))} tensors) "
                 f"but the tensors are {_describe(evidence)}")]
    if kind in PACKED_KINDS and evidence.confidence == "headers":
        issues = _packed(scheme, evidence)
        if issues:
            return issues
    w = scheme.weights
    extra = TENSOR_CHECKS.get(scheme.producer)
    issues = extra(scheme, evidence) if extra is not None else []
    if issues:
        return issues
    grid = scale_grid_issue(scheme, w, evidence)
    if grid is not None:
        return [grid]
    grouped = bool(w.group_size) and w.strategy in ("group", "tensor_group")
    if grouped and evidence.logical_shape is not None and evidence.logical_shape[1] % w.group_size:  # type: ignore[operator]
        # Every producer packs whole groups (ModelOpt and compressed-tensors both refuse a ragged one).
        return [("group-size-mismatch", f"config says group size {w.group_size} for {scheme.algo} but the "
                 f"input dimension {evidence.logical_shape[1]} is not a multiple of it")]
    if kind in GROUPED_KINDS and grouped and evidence.confidence == "headers":
        found = evidence_group_size(evidence, scheme)
        if found is not None and found != w.group_size:
            got = (f"{evidence.groups_along_k} scale groups along K do not divide it evenly" if found == -1
                   else f"the weight scales cover {found} elements each ({evidence.groups_along_k} groups along K)")
            return [("group-size-mismatch", f"config says group size {w.group_size} for {scheme.algo} but {got}")]
    return []
