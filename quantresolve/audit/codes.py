"""The audit's finding codes: one registry, each code with a fixed severity and a meaning.

Codes are a contract (CI gates grep for them): never rename one, only add.
Findings from the config loader (``files-disagree-*``, ``base-format-fp8``, ...)
and the resolver's mapping findings pass through with their own codes.

    >>> CODES["config-quantized-tensors-dense"].severity
    'error'
    >>> finding("dead-exclude", "lm_head* matches no module", subject="lm_head*").code
    'dead-exclude'
"""

from __future__ import annotations

from dataclasses import dataclass

from quantresolve.formats.normalized import Finding, Severity


@dataclass(frozen=True, slots=True)
class FindingCode:
    """A registered code: its severity and what it means (for docs and ``--help``)."""

    code: str
    severity: Severity
    meaning: str


_TABLE: tuple[tuple[str, Severity, str], ...] = (
    ("config-quantized-tensors-dense", "error",
     "the config makes the module quantized but its tensors are dense (unquantized)"),
    ("config-quantized-model-unquantized", "warning",
     "the config makes the module quantized, the profile says the model builds it unquantized (e.g. a MoE "
     "router built with quant_config=None) and its tensors are dense: it loads, but the config is inaccurate"),
    ("config-unquantized-tensors-quantized", "error",
     "the config leaves the module unquantized but its tensors are quantized"),
    ("config-unquantized-scales-present", "warning",
     "the config leaves the module unquantized and its weight is dense, yet scale tensors ship "
     "(e.g. lm_head excluded while lm_head.input_scale is present)"),
    ("format-mismatch", "error",
     "the tensor format contradicts the resolved scheme (FP8 weight under NVFP4, 4-bit packing under FP8, ...)"),
    ("group-size-mismatch", "error",
     "the number of weight-scale groups along K contradicts the scheme's group size"),
    ("unknown-tensor-format", "warning",
     "no recogniser accepts the module's tensors: the format cannot be checked"),
    ("dead-exclude", "warning",
     "an exclude / ignore / skip entry matches no module (original spelling given)"),
    ("dead-layer", "warning", "a per-layer entry (quantized_layers key) matches no module"),
    ("dead-target", "warning", "a compressed-tensors target matches no module"),
    ("fused-conflict", "error", "the shards of a fused layer resolve to different schemes"),
    ("expert-conflict", "error", "the experts of one MoE container resolve to different schemes"),
    ("invalid-prefix", "error", "a module name the resolver cannot take (empty or malformed)"),
    ("unresolvable", "error", "the resolver refused the module for another reason"),
    ("empty-module-name", "error",
     "a tensor name yields an empty module name (e.g. '.weight'); no config entry can ever match it"),
    ("absent-shard", "info",
     "a declared shard of a fused layer is absent from the checkpoint (resolved from the shards present)"),
    ("kv-scales-without-config", "warning",
     "k_scale / v_scale tensors ship but the config declares no KV-cache quantization"),
    ("kv-config-without-scales", "warning",
     "the config declares KV-cache quantization but no module carries k_scale / v_scale"),
    ("unmapped-modules", "info", "the profile's mapper drops these checkpoint modules (not in the model)"),
    ("names-only", "info",
     "only the index was present: names are checked, dtypes / shapes / sizes are not (reduced evidence)"),
    ("index-mismatch", "warning", "shard headers and the index disagree in a tolerated way"),
    ("config-only", "info",
     "neither an index nor shard files: modules and shapes come from the model config.json describes "
     "(transformers on the meta device); tensor formats are not checked, bytes are estimated"),
    ("unsized-modules", "info",
     "without headers, checkpoint modules the model built from config.json lacks have no parameter count"),
    ("no-quantization-config", "info",
     "the checkpoint carries no quantization config: a dense model, nothing is quantized"),
    # Raised by the config loader (quantresolve.formats.sidecar), registered here so gates can rely on them.
    ("stale-sidecar-config", "warning",
     "config.json carries another producer's quantization_config next to a ModelOpt hf_quant_config.json "
     "describing the same quantization (a converter's leftover); config.json is used, as engines do"),
    ("stale-sidecar-scheme-mismatch", "error",
     "a stale ModelOpt hf_quant_config.json describes different quantization arguments or KV-cache algorithm "
     "than config.json's quantization_config, which is used; a tool preferring the sidecar reads it differently"),
)

#: code → :class:`FindingCode`.
CODES: dict[str, FindingCode] = {c: FindingCode(c, s, m) for c, s, m in _TABLE}

#: Resolver exception class name → finding code.
RESOLUTION_ERROR_CODES: dict[str, str] = {
    "ConflictingShardsError": "fused-conflict",
    "ConflictingExpertsError": "expert-conflict",
    "InvalidPrefixError": "invalid-prefix",
}


def finding(code: str, message: str, *, subject: str | None = None, file: str | None = None,
            field: str | None = None) -> Finding:
    """A :class:`Finding` with the registered severity of ``code``."""
    return Finding(code=code, severity=CODES[code].severity, message=message, subject=subject,
                   file=file, field=field)
