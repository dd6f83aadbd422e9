"""Tensor names → modules: :func:`build_inventory`.

Every tensor name is split by the suffix registry (:mod:`.suffixes`) into a
module and a parameter; tensors sharing a module are gathered in one
:class:`Module`. gpt-oss (and Llama-4) store all experts of a layer in fused
3-D tensors on the experts module itself (``mlp.experts.gate_up_proj_blocks``,
``mlp.experts.down_proj``): such a module has ``layout="fused-experts"``, its
parameters named after the projections (:data:`~.suffixes.FUSED_EXPERT_PROJECTIONS`)::

    >>> from .catalog import CheckpointCatalog, TensorInfo
    >>> names = ["model.layers.0.mlp.down_proj.weight", "model.layers.0.mlp.down_proj.weight_scale",
    ...          "model.layers.0.mlp.experts.gate_up_proj_blocks", "model.layers.1.mlp.experts.down_proj"]
    >>> cat = CheckpointCatalog(Path("."), {n: TensorInfo(n, None, None, "a", None) for n in names}, False, ("a",))
    >>> inv = build_inventory(cat)
    >>> sorted(inv.modules["model.layers.0.mlp.down_proj"].params)
    ['weight', 'weight_scale']
    >>> [(m.layout, list(m.params), m.unknown_params) for m in
    ...  (inv.modules["model.layers.0.mlp.experts"], inv.modules["model.layers.1.mlp.experts"])]
    [('fused-experts', ['gate_up_proj_blocks'], ()), ('fused-experts', ['down_proj'], ())]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from ..util.gcpause import gc_paused
from .catalog import CheckpointCatalog, TensorInfo
from .suffixes import FUSED_EXPERT_PROJECTIONS, SIMPLE_SUFFIXES, split_parameter

#: The parameters a fused experts module holds: each projection, and its MXFP4 blocks / scales and bias.
FUSED_EXPERT_PARAMS = frozenset(f"{proj}{part}" for proj in FUSED_EXPERT_PROJECTIONS
                                for part in ("", "_blocks", "_scales", "_bias"))


def is_fused_experts(module: str, params: Mapping[str, object] | frozenset[str]) -> bool:
    """An ``...experts`` module whose own parameters are fused projections (``gate_up_proj``, ``..._blocks``)."""
    return (module == "experts" or module.endswith(".experts")) and any(p in FUSED_EXPERT_PARAMS for p in params)


@dataclass(frozen=True, slots=True)
class Module:
    """One module's tensors: ``params`` maps a parameter suffix (``"weight_scale"``) to its tensor.

    ``layout`` is ``"standard"``, or ``"fused-experts"`` for an experts module holding every expert's
    projections in fused tensors; ``unknown_params`` lists parameters no registry rule named (norm extras,
    router biases...).
    """

    name: str
    params: Mapping[str, TensorInfo]
    layout: str = "standard"
    unknown_params: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Inventory:
    """All modules of a checkpoint, sorted by name; ``has_headers`` mirrors the catalog."""

    root: Path
    modules: Mapping[str, Module]
    has_headers: bool = True
    tensor_count: int = 0

    def module_of(self, tensor: str) -> str:
        """The module a tensor name belongs to (pure name arithmetic)."""
        return split_parameter(tensor)[0]


def build_inventory(catalog: CheckpointCatalog) -> Inventory:
    """Group ``catalog``'s tensors into modules (deterministic: modules and params sorted)."""
    with gc_paused():
        return _build_inventory(catalog)


def _build_inventory(catalog: CheckpointCatalog) -> Inventory:
    params: dict[str, dict[str, TensorInfo]] = {}
    unknown: dict[str, list[str]] = {}
    simple = SIMPLE_SUFFIXES
    for name, info in catalog.tensors.items():
        # Fast path: a one-component suffix no longer rule can end with ("weight", "bias", ...).
        head, _, last = name.rpartition(".")
        if head and last in simple:
            module, param, known = head, last, True
        else:
            module, param, known = split_parameter(name)
        bucket = params.get(module)
        if bucket is None:
            bucket = params[module] = {}
        bucket[param] = info
        if not known:
            unknown.setdefault(module, []).append(param)
    modules: dict[str, Module] = {}
    for module in sorted(params):
        bucket = params[module]
        if len(bucket) > 1:
            bucket = dict(sorted(bucket.items()))
        extra = unknown.get(module)
        layout = "standard"
        if is_fused_experts(module, bucket):
            layout = "fused-experts"
            extra = [p for p in extra or () if p not in FUSED_EXPERT_PARAMS]
        modules[module] = Module(
            module, MappingProxyType(bucket), layout, tuple(sorted(extra)) if extra else ()
        )
    return Inventory(catalog.root, modules, catalog.has_headers, len(catalog.tensors))
