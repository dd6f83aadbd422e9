"""What backends need, as :data:`~.base.Guard` values for a backend's ``guards`` tuple.

Read qualified, as the backends use them: ``needs.cpu``, ``needs.integer_weights``,
``needs.bits(4)``, ``needs.small_batch("int4pack")``. Each guard takes the :class:`~.base.Ask` and
returns ``None`` (fine) or the declining verdict; factories build a guard from their arguments.
Guards particular to one backend live in its own module. :data:`MAX_BATCH` holds the measured
batch crossovers of the CPU kernels.

    >>> from quantresolve.dispatch.backends.base import Ask
    >>> from quantresolve.dispatch.specs import DeviceInfo, Shapes
    >>> from quantresolve.formats.scheme import bnb_scheme, modelopt_scheme
    >>> ask = Ask("int4pack_cpu", DeviceInfo(), None, Shapes(64, 256, batch=7, dtype="float32"),
    ...           modelopt_scheme("W4A16_AWQ"))
    >>> integer_weights(ask) is None, bits(8, least=5)(ask).reason
    (True, 'needs 5..8-bit weights, got 4')
    >>> small_batch("int4pack")(ask).reason
    'batch 7 > 6: the dense matmul is faster than int4pack here'
    >>> integer_weights(Ask("x", DeviceInfo(), None, Shapes(64, 256), bnb_scheme("BNB_NF4"))).reason
    'handles integer weights only (BNB_NF4 is nf4)'
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from quantresolve.dispatch.backends.base import Ask, Guard
from quantresolve.dispatch.codecs.registry import codec_overrides
from quantresolve.dispatch.kernels.native import read_cpu_flags
from quantresolve.dispatch.specs import Verdict
from quantresolve.formats.scheme import QuantScheme


def cuda(ask: Ask) -> Verdict | None:
    """The 'unavailable' verdict every CUDA backend reports off CUDA (or without a CUDA device)."""
    if ask.device.type != "cuda" or not torch.cuda.is_available():
        return Verdict.no("unavailable: no CUDA device")
    return None


def cpu(ask: Ask) -> Verdict | None:
    return None if ask.device.type == "cpu" else Verdict.no(f"CPU-only kernel (device is {ask.device.type})")


def eval_mode(why: str) -> Guard:
    """Decline a layer built for training (``why``: what breaks in training)."""
    return lambda ask: Verdict.no(f"needs eval mode ({why})") if ask.device.training else None


def capability(least: tuple[int, int]) -> Guard:
    """Decline a CUDA compute capability below ``least`` (or unknown)."""
    def guard(ask: Ask) -> Verdict | None:
        if ask.capability is not None and ask.capability >= least:
            return None
        return Verdict.no(f"needs compute capability ≥ {least[0]}.{least[1]}, got {ask.capability}")
    return guard


def k_multiple(of: int) -> Guard:
    """Decline in_features K that are not a multiple of ``of``."""
    return lambda ask: None if ask.shapes.k % of == 0 else Verdict.no(f"needs K % {of} == 0 (K={ask.shapes.k})")


def has_int_view(scheme: QuantScheme) -> bool:
    """True when the scheme's codec can give integer codes (it overrides ``int_weights``)."""
    return codec_overrides(scheme, "int_weights")


def integer_weights(ask: Ask) -> Verdict | None:
    """Integer weights (with an integer view) and group or channel scales."""
    scheme = ask.scheme
    if scheme is None or scheme.weights is None:
        return Verdict.no("handles integer-quantized weights only (layer is dense)")
    if scheme.weights.type != "int" or not has_int_view(scheme):
        return Verdict.no(f"handles integer weights only ({scheme.algo} is {scheme.weights.type})")
    if scheme.weights.strategy not in ("group", "channel"):
        return Verdict.no(f"needs group or channel weight scales, got {scheme.weights.strategy}")
    return None


def bits(most: int, least: int = 1) -> Guard:
    """Weights of ``least..most`` bits (after :func:`integer_weights`)."""
    def guard(ask: Ask) -> Verdict | None:
        n = ask.weights.num_bits  # type: ignore[union-attr]
        if least <= n <= most:
            return None
        need = f"≤ {most}" if least <= 1 else f"{least}..{most}"
        return Verdict.no(f"needs {need}-bit weights, got {n}")
    return guard


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


#: CPU flags (``/proc/cpuinfo`` spelling) under which the dense matmul in a 16-bit dtype is native; without
#: them it runs by conversion to float32 (e.g. on AVX2 bf16 4096² at batch 16 took 50 ms against
#: int4pack's 15 ms, docs/benchmarks.md), so the crossovers of :data:`MAX_BATCH` do not hold.
NATIVE_DENSE_FLAGS: dict[str, frozenset[str]] = {
    "bfloat16": frozenset({"avx512_bf16", "amx_bf16"}),
    "float16": frozenset({"avx512_fp16", "amx_fp16"}),
}


@functools.cache
def cpu_flags() -> frozenset[str]:
    """This CPU's flags (``/proc/cpuinfo`` spelling), read once."""
    return read_cpu_flags()


def dense_is_native(dtype: str) -> bool:
    """Whether this CPU runs the dense matmul in ``dtype`` natively (float32 always; bf16 / fp16 with
    one of :data:`NATIVE_DENSE_FLAGS`)."""
    flags = NATIVE_DENSE_FLAGS.get(dtype)
    return flags is None or bool(flags & cpu_flags())


def small_batch(kernel: str, key: Callable[[Ask], str] | None = None) -> Guard:
    """Decline a ``batch`` hint above ``MAX_BATCH[key(ask)]`` (default: the backend's name); no hint
    means small-batch decoding. ``kernel`` names the kernel in the reason. The crossovers were measured
    where the dense matmul is native: on a CPU where it is emulated (:func:`dense_is_native`) the packed
    kernel stays ahead at every batch, and this guard declines nothing."""
    def guard(ask: Ask) -> Verdict | None:
        limit = MAX_BATCH.get(key(ask) if key is not None else ask.backend)
        batch = ask.shapes.batch
        if limit is None or batch is None or batch <= limit:
            return None
        if ask.device.type == "cpu" and not dense_is_native(ask.shapes.dtype):
            return None
        return Verdict.no(f"batch {batch} > {limit}: the dense matmul is faster than {kernel} here")
    return guard
