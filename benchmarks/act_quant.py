"""NVFP4 activation quantisation (W4A4) per call: the old table look-up beside the vectorised quantiser.

For each producer's arithmetic (ModelOpt ``NVFP4QTensor``, compressed-tensors ``forward_quantize``)
and batch (1 and 16 rows of 4096 bf16 activations, as a 4096-wide layer of a bf16 model sees them):
``ActQuant.fake`` now, and the implementation it replaced (kept verbatim as the tests' oracle in
``tests/dispatch/act_nvfp4_oracle.py``), in interleaved rounds so that machine load hits both alike;
the two outputs are checked to be the same bits first. For scale, the same run times a dense bf16
``x @ Wᵀ`` with a 4096×4096 weight (what one such layer's GEMM costs at that batch). One line per row:

    act_quant: arith=A batch=B old_us=X new_us=Y speedup=S dense_4096_us=D

Usage::

    .venv/bin/python benchmarks/act_quant.py [--rounds 40] [--calls 10] [--batches 1,16] [--width 4096] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from quantresolve.dispatch.activations import ActQuant
from tests.dispatch.act_nvfp4_oracle import OLD_NVFP4

ARITHS = ("modelopt", "compressed-tensors")


def nvfp4_act(arith: str, x: torch.Tensor) -> ActQuant:
    """A static NVFP4 activation quantiser calibrated on ``x`` (second-level scale ``amax / (6 · 448)``)."""
    s2 = float(x.float().abs().amax()) / (6 * 448)
    extra = {"global_scale": 1.0 / s2} if arith == "compressed-tensors" else {}
    return ActQuant(kind="nvfp4", granularity="group", group=16, static_scale=s2, arith=arith, **extra)


def per_call_us(fns: dict[str, Callable[[], object]], rounds: int, calls: int) -> dict[str, float]:
    """Median over ``rounds`` interleaved rounds of the mean µs per call over ``calls`` calls."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - start) / calls * 1e6)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}")
    weight = torch.randn(args.width, args.width, dtype=torch.bfloat16)
    print(f"{'arith':<20}{'batch':>6}{'old µs':>10}{'new µs':>10}{'speedup':>9}{'dense µs':>10}")
    for batch in (int(b) for b in args.batches.split(",")):
        x = torch.randn(batch, args.width, generator=torch.Generator().manual_seed(batch)).to(torch.bfloat16)
        for arith in ARITHS:
            act, old = nvfp4_act(arith, x), OLD_NVFP4[arith]
            if not torch.equal(act.fake(x), old(act, x).float()):
                raise SystemExit(f"act_quant: {arith} batch {batch}: the two quantisers differ")
            us = per_call_us({"old": lambda: old(act, x), "new": lambda: act.fake(x),  # noqa: B023
                              "dense": lambda: x @ weight.t()}, args.rounds, args.calls)  # noqa: B023
            print(f"{arith:<20}{batch:>6}{us['old']:>10.0f}{us['new']:>10.0f}{us['old'] / us['new']:>8.1f}×"
                  f"{us['dense']:>10.0f}")
            print(f"act_quant: arith={arith} batch={batch} old_us={us['old']:.1f} new_us={us['new']:.1f} "
                  f"speedup={us['old'] / us['new']:.2f} dense_{args.width}_us={us['dense']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
