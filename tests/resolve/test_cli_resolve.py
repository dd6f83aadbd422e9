"""``quantresolve resolve`` contract: lines, ``--json``, ``--explain``, ``--kind``, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from quantresolve.cli.main import main

QKV = "language_model.model.layers.1.self_attn.qkv_proj"
GEMMA4_LAYERS = {f"model.language_model.layers.1.self_attn.{p}": {"quant_algo": "NVFP4", "group_size": 16}
                 for p in ("q_proj", "k_proj")}


def _write(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture()
def gemma4(tmp_path: Path) -> Path:
    """A Gemma-4 global layer quantized by q/k entries; the checkpoint has no v_proj (attention_k_eq_v)."""
    _write(tmp_path / "config.json", {"architectures": ["Gemma4ForConditionalGeneration"]})
    _write(tmp_path / "hf_quant_config.json", {"producer": {"name": "modelopt", "version": "0.45.0"},
                                               "quantization": {"quant_algo": "MIXED_PRECISION",
                                                                "quantized_layers": GEMMA4_LAYERS}})
    return tmp_path


def _index(root: Path, modules: list[str]) -> None:
    _write(root / "model.safetensors.index.json",
           {"metadata": {}, "weight_map": {f"{m}.weight": "model-00001.safetensors" for m in modules}})


@pytest.fixture()
def nemotron(tmp_path: Path) -> Path:
    layers = {f"backbone.layers.1.mixer.experts.{e}.{p}": {"quant_algo": "W4A16_NVFP4", "group_size": 16}
              for e in range(2) for p in ("up_proj", "down_proj")}
    _write(tmp_path / "config.json", {"architectures": ["NemotronHForCausalLM"]})
    _write(tmp_path / "hf_quant_config.json", {"producer": {"name": "modelopt", "version": "0.45.0"},
                                               "quantization": {"quant_algo": "MIXED_PRECISION",
                                                                "quantized_layers": layers,
                                                                "exclude_modules": ["backbone.embeddings"]}})
    return tmp_path


def test_index_tells_which_shards_exist(gemma4: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # without the index, v_proj is assumed present and unlisted → a loud conflict, exit 1
    assert main(["resolve", str(gemma4), QKV]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith(f"{QKV}\terror\tConflictingShardsError") and "v_proj" in out[0]
    _index(gemma4, [f"model.language_model.layers.1.self_attn.{p}" for p in ("q_proj", "k_proj", "o_proj")])
    assert main(["resolve", str(gemma4), QKV]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{QKV}\tNVFP4\tpacked-shards\tmodel.language_model.layers.1.self_attn.k_proj"]


def test_one_line_per_prefix_and_json(gemma4: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _index(gemma4, [f"model.language_model.layers.1.self_attn.{p}" for p in ("q_proj", "k_proj", "o_proj")])
    prefixes = [QKV, "language_model.model.layers.1.self_attn.o_proj", "language_model.model.layers.1.mlp.down_proj"]
    assert main(["resolve", str(gemma4), *prefixes]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == prefixes
    assert lines[1].split("\t")[1:] == ["unquantized", "default", "-"]
    assert main(["resolve", str(gemma4), "--json", *prefixes]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["prefix"] for d in data] == prefixes
    assert data[0] == {"prefix": QKV, "kind": "linear", "algo": "NVFP4", "rule": "packed-shards",
                       "source": {"original": "model.language_model.layers.1.self_attn.k_proj",
                                  "mapped": "language_model.model.layers.1.self_attn.k_proj"}}
    assert data[1]["algo"] is None and data[1]["source"] is None


def test_failing_prefix_gets_error_object_and_exit_1(gemma4: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resolve", str(gemma4), "--json", "language_model.model.layers.1.mlp.down_proj", "", QKV]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data[0]["rule"] == "default" and "error" not in data[0]
    assert data[1]["error"]["type"] == "InvalidPrefixError"
    assert data[2]["error"]["type"] == "ConflictingShardsError"
    for shard in ("q_proj", "k_proj", "v_proj"):
        assert f"self_attn.{shard}" in data[2]["error"]["message"]


def test_explain_prints_the_trail(gemma4: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _index(gemma4, [f"model.language_model.layers.1.self_attn.{p}" for p in ("q_proj", "k_proj")])
    assert main(["resolve", str(gemma4), "--explain", QKV]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{QKV} [linear] → NVFP4 by rule 'packed-shards'")
    assert "entry: model.language_model.layers.1.self_attn.k_proj → language_model.model" in out
    assert "part: language_model.model.layers.1.self_attn.q_proj → NVFP4 (direct)" in out
    assert "tried:" in out and "v_proj" in out


def test_kind_moe_and_embedding(nemotron: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resolve", str(nemotron), "--kind", "moe", "--json", "model.layers.1.mixer.experts"]) == 0
    [moe] = json.loads(capsys.readouterr().out)
    assert (moe["kind"], moe["algo"], moe["rule"]) == ("moe", "W4A16_NVFP4", "experts")
    assert moe["source"]["original"].startswith("backbone.layers.1.mixer.experts.")
    # the profile comes from config.json architectures (backbone. → model.)
    assert main(["resolve", str(nemotron), "model.embed_tokens"]) == 0
    assert capsys.readouterr().out.split("\t")[1:3] == ["unquantized", "excluded"]


@pytest.mark.parametrize("bad", ["unreadable", "profile", "kind"])
def test_bad_input_exits_2_with_one_line(bad: str, gemma4: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    if bad == "unreadable":
        broken = tmp_path / "broken.json"
        broken.write_text("{not json", encoding="utf-8")
        argv = ["resolve", str(broken), "model.layers.0.mlp.down_proj"]
    elif bad == "profile":
        argv = ["resolve", str(gemma4), "--profile", "no-such-profile", QKV]
    else:
        argv = ["resolve", str(gemma4), "--kind", "router", QKV]
    code: int | str | None
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse rejects a bad choice itself
        code = exc.code
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    if bad == "profile":
        assert "no-such-profile" in captured.err
