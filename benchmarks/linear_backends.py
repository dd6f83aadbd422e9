"""Benchmark every supported backend per scheme: median of interleaved runs and peak memory.

    .venv/bin/python benchmarks/linear_backends.py                 # full: 4096², 8192x28672, 28672x8192; batch 1, 4, 16, 128
    .venv/bin/python benchmarks/linear_backends.py --quick         # 4096x4096 only, 5 rounds (iteration)
    .venv/bin/python benchmarks/linear_backends.py --quick --float  # the float schemes (FP8, NVFP4, MXFP4, W4A8) only
    .venv/bin/python benchmarks/linear_backends.py --write /tmp/table.md   # then paste into docs/benchmarks.md
    .venv/bin/python benchmarks/linear_backends.py --quick --schemes compressed-tensors:W8A16 --batches 1,4,8,16,32

For each scheme × shape × batch: every backend whose ``supports()`` says yes
(with and without the batch hint, so kernels that decline large batches are
still measured), the auto choice (``make_linear(..., batch=B)``), dense bf16
(``x @ Wᵀ`` on the dequantized weight) and naive per-call dequantization
(``per_call_dequant``, measured in the first ``--naive-rounds`` rounds only:
at 28672×8192 one call takes seconds). Timings are medians of interleaved
rounds — each round runs every candidate once — so drift hits all alike. Peak
memory is the resident-set high-water increase (Linux ``VmHWM``, reset before
each candidate) while building, loading, finalizing and running the
candidate once, or ``torch.cuda.max_memory_allocated`` on CUDA. A backend is
*correct* when its output is within 2e-2 relative error of the float32
reference. One machine-readable line per row:

    linear_backends: scheme=S shape=NxK batch=B auto=BACKEND auto_ms=X best=BACKEND best_ms=Y dense_ms=Z naive_ms=W

and, at the end, one ``linear_backends_goal:`` line per goal (W4A16 / W8A16
batch-1 ≥ 5× dense bf16; 4-bit float schemes batch-1 ≥ 4× and FP8 ≥ 1.8× dense bf16; every weight-only
batch-1 row ≥ 70 % of the machine's memory bandwidth; auto within 1.1× of the best correct backend).

Bandwidth: before the rows (and again after them) a triad-style probe — ``a = b + s·c`` over three float32
arrays of :data:`TRIAD_MB` each, far beyond any cache, with torch's threads — gives the machine's
streaming bandwidth *in the same run* (counted as STREAM counts it: 3 arrays moved per pass; the best of
its repetitions). Each row reports the weight bytes the auto backend streams per second (the checkpoint's
quantized bytes / time: what a batch-1 GEMV must read) and that as a share of the probe's figure
(``bw_pct``); a weight-only row at batch 1 is memory-bound when it is near 100 %. On a
GPU, every candidate cycles through enough copies of its layer to stream at
least twice the L2 per round, and one ``linear_backends_gpu:`` line per
batch-1 backend gives the weight bandwidth it reached (and the share of the
HBM peak: by device name or ``--hbm-gbps``). ``--cuda-graphs`` times each GPU candidate as CUDA
graphs of 32 calls instead (the GPU time per call, without the launch and Python overhead that a
synchronised single call includes — ~20-40 µs, a third of a 28672×8192 int4 GEMV at 60 % of HBM).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from quantresolve.dispatch import Shapes, backend_verdicts, device_info, make_linear
from quantresolve.dispatch.presets import scheme_from_label

#: Every float scheme (issue 15): 4-bit float weights (NVFP4 with and without FP4 activations, MXFP4), FP8
#: weights per tensor / channel / 128×128 block (Hugging Face fine-grained FP8 too), gpt-oss MXFP4, W4A8.
FLOAT_SCHEMES = [("modelopt", "NVFP4"), ("modelopt", "W4A16_NVFP4"), ("modelopt", "MXFP4"),
                 ("modelopt", "W4A8_NVFP4_FP8"), ("compressed-tensors", "NVFP4"), ("compressed-tensors", "NVFP4A16"),
                 ("compressed-tensors", "MXFP4A16"), ("modelopt", "FP8"), ("modelopt", "FP8_PER_CHANNEL_PER_TOKEN"),
                 ("modelopt", "FP8_PB_WO"), ("compressed-tensors", "FP8"), ("compressed-tensors", "FP8_DYNAMIC"),
                 ("compressed-tensors", "FP8_BLOCK"), ("fp8", "FP8_BLOCK"), ("mxfp4", "MXFP4A16"),
                 ("modelopt", "W4A8_AWQ"), ("compressed-tensors", "W4A8")]
SCHEMES = [("compressed-tensors", "W4A16"), ("modelopt", "W4A16_AWQ"), ("compressed-tensors", "W8A16"),
           ("modelopt", "W8A16"), ("bitsandbytes", "BNB_INT8"), ("compressed-tensors", "W8A8"),
           ("bitsandbytes", "BNB_NF4"), *FLOAT_SCHEMES]
FULL_SHAPES = [(4096, 4096), (8192, 28672), (28672, 8192)]
QUICK_SHAPES = [(4096, 4096)]
#: Rows the batch-1 speed goal applies to (W4A16 int4 group-128 and W8A16, both producers).
SPEED_GOAL_SCHEMES = {"compressed-tensors:W4A16", "modelopt:W4A16_AWQ", "compressed-tensors:W8A16",
                      "modelopt:W8A16"}
SPEED_GOAL, AUTO_GOAL, CORRECT_ERR = 5.0, 1.1, 2e-2
#: Batch-1 speed-up over dense bf16 the float schemes must reach (issue 15): 4-bit float weights, FP8 weights.
FLOAT_GOALS = {"fp4": 4.0, "fp8": 1.8}
#: Share of the probed memory bandwidth every weight-only batch-1 row must stream its weights at.
BANDWIDTH_GOAL = 0.70
#: MiB per array of the triad probe (three arrays: 3 × 256 MiB, far beyond any CPU cache).
TRIAD_MB = 256


def float_family(scheme: Any) -> str | None:
    """``"fp4"`` / ``"fp8"`` for a scheme with 4-bit float / FP8 weights (the float speed goals), else ``None``."""
    w = scheme.weights
    if w is None or w.type != "float":
        return None
    return "fp4" if w.num_bits == 4 else "fp8" if w.num_bits == 8 else None


def weight_only(scheme: Any) -> bool:
    """No activation quantization: the rows the bandwidth goal applies to."""
    return scheme.input_activations is None


def triad_gbps(device: str, mb: int = TRIAD_MB, reps: int = 7) -> float:
    """Streaming memory bandwidth (GB/s): best of ``reps`` passes of ``a = b + s·c`` over float32 arrays of ``mb``
    MiB each, counted as STREAM's triad counts it (two arrays read, one written)."""
    n = mb * 2**20 // 4
    b, c = torch.rand(n, device=device), torch.rand(n, device=device)
    a = torch.empty_like(b)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    best = float("inf")
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        torch.add(b, c, alpha=3.0, out=a)
        sync()
        best = min(best, time.perf_counter() - t0)
    del a, b, c
    return 3 * n * 4 / best / 1e9


def _fill(layer: Any, gen: torch.Generator, any_float: torch.dtype = torch.float32) -> None:
    """Random but valid checkpoint tensors for the layer's expected specs (scale ranges kept sane).

    ``any_float``: the dtype of tensors the format stores in any float dtype (integer scales);
    compressed-tensors checkpoints keep them in the model's dtype (bf16)."""
    if layer.scheme is not None and layer.scheme.producer == "bitsandbytes" and layer.scheme.algo != "BNB_INT8":
        import bitsandbytes.functional as F  # only bitsandbytes' own 4-bit layout needs its library

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
            elif dtype == "float":
                t = t.to(any_float)
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


class PeakMemory:
    """Resident high-water increase on Linux CPU (``clear_refs`` 5 resets ``VmHWM``), CUDA allocator peak on GPU."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.base = 0.0

    @staticmethod
    def _status(field: str) -> float:
        with open("/proc/self/status") as f:
            line = next(x for x in f if x.startswith(field))
        return float(line.split()[1]) / 1024  # kB → MiB

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated() / 2**20
        else:
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass  # not Linux or not permitted: VmHWM then includes earlier peaks
            self.base = self._status("VmRSS:")
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def peak_mib(self) -> float:
        if self.cuda:
            return torch.cuda.max_memory_allocated() / 2**20 - self.base
        return max(0.0, self._status("VmHWM:") - self.base)


#: ``--clock``: wall time (the figure to record), or the calling thread's CPU time — with
#: ``--threads 1`` the kernels run in that thread, so time spent descheduled by other jobs on a
#: shared machine is not counted (for iterating on a busy machine, with ``--stat min``).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "thread": time.thread_time}
STATS: dict[str, Callable[[list[float]], float]] = {"median": statistics.median, "min": min}


def _interleaved(fns: dict[str, Callable[[], object]], rounds: int, sync: Callable[[], None],
                 few: dict[str, int], clock: Callable[[], float] = time.perf_counter,
                 stat: Callable[[list[float]], float] = statistics.median) -> dict[str, float]:
    """``stat`` of the ms per candidate over interleaved rounds; ``few[name]`` caps that candidate's rounds."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():  # warm-up (bitsandbytes repacks on its first call)
        fn()
    for r in range(rounds):
        for name, fn in fns.items():
            if r >= few.get(name, rounds):
                continue
            sync()
            t0 = clock()
            fn()
            sync()
            times[name].append((clock() - t0) * 1e3)
    return {k: stat(v) for k, v in times.items()}


#: Calls per CUDA graph in ``--cuda-graphs`` mode (each cycling the candidate's weight copies).
GRAPH_CALLS = 32


def _graphed(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median GPU ms per call of each candidate replayed as a CUDA graph of :data:`GRAPH_CALLS`
    calls (launch and Python overhead excluded: what a graph-captured decode step sees), rounds
    interleaved across candidates; a candidate that cannot be captured is timed eagerly the same way."""
    runs: dict[str, Callable[[], object]] = {}
    for name, fn in fns.items():
        fn()
        torch.cuda.synchronize()
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                fn()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                for _ in range(GRAPH_CALLS):
                    fn()
            runs[name] = graph.replay
        except Exception:  # not capturable (host syncs, CPU-side work): back-to-back eager calls
            torch.cuda.synchronize()
            runs[name] = lambda fn=fn: [fn() for _ in range(GRAPH_CALLS)]
    times: dict[str, list[float]] = {k: [] for k in runs}
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(rounds):
        for name, run in runs.items():
            start.record()
            run()
            end.record()
            end.synchronize()
            times[name].append(start.elapsed_time(end) / GRAPH_CALLS)
    return {k: statistics.median(v) for k, v in times.items()}


#: Peak HBM bandwidth (GB/s) by device-name fragment, for the GPU goal (override with --hbm-gbps).
HBM_GBPS = {"H200": 4800.0, "H100 PCIe": 2000.0, "H100": 3350.0, "A100-SXM4-80GB": 2039.0, "A100": 1555.0,
            "L40S": 864.0, "L4": 300.0}


def hbm_gbps(override: float | None) -> float | None:
    if override or not torch.cuda.is_available():
        return override
    name = torch.cuda.get_device_name(0)
    return next((v for frag, v in HBM_GBPS.items() if frag in name), None)


def checkpoint_bytes(layer: Any) -> int:
    """Bytes of the checkpoint tensors the layer reads (its expected specs; 'any float' counted as 4)."""
    total = 0
    for shape, dtype in layer.expected_tensors().values():
        torch_dtype = getattr(torch, dtype, None)
        size = torch.empty((), dtype=torch_dtype).element_size() if isinstance(torch_dtype, torch.dtype) else 4
        count = 1
        for d in shape or (1,):
            count *= d
        total += count * size
    return total


def rotation(device: str, nbytes: int) -> int:
    """Copies to cycle through so one round of calls streams ≥ 2× the GPU's L2 (CPU: 1)."""
    if not device.startswith("cuda"):
        return 1
    l2 = int(getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 * 2**20))
    return max(1, -(-2 * l2 // max(1, nbytes)))


def _cycled(fns: list[Callable[[], object]]) -> Callable[[], object]:
    it = itertools.cycle(fns)
    return lambda: next(it)()


def bench_row(producer: str, label: str, n: int, k: int, batch: int, device: str, rounds: int,
              naive_rounds: int, clock: str = "wall", stat: str = "median", graphs: bool = False) -> dict[str, Any]:
    scheme = scheme_from_label(label, producer)
    gen = torch.Generator().manual_seed(0)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    x = torch.randn(batch, k, generator=gen).to(torch.bfloat16).to(device)
    names = [name for name, v in backend_verdicts(scheme, Shapes(n, k, batch), device_info(device)) if v.ok]
    names += [name for name, v in backend_verdicts(scheme, Shapes(n, k), device_info(device))
              if v.ok and name not in names]
    layers, mem, errs, failed = {}, {}, {}, {}
    ref = None
    for name in ["per_call_dequant", *[nm for nm in names if nm != "per_call_dequant"]]:
        try:
            with PeakMemory(device) as peak:
                layer = make_linear(scheme, k, n, backend=name, device=device)
                _fill(layer, torch.Generator().manual_seed(1))  # same tensors for every backend
                layer.finalize()
                y = layer(x[:1]).float().cpu()
        except Exception as err:  # a kernel that cannot build or run here is reported, not fatal
            failed[name] = f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:100]}"
            continue
        layers[name], mem[name] = layer, peak.peak_mib()
        if ref is None:
            ref = layer.reference(x[:1]).float().cpu()
        errs[name] = float((y - ref).norm() / ref.norm().clamp(min=1e-6))
    auto = make_linear(scheme, k, n, batch=batch, device=device).backend
    dense_w = layers["dense_dequant"].dequantize()
    # On a GPU the weights of small layers would sit in L2 between calls: rotate through copies.
    copies, dense_copies = rotation(device, checkpoint_bytes(layers["per_call_dequant"])), rotation(device, dense_w.nbytes)
    fns: dict[str, Callable[[], object]] = {}
    for name, layer in layers.items():
        mods = [layer]
        for _ in range(copies - 1 if name != "per_call_dequant" else 0):
            mods.append(make_linear(scheme, k, n, backend=name, device=device))
            _fill(mods[-1], torch.Generator().manual_seed(1))
            mods[-1].finalize()
        fns[name] = _cycled([lambda m=m: m(x) for m in mods])
    dense = [dense_w] + [dense_w.clone() for _ in range(dense_copies - 1)]
    fns["dense_bf16"] = _cycled([lambda w=w: x @ w.t() for w in dense])
    naive = fns.pop("per_call_dequant")
    if graphs and device.startswith("cuda"):
        ms = _graphed(fns, rounds)
    else:
        ms = _interleaved(fns, rounds, sync, {}, CLOCKS[clock], STATS[stat])
    if naive_rounds > 0:  # at 28672×8192 one call takes seconds: timed apart, only when asked
        ms |= _interleaved({"per_call_dequant": naive}, naive_rounds, sync, {}, CLOCKS[clock], STATS[stat])
    correct = {name: t for name, t in ms.items() if name in layers and errs[name] < CORRECT_ERR}
    best = min(correct, key=correct.__getitem__)
    weight_bytes = checkpoint_bytes(layers["per_call_dequant"])
    row = {"scheme": f"{producer}:{label}", "shape": f"{n}x{k}", "batch": batch, "auto": auto,
           "auto_ms": ms[auto], "best": best, "best_ms": ms[best], "dense_ms": ms["dense_bf16"],
           "naive_ms": ms.get("per_call_dequant", float("nan")), "weight_bytes": weight_bytes,
           "gbps": weight_bytes / (ms[auto] / 1e3) / 1e9, "family": float_family(scheme),
           "weight_only": weight_only(scheme),
           "backends": {nm: (ms.get(nm, float("nan")), mem[nm], errs[nm]) for nm in layers}, "failed": failed}
    del layers, fns, dense_w, dense
    gc.collect()
    return row


def goal_lines(rows: list[dict[str, Any]], triad: float | None = None) -> list[str]:
    """One verdict line per goal of issues 5 and 15 (computed from the rows just measured; the bandwidth goal
    against ``triad``, the probe's GB/s, when given)."""
    out = []
    for r in rows:
        tag = f"scheme={r['scheme']} shape={r['shape']} batch={r['batch']}"
        goal = SPEED_GOAL if r["scheme"] in SPEED_GOAL_SCHEMES else FLOAT_GOALS.get(r.get("family") or "")
        if r["batch"] == 1 and goal is not None:
            speedup = r["dense_ms"] / r["auto_ms"]
            verdict = "met" if speedup >= goal else "missed"
            out.append(f"linear_backends_goal: speed {tag} auto={r['auto']} speedup={speedup:.2f}x "
                       f"(goal {goal:g}x) {verdict}")
        if r["batch"] == 1 and r.get("weight_only") and triad:
            share = r["gbps"] / triad
            out.append(f"linear_backends_goal: bandwidth {tag} auto={r['auto']} gbps={r['gbps']:.1f} "
                       f"of {triad:.1f} = {100 * share:.0f}% (goal {100 * BANDWIDTH_GOAL:.0f}%) "
                       f"{'met' if share >= BANDWIDTH_GOAL else 'missed'}")
        ratio = r["auto_ms"] / r["best_ms"]
        if ratio > AUTO_GOAL:
            out.append(f"linear_backends_goal: auto {tag} auto={r['auto']} best={r['best']} "
                       f"ratio={ratio:.2f} (goal {AUTO_GOAL}) missed")
    worst = max((r["auto_ms"] / r["best_ms"] for r in rows), default=1.0)
    out.append(f"linear_backends_goal: auto-vs-best worst ratio {worst:.2f} over {len(rows)} rows "
               f"(goal ≤ {AUTO_GOAL}) {'met' if worst <= AUTO_GOAL else 'missed'}")
    return out


def bandwidth_lines(rows: list[dict[str, Any]], peak: float | None) -> list[str]:
    """GPU goal: batch-1 weight bytes streamed per second by each backend (weights rotated past L2)."""
    out = []
    for r in rows:
        if r["batch"] != 1:
            continue
        for name, (ms, _, _) in r["backends"].items():
            gbps = r["weight_bytes"] / (ms / 1e3) / 1e9
            pct = f" hbm_pct={100 * gbps / peak:.0f}" if peak else ""
            out.append(f"linear_backends_gpu: scheme={r['scheme']} shape={r['shape']} backend={name} "
                       f"weight_mb={r['weight_bytes'] / 2**20:.1f} ms={ms:.4f} gbps={gbps:.0f}{pct}")
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, {gpu}, "
            f"torch {torch.__version__}, Python {platform.python_version()}")


def to_markdown(rows: list[dict[str, Any]], command: str, goals: list[str], triad: tuple[float, float] | None = None
                ) -> str:
    probe = (f" Triad probe in the same run: {triad[0]:.1f} GB/s before the rows, {triad[1]:.1f} after; bw % = "
             f"weight GB/s of auto / the first." if triad else "")
    lines = ["# Linear backends benchmark", "", f"Machine: {machine()}; load average before the run "
             f"{os.getloadavg()[0]:.2f}.{probe}", "",
             f"Command: `{command}`. Median of interleaved runs, milliseconds; speed-up = dense bf16 / auto; "
             "GB/s = the checkpoint's weight bytes / auto's time; "
             "memory = peak resident increase while building, loading, finalizing and running the layer once "
             "(MiB); err = relative error vs the float32 reference (correct < 2e-2).", "",
             "| scheme | shape (N×K) | batch | auto | auto ms | best | best ms | auto / best | dense bf16 ms "
             "| speed-up | weight GB/s | bw % | naive ms | all backends (ms / MiB / err) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        detail = "; ".join([f"{nm} {t:.3f} / {m:.0f} / {e:.0e}" for nm, (t, m, e) in r["backends"].items()]
                           + [f"{nm} failed ({why})" for nm, why in r.get("failed", {}).items()])
        gbps = r.get("gbps", r["weight_bytes"] / (r["auto_ms"] / 1e3) / 1e9)
        pct = f"{100 * gbps / triad[0]:.0f}" if triad else "–"
        lines.append(f"| {r['scheme']} | {r['shape']} | {r['batch']} | {r['auto']} | {r['auto_ms']:.3f} | "
                     f"{r['best']} | {r['best_ms']:.3f} | {r['auto_ms'] / r['best_ms']:.2f} | {r['dense_ms']:.3f} | "
                     f"{r['dense_ms'] / r['auto_ms']:.1f}× | {gbps:.1f} | {pct} | {r['naive_ms']:.2f} | {detail} |")
    lines += ["", "Goals:", "", *[f"- `{g}`" for g in goals]]
    return "\n".join(lines) + "\n"


def _pairs(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        n, k = item.lower().split("x")
        out.append((int(n), int(k)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="4096x4096 only, 5 rounds")
    p.add_argument("--float", action="store_true", help="the float schemes only (FP8, NVFP4, MXFP4, W4A8)")
    p.add_argument("--shapes", help="comma-separated NxK list (overrides --quick's and the full shapes)")
    p.add_argument("--batches", default="1,4,16,128", help="comma-separated batch sizes (default 1,4,16,128)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 15, quick 5)")
    p.add_argument("--naive-rounds", type=int, default=3, help="rounds for per-call dequantization (0: not timed)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own)")
    p.add_argument("--schemes", help="comma-separated producer:LABEL subset")
    p.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="wall (default) or thread CPU time")
    p.add_argument("--stat", choices=sorted(STATS), default="median", help="median (default) or min")
    p.add_argument("--hbm-gbps", type=float, help="GPU peak HBM bandwidth for the percentage (default: by name)")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="GPU: time each candidate as CUDA graphs of 32 calls (no launch / Python overhead)")
    p.add_argument("--write", help="write the markdown table to this file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    shapes = _pairs(args.shapes) if args.shapes else (QUICK_SHAPES if args.quick else FULL_SHAPES)
    batches = [int(b) for b in args.batches.split(",")]
    rounds = args.rounds or (5 if args.quick else 15)
    schemes = FLOAT_SCHEMES if args.float else SCHEMES
    if args.schemes:
        schemes = [tuple(s.split(":", 1)) for s in args.schemes.split(",")]  # type: ignore[misc]
    triad_before = triad_gbps(device)
    print(f"linear_backends_triad: gbps={triad_before:.1f} (before the rows)", flush=True)
    rows = []
    for producer, label in schemes:
        for n, k in shapes:
            for batch in batches:
                r = bench_row(producer, label, n, k, batch, device, rounds, min(args.naive_rounds, rounds),
                              args.clock, args.stat, args.cuda_graphs)
                rows.append(r)
                print(f"linear_backends: scheme={r['scheme']} shape={r['shape']} batch={batch} auto={r['auto']} "
                      f"auto_ms={r['auto_ms']:.3f} best={r['best']} best_ms={r['best_ms']:.3f} "
                      f"dense_ms={r['dense_ms']:.3f} naive_ms={r['naive_ms']:.2f} gbps={r['gbps']:.1f} "
                      f"bw_pct={100 * r['gbps'] / triad_before:.0f}", flush=True)
    triad_after = triad_gbps(device)
    print(f"linear_backends_triad: gbps={triad_after:.1f} (after the rows)", flush=True)
    goals = goal_lines(rows, triad_before)
    if device == "cuda":
        goals += bandwidth_lines(rows, hbm_gbps(args.hbm_gbps))
    print("\n".join(goals))
    if args.clock != "wall" or args.stat != "median":
        goals.insert(0, f"linear_backends_goal: NOTE timings are {args.stat} {args.clock}-clock, not the "
                        "median wall time the goals are stated in")
    table = to_markdown(rows, "benchmarks/linear_backends.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                        goals, (triad_before, triad_after))
    print(table)
    if args.write:
        with open(args.write, "w") as f:
            f.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
