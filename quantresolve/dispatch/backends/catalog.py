"""The backends in preference order: the one place that order is stated, and the only importer of the
backend modules.

Selection (:mod:`quantresolve.dispatch.selection`) takes the first backend in :data:`PREFERENCE`
whose guards accept the layer. Only backends of the same device compete, so the order that matters is
within CPU and within CUDA: the specialised kernels first, then bitsandbytes' own, then the two
dequantizing references (any device, any scheme), then our Triton GEMV (CUDA, small batches; not yet
run on a GPU, so forced only), then gemlite (slower than the dequantizing reference where measured).

    >>> list(BACKENDS)[:2], list(BACKENDS)[-2:]
    (['scaled_mm_cuda', 'avx512_gemv_cpu'], ['triton_gemv_cuda', 'gemlite_cuda'])
"""

from quantresolve.dispatch.backends import (  # noqa: F401  (each module registers its backends)
    avx512_gemv,
    bnb,
    float_gemv,
    gemlite,
    int4pack,
    int8pack,
    int_mm,
    reference,
    scaled_mm,
    triton_gemv,
)
from quantresolve.dispatch.backends.base import Backend
from quantresolve.dispatch.backends.registry import in_order

#: Backend names, most preferred first (see the comments for why each sits where it does).
PREFERENCE: tuple[str, ...] = (
    "scaled_mm_cuda",
    # Weight-only kernels first: at small batch they beat torch._int_mm even for W8A8 (with the
    # activation quantization emulated); they decline large batch hints, where int_mm wins.
    # Our AVX-512 GEMV (int4 / int8 codes, batch ≤ 2 by choice) first of all: it beats int8pack on every int8
    # row measured in session 4 (per-channel W8A16, W8A8, INT8_SQ at 4096² and 28672×8192, batch 1 and 2) and
    # int4pack / int8split at batch 1 and 2 (docs/benchmarks.md, "session 4"). It declines where the CPU lacks
    # AVX-512 BF16 or no C++ toolchain is present, and the torch kernels below take over.
    "avx512_gemv_cpu",
    # Our packed float kernels (FP4 / FP8 weights, any batch: GEMV, then tiles into torch.mm); nothing else on
    # CPU runs those formats but the dequantizing references, which hold the dense weight.
    "float_gemv_cpu",
    "int8pack_cpu",
    "int4pack_cpu",
    "int8split_cpu",
    "int_mm_cpu",
    "bnb_cuda",
    "bnb_cpu",
    "dense_dequant",
    "per_call_dequant",
    # Our Triton GEMV (packed 4/8-bit weights, batch ≤ 8) comes after the dequantizing references until it has
    # run on a GPU: it was verified only under Triton's CPU interpreter and compiled offline for sm_90, never
    # executed or timed on a device. Policy (as for gemlite's FP4 paths): an unverified kernel is never chosen
    # automatically; backend="triton_gemv_cuda" forces it. Move it before `dense_dequant` once
    # benchmarks/gpu_gemv_sweep.py and the GPU tests have passed and it beats cuBLAS on the bf16 copy.
    "triton_gemv_cuda",
    # gemlite after dequantize-once + cuBLAS: measured on an H100 (torch 2.11, Triton 3.6, gemlite 0.6.0.post2)
    # its W4A16 batch-1 GEMV at 28672×8192 took 0.31 ms against 0.22 ms for cuBLAS on the dequantized
    # bf16 weight, and its NVFP4 kernels failed to compile; it stays available with backend="gemlite_cuda".
    "gemlite_cuda",
)

#: name → backend, in preference order (first supporting backend wins).
BACKENDS: dict[str, Backend] = in_order(PREFERENCE)
