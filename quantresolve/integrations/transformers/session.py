"""One load in progress: a built model, its layers resolved and installed, every tensor routed — then fed, then finished.

Both ways into a quantized model share it, so they build the same model bit for bit:

- :func:`~.api.load_quantized` builds the architecture itself and streams the checkpoint's tensors
  with its own reader (quantized layers first, :mod:`.layer_completion`);
- transformers' ``from_pretrained`` (:mod:`.hf_quantizer`) builds it, and its own loader reads the
  tensors: the dense ones go to the model's parameters by their names, the quantized ones to
  :meth:`LoadSession.receive`.

The three steps:

1. :func:`prepare` — on the model as built (parameters on the meta device): replace MoE experts
   modules with one linear per expert projection, choose the naming profile, resolve every linear
   and KV cache, install the dispatcher's linear methods, and route every checkpoint tensor to its
   target before any data is read (a tensor nothing consumes is an error naming it);
2. :meth:`LoadSession.receive` — one checkpoint tensor into its target; a quantized layer is
   finalized the moment its last tensor arrives;
3. :meth:`LoadSession.finish` — tie what the config ties, refuse anything left unfilled, finalize
   the layers not yet finalized, apply KV-cache scales, attach ``model.quantresolve_report``.

    >>> session = prepare("fixtures/checkpoints/ct-w4a16", model, None)                  # doctest: +SKIP
    >>> for route in session.routes.routes: session.receive(route, read(route))          # doctest: +SKIP
    >>> session.finish().counts()                                                          # doctest: +SKIP
    {'W4A16 / int4pack_cpu': 14, 'unquantized / dense': 1}
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import PreTrainedModel

from quantresolve.checkpoint import Inventory, build_inventory, read_checkpoint
from quantresolve.dispatch import QuantLinear
from quantresolve.errors import LoadError, QuantResolveError
from quantresolve.formats.loader import load_config
from quantresolve.formats.normalized import NormalizedConfig
from quantresolve.integrations.preflight import check_layer_counts, stack_depth
from quantresolve.integrations.transformers.config import read_config_json
from quantresolve.integrations.transformers.expert_containers import (
    resolve_experts,
    stacked_targets,
    unfuse_experts,
    with_expert_containers,
)
from quantresolve.integrations.transformers.experts import QuantExperts
from quantresolve.integrations.transformers.ignored import ignored_on_load, split_ignored
from quantresolve.integrations.transformers.install import Installed, check_no_meta, install
from quantresolve.integrations.transformers.kv_attention import apply_fp8_kv
from quantresolve.integrations.transformers.layer_completion import LayerCompletion, quantized_first
from quantresolve.integrations.transformers.memory import release_freed_memory
from quantresolve.integrations.transformers.plan import LayerPlan, plan_layers
from quantresolve.integrations.transformers.profile_choice import ProfileChoice, choose_profile
from quantresolve.integrations.transformers.report import DENSE, KVRecord, LayerRecord, LoadReport
from quantresolve.integrations.transformers.route import Route, RoutePlan, plan_routes
from quantresolve.integrations.transformers.targets import ParamTarget
from quantresolve.integrations.transformers.tying import (
    check_tied_layers,
    tie_parameters,
    tied_parameters,
)
from quantresolve.naming.profiles import Profile
from quantresolve.resolve.resolution import Resolution
from quantresolve.resolve.resolver import Resolver
from quantresolve.util.memory import check_fits_in_memory

#: How many names an error message lists before "and N more".
SHOWN = 8


def names_line(names: list[str]) -> str:
    """The first :data:`SHOWN` names, comma-separated, and how many more."""
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def read_inventory(root: Path) -> Inventory:
    """The checkpoint's tensor catalogue from its headers, sizes checked before anything is built or allocated."""
    catalog = read_checkpoint(root)
    if not catalog.has_headers:
        raise LoadError("the index names shard files that are not present: no tensor data to load",
                        file=str(root))
    # config.json's layer counts against the checkpoint's own stacks, the tensors' bytes against
    # the memory available now.
    check_layer_counts(read_config_json(root), stack_depth(catalog.tensors))
    check_fits_in_memory(catalog.total_bytes, what="the checkpoint's tensors", field=None, file=str(root))
    return build_inventory(catalog)


def _finalize_layer(prefix: str, layer: QuantLinear) -> None:
    try:
        layer.finalize()
    except QuantResolveError as err:
        raise type(err)(err.detail, file=err.file, field=prefix) from None
    release_freed_memory()  # the repack's transient buffers, before the next layer's


@dataclass
class LoadSession:
    """What :func:`prepare` built and routed; fed by :meth:`receive`, closed by :meth:`finish`."""

    root: Path
    model: PreTrainedModel
    inventory: Inventory
    choice: ProfileChoice
    resolver: Resolver
    plans: list[LayerPlan]
    installed: Installed
    routes: RoutePlan
    ignored: list[str]
    tied: dict[str, str]
    experts: dict[str, QuantExperts]
    moe: list[Resolution]
    completion: LayerCompletion = field(init=False)

    def __post_init__(self) -> None:
        quantized, _ = quantized_first(self.routes.routes, self.installed.targets)
        self.completion = LayerCompletion(quantized, self.installed.targets, self.installed.layers)

    def receive(self, route: Route, tensor: torch.Tensor) -> None:
        """Load one checkpoint tensor into its target; finalize its layer once the layer is complete."""
        try:
            self.installed.targets[route.module].load(route.suffix, tensor)
        except LoadError as err:
            raise LoadError(err.detail, file=route.file, field=route.tensor) from None
        if (prefix := self.completion.arrived(route)) is not None:
            _finalize_layer(prefix, self.installed.layers[prefix])
            self.completion.finalized.add(prefix)

    def _check_filled(self, dense: bool) -> None:
        """Refuse tensors nothing filled; ``dense=False`` when the caller's loader filled the plain parameters."""
        missing = [f"{path}.{suffix}" for path, target in self.installed.targets.items()
                   if not self.completion.finalized_target(path) and (dense or not isinstance(target, ParamTarget))
                   for suffix in target.missing()]
        if dense:
            missing += [n for n in check_no_meta(self.model) if n not in missing]
        if missing:
            raise LoadError(f"{len(missing)} model tensor(s) that the checkpoint does not provide: "
                            f"{names_line(sorted(set(missing)))}", field="checkpoint")

    def finish(self, *, dense: bool = True) -> LoadReport:
        """Tie, check, finalize the rest, apply KV scales; attach and return the report.

        ``dense=False``: the plain parameters were filled (and tied) by another loader — transformers'
        — which :func:`unfilled_parameters` checked before it read anything.
        """
        if dense:
            tie_parameters(self.tied, self.installed.targets, dict(self.model.named_parameters(remove_duplicate=False)))
        self._check_filled(dense)
        for prefix, layer in self.installed.layers.items():
            if prefix not in self.completion.finalized:
                _finalize_layer(prefix, layer)
        for scales in self.installed.kv.values():
            scales.finalize()
        applied = bool(self.installed.kv) and bool(apply_fp8_kv(self.model))
        report = self._report(applied)
        self.model.__dict__["quantresolve_report"] = report
        return report

    def _report(self, applied: bool) -> LoadReport:
        config: NormalizedConfig = self.resolver.config
        report = LoadReport(checkpoint=str(self.root), profile=self.choice.profile.name, producer=config.producer,
                            quant_algo=config.quant_algo, profile_reason=self.choice.reason)
        for plan in self.plans:
            layer = self.installed.layers.get(plan.prefix)
            res = plan.resolution
            report.layers.append(LayerRecord(plan.prefix, plan.kind, res.algo, res.rule,
                                             layer.backend if layer is not None else DENSE, plan.members,
                                             res.scheme.summary() if res.scheme is not None else None))
        for prefix, scales in self.installed.kv.items():
            report.kv_cache.append(KVRecord(prefix, scales.scheme.algo or "FP8", scales.k_scale, scales.v_scale,
                                            applied))
        report.dropped = self.routes.dropped
        report.ignored = self.ignored
        report.notes += [f"{r.prefix}: {self.experts[r.prefix].num_experts} experts "
                         f"({self.experts[r.prefix].replaces}), {r.algo or 'unquantized'} by rule {r.rule!r}"
                         for r in self.moe]
        return report


def prepare(root: Path, model: PreTrainedModel, given: Profile | None, *, qconfig: NormalizedConfig | None = None,
            inventory: Inventory | None = None, backend: str | None = None, deny: Iterable[str] = (),
            dtype: torch.dtype = torch.bfloat16, device: str | torch.device = "cpu") -> LoadSession:
    """Resolve, install and route the checkpoint at ``root`` into ``model`` (built, parameters on meta).

    ``qconfig`` / ``inventory``: the checkpoint's config and tensor catalogue when the caller read
    them already (before building the model), else read here.
    """
    qconfig = qconfig if qconfig is not None else load_config(root)
    inventory = inventory if inventory is not None else read_inventory(root)
    experts = unfuse_experts(model)  # MoE experts modules → one linear per expert projection
    # the modules the model class declares it does not load take no part in deriving the names
    loadable, _ = split_ignored(inventory.modules, ignored_on_load(model))
    choice = choose_profile(given, model, loadable, experts)
    chosen = choice.profile
    if experts:  # the profile learns where the model's expert containers are
        chosen = with_expert_containers(chosen, experts)
    resolver = Resolver(qconfig, chosen, checkpoint_modules=inventory.modules.keys())
    moe = resolve_experts(resolver, experts)  # one scheme per container, or ConflictingExpertsError
    plans, attention = plan_layers(model, resolver)
    tied = tied_parameters(model)
    present = {m for n in inventory.modules if (m := chosen.mapper.map_name(n)) is not None}
    check_tied_layers(tied, plans, present)
    installed = install(model, plans, attention, backend=backend, deny=tuple(deny), dtype=dtype, device=device)
    installed.targets.update(stacked_targets(experts, installed.targets))  # gpt-oss: experts stacked per projection
    routes = plan_routes(inventory, chosen.mapper, installed.targets)
    unconsumed, ignored = split_ignored(routes.unconsumed, ignored_on_load(model))
    if unconsumed:
        raise LoadError(f"{len(unconsumed)} checkpoint tensor(s) that nothing in the model consumes: "
                        f"{names_line(unconsumed)}", file=str(root))
    return LoadSession(root, model, inventory, ProfileChoice(chosen, choice.reason), resolver, plans, installed, routes,
                       ignored, tied, experts, moe)


__all__ = ["SHOWN", "LoadSession", "names_line", "prepare", "read_inventory"]
