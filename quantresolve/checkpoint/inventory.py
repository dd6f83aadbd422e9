"""Tensor names → modules: :func:`build_inventory`.

Every tensor name is split by the suffix registry (:mod:`.suffixes`) into a
module and a parameter; tensors sharing a module are gathered in one
:class:`Module`. Layouts the registry must not split are claimed first by
:data:`UNSUPPORTED_LAYOUTS` and kept whole (their own module, parameter
``""``, ``layout="unsupported"``): GPT-OSS stores all experts of a layer as
fused 3-D tensors (``mlp.experts.gate_up_proj_blocks``), which no per-expert
linear name describes::

    >>> from .catalog import CheckpointCatalog, TensorInfo
    >>> names = ["model.layers.0.mlp.down_proj.weight", "model.layers.0.mlp.down_proj.weight_scale",
    ...          "model.layers.0.mlp.experts.gate_up_proj_blocks"]
    >>> cat = CheckpointCatalog(Path("."), {n: TensorInfo(n, None, None, "a", None) for n in names}, False, ("a",))
    >>> inv = build_inventory(cat)
    >>> sorted(inv.modules["model.layers.0.mlp.down_proj"].params)
    ['weight', 'weight_scale']
    >>> inv.modules["model.layers.0.mlp.experts.gate_up_proj_blocks"].layout
    'unsupported'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ..util.gcpause import gc_paused
from .catalog import CheckpointCatalog, TensorInfo
from .suffixes import SIMPLE_SUFFIXES, split_parameter


@dataclass(frozen=True, slots=True)
class UnsupportedLayout:
    """A tensor-name pattern kept whole instead of split into module + parameter."""

    name: str
    pattern: re.Pattern[str]
    reason: str


#: Layouts with no per-module linear structure, checked before suffix stripping.
UNSUPPORTED_LAYOUTS: tuple[UnsupportedLayout, ...] = (
    UnsupportedLayout(
        "fused-experts",
        re.compile(
            r"\.experts\.(?:gate_up_proj|down_proj|gate_proj|up_proj)(?:_blocks|_scales|_bias)?$"
        ),
        "all experts fused into one 3-D tensor (GPT-OSS style); no per-expert linear names",
    ),
)


@dataclass(frozen=True, slots=True)
class Module:
    """One module's tensors: ``params`` maps a parameter suffix (``"weight_scale"``) to its tensor.

    ``layout`` is ``"standard"``, or ``"unsupported"`` for tensors kept whole;
    ``unknown_params`` lists parameters no registry rule named (norm extras, router biases...).
    """

    name: str
    params: Mapping[str, TensorInfo]
    layout: str = "standard"
    unknown_params: tuple[str, ...] = ()
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Inventory:
    """All modules of a checkpoint, sorted by name; ``has_headers`` mirrors the catalog."""

    root: Path
    modules: Mapping[str, Module]
    has_headers: bool = True
    tensor_count: int = 0
    unsupported: tuple[str, ...] = field(default=())

    def module_of(self, tensor: str) -> str:
        """The module a tensor name belongs to (pure name arithmetic)."""
        module, _, known = split_parameter(tensor)
        return tensor if not known and _unsupported_reason(tensor) is not None else module


def _unsupported_reason(name: str) -> str | None:
    for layout in UNSUPPORTED_LAYOUTS:
        if layout.pattern.search(name):
            return layout.reason
    return None


def build_inventory(catalog: CheckpointCatalog) -> Inventory:
    """Group ``catalog``'s tensors into modules (deterministic: modules and params sorted)."""
    with gc_paused():
        return _build_inventory(catalog)


def _build_inventory(catalog: CheckpointCatalog) -> Inventory:
    params: dict[str, dict[str, TensorInfo]] = {}
    unknown: dict[str, list[str]] = {}
    unsupported: dict[str, str] = {}
    simple = SIMPLE_SUFFIXES
    for name, info in catalog.tensors.items():
        # Fast path: a one-component suffix no longer rule can end with ("weight", "bias", ...).
        head, _, last = name.rpartition(".")
        if head and last in simple:
            module, param, known = head, last, True
        else:
            module, param, known = split_parameter(name)
            if not known and (reason := _unsupported_reason(name)) is not None:
                unsupported[name] = reason
                params.setdefault(name, {})[""] = info
                continue
        bucket = params.get(module)
        if bucket is None:
            bucket = params[module] = {}
        bucket[param] = info
        if not known:
            unknown.setdefault(module, []).append(param)
    modules: dict[str, Module] = {}
    for module in sorted(params):
        bucket = params[module]
        if module in unsupported:
            modules[module] = Module(
                module, MappingProxyType(bucket), "unsupported", (), unsupported[module]
            )
            continue
        if len(bucket) > 1:
            bucket = dict(sorted(bucket.items()))
        extra = unknown.get(module)
        modules[module] = Module(
            module, MappingProxyType(bucket), "standard", tuple(sorted(extra)) if extra else ()
        )
    return Inventory(
        catalog.root, modules, catalog.has_headers, len(catalog.tensors), tuple(sorted(unsupported))
    )
