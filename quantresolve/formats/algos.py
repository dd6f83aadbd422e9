"""The canonical algorithm vocabulary: one label per quantization scheme.

Producers spell the same scheme many ways. ModelOpt's export constants are
lower-case (``int4_awq``), what it writes into ``hf_quant_config.json`` is the
TensorRT-LLM name (``W4A16_AWQ``), configs in the wild mix the two in any case.
compressed-tensors describes schemes by their arguments (labelled here with the
preset name they match, e.g. ``W4A16`` or ``FP8_DYNAMIC``), and bitsandbytes by
flags. This module maps every known spelling to one **canonical label** and
refuses unknown ones loudly — an unknown spelling never means "unquantized".

    >>> canonical_modelopt_algo("int4_awq")
    'W4A16_AWQ'
    >>> canonical_modelopt_algo(" fp8_pc_pt ")
    'FP8_PER_CHANNEL_PER_TOKEN'
    >>> canonical_modelopt_algo("none") is None
    True
    >>> canonical_modelopt_algo("FP9")
    Traceback (most recent call last):
    ...
    quantresolve.errors.UnknownAlgorithmError: unknown algorithm 'FP9'; known: FP8, ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from quantresolve.errors import UnknownAlgorithmError

#: Canonical producer names: the ``quant_method`` of each config layout quantresolve reads (``fp8``: Hugging
#: Face fine-grained FP8 — transformers' ``FineGrainedFP8Config``, DeepSeek, AutoFP8; ``mxfp4``: gpt-oss MXFP4; ``gptq`` / ``awq``:
#: AutoGPTQ / optimum / GPTQModel and AutoAWQ).
Producer = Literal["modelopt", "compressed-tensors", "bitsandbytes", "gptq", "awq", "fp8", "mxfp4"]

#: Spellings that mean "no value" in ModelOpt configs.
NO_VALUE_SPELLINGS = frozenset({"", "none", "null"})

#: The label of the ModelOpt per-layer mode (not a scheme by itself).
MIXED_PRECISION = "MIXED_PRECISION"


@dataclass(frozen=True)
class AlgoSpec:
    """One canonical algorithm.

    ``label`` is canonical; ``aliases`` are the other spellings (matched
    case-insensitively); ``weight_bits`` / ``activation`` summarise it for
    reports.
    """

    label: str
    producer: Producer
    description: str
    weight_bits: int | None
    activation: str | None
    aliases: tuple[str, ...] = field(default=())


def _spec(label: str, description: str, weight_bits: int | None, activation: str | None,
          *aliases: str, producer: Producer = "modelopt") -> AlgoSpec:
    return AlgoSpec(label, producer, description, weight_bits, activation, aliases)


#: ModelOpt linear-layer algorithms. Canonical labels are what nvidia-modelopt
#: writes into ``hf_quant_config.json`` (the TensorRT-LLM name) where one exists,
#: else the upper-cased export constant.
MODELOPT_ALGOS: tuple[AlgoSpec, ...] = (
    _spec("FP8", "FP8 e4m3 weights and static per-tensor activations", 8, "fp8-static", "fp8"),
    _spec("FP8_PER_CHANNEL_PER_TOKEN", "FP8 per-channel weights, dynamic per-token activations", 8,
          "fp8-dynamic-token", "fp8_pc_pt", "FP8_PC_PT"),
    _spec("FP8_PB_WO", "FP8 128x128 block-scaled weights, weight-only", 8, None, "fp8_pb_wo"),
    _spec("FP8_PB_REAL", "FP8 128x128 block-scaled weights, dynamic per-group activations", 8,
          "fp8-dynamic-group", "fp8_pb_real", "FP8_BLOCK_SCALES"),
    _spec("W4A16_AWQ", "INT4 group-wise weights (AWQ or block-wise), 16-bit activations", 4, None,
          "int4_awq", "INT4_AWQ"),
    _spec("W4A8_AWQ", "INT4 group-wise weights, static FP8 activations", 4, "fp8-static", "w4a8_awq"),
    _spec("W8A16", "INT8 per-channel weights, 16-bit activations", 8, None, "int8_wo", "INT8_WO"),
    _spec("W8A8_SQ_PER_CHANNEL", "INT8 SmoothQuant: per-channel weights, static int8 activations", 8,
          "int8-static", "int8_sq", "INT8_SQ"),
    _spec("NVFP4", "NVFP4 weights and activations (group 16, e4m3 scales)", 4, "nvfp4-dynamic",
          "nvfp4", "nvfp4_static"),
    _spec("W4A16_NVFP4", "NVFP4 weights, 16-bit activations", 4, None, "w4a16_nvfp4"),
    _spec("NVFP4_AWQ", "NVFP4 weights and activations with AWQ pre-quant scale", 4, "nvfp4-dynamic",
          "nvfp4_awq"),
    _spec("NVFP4_SVD", "NVFP4 with SVDQuant low-rank branch", 4, "nvfp4-dynamic",
          "nvfp4_svdquant", "NVFP4_SVDQUANT"),
    _spec("W4A8_NVFP4_FP8", "NVFP4 weights, static FP8 activations", 4, "fp8-static", "w4a8_nvfp4_fp8"),
    _spec("MXFP4", "MXFP4 weights and activations (group 32, E8M0 scales)", 4, "mxfp4-dynamic", "mxfp4"),
    _spec("MXFP8", "MXFP8 weights and activations (group 32, E8M0 scales)", 8, "mxfp8-dynamic", "mxfp8"),
    _spec("W4A8_MXFP4_FP8", "MXFP4 weights, static FP8 activations", 4, "fp8-static", "w4a8_mxfp4_fp8"),
)

#: ModelOpt KV-cache algorithms (``kv_cache_quant_algo``).
MODELOPT_KV_ALGOS: tuple[AlgoSpec, ...] = (
    _spec("FP8", "FP8 KV cache", 8, None, "fp8"),
    _spec("INT8", "INT8 KV cache", 8, None, "int8"),
    _spec("NVFP4", "NVFP4 KV cache", 4, None, "nvfp4"),
    _spec("NVFP4_AFFINE", "NVFP4 affine KV cache", 4, None, "nvfp4_affine"),
)

#: bitsandbytes schemes.
BNB_ALGOS: tuple[AlgoSpec, ...] = (
    _spec("BNB_NF4", "bitsandbytes 4-bit NormalFloat", 4, None, producer="bitsandbytes"),
    _spec("BNB_FP4", "bitsandbytes 4-bit float (not E2M1)", 4, None, producer="bitsandbytes"),
    _spec("BNB_INT8", "bitsandbytes LLM.int8 (vector-wise int8, outlier decomposition)", 8,
          "int8-mixed", producer="bitsandbytes"),
)


def _index(specs: tuple[AlgoSpec, ...], extra: dict[str, str | None]) -> dict[str, str | None]:
    table: dict[str, str | None] = {}
    for spec in specs:
        for spelling in (spec.label, *spec.aliases):
            table[spelling.lower()] = spec.label
    table.update(extra)
    return table


_MODELOPT_TABLE = _index(MODELOPT_ALGOS, {"mixed_precision": MIXED_PRECISION})
_MODELOPT_KV_TABLE = _index(MODELOPT_KV_ALGOS, {})

MODELOPT_LABELS: tuple[str, ...] = tuple(s.label for s in MODELOPT_ALGOS)
MODELOPT_KV_LABELS: tuple[str, ...] = tuple(s.label for s in MODELOPT_KV_ALGOS)
BNB_LABELS: tuple[str, ...] = tuple(s.label for s in BNB_ALGOS)


def is_no_value(spelling: object) -> bool:
    """True for ``None`` and the spellings ModelOpt uses for "no value"."""
    return spelling is None or (isinstance(spelling, str) and spelling.strip().lower() in NO_VALUE_SPELLINGS)


def _canonical(spelling: object, table: dict[str, str | None], known: tuple[str, ...],
               what: str) -> str | None:
    if is_no_value(spelling):
        return None
    if not isinstance(spelling, str):
        raise UnknownAlgorithmError(f"{what} must be a string, got {type(spelling).__name__} {spelling!r}")
    label = table.get(spelling.strip().lower())
    if label is None:
        raise UnknownAlgorithmError(f"unknown {what} {spelling!r}; known: {', '.join(known)}")
    return label


def canonical_modelopt_algo(spelling: object, *, allow_mixed: bool = True) -> str | None:
    """Canonical label for a ModelOpt ``quant_algo`` spelling, ``None`` for "no value".

    Case and surrounding white space are ignored; long and short forms map to
    one label. ``MIXED_PRECISION`` is accepted only where ``allow_mixed``.

        >>> canonical_modelopt_algo("W4A16_awq")
        'W4A16_AWQ'
        >>> canonical_modelopt_algo("FP8_BLOCK_SCALES")
        'FP8_PB_REAL'
    """
    known = (*MODELOPT_LABELS, MIXED_PRECISION) if allow_mixed else MODELOPT_LABELS
    label = _canonical(spelling, _MODELOPT_TABLE, known, "algorithm")
    if label == MIXED_PRECISION and not allow_mixed:
        raise UnknownAlgorithmError(
            f"algorithm {spelling!r} is not allowed here (a per-layer entry cannot be MIXED_PRECISION); "
            f"known: {', '.join(MODELOPT_LABELS)}"
        )
    return label


def canonical_modelopt_kv_algo(spelling: object) -> str | None:
    """Canonical label for a ModelOpt ``kv_cache_quant_algo`` spelling.

        >>> canonical_modelopt_kv_algo("fp8")
        'FP8'
    """
    return _canonical(spelling, _MODELOPT_KV_TABLE, MODELOPT_KV_LABELS, "KV-cache algorithm")


def algo_spec(label: str) -> AlgoSpec | None:
    """The :class:`AlgoSpec` of a canonical ModelOpt or bitsandbytes label, if any."""
    for spec in (*MODELOPT_ALGOS, *BNB_ALGOS):
        if spec.label == label:
            return spec
    return None


def known_spellings() -> dict[str, tuple[str, ...]]:
    """Every accepted spelling per canonical ModelOpt label (for docs and error messages)."""
    return {s.label: (s.label, *s.aliases) for s in MODELOPT_ALGOS}
