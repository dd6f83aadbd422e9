"""One regression test per failure class of field-notes §4, in a real family's naming.

Scenarios: fixtures/families/FAILURE_CLASSES.md. Config entries are spelled in
checkpoint space, prefixes in the engine's (model) namespace.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from quantresolve import load_config
from quantresolve.errors import (
    ConflictingExpertsError,
    ConflictingShardsError,
    InvalidPrefixError,
    MappingError,
    ResolutionError,
    UnknownAlgorithmError,
)
from quantresolve.naming.mapper import WeightsMapper
from quantresolve.resolve.resolver import Resolver

INT4_GROUP = {"num_bits": 4, "type": "int", "symmetric": True, "strategy": "group", "group_size": 128}
FP8_CHANNEL = {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "channel"}
FP8_TOKEN_DYN = {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "token", "dynamic": True}
NVFP4_W = {"num_bits": 4, "type": "float", "symmetric": True, "strategy": "tensor_group", "group_size": 16}
NVFP4_A = {**NVFP4_W, "dynamic": "local"}


def modelopt(algo: str, *, exclude: list[str] | None = None, layers: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg: dict[str, Any] = {"quant_method": "modelopt", "quant_algo": algo}
    if algo.startswith("NVFP4") or algo == "W4A16_NVFP4":
        cfg["group_size"] = 16
    if exclude is not None:
        cfg["exclude_modules"] = exclude
    if layers is not None:
        cfg["quantized_layers"] = layers
    return cfg


def ct(groups: dict[str, dict[str, Any]], ignore: list[str] | None = None, fmt: str = "pack-quantized") -> dict:
    return {"quant_method": "compressed-tensors", "format": fmt, "config_groups": groups, "ignore": ignore or []}


def w4a16(targets: list[str]) -> dict[str, Any]:
    return {"targets": targets, "weights": INT4_GROUP, "format": "pack-quantized"}


def fp8_dynamic(targets: list[str]) -> dict[str, Any]:
    return {"targets": targets, "weights": FP8_CHANNEL, "input_activations": FP8_TOKEN_DYN, "format": "float-quantized"}


def nvfp4(targets: list[str]) -> dict[str, Any]:
    return {"targets": targets, "weights": NVFP4_W, "input_activations": NVFP4_A, "format": "nvfp4-pack-quantized"}


def answer(resolver: Resolver, prefix: str, kind: str = "linear") -> tuple[str | None, str, str | None]:
    r = resolver.resolve(prefix, kind)
    return r.algo, r.rule, None if r.source is None else r.source.original


# --- 1. excludes never mapped (nemotron-h) ---------------------------------------------------------

def test_class1_excludes_are_mapped_through_the_profile() -> None:
    cfg = load_config(modelopt("NVFP4", exclude=["backbone.layers.0.mixer.conv1d", "backbone.embeddings"]))
    r = Resolver(cfg, "nemotron-h")
    assert answer(r, "model.layers.0.mixer.conv1d") == (None, "excluded", "backbone.layers.0.mixer.conv1d")
    res = r.resolve("model.layers.0.mixer.conv1d")
    assert res.source is not None and res.source.mapped == "model.layers.0.mixer.conv1d"
    # backbone.embeddings → model.embed_tokens (prefix rule, then substring rule)
    assert answer(r, "model.embed_tokens") == (None, "excluded", "backbone.embeddings")
    # a neighbour not excluded keeps the global algorithm
    assert answer(r, "model.layers.0.mixer.in_proj") == ("NVFP4", "default", None)
    assert answer(r, "model.layers.10.mixer.conv1d") == ("NVFP4", "default", None)


def test_class1_unmapped_profile_would_miss_the_excludes() -> None:
    """Control: with the identity profile, ``backbone.*`` entries do not name ``model.*`` modules."""
    cfg = load_config(modelopt("NVFP4", exclude=["backbone.layers.0.mixer.conv1d"]))
    assert answer(Resolver(cfg, "transformers"), "model.layers.0.mixer.conv1d") == ("NVFP4", "default", None)


# --- 2. globs / regexes broken by the mapper (qwen2.5-vl, qwen3-vl) --------------------------------

def test_class2_ct_regex_is_evaluated_in_checkpoint_space() -> None:
    cfg = load_config(ct({"group_0": w4a16(["Linear"])}, ignore=["lm_head", "re:visual.*"]))
    r = Resolver(cfg, "qwen2.5-vl", checkpoint_modules=["model.visual.blocks.0.attn.qkv",
                                                         "model.language_model.layers.0.self_attn.q_proj", "lm_head"])
    # the checkpoint spells it model.visual.*: the start-anchored re:visual.* never matched it
    assert answer(r, "visual.blocks.0.attn.qkv") == ("W4A16", "target:class", "Linear")
    assert answer(r, "language_model.lm_head", "lm_head") == (None, "excluded", "lm_head")
    # an old-layout checkpoint (visual.* at the top) really is ignored by the same regex
    old = Resolver(cfg, "qwen2.5-vl", checkpoint_modules=["visual.blocks.0.attn.qkv", "model.layers.0.self_attn.q_proj"])
    assert answer(old, "visual.blocks.0.attn.qkv") == (None, "excluded", "re:visual.*")



def test_class2_fused_module_absent_from_checkpoint_is_spelled_like_its_parent() -> None:
    """A fused ``gate_up_proj`` is never stored; its checkpoint spelling is its stored parent's
    (``model.visual.blocks.0.mlp``), so ``re:visual.*`` must not reach it through an identity spelling."""
    cfg = load_config(ct({"group_0": w4a16(["Linear"])}, ignore=["lm_head", "re:visual.*"]))
    modules = ["model.visual.blocks.0.mlp.gate_proj", "model.visual.blocks.0.mlp.up_proj",
               "model.visual.blocks.0.mlp.down_proj"]
    r = Resolver(cfg, "qwen2.5-vl", checkpoint_modules=modules)
    assert sorted(r.namespace.preimages("visual.blocks.0.mlp.gate_up_proj")) == ["model.visual.blocks.0.mlp.gate_up_proj"]
    assert answer(r, "visual.blocks.0.mlp.gate_up_proj") == ("W4A16", "target:class", "Linear")
    # the old layout (visual.* at the top) is excluded through the same mechanism
    old = Resolver(cfg, "qwen2.5-vl", checkpoint_modules=[m.removeprefix("model.") for m in modules])
    assert answer(old, "visual.blocks.0.mlp.gate_up_proj") == (None, "excluded", "re:visual.*")

def test_class2_without_checkpoint_both_layouts_are_possible() -> None:
    """Without the module list the identity spelling ``visual.*`` is a possible checkpoint name, so the
    regex may apply: the resolver says excluded and names the entry (the audit then checks tensors)."""
    cfg = load_config(ct({"group_0": w4a16(["Linear"])}, ignore=["lm_head", "re:visual.*"]))
    assert answer(Resolver(cfg, "qwen2.5-vl"), "visual.blocks.0.attn.qkv") == (None, "excluded", "re:visual.*")


def test_class2_glob_survives_a_prefix_mapper() -> None:
    cfg = load_config(modelopt("NVFP4", exclude=["model.visual*", "lm_head"]))
    r = Resolver(cfg, "qwen3-vl")
    assert answer(r, "visual.merger.linear_fc1") == (None, "excluded", "model.visual*")
    assert answer(r, "visual.blocks.0.attn.qkv") == (None, "excluded", "model.visual*")
    assert answer(r, "visual.deepstack_merger_list.0.linear_fc2") == (None, "excluded", "model.visual*")
    assert answer(r, "language_model.model.layers.0.mlp.down_proj") == ("NVFP4", "default", None)
    # the glob is never rewritten into the model namespace
    assert r.resolve("visual.merger.linear_fc1").source.mapped is None  # type: ignore[union-attr]


def test_class2_class_target_stays_a_class_under_an_empty_prefix_rule() -> None:
    cfg = load_config(ct({"group_0": w4a16(["Linear"])}, ignore=["lm_head"]))
    r = Resolver(cfg, mapper=WeightsMapper(orig_to_new_prefix={"": "model."}))
    assert answer(r, "model.layers.0.mlp.down_proj") == ("W4A16", "target:class", "Linear")
    assert answer(r, "model.layers.0.self_attn.o_proj") == ("W4A16", "target:class", "Linear")
    # the exact ignore entry *is* mapped ("lm_head" → "model.lm_head"); the class name is not
    assert answer(r, "model.lm_head", "lm_head") == (None, "excluded", "lm_head")
    assert r.resolve("model.lm_head", "lm_head").source.mapped == "model.lm_head"  # type: ignore[union-attr]
    assert answer(r, "model.embed_tokens", "embedding") == (None, "not-targeted", None)


# --- 3. wrapper order / nested lm_head (qwen3.5) ---------------------------------------------------

QWEN35_LAYERS = {
    **{f"model.language_model.layers.3.self_attn.{p}": {"quant_algo": "FP8"} for p in ("q_proj", "k_proj", "v_proj")},
    "lm_head": {"quant_algo": "W4A16_NVFP4", "group_size": 16},
}


def test_class3_wrapper_order_through_the_profile() -> None:
    r = Resolver(load_config(modelopt("MIXED_PRECISION", layers=QWEN35_LAYERS)), "qwen3.5")
    algo, rule, src = answer(r, "language_model.model.layers.3.self_attn.qkv_proj")
    assert (algo, rule) == ("FP8", "packed-shards")
    assert src is not None and src.startswith("model.language_model.layers.3.self_attn.")
    assert answer(r, "language_model.lm_head", "lm_head") == ("W4A16_NVFP4", "direct", "lm_head")


@pytest.mark.parametrize(("keys_prefix", "asked_prefix", "head_key", "asked_head"), [
    ("model.language_model.", "language_model.model.", "lm_head", "language_model.lm_head"),
    ("language_model.model.", "model.language_model.", "language_model.lm_head", "lm_head"),
])
def test_class3_wrapper_order_both_ways_without_a_mapper(keys_prefix: str, asked_prefix: str, head_key: str,
                                                         asked_head: str) -> None:
    layers = {f"{keys_prefix}layers.3.self_attn.q_proj": {"quant_algo": "FP8"},
              head_key: {"quant_algo": "W4A16_NVFP4", "group_size": 16}}
    r = Resolver(load_config(modelopt("MIXED_PRECISION", layers=layers)), "transformers")
    assert answer(r, f"{asked_prefix}layers.3.self_attn.q_proj") == (
        "FP8", "candidate", f"{keys_prefix}layers.3.self_attn.q_proj")
    assert answer(r, asked_head, "lm_head") == ("W4A16_NVFP4", "candidate", head_key)
    # a different layer is not borrowed
    assert answer(r, f"{asked_prefix}layers.4.self_attn.q_proj") == (None, "default", None)


# --- 4. sibling inference refused (qwen3.5 / nemotron-h) -------------------------------------------

def test_class4_unlisted_siblings_stay_unquantized() -> None:
    layers = {f"model.language_model.layers.0.linear_attn.{p}": {"quant_algo": "FP8"}
              for p in ("in_proj_qkv", "in_proj_z", "out_proj")}
    r = Resolver(load_config(modelopt("MIXED_PRECISION", layers=layers)), "qwen3.5")
    res = r.resolve("language_model.model.layers.0.linear_attn.in_proj_ba")
    assert (res.algo, res.rule, res.source) == (None, "default", None)
    assert {(name.rsplit(".", 1)[1], algo) for name, algo, _ in res.shards} == {("in_proj_a", None), ("in_proj_b", None)}
    assert answer(r, "language_model.model.layers.0.linear_attn.conv1d") == (None, "default", None)
    assert answer(r, "language_model.model.layers.0.linear_attn.in_proj_qkvz")[:2] == ("FP8", "packed-shards")
    assert answer(r, "language_model.model.layers.0.linear_attn.out_proj") == (
        "FP8", "direct", "model.language_model.layers.0.linear_attn.out_proj")


def test_class4_nemotron_router_is_not_borrowed_from_experts() -> None:
    layers = {f"backbone.layers.1.mixer.experts.{e}.{p}": {"quant_algo": "W4A16_NVFP4", "group_size": 16}
              for e in range(2) for p in ("up_proj", "down_proj")}
    layers["backbone.layers.1.mixer.shared_experts.up_proj"] = {"quant_algo": "W4A16_NVFP4", "group_size": 16}
    r = Resolver(load_config(modelopt("MIXED_PRECISION", layers=layers)), "nemotron-h")
    assert answer(r, "model.layers.1.mixer.gate") == (None, "default", None)


# --- 5. absent shard (gemma4-mm global layer without v_proj) ---------------------------------------

GEMMA4_L1 = [f"model.language_model.layers.1.self_attn.{p}" for p in ("q_proj", "k_proj", "o_proj")]


def test_class5_absent_shard_does_not_vote_modelopt() -> None:
    layers = {f"model.language_model.layers.1.self_attn.{p}": {"quant_algo": "NVFP4", "group_size": 16}
              for p in ("q_proj", "k_proj")}
    cfg = load_config(modelopt("MIXED_PRECISION", layers=layers))
    r = Resolver(cfg, "gemma4-mm", checkpoint_modules=GEMMA4_L1)
    res = r.resolve("language_model.model.layers.1.self_attn.qkv_proj")
    assert (res.algo, res.rule) == ("NVFP4", "packed-shards")
    assert res.source is not None and res.source.original == "model.language_model.layers.1.self_attn.k_proj"
    assert [s[0].rsplit(".", 1)[1] for s in res.shards] == ["k_proj", "q_proj"]
    assert any("absent" in step and "v_proj" in step for step in res.trail)
    # without checkpoint knowledge v_proj is assumed present and unlisted → a loud conflict, never a silent pick
    with pytest.raises(ConflictingShardsError) as err:
        Resolver(cfg, "gemma4-mm").resolve("language_model.model.layers.1.self_attn.qkv_proj")
    for shard in ("q_proj", "k_proj", "v_proj"):
        assert f"self_attn.{shard}" in str(err.value)


def test_class5_absent_shard_compressed_tensors() -> None:
    cfg = load_config(ct({"group_0": nvfp4(["Linear"])}, ignore=["lm_head"], fmt="nvfp4-pack-quantized"))
    with_ckpt = Resolver(cfg, "gemma4-mm", checkpoint_modules=GEMMA4_L1)
    assert answer(with_ckpt, "language_model.model.layers.1.self_attn.qkv_proj") == ("NVFP4", "target:class", "Linear")
    # a class target covers every shard, present or not: the answer does not depend on checkpoint knowledge
    assert answer(Resolver(cfg, "gemma4-mm"), "language_model.model.layers.1.self_attn.qkv_proj") == (
        "NVFP4", "target:class", "Linear")
    # shards targeted by name: only the present ones must be targeted
    named = load_config(ct({"group_0": nvfp4([f"model.language_model.layers.1.self_attn.{p}" for p in ("q_proj", "k_proj")])},
                           fmt="nvfp4-pack-quantized"))
    r = Resolver(named, "gemma4-mm", checkpoint_modules=GEMMA4_L1)
    assert answer(r, "language_model.model.layers.1.self_attn.qkv_proj")[:2] == ("NVFP4", "target:fused")
    with pytest.raises(ResolutionError, match="v_proj"):
        Resolver(named, "gemma4-mm").resolve("language_model.model.layers.1.self_attn.qkv_proj")


# --- 6. fused precision conflict (deepseek-v3, glm, qwen3.5) ---------------------------------------

def test_class6_all_shards_excluded_means_excluded() -> None:
    cfg = load_config(modelopt("NVFP4", exclude=["model.layers.1.self_attn.q_a_proj",
                                                 "model.layers.1.self_attn.kv_a_proj_with_mqa"]))
    res = Resolver(cfg, "deepseek-v3").resolve("model.layers.1.self_attn.fused_qkv_a_proj")
    assert (res.algo, res.rule) == (None, "excluded")
    assert res.source is not None and res.source.original == "model.layers.1.self_attn.kv_a_proj_with_mqa"
    assert {s[2] for s in res.shards} == {"excluded"}
    assert answer(Resolver(cfg, "deepseek-v3"), "model.layers.2.self_attn.fused_qkv_a_proj")[:2] == (
        "NVFP4", "packed-shards")


def test_class6_partial_exclusion_is_a_loud_error_naming_each_shard() -> None:
    cfg = load_config(modelopt("NVFP4", exclude=["model.layers.1.self_attn.q_a_proj"]))
    with pytest.raises(ConflictingShardsError) as err:
        Resolver(cfg, "glm").resolve("model.layers.1.self_attn.fused_qkv_a_proj")
    msg = str(err.value)
    assert "model.layers.1.self_attn.fused_qkv_a_proj" in msg
    assert "model.layers.1.self_attn.q_a_proj → unquantized" in msg
    assert "model.layers.1.self_attn.kv_a_proj_with_mqa → NVFP4" in msg


def test_class6_qwen35_fp8_skipping_only_in_proj_a_b() -> None:
    """Qwen3.5-27B-FP8 style: in_proj_a/in_proj_b skipped → in_proj_ba unquantized; a split inside one
    declared fusion is the error case."""
    cfg = load_config(modelopt("FP8", exclude=["model.language_model.layers.0.linear_attn.in_proj_a",
                                                "model.language_model.layers.0.linear_attn.in_proj_b"]))
    r = Resolver(cfg, "qwen3.5")
    assert answer(r, "language_model.model.layers.0.linear_attn.in_proj_ba")[:2] == (None, "excluded")
    assert answer(r, "language_model.model.layers.0.linear_attn.in_proj_qkvz")[:2] == ("FP8", "packed-shards")
    split = load_config(modelopt("FP8", exclude=["model.language_model.layers.0.linear_attn.in_proj_a"]))
    with pytest.raises(ConflictingShardsError, match=r"in_proj_a → unquantized.*in_proj_b → FP8"):
        Resolver(split, "qwen3.5").resolve("language_model.model.layers.0.linear_attn.in_proj_ba")


# --- 7. per-expert entries vs one container (nemotron-h, qwen3.6) ----------------------------------

NEMOTRON_EXPERTS = [f"backbone.layers.1.mixer.experts.{e}.{p}" for e in range(4) for p in ("up_proj", "down_proj")]


@pytest.mark.parametrize("knows_checkpoint", [False, True])
def test_class7_per_expert_keys_roll_up(knows_checkpoint: bool) -> None:
    layers = {name: {"quant_algo": "W4A16_NVFP4", "group_size": 16} for name in NEMOTRON_EXPERTS}
    cfg = load_config(modelopt("MIXED_PRECISION", layers=layers))
    r = Resolver(cfg, "nemotron-h", checkpoint_modules=NEMOTRON_EXPERTS if knows_checkpoint else None)
    res = r.resolve("model.layers.1.mixer.experts", "moe")
    assert (res.algo, res.rule) == ("W4A16_NVFP4", "experts")
    assert res.source is not None and res.source.original == "backbone.layers.1.mixer.experts.0.down_proj"
    # with the checkpoint every real projection votes; without it the per-expert keys roll up
    # (one representative per scheme)
    assert len(res.shards) == (8 if knows_checkpoint else 1)
    # non-gated MoE: no gate_proj is probed
    assert not any("gate_proj" in s[0] for s in res.shards)


@pytest.mark.parametrize("knows_checkpoint", [False, True])
def test_class7_disagreeing_experts_are_a_loud_error(knows_checkpoint: bool) -> None:
    layers = {name: {"quant_algo": "W4A16_NVFP4", "group_size": 16} for name in NEMOTRON_EXPERTS}
    layers["backbone.layers.1.mixer.experts.2.down_proj"] = {"quant_algo": "FP8"}
    cfg = load_config(modelopt("MIXED_PRECISION", layers=layers))
    r = Resolver(cfg, "nemotron-h", checkpoint_modules=NEMOTRON_EXPERTS if knows_checkpoint else None)
    with pytest.raises(ConflictingExpertsError) as err:
        r.resolve("model.layers.1.mixer.experts", "moe")
    msg = str(err.value)
    assert "'model.layers.1.mixer.experts'" in msg
    assert "W4A16_NVFP4" in msg
    if not knows_checkpoint:  # each side is counted and named by its first key
        assert "7 key(s) → W4A16_NVFP4 (first model.layers.1.mixer.experts.0.down_proj)" in msg
        assert "1 key(s) → FP8 (first model.layers.1.mixer.experts.2.down_proj)" in msg
    if knows_checkpoint:
        assert "model.layers.1.mixer.experts.2.down_proj → FP8" in msg  # every expert projection is named with its answer
        for e in range(4):
            for p in ("up_proj", "down_proj"):
                assert f"model.layers.1.mixer.experts.{e}.{p} → " in msg


def test_class7_expert_missing_its_entry_is_caught_with_the_checkpoint() -> None:
    layers = {name: {"quant_algo": "W4A16_NVFP4", "group_size": 16} for name in NEMOTRON_EXPERTS[:-1]}
    cfg = load_config(modelopt("MIXED_PRECISION", layers=layers))
    r = Resolver(cfg, "nemotron-h", checkpoint_modules=NEMOTRON_EXPERTS)
    with pytest.raises(ConflictingExpertsError, match=r"experts\.3\.down_proj → unquantized"):
        r.resolve("model.layers.1.mixer.experts", "moe")


def test_class7_container_key_covers_its_experts() -> None:
    """Qwen3.6-35B-A3B: one ``mlp.experts`` key per layer for all experts."""
    layers = {"model.language_model.layers.0.mlp.experts": {"quant_algo": "W4A16_NVFP4", "group_size": 16}}
    r = Resolver(load_config(modelopt("MIXED_PRECISION", layers=layers)), "qwen3.5")
    key = "model.language_model.layers.0.mlp.experts"
    assert answer(r, "language_model.model.layers.0.mlp.experts", "moe") == ("W4A16_NVFP4", "direct", key)
    assert answer(r, "language_model.model.layers.0.mlp.experts.5.down_proj") == ("W4A16_NVFP4", "container", key)
    assert answer(r, "language_model.model.layers.0.mlp.experts.5.gate_up_proj") == ("W4A16_NVFP4", "container", key)
    # the router next to the container is not covered
    assert answer(r, "language_model.model.layers.0.mlp.gate") == (None, "default", None)
    assert answer(r, "language_model.model.layers.1.mlp.experts", "moe") == (None, "default", None)


# --- 8. config and tensors disagree (deepseek-v3) --------------------------------------------------

def test_class8_resolver_reports_the_config_claim_for_the_audit() -> None:
    """The resolver reads no tensors: it answers what the *config* says, with a rule that shows nothing
    specific decided (``default``, no source). Comparing that with the tensors (bf16 router, shipped
    ``lm_head.input_scale``) is the audit's job (quantresolve.audit), not the resolver's."""
    cfg = load_config(modelopt("NVFP4", exclude=["lm_head*", "model.layers.1.self_attn.kv_a_proj_with_mqa"]))
    r = Resolver(cfg, "transformers")
    assert answer(r, "model.layers.1.mlp.gate") == ("NVFP4", "default", None)
    assert answer(r, "lm_head", "lm_head") == (None, "excluded", "lm_head*")
    # vLLM's DeepSeek builds the router with quant_config=None: a named rule, the config's claim kept
    router = Resolver(cfg, "deepseek-v3").resolve("model.layers.1.mlp.gate")
    assert (router.algo, router.rule, router.source.field if router.source else None) == (
        None, "model-unquantized", "unquantized_modules[0]")
    assert router.config_answer is not None and router.config_answer.algo == "NVFP4"
    assert "config alone: NVFP4 by rule 'default'" in router.explain()


# --- 9. empty prefix (gemma3-mm SigLIP) ------------------------------------------------------------

def test_class9_empty_prefix_is_refused() -> None:
    cfg = load_config(ct({"group_0": w4a16(["Linear"])},
                         ignore=["vision_tower.vision_model.encoder.layers.0.self_attn.q_proj",
                                 "vision_tower.vision_model.encoder.layers.0.self_attn.k_proj",
                                 "vision_tower.vision_model.encoder.layers.0.self_attn.v_proj"]))
    r = Resolver(cfg, "gemma3-mm")
    for bad in ("", "vision_tower..q_proj", " vision_tower", "a.b."):
        with pytest.raises(InvalidPrefixError):
            r.resolve(bad)
    # the engine's spelling of the SigLIP attention, whatever the profile's tower renaming
    asked = r.namespace.to_model("vision_tower.vision_model.encoder.layers.0.self_attn.qkv_proj")
    assert asked
    res = r.resolve(asked)
    assert (res.algo, res.rule) == (None, "excluded")
    assert len(res.shards) == 3
    assert res.source is not None and res.source.original.startswith("vision_tower.vision_model.encoder.layers.0")


# --- 10. unknown algo never silently unquantized (qwen3.5 variant) ---------------------------------

def test_class10_rare_algo_resolves_to_its_label() -> None:
    layers = {f"model.language_model.layers.0.mlp.{p}": {"quant_algo": "NVFP4_AWQ", "group_size": 16}
              for p in ("gate_proj", "up_proj")}
    r = Resolver(load_config(modelopt("MIXED_PRECISION", layers=layers)), "qwen3.5")
    algo, rule, src = answer(r, "language_model.model.layers.0.mlp.gate_up_proj")
    assert (algo, rule, src) == ("NVFP4_AWQ", "packed-shards", "model.language_model.layers.0.mlp.gate_proj")


def test_class10_unknown_algo_is_an_error_at_load() -> None:
    bad = modelopt("MIXED_PRECISION", layers={"model.language_model.layers.0.mlp.gate_proj": {"quant_algo": "NVFP9"}})
    with pytest.raises(UnknownAlgorithmError) as err:
        load_config(bad)
    assert "NVFP9" in str(err.value)
    assert 'quantized_layers["model.language_model.layers.0.mlp.gate_proj"].quant_algo' in str(err.value)


# --- 11. substring across component boundaries (llama, qwen3-moe, Molmo) ---------------------------

def bnb(skip: list[str] | None) -> dict[str, Any]:
    return {"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
            "llm_int8_skip_modules": skip}


def test_class11_layer_number_is_a_whole_component() -> None:
    r = Resolver(load_config(bnb(["model.layers.1.mlp"])), "llama")
    assert answer(r, "model.layers.1.mlp.gate_up_proj") == (None, "excluded", "model.layers.1.mlp")
    for n in (10, 11, 12):
        assert answer(r, f"model.layers.{n}.mlp.gate_up_proj") == ("BNB_NF4", "default", None)
    mo = Resolver(load_config(modelopt("NVFP4", exclude=["model.layers.1"])), "llama")
    assert answer(mo, "model.layers.1.mlp.down_proj") == (None, "excluded", "model.layers.1")
    assert answer(mo, "model.layers.12.mlp.down_proj") == ("NVFP4", "default", None)


def test_class11_router_exclude_does_not_hit_gate_up_proj() -> None:
    r = Resolver(load_config(modelopt("NVFP4", exclude=["model.layers.1.mlp.gate"])), "qwen3-moe")
    assert answer(r, "model.layers.1.mlp.gate") == (None, "excluded", "model.layers.1.mlp.gate")
    assert answer(r, "model.layers.1.mlp.gate_up_proj")[:2] == ("NVFP4", "packed-shards")
    assert answer(r, "model.layers.1.mlp.experts", "moe") == ("NVFP4", "default", None)


def test_class11_bnb_kv_proj_not_in_qkv_proj() -> None:
    r = Resolver(load_config(bnb(["kv_proj"])), "transformers")
    assert answer(r, "model.layers.0.self_attn.qkv_proj") == ("BNB_NF4", "default", None)
    assert answer(r, "model.layers.0.self_attn.kv_proj") == (None, "excluded", "kv_proj")


def test_class11_molmo_ff_out_is_the_lm_head_only() -> None:
    r = Resolver(load_config(bnb(["model.vision_backbone", "model.transformer.ff_out", "model.transformer.ln_f"])),
                 "transformers")
    assert answer(r, "model.transformer.ff_out", "lm_head") == (None, "excluded", "model.transformer.ff_out")
    assert answer(r, "model.transformer.blocks.3.ff_out") == ("BNB_NF4", "default", None)
    assert answer(r, "model.vision_backbone.image_vit.transformer.resblocks.0.attention.wq") == (
        None, "excluded", "model.vision_backbone")


# --- 12. order dependence (vllm-decoder variant) ---------------------------------------------------

@pytest.mark.parametrize("order", list(itertools.permutations(["group_0", "group_1"])))
def test_class12_precedence_not_file_order(order: tuple[str, ...]) -> None:
    groups = {"group_0": w4a16(["Linear"]), "group_1": fp8_dynamic(["re:.*down_proj$"])}
    cfg = load_config(ct({k: groups[k] for k in order}, ignore=["lm_head"], fmt="mixed-precision"))
    r = Resolver(cfg, "vllm-decoder")
    assert answer(r, "model.layers.0.mlp.down_proj") == ("FP8_DYNAMIC", "target:regex", "re:.*down_proj$")
    assert answer(r, "model.layers.0.mlp.gate_up_proj") == ("W4A16", "target:class", "Linear")
    assert r.resolve("model.layers.0.mlp.down_proj").scheme.format == "float-quantized"  # type: ignore[union-attr]


@pytest.mark.parametrize("order", list(itertools.permutations(["group_0", "group_1"])))
def test_class12_same_level_tie_is_an_error_in_any_order(order: tuple[str, ...]) -> None:
    groups = {"group_0": w4a16(["re:.*down_proj$"]), "group_1": fp8_dynamic(["re:.*mlp\\.down.*"])}
    cfg = load_config(ct({k: groups[k] for k in order}, fmt="mixed-precision"))
    with pytest.raises(ResolutionError, match=r"group_0=W4A16.*group_1=FP8_DYNAMIC"):
        Resolver(cfg, "vllm-decoder").resolve("model.layers.0.mlp.down_proj")


def test_class12_two_keys_mapping_onto_one_name_is_an_error() -> None:
    layers = {"model.language_model.layers.0.mlp.down_proj": {"quant_algo": "FP8"},
              "language_model.model.layers.0.mlp.down_proj": {"quant_algo": "NVFP4", "group_size": 16}}
    with pytest.raises(MappingError) as err:
        Resolver(load_config(modelopt("MIXED_PRECISION", layers=layers)), "qwen3.5")
    assert "model.language_model.layers.0.mlp.down_proj" in str(err.value)
    assert "language_model.model.layers.0.mlp.down_proj" in str(err.value)
