"""Benchmark every supported backend per scheme: median of interleaved runs and peak memory.

    .venv/bin/python benchmarks/linear_backends.py            # full: 4096x4096 and 8192x28672
    .venv/bin/python benchmarks/linear_backends.py --quick    # 1024x1024 and 2048x4096, fewer repeats
    .venv/bin/python benchmarks/linear_backends.py --write docs/benchmarks_linear.md

For each scheme × shape × batch (1, 32): every backend whose ``supports()``
says yes, the auto choice (``make_linear(..., batch=B)``), dense bf16
(``x @ Wᵀ``) and naive per-call dequantization. Timings are medians of
interleaved rounds (each round runs every candidate once, so drift hits all
alike). Peak memory is the RSS high-water increase while building and running
the candidate (CPU) or ``torch.cuda.max_memory_allocated`` (CUDA). A
backend counts as *correct* when its output is within 2e-2 relative error of
the float32 reference. One machine-readable line per row:

    linear_backends: scheme=S shape=NxK batch=B auto=BACKEND auto_ms=X best=BACKEND best_ms=Y dense_ms=Z naive_ms=W
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable

import torch

from quantresolve.dispatch import Shapes, backend_verdicts, device_info, make_linear
from quantresolve.dispatch.presets import scheme_from_label

SCHEMES = [("compressed-tensors", "W4A16"), ("modelopt", "W4A16_AWQ"), ("compressed-tensors", "W8A16"),
           ("modelopt", "W8A16"), ("bitsandbytes", "BNB_INT8"), ("compressed-tensors", "W8A8"),
           ("compressed-tensors", "FP8_DYNAMIC"), ("modelopt", "NVFP4"), ("compressed-tensors", "MXFP4A16"),
           ("bitsandbytes", "BNB_NF4")]
FULL_SHAPES = [(4096, 4096), (28672, 8192)]
QUICK_SHAPES = [(1024, 1024), (2048, 4096)]


def _fill(layer, gen: torch.Generator) -> None:
    """Random but valid checkpoint tensors for the layer's expected specs (scale ranges kept sane)."""
    import bitsandbytes.functional as F

    if layer.scheme is not None and layer.scheme.producer == "bitsandbytes" and layer.scheme.algo != "BNB_INT8":
        w = (torch.randn(layer.out_features, layer.in_features, generator=gen) * 0.02).to(torch.bfloat16)
        packed, qs = F.quantize_4bit(w, blocksize=64, quant_type=layer.scheme.algo[4:].lower())
        layer.load("weight", packed)
        for k, t in qs.as_dict(packed=True).items():
            layer.load(f"weight.{k}", t)
        return
    for (shard, suffix), (shape, dtype) in layer.expected_tensors().items():
        shape = shape if shape is not None else (1,)
        if suffix == "weight_format":
            continue
        if dtype in ("float", "float32"):
            t = torch.rand(shape, generator=gen) * 0.002 + 0.0005
            if suffix in ("weight_global_scale", "input_global_scale"):
                t = torch.full(shape, 200.0)
        elif dtype == "float8_e4m3fn":
            t = (torch.rand(shape, generator=gen) + 0.5 if "scale" in suffix
                 else torch.randn(shape, generator=gen) * 40).to(torch.float8_e4m3fn)
        elif dtype == "uint8":
            t = (torch.randint(120, 128, shape, generator=gen) if "scale" in suffix
                 else torch.randint(0, 256, shape, generator=gen)).to(torch.uint8)
        elif dtype == "int8":
            half = 1 << (layer.scheme.weights.num_bits - 1)
            t = torch.randint(-half, half, shape, generator=gen).to(torch.int8)
        elif dtype == "int32":
            t = torch.randint(-2**31, 2**31 - 1, shape, generator=gen, dtype=torch.int64).to(torch.int32)
        else:  # int64 weight_shape
            t = torch.tensor([layer.out_features, layer.in_features])
        layer.load(suffix, t, shard=shard)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _median_interleaved(fns: dict[str, Callable[[], object]], rounds: int, sync: Callable[[], None]) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():  # warm-up (bitsandbytes repacks on first call)
        fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_row(producer: str, label: str, n: int, k: int, batch: int, device: str, rounds: int) -> dict:
    scheme = scheme_from_label(label, producer)
    gen = torch.Generator().manual_seed(0)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    x = torch.randn(batch, k, generator=gen).to(torch.bfloat16).to(device)
    shapes = Shapes(n, k, batch)
    names = [name for name, v in backend_verdicts(scheme, shapes, device_info(device)) if v.ok]
    # Layers without the batch hint too: the kernels that decline large batches are still measured.
    names += [name for name, v in backend_verdicts(scheme, Shapes(n, k), device_info(device))
              if v.ok and name not in names]
    layers, mem, errs = {}, {}, {}
    for name in names:
        gc.collect()
        before = _rss_mib()
        layer = make_linear(scheme, k, n, backend=name, device=device)
        _fill(layer, torch.Generator().manual_seed(1))  # same tensors for every backend
        layer.finalize()
        layers[name] = layer
        mem[name] = max(0.0, _rss_mib() - before)
    ref_layer = layers["per_call_dequant"]
    ref = ref_layer.reference(x[:1].cpu()) if device == "cpu" else None
    for name, layer in layers.items():
        if ref is not None:
            y = layer(x[:1]).float()
            errs[name] = float((y - ref).norm() / ref.norm().clamp(min=1e-6))
    auto = make_linear(scheme, k, n, batch=batch, device=device).backend
    dense_w = layers["dense_dequant"].dequantize()
    fns: dict[str, Callable[[], object]] = {name: (lambda layer=layer: layer(x)) for name, layer in layers.items()}
    fns["dense_bf16"] = lambda w=dense_w: x @ w.t()
    ms = _median_interleaved(fns, rounds, sync)
    correct = {name: t for name, t in ms.items() if name in layers and errs.get(name, 0.0) < 2e-2}
    best = min(correct, key=correct.get)
    row = {"scheme": f"{producer}:{label}", "shape": f"{n}x{k}", "batch": batch, "auto": auto,
           "auto_ms": ms[auto], "best": best, "best_ms": ms[best], "dense_ms": ms["dense_bf16"],
           "naive_ms": ms["per_call_dequant"], "backends": {nm: (ms[nm], mem.get(nm), errs.get(nm)) for nm in layers}}
    del layers
    gc.collect()
    return row


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__}, Python {platform.python_version()}"


def to_markdown(rows: list[dict], quick: bool) -> str:
    lines = ["# Linear backends benchmark", "", f"Machine: {machine()}.", "",
             f"Command: `.venv/bin/python benchmarks/linear_backends.py{' --quick' if quick else ''}`. "
             "Median of interleaved runs, milliseconds; memory = RSS high-water increase while building the layer "
             "(MiB, 0 when below the previous high-water mark); err = relative error vs the float32 reference.", "",
             "| scheme | shape (N×K) | batch | auto | auto ms | best | best ms | dense bf16 ms | naive ms | all backends (ms / MiB / err) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        detail = "; ".join(f"{nm} {t:.2f} / {m:.0f} / {e:.0e}" if e is not None else f"{nm} {t:.2f} / {m:.0f}"
                           for nm, (t, m, e) in r["backends"].items())
        lines.append(f"| {r['scheme']} | {r['shape']} | {r['batch']} | {r['auto']} | {r['auto_ms']:.3f} | "
                     f"{r['best']} | {r['best_ms']:.3f} | {r['dense_ms']:.3f} | {r['naive_ms']:.2f} | {detail} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small shapes, few rounds")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 15, quick 5)")
    p.add_argument("--write", help="write the markdown table to this file")
    p.add_argument("--schemes", help="comma-separated producer:LABEL subset")
    args = p.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    shapes = QUICK_SHAPES if args.quick else FULL_SHAPES
    rounds = args.rounds or (5 if args.quick else 15)
    schemes = SCHEMES
    if args.schemes:
        schemes = [tuple(s.split(":", 1)) for s in args.schemes.split(",")]  # type: ignore[misc]
    rows = []
    for producer, label in schemes:
        for n, k in shapes:
            for batch in (1, 32):
                r = bench_row(producer, label, n, k, batch, device, rounds)
                rows.append(r)
                print(f"linear_backends: scheme={r['scheme']} shape={r['shape']} batch={batch} auto={r['auto']} "
                      f"auto_ms={r['auto_ms']:.3f} best={r['best']} best_ms={r['best_ms']:.3f} "
                      f"dense_ms={r['dense_ms']:.3f} naive_ms={r['naive_ms']:.2f}", flush=True)
    table = to_markdown(rows, args.quick)
    print(table)
    if args.write:
        with open(args.write, "w") as f:
            f.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
