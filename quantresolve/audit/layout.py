"""Checkpoint modules → the model's units: mapped names, fused layers, MoE containers.

A *unit* is what the report lists and the resolver answers for: a fused layer
(``qkv_proj`` made of ``q_proj``/``k_proj``/``v_proj``), an MoE container
(``mlp.experts`` holding every expert's projections), or a single module. Each
unit keeps its *parts*: ``(model name, checkpoint name)`` of the modules it
stands for, so evidence can be compared part by part::

    >>> from quantresolve.naming.profiles import load_profile
    >>> units, dropped = build_units(["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj",
    ...                               "model.layers.0.mlp.down_proj"], load_profile("llama"))
    >>> [(u.name, u.grouping, [p for p, _ in u.parts]) for u in units]   # doctest: +NORMALIZE_WHITESPACE
    [('model.layers.0.mlp.down_proj', 'single', ['model.layers.0.mlp.down_proj']),
     ('model.layers.0.self_attn.qkv_proj', 'fused',
      ['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.k_proj'])]
    >>> units[1].missing
    ('v_proj',)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from quantresolve.checkpoint import group_experts, group_fused
from quantresolve.naming.profiles import Profile


@dataclass(frozen=True, slots=True)
class Unit:
    """One model-space unit; ``grouping`` is ``single`` | ``fused`` | ``experts``."""

    name: str
    grouping: str
    parts: tuple[tuple[str, str], ...]
    missing: tuple[str, ...] = ()


def build_units(checkpoint_modules: Iterable[str], profile: Profile) -> tuple[list[Unit], list[str]]:
    """Units sorted by name, and the checkpoint modules the mapper drops (sorted)."""
    mapper = profile.mapper
    to_ckpt: dict[str, str] = {}
    dropped: list[str] = []
    identity = mapper.is_identity
    for ckpt in checkpoint_modules:
        model = ckpt if identity else mapper.map_name(ckpt)
        if model is None:
            dropped.append(ckpt)
        else:
            to_ckpt.setdefault(model, ckpt)
    names = list(to_ckpt)
    units: list[Unit] = []
    claimed: set[str] = set()
    if profile.expert_containers:
        for container in group_experts(names, profile.expert_containers).values():
            members = container.modules
            claimed.update(members)
            units.append(Unit(container.name, "experts", tuple((m, to_ckpt[m]) for m in members)))
    rest = [n for n in names if n not in claimed] if claimed else names
    if profile.packed_modules_mapping:
        for group in group_fused(rest, profile.packed_modules_mapping).values():
            present = [m for m in group.members.values() if m is not None]
            claimed.update(present)
            units.append(Unit(group.name, "fused", tuple((m, to_ckpt[m]) for m in present),
                              group.missing))
    units.extend(Unit(n, "single", ((n, to_ckpt[n]),)) for n in rest if n not in claimed)
    units.sort(key=lambda u: u.name)
    return units, sorted(dropped)
