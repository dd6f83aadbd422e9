"""Audit a synthetic 163-shard DeepSeek-V3-scale checkpoint end to end.

Writes the sparse checkpoint with :mod:`audit_scale_data` (headers only; the data
regions take no disk), then runs ``quantresolve audit DIR --format json --output FILE``
as a fresh process ``--repeats`` times (interpreter start, imports, header reads,
resolution, findings, coverage and JSON included) and reports the median. An
in-process phase breakdown of one run is printed too. The last line reads::

    audit_scale: shards=163 tensors=N total_s=X

Usage::

    python benchmarks/audit_scale.py [--dir DIR] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from audit_scale_data import write_synthetic_deepseek_checkpoint


def phases(directory: Path) -> dict[str, float]:
    """Seconds per phase of one in-process audit (after imports)."""
    from quantresolve.audit.engine import audit_inventory, choose_profile
    from quantresolve.audit.render import render_json
    from quantresolve.checkpoint import build_inventory, classify_inventory, read_checkpoint
    from quantresolve.formats.loader import load_config
    from quantresolve.util.gcpause import gc_paused

    with gc_paused():
        t0 = time.perf_counter()
        config = load_config(directory)
        profile = choose_profile(directory, None)
        t1 = time.perf_counter()
        catalog = read_checkpoint(directory)
        t2 = time.perf_counter()
        inventory = build_inventory(catalog)
        evidence = classify_inventory(inventory)
        t3 = time.perf_counter()
        report = audit_inventory(config, inventory, evidence, profile, checkpoint=str(directory),
                                 shards=len(catalog.shards))
        t4 = time.perf_counter()
        render_json(report)
        t5 = time.perf_counter()
    return {"config": t1 - t0, "read_headers": t2 - t1, "inventory+evidence": t3 - t2,
            "resolve+findings+coverage": t4 - t3, "json": t5 - t4, "modules": len(report.modules),
            "findings": len(report.findings)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, help="where to write the checkpoint (default: a temp dir)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="audit-scale-") as tmp:
        directory = args.dir or Path(tmp) / "ckpt"
        t0 = time.perf_counter()
        tensors = write_synthetic_deepseek_checkpoint(directory)
        print(f"wrote {tensors} tensors in 163 shards in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        report_path = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "quantresolve", "audit", str(directory), "--format", "json",
                   "--output", str(report_path)]
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            times.append(time.perf_counter() - start)
            if done.returncode not in (0, 1):
                print(done.stderr, file=sys.stderr)
                return 2
        report = json.loads(report_path.read_text())
        breakdown = phases(directory)
        print(json.dumps({"runs_s": [round(t, 3) for t in times], "exit_code": done.returncode,
                          "summary": report["summary"],
                          "phases_s": {k: round(v, 3) if isinstance(v, float) else v for k, v in breakdown.items()}},
                         indent=2))
        print(f"audit_scale: shards=163 tensors={tensors} total_s={statistics.median(times):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
