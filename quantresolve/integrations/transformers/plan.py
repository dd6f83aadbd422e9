"""What to install where: every linear of the built model resolved at its own prefix.

:func:`plan_layers` walks the model once and asks the resolver about

- every ``nn.Linear`` (kind ``lm_head`` for the model's output embedding, else
  ``linear``); with a fused profile, the declared packed groups (``qkv_proj`` ←
  ``q_proj``/``k_proj``/``v_proj``) whose shards all exist become one fused
  layer resolved at the fused name — so the resolver's shard-agreement rules
  apply exactly as a fused engine would see them;
- every attention module (class name ending in ``Attention``, the transformers
  convention) for its KV-cache scheme.

A layer is unquantized only when the resolver says so, by a named rule.

    >>> from quantresolve.resolve.resolution import Resolution
    >>> p = LayerPlan("model.layers.0.mlp.up_proj", "linear",
    ...               Resolution("model.layers.0.mlp.up_proj", "linear", None, "excluded"),
    ...               ("model.layers.0.mlp.up_proj",), 64, (128,), False)
    >>> p.quantized, p.fused
    (False, False)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import nn
from transformers import PreTrainedModel

from quantresolve.errors import LoadError
from quantresolve.resolve.packed import shard_names
from quantresolve.resolve.resolution import Resolution
from quantresolve.resolve.resolver import Resolver


@dataclass(frozen=True)
class LayerPlan:
    """One linear method to install: at ``prefix``, replacing the model's ``members`` (one, or the shards)."""

    prefix: str
    kind: str
    resolution: Resolution
    members: tuple[str, ...]
    in_features: int
    out_features: tuple[int, ...]
    bias: bool

    @property
    def quantized(self) -> bool:
        return self.resolution.quantized

    @property
    def fused(self) -> bool:
        return self.members != (self.prefix,)


@dataclass(frozen=True)
class AttentionPlan:
    """An attention module and its KV-cache resolution."""

    prefix: str
    resolution: Resolution


def _linears(model: nn.Module) -> dict[str, nn.Linear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear) and name}


def _fused_groups(linears: Mapping[str, nn.Linear], packed: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Fused name → shard paths, for every declared packed key whose shards are all linears of one input size."""
    groups: dict[str, list[str]] = {}
    if not packed:
        return groups
    parents = {name.rsplit(".", 1)[0] for name in linears if "." in name}
    for parent in sorted(parents):
        for key in packed:
            fused = f"{parent}.{key}"
            shards = shard_names(fused, packed)
            if not shards or fused in linears or not all(s in linears for s in shards):
                continue
            if len({linears[s].in_features for s in shards}) != 1:
                continue
            if len({linears[s].bias is not None for s in shards}) != 1:
                raise LoadError(f"shards {shards} of fused layer {fused} disagree on bias", field=fused)
            groups[fused] = shards
    return groups


def _is_attention(module: nn.Module) -> bool:
    return type(module).__name__.endswith("Attention")


def plan_layers(model: PreTrainedModel, resolver: Resolver) -> tuple[list[LayerPlan], list[AttentionPlan]]:
    """Resolve every linear (fused per the resolver's profile) and every attention module of ``model``."""
    linears = _linears(model)
    head = model.get_output_embeddings()
    groups = _fused_groups(linears, resolver.profile.packed_modules_mapping)
    in_group = {s for shards in groups.values() for s in shards}
    plans: list[LayerPlan] = []
    for fused, shards in groups.items():
        first = linears[shards[0]]
        plans.append(LayerPlan(fused, "linear", resolver.resolve(fused, "linear"), tuple(shards),
                               first.in_features, tuple(linears[s].out_features for s in shards),
                               first.bias is not None))
    for name, lin in linears.items():
        if name in in_group:
            continue
        kind = "lm_head" if lin is head else "linear"
        plans.append(LayerPlan(name, kind, resolver.resolve(name, kind), (name,), lin.in_features,
                               (lin.out_features,), lin.bias is not None))
    attention = [AttentionPlan(name, resolver.resolve(name, "attention"))
                 for name, m in model.named_modules() if name and _is_attention(m)]
    plans.sort(key=lambda p: p.prefix)
    return plans, attention
