"""Every real index in the corpus parses as an index-only catalog (names, no headers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quantresolve.checkpoint import build_inventory, classify_inventory, read_checkpoint

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
INDEXES = sorted(CORPUS.glob("*/model.safetensors.index.json")) if CORPUS.is_dir() else []

pytestmark = pytest.mark.corpus


def _need(name: str) -> Path:
    root = CORPUS / name
    if not (root / "model.safetensors.index.json").is_file():
        pytest.skip(f"{name} not in the corpus")
    return root


@pytest.mark.skipif(not INDEXES, reason="corpus absent")
@pytest.mark.parametrize("index", INDEXES, ids=lambda p: p.parent.name)
def test_corpus_index_parses(index: Path) -> None:
    catalog = read_checkpoint(index.parent)
    weight_map = json.loads(index.read_text())["weight_map"]
    assert not catalog.has_headers
    assert set(catalog.tensors) == set(weight_map)
    assert all(catalog.tensors[n].file == f for n, f in weight_map.items())
    inventory = build_inventory(catalog)
    assert sum(len(m.params) for m in inventory.modules.values()) == len(weight_map)
    assert all(m for m in inventory.modules), "no empty module names"
    evidence = classify_inventory(inventory)
    assert all(e.confidence == "names-only" for e in evidence.values())


def test_molmo_nf4_is_bnb_4bit_by_names() -> None:
    root = _need("allenai__Molmo-7B-D-0924__NF4-reubzdubz")
    evidence = classify_inventory(build_inventory(read_checkpoint(root)))
    assert evidence["model.transformer.blocks.0.ff_out"].kind == "bnb-4bit"
    assert evidence["model.transformer.blocks.0.attn_norm"].kind == "dense"


def test_gpt_oss_fused_experts_are_one_module_each() -> None:
    root = _need("openai__gpt-oss-20b__EchoCog")
    inventory = build_inventory(read_checkpoint(root))
    experts = inventory.modules["model.layers.0.mlp.experts"]
    assert experts.layout == "fused-experts"
    assert sorted(experts.params) == sorted(f"{p}_{s}" for p in ("gate_up_proj", "down_proj")
                                            for s in ("blocks", "scales", "bias"))
    assert sum(m.layout == "fused-experts" for m in inventory.modules.values()) == 24
    evidence = classify_inventory(inventory)
    assert (evidence["model.layers.0.mlp.experts"].kind, evidence["model.layers.0.mlp.experts"].fused_experts) == (
        "mxfp4", True)
    assert evidence["model.layers.0.self_attn.q_proj"].kind == "dense"
