"""Backends in preference order: the import order below *is* the registry's order.

Only backends of the same device compete, so the order that matters is within
CPU and within CUDA: the specialised kernels first, then bitsandbytes' own,
then the two dequantizing references (any device, any scheme), then our Triton
GEMV (CUDA, small batches; not yet run on a GPU, so forced only — see below), then
gemlite (slower than the dequantizing reference where measured; see below).
"""

from quantresolve.dispatch.backends import scaled_mm  # noqa: F401  scaled_mm_cuda

# Weight-only kernels first: at small batch they beat torch._int_mm even for W8A8 (with the
# activation quantization emulated); they decline large batch hints, where int_mm wins.
# Our AVX-512 GEMV (int4 / int8 codes, batch ≤ 2 by choice) first of all: it beats int8pack on every int8
# row measured in session 4 (per-channel W8A16, W8A8, INT8_SQ at 4096² and 28672×8192, batch 1 and 2) and
# int4pack / int8split at batch 1 and 2 (docs/benchmarks.md, "session 4"). It declines where the CPU lacks
# AVX-512 BF16 or no C++ toolchain is present, and the torch kernels below take over.
from quantresolve.dispatch.backends import avx512_gemv  # noqa: F401  avx512_gemv_cpu  isort: skip
from quantresolve.dispatch.backends import int8pack  # noqa: F401  int8pack_cpu  isort: skip
from quantresolve.dispatch.backends import int4pack  # noqa: F401  int4pack_cpu, int8split_cpu  isort: skip
from quantresolve.dispatch.backends import int_mm  # noqa: F401  int_mm_cpu  isort: skip
from quantresolve.dispatch.backends import bnb  # noqa: F401  bnb_cuda, bnb_cpu  isort: skip
from quantresolve.dispatch.backends import reference  # noqa: F401  isort: skip

# Our Triton GEMV (packed 4/8-bit weights, batch ≤ 8) comes after the dequantizing references until it has
# run on a GPU: it was verified only under Triton's CPU interpreter and compiled offline for sm_90, never
# executed or timed on a device. Policy (as for gemlite's FP4 paths): an unverified kernel is never chosen
# automatically; backend="triton_gemv_cuda" forces it. Move it before `reference` once
# benchmarks/gpu_gemv_sweep.py and the GPU tests have passed and it beats cuBLAS on the bf16 copy.
from quantresolve.dispatch.backends import triton_gemv  # noqa: F401  triton_gemv_cuda  isort: skip

# gemlite after dequantize-once + cuBLAS: measured on an H100 (torch 2.11, Triton 3.6, gemlite 0.6.0.post2)
# its W4A16 batch-1 GEMV at 28672×8192 took 0.31 ms against 0.22 ms for cuBLAS on the dequantized
# bf16 weight, and its NVFP4 kernels failed to compile; it stays available with backend="gemlite_cuda".
from quantresolve.dispatch.backends import gemlite  # noqa: F401  gemlite_cuda  isort: skip
from quantresolve.dispatch.backends.base import BACKENDS, Backend, Shard, ShardGroup  # isort: skip

__all__ = ["BACKENDS", "Backend", "Shard", "ShardGroup"]
