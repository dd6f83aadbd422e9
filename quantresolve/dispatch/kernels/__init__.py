"""Kernels: the implementations a backend runs, each with the packed layout it reads — nothing else.

Place in the flow: beside :mod:`..activations`, above only :mod:`..numerics` / :mod:`..specs`; a
kernel knows no checkpoint format, codec or layer (the backends turn a layer's integer or FP4 view
into a kernel's operands). Here: our AVX-512 GEMV (C++ source :mod:`.avx512_gemv_src`, loader and
packing :mod:`.avx512_gemv`), the packing for torch's CPU int4 kernel (:mod:`.int4pack`), and our
Triton GEMV / small GEMM (:mod:`.triton_gemv`, :mod:`.triton_dot`, what they share
:mod:`.triton_tiles`) over the layout of :mod:`.gemv_layout` / :mod:`.gemv_formats` with the launch
configurations of :mod:`.gemv_configs`.

The Triton modules import Triton only when it is installed and are imported by their backend only in
``prepare()``, so ``quantresolve.dispatch`` stays importable (and the registry complete) without it.
"""
