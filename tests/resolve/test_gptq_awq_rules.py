"""GPTQ ``dynamic`` / inclusion lists and AWQ ``modules_to_not_convert``: our order-independent rules."""

from __future__ import annotations

from typing import Any

import pytest

from quantresolve import load_config
from quantresolve.errors import ConflictingShardsError, ResolutionError
from quantresolve.resolve.resolver import Resolver

GPTQ = {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False, "sym": True}
AWQ = {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}
Q0, K0, O1 = "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj", "model.layers.1.self_attn.o_proj"


def resolver(section: dict[str, Any], profile: str = "transformers", modules: list[str] | None = None) -> Resolver:
    return Resolver(load_config(section), profile, checkpoint_modules=modules)


def dynamic(rules: dict[str, dict]) -> Resolver:
    return resolver({**GPTQ, "dynamic": rules})


def test_negative_key_wins_whatever_the_order() -> None:
    """GPTQModel moves -: keys first; config.json's sorted copy puts +: first (vLLM would take it). Both
    orders give the same answer here."""
    for rules in ({"-:.*\\.1\\..*": {}, "+:.*o_proj": {"bits": 8}}, {"+:.*o_proj": {"bits": 8}, "-:.*\\.1\\..*": {}}):
        res = dynamic(rules).resolve(O1)
        assert (res.algo, res.rule, res.source.original) == (None, "excluded", "-:.*\\.1\\..*")


def test_keys_match_from_the_start_only() -> None:
    r = dynamic({"-:layers\\.1\\.": {}, "+:model\\.layers\\.0\\.self_attn": {"bits": 8}})
    assert r.resolve(O1).rule == "default"  # re.match: 'layers\.1\.' is not at the start of the name
    assert (r.resolve(Q0).algo, r.resolve(Q0).rule) == ("W8A16", "dynamic")  # a prefix match covers the module


def test_conflicting_positive_keys_are_an_error_not_first_wins() -> None:
    r = dynamic({".*q_proj": {"bits": 8}, "+:.*layers\\.0\\..*": {"bits": 2}})
    with pytest.raises(ResolutionError) as info:
        r.resolve(Q0)
    assert "'.*q_proj' → W8A16" in str(info.value) and "W2A16" in str(info.value)
    same = dynamic({".*q_proj": {"bits": 8}, "+:.*layers\\.0\\..*": {"bits": 8}}).resolve(Q0)
    assert (same.algo, same.source.original) == ("W8A16", "+:.*layers\\.0\\..*")  # first by spelling


def test_fused_layer_under_different_keys_is_a_conflict() -> None:
    r = resolver({**GPTQ, "dynamic": {".*\\.0\\.self_attn\\.q_proj": {"bits": 8}}}, "llama")
    with pytest.raises(ConflictingShardsError) as info:
        r.resolve("model.layers.0.self_attn.qkv_proj")
    assert "q_proj → W8A16 (dynamic, '.*\\\\.0\\\\.self_attn\\\\.q_proj')" in str(info.value)
    assert "k_proj → W4A16 (default)" in str(info.value)
    agreed = resolver({**GPTQ, "dynamic": {".*\\.0\\.self_attn\\..*": {"bits": 8}}}, "llama")
    assert agreed.resolve("model.layers.0.self_attn.qkv_proj").algo == "W8A16"


def test_explain_names_the_deciding_key() -> None:
    text = dynamic({"-:.*\\.1\\..*": {}}).resolve(O1).explain()
    assert "excluded" in text and "-:.*\\.1\\..*" in text and 'dynamic["-:.*\\\\.1\\\\..*"]' in text


def test_lm_head_flag() -> None:
    assert resolver(GPTQ).resolve("lm_head", "lm_head").rule == "excluded"
    assert resolver({**GPTQ, "lm_head": True}).resolve("lm_head", "lm_head").algo == "W4A16"


def test_inclusion_lists_match_whole_components() -> None:
    r = resolver({**GPTQ, "block_name_to_quantize": "model.layers.1",
                  "modules_in_block_to_quantize": [["self_attn.o_proj"], ["mlp.down_proj"]]})
    assert r.resolve(O1).algo == "W4A16"
    assert r.resolve("model.layers.12.self_attn.o_proj").rule == "not-included"  # not a raw startswith
    assert r.resolve("model.layers.1.self_attn.xo_proj").rule == "not-included"  # not a raw endswith
    assert r.resolve("model.layers.1.mlp.up_proj").rule == "not-included"


def test_awq_excludes_by_whole_components() -> None:
    r = resolver({**AWQ, "modules_to_not_convert": ["visual", "kv_proj"]}, "transformers")
    assert r.resolve("model.visual.blocks.0.attn.qkv").rule == "excluded"  # transformers 5 misses it
    assert r.resolve("visual.blocks.0.attn.qkv").rule == "excluded"
    assert r.resolve("model.layers.0.self_attn.qkv_proj").algo == "W4A16_ASYM"
    assert [(f.code, f.subject) for f in r.findings] == [("exclude-substring-only", "model.layers.0.self_attn.qkv_proj")]
    assert r.resolve("lm_head", "lm_head").rule == "producer-default-skip"


def test_awq_fused_shards_must_all_be_excluded() -> None:
    r = resolver({**AWQ, "modules_to_not_convert": ["q_proj"]}, "llama")
    with pytest.raises(ConflictingShardsError):
        r.resolve("model.layers.0.self_attn.qkv_proj")
