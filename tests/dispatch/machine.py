"""Whether this machine runs ``avx512_gemv_cpu``, and switches that make a test see either kind of CPU.

Auto selection on a CPU depends on the machine: with AVX-512 BF16 and a C++ toolchain the AVX-512 GEMV
comes first for int4 / int8 codes, elsewhere torch's int4pack / int8pack kernels do. Tests about those
kernels' own selection run ``as_cpu(monkeypatch, avx512=False)``; ``supports()`` compiles nothing.

    >>> isinstance(AVX512_GEMV, bool)
    True
"""

from __future__ import annotations

from typing import Any

import pytest

from quantresolve.dispatch.backends import needs
from quantresolve.dispatch.kernels import avx512_gemv, float_gemv

#: True when the AVX-512 GEMV can run here (CPU flags and toolchain present).
AVX512_GEMV = not avx512_gemv.missing_cpu_flags() and avx512_gemv.toolchain_problem() is None
#: True when the packed float kernels (``float_gemv_cpu``: AVX2 + FMA + F16C and a toolchain) can run here.
FLOAT_GEMV = float_gemv.unavailable() is None


def as_cpu(monkeypatch: pytest.MonkeyPatch, *, avx512: bool, dense_native: bool = True) -> None:
    """Make ``supports()`` answer as on a CPU with (or without) the AVX-512 GEMV's flags and a toolchain,
    whose dense bf16 / fp16 matmul is native (``dense_native``, the machines the batch crossovers of
    ``backends/needs.py`` were measured on) or emulated."""
    monkeypatch.setattr(avx512_gemv, "missing_cpu_flags", lambda: () if avx512 else ("avx512_bf16",))
    monkeypatch.setattr(avx512_gemv, "toolchain_problem", lambda: None)
    native_dense(monkeypatch, dense_native)


def native_dense(monkeypatch: pytest.MonkeyPatch, native: bool = True) -> None:
    """Make the guards see a CPU whose dense 16-bit matmul is native, with AVX-512 BF16 (or neither)."""
    flags = frozenset().union(*needs.NATIVE_DENSE_FLAGS.values()) if native else frozenset()
    monkeypatch.setattr(needs, "cpu_flags", lambda: flags)


def check_machine_guard(monkeypatch: pytest.MonkeyPatch, kernel: Any, backend: str, scheme: Any, patch: str,
                        value: Any, words: str) -> None:
    """A native kernel module's machine guards (``missing_cpu_flags``, ``toolchain_problem``) as data: with
    both clear and no build tried, ``backend`` accepts ``scheme``; with ``patch`` answering ``value`` it
    declines, its reason naming ``words``."""
    from quantresolve.dispatch import BACKENDS, DeviceInfo, Shapes

    monkeypatch.setattr(kernel, "missing_cpu_flags", lambda: ())
    monkeypatch.setattr(kernel, "toolchain_problem", lambda: None)
    monkeypatch.setattr(kernel, "_BUILD", {})
    ask = lambda: BACKENDS[backend].supports(DeviceInfo(), None, Shapes(64, 256), scheme)  # noqa: E731
    assert ask().ok
    monkeypatch.setattr(kernel, patch, lambda: value)
    verdict = ask()
    assert not verdict.ok and words in verdict.reason, verdict.reason
