"""The audit CLI: formats, output file, exit codes, profile choice, the JSON contract and its schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from quantresolve.cli.audit import _progress

from .conftest import CHECKPOINTS, copy_fixture, edit_json

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "schemas" / "audit-report.schema.json").read_text())
MIXED = CHECKPOINTS / "modelopt-mixed"


@pytest.fixture
def mixed() -> Path:
    if not (MIXED / "config.json").is_file():
        pytest.skip("fixture checkpoints not generated")
    return MIXED


def test_readme_main_command(mixed, cli):
    result = cli("audit", mixed)
    assert result.rc == 0 and result.err == ""
    out = result.out
    for text in ("producer modelopt 0.47.0", "MIXED_PRECISION", "profile llama", "coverage",
                 "per-layer map · model.layers.N", "self_attn.qkv_proj", "quantized linear params: 75.0 %",
                 "findings: 0 error(s), 0 warning(s), 0 info"):
        assert text in out, text
    assert "\x1b[" not in out  # no colours when stdout is not a terminal


def test_json_contract(mixed, cli):
    report = cli("audit", mixed, "--format", "json").json()
    jsonschema.validate(report, SCHEMA)
    assert report["schema_version"] == 2 and report["producer"] == "modelopt"
    modules = {m["name"]: m for m in report["modules"]}
    qkv0 = modules["model.layers.0.self_attn.qkv_proj"]
    assert (qkv0["kind"], qkv0["algo"], qkv0["rule"]) == ("linear", "FP8", "packed-shards")
    assert qkv0["evidence"]["format"] == "fp8" and qkv0["parts"] == 3
    assert qkv0["source"]["file"] == "hf_quant_config.json"
    assert modules["model.layers.1.self_attn.qkv_proj"]["algo"] is None
    assert modules["model.layers.0.mlp.gate_up_proj"]["algo"] == "NVFP4"
    assert modules["lm_head"]["kind"] == "lm_head" and modules["model.embed_tokens"]["kind"] == "embedding"
    assert modules["model.norm"]["kind"] == "other" and modules["model.norm"]["rule"] is None
    cov = report["coverage"]
    assert set(cov["by_algo"]) == {"FP8", "NVFP4", "unquantized"}
    assert cov["by_algo"]["NVFP4"]["modules"] == 4 and cov["quantized_linear_param_fraction"] == 0.75
    total = (REPO / "fixtures/checkpoints/modelopt-mixed/model.safetensors").stat().st_size
    assert sum(e["bytes"] for e in cov["by_algo"].values()) < total  # tensor bytes, header excluded
    (stack,) = report["layer_map"]
    assert stack["rows"][1]["cells"] == {"self_attn.qkv_proj": "unquantized", "self_attn.o_proj": "unquantized",
                                         "mlp.gate_up_proj": "NVFP4", "mlp.down_proj": "NVFP4"}


@pytest.mark.parametrize("name", sorted(p.name for p in CHECKPOINTS.iterdir() if (p / "config.json").is_file())
                         if CHECKPOINTS.is_dir() else [])
def test_every_fixture_report_validates(name, cli):
    result = cli("audit", CHECKPOINTS / name, "--format", "json")
    assert result.rc in (0, 1), result.err  # every fixture is valid input (a stale sidecar is a finding)
    jsonschema.validate(result.json(), SCHEMA)
    assert result.rc == 0, result.json()["findings"]


def test_output_file_and_formats(mixed, cli, tmp_path):
    for fmt, marker in (("markdown", "## Per-layer map: `model.layers.N`"), ("html", "<!DOCTYPE html>"),
                        ("json", '"schema_version": 2'), ("text", "per-layer map")):
        target = tmp_path / f"report.{fmt}"
        result = cli("audit", mixed, "--format", fmt, "--output", target)
        assert result.rc == 0 and result.out == ""
        assert marker in target.read_text(encoding="utf-8")


def test_markdown_tables(mixed, cli):
    out = cli("audit", mixed, "--format", "markdown").out
    assert "| layers | self_attn.qkv_proj | self_attn.o_proj | mlp.gate_up_proj | mlp.down_proj |" in out
    assert "| 1 | unquantized | unquantized | NVFP4 | NVFP4 |" in out


def test_html_is_self_contained(mixed, cli):
    """Inline script and data only (structure: test_html_report.py; behaviour: test_html_chromium.py)."""
    out = cli("audit", mixed, "--format", "html").out
    assert "src=" not in out and "<link" not in out and "Content-Security-Policy" in out
    assert out.count('class="cell"') == 8 and 'title="model.layers.0.self_attn.qkv_proj: FP8"' in out


def test_strict_turns_warnings_into_exit_1(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    edit_json(ckpt / "hf_quant_config.json",
              lambda d: d["quantization"]["exclude_modules"].append("model.vision_tower*"))
    assert cli("audit", ckpt, "--format", "json").rc == 0
    assert cli("audit", ckpt, "--format", "json", "--strict").rc == 1


def test_profile_option(mixed, cli):
    report = cli("audit", mixed, "--profile", "transformers", "--format", "json").json()
    names = {m["name"] for m in report["modules"]}
    assert report["profile"] == "transformers" and "model.layers.0.self_attn.q_proj" in names
    assert not any(n.endswith("qkv_proj") for n in names)


def test_bad_profile_and_usage_exit_2(mixed, cli):
    result = cli("audit", mixed, "--profile", "no-such-profile")
    assert result.rc == 2 and len(result.err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exc:
        cli("audit", mixed, "--format", "yaml")
    assert exc.value.code == 2


def test_progress_is_silent_without_tty(mixed, cli):
    assert cli("audit", mixed, "--format", "json").err == ""
    on_shard, stop = _progress(False)
    assert on_shard is None
    stop()


def test_progress_bar_draws_for_multi_shard(capsys):
    on_shard, stop = _progress(True)
    assert on_shard is not None
    for done in range(1, 4):
        on_shard(done, 3, f"model-0000{done}-of-00003.safetensors")
    stop()
    on_single, stop_single = _progress(True)
    on_single(1, 1, "model.safetensors")  # a single shard draws nothing
    stop_single()


def test_text_keeps_brackets_and_transposes_narrow_maps(tmp_path, cli):
    """User text is never parsed as rich markup; few layer ranges × many modules prints transposed."""
    from .conftest import edit_tensors

    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    scale = ["F32", [], b"\x00\x00\x80\x3f"]
    edit_tensors(ckpt, lambda t: t.update({"model.layers.0.self_attn.k_proj.k_scale": scale}))
    out = cli("audit", ckpt).out
    assert "module \\ layers" in out and "self_attn [kv]" in out
