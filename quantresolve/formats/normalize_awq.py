"""AWQ's ``quantization_config`` → :class:`NormalizedConfig`, and AWQ's entry in the producer registry.

What is accepted is what AutoAWQ and vLLM read, and what quantresolve can verify on disk:

- ``bits`` (or AutoAWQ's ``w_bit``) 4: AutoAWQ's linears and vLLM's AWQ methods take nothing else
  (transformers' ``AwqConfig`` checks no bit width, so the file may say anything);
- ``group_size`` (or ``q_group_size``) −1 (one group over all of K) or 1..2^20;
- ``version`` (any case): ``gemm``; ``exllama`` and ``ipex`` (transformers 4.x) are GEMM on disk —
  AutoAWQ loads the GEMM tensors and repacks them at run time — so they read as ``gemm``.
  ``gemv`` (``qweight`` ``[N, K/8]`` packed along K, padded zero columns), ``gemv_fast`` / ``llm-awq``
  (int16 words, interleaved rows, fp16 "zeros" holding −scale·zero) and ``marlin`` (tiled) are
  other layouts and are refused naming the version; so is ``backend: llm-awq`` (GEMV_FAST packing);
- ``zero_point`` true: AutoAWQ writes GEMM with zero points only (its ``WQLinear_GEMM.from_linear``
  asserts them); ``false`` is its Marlin layout, refused;
- ``modules_to_not_convert``: names, kept as written (how they match: whole path components, see
  :mod:`quantresolve.resolve.rules_awq`).

The label is ``W4A16_ASYM`` (AWQ's zero points are real), the group size is in ``weights``.

    >>> cfg = normalize_section({"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True,
    ...     "version": "GEMM", "modules_to_not_convert": ["visual"]}, file="config.json", field="quantization_config")
    >>> cfg.quant_algo, cfg.default_scheme.summary(), [e.original for e in cfg.exclude]
    ('W4A16_ASYM', 'W4A16_ASYM (awq:gemm, w4 group/128)', ['visual'])
    >>> try:
    ...     normalize_section({"quant_method": "awq", "version": "gemv"}, file="config.json",
    ...                       field="quantization_config")
    ... except UnsupportedFormatError as err:
    ...     print(err.field, "|", err.detail[:40])
    quantization_config.version | AWQ version 'gemv' stores another layout
"""

from __future__ import annotations

from functools import lru_cache

from quantresolve.errors import ConfigError, UnsupportedFormatError
from quantresolve.formats.awq import AwqConfig
from quantresolve.formats.compressed_tensors import ct_label
from quantresolve.formats.normalize_gptq import check_gptq_group_size
from quantresolve.formats.normalized import NormalizedConfig, name_entries
from quantresolve.formats.registry import register_method_format
from quantresolve.formats.scheme import QuantArgs, QuantScheme

#: ``version`` spellings whose tensors are AutoAWQ's GEMM layout on disk.
GEMM_VERSIONS = ("gemm", "exllama", "ipex")
#: Other versions → why they are refused.
OTHER_VERSIONS = {
    "gemv": "qweight [N, K/8] packed along K, zero points and scales padded per row",
    "gemv_fast": "int16 words with interleaved rows; fp16 'zeros' holding -scale*zero",
    "llm-awq": "the original llm-awq packing (GEMV_FAST)",
    "marlin": "Marlin-tiled qweight without zero points",
}


@lru_cache(maxsize=64)
def awq_scheme(group_size: int, version: str = "gemm") -> QuantScheme:
    """The scheme of AWQ GEMM 4-bit with zero points; ``version`` is the spelling the config used.

        >>> awq_scheme(-1).summary()
        'W4A16_ASYM (awq:gemm, w4 channel)'
    """
    weights = QuantArgs(num_bits=4, type="int", strategy="channel" if group_size == -1 else "group",
                        group_size=None if group_size == -1 else group_size, symmetric=False)
    return QuantScheme(algo=ct_label(weights, None), producer="awq", format="gemm", weights=weights,
                       options={"version": version})


def _at(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def _version(cfg: AwqConfig, *, file: str, field: str) -> str:
    version = cfg.version.strip().lower()
    if version in GEMM_VERSIONS:
        return version
    supported = "gemm (exllama and ipex are GEMM on disk)"
    if version in OTHER_VERSIONS:
        raise UnsupportedFormatError(f"AWQ version {cfg.version!r} stores another layout ({OTHER_VERSIONS[version]}), "
                                     f"which quantresolve does not read; supported: {supported}",
                                     file=file, field=_at(field, "version"))
    raise ConfigError(f"unknown AWQ version {cfg.version!r}; known: {', '.join((*GEMM_VERSIONS, *OTHER_VERSIONS))}",
                      file=file, field=_at(field, "version"))


def normalize_awq(cfg: AwqConfig, *, file: str = "config.json", field: str = "quantization_config") -> NormalizedConfig:
    """Normalize a validated AWQ config (see the module docstring for what is refused)."""
    if cfg.bits is not None and cfg.w_bit is not None and cfg.bits != cfg.w_bit:
        raise ConfigError(f"bits {cfg.bits} and w_bit {cfg.w_bit} disagree", file=file, field=_at(field, "w_bit"))
    bits_field = _at(field, "bits" if cfg.bits is not None or cfg.w_bit is None else "w_bit")
    if cfg.bit_width() != 4:
        raise ConfigError(f"{cfg.bit_width()} bits: accepted: 4 (AutoAWQ and vLLM read 4-bit AWQ only)",
                          file=file, field=bits_field)
    if cfg.group_size is not None and cfg.q_group_size is not None and cfg.group_size != cfg.q_group_size:
        raise ConfigError(f"group_size {cfg.group_size} and q_group_size {cfg.q_group_size} disagree",
                          file=file, field=_at(field, "q_group_size"))
    group_field = _at(field, "group_size" if cfg.group_size is not None or cfg.q_group_size is None else "q_group_size")
    group = check_gptq_group_size(cfg.group(), file=file, field=group_field)
    version = _version(cfg, file=file, field=field)
    if cfg.backend is not None and cfg.backend.strip().lower() == "llm-awq":
        raise UnsupportedFormatError(f"backend {cfg.backend!r} means the llm-awq (GEMV_FAST) packing, which "
                                     "quantresolve does not read; supported: AutoAWQ GEMM", file=file,
                                     field=_at(field, "backend"))
    if not cfg.zero_point:
        raise UnsupportedFormatError("zero_point false: AutoAWQ writes that only in its Marlin layout (GEMM always "
                                     "stores zero points), which quantresolve does not read", file=file,
                                     field=_at(field, "zero_point"))
    scheme = awq_scheme(group, version)
    return NormalizedConfig(
        producer="awq", format="gemm", quant_algo=scheme.algo, default_scheme=scheme,
        exclude=name_entries(cfg.modules_to_not_convert, file=file, field=_at(field, "modules_to_not_convert")),
        sources=(file,))


# --- registration ---------------------------------------------------------------------------------

FORMAT = register_method_format("awq", precedence=50, model=lambda: AwqConfig, normalize=normalize_awq,
                                schema=("awq-config.schema.json", "AWQ quantization_config"))
normalize_section = FORMAT.normalize

__all__ = ["FORMAT", "awq_scheme", "normalize_awq"]
