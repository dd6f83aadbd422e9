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

Every model can be audited: a checkpoint without a quantization config is a dense model
("nothing quantized", every module rule ``no-config``); without shard headers the
module list comes from the index (``names-only``) or, with no index either, from the
model ``config.json`` describes (``config-only``), and the parameter counts and bytes
from its shapes when the caller passes a :data:`~quantresolve.checkpoint.shapes.ShapeProvider`
(the CLI passes transformers' meta-device build; this layer imports no torch).

Refused up front (a :class:`~quantresolve.errors.QuantResolveError`, exit 2 in the
CLI): a config outside scope, a hostile or unreadable checkpoint::

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
from quantresolve.audit.sizing import Sizer
from quantresolve.checkpoint import (
    CheckpointCatalog,
    Evidence,
    Inventory,
    Location,
    build_inventory,
    classify_inventory,
    read_checkpoint,
)
from quantresolve.checkpoint.evidence import classify_config_only
from quantresolve.checkpoint.shapes import ModelShapes, ShapeProvider, ShapesUnavailable
from quantresolve.errors import (
    NoQuantizationConfigError,
    NoTensorFilesError,
    ResolutionError,
)
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


def _evidence_summary(parts: list[Evidence], shapes: str | None) -> dict[str, Any]:
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
        "shapes": shapes,
    }


class _Auditor:
    """One audit run's state (kept private: the public API is :func:`audit_checkpoint`)."""

    def __init__(self, config: NormalizedConfig | None, inventory: Inventory, evidence: dict[str, Evidence],
                 profile: Profile, sizer: Sizer, *, config_only: bool = False) -> None:
        self.config = config
        self.inventory = inventory
        self.evidence = evidence
        self.profile = profile
        self.sizer = sizer
        # Config-only, the module list is the model's, not the checkpoint's: the resolver must not take it
        # for the checkpoint's (which shards of a fused layer, which experts exist) — nothing was read.
        known = None if config_only else list(inventory.modules)
        self.resolver = (Resolver(config, profile, checkpoint_modules=known) if config is not None else None)
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
        if self.resolver is None:  # no quantization config: every module runs as stored
            return Resolution(unit.name, kind, None, "no-config", None,
                              ("no-config: the checkpoint has no quantization config; nothing is quantized",)), None
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
        sizes = [self.sizer.size(ckpt, self.inventory.modules[ckpt], e, scheme)
                 for (_, ckpt), e in zip(unit.parts, parts_ev, strict=True)]
        params, nbytes = sum(p for p, _, _ in sizes), sum(b for _, b, _ in sizes)
        sources = {src for _, _, src in sizes}
        shapes = sources.pop() if len(sources) == 1 else None
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
            evidence=_evidence_summary(parts_ev, shapes), parts=len(unit.parts),
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


def audit_checkpoint(path: str | os.PathLike[str] | Location,
                     profile: str | os.PathLike[str] | Profile | None = None,
                     *, on_shard: ShardCallback | None = None, shapes: ShapeProvider | None = None) -> AuditReport:
    """Audit the checkpoint at ``path`` (directory or single ``.safetensors`` file), or at a
    :class:`~quantresolve.checkpoint.locate.Location` (a cached or remote repository).

    ``shapes`` gives parameter shapes from ``config.json`` when no shard header does (index-only or
    config-only folders); without it those audits report names only."""
    where = path if isinstance(path, Location) else Location(os.fspath(path), "local", Path(path))
    with gc_paused():  # ~10^5 short-lived acyclic objects: collections only cost time here
        return _audit_checkpoint(where, profile, on_shard, shapes)


def _load_config_or_none(root: Path) -> NormalizedConfig | None:
    """The quantization config, or ``None`` when the checkpoint has none (a dense model)."""
    from quantresolve.formats.loader import load_config

    try:
        return load_config(root)
    except NoQuantizationConfigError:
        return None


def _model_shapes(provider: ShapeProvider | None, root: Path) -> tuple[ModelShapes | None, str | None]:
    if provider is None:
        return None, "no shape provider was given (the command line passes transformers' meta-device build)"
    try:
        return provider(root), None
    except ShapesUnavailable as why:
        return None, str(why)


def _audit_checkpoint(where: Location, profile: str | os.PathLike[str] | Profile | None,
                      on_shard: ShardCallback | None, provider: ShapeProvider | None) -> AuditReport:
    path = where.path
    config = _load_config_or_none(_root(path))
    chosen = choose_profile(path, profile)
    try:
        catalog: CheckpointCatalog | None = read_checkpoint(path, on_shard=on_shard, shards=where.shards)
    except NoTensorFilesError:
        if not (_root(path) / "config.json").is_file():
            raise  # not even a config: nothing to audit
        catalog = None  # config.json alone: the model it describes is the inventory
    shapes, no_shapes = (None, None) if catalog is not None and catalog.has_headers else \
        _model_shapes(provider, _root(path))
    level = "headers" if catalog is not None and catalog.has_headers else "names-only"
    if catalog is None:
        level = "config-only"
        catalog = shapes.catalog(_root(path)) if shapes is not None else CheckpointCatalog(_root(path), {}, False, ())
    inventory = build_inventory(catalog)
    evidence = classify_config_only(inventory) if level == "config-only" else classify_inventory(inventory)
    return audit_inventory(config, inventory, evidence, chosen, checkpoint=where.display,
                           shards=len(catalog.shards), catalog_warnings=catalog.warnings,
                           location=where.to_json(), evidence_level=level, shapes=shapes, no_shapes=no_shapes)


def _evidence_findings(level: str, sizer: Sizer, shapes: ModelShapes | None, no_shapes: str | None,
                       root: str) -> list[Finding]:
    """What the audit could not see, said once: reduced evidence, where shapes came from, what lacks one."""
    out = []
    sizes = (f"parameters from {shapes.source} (meta device, no weights allocated); bytes estimated from each "
             "module's scheme" if shapes is not None else
             f"parameters and bytes unknown: {no_shapes}")
    if level == "names-only":
        out.append(finding("names-only", "no shard files next to the index: formats are inferred from tensor names "
                           f"only; dtypes, shapes and group sizes are not checked; {sizes}", subject=root))
    elif level == "config-only":
        what = (f"modules from {shapes.source}" if shapes is not None
                else "no module list: neither an index nor the model's shapes are available")
        out.append(finding("config-only", "no index and no shard files: nothing but config.json was read; "
                           f"{what}; tensor formats and dead config entries are not checked; {sizes}",
                           subject=root))
    built_by = f"the model {shapes.source} builds" if shapes is not None else "the model"
    out.extend(finding("unsized-modules", f"a checkpoint module with a weight that is not in {built_by}: its "
                       "parameters and bytes are not counted", subject=name) for name in sizer.unsized)
    return out


def audit_inventory(config: NormalizedConfig | None, inventory: Inventory, evidence: dict[str, Evidence],
                    profile: Profile, *, checkpoint: str, shards: int,
                    catalog_warnings: Iterable[str] = (), location: dict[str, Any] | None = None,
                    evidence_level: str | None = None, shapes: ModelShapes | None = None,
                    no_shapes: str | None = None) -> AuditReport:
    """The audit proper, on an already-read inventory (for tests and callers holding one).

    ``config=None`` audits a model without quantization config (nothing quantized)."""
    level = evidence_level or ("headers" if inventory.has_headers else "names-only")
    sizer = Sizer(inventory.has_headers, shapes)
    auditor = _Auditor(config, inventory, evidence, profile, sizer, config_only=level == "config-only")
    units, dropped = build_units(inventory.modules, profile)
    modules = [auditor.unit_report(u) for u in units]
    resolver_findings = auditor.resolver.findings if auditor.resolver is not None else []
    findings = [*(config.findings if config is not None else ()), *resolver_findings, *auditor.findings]
    if config is None:
        findings.append(finding("no-quantization-config", "no quantization config (config.json has no "
                                "quantization_config and no producer's own config file is present): nothing is "
                                f"quantized; {len(modules)} module(s) inventoried", subject=str(inventory.root)))
    findings.extend(_evidence_findings(level, sizer, shapes, no_shapes, str(inventory.root)))
    findings.extend(finding("index-mismatch", w) for w in catalog_warnings)
    findings.extend(finding("unmapped-modules", f"profile {profile.name!r} drops this checkpoint module "
                            "(the engine does not build it)", subject=name) for name in dropped)
    if (config is not None and config.kv_cache is not None and level != "config-only"
            and not any(m.kind == "attention" for m in modules)):  # config-only: no tensor to carry them
        findings.append(finding("kv-config-without-scales", f"the config declares KV-cache {config.kv_cache.algo} "
                                "but no module carries k_scale / v_scale tensors"))
    # Dead entries are judged against the checkpoint's own modules; config-only, the module list is the model
    # transformers builds (no MTP layers, say), which would call live entries dead.
    if config is not None and level != "config-only":
        model_names = [n for u in units for n, _ in u.parts] + [u.name for u in units]
        live = LiveNames(inventory.modules, model_names, {m.kind for m in modules if m.kind != "other"})
        for code, entry in dead_entries(config, live, profile.mapper):
            what = {"dead-exclude": "exclude entry", "dead-layer": "per-layer entry", "dead-target": "target"}[code]
            findings.append(finding(code, f"{what} matches no module of the checkpoint",
                                    subject=entry.original, file=entry.file, field=entry.field))
    return AuditReport(
        checkpoint=checkpoint, producer=config.producer if config is not None else None,
        producer_version=config.producer_version if config is not None else None,
        quant_algo=config.quant_algo if config is not None else None,
        kv_cache=config.kv_cache.algo if config is not None and config.kv_cache is not None else None,
        profile=profile.name, evidence_level=level,
        shards=shards, tensors=inventory.tensor_count if level != "config-only" else 0,
        config_sources=tuple(config.sources) if config is not None else (),
        modules=modules, coverage=coverage(modules, params_known=sizer.source is not None),
        layer_map=layer_map(modules), findings=group_findings(findings, _part_units(units)),
        location=location if location is not None else Location(checkpoint, "local", Path(checkpoint)).to_json(),
        shapes={"source": sizer.source, "detail": shapes.source if shapes is not None else no_shapes})
