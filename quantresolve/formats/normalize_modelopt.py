"""ModelOpt's two config layouts → :class:`NormalizedConfig`, and ModelOpt's entry in the producer registry.

``hf_quant_config.json`` (the legacy file, a :class:`~quantresolve.formats.registry.Sidecar`) is
authoritative over the flat ``config.json`` → ``quantization_config``; where both exist their
differences become ``files-disagree-*`` findings. Algorithm spellings are canonicalised with the
field path at hand, so an unknown algorithm names its exact location, and a per-layer algorithm of
"none" becomes an exact exclusion.

    >>> from quantresolve.formats.modelopt import HfQuantConfigFile
    >>> hf = HfQuantConfigFile.model_validate({"producer": {"name": "modelopt", "version": "0.31.0"},
    ...     "quantization": {"quant_algo": "fp8", "kv_cache_quant_algo": "FP8", "exclude_modules": ["lm_head"]}})
    >>> cfg = normalize_modelopt(hf, None)
    >>> cfg.quant_algo, cfg.default_scheme.algo, cfg.kv_cache.algo, [e.original for e in cfg.exclude]
    ('FP8', 'FP8', 'FP8', ['lm_head'])
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter

from quantresolve.errors import ConfigError, UnknownAlgorithmError
from quantresolve.formats.algos import (
    MIXED_PRECISION,
    MODELOPT_LABELS,
    canonical_modelopt_algo,
    canonical_modelopt_kv_algo,
)
from quantresolve.formats.limits import check_group_size
from quantresolve.formats.modelopt import (
    HF_QUANT_FILE,
    HfQuantConfigFile,
    LayerQuantSpec,
    ModelOptFlatConfig,
)
from quantresolve.formats.normalized import (
    Finding,
    LayerEntry,
    NameEntry,
    NormalizedConfig,
    SchemeGroup,
    Severity,
    name_entries,
)
from quantresolve.formats.registry import LayoutSchema, ProducerFormat, Sidecar, register_format
from quantresolve.formats.scheme import QuantArgs, QuantScheme, modelopt_kv_scheme, modelopt_scheme
from quantresolve.formats.sidecar import apply_stale_sidecar
from quantresolve.formats.validation import validate_model


def _algo(spelling: object, *, file: str, field: str, allow_mixed: bool = True) -> str | None:
    try:
        return canonical_modelopt_algo(spelling, allow_mixed=allow_mixed)
    except UnknownAlgorithmError as err:
        raise UnknownAlgorithmError(err.detail, file=file, field=field) from None


def _kv_algo(spelling: object, *, file: str, field: str) -> str | None:
    try:
        return canonical_modelopt_kv_algo(spelling)
    except UnknownAlgorithmError as err:
        raise UnknownAlgorithmError(err.detail, file=file, field=field) from None


def _layer_scheme(spec: LayerQuantSpec, *, group_size: int | None, file: str, field: str) -> QuantScheme | None:
    label = _algo(spec.quant_algo, file=file, field=f"{field}.quant_algo", allow_mixed=False)
    check_group_size(spec.group_size, file=file, field=f"{field}.group_size")
    if label is None:
        return None
    return modelopt_scheme(label, group_size=spec.group_size or group_size, has_zero_point=spec.has_zero_point,
                           pre_quant_scale=spec.pre_quant_scale)


def _json_key(name: str) -> str:
    """``json.dumps(name)``, without the encoder's overhead for the usual plain ASCII module path."""
    if name.isascii() and name.isprintable() and '"' not in name and "\\" not in name:
        return f'"{name}"'
    return json.dumps(name)


def _layers(layers: dict[str, LayerQuantSpec] | None, *, group_size: int | None, file: str,
            field: str) -> tuple[tuple[LayerEntry, ...], tuple[NameEntry, ...]]:
    """Per-layer entries, sorted by name; an entry whose algo is "none" becomes an exact exclusion."""
    rows: list[dict[str, Any]] = []
    excluded: list[NameEntry] = []
    schemes: dict[tuple[object, ...], QuantScheme | None] = {}  # real configs repeat a handful of settings
    for name in sorted(layers or {}):
        where = f"{field}[{_json_key(name)}]"
        if not name.strip():
            raise ConfigError("empty module name as a quantized_layers key", file=file, field=where)
        spec = layers[name]  # type: ignore[index]
        key = (spec.quant_algo, spec.group_size, spec.has_zero_point, spec.pre_quant_scale)
        if key not in schemes:
            schemes[key] = _layer_scheme(spec, group_size=group_size, file=file, field=where)
        scheme = schemes[key]
        if scheme is None:
            excluded.append(NameEntry(original=name, kind="exact", file=file, field=where))
        else:
            rows.append({"name": name, "scheme": scheme, "file": file, "field": where})
    # One validation call for all rows: pydantic-core builds 10^5 entries several times faster than
    # per-entry construction (the schemes are instances already and are not re-validated).
    return _LAYER_ROWS.validate_python(rows), tuple(excluded)


_LAYER_ROWS: TypeAdapter[tuple[LayerEntry, ...]] = TypeAdapter(tuple[LayerEntry, ...])


def modelopt_label_for_group(group: dict[str, Any]) -> str | None:
    """The ModelOpt label whose arguments a flat ``config_groups`` entry describes, if exactly one fits.

    Exports write partial compressed-tensors-style arguments
    (``{"weights": {"num_bits": 4, "type": "float", "group_size": 16}}``);
    every field present must agree with the label's own arguments.
    """
    def fits(mine: QuantArgs | None, theirs: Any) -> bool:
        if theirs is None:
            return mine is None
        if mine is None or not isinstance(theirs, dict):
            return False
        for key in ("num_bits", "type", "strategy", "group_size"):
            if theirs.get(key) is not None and theirs[key] != getattr(mine, key):
                return False
        return True

    matches = []
    for label in MODELOPT_LABELS:
        s = modelopt_scheme(label)
        if fits(s.weights, group.get("weights")) and fits(s.input_activations, group.get("input_activations")):
            matches.append(label)
    return matches[0] if len(matches) == 1 else None


def _flat_groups(flat: ModelOptFlatConfig, *, file: str, field: str) -> tuple[SchemeGroup, ...]:
    groups = []
    for name in sorted(flat.config_groups or {}):
        raw = flat.config_groups[name]  # type: ignore[index]
        where = f"{field + '.' if field else ''}config_groups[{json.dumps(name)}]"
        label = modelopt_label_for_group(raw)
        if label is None:
            continue  # described by quant_algo / quantized_layers; cross-checked in findings
        targets = raw.get("targets") or []
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise ConfigError("targets must be a list of strings", file=file, field=f"{where}.targets")
        groups.append(SchemeGroup(name=name, scheme=modelopt_scheme(label), field=where,
                                  targets=name_entries(targets, file=file, field=f"{where}.targets", class_names=True)))
    return tuple(groups)


def _flat_kv(flat: ModelOptFlatConfig, *, file: str, field: str) -> QuantScheme | None:
    field = f"{field}." if field else ""
    kv = flat.kv_cache_scheme
    if isinstance(kv, str):
        label = _kv_algo(kv, file=file, field=f"{field}kv_cache_scheme")
    elif isinstance(kv, dict):
        bits, typ = kv.get("num_bits"), kv.get("type")
        label = {(8, "float"): "FP8", (8, "int"): "INT8", (4, "float"): "NVFP4"}.get((bits, typ))
        if label is None:
            raise ConfigError(f"unsupported KV-cache scheme {kv!r}", file=file, field=f"{field}kv_cache_scheme")
    else:
        label = _kv_algo(flat.kv_cache_quant_algo, file=file, field=f"{field}kv_cache_quant_algo")
    return modelopt_kv_scheme(label) if label else None


def _modelopt_from_flat(flat: ModelOptFlatConfig, *, file: str, field: str) -> NormalizedConfig:
    return _modelopt_from_flat_at(flat, file=file, base=field, field=f"{field}." if field else "")


def _modelopt_from_flat_at(flat: ModelOptFlatConfig, *, file: str, base: str, field: str) -> NormalizedConfig:
    """``field`` is the section's path with a trailing dot (empty for a bare section)."""
    label = _algo(flat.quant_algo, file=file, field=f"{field}quant_algo")
    check_group_size(flat.group_size, file=file, field=f"{field}group_size")
    excludes = flat.ignore if flat.ignore is not None else flat.exclude_modules
    ex_field = f"{field}ignore" if flat.ignore is not None else f"{field}exclude_modules"
    layers, none_layers = _layers(flat.quantized_layers, group_size=flat.group_size, file=file,
                                  field=f"{field}quantized_layers")
    groups = _flat_groups(flat, file=file, field=base)
    findings: list[Finding] = []
    if flat.quant_method == "fp8":
        findings.append(Finding(
            code="base-format-fp8", severity=SEVERITIES["base-format-fp8"], file=file, field=f"{field}quant_method",
            message="quant_method 'fp8' next to ModelOpt keys: layers outside the ModelOpt scheme are stored in "
                    "the base block-FP8 format, which quantresolve does not resolve"))
    if label == MIXED_PRECISION and not layers and groups:
        # Older flat exports carry the per-layer truth only as explicit group targets.
        layers = tuple(sorted((LayerEntry(name=t.original, scheme=g.scheme, file=file, field=t.field)
                               for g in groups for t in g.targets if t.kind == "exact"), key=lambda e: e.name))
    if label is None and flat.moe_quant_algo:
        label = MIXED_PRECISION
    return NormalizedConfig(
        producer="modelopt", producer_version=flat.producer.version if flat.producer else None, format="modelopt",
        quant_algo=label, default_scheme=_default(label, flat.group_size, flat.has_zero_point, flat.pre_quant_scale),
        exclude=name_entries(excludes, file=file, field=ex_field) + none_layers, layers=layers,
        kv_cache=_flat_kv(flat, file=file, field=base), findings=tuple(findings), sources=(file,),
    )


def _default(label: str | None, group_size: int | None, has_zp: bool | None, pqs: bool | None) -> QuantScheme | None:
    if label is None or label == MIXED_PRECISION:
        return None
    return modelopt_scheme(label, group_size=group_size, has_zero_point=has_zp, pre_quant_scale=pqs)


def _modelopt_from_hf(hf: HfQuantConfigFile, *, file: str) -> NormalizedConfig:
    q = hf.quantization
    label = _algo(q.quant_algo, file=file, field="quantization.quant_algo")
    check_group_size(q.group_size, file=file, field="quantization.group_size")
    kv = _kv_algo(q.kv_cache_quant_algo, file=file, field="quantization.kv_cache_quant_algo")
    layers, none_layers = _layers(q.quantized_layers, group_size=q.group_size, file=file,
                                  field="quantization.quantized_layers")
    if hf.producer is not None and hf.producer.name.lower() != "modelopt":
        raise ConfigError(f"producer is {hf.producer.name!r}, expected 'modelopt'", file=file, field="producer.name")
    return NormalizedConfig(
        producer="modelopt", producer_version=hf.producer.version if hf.producer else None, format="modelopt",
        quant_algo=label, default_scheme=_default(label, q.group_size, q.has_zero_point, q.pre_quant_scale),
        exclude=name_entries(q.exclude_modules, file=file, field="quantization.exclude_modules") + none_layers,
        layers=layers, kv_cache=modelopt_kv_scheme(kv) if kv else None, sources=(file,),
    )


def _check_mixed(cfg: NormalizedConfig, file: str, field: str) -> None:
    if cfg.is_mixed_precision and not cfg.layers:
        raise ConfigError("quant_algo is MIXED_PRECISION but quantized_layers is empty or missing: "
                          "every layer would be unquantized", file=file, field=field)
    if cfg.quant_algo is None and cfg.layers:
        raise ConfigError("quantized_layers is given but quant_algo is not MIXED_PRECISION", file=file,
                          field=field.rsplit(".", 1)[0] + ".quant_algo" if "." in field else "quant_algo")


#: Severity of each finding this module raises; the audit's code registry repeats them (a test keeps
#: the two equal). A difference that makes an engine reading config.json load the weights with other
#: arguments is an error; the KV cache or spelling of excludes a warning; the producer version info.
SEVERITIES: dict[str, Severity] = {
    "base-format-fp8": "warning",
    "files-disagree-algo": "error",
    "files-disagree-kv": "warning",
    "files-disagree-group-size": "error",
    "files-disagree-producer-version": "info",
    "files-disagree-exclude": "warning",
    "files-disagree-layers": "error",
}


def _compare(hf: NormalizedConfig, flat: NormalizedConfig) -> list[Finding]:
    """Every way the flat config.json disagrees with the authoritative hf_quant_config.json."""
    out: list[Finding] = []

    def diff(code: str, what: str, mine: object, theirs: object, field: str) -> None:
        if mine != theirs:
            out.append(Finding(code=code, severity=SEVERITIES[code], file=flat.sources[0], field=field, subject=what,
                               message=f"{what}: {HF_QUANT_FILE} says {mine!r}, {flat.sources[0]} says {theirs!r}; "
                                       f"{HF_QUANT_FILE} is authoritative"))

    diff("files-disagree-algo", "quant_algo", hf.quant_algo, flat.quant_algo, "quantization_config.quant_algo")
    diff("files-disagree-kv", "KV-cache algorithm", hf.kv_cache.algo if hf.kv_cache else None,
         flat.kv_cache.algo if flat.kv_cache else None, "quantization_config.kv_cache_scheme")
    def gs(c):
        return (c.default_scheme.weights.group_size if c.default_scheme and c.default_scheme.weights else None)
    diff("files-disagree-group-size", "group size", gs(hf), gs(flat), "quantization_config.group_size")
    diff("files-disagree-producer-version", "producer version", hf.producer_version, flat.producer_version,
         "quantization_config.producer.version")
    hf_ex = sorted({e.original for e in hf.exclude})
    flat_ex = sorted({e.original for e in flat.exclude})
    if hf_ex != flat_ex:
        only_hf = sorted(set(hf_ex) - set(flat_ex))
        only_flat = sorted(set(flat_ex) - set(hf_ex))
        out.append(Finding(code="files-disagree-exclude", severity=SEVERITIES["files-disagree-exclude"], file=flat.sources[0],
                           field="quantization_config.ignore", subject="exclude set",
                           message=f"exclude sets differ: only in {HF_QUANT_FILE}: {only_hf[:5]}"
                                   f"{'...' if len(only_hf) > 5 else ''} ({len(only_hf)}); only in "
                                   f"{flat.sources[0]}: {only_flat[:5]}{'...' if len(only_flat) > 5 else ''} "
                                   f"({len(only_flat)})"))
    hf_layers = {e.name: e.scheme.algo for e in hf.layers}
    flat_layers = {e.name: e.scheme.algo for e in flat.layers}
    if len(hf_layers) != len(flat_layers):
        out.append(Finding(code="files-disagree-layers", severity=SEVERITIES["files-disagree-layers"], file=flat.sources[0],
                           field="quantization_config.quantized_layers", subject="quantized_layers count",
                           message=f"{HF_QUANT_FILE} lists {len(hf_layers)} quantized layers, "
                                   f"{flat.sources[0]} lists {len(flat_layers)}"))
    for name in sorted(set(hf_layers) & set(flat_layers)):
        if hf_layers[name] != flat_layers[name]:
            out.append(Finding(code="files-disagree-layers", severity=SEVERITIES["files-disagree-layers"], file=flat.sources[0],
                               field=f"quantization_config.quantized_layers[{json.dumps(name)}]", subject=name,
                               message=f"{name}: {HF_QUANT_FILE} says {hf_layers[name]}, "
                                       f"{flat.sources[0]} says {flat_layers[name]}"))
    return out


def normalize_modelopt(hf: HfQuantConfigFile | None, flat: ModelOptFlatConfig | None, *,
                       hf_file: str = HF_QUANT_FILE, flat_file: str = "config.json",
                       flat_field: str = "quantization_config") -> NormalizedConfig:
    """Normalize ModelOpt's legacy file, flat config, or both (legacy authoritative, differences → findings)."""
    hf_cfg = _modelopt_from_hf(hf, file=hf_file) if hf is not None else None
    flat_cfg = _modelopt_from_flat(flat, file=flat_file, field=flat_field) if flat is not None else None
    if hf_cfg is not None:
        _check_mixed(hf_cfg, hf_file, "quantization.quantized_layers")
    if flat_cfg is not None:
        _check_mixed(flat_cfg, flat_file, f"{flat_field}.quantized_layers")
    if hf_cfg is None:
        assert flat_cfg is not None
        return flat_cfg
    if flat_cfg is None:
        return hf_cfg
    findings = [*hf_cfg.findings, *flat_cfg.findings, *_compare(hf_cfg, flat_cfg)]
    return hf_cfg.model_copy(update={"findings": tuple(findings), "sources": (hf_file, flat_file)})


# --- registration ---------------------------------------------------------------------------------

def detect(section: Mapping[str, Any]) -> bool:
    """``quant_method: modelopt``, a ``producer.name`` of modelopt, or a bare ``quant_algo``."""
    producer = section.get("producer")
    by_producer = isinstance(producer, dict) and str(producer.get("name", "")).lower() == "modelopt"
    return section.get("quant_method") == "modelopt" or by_producer or (
        section.get("quant_method") is None and "quant_algo" in section)


def _flat(section: dict[str, Any], file: str, field: str) -> ModelOptFlatConfig:
    return validate_model(ModelOptFlatConfig, section, file=file, prefix=field)


def normalize_section(section: dict[str, Any], *, file: str, field: str) -> NormalizedConfig:
    """The flat ``config.json`` section alone."""
    return normalize_modelopt(None, _flat(section, file, field), flat_file=file, flat_field=field)


def _is_hf_quant_file(document: Mapping[str, Any]) -> bool:
    return "quantization" in document and ("producer" in document or isinstance(document.get("quantization"), dict))


FORMAT = register_format(ProducerFormat(
    name="modelopt", precedence=20, detect=detect, normalize=normalize_section,
    quant_methods=("modelopt",), section_keys=("quant_algo",), producer_names=("modelopt",), base_methods=("fp8",),
    sidecar=Sidecar(
        file=HF_QUANT_FILE, recognise=_is_hf_quant_file,
        parse=lambda document, file: validate_model(HfQuantConfigFile, document, file=file),
        alone=lambda hf, file: normalize_modelopt(hf, None, hf_file=file),
        with_section=lambda hf, section, file, field: normalize_modelopt(
            hf, _flat(section, file, field), flat_file=file, flat_field=field),
        stale=lambda used, sidecar, field: apply_stale_sidecar(used, sidecar, field=field)),
    schemas=(LayoutSchema("modelopt-hf-quant-config.schema.json", "ModelOpt hf_quant_config.json",
                          lambda: HfQuantConfigFile),
             LayoutSchema("modelopt-flat-config.schema.json", "ModelOpt config.json quantization_config",
                          lambda: ModelOptFlatConfig)),
))

__all__ = ["FORMAT", "modelopt_label_for_group", "normalize_modelopt"]
