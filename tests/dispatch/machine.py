"""Whether this machine runs ``avx512_gemv_cpu``, and switches that make a test see either kind of CPU.

Auto selection on a CPU depends on the machine: with AVX-512 BF16 and a C++ toolchain the AVX-512 GEMV
comes first for int4 / int8 codes, elsewhere torch's int4pack / int8pack kernels do. Tests about those
kernels' own selection run ``as_cpu(monkeypatch, avx512=False)``; ``supports()`` compiles nothing.

    >>> isinstance(AVX512_GEMV, bool)
    True
"""

from __future__ import annotations

import pytest

from quantresolve.dispatch.kernels import avx512_gemv

#: True when the AVX-512 GEMV can run here (CPU flags and toolchain present).
AVX512_GEMV = not avx512_gemv.missing_cpu_flags() and avx512_gemv.toolchain_problem() is None


def as_cpu(monkeypatch: pytest.MonkeyPatch, *, avx512: bool) -> None:
    """Make ``supports()`` answer as on a CPU with (or without) AVX-512 BF16 and a toolchain."""
    monkeypatch.setattr(avx512_gemv, "missing_cpu_flags", lambda: () if avx512 else ("avx512_bf16",))
    monkeypatch.setattr(avx512_gemv, "toolchain_problem", lambda: None)
