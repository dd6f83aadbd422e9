"""``quantresolve run``: generated ids, the per-layer backend summary, JSON, and one-line errors (exit 2)."""

from __future__ import annotations

import json

import pytest
import torch

from quantresolve.cli.main import main

from ..conftest import checkpoint_dir
from .loaded import loaded

pytestmark = pytest.mark.filterwarnings("ignore")


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    rc = main(["run", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def _expected(name: str, ids: list[int], new: int) -> list[int]:
    model = loaded(name)
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=new, do_sample=False,
                             pad_token_id=model.config.eos_token_id)
    return out[0, len(ids):].tolist()


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    path = checkpoint_dir("ct-w4a16")
    rc, out, err = _run(capsys, path, "--prompt-ids", "1,2,3", "--max-new-tokens", 5)
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == f"checkpoint {path}: compressed-tensors W4A16"
    assert lines[1] == ("profile    transformers:LlamaForCausalLM, derived from transformers' renamings of "
                        "LlamaForCausalLM (none apply: the checkpoint's names are the model's)")
    assert lines[2] == "prompt     1 2 3"
    assert lines[3] == "generated  " + " ".join(map(str, _expected("ct-w4a16", [1, 2, 3], 5)))
    assert lines[4] == "layers     15"
    backend = loaded("ct-w4a16").model.layers[0].mlp.up_proj.backend
    assert f"    14  W4A16 / {backend}" in lines and "     1  unquantized / dense" in lines
    assert "per layer" not in out


def test_verbose_lists_every_layer_fused(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(capsys, checkpoint_dir("modelopt-mixed"), "--prompt-ids", "7", "--max-new-tokens", 2,
                      "--profile", "llama", "--verbose")
    assert rc == 0
    assert out.splitlines()[1] == "profile    llama, given by the caller"
    rows = out.split("per layer\n")[1].splitlines()
    assert len(rows) == 9  # 2 layers x (qkv, o, gate_up, down) + lm_head
    assert "  model.layers.0.self_attn.qkv_proj\tFP8\tpacked-shards\t" in "\n".join(rows)
    assert any(r.startswith("  model.layers.1.self_attn.qkv_proj\tunquantized\tdefault\tdense") for r in rows)


def test_json_output_with_deny(capsys: pytest.CaptureFixture[str]) -> None:
    auto = loaded("ct-w4a16").model.layers[0].mlp.up_proj.backend
    rc, out, _ = _run(capsys, checkpoint_dir("ct-w4a16"), "--prompt-ids", "4,5", "--max-new-tokens", 3,
                      "--json", "--deny", auto)
    assert rc == 0
    data = json.loads(out)
    assert data["prompt_ids"] == [4, 5] and len(data["generated_ids"]) == 3
    assert data["sequence"] == [4, 5, *data["generated_ids"]]
    assert data["producer"] == "compressed-tensors" and data["profile"] == "transformers:LlamaForCausalLM"
    assert data["profile_reason"].startswith("derived from transformers' renamings of LlamaForCausalLM")
    layers = {r["prefix"]: r for r in data["layers"]}
    assert len(layers) == 15 and layers["lm_head"]["algo"] is None and layers["lm_head"]["rule"] == "excluded"
    quantized = [r for r in layers.values() if r["algo"] == "W4A16"]
    assert len(quantized) == 14 and all(r["backend"] not in (auto, "dense") for r in quantized)
    assert sum(data["counts"].values()) == 15


def test_kv_cache_line(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(capsys, checkpoint_dir("modelopt-w4a16-nvfp4-fp8kv"), "--prompt-ids", "1", "--max-new-tokens", 1)
    assert rc == 0
    assert "kv cache   FP8 scales on 2 attention module(s), applied in attention" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--prompt-ids", "1,x"], "--prompt-ids: '1,x' is not a comma-separated list of token ids"),
    (["--prompt-ids", "1,999"], "--prompt-ids: token id(s) [999] outside the vocabulary of 256"),
    (["--prompt-ids", "1", "--backend", "nope"], "unknown backend 'nope'"),
    (["--prompt-ids", "1", "--deny", "nope"], "unknown backend(s) ['nope']"),
    (["--prompt-ids", "1", "--profile", "no-such-profile"], "unknown profile 'no-such-profile'"),
])
def test_bad_input_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    rc, out, err = _run(capsys, checkpoint_dir("ct-w4a16"), *args)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("quantresolve run: error: ") and message in err


def test_missing_checkpoint_and_bad_count(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    rc, _, err = _run(capsys, tmp_path / "nope", "--prompt-ids", "1")
    assert rc == 2 and "no such file or directory" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as exc:
        main(["run", str(checkpoint_dir("ct-w4a16")), "--prompt-ids", "1", "--max-new-tokens", "0"])
    assert exc.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err
