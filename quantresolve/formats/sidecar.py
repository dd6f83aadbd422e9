"""A stale ModelOpt ``hf_quant_config.json`` next to another producer's ``config.json``.

Converters rewrite ``config.json`` but leave the other files of a checkpoint
alone: compressed-tensors' ``ModelOptNvfp4Converter`` replaces
``quantization_config`` with a compressed-tensors config and copies ModelOpt's
``hf_quant_config.json`` along unchanged (field notes §5). The rule:

- engines (transformers, vLLM, SGLang) read ``config.json`` →
  ``quantization_config`` and look for ``hf_quant_config.json`` only when
  ``config.json`` has none, so quantresolve uses ``config.json`` too;
- the sidecar is reported, never silently dropped, because a tool that prefers
  it (TensorRT-LLM treats ``hf_quant_config.json`` as authoritative) would read
  the tensors with ModelOpt's layout:

  * ``stale-sidecar-config`` (warning): both describe the same quantization
    arguments — the usual leftover of a conversion;
  * ``stale-sidecar-scheme-mismatch`` (error): the weight / activation
    arguments or the KV-cache algorithm differ, so the checkpoint contradicts
    itself about how its tensors are quantized.

Only the arguments (bits, type, strategy, group size, symmetry, dynamic) are
compared: a conversion changes the tensor format by design, and which module
gets which scheme is checked against the tensors by the audit. Exclude lists
are compared by spelling only, so a difference there is reported in the
message without raising the severity (``lm_head`` and ``re:lm_head`` may
well exclude the same module).

    >>> from quantresolve.formats.normalize_compressed_tensors import normalize_compressed_tensors
    >>> from quantresolve.formats.normalize_modelopt import normalize_modelopt
    >>> from quantresolve.formats.modelopt import HfQuantConfigFile
    >>> sidecar = normalize_modelopt(HfQuantConfigFile.model_validate(
    ...     {"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "FP8"}}), None)
    >>> used = normalize_compressed_tensors({"quant_method": "compressed-tensors",
    ...     "format": "pack-quantized", "config_groups": {"W4A16": ["Linear"]}})
    >>> [(f.code, f.severity) for f in stale_sidecar_findings(used, sidecar)]
    [('stale-sidecar-scheme-mismatch', 'error')]
"""

from __future__ import annotations

from quantresolve.formats.modelopt import HF_QUANT_FILE
from quantresolve.formats.normalized import Finding, NormalizedConfig
from quantresolve.formats.scheme import QuantArgs, QuantScheme

STALE_SIDECAR = "stale-sidecar-config"
STALE_SIDECAR_MISMATCH = "stale-sidecar-scheme-mismatch"
#: Severity of each code; the audit's code registry repeats them (a test keeps the two equal).
SEVERITIES = {STALE_SIDECAR: "warning", STALE_SIDECAR_MISMATCH: "error"}

#: QuantArgs fields that change the arithmetic; ``scale_dtype`` / ``actorder`` are storage and calibration details.
_COMPARED = ("num_bits", "type", "strategy", "group_size", "block_structure", "symmetric", "dynamic")

Signature = tuple[object, ...]


def _args(args: QuantArgs | None) -> Signature | None:
    return None if args is None else tuple(getattr(args, f) for f in _COMPARED)


def _schemes(cfg: NormalizedConfig) -> list[QuantScheme]:
    found = [e.scheme for e in cfg.layers] + [g.scheme for g in cfg.groups]
    return found + ([cfg.default_scheme] if cfg.default_scheme is not None else [])


def scheme_signatures(cfg: NormalizedConfig) -> dict[Signature, str]:
    """Every distinct (weights, input activations) argument pair a config assigns → one label naming it."""
    out: dict[Signature, str] = {}
    for scheme in _schemes(cfg):
        out.setdefault((_args(scheme.weights), _args(scheme.input_activations)), scheme.algo)
    return out


def _describe(cfg: NormalizedConfig) -> str:
    labels = sorted(set(scheme_signatures(cfg).values()))
    return f"{cfg.producer} {'+'.join(labels) or '(nothing quantized)'}"


def stale_sidecar_findings(used: NormalizedConfig, sidecar: NormalizedConfig, *,
                           field: str = "quantization_config") -> list[Finding]:
    """The one finding about ``sidecar`` (a ModelOpt ``hf_quant_config.json``) that ``used`` overrides."""
    cfg_file = used.sources[0] if used.sources else "config.json"
    where = f"{cfg_file} {field}"
    mine, theirs = scheme_signatures(used), scheme_signatures(sidecar)
    kv_used = used.kv_cache.algo if used.kv_cache else None
    kv_side = sidecar.kv_cache.algo if sidecar.kv_cache else None
    differences = []
    if set(mine) != set(theirs):
        differences.append(f"quantization arguments differ ({HF_QUANT_FILE}: {_describe(sidecar)}; "
                           f"{where}: {_describe(used)})")
    if kv_used != kv_side:
        differences.append(f"KV-cache algorithm differs ({HF_QUANT_FILE}: {kv_side}; {where}: {kv_used})")
    ex_side = sorted({e.original for e in sidecar.exclude})
    ex_used = sorted({e.original for e in used.exclude})
    spelling = "" if ex_side == ex_used else (f"; the exclude lists are spelled differently "
                                              f"({HF_QUANT_FILE}: {ex_side}; {where}: {ex_used})")
    head = (f"{HF_QUANT_FILE} ({_describe(sidecar)}) is a stale sidecar: {where} ({_describe(used)}) is what "
            f"engines load and what quantresolve uses")
    if differences:
        code = STALE_SIDECAR_MISMATCH
        message = (f"{head}; the two describe different schemes: {'; '.join(differences)}{spelling}. A tool that "
                   f"prefers {HF_QUANT_FILE} (TensorRT-LLM) would quantize these tensors differently")
    else:
        code = STALE_SIDECAR
        message = (f"{head}; both describe the same quantization arguments{spelling}. Remove {HF_QUANT_FILE}: "
                   "a tool that prefers it would read the tensors with ModelOpt's layout")
    return [Finding(code=code, severity=SEVERITIES[code], message=message,  # type: ignore[arg-type]
                    subject=HF_QUANT_FILE, file=HF_QUANT_FILE, field="quantization")]


def apply_stale_sidecar(used: NormalizedConfig, sidecar: NormalizedConfig, *,
                        field: str = "quantization_config") -> NormalizedConfig:
    """``used`` with the sidecar finding added and both files listed in ``sources`` (``used``'s first)."""
    findings = (*used.findings, *stale_sidecar_findings(used, sidecar, field=field))
    return used.model_copy(update={"findings": findings, "sources": (*used.sources, *sidecar.sources)})


__all__ = ["SEVERITIES", "STALE_SIDECAR", "STALE_SIDECAR_MISMATCH", "apply_stale_sidecar", "scheme_signatures",
           "stale_sidecar_findings"]
