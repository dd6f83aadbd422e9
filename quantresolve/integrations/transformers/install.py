"""Install the dispatcher's linear methods into the built model and collect the load targets.

For each :class:`~.plan.LayerPlan` whose resolution is quantized,
:func:`quantresolve.dispatch.make_linear` builds the method and it replaces the
``nn.Linear`` at the same module path (a fused plan: the fused layer at the
fused path, a :class:`~.fused.ShardView` at each shard path). Unquantized
layers stay ``nn.Linear`` and are filled like any other dense module. Attention
modules whose KV cache is quantized get a :class:`KVCacheScales`.

The result maps every model-space module path that can receive checkpoint
tensors to its :class:`~.targets.Target`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from quantresolve.dispatch import KVCacheScales, QuantLinear, make_kv_cache_scales, make_linear
from quantresolve.errors import DispatchError
from quantresolve.integrations.transformers.fused import ShardView, SharedOutput
from quantresolve.integrations.transformers.plan import AttentionPlan, LayerPlan
from quantresolve.integrations.transformers.targets import (
    KVTarget,
    ParamTarget,
    QuantTarget,
    Target,
)

#: Attribute under which an attention module carries its KV-cache scales.
KV_ATTR = "kv_cache_scales"


@dataclass
class Installed:
    """What :func:`install` put into the model."""

    targets: dict[str, Target] = field(default_factory=dict)
    layers: dict[str, QuantLinear] = field(default_factory=dict)
    kv: dict[str, KVCacheScales] = field(default_factory=dict)


def set_submodule(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, leaf = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def _shard_label(prefix: str, member: str) -> str:
    """The shard name a fused layer uses for ``member``: its path below the fused layer's parent."""
    base = prefix.rsplit(".", 1)[0] + "." if "." in prefix else ""
    return member[len(base):] if member.startswith(base) else member


def _build(plan: LayerPlan, *, backend: str | None, deny: Sequence[str], dtype: torch.dtype,
           device: str | torch.device) -> QuantLinear:
    out: int | list[int] = list(plan.out_features) if plan.fused else plan.out_features[0]
    shards = [_shard_label(plan.prefix, m) for m in plan.members] if plan.fused else None
    try:
        return make_linear(plan.resolution.scheme, plan.in_features, out, bias=plan.bias, shard_names=shards,
                           backend=backend, deny=deny, dtype=dtype, device=device)
    except DispatchError as err:
        where = plan.prefix if err.field in (None, "scheme") else f"{plan.prefix} ({err.field})"
        raise type(err)(err.detail, file=err.file, field=where) from None


def install(model: nn.Module, layers: Iterable[LayerPlan], attention: Iterable[AttentionPlan], *,
            backend: str | None = None, deny: Sequence[str] = (), dtype: torch.dtype = torch.bfloat16,
            device: str | torch.device = "cpu") -> Installed:
    """Replace quantized linears, attach KV scales, and return every load target by module path."""
    done = Installed()
    for plan in layers:
        if not plan.quantized:
            continue
        layer = _build(plan, backend=backend, deny=deny, dtype=dtype, device=device)
        set_submodule(model, plan.prefix, layer)
        done.layers[plan.prefix] = layer
        if not plan.fused:
            done.targets[plan.prefix] = QuantTarget(layer)
            continue
        shared = SharedOutput(layer)
        for member in plan.members:
            label = _shard_label(plan.prefix, member)
            set_submodule(model, member, ShardView(shared, label))
            done.targets[member] = QuantTarget(layer, label)
    for name, module in model.named_modules():
        if isinstance(module, QuantLinear | ShardView) or name in done.targets:
            continue
        if any(p is not None for p in module._parameters.values()) or module._buffers:
            done.targets[name] = ParamTarget(module, device)
    for att in attention:
        if att.resolution.scheme is None:
            continue
        try:
            scales = make_kv_cache_scales(att.resolution.scheme)
        except DispatchError as err:
            raise type(err)(err.detail, file=err.file, field=att.prefix) from None
        # Not a registered module or parameter: plain floats the attention function reads.
        model.get_submodule(att.prefix).__dict__[KV_ATTR] = scales
        done.kv[att.prefix] = scales
        done.targets[att.prefix] = KVTarget(scales, done.targets.get(att.prefix))
    return done


def check_no_meta(model: nn.Module) -> list[str]:
    """Parameters / buffers still on the meta device (nothing filled them)."""
    names = [n for n, p in model.named_parameters() if p.device.type == "meta"]
    names += [n for n, b in model.named_buffers() if b.device.type == "meta"]
    return names

