"""Cold ``quantresolve audit`` of a compressed-tensors checkpoint beside a ModelOpt one.

Each run is a fresh interpreter (``python -m quantresolve audit CKPT --format json``): interpreter
start, imports, config parse, header reads, resolution and the JSON report, as a user's first
command pays them. Runs of the two checkpoints alternate, so machine load hits both alike; the
median of ``--repeats`` is printed per checkpoint, with whether torch was imported (a
``-X importtime`` run per checkpoint counts the modules). The last line reads::

    cold_start: ct_s=X modelopt_s=Y ratio=Z torch_ct=False torch_modelopt=False

Usage::

    python benchmarks/cold_start.py [--repeats 15] [--ct fixtures/checkpoints/ct-w4a16]
                                    [--modelopt fixtures/checkpoints/modelopt-nvfp4]
                                    [--python /tmp/userenv/bin/python] [--source /tmp/qr-before]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


#: The source tree whose ``quantresolve`` runs (``python -m`` puts the working directory first on sys.path).
SOURCE = [REPO]


def audit_command(checkpoint: Path, python: str) -> list[str]:
    return [python, "-m", "quantresolve", "audit", str(checkpoint.resolve()), "--format", "json"]


def one_run(checkpoint: Path, python: str) -> float:
    """Wall seconds of one fresh-process audit (its exit code must be 0 or 1: findings, not bad input)."""
    start = time.perf_counter()
    done = subprocess.run(audit_command(checkpoint, python), capture_output=True, text=True, cwd=SOURCE[0])
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"audit of {checkpoint} failed ({done.returncode}): {done.stderr.strip()}")
    return elapsed


def imports(checkpoint: Path, python: str) -> tuple[bool, int]:
    """(was torch imported, how many modules) in one ``-X importtime`` run."""
    done = subprocess.run([python, "-X", "importtime", *audit_command(checkpoint, python)[1:]],
                          capture_output=True, text=True, cwd=SOURCE[0])
    names = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    return "torch" in names, len(names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--ct", type=Path, default=REPO / "fixtures" / "checkpoints" / "ct-w4a16")
    parser.add_argument("--modelopt", type=Path, default=REPO / "fixtures" / "checkpoints" / "modelopt-nvfp4")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the install to measure")
    parser.add_argument("--source", type=Path, default=REPO,
                        help="source tree to run (e.g. an unpacked older commit, to measure before/after)")
    args = parser.parse_args(argv)
    SOURCE[0] = args.source
    times: dict[str, list[float]] = {"ct": [], "modelopt": []}
    one_run(args.ct, args.python)  # warm the OS page cache: "cold" is the interpreter, not the disk
    one_run(args.modelopt, args.python)
    for _ in range(args.repeats):
        times["ct"].append(one_run(args.ct, args.python))
        times["modelopt"].append(one_run(args.modelopt, args.python))
    ct_torch, ct_modules = imports(args.ct, args.python)
    mo_torch, mo_modules = imports(args.modelopt, args.python)
    ct_s, mo_s = statistics.median(times["ct"]), statistics.median(times["modelopt"])
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (1 min)")
    for name, path, modules in (("ct", args.ct, ct_modules), ("modelopt", args.modelopt, mo_modules)):
        ts = times[name]
        print(f"{name:9s} {path.name:24s} median {statistics.median(ts):.3f} s  min {min(ts):.3f} s  "
              f"max {max(ts):.3f} s  modules imported {modules}")
    print(f"cold_start: ct_s={ct_s:.3f} modelopt_s={mo_s:.3f} ratio={ct_s / mo_s:.2f} "
          f"torch_ct={ct_torch} torch_modelopt={mo_torch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
