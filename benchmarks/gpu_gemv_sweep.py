"""Sweep the Triton GEMV's launch configurations on a GPU: correctness, time, bandwidth, best per shape.

    PYTHONPATH=. python benchmarks/gpu_gemv_sweep.py                # W4A16 g128 + NVFP4A16, 3 shapes, batch 1/4/8
    PYTHONPATH=. python benchmarks/gpu_gemv_sweep.py --quick        # fewer configurations (≈ 1 minute)
    PYTHONPATH=. python benchmarks/gpu_gemv_sweep.py --formats w4a16 --shapes 8192x28672 --batches 1
    PYTHONPATH=. python benchmarks/gpu_gemv_sweep.py --cpu-check --quick   # no GPU: the logic, interpreted

Needs only torch, Triton, pydantic and this repository: the weights are random but valid
checkpoint tensors of compressed-tensors W4A16 (int4, group 128, bf16 scales) and NVFP4A16
(E2M1, E4M3 scales per 16, float32 global scale), built through quantresolve's own codecs and
repacked by the backend's ``prepare()`` exactly as a loaded layer is.

For every format × shape (N×K) × batch, every configuration (kernel: ``fma`` CUDA-core GEMV or
``dot`` tensor cores; tile rows ``bn``, tile words ``bkw``, K splits ``sk``, warps, pipeline stages) is first checked against ``x · Wᵀ`` on the
float32 dequantized weight (relative error ≤ 1e-2, flagged ``WRONG`` otherwise), then timed on enough copies of the weight to
stream ≥ 2× the L2 per round: ``ms`` is the GPU time per call from a CUDA graph of 64 back-to-back
calls (launch overhead excluded: what the kernel streams), ``eager_ms`` the same calls launched from
Python (what a decode step without graphs sees). Bandwidth counts the bytes the kernel reads —
packed codes and scales as stored (bf16 / E4M3) — and ``hbm_pct`` divides by the device's peak (by
name, as in ``linear_backends.py``, or ``--hbm-gbps``). Baselines per row: cuBLAS on the
dequantized bf16 weight (what ``dense_dequant`` runs) and the whole layer call with the built-in
configuration. The end prints the best configuration per row and a ``TUNED`` table to paste into
``quantresolve/dispatch/kernels/gemv_configs.py``. One line per measurement::

    gpu_gemv_sweep: fmt=w4a16 shape=28672x8192 batch=1 cfg=fma-bn64-bkw32-sk2-w4-s2 ms=0.0612 eager_ms=0.0700 gbps=1950 hbm_pct=58 err=3e-07
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from linear_backends import _fill, hbm_gbps, rotation  # the sibling benchmark's helpers

from quantresolve.dispatch import BACKENDS, make_linear
from quantresolve.dispatch.backends.triton_gemv import kernel_launcher, sm_count
from quantresolve.dispatch.kernels.gemv_configs import (
    GemvConfig,
    choose_config,
    m_bucket,
    split_for,
)
from quantresolve.formats.scheme import QuantArgs, QuantScheme

#: The formats of issue 5's goal, as compressed-tensors writes them (no compressed-tensors import).
FORMATS: dict[str, QuantScheme] = {
    "w4a16": QuantScheme(algo="W4A16", producer="compressed-tensors", format="pack-quantized",
                         weights=QuantArgs(num_bits=4, type="int", strategy="group", group_size=128)),
    "nvfp4a16": QuantScheme(algo="NVFP4A16", producer="compressed-tensors", format="nvfp4-pack-quantized",
                            weights=QuantArgs(num_bits=4, type="float", strategy="tensor_group", group_size=16,
                                              scale_dtype="float8_e4m3fn")),
}
#: The goal's row (8192×28672, batch 1) first: if the time budget runs out, the rest is skipped.
SHAPES = [(8192, 28672), (28672, 8192), (4096, 4096)]
BATCHES = [1, 4, 8]

#: Tiles tried per batch bucket: (kernel, block_n, block_kw, num_warps, num_stages) — ``fma`` the
#: CUDA-core GEMV, ``dot`` the tensor-core kernel. Each is compiled once per format and bucket
#: (seconds, cached by Triton on disk for the next run); splits of K are a run-time argument, tried
#: per shape: none, the built-in rule's, and twice that.
TILES: dict[int, list[tuple[str, int, int, int, int]]] = {
    1: [("fma", 64, 32, 4, 2), ("fma", 64, 32, 4, 1), ("dot", 32, 16, 4, 2), ("fma", 64, 32, 4, 3),
        ("fma", 128, 32, 4, 2), ("fma", 128, 32, 8, 2), ("fma", 64, 64, 4, 2), ("fma", 32, 32, 4, 2),
        ("fma", 256, 32, 8, 2), ("fma", 64, 16, 4, 2), ("dot", 64, 32, 4, 2)],
    4: [("dot", 32, 16, 4, 2), ("fma", 16, 32, 4, 2), ("dot", 64, 16, 4, 2), ("dot", 32, 32, 4, 2),
        ("dot", 32, 16, 4, 3), ("dot", 64, 32, 8, 2), ("dot", 16, 16, 4, 2), ("fma", 32, 16, 4, 2)],
    8: [("dot", 32, 16, 4, 2), ("fma", 16, 16, 4, 2), ("dot", 64, 16, 4, 2), ("dot", 32, 32, 4, 2),
        ("dot", 32, 16, 4, 3), ("dot", 64, 32, 8, 2), ("dot", 16, 16, 4, 2), ("fma", 16, 32, 4, 2)],
}
QUICK_TILES = {b: tiles[:3] for b, tiles in TILES.items()}
#: Relative error allowed against the float32 weight: compressed-tensors' own dequantization rounds
#: ``q · scale`` to the bf16 scale's dtype (≈ 1e-3 here), the kernel does not; wrong codes give O(1).
ERR_LIMIT = 1e-2
GRAPH_CALLS = 64


def quantized_bytes(layer: Any, any_float_bytes: int = 2) -> int:
    """Bytes of the checkpoint tensors as filled (codes, scales; 'any float' tensors as bf16)."""
    total = 0
    for shape, dtype in layer.expected_tensors().values():
        torch_dtype = getattr(torch, dtype, None)
        size = torch.empty((), dtype=torch_dtype).element_size() if isinstance(torch_dtype, torch.dtype) \
            else any_float_bytes
        total += math.prod(shape or (1,)) * size
    return total


#: "cuda", or "cpu" for ``--cpu-check`` (the kernels under Triton's interpreter, tiny shapes).
DEVICE = "cuda"


def build(fmt: str, n: int, k: int, copies: int) -> list[tuple[Any, Any]]:
    """``copies`` × (finalized layer, its packed weight) on the GEMV backend, same random tensors.

    ``--cpu-check`` builds the layer on the dequantizing reference (the backend declines CPU) and
    repacks its group with the backend's own ``prepare()``."""
    out = []
    for _ in range(copies):
        backend = "triton_gemv_cuda" if DEVICE == "cuda" else "per_call_dequant"
        layer = make_linear(FORMATS[fmt], k, n, backend=backend, device=DEVICE)
        _fill(layer, torch.Generator().manual_seed(1), any_float=torch.bfloat16)
        layer.finalize()
        state = layer._groups[0][1] if DEVICE == "cuda" else BACKENDS["triton_gemv_cuda"].prepare(layer._groups[0][0])
        out.append((layer, state[0]))
    return out


def gpu_ms(fns: list[Callable[[], object]], calls: int = GRAPH_CALLS) -> tuple[float, float]:
    """(GPU ms per call from a CUDA graph of ``calls`` calls cycling ``fns``, eager ms per call)."""
    if DEVICE == "cpu":  # --cpu-check: the interpreter's wall time, meaningless but exercised
        t0 = time.perf_counter()
        for fn in fns:
            fn()
        ms = (time.perf_counter() - t0) * 1e3 / len(fns)
        return ms, ms
    for fn in fns:
        fn()
    torch.cuda.synchronize()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up on a side stream before capture, as torch.cuda.graphs asks
        for fn in fns:
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for i in range(calls):
            fns[i % len(fns)]()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    graph.replay()
    times = []
    for _ in range(5):
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / calls)
    torch.cuda.synchronize()
    start.record()
    for i in range(calls):
        fns[i % len(fns)]()
    end.record()
    end.synchronize()
    return sorted(times)[len(times) // 2], start.elapsed_time(end) / calls


def configs_for(n: int, kw: int, tiles: list[tuple[str, int, int, int, int]], sms: int) -> list[GemvConfig]:
    """Every tile with no split, the built-in rule's split and twice that."""
    out = []
    for kernel, bn, bkw, warps, stages in tiles:
        rule = split_for(n, kw, bn, bkw, sms)
        out += [GemvConfig(bn, bkw, sk, warps, stages, kernel) for sk in sorted({1, rule, 2 * rule})]
    return out


class Subject:
    """One format at one shape: its layers (copies past L2), the dense bf16 copies, the packed weights."""

    def __init__(self, fmt: str, n: int, k: int) -> None:
        self.fmt, self.n, self.k = fmt, n, k
        probe, self.packed = build(fmt, n, k, 1)[0]
        self.bytes = self.packed.nbytes
        built = [(probe, self.packed), *build(fmt, n, k, rotation(DEVICE, self.bytes) - 1)]
        self.layers = [layer for layer, _ in built]
        self.weights = [packed for _, packed in built]
        dense = probe.dequantize()  # bf16, what dense_dequant holds
        self.dense = [dense] + [dense.clone() for _ in range(rotation(DEVICE, dense.nbytes) - 1)]
        self.group = probe._groups[0][0]
        print(f"gpu_gemv_sweep: fmt={fmt} shape={n}x{k} weight_mb={self.bytes / 2**20:.1f} "
              f"checkpoint_mb={quantized_bytes(probe) / 2**20:.1f} copies={len(self.layers)}", flush=True)

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() @ self.group.dense(torch.float32).t()  # the float32 weight, one shape at a time


def sweep_row(sub: Subject, batch: int, tiles: dict[int, list], peak: float | None, deadline: float,
              sms: int) -> dict[str, Any]:
    n, k, fmt = sub.n, sub.k, sub.fmt
    x = torch.randn(batch, k, device=DEVICE, generator=torch.Generator(DEVICE).manual_seed(batch)).to(torch.bfloat16)
    ref = sub.reference(x)
    cublas_ms, _ = gpu_ms([lambda w=w: x @ w.t() for w in sub.dense])
    layer_ms, layer_eager = gpu_ms([lambda m=m: m(x) for m in sub.layers])
    builtin = choose_config(sub.packed.fmt, n, k, batch, sms, kw=sub.packed.words.shape[1])
    row: dict[str, Any] = {"fmt": fmt, "shape": f"{n}x{k}", "n": n, "k": k, "batch": batch, "bytes": sub.bytes,
                           "cublas_ms": cublas_ms, "layer_ms": layer_ms, "layer_eager_ms": layer_eager,
                           "builtin": builtin.text(), "results": []}
    tag = f"fmt={fmt} shape={n}x{k} batch={batch}"
    for cfg in configs_for(n, sub.packed.words.shape[1], tiles[m_bucket(batch)], sms):
        if time.monotonic() > deadline:
            print(f"gpu_gemv_sweep: {tag} time budget spent, remaining configurations skipped", flush=True)
            break
        try:
            launch = kernel_launcher(cfg)
            y = launch(x, sub.packed, cfg, torch.float32)
            err = float((y - ref).norm() / ref.norm())
            ms, eager = gpu_ms([lambda w=w, c=cfg, f=launch: f(x, w, c, None) for w in sub.weights])
        except Exception as exc:  # a configuration that does not compile or run is reported, not fatal
            first = (str(exc).splitlines() or [""])[0][:120]
            print(f"gpu_gemv_sweep: {tag} cfg={cfg.text()} failed={type(exc).__name__}: {first}", flush=True)
            continue
        gbps = sub.bytes / (ms / 1e3) / 1e9
        pct = f" hbm_pct={100 * gbps / peak:.0f}" if peak else ""
        ok = err <= ERR_LIMIT
        print(f"gpu_gemv_sweep: {tag} cfg={cfg.text()} ms={ms:.4f} eager_ms={eager:.4f} gbps={gbps:.0f}{pct} "
              f"err={err:.0e}{'' if ok else ' WRONG'}", flush=True)
        row["results"].append((cfg, ms, eager, err, ok))
    print(f"gpu_gemv_sweep: {tag} baseline cublas_bf16_ms={cublas_ms:.4f} "
          f"(quantized-bytes gbps={sub.bytes / (cublas_ms / 1e3) / 1e9:.0f}) layer_ms={layer_ms:.4f} "
          f"layer_eager_ms={layer_eager:.4f} builtin={builtin.text()}", flush=True)
    good = [r for r in row["results"] if r[4]]
    if good:
        row["best"] = min(good, key=lambda r: r[1])
    return row


def summary(rows: list[dict[str, Any]], peak: float | None) -> list[str]:
    lines, tuned = [], []
    for r in rows:
        if "best" not in r:
            lines.append(f"gpu_gemv_best: fmt={r['fmt']} shape={r['shape']} batch={r['batch']} no correct configuration")
            continue
        cfg, ms, eager, _, _ = r["best"]
        gbps = r["bytes"] / (ms / 1e3) / 1e9
        pct = f" hbm_pct={100 * gbps / peak:.0f}" if peak else ""
        goal = ""
        if r["batch"] == 1 and peak and (r["n"], r["k"]) == (8192, 28672):
            goal = f" goal(>=60%)={'met' if 100 * gbps / peak >= 60 else 'missed'}"
        lines.append(f"gpu_gemv_best: fmt={r['fmt']} shape={r['shape']} batch={r['batch']} cfg={cfg.text()} "
                     f"ms={ms:.4f} eager_ms={eager:.4f} gbps={gbps:.0f}{pct} vs_cublas_bf16={r['cublas_ms'] / ms:.2f}x "
                     f"layer_ms={r['layer_ms']:.4f}{goal}")
        fmt = {"w4a16": "int4", "nvfp4a16": "nvfp4"}[r["fmt"]]
        tuned.append(f'    ("{fmt}", {r["n"]}, {r["k"]}, {r["batch"]}): GemvConfig(block_n={cfg.block_n}, '
                     f"block_kw={cfg.block_kw}, split_k={cfg.split_k}, num_warps={cfg.num_warps}, "
                     f'num_stages={cfg.num_stages}, kernel="{cfg.kernel}"),')
    lines += ["", "TUNED = {  # paste into quantresolve/dispatch/kernels/gemv_configs.py", *tuned, "}"]
    return lines


def _pairs(text: str) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in item.lower().split("x")) for item in text.split(",")]  # type: ignore[misc]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated subset of {list(FORMATS)}")
    p.add_argument("--shapes", help="comma-separated NxK list (default 8192x28672,28672x8192,4096x4096)")
    p.add_argument("--batches", default="1,4,8")
    p.add_argument("--quick", action="store_true", help="the first 3 tiles per batch only")
    p.add_argument("--budget-s", type=float, default=240.0, help="stop trying configurations after this many seconds")
    p.add_argument("--hbm-gbps", type=float, help="peak HBM bandwidth (default: by device name)")
    p.add_argument("--cpu-check", action="store_true",
                   help="no GPU: run the script's logic on tiny shapes under Triton's CPU interpreter")
    args = p.parse_args(argv)
    global DEVICE
    if args.cpu_check:
        DEVICE = "cpu"
        os.environ["TRITON_INTERPRET"] = "1"  # before Triton is first imported
        from quantresolve.dispatch.kernels.triton_gemv import patch_interpreter_for_numpy2

        patch_interpreter_for_numpy2()
        args.shapes = args.shapes or "320x256,40x200"
    elif not torch.cuda.is_available():
        print("gpu_gemv_sweep: needs a CUDA device (or --cpu-check)", file=sys.stderr)
        return 2
    import triton

    start = time.monotonic()
    peak = hbm_gbps(args.hbm_gbps)
    sms = sm_count(torch.device(DEVICE))
    name = torch.cuda.get_device_name(0) if DEVICE == "cuda" else "cpu (interpreter)"
    print(f"gpu_gemv_sweep: device={name} peak_gbps={peak} torch={torch.__version__} "
          f"triton={triton.__version__} sms={sms}", flush=True)
    shapes = _pairs(args.shapes) if args.shapes else SHAPES
    batches = [int(b) for b in args.batches.split(",")]
    tiles = QUICK_TILES if args.quick else TILES
    subjects = {(fmt, n, k): Subject(fmt, n, k) for n, k in shapes for fmt in args.formats.split(",")}
    rows = []
    for batch in batches:  # batch 1 of every shape and format before any larger batch
        for sub in subjects.values():
            rows.append(sweep_row(sub, batch, tiles, peak, start + args.budget_s, sms))
    print("\n".join(summary(rows, peak)))
    print(f"gpu_gemv_sweep: done in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
