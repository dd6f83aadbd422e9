"""The GPTQ / AWQ fixtures (``fixtures/gptq_awq.py``) load, generate, audit clean, and refuse bad tensors.

Their references are the round-to-nearest model before packing (``fixtures/README.md``): a loader that
unpacks the layout right reproduces it bit for bit. Measured on the box that wrote them (strict mode):
``backend="dense_dequant"`` 0.0 for all seven; the auto backends (int4pack_cpu, int8split_cpu,
int8pack_cpu) ≤ 0.0078 (AWQ), ≤ 0.0064 (GPTQ). Cross-machine bounds are not measured (no second
machine wrote these references): set at ~2x the strict ones, as for ct-w4a16.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from quantresolve.audit import audit_checkpoint
from quantresolve.integrations.transformers import load_quantized

from ..conftest import checkpoint_dir
from ..references import Tolerance, check_generation, check_logits, reference_mode
from .loaded import loaded, logits, reference

pytestmark = pytest.mark.filterwarnings("ignore")

#: fixture → (auto-backend tolerance, relative distance of the unquantized model's logits from the reference)
FIXTURES: dict[str, tuple[Tolerance, float]] = {
    "gptq-w4-g128": (Tolerance(0.009, 0.018), 0.2175),
    "gptq-w4-g32-act": (Tolerance(0.009, 0.018), 0.1632),
    "gptq-w3-g32-asym-v2": (Tolerance(0.010, 0.020), 0.2983),
    "gptq-w8-channel": (Tolerance(0.009, 0.018), 0.0170),
    "gptq-dynamic": (Tolerance(0.009, 0.018), 0.1251),
    "awq-w4-g128": (Tolerance(0.012, 0.024), 0.1681),
    "awq-not-convert": (Tolerance(0.012, 0.024), 0.1652),
}
BIT_EXACT = Tolerance(0.004, 0.02)  # dense_dequant: one bf16 step strict (0.0 measured)


def _mode(name: str) -> str:
    return reference_mode(checkpoint_dir(name))


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_logits_match_the_reference(name: str) -> None:
    tol, dense_rel = FIXTURES[name]
    check_logits(logits(name), reference(name)["logits"], tol.for_mode(_mode(name)), dense_rel=dense_rel, label=name)


@pytest.mark.parametrize("name", ["gptq-w3-g32-asym-v2", "gptq-w4-g32-act", "awq-w4-g128", "gptq-dynamic"])
def test_dequantized_load_is_bit_exact(name: str) -> None:
    model = load_quantized(checkpoint_dir(name), backend="dense_dequant")
    ref = reference(name)
    with torch.no_grad():
        ours = model(ref["input_ids"]).logits.float()
    check_logits(ours, ref["logits"], BIT_EXACT.for_mode(_mode(name)), label=name)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_greedy_generation(name: str) -> None:
    check_generation(loaded(name), reference(name), FIXTURES[name][0].for_mode(_mode(name)))


def test_backends_and_schemes() -> None:
    counts = loaded("gptq-dynamic").quantresolve_report.counts()
    assert counts == {"W4A16 / int4pack_cpu": 7, "W8A16 / int8split_cpu": 4, "unquantized / dense": 4}
    assert loaded("awq-not-convert").quantresolve_report.counts() == {
        "W4A16_ASYM / int4pack_cpu": 12, "unquantized / dense": 3}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_audit_is_clean(name: str) -> None:
    report = audit_checkpoint(checkpoint_dir(name))
    assert [f.code for f in report.findings] == []
    assert {m.algo for m in report.modules if m.kind == "linear"} - {None} == (
        {"W4A16", "W8A16"} if name == "gptq-dynamic" else {report.quant_algo})


def test_run_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "quantresolve", "run", str(checkpoint_dir("gptq-w4-g32-act")),
                           "--prompt-ids", "1,2,3", "--max-new-tokens", "4", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert len(out["generated_ids"]) == 4 and out["producer"] == "gptq" and out["quant_algo"] == "W4A16"


def _copy(name: str, tmp: Path) -> Path:
    target = tmp / name
    shutil.copytree(checkpoint_dir(name), target)
    return target


def _edit_config(path: Path, **changes: object) -> None:
    config = json.loads((path / "config.json").read_text())
    config["quantization_config"].update(changes)
    (path / "config.json").write_text(json.dumps(config))


def test_audit_finds_config_and_tensor_disagreements(tmp_path: Path) -> None:
    """bits 8 over 4-bit tensors, a group size that does not divide K: findings naming the modules."""
    wrong_bits = _copy("gptq-w4-g128", tmp_path / "bits")
    _edit_config(wrong_bits, bits=8)
    codes = {f.code for f in audit_checkpoint(wrong_bits).findings}
    assert "format-mismatch" in codes
    wrong_group = _copy("awq-w4-g128", tmp_path / "group")
    _edit_config(wrong_group, group_size=48)
    findings = [f for f in audit_checkpoint(wrong_group).findings if f.code == "group-size-mismatch"]
    assert findings and "48" in findings[0].message
    excluded = _copy("awq-w4-g128", tmp_path / "exclude")
    _edit_config(excluded, modules_to_not_convert=["o_proj"])
    assert "config-unquantized-tensors-quantized" in {f.code for f in audit_checkpoint(excluded).findings}


def test_run_refuses_a_g_idx_that_is_not_a_permutation(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    path = _copy("gptq-w4-g32-act", tmp_path)
    tensors = load_file(str(path / "model.safetensors"))
    g_idx = tensors["model.layers.0.mlp.up_proj.g_idx"]
    g_idx[0] = (int(g_idx[0]) + 1) % 4
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    done = subprocess.run([sys.executable, "-m", "quantresolve", "run", str(path), "--prompt-ids", "1,2",
                           "--max-new-tokens", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "g_idx" in done.stderr and "not a permutation" in done.stderr and "up_proj" in done.stderr
