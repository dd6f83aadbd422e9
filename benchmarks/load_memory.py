"""Peak resident memory of ``load_quantized``: does loading stay near the quantized size?

Two checkpoints, each loaded in a fresh subprocess:

1. the largest fixture in ``fixtures/checkpoints`` that loads with the default profile;
2. a synthetic checkpoint made here by a real producer — a random ``LlamaForCausalLM`` of
   ~270 M parameters (hidden 1024, 16 layers, intermediate 2816, vocab 32000, untied head),
   compressed by compressed-tensors itself (W4A16 on ``Linear``, ``lm_head`` ignored, weight
   scales from ``fixtures/generate.py``'s calibration), saved in a temporary directory.

The child imports everything first, records its resident set (baseline), resets the kernel's
high-water mark (``/proc/self/clear_refs``), loads, and reports the peak (``VmHWM``) and the
resident set after loading and reading every tensor the model holds (a tensor backed by a
memory-mapped file would otherwise count only its touched pages; the loader reads into owned
memory, but the figure must not depend on that). The high-water mark is also sampled at the end
of each streaming pass (quantized layers' tensors, read and finalized as they complete; then the
dense tensors), which says where the peak occurs. Printed per checkpoint: baseline RSS, peak RSS, their difference,
RSS retained after load, quantized checkpoint size (tensor bytes) and the dense bf16 size of the
same model (parameters x 2 bytes). The synthetic checkpoint is measured a second time with glibc's
``MALLOC_MMAP_THRESHOLD_`` fixed, which separates what the loaded model holds from freed transient
buffers the allocator keeps. Last line per measurement, machine-readable::

    load_memory: checkpoint=NAME quantized_mb=Q dense_mb=D peak_rss_delta_mb=P

Float schemes (issue 15: a quantized model's resident weight memory ≈ its checkpoint's quantized bytes):
``--float`` measures, instead, every float fixture and synthetic float checkpoints. Per checkpoint the child
also counts, per quantized linear, the bytes the layer holds (``QuantLinear.held_bytes``) against the bytes of
its checkpoint tensors (safetensors headers), and prints the sums and the extreme ratios::

    load_memory_modules: checkpoint=NAME modules=M held_mb=H checkpoint_mb=C ratio=H/C min=… max=… backends=…

The fixtures are tiny (≈ 1 MB: the RSS of one is import noise), so the RSS figure comes from the synthetic
checkpoints, made by compressed-tensors for each of ``--float-schemes`` at two depths (``--layers`` and a
third of it): the slope ``ΔRSS / Δ quantized bytes`` between the two removes every fixed cost (imports,
embeddings, the unquantized head) and is ≈ 1.0 when the layers hold their checkpoint's bytes (bf16 weights
would give ≈ 3.6 for NVFP4, ≈ 2 for FP8)::

    load_memory_slope: scheme=S rss_per_checkpoint_byte=R (layers A→B)

Usage: ``.venv/bin/python benchmarks/load_memory.py [--layers 16] [--keep DIR]``;
``.venv/bin/python benchmarks/load_memory.py --float [--layers 12] [--float-schemes NVFP4A16,FP8]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures" / "checkpoints"
MB = 1024 * 1024

#: The synthetic model: ~270 M parameters, ~540 MB in bf16.
SYNTHETIC = {
    "hidden_size": 1024, "intermediate_size": 2816, "num_attention_heads": 16, "num_key_value_heads": 16,
    "vocab_size": 32000, "max_position_embeddings": 512, "tie_word_embeddings": False,
    "architectures": ["LlamaForCausalLM"],
}


# --------------------------------------------------------------------------- child: one measured load


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _touch(model: Any) -> None:
    """Read every tensor the loaded model holds.

    A tensor backed by a memory-mapped file (what ``safetensors.safe_open`` hands out, and what the
    loader kept until it read into owned memory) only becomes resident page by page as it is used.
    Reading them all makes the figure what the model really occupies once it has run, whatever the
    loader does.
    """
    import torch

    def visit(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            if value.numel() and value.device.type == "cpu":
                # One element per 4 KiB page: faults every page in, allocates almost nothing.
                flat = value.reshape(-1)
                flat[:: max(1, 4096 // value.element_size())].float().sum()
        elif isinstance(value, dict):
            for v in value.values():
                visit(v)
        elif isinstance(value, list | tuple):
            for v in value:
                visit(v)
        elif hasattr(value, "__dict__") and type(value).__module__.startswith("quantresolve"):
            visit(vars(value))

    for module in model.modules():
        visit(dict(module._parameters))
        visit(dict(module._buffers))
        if type(module).__module__.startswith("quantresolve"):
            visit({k: v for k, v in vars(module).items() if not k.startswith("_modules")})


def _sample_passes(marks: list[int]) -> None:
    """Append ``VmHWM`` (kB) to ``marks`` each time a streaming pass of the loader ends."""
    from quantresolve.integrations.transformers import api

    stream = api.stream_tensors

    def sampled(*args: Any, **kwargs: Any) -> Any:
        yield from stream(*args, **kwargs)
        marks.append(_status_kb("VmHWM"))

    api.stream_tensors = sampled


def _child(path: str) -> None:
    import warnings

    import torch  # noqa: F401  (imported before the baseline on purpose)

    from quantresolve.integrations.transformers import load_quantized

    warnings.simplefilter("ignore")
    passes: list[int] = []
    _sample_passes(passes)
    baseline = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    start = time.perf_counter()
    model = load_quantized(path)
    seconds = time.perf_counter() - start
    peak_during = _status_kb("VmHWM")
    _touch(model)
    peak, after = _status_kb("VmHWM"), _status_kb("VmRSS")
    anon, file = _status_kb("RssAnon"), _status_kb("RssFile")
    params = sum(p.numel() for p in model.parameters())
    params += sum(m.in_features * m.out_features for m in model.modules() if hasattr(m, "dequantize")
                  and hasattr(m, "shard_sizes"))
    print(json.dumps({"baseline_kb": baseline, "peak_kb": peak, "peak_during_kb": peak_during,
                      "after_kb": after, "anon_kb": anon, "file_kb": file, "seconds": seconds,
                      "params": params, "counts": model.quantresolve_report.counts(),
                      "pass_peaks_kb": passes, "modules": _module_bytes(model, Path(path))}))


def _header_bytes(path: Path) -> dict[str, int]:
    """Tensor name → bytes, from the checkpoint's safetensors headers (no tensor data read)."""
    from quantresolve.checkpoint import read_checkpoint

    return {name: int(info.nbytes or 0) for name, info in read_checkpoint(path).tensors.items()}


def _module_bytes(model: Any, path: Path) -> list[tuple[str, str, int, int]]:
    """(prefix, backend, bytes held, checkpoint bytes under the prefix) per quantized linear."""
    from quantresolve.dispatch.linear import QuantLinear

    tensors = _header_bytes(path)
    rows = []
    for prefix, module in model.named_modules():
        if isinstance(module, QuantLinear) and module.scheme is not None:
            stored = sum(b for t, b in tensors.items() if t.startswith(prefix + "."))
            rows.append((prefix, module.backend, module.held_bytes(), stored))
    return rows


# --------------------------------------------------------------------------- parent


def _tensor_bytes(path: Path) -> int:
    from quantresolve.checkpoint import read_checkpoint

    return int(read_checkpoint(path).total_bytes or 0)


#: glibc setting that stops the allocator from raising its mmap threshold after large frees, so freed
#: transient buffers go back to the OS instead of staying in a fragmented heap (a diagnostic run).
FIXED_MMAP_THRESHOLD = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def measure(path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one load in a fresh interpreter and return its figures."""
    proc = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True, text=True,
                          check=False, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise RuntimeError(f"child failed on {path}: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def largest_fixture() -> Path:
    """The largest fixture (tensor bytes) whose load succeeds with the default profile."""
    sizes = sorted(((_tensor_bytes(p), p) for p in FIXTURES.iterdir() if (p / "config.json").is_file()),
                   reverse=True)
    for _, path in sizes:
        try:
            measure(path)
        except RuntimeError:
            continue
        return path
    raise RuntimeError("no fixture loads")


def make_synthetic(directory: Path, layers: int, preset: str = "W4A16") -> Path:
    """A random Llama compressed to ``preset`` by compressed-tensors (the fixture generator's calibration)."""
    import torch
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.quantization import apply_quantization_config
    from transformers import LlamaConfig, LlamaForCausalLM

    sys.path.insert(0, str(REPO / "fixtures"))
    from generate import calibrate_compressed_tensors, ct_config

    torch.manual_seed(0)
    config = LlamaConfig(**SYNTHETIC, num_hidden_layers=layers, dtype=torch.bfloat16)
    model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
    apply_quantization_config(model, ct_config({"group_0": (["Linear"], preset)}), show_progress=False)
    with torch.no_grad():
        calibrate_compressed_tensors(model)
    compressor = ModelCompressor.from_pretrained_model(model)
    compressor.compress_model(model)
    model.save_pretrained(str(directory))
    compressor.update_config(str(directory))
    return directory


def report(name: str, path: Path, figures: dict[str, Any]) -> None:
    quantized = _tensor_bytes(path) / MB
    dense = figures["params"] * 2 / MB
    base, peak, during, after = (figures[k] / 1024 for k in ("baseline_kb", "peak_kb", "peak_during_kb", "after_kb"))
    print(f"{name}: {figures['params'] / 1e6:.1f} M params, load {figures['seconds']:.2f} s, {figures['counts']}")
    print(f"  baseline RSS (after imports) {base:8.1f} MB")
    print(f"  peak RSS, load + first use   {peak:8.1f} MB   (delta {peak - base:.1f} MB)")
    print(f"  peak RSS inside load_quantized {during:6.1f} MB   (delta {during - base:.1f} MB)")
    for label, kb in zip(("pass 1 (quantized layers read, each finalized when complete)", "pass 2 (dense tensors read)"),
                         figures.get("pass_peaks_kb", []), strict=False):
        print(f"    high-water mark after {label}: delta {kb / 1024 - base:.1f} MB")
    print(f"  RSS after load + first use   {after:8.1f} MB   (delta {after - base:.1f} MB; "
          f"anonymous {figures['anon_kb'] / 1024:.1f} MB, file-backed {figures['file_kb'] / 1024:.1f} MB)")
    print(f"  quantized checkpoint         {quantized:8.1f} MB")
    print(f"  dense bf16 model             {dense:8.1f} MB")
    print(f"load_memory: checkpoint={name} quantized_mb={quantized:.1f} dense_mb={dense:.1f} "
          f"peak_rss_delta_mb={peak - base:.1f}")
    modules = figures.get("modules") or []
    if modules:
        held, stored = sum(m[2] for m in modules), sum(m[3] for m in modules)
        ratios = [m[2] / m[3] for m in modules if m[3]]
        backends = ",".join(sorted({m[1] for m in modules}))
        print(f"load_memory_modules: checkpoint={name} modules={len(modules)} held_mb={held / MB:.2f} "
              f"checkpoint_mb={stored / MB:.2f} ratio={held / max(stored, 1):.3f} min={min(ratios):.3f} "
              f"max={max(ratios):.3f} backends={backends}")


#: Float fixtures (issue 15) and the compressed-tensors presets of the synthetic float checkpoints.
FLOAT_FIXTURES = ("ct-fp8", "ct-fp8-block", "ct-fp8-dynamic", "ct-from-modelopt-nvfp4", "ct-mxfp4a16", "ct-nvfp4",
                  "ct-nvfp4a16", "modelopt-fp8", "modelopt-fp8-pc-pt", "modelopt-mxfp4", "modelopt-nvfp4",
                  "modelopt-w4a16-nvfp4", "modelopt-w4a8-awq", "fp8-block", "fp8-block-ragged", "fp8-autofp8-static",
                  "mxfp4-gpt-oss")
FLOAT_PRESETS = "NVFP4A16,NVFP4,MXFP4A16,FP8,FP8_DYNAMIC,FP8_BLOCK"


def float_main(layers: int, presets: list[str]) -> None:
    """Every float fixture (per-module bytes), then each preset's synthetic checkpoint at two depths (RSS slope)."""
    for name in FLOAT_FIXTURES:
        path = FIXTURES / name
        if (path / "config.json").is_file():
            report(f"fixture:{name}", path, measure(path))
    shallow = max(1, layers // 3)
    for preset in presets:
        points = []
        with tempfile.TemporaryDirectory() as tmp:
            for depth in (shallow, layers):
                target = make_synthetic(Path(tmp) / f"{preset}-{depth}", depth, preset)
                figures = measure(target)
                report(f"synthetic-llama-{preset.lower()}-{depth}", target, figures)
                points.append((_tensor_bytes(target), figures["after_kb"] * 1024))
        (b0, r0), (b1, r1) = points
        print(f"load_memory_slope: scheme={preset} rss_per_checkpoint_byte={(r1 - r0) / (b1 - b0):.3f} "
              f"(layers {shallow}→{layers}: +{(b1 - b0) / MB:.1f} MB checkpoint, +{(r1 - r0) / MB:.1f} MB RSS)",
              flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--layers", type=int, default=16, help="layers of the synthetic model (default 16)")
    parser.add_argument("--keep", metavar="DIR", help="write the synthetic checkpoint here and keep it")
    parser.add_argument("--float", action="store_true", help="the float fixtures and synthetic float checkpoints")
    parser.add_argument("--float-schemes", default=FLOAT_PRESETS, help=f"presets for --float ({FLOAT_PRESETS})")
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child)
        return 0
    if args.float:
        float_main(args.layers, args.float_schemes.split(","))
        return 0
    fixture = largest_fixture()
    report(f"fixture:{fixture.name}", fixture, measure(fixture))
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(args.keep) if args.keep else Path(tmp) / "synthetic-w4a16"
        start = time.perf_counter()
        make_synthetic(target, args.layers)
        print(f"(synthetic checkpoint made by compressed-tensors in {time.perf_counter() - start:.0f} s)")
        report("synthetic-llama-w4a16", target, measure(target))
        report("synthetic-llama-w4a16+fixed-mmap-threshold", target, measure(target, FIXED_MMAP_THRESHOLD))
    return 0


if __name__ == "__main__":
    sys.exit(main())
