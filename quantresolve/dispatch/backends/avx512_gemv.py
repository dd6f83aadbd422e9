"""``avx512_gemv_cpu``: our AVX-512 weight-only GEMV for int4 / int8 codes, ≤ 4 rows per call (issue #5).

The kernel, its packed layout and its loader are :mod:`quantresolve.dispatch.kernels.avx512_gemv`;
this backend says when it runs (AVX-512 BF16 CPU flags, a C++ toolchain, a kernel group for the
scheme, small batches), repacks a layer's integer view for it at ``finalize()`` and rebuilds the
dense weight from the packed codes. Compilation happens at the first ``prepare()``, never at import;
``supports()`` compiles nothing, and reports a failed compilation's reason once there was one.

    >>> from quantresolve.dispatch.specs import DeviceInfo, Shapes
    >>> from quantresolve.formats.scheme import modelopt_scheme
    >>> _batch_key(8, "group", 128, 4096), _batch_key(8, "channel", None, 4096)
    ('avx512_gemv_cpu:int8-group', 'avx512_gemv_cpu')
"""

from __future__ import annotations

from typing import Any

import torch

from quantresolve.dispatch.backends import needs
from quantresolve.dispatch.backends.base import Ask
from quantresolve.dispatch.backends.inputs import bf16_in, int_kernel_input
from quantresolve.dispatch.backends.int_weights import IntegerKernelBackend
from quantresolve.dispatch.backends.registry import register_backend
from quantresolve.dispatch.codecs.base import IntWeights
from quantresolve.dispatch.kernels import avx512_gemv as kernel
from quantresolve.dispatch.shards import ShardGroup
from quantresolve.dispatch.specs import Verdict


def _shape_fits(ask: Ask) -> Verdict | None:
    w = ask.weights
    assert w is not None  # needs.integer_weights ran first
    if kernel.kernel_group(w.num_bits, w.strategy, w.group_size, ask.shapes.k) is not None:
        return None
    got = f"{w.strategy} {w.group_size or ''}".rstrip()
    need = "32, 64 or a multiple of 128" if w.num_bits <= 4 else "a multiple of 64"
    return Verdict.no(f"needs group size {need} dividing K, or channel scales with K % "
                      f"{32 if w.num_bits <= 4 else 64} == 0 (K={ask.shapes.k}, got {got})")


def _batch_key(bits: int, strategy: str, group_size: int | None, k: int) -> str:
    """The :data:`~.needs.MAX_BATCH` entry: group-wise int8 has its own crossover (no int8pack to yield to)."""
    grouped = strategy == "group" and group_size is not None and group_size < k
    return "avx512_gemv_cpu:int8-group" if bits > 4 and grouped else "avx512_gemv_cpu"


def _batch_entry(ask: Ask) -> str:
    w = ask.weights
    return _batch_key(w.num_bits, w.strategy, w.group_size, ask.shapes.k)  # type: ignore[union-attr]


# The machine's answers are read through the kernel module at call time (tests switch them there).
def _cpu_flags(ask: Ask) -> Verdict | None:
    missing = kernel.missing_cpu_flags()
    return Verdict.no("unavailable: CPU lacks " + ", ".join(missing)) if missing else None


def _toolchain(ask: Ask) -> Verdict | None:
    problem = kernel.toolchain_problem()
    return Verdict.no(f"unavailable: {problem}") if problem else None


def _build_failed(ask: Ask) -> Verdict | None:
    return Verdict.no(f"unavailable: {kernel._BUILD['error'][:200]}") if "error" in kernel._BUILD else None


@register_backend
class Avx512GemvCPU(IntegerKernelBackend):
    """int4 / int8 weight-only GEMV on AVX-512 BF16 (see the module docstring)."""

    name = "avx512_gemv_cpu"
    description = "native AVX-512 BF16 weight-only GEMV (int4 / int8 codes, batch ≤ 2 by choice, any when forced)"
    guards = (needs.cpu, needs.eval_mode("the kernel has no backward"), needs.integer_weights, needs.bits(8),
              _shape_fits, needs.small_batch("the AVX-512 GEMV", key=_batch_entry), _cpu_flags, _toolchain,
              _build_failed)

    def prepare(self, group: ShardGroup) -> Any:
        kernel.kernels()  # compile (or fail with the reason) at finalize(), not on the first forward
        return super().prepare(group)

    def pack(self, view: IntWeights, group: ShardGroup) -> tuple[Any, ...]:
        w = group.codec.scheme.weights
        assert w is not None
        bits = 4 if w.num_bits <= 4 else 8
        g = kernel.kernel_group(bits, w.strategy, w.group_size, group.k)
        assert g is not None and view.group % g == 0
        scale, zero = view.regroup(g)
        zc = None  # int4: the zero points themselves (the kernel's tables); int8: scale · zero
        if zero is not None and bool(view.zero.ne(0).any()):  # type: ignore[union-attr]
            zc = zero if bits == 4 else scale * zero
        # on huge pages: the kernel streams them, and 4 KiB pages made it TLB-bound (kernel source)
        huge = kernel.kernels().huge_empty
        codes = kernel.pack_int4(view.q, huge) if bits == 4 else kernel.pack_int8(view.q, huge)
        return (codes, *kernel.pack_scales(scale, zc, bits, group.k, g), g, bits)

    def codes(self, packed: tuple[Any, ...], group: ShardGroup) -> torch.Tensor:
        codes, bits = packed[0], packed[-1]
        unpack = kernel.unpack_int4 if bits == 4 else kernel.unpack_int8
        return unpack(codes, group.n, group.k)

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        codes, scale, zc, g, bits, _ = state
        xin = bf16_in(int_kernel_input(x, group))
        return kernel.gemv(xin, codes, scale, zc, group.n, group.k, g, bits)
