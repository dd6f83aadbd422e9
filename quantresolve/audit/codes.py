"""The audit's finding codes: one registry, each code with a fixed severity, a meaning and the reason for it.

Codes are a contract (CI gates grep for them): never rename one, only add. Findings from the
config loader (``files-disagree-*``, ``base-format-fp8``, ``stale-sidecar-*``) and the resolver's
mapping findings (``entry-dropped-by-mapper``, ``duplicate-after-mapping``) pass through the
audit with their own codes; they are registered here too, and the report uses the registry's
severity for every registered code.

What a severity means (one definition for every code; ``reason`` says why each code has its own):

* ``error`` — the checkpoint will load wrong or not at all in the engine the profile describes
  (``reason`` names what goes wrong at load);
* ``warning`` — likely a mistake a person should look at, but the weights load as the config says;
* ``info`` — by design (producers leave routers, norms and small gates unquantized; engines build
  some modules unquantized whatever the config says), or a fact about how much was checked.

    >>> CODES["config-quantized-tensors-dense"].severity
    'error'
    >>> CODES["config-quantized-model-unquantized"].severity   # vLLM's DeepSeek / GLM routers
    'info'
    >>> finding("dead-exclude", "exclude entry matches no module", subject="lm_head*").message
    'lm_head*: exclude entry matches no module'
"""

from __future__ import annotations

from dataclasses import dataclass

from quantresolve.formats.normalized import Finding, Severity

SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")


@dataclass(frozen=True, slots=True)
class FindingCode:
    """A registered code: its severity, what it means, and why it has that severity."""

    code: str
    severity: Severity
    meaning: str
    reason: str


_TABLE: tuple[tuple[str, Severity, str, str], ...] = (
    # --- config × tensors, per module -------------------------------------------------------------
    ("config-quantized-tensors-dense", "error",
     "the config makes the module quantized but its tensors are dense (unquantized)",
     "the engine builds a quantized linear for it (the profile does not say otherwise) and allocates a "
     "packed weight and its scales: the dense weight has the wrong shape / dtype and the scales are "
     "missing, so loading fails, or the dense values are read as codes"),
    ("config-quantized-model-unquantized", "info",
     "the config makes the module quantized, the profile says the engine builds it unquantized (e.g. a MoE "
     "router built with quant_config=None) and its tensors are dense",
     "by design: producers leave routers and small gates unquantized without listing them in the exclude "
     "list (Model-Optimizer PR 1858), and the engine never quantizes them; the dense tensors load as they "
     "are"),
    ("config-unquantized-tensors-quantized", "error",
     "the config leaves the module unquantized but its tensors are quantized",
     "the engine builds a dense layer: the packed / fp8 weight does not fit its parameter (or is read as "
     "plain numbers) and the scale tensors have no parameter to load into"),
    ("config-unquantized-scales-present", "error",
     "the config leaves the module unquantized and its weight is dense, yet scale tensors ship "
     "(e.g. lm_head excluded while lm_head.input_scale is present)",
     "the engine builds a dense layer with a weight only: the scale tensors have no parameter to load "
     "into, and strict loaders refuse them (vLLM 44081: no module or parameter named "
     "'lm_head.input_scale'; quantresolve run refuses tensors nothing consumes)"),
    ("format-mismatch", "error",
     "the tensor format contradicts the resolved scheme (FP8 weight under NVFP4, 4-bit packing under FP8, ...)",
     "the engine's linear method for the scheme allocates another layout: shapes or dtypes differ, so "
     "loading fails or the codes are decoded with the wrong format"),
    ("group-size-mismatch", "error",
     "the number of weight-scale groups along K contradicts the scheme's group size",
     "the linear method allocates K / group_size scale columns: the checkpoint's scales do not fit, or "
     "are applied to the wrong groups"),
    ("scale-grid-mismatch", "error",
     "an FP8 weight scale's shape contradicts the scheme's granularity (a ceil(N/bn) x ceil(K/bk) block grid, "
     "one scalar per tensor)",
     "the linear method allocates the scale in the scheme's shape: loading fails, or blocks get another block's "
     "scale (transformers 5.23 infers the block from the grid and silently mis-scales 192- or 200-row weights)"),
    ("unknown-tensor-format", "warning",
     "no recogniser accepts the module's tensors: the format cannot be checked",
     "the audit cannot tell whether it loads right (an unexpected dtype or suffix); a person should look"),
    # --- config entries --------------------------------------------------------------------------
    ("dead-exclude", "warning",
     "an exclude / ignore / skip entry matches no module (original spelling given)",
     "harmless by itself (every module is checked against its own tensors), but usually a naming "
     "mismatch: the entry was meant for a module spelled differently"),
    ("dead-layer", "warning", "a per-layer entry (quantized_layers key) matches no module",
     "harmless by itself; usually the entry names the module in another namespace"),
    ("dead-target", "warning", "a compressed-tensors target matches no module",
     "harmless by itself; usually a target regex or class that no longer matches the model"),
    # --- the resolver ----------------------------------------------------------------------------
    ("fused-conflict", "error", "the shards of a fused layer resolve to different schemes",
     "one fused linear cannot hold two schemes: vLLM refuses ('Mixed quant_algo within fused layer'), "
     "compressed-tensors requires all shards to agree"),
    ("expert-conflict", "error", "the experts of one MoE container resolve to different schemes",
     "one FusedMoE container has one linear method: engines probe one expert (vLLM: expert 0) and load "
     "the others under its scheme"),
    ("invalid-prefix", "error", "a module name the resolver cannot take (empty or malformed)",
     "no engine module has that path: its tensors have nowhere to load, and no config entry can match it"),
    ("unresolvable", "error", "the resolver refused the module for another reason",
     "the config gives no single answer for the module, so how an engine loads it is undefined"),
    ("empty-module-name", "error",
     "a tensor name yields an empty module name (e.g. '.weight'); no config entry can ever match it",
     "no engine module has an empty path component: the tensor has nowhere to load (vllm-omni PR 4528: "
     "a layer built with prefix '' never matches an exclude)"),
    ("absent-shard", "info",
     "a declared shard of a fused layer is absent from the checkpoint (resolved from the shards present)",
     "by design: Gemma-4's global-attention layers have no v_proj (K is reused as V); the engine fills "
     "the shard itself"),
    # --- KV cache --------------------------------------------------------------------------------
    ("kv-scales-without-config", "warning",
     "k_scale / v_scale tensors ship but the config declares no KV-cache quantization",
     "loads (the scales are ignored and the KV cache stays unquantized), but the config has probably "
     "lost its KV-cache scheme"),
    ("kv-config-without-scales", "warning",
     "the config declares KV-cache quantization but no module carries k_scale / v_scale",
     "loads, but engines fall back to a scale of 1.0 for the quantized KV cache, which may cost accuracy"),
    # --- how much was checked ---------------------------------------------------------------------
    ("unmapped-modules", "info", "the profile's mapper drops these checkpoint modules (not in the model)",
     "by design: the engine does not build them (an MTP head, a vision tower of a text-only model)"),
    ("names-only", "info",
     "only the index was present: names are checked, dtypes / shapes / sizes are not (reduced evidence)",
     "a fact about the evidence, not about the checkpoint"),
    ("index-mismatch", "warning", "shard headers and the index disagree in a tolerated way",
     "the tensors load from the headers, but the index is stale; a person should look"),
    ("config-only", "info",
     "neither an index nor shard files: modules and shapes come from the model config.json describes "
     "(transformers on the meta device); tensor formats are not checked, bytes are estimated",
     "a fact about the evidence (the weights were not read), not about the checkpoint"),
    ("unsized-modules", "info",
     "without headers, checkpoint modules the model built from config.json lacks have no parameter count",
     "a fact about the evidence: their sizes are unknown, their names and schemes are still checked"),
    ("no-quantization-config", "info",
     "the checkpoint carries no quantization config: a dense model, nothing is quantized",
     "by design: a dense model loads every module unquantized, as its tensors are"),
    # --- config files (raised by the config loader, quantresolve.formats) --------------------------
    ("stale-sidecar-config", "warning",
     "config.json carries another producer's quantization_config next to a ModelOpt hf_quant_config.json "
     "describing the same quantization (a converter's leftover); config.json is used, as engines do",
     "every reader gets the same arguments, but a tool that prefers the sidecar (TensorRT-LLM) reads the "
     "tensors with ModelOpt's layout; remove the leftover"),
    ("stale-sidecar-scheme-mismatch", "error",
     "a stale ModelOpt hf_quant_config.json describes different quantization arguments or KV-cache algorithm "
     "than config.json's quantization_config, which is used; a tool preferring the sidecar reads it differently",
     "a tool that prefers the sidecar (TensorRT-LLM) loads the tensors with other arguments"),
    ("base-format-fp8", "warning",
     "quant_method 'fp8' next to ModelOpt keys: layers outside the ModelOpt scheme are stored in the base "
     "block-FP8 format, which quantresolve does not resolve",
     "those layers are not checked; a person should look"),
    ("files-disagree-algo", "error",
     "config.json's quantization_config and hf_quant_config.json name different algorithms",
     "engines read different files (vLLM and transformers config.json, TensorRT-LLM hf_quant_config.json): "
     "whichever file is wrong for the tensors, some engine quantizes every layer with the wrong algorithm"),
    ("files-disagree-group-size", "error",
     "config.json's quantization_config and hf_quant_config.json give different group sizes",
     "engines read different files: whichever is wrong, some engine allocates scales for the wrong group size"),
    ("files-disagree-layers", "error",
     "the per-layer schemes (quantized_layers) of the two ModelOpt files differ",
     "engines read different files: whichever is wrong, some engine loads those layers with the wrong "
     "scheme (an unlisted layer of a MIXED_PRECISION config is silently unquantized)"),
    ("files-disagree-kv", "warning",
     "the two ModelOpt files name different KV-cache algorithms",
     "the weights load either way; the KV cache is quantized or not depending on which file an engine "
     "reads"),
    ("files-disagree-exclude", "warning",
     "the exclude lists of the two ModelOpt files differ",
     "compared by spelling: 'lm_head' and 'lm_head*' may exclude the same module; a person should compare"),
    ("files-disagree-producer-version", "info",
     "the two ModelOpt files name different producer versions",
     "no effect on loading; every real difference between the files is reported on its own"),
    ("engines-disagree", "warning",
     "transformers and vLLM would load this module (or read this config field) differently; the finding says "
     "which does what and which answer quantresolve gives",
     "the weights load as the config says in at least one engine, but not in every one (e.g. vLLM matches HF FP8 "
     "skip entries exactly and ignores gpt-oss' skip list; transformers also skips a module whose name ends with "
     "an entry, and raises on an entry that is not a regular expression); a person should check the engine in use"),
    # --- the resolver's name mapping (quantresolve.resolve) -----------------------------------------
    ("entry-dropped-by-mapper", "warning", "the profile's mapper drops a config entry's name",
     "the entry cannot apply in the engine; if it named a real module, that module gets another scheme"),
    ("duplicate-after-mapping", "info", "two config keys map to one model name with the same scheme",
     "the same answer either way"),
    ("exclude-substring-only", "warning",
     "an AWQ modules_to_not_convert entry occurs in the module's name only across a path-component boundary "
     "(gate in gate_proj): substring-matching engines (AutoAWQ, vLLM, transformers 4.x) leave the module "
     "unquantized, quantresolve and transformers 5 quantize it",
     "engines disagree on the module; the tensors tell which the producer meant (a dense module the config "
     "quantizes is also reported as config-quantized-tensors-dense)"),
)

#: code → :class:`FindingCode`.
CODES: dict[str, FindingCode] = {c: FindingCode(c, s, m, r) for c, s, m, r in _TABLE}

#: Codes the audit itself raises (the others pass through from the config loader and the resolver).
PASS_THROUGH = frozenset({
    "stale-sidecar-config", "stale-sidecar-scheme-mismatch", "base-format-fp8", "files-disagree-algo",
    "files-disagree-group-size", "files-disagree-layers", "files-disagree-kv", "files-disagree-exclude",
    "files-disagree-producer-version", "entry-dropped-by-mapper", "duplicate-after-mapping", "exclude-substring-only", "engines-disagree",
})

#: Resolver exception class name → finding code.
RESOLUTION_ERROR_CODES: dict[str, str] = {
    "ConflictingShardsError": "fused-conflict",
    "ConflictingExpertsError": "expert-conflict",
    "InvalidPrefixError": "invalid-prefix",
}


def finding(code: str, cause: str, *, subject: str | None = None, file: str | None = None,
            field: str | None = None) -> Finding:
    """A :class:`Finding` with the registered severity of ``code``; its message is ``subject: cause``."""
    message = f"{subject}: {cause}" if subject is not None else cause
    return Finding(code=code, severity=CODES[code].severity, message=message, subject=subject,
                   file=file, field=field)
