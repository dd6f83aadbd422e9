"""The backend interface and its registry.

A backend turns one group of loaded shards (fused shards that share an input
transform) into a state with :meth:`Backend.prepare`, and computes
``y = x · Wᵀ`` for them with :meth:`Backend.apply`. :meth:`Backend.supports`
answers, before anything is loaded, whether it can run a scheme at a shape on
a device — with the reason when it cannot.

    >>> [b for b in BACKENDS][:1]
    ['scaled_mm_cuda']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from quantresolve.dispatch.shards import Shard, ShardGroup
from quantresolve.dispatch.specs import DeviceInfo, Shapes, Verdict
from quantresolve.formats.scheme import QuantScheme

__all__ = ["BACKENDS", "Backend", "Shard", "ShardGroup"]


class Backend:
    """Base of every backend. ``name`` is what users force or deny."""

    name: str = ""
    description: str = ""

    def supports(self, device: DeviceInfo, capability: tuple[int, int] | None, shapes: Shapes,
                 scheme: QuantScheme | None) -> Verdict:
        raise NotImplementedError

    def prepare(self, group: ShardGroup) -> Any:
        raise NotImplementedError

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        """``x`` is ``[M, K]`` as given; the result ``[M, n]`` in any float dtype."""
        raise NotImplementedError

    def rebuild(self, state: Any, group: ShardGroup) -> Callable[[], torch.Tensor] | None:
        """A function giving ``group.dense()`` from ``state`` alone, bit for bit — then the layer
        releases the checkpoint tensors after ``finalize()`` instead of holding the weight twice —
        or ``None`` when the state cannot (the tensors are kept)."""
        return None


#: name → backend, in preference order (first supporting backend wins).
BACKENDS: dict[str, Backend] = {}


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Class decorator: instantiate and register in definition order (= preference order)."""
    inst = cls()
    BACKENDS[inst.name] = inst
    return cls


def row_major(x: torch.Tensor) -> torch.Tensor:
    """``x`` with contiguous rows: ``apply`` takes any strided ``[M, K]`` (``x[:, :K]``, a transposed
    view), but the packed-weight kernels index their input as a dense row-major matrix."""
    return x if x.is_contiguous() else x.contiguous()


def needs_cuda(device: DeviceInfo) -> Verdict | None:
    """``None`` when on CUDA, else the 'unavailable' verdict every CUDA backend reports."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return Verdict.no("unavailable: no CUDA device")
    return None


def needs_cpu(device: DeviceInfo) -> Verdict | None:
    return None if device.type == "cpu" else Verdict.no(f"CPU-only kernel (device is {device.type})")


#: Largest expected batch (rows per call, the ``batch`` hint) at which a CPU kernel still beats
#: the dense matmul on the dequantized weight; above it the kernel declines so the dense
#: backend is chosen. Crossovers at 4096×4096 measured on the (busy) 2-core development machine
#: in single-thread CPU time (``benchmarks/linear_backends.py --quick --batches 1,2,4,8,16
#: --threads 1 --clock thread --stat min``): int4pack ≈ dense at 8, int8pack and bitsandbytes
#: lose from 8, int8split (two int4 passes) ≈ dense at 4. Re-measure on an idle machine.
#: avx512_gemv_cpu (wall clock, 2 threads, docs/benchmarks.md): beats int4pack / int8split and
#: dense at batch 1 and 2 at 4096² and 28672×8192; at 3 int4pack wins for int4 (10.6 vs 11.9 ms, session
#: 4) and int8pack for per-channel int8 (12.2 vs 18.5 ms). Group-wise int8 ("avx512_gemv_cpu:int8-group",
#: which int8pack cannot run) still beats dense at 3 (16.7 vs 20.6 ms; 1.35 vs 1.71 at 4096²) and 4
#: (19.5 vs 21.6; a tie at 4096²).
MAX_BATCH: dict[str, int] = {"avx512_gemv_cpu": 2, "avx512_gemv_cpu:int8-group": 4, "int4pack_cpu": 6, "int8pack_cpu": 4, "int8split_cpu": 2, "bnb_cpu": 4,
                             # the Triton GEMV's own limit (kernels/gemv_configs.GEMV_MAX_M), not yet a
                             # measured crossover against cuBLAS on the dequantized weight
                             "triton_gemv_cuda": 8}


def batch_guard(shapes: Shapes, backend: str, kernel: str) -> Verdict | None:
    """Decline a ``batch`` hint above ``MAX_BATCH[backend]``; no hint means small-batch decoding."""
    limit = MAX_BATCH.get(backend)
    if limit is None or shapes.batch is None or shapes.batch <= limit:
        return None
    return Verdict.no(f"batch {shapes.batch} > {limit}: the dense matmul is faster than {kernel} here")


def first_failure(*checks: Callable[[], Verdict | None]) -> Verdict:
    """Run guard thunks in order; the first that returns a verdict decides, else ok."""
    for check in checks:
        verdict = check()
        if verdict is not None:
            return verdict
    return Verdict.yes()
