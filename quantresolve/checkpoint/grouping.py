"""Pure grouping of module names into fused layers and MoE expert containers.

Both functions only group names that exist; they never invent a missing
sibling (a fused layer whose shard is absent reports it as absent, field-notes
§4 class 5) and never infer one module's scheme from another's.

Fused layers come from a ``packed_modules_mapping`` ``{fused: [shards]}``.
A module belongs to a fused layer when its name ends with ``.<shard>``; the
fused name replaces that tail with ``.<fused>``. Shard and fused names may
have several components (``linear_proj.merged_proj``). Identity entries
(``{"qkv_proj": ["qkv_proj"]}``) describe checkpoints that are already fused::

    >>> g = group_fused(["m.l.0.attn.q_proj", "m.l.0.attn.k_proj", "m.l.0.mlp.down_proj"],
    ...                 {"qkv_proj": ["q_proj", "k_proj", "v_proj"]})
    >>> g["m.l.0.attn.qkv_proj"].members
    {'q_proj': 'm.l.0.attn.q_proj', 'k_proj': 'm.l.0.attn.k_proj', 'v_proj': None}
    >>> g["m.l.0.attn.qkv_proj"].missing
    ('v_proj',)

Expert containers come from regexes with named groups ``container`` and
``expert`` (and optionally ``proj``); the first regex that matches a module
wins::

    >>> rx = r"^(?P<container>.*\\.mlp\\.experts)\\.(?P<expert>\\d+)\\.(?P<proj>gate_proj|up_proj|down_proj)$"
    >>> c = group_experts(["m.l.3.mlp.experts.10.up_proj", "m.l.3.mlp.experts.2.up_proj"], [rx])
    >>> list(c["m.l.3.mlp.experts"].experts)
    ['2', '10']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import MappingError


@dataclass(frozen=True, slots=True)
class FusedGroup:
    """One fused layer: ``members`` maps each declared shard to the module found, or ``None``."""

    name: str
    fused: str
    members: dict[str, str | None]

    @property
    def present(self) -> tuple[str, ...]:
        return tuple(s for s, m in self.members.items() if m is not None)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(s for s, m in self.members.items() if m is None)


@dataclass(frozen=True, slots=True)
class ExpertContainer:
    """One MoE container: ``experts[expert_id][proj]`` → module name (proj ``""`` if the regex has none)."""

    name: str
    experts: dict[str, dict[str, str]]

    @property
    def modules(self) -> tuple[str, ...]:
        return tuple(m for projs in self.experts.values() for m in projs.values())


def _shard_index(mapping: Mapping[str, Sequence[str]]) -> dict[str, str]:
    owner: dict[str, str] = {}
    for fused, shards in mapping.items():
        for shard in shards:
            if shard in owner and owner[shard] != fused:
                raise MappingError(
                    f"shard {shard!r} is listed under both {owner[shard]!r} and {fused!r}",
                    field="packed_modules_mapping",
                )
            owner[shard] = fused
    return owner


def group_fused(
    module_names: Iterable[str], packed_modules_mapping: Mapping[str, Sequence[str]]
) -> dict[str, FusedGroup]:
    """Group modules into fused layers; keys (fused layer names) sorted, shard order as declared."""
    owner = _shard_index(packed_modules_mapping)
    # Try longer (multi-component) shard names first so "a.b" beats "b".
    shards = sorted(owner, key=lambda s: (-s.count("."), s))
    found: dict[str, dict[str, str]] = {}
    for module in module_names:
        for shard in shards:
            if module == shard or module.endswith("." + shard):
                parent = module[: len(module) - len(shard)].rstrip(".")
                fused = owner[shard]
                name = f"{parent}.{fused}" if parent else fused
                found.setdefault(name, {})[shard] = module
                break
    groups: dict[str, FusedGroup] = {}
    for name in sorted(found):
        hit = found[name]
        fused = next(owner[s] for s in hit)
        members = {s: hit.get(s) for s in packed_modules_mapping[fused]}
        groups[name] = FusedGroup(name, fused, members)
    return groups


def _expert_key(expert: str) -> tuple[int, int | str]:
    return (0, int(expert)) if expert.isdigit() else (1, expert)


def group_experts(
    module_names: Iterable[str], expert_patterns: Sequence[str | re.Pattern[str]]
) -> dict[str, ExpertContainer]:
    """Group modules into MoE containers by regexes with ``container``/``expert`` groups.

    Experts sort numerically when their ids are digits; containers by name.
    """
    compiled = [re.compile(p) if isinstance(p, str) else p for p in expert_patterns]
    for pattern in compiled:
        if not {"container", "expert"} <= pattern.groupindex.keys():
            raise MappingError(
                f"expert pattern {pattern.pattern!r} needs named groups 'container' and 'expert'",
                field="expert_patterns",
            )
    found: dict[str, dict[str, dict[str, str]]] = {}
    for module in module_names:
        for pattern in compiled:
            match = pattern.search(module)
            if match is None:
                continue
            proj = match.groupdict().get("proj") or ""
            found.setdefault(match["container"], {}).setdefault(match["expert"], {})[proj] = module
            break
    return {
        name: ExpertContainer(
            name,
            {e: dict(sorted(found[name][e].items())) for e in sorted(found[name], key=_expert_key)},
        )
        for name in sorted(found)
    }
