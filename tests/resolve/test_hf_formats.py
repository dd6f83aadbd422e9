"""HF fine-grained FP8 and gpt-oss MXFP4 resolution: which skip entry decided, and where engines disagree.

Realistic configs come from ``../shared/corpus`` (Qwen3-30B-A3B-FP8, DeepSeek-V3, gpt-oss-20b; each test
skips when its folder is absent); the edge cases use small inline configs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from quantresolve import load_config
from quantresolve.errors import ConflictingShardsError
from quantresolve.resolve.resolver import Resolver

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


def _corpus(folder: str) -> Path:
    path = CORPUS / folder
    if not (path / "config.json").is_file():
        pytest.skip(f"corpus folder {folder} absent")
    return path


def _answer(resolver: Resolver, prefix: str, kind: str = "linear") -> tuple[str | None, str, str | None]:
    r = resolver.resolve(prefix, kind)
    return r.algo, r.rule, None if r.source is None else r.source.original


def _fp8(**fields: Any) -> Any:
    return load_config({"quant_method": "fp8", "activation_scheme": "dynamic", "fmt": "e4m3",
                        "weight_block_size": [128, 128], **fields})


def test_qwen3_fp8_skip_list_names_its_deciding_entry() -> None:
    cfg = load_config(_corpus("Qwen__Qwen3-30B-A3B-FP8"))
    r = Resolver(cfg)
    assert _answer(r, "model.layers.3.mlp.gate") == (None, "excluded", "model.layers.3.mlp.gate")
    res = r.resolve("model.layers.3.mlp.gate")
    assert res.source is not None and res.source.field == "quantization_config.modules_to_not_convert[11]"
    assert "skip entry 'model.layers.3.mlp.gate' matches model.layers.3.mlp.gate (exact)" in res.explain()
    assert _answer(r, "lm_head", "lm_head") == (None, "excluded", "lm_head")
    assert _answer(r, "model.layers.3.self_attn.q_proj") == ("FP8_BLOCK", "default", None)
    assert _answer(r, "model.layers.47.mlp.experts.5.down_proj") == ("FP8_BLOCK", "default", None)
    assert r.findings == []


def test_deepseek_v3_without_skip_list_leaves_the_head_to_the_producer_default() -> None:
    cfg = load_config(_corpus("deepseek-ai__DeepSeek-V3"))
    r = Resolver(cfg)
    res = r.resolve("lm_head", "lm_head")
    assert (res.algo, res.rule, res.source) == (None, "producer-default-skip", None)
    assert "transformers skips the output embedding by default" in res.explain()
    assert _answer(r, "model.layers.3.self_attn.kv_a_proj_with_mqa") == ("FP8_BLOCK", "default", None)


def test_gpt_oss_globs_decide_and_are_never_rewritten() -> None:
    path = _corpus("openai__gpt-oss-20b__EchoCog")
    listed = json.loads((path / "config.json").read_text())["quantization_config"]["modules_to_not_convert"]
    r = Resolver(load_config(path))
    res = r.resolve("model.layers.5.self_attn.q_proj")
    assert (res.algo, res.rule) == (None, "excluded")
    assert res.source is not None and res.source.original == "model.layers.*.self_attn" == listed[0]
    assert res.source.mapped is None  # a glob is matched in checkpoint space, never rewritten as a path
    assert "entry 'model.layers.*.self_attn' matches model.layers.5.self_attn.q_proj (glob)" in res.explain()
    assert _answer(r, "model.layers.5.mlp.router") == (None, "excluded", "model.layers.*.mlp.router")
    assert _answer(r, "model.embed_tokens", "embedding") == (None, "excluded", "model.embed_tokens")
    assert _answer(r, "model.layers.5.mlp.experts", "moe") == ("MXFP4A16", "default", None)
    assert [e.original for e in r.config.exclude] == listed


def test_fp8_raw_suffix_does_not_cross_a_component_boundary() -> None:
    """``kv_proj`` skips ``...kv_proj`` but not ``...qkv_proj`` here; transformers 5.23 skips both (raw
    ``endswith``), which the resolver reports as an engines-disagree finding."""
    r = Resolver(_fp8(modules_to_not_convert=["kv_proj"]), checkpoint_modules=[
        "model.layers.0.self_attn.qkv_proj", "model.layers.0.self_attn.o_proj"])
    assert _answer(r, "model.layers.0.self_attn.qkv_proj") == ("FP8_BLOCK", "default", None)
    (finding,) = r.findings
    assert finding.code == "engines-disagree" and "ends with the skip entry 'kv_proj'" in finding.message


def test_fp8_ignored_layers_first_as_vllm_reads_them() -> None:
    cfg = _fp8(ignored_layers=["model.layers.0.mlp.down_proj"], modules_to_not_convert=["lm_head"])
    r = Resolver(cfg)
    res = r.resolve("model.layers.0.mlp.down_proj")
    assert (res.rule, res.source.field if res.source else None) == ("excluded", "ignored_layers[0]")
    assert any(f.code == "engines-disagree" and "modules_to_not_convert" in f.message for f in cfg.findings)


def test_fp8_partly_skipped_fused_layer_is_a_conflict() -> None:
    cfg = _fp8(modules_to_not_convert=["model.layers.0.self_attn.q_proj", "lm_head"])
    with pytest.raises(ConflictingShardsError, match=r"model\.layers\.0\.self_attn\.qkv_proj"):
        Resolver(cfg, "llama").resolve("model.layers.0.self_attn.qkv_proj")


def test_fp8_ancestor_entry_covers_its_subtree_and_vllm_disagrees() -> None:
    """An entry naming a non-linear parent skips the linears under it (as transformers does); vLLM matches
    exactly and would quantize them: an engines-disagree finding names the entry's field."""
    r = Resolver(_fp8(modules_to_not_convert=["model.layers.1.mlp", "lm_head"]))
    assert _answer(r, "model.layers.1.mlp.down_proj") == (None, "excluded", "model.layers.1.mlp")
    assert _answer(r, "model.layers.10.mlp.down_proj") == ("FP8_BLOCK", "default", None)
    (finding,) = r.findings
    assert finding.code == "engines-disagree" and "vLLM matches entries exactly" in finding.message
    assert finding.field == "modules_to_not_convert[0]"


def test_mxfp4_leading_star_glob_is_a_glob_here_and_a_finding() -> None:
    cfg = load_config({"quant_method": "mxfp4", "modules_to_not_convert": ["*.self_attn", "lm_head"]})
    (finding,) = [f for f in cfg.findings if f.code == "engines-disagree"]
    assert finding.field == "modules_to_not_convert[0]" and "re.error" in finding.message
    r = Resolver(cfg)
    assert _answer(r, "model.layers.0.self_attn.q_proj") == (None, "excluded", "*.self_attn")
    assert _answer(r, "model.layers.0.mlp.router") == (None, "not-quantizable", None)


def test_mxfp4_skipped_experts_say_vllm_ignores_the_list() -> None:
    r = Resolver(load_config({"quant_method": "mxfp4", "modules_to_not_convert": ["model.layers.1.mlp.experts"]}))
    assert _answer(r, "model.layers.1.mlp.experts", "moe") == (None, "excluded", "model.layers.1.mlp.experts")
    assert _answer(r, "model.layers.0.mlp.experts", "moe") == ("MXFP4A16", "default", None)
    (finding,) = r.findings
    assert "vLLM ignores modules_to_not_convert" in finding.message


def test_mxfp4_glob_survives_a_prefix_mapper() -> None:
    """Under a mapper that moves ``model.`` to ``model.language_model.``, the glob still matches in checkpoint
    space (the mapped prefix's preimage), is never rewritten, and exact entries are mapped."""
    from quantresolve.naming.mapper import WeightsMapper

    cfg = load_config({"quant_method": "mxfp4", "modules_to_not_convert": ["model.layers.*.self_attn", "lm_head"]})
    r = Resolver(cfg, mapper=WeightsMapper(orig_to_new_prefix={"model.": "model.language_model."}))
    res = r.resolve("model.language_model.layers.3.self_attn.q_proj")
    assert (res.rule, res.source.original if res.source else None) == ("excluded", "model.layers.*.self_attn")
    assert res.source is not None and res.source.mapped is None
    assert _answer(r, "model.language_model.layers.3.mlp.experts", "moe") == ("MXFP4A16", "default", None)
