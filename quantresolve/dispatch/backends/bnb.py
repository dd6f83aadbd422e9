"""bitsandbytes loading shared by the ``bnb_cpu`` and ``bnb_cuda`` backends (lazy import)."""

from __future__ import annotations

import importlib.util
from typing import Any

import torch

from quantresolve.dispatch.backends.base import ShardGroup
from quantresolve.dispatch.specs import Verdict
from quantresolve.formats.scheme import QuantScheme


def bnb_available() -> Verdict | None:
    if importlib.util.find_spec("bitsandbytes") is None:
        return Verdict.no("unavailable: bitsandbytes is not installed")
    return None


def bnb_scheme(scheme: QuantScheme | None) -> Verdict | None:
    if scheme is None or scheme.algo not in ("BNB_NF4", "BNB_FP4"):
        return Verdict.no("handles bitsandbytes NF4/FP4 only")
    return None


def bnb_prepare(group: ShardGroup) -> Any:
    """Rebuild bitsandbytes ``Linear4bit`` modules from the serialized tensors, one per shard."""
    import bitsandbytes as bnb  # lazy: importing it costs ~1 s

    modules = []
    for shard in group.shards:
        stats = {k: v for k, v in shard.tensors.items() if k != "weight"}
        prefixed = {f"weight.{k[len('weight.'):]}" if k.startswith("weight.") else k: v for k, v in stats.items()}
        layer = bnb.nn.Linear4bit(group.k, shard.n, bias=False, compute_dtype=group.dtype,
                                  quant_type=group.codec.quant_type, device="meta")  # type: ignore[attr-defined]
        layer.weight = bnb.nn.Params4bit.from_prequantized(
            data=shard.tensors["weight"], quantized_stats=prefixed, requires_grad=False, device=group.device)
        layer.eval()
        modules.append(layer)
    return modules


def bnb_apply(state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
    xin = x.to(group.dtype)
    with torch.no_grad():
        outs = [m(xin) for m in state]
    return torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]
