"""The checkpoint package must import without torch (the audit runs where torch is absent)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "audit_scale_data.py"


def _torch_loaded_after(code: str) -> bool:
    probe = f"import sys\n{code}\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.strip() == "True"


def test_import_leaves_torch_out_of_sys_modules() -> None:
    assert not _torch_loaded_after("import quantresolve.checkpoint")


def test_benchmark_module_is_torch_free() -> None:
    assert not _torch_loaded_after(f"import runpy; runpy.run_path({str(BENCHMARK)!r})")


def test_probe_detects_torch() -> None:
    # The probe itself must be able to fail.
    assert _torch_loaded_after("import torch")
