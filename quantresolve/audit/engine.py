"""``audit_checkpoint``: config + tensors + naming → one :class:`AuditReport`.

Steps (each a small pure function elsewhere in this package):

1. load the quantization config (:func:`quantresolve.load_config`);
2. read the checkpoint headers only (:func:`quantresolve.checkpoint.read_checkpoint`),
   build the module inventory and classify each module's tensors;
3. map modules into the model namespace and group them into fused layers and
   MoE containers (:mod:`.layout`), decide each unit's kind (:mod:`.kinds`);
4. resolve every unit except ``other`` with the resolver; resolver refusals
   become error findings for that unit, never a crash;
5. compare each part's tensors with the unit's scheme (:mod:`.expectations`),
   find dead config entries (:mod:`.dead`), and compute coverage (:mod:`.coverage`) and the
   per-layer map (:mod:`.layer_map`).

Refused up front (a :class:`~quantresolve.errors.QuantResolveError`, exit 2 in the
CLI): no quantization config, a config outside scope, a hostile or unreadable
checkpoint::

    >>> report = audit_checkpoint("fixtures/checkpoints/modelopt-mixed")  # doctest: +SKIP
    >>> report.coverage["by_algo"]["NVFP4"]["modules"]                    # doctest: +SKIP
    4
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from quantresolve.audit.codes import RESOLUTION_ERROR_CODES, finding
from quantresolve.audit.coverage import coverage
from quantresolve.audit.dead import LiveNames, dead_entries
from quantresolve.audit.expectations import compare
from quantresolve.audit.grouping import group_findings
from quantresolve.audit.kinds import unit_kind
from quantresolve.audit.layer_map import layer_map
from quantresolve.audit.layout import Unit, build_units
from quantresolve.audit.report import AuditReport, ModuleReport
from quantresolve.checkpoint import (
    Evidence,
    Inventory,
    Module,
    build_inventory,
    classify_inventory,
    packed_logical_shape,
    read_checkpoint,
)
from quantresolve.errors import ResolutionError
from quantresolve.formats.normalized import Finding, NormalizedConfig
from quantresolve.formats.scheme import QuantScheme
from quantresolve.naming.profiles import Profile, load_profile, profile_for_config_dir
from quantresolve.resolve.resolution import Resolution
from quantresolve.resolve.resolver import Resolver
from quantresolve.util.gcpause import gc_paused

ShardCallback = Callable[[int, int, str], None]


def _root(path: Path) -> Path:
    return path.parent if path.is_file() else path


def choose_profile(path: Path, profile: str | os.PathLike[str] | Profile | None) -> Profile:
    """The given profile, else the one ``config.json`` ``architectures`` names, else transformers naming."""
    if profile is not None:
        return load_profile(profile if isinstance(profile, Profile) else str(profile))
    return profile_for_config_dir(_root(path))


def _params(evidence: Evidence, module: Module, scheme: QuantScheme | None) -> int:
    """Logical parameter count of a module's weight (0 when unknown or weightless)."""
    if evidence.param_count is not None:
        return evidence.param_count
    if evidence.kind == "int4-packed":
        bits = scheme.weights.num_bits if scheme is not None and scheme.weights is not None else None
        shape = packed_logical_shape(evidence, bits) if bits else None
        return shape[0] * shape[1] if shape else 0
    if evidence.logical_shape is not None:
        return evidence.logical_shape[0] * evidence.logical_shape[1]
    weight = module.params.get("weight")
    if weight is None or weight.numel is None:
        return 0
    return weight.numel * 2 if evidence.kind == "bnb-4bit" else weight.numel


def _bytes(module: Module) -> int:
    return sum(t.nbytes or 0 for t in module.params.values())


def _evidence_summary(parts: list[Evidence], params: int, nbytes: int) -> dict[str, Any]:
    by_format: dict[str, int] = {}
    for e in parts:
        by_format[e.kind] = by_format.get(e.kind, 0) + 1
    first = parts[0]
    uniform = len({(e.kind, e.weight_dtype, e.group_size) for e in parts}) == 1
    scales = sorted({s for e in parts for s in e.scale_params})
    return {
        "format": first.kind if len(by_format) == 1 else "mixed",
        "by_format": dict(sorted(by_format.items())),
        "confidence": first.confidence,
        "weight_dtype": first.weight_dtype if uniform else None,
        "logical_shape": list(first.logical_shape) if len(parts) == 1 and first.logical_shape else None,
        "group_size": first.group_size if uniform else None,
        "scale_params": scales,
        "input_scale": any(e.has_input_scale for e in parts),
        "kv_scales": any(e.has_kv_scales for e in parts),
    }


class _Auditor:
    """One audit run's state (kept private: the public API is :func:`audit_checkpoint`)."""

    def __init__(self, config: NormalizedConfig, inventory: Inventory, evidence: dict[str, Evidence],
                 profile: Profile) -> None:
        self.config = config
        self.inventory = inventory
        self.evidence = evidence
        self.profile = profile
        self.resolver = Resolver(config, profile, checkpoint_modules=list(inventory.modules))
        self.findings: list[Finding] = []
        self._compare_memo: dict[tuple[int, int], list[tuple[str, str]]] = {}

    def _compare(self, scheme: QuantScheme | None, evidence: Evidence) -> list[tuple[str, str]]:
        key = (id(scheme), id(evidence))
        hit = self._compare_memo.get(key)
        if hit is None:
            hit = self._compare_memo[key] = compare(scheme, evidence)
        return hit

    def _resolve(self, unit: Unit, kind: str) -> tuple[Resolution | None, str | None]:
        if "" in unit.name.split("."):
            self.findings.append(finding(
                "empty-module-name", "the module name has an empty component; no config entry can ever match it",
                subject=unit.name))
            return None, "empty module name"
        try:
            return self.resolver.resolve(unit.name, kind=kind), None
        except ResolutionError as err:
            code = RESOLUTION_ERROR_CODES.get(type(err).__name__, "unresolvable")
            self.findings.append(finding(code, err.detail, subject=unit.name, file=err.file, field=err.field))
            return None, str(err)

    def unit_report(self, unit: Unit) -> ModuleReport:
        parts_ev = [self.evidence[ckpt] for _, ckpt in unit.parts]
        kind = "moe" if unit.grouping == "experts" else unit_kind(unit.name, parts_ev)
        resolution: Resolution | None = None
        error: str | None = None
        if kind != "other":
            resolution, error = self._resolve(unit, kind)
        scheme = resolution.scheme if resolution is not None else None
        modules = [self.inventory.modules[ckpt] for _, ckpt in unit.parts]
        params = sum(_params(e, m, scheme) for e, m in zip(parts_ev, modules, strict=True))
        nbytes = sum(_bytes(m) for m in modules)
        if resolution is not None and kind in ("linear", "moe", "lm_head", "embedding"):
            self._check_parts(unit, scheme, parts_ev)
            claim = resolution.config_answer
            if claim is not None and claim.scheme is not None and all(e.kind == "dense" for e in parts_ev):
                self.findings.append(finding(
                    "config-quantized-model-unquantized",
                    f"config says {claim.algo} (rule {claim.rule}) but the engine builds it unquantized "
                    f"({resolution.source.field if resolution.source else 'profile'}) and the tensors are "
                    "dense, as producers leave it: loads as is", subject=unit.name))
        if kind == "attention" and resolution is not None and scheme is None and any(
                e.has_kv_scales for e in parts_ev):
            self.findings.append(finding(
                "kv-scales-without-config", "k_scale / v_scale tensors ship but the config declares no "
                "KV-cache quantization (they would be ignored)", subject=unit.name))
        if unit.missing:
            self.findings.append(finding(
                "absent-shard", f"declared shard(s) {', '.join(unit.missing)} absent from the checkpoint; "
                f"resolved from {len(unit.parts)} present shard(s)", subject=unit.name))
        return ModuleReport(
            name=unit.name, kind=kind, grouping=unit.grouping,
            algo=resolution.algo if resolution is not None else None,
            rule=resolution.rule if resolution is not None else ("unresolved" if error else None),
            source=(resolution.source.to_json() if resolution is not None and resolution.source is not None
                    else None),
            evidence=_evidence_summary(parts_ev, params, nbytes), parts=len(unit.parts),
            checkpoint_names=() if unit.grouping == "experts" else tuple(c for _, c in unit.parts),
            missing_shards=unit.missing,
            scheme=scheme.summary() if scheme is not None else None,
            params=params, bytes=nbytes, error=error)

    def _check_parts(self, unit: Unit, scheme: QuantScheme | None, parts_ev: list[Evidence]) -> None:
        """One finding per (part, issue): the part's model-space name is the subject (grouped later)."""
        for (model_name, _ckpt), ev in zip(unit.parts, parts_ev, strict=True):
            for code, detail in self._compare(scheme, ev):
                self.findings.append(finding(code, detail, subject=model_name))


def _part_units(units: Iterable[Unit]) -> dict[str, str]:
    """Every unit's name and its parts' model-space names → the unit (for linking findings to modules)."""
    out: dict[str, str] = {}
    for u in units:
        out[u.name] = u.name
        for part, _ in u.parts:
            out.setdefault(part, u.name)
    return out


def audit_checkpoint(path: str | os.PathLike[str], profile: str | os.PathLike[str] | Profile | None = None,
                     *, on_shard: ShardCallback | None = None) -> AuditReport:
    """Audit the checkpoint at ``path`` (directory or single ``.safetensors`` file)."""
    with gc_paused():  # ~10^5 short-lived acyclic objects: collections only cost time here
        return _audit_checkpoint(Path(path), profile, on_shard)


def _audit_checkpoint(path: Path, profile: str | os.PathLike[str] | Profile | None,
                      on_shard: ShardCallback | None) -> AuditReport:
    from quantresolve.formats.loader import load_config

    config = load_config(_root(path) if path.is_file() else path)
    chosen = choose_profile(path, profile)
    catalog = read_checkpoint(path, on_shard=on_shard)
    inventory = build_inventory(catalog)
    evidence = classify_inventory(inventory)
    return audit_inventory(config, inventory, evidence, chosen, checkpoint=str(path),
                           shards=len(catalog.shards), catalog_warnings=catalog.warnings)


def audit_inventory(config: NormalizedConfig, inventory: Inventory, evidence: dict[str, Evidence],
                    profile: Profile, *, checkpoint: str, shards: int,
                    catalog_warnings: Iterable[str] = ()) -> AuditReport:
    """The audit proper, on an already-read inventory (for tests and callers holding one)."""
    auditor = _Auditor(config, inventory, evidence, profile)
    units, dropped = build_units(inventory.modules, profile)
    modules = [auditor.unit_report(u) for u in units]
    findings = [*config.findings, *auditor.resolver.findings, *auditor.findings]
    if not inventory.has_headers:
        findings.append(finding("names-only", "no shard files next to the index: formats are inferred from "
                                "tensor names only; dtypes, shapes, group sizes, parameters and bytes are "
                                "not checked", subject=str(inventory.root)))
    findings.extend(finding("index-mismatch", w) for w in catalog_warnings)
    findings.extend(finding("unmapped-modules", f"profile {profile.name!r} drops this checkpoint module "
                            "(the engine does not build it)", subject=name) for name in dropped)
    if config.kv_cache is not None and not any(m.kind == "attention" for m in modules):
        findings.append(finding("kv-config-without-scales", f"the config declares KV-cache {config.kv_cache.algo} "
                                "but no module carries k_scale / v_scale tensors"))
    model_names = [n for u in units for n, _ in u.parts] + [u.name for u in units]
    live = LiveNames(inventory.modules, model_names, {m.kind for m in modules if m.kind != "other"})
    for code, entry in dead_entries(config, live, profile.mapper):
        what = {"dead-exclude": "exclude entry", "dead-layer": "per-layer entry", "dead-target": "target"}[code]
        findings.append(finding(code, f"{what} matches no module of the checkpoint",
                                subject=entry.original, file=entry.file, field=entry.field))
    return AuditReport(
        checkpoint=checkpoint, producer=config.producer, producer_version=config.producer_version,
        quant_algo=config.quant_algo, kv_cache=config.kv_cache.algo if config.kv_cache is not None else None,
        profile=profile.name, evidence_level="headers" if inventory.has_headers else "names-only",
        shards=shards, tensors=inventory.tensor_count, config_sources=tuple(config.sources),
        modules=modules, coverage=coverage(modules, params_known=inventory.has_headers),
        layer_map=layer_map(modules), findings=group_findings(findings, _part_units(units)))
