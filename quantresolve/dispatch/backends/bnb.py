"""``bnb_cpu`` and ``bnb_cuda``: bitsandbytes' own kernels (lazy import).

Both backends share :class:`BitsandbytesBackend` and differ only in their
``guards`` (CPU: N % 32 == 0 and even K for 4-bit, eval mode, small batches).
What runs depends on the layer's format:

- NF4 / FP4: one bitsandbytes ``Linear4bit`` per shard, rebuilt from the
  serialized tensors (bitsandbytes' fused 4-bit GEMV on CPU and CUDA);
- LLM.int8: bitsandbytes' int8 ops exactly as ``Linear8bitLt`` runs them in
  eval mode — int8 rows with the outlier columns above the scheme's threshold
  in 16 bits (:mod:`..activations.bitsandbytes`) — so the output is bitsandbytes' own, bit for bit.

    >>> from quantresolve.formats.scheme import bnb_scheme
    >>> sorted(FORMATS), bnb_format_of(bnb_scheme("BNB_INT8")).name
    (['BNB_FP4', 'BNB_INT8', 'BNB_NF4'], 'llm_int8')
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch

from quantresolve.dispatch.backends import needs
from quantresolve.dispatch.backends.base import Ask, Backend
from quantresolve.dispatch.backends.inputs import row_major
from quantresolve.dispatch.backends.registry import register_backend
from quantresolve.dispatch.shards import ShardGroup, share_rows
from quantresolve.dispatch.specs import Shapes, Verdict
from quantresolve.formats.scheme import QuantScheme

__all__ = ["FORMATS", "bnb_format_of"]


def bnb_available(ask: Ask) -> Verdict | None:
    if importlib.util.find_spec("bitsandbytes") is None:
        return Verdict.no("unavailable: bitsandbytes is not installed")
    return None


class BnBFormat:
    """How one bitsandbytes format is loaded into and run by bitsandbytes."""

    name = ""

    def cpu_guard(self, shapes: Shapes) -> Verdict | None:
        """The CPU kernel's shape condition (``None`` = fine)."""
        return None

    def prepare(self, group: ShardGroup) -> Any:
        raise NotImplementedError

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        raise NotImplementedError


class FourBit(BnBFormat):
    """NF4 / FP4: ``Linear4bit`` modules from the serialized quant state, one per shard."""

    name = "4bit"

    def cpu_guard(self, shapes: Shapes) -> Verdict | None:
        sizes = shapes.shard_sizes or (shapes.n,)
        if any(n % 32 for n in sizes):  # the CPU GEMV asserts otherwise
            return Verdict.no(f"needs N % 32 == 0 (N={list(sizes) if shapes.shard_sizes else shapes.n})")
        if shapes.k % 2:
            return Verdict.no(f"needs even K (K={shapes.k})")
        if "avx512_bf16" not in needs.cpu_flags():  # bitsandbytes registers its fused CPU GEMV only then
            return Verdict.no("bitsandbytes' fused CPU 4-bit GEMV needs AVX-512 BF16, which this CPU lacks "
                              "(without it each call dequantizes the weight: 15x slower than dense_dequant on AVX2)")
        return None

    def prepare(self, group: ShardGroup) -> Any:
        import bitsandbytes as bnb  # lazy: importing it costs ~1 s

        modules = []
        for shard in group.shards:
            stats = {k: v for k, v in shard.tensors.items() if k != "weight"}
            layer = bnb.nn.Linear4bit(group.k, shard.n, bias=False, compute_dtype=group.dtype,
                                      quant_type=group.codec.quant_type, device="meta")  # type: ignore[attr-defined]
            layer.weight = bnb.nn.Params4bit.from_prequantized(
                data=shard.tensors["weight"], quantized_stats=stats, requires_grad=False, device=group.device)
            layer.eval()
            modules.append(layer)
        return modules

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        xin = x.to(group.dtype)
        outs = [m(xin) for m in state]
        return torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]


class LLMInt8(BnBFormat):
    """LLM.int8 through bitsandbytes' registered int8 ops (CPU: ``torch._int_mm`` inside)."""

    name = "llm_int8"

    def prepare(self, group: ShardGroup) -> Any:
        import bitsandbytes  # noqa: F401  (registers torch.ops.bitsandbytes)

        cb = torch.cat([s.tensors["weight"] for s in group.shards]).contiguous()
        share_rows(group, cb)  # dequantize() reads the same int8 rows: held once
        scb = torch.cat([s.tensors["SCB"].float().reshape(-1) for s in group.shards]).contiguous()
        act = group.transform.act
        threshold = float(act.threshold or 0.0) if act is not None else 0.0
        return cb, scb, threshold

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        cb, scb, threshold = state
        ops = torch.ops.bitsandbytes
        codes, row_stats, outlier_cols = ops.int8_vectorwise_quant.default(x.to(torch.float16), threshold)
        if threshold > 0.0:
            out, _ = ops.int8_mixed_scaled_mm.default(x, codes, cb, row_stats, scb, outlier_cols, None)
            return out
        return ops.int8_scaled_mm.default(codes, cb, row_stats, scb, bias=None, dtype=x.dtype)


#: scheme algo → bitsandbytes format.
FORMATS: dict[str, BnBFormat] = {"BNB_NF4": FourBit(), "BNB_FP4": FourBit(), "BNB_INT8": LLMInt8()}


def bnb_format_of(scheme: QuantScheme | None) -> BnBFormat | None:
    return FORMATS.get(scheme.algo) if scheme is not None and scheme.producer == "bitsandbytes" else None


def bnb_format_guard(ask: Ask) -> Verdict | None:
    if bnb_format_of(ask.scheme) is None:
        return Verdict.no("handles bitsandbytes NF4/FP4/LLM.int8 only")
    return None


class BitsandbytesBackend(Backend):
    """prepare/apply of every bitsandbytes backend; subclasses give ``name`` and ``guards``."""

    def prepare(self, group: ShardGroup) -> Any:
        fmt = bnb_format_of(group.codec.scheme)
        assert fmt is not None  # supports() admitted only bitsandbytes schemes
        return fmt, fmt.prepare(group)

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        fmt, inner = state
        return fmt.apply(inner, row_major(x), group)


def _cpu_kernel_shape(ask: Ask) -> Verdict | None:
    return bnb_format_of(ask.scheme).cpu_guard(ask.shapes)  # type: ignore[union-attr]  (bnb_format_guard ran first)


@register_backend
class BnBCUDA(BitsandbytesBackend):
    """bitsandbytes on CUDA: its 4-bit kernels (NF4/FP4) and its LLM.int8 ops."""

    name = "bnb_cuda"
    description = "bitsandbytes CUDA kernels (4-bit, LLM.int8)"
    guards = (needs.cuda, bnb_format_guard, bnb_available)


@register_backend
class BnBCPU(BitsandbytesBackend):
    """bitsandbytes on CPU: its fused 4-bit GEMV (NF4/FP4) and its LLM.int8 ops."""

    name = "bnb_cpu"
    description = "bitsandbytes CPU kernels (4-bit GEMV, LLM.int8)"
    guards = (needs.cpu, bnb_format_guard, bnb_available, _cpu_kernel_shape,
              needs.eval_mode("bitsandbytes' CPU inference path; the 4-bit kernel rewrites weights on first forward"),
              needs.small_batch("bitsandbytes"))
