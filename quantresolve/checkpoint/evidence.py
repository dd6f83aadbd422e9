"""What a module's tensors say about its format, independent of any config.

:func:`classify_module` runs an ordered registry of recognisers (most specific
first); the first that accepts the module's tensor signature wins. Each
recogniser documents the signature it expects (field-notes §5). Index-only
catalogs carry names but no dtypes or shapes; for those a second registry
classifies by parameter names alone and the result says
``confidence="names-only"``; a catalog built from ``config.json`` alone (:mod:`.shapes`: the dense
model's names and shapes, no tensor read) is described by :func:`classify_config_only`, with
``confidence="config-only"`` and no format claim::

    >>> from .catalog import TensorInfo
    >>> from .inventory import Module
    >>> t = lambda n, d, s: TensorInfo(n, d, s, "a.safetensors", 0)
    >>> m = Module("x.down_proj", {"weight": t("w", "U8", (7168, 1024)),
    ...     "weight_scale": t("s", "F8_E4M3", (7168, 128)), "weight_scale_2": t("s2", "F32", ()),
    ...     "input_scale": t("i", "F32", ())})
    >>> e = classify_module(m)
    >>> e.kind, e.logical_shape, e.group_size, e.groups_along_k, e.has_input_scale
    ('nvfp4', (7168, 2048), 16, 128, True)

``group_size`` is the number of K elements one scale covers (16 for NVFP4);
``groups_along_k`` is the number of scale columns (K / group_size).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from ..util.gcpause import gc_paused
from .catalog import TensorInfo
from .dtypes import E8M0_DTYPES, FLOAT_DTYPES, FP8_DTYPES
from .inventory import Inventory, Module
from .suffixes import FUSED_EXPERT_PROJECTIONS, ROLE_OF

EvidenceKind = Literal[
    "dense",
    "fp8",
    "nvfp4",
    "mxfp4",
    "mxfp8",
    "int4-packed",
    "int8",
    "int4-awq",
    "bnb-4bit",
    "bnb-int8",
    "gptq-packed",
    "awq-packed",
    "no-weight",
    "unknown",
]

_SCALE_ROLES = frozenset(
    {"weight_scale", "input_scale", "output_scale", "pre_quant_scale", "zero_point", "kv_scale"}
)


@dataclass(frozen=True, slots=True)
class Evidence:
    """The tensors' own testimony about one module.

    ``weight_dtype``/``weight_shape`` describe the stored weight (``weight`` or
    ``weight_packed``); ``logical_shape`` is ``(out, in)`` of the dequantized
    matrix when the packed shapes determine it; ``scale_params`` lists the scale
    parameters present; ``confidence`` is ``"headers"``, ``"names-only"`` (index names) or
    ``"config-only"`` (names and shapes of the model ``config.json`` describes; no tensor read).
    ``kind="no-weight"`` marks modules holding no weight at all (KV-cache scale
    holders, Mamba ``A_log``/``D``); ``"unknown"`` means tensors present but no
    recogniser accepted them (see ``notes``). ``scale_shape`` is the weight scale's shape
    (``weight_scale`` or HF FP8's ``weight_scale_inv``). ``fused_experts`` marks an experts module
    storing every expert in fused tensors (gpt-oss); its ``param_count`` is the logical number of
    weights of all its projections (``logical_shape`` stays unset: there are several matrices).
    """

    kind: EvidenceKind
    weight_dtype: str | None = None
    weight_shape: tuple[int, ...] | None = None
    logical_shape: tuple[int, int] | None = None
    scale_params: tuple[str, ...] = ()
    group_size: int | None = None
    groups_along_k: int | None = None
    has_input_scale: bool = False
    has_kv_scales: bool = False
    confidence: Literal["headers", "names-only", "config-only"] = "headers"
    notes: tuple[str, ...] = ()
    #: Code width the packed shapes determine (GPTQ / AWQ ``qweight`` with ``qzeros`` / ``g_idx``).
    bits: int | None = None
    scale_shape: tuple[int, ...] | None = None
    fused_experts: bool = False
    param_count: int | None = None


Params = Mapping[str, TensorInfo]
Recogniser = Callable[[Params], Evidence | None]


@dataclass(frozen=True, slots=True)
class RecogniserEntry:
    """A registered recogniser: ``signature`` is the tensor layout it accepts, for docs and reports."""

    kind: EvidenceKind
    signature: str
    recognise: Recogniser


def _shape(params: Params, key: str) -> tuple[int, ...] | None:
    info = params.get(key)
    return None if info is None else info.shape


def _dtype(params: Params, key: str) -> str | None:
    info = params.get(key)
    return None if info is None else info.dtype


def _groups(
    k: int | None, scale: tuple[int, ...] | None, rows: int | None
) -> tuple[int | None, int | None]:
    """(group_size, groups_along_k) from a 2-D ``[rows, K/g]`` scale.

    ``groups_along_k`` needs only the scale (its rows must match the weight's
    when those are known); ``group_size`` also needs K and an even division.
    """
    if scale is None or len(scale) != 2 or scale[1] == 0 or (rows is not None and scale[0] != rows):
        return None, None
    if k is None or k % scale[1]:
        return None, scale[1]
    return k // scale[1], scale[1]


def _scale_key(params: Params) -> str:
    """The weight scale's parameter: ``weight_scale``, or HF FP8's ``weight_scale_inv`` (a multiplier)."""
    return "weight_scale" if "weight_scale" in params or "weight_scale_inv" not in params else "weight_scale_inv"


#: Parameters that are a static input (activation) scale.
_INPUT_SCALES = ("input_scale", "input_global_scale", "activation_scale")


def _base(
    kind: EvidenceKind, params: Params, weight_key: str, logical: tuple[int, int] | None, **kw
) -> Evidence:
    rows = kw.pop("rows", logical[0] if logical else None)
    scale = _shape(params, _scale_key(params))
    group_size, groups = _groups(logical[1] if logical else None, scale, rows)
    return Evidence(
        kind=kind,
        weight_dtype=_dtype(params, weight_key),
        weight_shape=_shape(params, weight_key),
        logical_shape=logical,
        scale_params=tuple(
            p for p in params if ROLE_OF.get(p) in _SCALE_ROLES or p.startswith("weight.")
        ),
        group_size=kw.pop("group_size", group_size),
        groups_along_k=kw.pop("groups_along_k", groups),
        has_input_scale=any(p in params for p in _INPUT_SCALES),
        has_kv_scales="k_scale" in params or "v_scale" in params,
        scale_shape=scale,
        **kw,
    )


def _matrix(shape: tuple[int, ...] | None) -> tuple[int, int] | None:
    return (shape[0], shape[1]) if shape is not None and len(shape) == 2 else None


# --- recognisers, most specific first ------------------------------------------------------


def recognise_bnb_4bit(p: Params) -> Evidence | None:
    """bitsandbytes nf4/fp4: ``weight`` U8 ``[N·K/2, 1]`` + ``weight.absmax`` / ``weight.quant_map`` /
    ``weight.quant_state.bitsandbytes__*`` (+ ``weight.nested_*`` with double quant).
    The logical shape lives in the quant_state JSON bytes, which are data: not derived."""
    if not any(k.startswith("weight.") for k in p):
        return None
    state = [k for k in p if k.startswith("weight.quant_state.")]
    notes = (f"quant_state: {state[0].rsplit('.', 1)[1]}",) if state else ()
    return _base("bnb-4bit", p, "weight", None, notes=notes)


def recognise_bnb_int8(p: Params) -> Evidence | None:
    """bitsandbytes LLM.int8: ``weight`` I8 ``[N, K]`` + ``SCB`` F32 ``[N]`` (+ ``weight_format``)."""
    if "SCB" not in p:
        return None
    return _base("bnb-int8", p, "weight", _matrix(_shape(p, "weight")))


def recognise_ct_int_packed(p: Params) -> Evidence | None:
    """compressed-tensors pack-quantized: ``weight_packed`` I32 ``[N, ceil(K·b/32)]`` + ``weight_scale``
    ``[N, K/g]`` + ``weight_shape`` I64 ``[2]`` (asym: ``weight_zero_point``). K depends on the bit
    width b, which only the config (or the ``weight_shape`` *data*) states, so ``logical_shape`` is
    left unset; :func:`packed_logical_shape` computes it once b is known."""
    if _dtype(p, "weight_packed") != "I32":
        return None
    matrix = _matrix(_shape(p, "weight_packed"))
    return _base(
        "int4-packed",
        p,
        "weight_packed",
        None,
        rows=matrix[0] if matrix else None,
        notes=("K = columns·32/bits: needs the config's num_bits (4-bit: 8 values per int32)",),
    )


def packed_logical_shape(evidence: Evidence, bits: int) -> tuple[int, int] | None:
    """``(N, K)`` of a compressed-tensors pack-quantized weight once the bit width is known.

    >>> e = Evidence("int4-packed", weight_dtype="I32", weight_shape=(128, 32))
    >>> packed_logical_shape(e, 4), packed_logical_shape(e, 8)
    ((128, 256), (128, 128))
    """
    shape = evidence.weight_shape
    if evidence.kind != "int4-packed" or shape is None or len(shape) != 2 or 32 % bits:
        return None
    return shape[0], shape[1] * (32 // bits)


def _exact(numerator: int, denominator: int) -> int | None:
    return numerator // denominator if denominator and numerator % denominator == 0 else None


def _gptq_bits(rows: int, n: int, zeros: tuple[int, ...] | None, g_idx: tuple[int, ...] | None
               ) -> tuple[int | None, list[str]]:
    """The bit width a GPTQ module's shapes give, from ``g_idx`` ``[K]`` (K = rows·32/b) and from ``qzeros``
    ``[G, N·b/32]``; ``None`` with a note when neither tells or they disagree."""
    notes: list[str] = []
    from_g = _exact(rows * 32, g_idx[0]) if g_idx is not None and len(g_idx) == 1 else None
    from_z = _exact(zeros[1] * 32, n) if zeros is not None and len(zeros) == 2 else None
    found = {b for b in (from_g, from_z) if b is not None}
    if len(found) > 1:
        notes.append(f"qweight, qzeros {list(zeros or ())} and g_idx {list(g_idx or ())} disagree on the bit width "
                     f"({from_z} from qzeros, {from_g} from g_idx)")
        return None, notes
    bits = found.pop() if found else None
    if bits is not None and bits not in (2, 3, 4, 8):
        notes.append(f"the packed shapes give {bits}-bit codes, which GPTQ does not store")
        return None, notes
    return bits, notes


def recognise_gptq(p: Params) -> Evidence | None:
    """GPTQ (AutoGPTQ / GPTQModel / optimum): ``qweight`` I32 ``[K·b/32, N]`` packed along **K**, ``scales``
    float ``[G, N]``, ``qzeros`` I32 ``[G, N·b/32]`` packed along N, ``g_idx`` I32 ``[K]`` (optional). The
    bit width ``b`` comes from ``g_idx`` or ``qzeros``; ``logical_shape`` is ``(N, K)``."""
    if _dtype(p, "qweight") != "I32" or _dtype(p, "scales") not in FLOAT_DTYPES:
        return None
    qweight, scales = _matrix(_shape(p, "qweight")), _matrix(_shape(p, "scales"))
    if qweight is None or scales is None or scales[1] != qweight[1]:
        return None  # scales as wide as qweight: packed along K (AWQ's are 8x wider)
    n, groups = qweight[1], scales[0]
    bits, notes = _gptq_bits(qweight[0], n, _shape(p, "qzeros"), _shape(p, "g_idx"))
    k = _exact(qweight[0] * 32, bits) if bits else None
    logical = (n, k) if k else None
    return _base("gptq-packed", p, "qweight", logical, group_size=_exact(k, groups) if k else None,
                 groups_along_k=groups, bits=bits, notes=tuple(notes))


def recognise_awq(p: Params) -> Evidence | None:
    """AWQ GEMM (AutoAWQ): ``qweight`` I32 ``[K, N/8]`` and ``qzeros`` I32 ``[G, N/8]`` packed along **N**
    (nibble order 0,2,4,6,1,3,5,7), ``scales`` float ``[G, N]``; ``logical_shape`` is ``(N, K)``."""
    if _dtype(p, "qweight") != "I32" or _dtype(p, "scales") not in FLOAT_DTYPES or "g_idx" in p:
        return None
    qweight, scales = _matrix(_shape(p, "qweight")), _matrix(_shape(p, "scales"))
    if qweight is None or scales is None or scales[1] != 8 * qweight[1]:
        return None
    k, groups = qweight[0], scales[0]
    notes = ()
    zeros = _shape(p, "qzeros")
    if zeros is not None and tuple(zeros) != (groups, qweight[1]):
        notes = (f"qzeros {list(zeros)} is not [{groups}, {qweight[1]}] (one packed row per scale group)",)
    return _base("awq-packed", p, "qweight", (scales[1], k), group_size=_exact(k, groups), groups_along_k=groups,
                 bits=4, notes=notes)


def recognise_nvfp4(p: Params) -> Evidence | None:
    """NVFP4. ModelOpt: ``weight`` U8 ``[N, K/2]`` + ``weight_scale`` F8_E4M3 ``[N, K/16]`` +
    ``weight_scale_2`` F32 ``[]`` (+ ``input_scale``). compressed-tensors: ``weight_packed`` U8 +
    the same ``weight_scale`` + ``weight_global_scale`` (+ ``input_global_scale``)."""
    key = "weight_packed" if "weight_packed" in p else "weight"
    if _dtype(p, key) != "U8" or _dtype(p, "weight_scale") not in FP8_DTYPES:
        return None
    matrix = _matrix(_shape(p, key))
    logical = (matrix[0], matrix[1] * 2) if matrix else None
    notes = (
        () if ("weight_scale_2" in p or "weight_global_scale" in p) else ("no global scale tensor",)
    )
    return _base("nvfp4", p, key, logical, notes=notes)


def recognise_mxfp4(p: Params) -> Evidence | None:
    """MXFP4: ``weight``/``weight_packed`` U8 ``[N, K/2]`` + ``weight_scale`` E8M0 (U8 or F8_E8M0)
    ``[N, K/32]``, no ``pre_quant_scale``."""
    key = "weight_packed" if "weight_packed" in p else "weight"
    if (
        _dtype(p, key) != "U8"
        or _dtype(p, "weight_scale") not in E8M0_DTYPES
        or "pre_quant_scale" in p
    ):
        return None
    matrix = _matrix(_shape(p, key))
    return _base("mxfp4", p, key, (matrix[0], matrix[1] * 2) if matrix else None)


def recognise_int4_awq(p: Params) -> Evidence | None:
    """ModelOpt INT4 AWQ / W4A8 AWQ / INT4 block-wise: ``weight`` U8 **``[N/2, K]``** + ``weight_scale``
    float ``[N, K/128]`` + ``pre_quant_scale`` ``[K]`` (block-wise may lack it; then the scale having
    twice the weight's rows identifies it). W4A8 adds ``weight_scale_2`` and ``input_scale``."""
    if _dtype(p, "weight") != "U8" or _dtype(p, "weight_scale") not in FLOAT_DTYPES:
        return None
    matrix = _matrix(_shape(p, "weight"))
    scale = _shape(p, "weight_scale")
    rows_doubled = (
        matrix is not None and scale is not None and len(scale) == 2 and scale[0] == 2 * matrix[0]
    )
    if "pre_quant_scale" not in p and not rows_doubled:
        return None
    logical = (matrix[0] * 2, matrix[1]) if matrix else None
    return _base("int4-awq", p, "weight", logical)


def recognise_mxfp8(p: Params) -> Evidence | None:
    """MXFP8: ``weight`` F8_E4M3 ``[N, K]`` + ``weight_scale`` E8M0 (U8 or F8_E8M0) ``[N, K/32]``."""
    if _dtype(p, "weight") not in FP8_DTYPES or _dtype(p, "weight_scale") not in E8M0_DTYPES:
        return None
    return _base("mxfp8", p, "weight", _matrix(_shape(p, "weight")))


def recognise_fp8(p: Params) -> Evidence | None:
    """FP8 (ModelOpt FP8/FP8_PC_PT/FP8_PB, CT float-quantized, HF fine-grained FP8): ``weight`` F8_E4M3
    ``[N, K]`` + float ``weight_scale`` (HF: ``weight_scale_inv``, the multiplier despite its name)
    ``[]``/``[1]`` (tensor), ``[N]``/``[N,1]`` (channel) or ``[ceil(N/128), ceil(K/128)]`` (block);
    ``input_scale`` (HF: ``activation_scale``) when static."""
    if _dtype(p, "weight") not in FP8_DTYPES:
        return None
    logical = _matrix(_shape(p, "weight"))
    scale = _shape(p, _scale_key(p))
    if scale is None:
        return _base("fp8", p, "weight", logical, notes=("no weight_scale",))
    numel = 1
    for d in scale:
        numel *= d
    if numel == 1:
        granularity = "tensor"
    elif (
        logical
        and len(scale) == 2
        and scale[0] == -(-logical[0] // 128)
        and scale[1] == -(-logical[1] // 128)
    ):
        granularity = "block-128x128"
    elif logical and scale[0] == logical[0]:
        granularity = "channel"
    else:
        granularity = f"scale shape {list(scale)}"
    return _base("fp8", p, "weight", logical, notes=(f"weight scale granularity: {granularity}",))


def _fused_projections(p: Params) -> list[str]:
    return [proj for proj in FUSED_EXPERT_PROJECTIONS if proj in p or f"{proj}_blocks" in p]


def _blocks_problem(p: Params, proj: str) -> str | None:
    """Why ``<proj>_blocks`` / ``<proj>_scales`` are not gpt-oss MXFP4 (``None``: they are)."""
    blocks, scales = _shape(p, f"{proj}_blocks"), _shape(p, f"{proj}_scales")
    if _dtype(p, f"{proj}_blocks") != "U8" or blocks is None or len(blocks) != 4 or blocks[3] != 16:
        return (f"{proj}_blocks {_dtype(p, f'{proj}_blocks')} {list(blocks or ())}: expected U8 "
                "[experts, rows, K/32, 16] (32 E2M1 values per 16 bytes)")
    if _dtype(p, f"{proj}_scales") not in E8M0_DTYPES or scales != blocks[:3]:
        return (f"{proj}_scales {_dtype(p, f'{proj}_scales')} {list(scales or ())}: expected U8 (E8M0) "
                f"{list(blocks[:3])}, one scale per 32 values of {proj}_blocks")
    return None


def recognise_fused_experts(p: Params) -> Evidence | None:
    """gpt-oss fused experts, on the experts module itself: ``<proj>_blocks`` U8 ``[E, N, K/32, 16]`` (two
    E2M1 values per byte, low nibble first) + ``<proj>_scales`` U8 (E8M0) ``[E, N, K/32]`` (+ ``<proj>_bias``
    ``[E, N]``) for ``gate_up_proj`` and ``down_proj``; unquantized, float ``<proj>`` ``[E, K, N]`` (+ bias)."""
    projections = _fused_projections(p)
    if not projections:
        return None
    quantized = [proj for proj in projections if f"{proj}_blocks" in p]
    scales = tuple(f"{proj}_scales" for proj in quantized if f"{proj}_scales" in p)
    if quantized and len(quantized) != len(projections):
        return Evidence("unknown", fused_experts=True, scale_params=scales,
                        notes=(f"fused experts mix MXFP4 ({', '.join(quantized)}) and unquantized "
                               f"({', '.join(sorted(set(projections) - set(quantized)))}) projections",))
    if not quantized:
        shapes = [_shape(p, proj) or () for proj in projections]
        dtypes = {_dtype(p, proj) for proj in projections}
        if len(dtypes) != 1 or not dtypes <= FLOAT_DTYPES or any(len(s) != 3 for s in shapes):
            return None
        count = sum(s[0] * s[1] * s[2] for s in shapes)
        return Evidence("dense", weight_dtype=dtypes.pop(), weight_shape=tuple(shapes[0]), fused_experts=True,
                        param_count=count, notes=(f"{shapes[0][0]} experts in fused tensors",))
    problems = [msg for proj in quantized if (msg := _blocks_problem(p, proj)) is not None]
    if problems:
        return Evidence("unknown", weight_dtype=_dtype(p, f"{quantized[0]}_blocks"), fused_experts=True,
                        scale_params=scales, notes=tuple(problems))
    blocks = [_shape(p, f"{proj}_blocks") or () for proj in quantized]
    groups = {b[2] for b in blocks}
    return Evidence("mxfp4", weight_dtype="U8", weight_shape=tuple(blocks[0]), scale_params=scales,
                    group_size=32, groups_along_k=groups.pop() if len(groups) == 1 else None, fused_experts=True,
                    param_count=sum(b[0] * b[1] * b[2] * 32 for b in blocks),
                    notes=(f"{blocks[0][0]} experts in fused tensors",))


def recognise_int8(p: Params) -> Evidence | None:
    """INT8 (CT int-quantized W8A8/W8A16, ModelOpt W8A8_SQ / W8A16): ``weight`` I8 ``[N, K]`` + float
    ``weight_scale`` (CT W4A8 also stores one int4 per int8 this way)."""
    if _dtype(p, "weight") != "I8" or "weight_scale" not in p:
        return None
    return _base("int8", p, "weight", _matrix(_shape(p, "weight")))


def recognise_dense(p: Params) -> Evidence | None:
    """Unquantized: float ``weight`` (F16/BF16/F32/F64) of any rank and no weight-scale tensor."""
    if _dtype(p, "weight") not in FLOAT_DTYPES or any(ROLE_OF.get(k) == "weight_scale" for k in p):
        return None
    return _base("dense", p, "weight", _matrix(_shape(p, "weight")))


RECOGNISERS: tuple[RecogniserEntry, ...] = tuple(
    RecogniserEntry(kind, (fn.__doc__ or "").split("\n")[0], fn)
    for kind, fn in (
        ("gptq-packed", recognise_gptq),
        ("awq-packed", recognise_awq),
        ("mxfp4", recognise_fused_experts),
        ("bnb-4bit", recognise_bnb_4bit),
        ("bnb-int8", recognise_bnb_int8),
        ("int4-packed", recognise_ct_int_packed),
        ("nvfp4", recognise_nvfp4),
        ("mxfp4", recognise_mxfp4),
        ("int4-awq", recognise_int4_awq),
        ("mxfp8", recognise_mxfp8),
        ("fp8", recognise_fp8),
        ("int8", recognise_int8),
        ("dense", recognise_dense),
    )
)


# --- names-only registry (index without headers) -------------------------------------------

#: (kind, parameters that must all be present, parameters that must be absent), most specific first.
NAME_SIGNATURES: tuple[tuple[EvidenceKind, frozenset[str], frozenset[str]], ...] = (
    ("bnb-4bit", frozenset({"weight.absmax"}), frozenset()),
    ("bnb-4bit", frozenset({"weight.quant_map"}), frozenset()),
    ("bnb-int8", frozenset({"SCB"}), frozenset()),
    ("gptq-packed", frozenset({"qweight", "g_idx"}), frozenset()),
    ("nvfp4", frozenset({"weight_packed", "weight_global_scale"}), frozenset()),
    (
        "int4-packed",
        frozenset({"weight_packed", "weight_shape"}),
        frozenset({"weight_global_scale"}),
    ),
    ("int4-awq", frozenset({"weight", "weight_scale", "pre_quant_scale"}), frozenset()),
    (
        "nvfp4",
        frozenset({"weight", "weight_scale", "weight_scale_2"}),
        frozenset({"pre_quant_scale"}),
    ),
    (
        "dense",
        frozenset({"weight"}),
        frozenset(_r for _r, role in ROLE_OF.items() if role == "weight_scale"),
    ),
)


def _classify_names(module: Module) -> Evidence:
    names = module.params.keys()
    if module.layout == "fused-experts":
        quantized = any(k.endswith("_blocks") for k in names)
        return Evidence("mxfp4" if quantized else "dense", confidence="names-only", fused_experts=True,
                        scale_params=tuple(k for k in names if k.endswith("_scales")))
    if any(k.startswith("weight.quant_state.") for k in names):
        return _base("bnb-4bit", module.params, "weight", None, confidence="names-only")
    for kind, required, forbidden in NAME_SIGNATURES:
        if required <= names and not (forbidden & names):
            return _base(
                kind,
                module.params,
                next((w for w in ("weight_packed", "qweight") if w in names), "weight"),
                None,
                confidence="names-only",
            )
    if not ({"weight", "weight_packed", "qweight"} & names):
        return _base("no-weight", module.params, "weight", None, confidence="names-only")
    return _base(
        "unknown",
        module.params,
        "weight",
        None,
        confidence="names-only",
        notes=("parameter names alone are ambiguous (fp8, int8, mx*; GPTQ without g_idx or AWQ): dtypes needed",),
    )


def classify_inventory(inventory: Inventory) -> dict[str, Evidence]:
    """Classify every module; modules with identical tensor signatures share one result.

    A DeepSeek-V3 export has ~46k modules but a few dozen distinct signatures
    (dtype and shape per parameter), so memoising on the signature makes this
    linear in module count with a tiny constant.
    """
    memo: dict[tuple, Evidence] = {}
    result: dict[str, Evidence] = {}
    with gc_paused():
        for name, module in inventory.modules.items():
            key = (
                module.layout,
                *[(p, i.dtype, i.shape) for p, i in module.params.items()],
            )
            evidence = memo.get(key)
            if evidence is None:
                evidence = memo[key] = classify_module(module)
            result[name] = evidence
    return result


def classify_config_only(inventory: Inventory) -> dict[str, Evidence]:
    """Evidence of a catalog built from ``config.json`` (:meth:`.shapes.ModelShapes.catalog`).

    Its tensors are the *dense* model's, not the checkpoint's, so they claim no format
    (``kind="unknown"``, or ``"no-weight"`` for buffer-only modules); the weight's shape is
    the model's, and ``logical_shape`` is set for 2-D weights::

        >>> from pathlib import Path
        >>> from .catalog import TensorInfo
        >>> t = TensorInfo("m.w.weight", "BF16", (8, 4), "", None)
        >>> e = classify_config_only(Inventory(Path("."), {"m.w": Module("m.w", {"weight": t})}))["m.w"]
        >>> e.kind, e.logical_shape, e.confidence
        ('unknown', (8, 4), 'config-only')
    """
    memo: dict[tuple, Evidence] = {}
    result: dict[str, Evidence] = {}
    for name, module in inventory.modules.items():
        weight = module.params.get("weight")
        key = (weight.shape if weight is not None else None, tuple(module.params))
        evidence = memo.get(key)
        if evidence is None:
            if weight is None:
                evidence = Evidence("no-weight", confidence="config-only")
            else:
                shape = weight.shape
                evidence = Evidence(
                    "unknown", weight_dtype=weight.dtype, weight_shape=shape,
                    logical_shape=(shape[0], shape[1]) if shape is not None and len(shape) == 2 else None,
                    confidence="config-only", notes=("config only: no tensor was read",))
            memo[key] = evidence
        result[name] = evidence
    return result


def classify_module(module: Module) -> Evidence:
    """Classify one module from its tensors (headers) or, without headers, from names only."""
    params = module.params
    if any(info.dtype is None for info in params.values()):
        return _classify_names(module)
    for entry in RECOGNISERS:
        evidence = entry.recognise(params)
        if evidence is not None:
            return evidence
    if not ({"weight", "weight_packed", "qweight"} & params.keys()):
        return _base("no-weight", params, "weight", None)
    weight = next(w for w in ("weight_packed", "qweight", "weight") if w in params)
    return replace(
        _base("unknown", params, weight, None),
        notes=(
            f"no recogniser accepts {weight} {_dtype(params, weight)} with "
            f"{sorted(k for k in params if k != weight)}",
        ),
    )
