"""Launch configurations of the Triton GEMV: a measured table, and a rule for shapes not in it.

A configuration fixes the tile (``block_n`` rows × ``block_kw`` packed words), the split of K over
a second grid axis (partial sums added atomically into a float32 result), and the warps and
software-pipeline stages. The rule aims at a few waves of programs on the device's SMs: a tall
weight (28672×8192) fills the GPU with row tiles alone, a wide one (8192×28672) or a small one
(4096×4096) needs its K split.

    >>> cfg = choose_config("int4", n=4096, k=4096, m=1, sm_count=132)
    >>> cfg.block_n, cfg.block_kw, cfg.split_k
    (64, 32, 8)
    >>> choose_config("int4", n=28672, k=8192, m=1, sm_count=132).split_k  # 448 row tiles
    2
    >>> choose_config("int4", n=8192, k=28672, m=1, sm_count=132).split_k  # 128 row tiles
    5
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Largest batch (rows of x) one GEMV launch takes; larger batches dequantize and use the dense matmul.
GEMV_MAX_M = 8


@dataclass(frozen=True)
class GemvConfig:
    """One launch configuration. ``split_k`` 0 = chosen by :func:`split_for` for the device."""

    block_n: int = 64
    block_kw: int = 32
    split_k: int = 0
    num_warps: int = 4
    num_stages: int = 2

    def text(self) -> str:
        return (f"bn{self.block_n}-bkw{self.block_kw}-sk{self.split_k or 'auto'}-w{self.num_warps}"
                f"-s{self.num_stages}")


def m_bucket(m: int) -> int:
    """Batches share a configuration per power of two: 1, 2, 4, 8."""
    return 1 << max(0, math.ceil(math.log2(max(1, m))))


#: Measured best configurations, ``(format, n, k, m_bucket) → config``: filled from
#: ``benchmarks/gpu_gemv_sweep.py`` on the GPU the numbers came from (empty until measured).
TUNED: dict[tuple[str, int, int, int], GemvConfig] = {}

#: The rule's tiles per batch bucket: more activation rows hold more accumulators per thread,
#: so the tile shrinks as the batch grows (registers, not bandwidth, bound it there).
DEFAULT_TILES: dict[int, GemvConfig] = {
    1: GemvConfig(block_n=64, block_kw=32, num_warps=4, num_stages=2),
    2: GemvConfig(block_n=32, block_kw=32, num_warps=4, num_stages=2),
    4: GemvConfig(block_n=16, block_kw=32, num_warps=4, num_stages=2),
    8: GemvConfig(block_n=16, block_kw=16, num_warps=4, num_stages=2),
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
    bucket = m_bucket(m)
    cfg = TUNED.get((fmt, n, k, bucket)) or DEFAULT_TILES[min(bucket, GEMV_MAX_M)]
    if cfg.split_k:
        return cfg
    words = kw if kw is not None else math.ceil(k / (8 if fmt != "int8" else 4))
    return GemvConfig(cfg.block_n, cfg.block_kw, split_for(n, words, cfg.block_n, cfg.block_kw, sm_count),
                      cfg.num_warps, cfg.num_stages)
