"""What our native CPU kernels share: the machine's CPU flags, the C++ toolchain probe, a lazy once-per-process
build, and the huge-page buffer their packed weights live in.

Each native kernel (:mod:`.avx512_gemv`, :mod:`.float_gemv`) is C++ compiled on first use by
:func:`torch.utils.cpp_extension.load_inline` (cached in torch's extensions directory). :func:`build` compiles
one extension at most once per process and remembers a failure (the compiler's message, never retried);
:func:`toolchain_problem` says, without compiling, why nothing can be built here (asked once per process:
``supports()`` runs for every layer a model builds, and probing ninja spawns a process). :func:`read_cpu_flags`
reads ``/proc/cpuinfo`` (each kernel caches what it needs of it). :data:`HUGE_EMPTY` is the C++ of a buffer
on transparent huge pages that every native extension compiles in: streaming a packed weight through 4 KiB
pages made the AVX-512 GEMV TLB-bound (7.9 ms against 5.6 ms at 28672×8192, docs/benchmarks.md).

Place in the flow: the bottom of the kernels package; it imports torch only (lazily, for the build).

    >>> state = {"error": "no compiler"}
    >>> try:
    ...     build(state, "x", "", [], [], label="x")
    ... except Exception as e:
    ...     print(type(e).__name__)
    BackendUnavailableError
    >>> isinstance(read_cpu_flags(), frozenset)
    True
"""

from __future__ import annotations

import functools
import os
import shutil
from typing import Any

from quantresolve.errors import BackendUnavailableError

__all__ = ["HUGE_EMPTY", "build", "read_cpu_flags", "toolchain_problem"]


def read_cpu_flags() -> frozenset[str]:
    """The flags of ``/proc/cpuinfo``'s first ``flags`` line (empty when it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            line = next((ln for ln in f if ln.startswith("flags")), "")
    except OSError:
        return frozenset()
    return frozenset(line.partition(":")[2].split())


@functools.cache
def toolchain_problem() -> str | None:
    """Why no native kernel can be compiled here (no C++ compiler, no ninja), or ``None``."""
    cxx = os.environ.get("CXX", "c++")
    if shutil.which(cxx) is None:
        return f"no C++ compiler on PATH ({cxx})"
    from torch.utils.cpp_extension import is_ninja_available

    return None if is_ninja_available() else "ninja is not installed (torch's extension builder needs it)"


def build(state: dict[str, Any], name: str, source: str, functions: list[str], cflags: list[str], *,
          label: str) -> Any:
    """The extension ``name`` compiled from ``source``, built on the first call; ``state`` (a module's own
    dict) remembers the module or the failure, so a failed build is re-raised as a
    :class:`BackendUnavailableError` ("``label`` failed: ``the compiler's message``") and never retried in this
    process."""
    if "module" in state:
        return state["module"]
    if "error" not in state:
        try:
            from torch.utils.cpp_extension import load_inline

            state["module"] = load_inline(name, cpp_sources=[source], functions=functions, extra_cflags=cflags,
                                          extra_ldflags=["-fopenmp"], verbose=False)
            return state["module"]
        except Exception as e:  # compiler / linker / import errors alike: the reason is in the text
            state["error"] = " ".join(str(e).split())[-600:]
    raise BackendUnavailableError(f"{label} failed: {state['error']}", field="backend")


#: C++ (inside an anonymous-namespace-free translation unit) of ``huge_empty(nbytes)``: a uint8 buffer on 2 MiB
#: aligned memory advised for transparent huge pages before its first touch (THP is "madvise" on many systems,
#: so torch's own large allocations get 4 KiB pages). A refused madvise leaves ordinary pages: slower, correct.
HUGE_EMPTY = r"""
torch::Tensor huge_empty(int64_t nbytes) {
  const size_t align = size_t(2) << 20, size = (size_t(std::max<int64_t>(nbytes, 1)) + align - 1) / align * align;
  void* p = std::aligned_alloc(align, size);
  TORCH_CHECK(p != nullptr, "huge_empty: cannot allocate ", size, " bytes");
  madvise(p, size, MADV_HUGEPAGE);
  return torch::from_blob(p, {nbytes}, [](void* q) { std::free(q); }, torch::TensorOptions().dtype(torch::kUInt8));
}
"""
