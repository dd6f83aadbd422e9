"""Every corpus folder with an index file audits without crashing (index-only: reduced evidence).

Folders without a quantization config, or with one outside quantresolve's scope, are refused with
exit 2 and one line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def _indexed() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.iterdir() if p.is_dir() and any((p / f).is_file() for f in INDEX_FILES))


def _corpus(name: str) -> Path:
    path = CORPUS / name
    if not path.is_dir():
        pytest.skip(f"corpus folder {name} not available")
    return path


pytestmark = pytest.mark.corpus


@pytest.mark.parametrize("folder", _indexed(), ids=lambda p: p.name)
def test_audits_or_refuses_in_one_line(folder, cli):
    result = cli("audit", folder, "--format", "json")
    if result.rc == 2:
        lines = result.err.strip().splitlines()
        assert len(lines) == 1 and result.out == ""
        assert "no quantization config" in lines[0] or "does not handle" in lines[0] or "unsupported" in lines[0]
        return
    report = result.json()
    assert result.rc in (0, 1)
    if not (folder / "model.safetensors.index.json").is_file() or report["evidence_level"] == "names-only":
        assert "names-only" in result.codes()
    assert report["modules"]


def test_molmo_skip_list_is_component_exact(cli):
    """Molmo NF4 skips model.transformer.ff_out (its LM head) while every block's ff_out stays NF4."""
    result = cli("audit", _corpus("allenai__Molmo-7B-D-0924__NF4-reubzdubz"), "--format", "json")
    assert result.rc == 0
    modules = {m["name"]: m for m in result.json()["modules"]}
    head = modules["model.transformer.ff_out"]
    assert (head["kind"], head["algo"], head["rule"]) == ("lm_head", None, "excluded")
    assert head["source"]["original"] == "model.transformer.ff_out"
    blocks = [m for n, m in modules.items() if n.startswith("model.transformer.blocks.") and n.endswith(".ff_out")]
    assert len(blocks) == 28 and all(m["algo"] == "BNB_NF4" for m in blocks)
    vision = [m for n, m in modules.items() if n.startswith("model.vision_backbone.") and m["kind"] == "linear"]
    assert vision and all(m["algo"] is None and m["rule"] == "excluded" for m in vision)
    assert not {"dead-exclude"} & result.codes()


def test_gpt_oss_mxfp4_experts_and_skip_globs(cli):
    """gpt-oss-20b's index: each layer's fused experts are one MXFP4 MoE unit; attention, routers, the
    embedding and the head are skipped by the config's globs and names, each naming its entry."""
    result = cli("audit", _corpus("openai__gpt-oss-20b__EchoCog"), "--format", "json")
    assert result.rc == 0, result.err
    report = result.json()
    assert (report["producer"], report["quant_algo"]) == ("mxfp4", "MXFP4A16")
    modules = {m["name"]: m for m in report["modules"]}
    experts = [m for n, m in modules.items() if n.endswith(".mlp.experts")]
    assert len(experts) == 24 and all((m["kind"], m["algo"]) == ("moe", "MXFP4A16") for m in experts)
    assert modules["model.layers.7.self_attn.q_proj"]["source"]["original"] == "model.layers.*.self_attn"
    assert modules["model.layers.7.mlp.router"]["source"]["original"] == "model.layers.*.mlp.router"
    assert (modules["lm_head"]["rule"], modules["model.embed_tokens"]["rule"]) == ("excluded", "excluded")
    assert not {"dead-exclude", "unknown-tensor-format"} & result.codes()


def test_unquantized_checkpoint_refused(cli):
    result = cli("audit", _corpus("meta-llama__Llama-3.2-3B-Instruct"))
    assert result.rc == 2 and "no quantization config" in result.err


def test_bnb_int8_llama_keeps_lm_head(cli):
    result = cli("audit", _corpus("Irfanuruchi__Llama-3.1-8B-Computer-Networks-LLM"), "--format", "json")
    modules = {m["name"]: m for m in result.json()["modules"]}
    assert modules["lm_head"]["algo"] is None
    assert modules["model.layers.0.self_attn.qkv_proj"]["algo"] == "BNB_INT8"
    assert result.json()["profile"] == "llama"
