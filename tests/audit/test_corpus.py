"""Every corpus folder with an index file audits without crashing (index-only: reduced evidence).

Every folder with a quantization config quantresolve reads audits; a folder without any quantization
config is a dense model (exit 0). Every folder, with or without index, is in ``test_every_model.py``
(and their finding counts in ``test_expected_findings.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import CorpusAudits

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def _indexed() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.iterdir() if p.is_dir() and any((p / f).is_file() for f in INDEX_FILES))


pytestmark = pytest.mark.corpus


@pytest.mark.parametrize("folder", _indexed(), ids=lambda p: p.name)
def test_audits_or_refuses_in_one_line(folder, corpus_audit: CorpusAudits):
    result = corpus_audit(folder.name)
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


def test_molmo_skip_list_is_component_exact(corpus_audit: CorpusAudits):
    """Molmo NF4 skips model.transformer.ff_out (its LM head) while every block's ff_out stays NF4."""
    result = corpus_audit("allenai__Molmo-7B-D-0924__NF4-reubzdubz")
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


def test_gpt_oss_mxfp4_experts_and_skip_globs(corpus_audit: CorpusAudits):
    """gpt-oss-20b's index: each layer's fused experts are one MXFP4 MoE unit; attention, routers, the
    embedding and the head are skipped by the config's globs and names, each naming its entry."""
    result = corpus_audit("openai__gpt-oss-20b__EchoCog")
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


def test_unquantized_checkpoint_is_a_dense_audit(corpus_audit: CorpusAudits):
    result = corpus_audit("meta-llama__Llama-3.2-3B-Instruct")
    assert result.rc == 0 and "no-quantization-config" in result.codes()
    report = result.json()
    assert report["producer"] is None and all(m["algo"] is None for m in report["modules"])
    assert {m["rule"] for m in report["modules"] if m["kind"] != "other"} == {"no-config"}


def test_bnb_int8_llama_keeps_lm_head(corpus_audit: CorpusAudits):
    result = corpus_audit("Irfanuruchi__Llama-3.1-8B-Computer-Networks-LLM")
    modules = {m["name"]: m for m in result.json()["modules"]}
    assert modules["lm_head"]["algo"] is None
    assert modules["model.layers.0.self_attn.qkv_proj"]["algo"] == "BNB_INT8"
    assert result.json()["profile"] == "llama"
