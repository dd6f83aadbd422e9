"""Launch configurations of the Triton GEMV: a measured table, and a rule for shapes not in it.

A configuration names the kernel (``fma``: the CUDA-core GEMV of :mod:`.triton_gemv`, one FMA
per weight and row of x; ``dot``: the tensor-core kernel of :mod:`.triton_dot`, whose cost does not
grow with the rows), fixes the tile (``block_n`` rows × ``block_kw`` packed words), the split of K
over a second grid axis (partial sums added atomically into a float32 result), and the warps and
software-pipeline stages. The rule aims at a few waves of programs on the device's SMs: a tall
weight (28672×8192) fills the GPU with row tiles alone, a wide one (8192×28672) or a small one
(4096×4096) needs its K split.

    >>> cfg = choose_config("int4", n=4096, k=4096, m=1, sm_count=132)
    >>> cfg.kernel, cfg.block_n, cfg.block_kw, cfg.split_k
    ('fma', 64, 32, 8)
    >>> choose_config("int4", n=4096, k=4096, m=5, sm_count=132).text()
    'dot-bn32-bkw16-sk5-w4-s2'
    >>> choose_config("int4", n=28672, k=8192, m=1, sm_count=132).split_k  # 448 row tiles
    2
    >>> choose_config("int4", n=8192, k=28672, m=1, sm_count=132).split_k  # 128 row tiles
    5
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

#: Most rows of x the CUDA-core GEMV takes (its accumulators grow with them).
GEMV_MAX_M = 8
#: Most rows of x the packed weight is multiplied with at all (the tensor-core kernel's BLOCK_M);
#: larger batches dequantize row blocks and use the dense matmul.
PACKED_MAX_M = 64


@dataclass(frozen=True)
class GemvConfig:
    """One launch configuration. ``split_k`` 0 = chosen by :func:`split_for` for the device."""

    block_n: int = 64
    block_kw: int = 32
    split_k: int = 0
    num_warps: int = 4
    num_stages: int = 2
    kernel: str = "fma"

    def text(self) -> str:
        return (f"{self.kernel}-bn{self.block_n}-bkw{self.block_kw}-sk{self.split_k or 'auto'}"
                f"-w{self.num_warps}-s{self.num_stages}")


def m_bucket(m: int) -> int:
    """Batches share a configuration per power of two: 1, 2, 4, 8, …, 64."""
    return 1 << max(0, math.ceil(math.log2(max(1, m))))


#: Measured best configurations, ``(format, n, k, m_bucket) → config``: filled from
#: ``benchmarks/gpu_gemv_sweep.py`` on the GPU the numbers came from (empty until measured).
TUNED: dict[tuple[str, int, int, int], GemvConfig] = {}

#: The rule's configuration per batch bucket, before measurement: the CUDA-core GEMV for one row
#: (≈ 4.5 SASS instructions per int4 weight compiled for SM 9.0, against ≈ 8 for the tensor-core
#: kernel's decode and operand shuffle), the tensor-core kernel from two rows on (the GEMV's cost
#: grows by an FMA per weight and row, and its 4-D tiles need layout conversions).
DEFAULT_TILES: dict[int, GemvConfig] = {
    1: GemvConfig(block_n=64, block_kw=32, num_warps=4, num_stages=2),
    **{b: GemvConfig(block_n=32, block_kw=16, num_warps=4, num_stages=2, kernel="dot") for b in (2, 4, 8, 16)},
    32: GemvConfig(block_n=32, block_kw=16, num_warps=4, num_stages=2, kernel="dot"),
    64: GemvConfig(block_n=64, block_kw=16, num_warps=4, num_stages=2, kernel="dot"),
}

#: Programs per SM the split of K aims at (enough resident warps to keep loads in flight).
WAVES = 4


def split_for(n: int, kw: int, block_n: int, block_kw: int, sm_count: int) -> int:
    """Split K so that row tiles × splits reach ``WAVES`` programs per SM, each split ≥ 2 tiles long."""
    row_tiles = math.ceil(n / block_n)
    want = math.ceil(WAVES * sm_count / row_tiles)
    most = max(1, kw // (2 * block_kw))
    return max(1, min(want, most))


def choose_config(fmt: str, n: int, k: int, m: int, sm_count: int, *, kw: int | None = None) -> GemvConfig:
    """The tuned configuration for the shape if measured, else the rule's (split resolved)."""
    bucket = min(m_bucket(m), PACKED_MAX_M)
    cfg = TUNED.get((fmt, n, k, bucket)) or DEFAULT_TILES[bucket]
    if cfg.split_k:
        return cfg
    words = kw if kw is not None else math.ceil(k / (8 if fmt != "int8" else 4))
    return replace(cfg, split_k=split_for(n, words, cfg.block_n, cfg.block_kw, sm_count))
