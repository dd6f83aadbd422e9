"""`quantresolve inspect`, `quantresolve schema`, committed-schema freshness, torch-free import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from quantresolve.cli.main import main
from quantresolve.cli.schema_catalog import SCHEMAS, render
from tests.conftest import REPO, corpus_dir


def test_inspect_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(corpus_dir("nvidia__Qwen3.6-35B-A3B-NVFP4")), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["producer"] == "modelopt" and data["quant_algo"] == "MIXED_PRECISION"
    assert len(data["layers"]) == 291
    assert {f["code"] for f in data["findings"]} == {"files-disagree-kv", "files-disagree-producer-version"}


def test_inspect_rich_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(corpus_dir("allenai__Molmo-7B-D-0924__NF4-reubzdubz"))]) == 0
    out = capsys.readouterr().out
    assert "bitsandbytes" in out and "BNB_NF4" in out and "model.transformer.ff_out" in out


def test_inspect_every_corpus_folder_exits_0_or_2(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import corpus_folders

    folders = corpus_folders()
    if not folders:
        pytest.skip("corpus not available")
    for folder in folders:
        code = main(["inspect", str(folder), "--json"])
        _out, err = capsys.readouterr()
        assert code in (0, 2), folder
        if code == 2:
            assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "hf_quant_config.json").write_text('{"quantization": {"quant_algo": "FP9"}}')
    proc = subprocess.run([sys.executable, "-m", "quantresolve", "inspect", str(tmp_path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "hf_quant_config.json: quantization.quant_algo: unknown algorithm 'FP9'" in lines[0]


def test_usage_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["inspect"])
    assert info.value.code == 2


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_committed_schemas_are_fresh(name: str) -> None:
    committed = REPO / "schemas" / name
    assert committed.is_file(), f"{name} missing: run `quantresolve schema --output-dir schemas`"
    assert committed.read_text(encoding="utf-8") == render(SCHEMAS[name]), (
        f"schemas/{name} is stale: run `quantresolve schema --output-dir schemas`")


def test_schema_command_writes_all(tmp_path: Path) -> None:
    assert main(["schema", "--output-dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(SCHEMAS)


def test_normalized_output_validates_against_its_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from quantresolve import load_config

    schema = json.loads((REPO / "schemas" / "normalized-config.schema.json").read_text())
    cfg = load_config(corpus_dir("nvidia__Qwen3.6-35B-A3B-NVFP4"))
    jsonschema.validate(json.loads(cfg.model_dump_json()), schema)


def test_core_import_is_torch_free() -> None:
    code = ("import sys, quantresolve; from quantresolve import load_config; "
            "load_config({'quant_method': 'modelopt', 'quant_algo': 'NVFP4'}); "
            "load_config({'load_in_4bit': True}); import quantresolve.cli.main; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
