"""Checkpoint tensor → (model module, suffix): decided for every tensor before any data is read.

The checkpoint's inventory already splits each tensor name into a module and a
parameter suffix with the producers' suffix registry (so
``...down_proj.weight.absmax`` is module ``...down_proj``, suffix
``weight.absmax``, and ModelOpt's ``...k_proj.k_scale`` belongs to the
attention module). The module is mapped into the model's namespace with the
profile's mapper and looked up among the load targets. A parameter the
registry does not know (``A_log``, a norm's extra) falls back to the longest
dotted module prefix that has a target.

Outcomes: a :class:`Route`; *dropped* when the profile's mapper drops the name
(the model has no such module — a nameable rule); otherwise *unconsumed*, which
the loader turns into a :class:`~quantresolve.errors.LoadError` naming it.

    >>> from quantresolve.checkpoint import build_inventory
    >>> from quantresolve.checkpoint.catalog import CheckpointCatalog, TensorInfo
    >>> from quantresolve.naming.mapper import WeightsMapper
    >>> names = ["a.weight", "a.weight_scale", "b.weight"]
    >>> cat = CheckpointCatalog(".", {n: TensorInfo(n, "F32", (1,), "m.safetensors", 4) for n in names}, True,
    ...                         ("m.safetensors",))
    >>> class T:
    ...     def accepts(self, suffix): return suffix == "weight"
    >>> plan = plan_routes(build_inventory(cat), WeightsMapper(), {"a": T()})
    >>> [(r.tensor, r.module, r.suffix) for r in plan.routes], plan.unconsumed
    ([('a.weight', 'a', 'weight')], ['a.weight_scale', 'b.weight'])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from quantresolve.checkpoint import Inventory
from quantresolve.integrations.transformers.targets import Target
from quantresolve.naming.mapper import WeightsMapper


@dataclass(frozen=True, slots=True)
class Route:
    """One checkpoint tensor's destination: the model-space module path and the suffix it loads under."""

    tensor: str
    file: str
    module: str
    suffix: str


@dataclass
class RoutePlan:
    routes: list[Route] = field(default_factory=list)
    unconsumed: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def _fallback(tensor: str, mapper: WeightsMapper, targets: Mapping[str, Target]) -> tuple[str, str] | None:
    """Longest dotted prefix of ``tensor`` whose mapped module has a target accepting the rest."""
    parts = tensor.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module = mapper.map_name(".".join(parts[:i]))
        suffix = ".".join(parts[i:])
        target = targets.get(module) if module is not None else None
        if target is not None and target.accepts(suffix):
            return module, suffix  # type: ignore[return-value]
    return None


def plan_routes(inventory: Inventory, mapper: WeightsMapper, targets: Mapping[str, Target]) -> RoutePlan:
    """Route every tensor of ``inventory`` (sorted by name) to a target, or list it as dropped / unconsumed."""
    plan = RoutePlan()
    for name, module in inventory.modules.items():
        mapped = mapper.map_name(name)
        for suffix, info in module.params.items():
            if mapped is None:
                plan.dropped.append(info.name)
                continue
            target = targets.get(mapped)
            if target is not None and target.accepts(suffix):
                plan.routes.append(Route(info.name, info.file, mapped, suffix))
                continue
            hit = _fallback(info.name, mapper, targets) if suffix in module.unknown_params else None
            if hit is not None:
                plan.routes.append(Route(info.name, info.file, hit[0], hit[1]))
            else:
                plan.unconsumed.append(info.name)
    plan.unconsumed.sort()
    return plan
