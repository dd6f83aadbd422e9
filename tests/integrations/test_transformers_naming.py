"""Profiles derived from transformers' own checkpoint conversion mapping (quantresolve.integrations.transformers.naming)."""

from __future__ import annotations

import pytest
import torch
from accelerate import init_empty_weights

from quantresolve.errors import ProfileError
from quantresolve.formats.loader import load_config
from quantresolve.integrations.transformers.build import build_empty_model
from quantresolve.integrations.transformers.config import model_config
from quantresolve.integrations.transformers.naming import (
    module_renamer,
    prefix_rules,
    profile_for_checkpoint,
    profile_for_model,
)
from quantresolve.integrations.transformers.profile_choice import GIVEN, choose_profile
from quantresolve.resolve.resolver import Resolver

from ..conftest import checkpoint_dir

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def gemma3() -> torch.nn.Module:
    return build_empty_model(model_config(checkpoint_dir("ct-gemma3-mm")), torch.bfloat16)


def test_published_gemma3_layout_maps_onto_what_transformers_builds(gemma3) -> None:
    profile = profile_for_checkpoint(checkpoint_dir("ct-gemma3-mm"), gemma3)
    assert profile.mapper.orig_to_new_prefix == {
        "language_model.model.": "model.language_model.",
        "multi_modal_projector.": "model.multi_modal_projector.",
        "vision_tower.vision_model.": "model.vision_tower.",
    }
    assert profile.name == "transformers:Gemma3ForConditionalGeneration" and not profile.packed_modules_mapping
    built = dict(gemma3.named_modules())
    from quantresolve.checkpoint import build_inventory, read_checkpoint

    stored = build_inventory(read_checkpoint(checkpoint_dir("ct-gemma3-mm"))).modules
    assert stored and all(profile.mapper.map_name(name) in built for name in stored)


def test_the_renamer_is_transformers_own(gemma3) -> None:
    rename = module_renamer(gemma3)
    assert rename("vision_tower.vision_model.encoder.layers.0.mlp.fc1") == "model.vision_tower.encoder.layers.0.mlp.fc1"
    assert rename("language_model.lm_head") == "lm_head"
    assert rename("model.language_model.norm") == "model.language_model.norm"  # already the model's name


def test_merged_rules_generalise_only_as_transformers_does(gemma3) -> None:
    """One lm_head renaming is not evidence that every ``language_model.X`` loses its wrapper."""
    pairs = {"language_model.lm_head": "lm_head", "language_model.model.norm": "model.language_model.norm"}
    profile = profile_for_model(gemma3, pairs)
    assert profile.mapper.orig_to_new_prefix == {"language_model.lm_head.": "lm_head.",
                                                 "language_model.model.": "model.language_model."}
    assert profile.mapper.map_name("language_model.model.layers.5.mlp") == "model.language_model.layers.5.mlp"


def test_prefix_rules_refuse_contradictions() -> None:
    with pytest.raises(ProfileError, match="disagree"):
        prefix_rules({"a.x.y": "b.x.y", "a.x.z": "c.x.z"})


def test_key_mapping_is_honoured_as_from_pretrained_does(gemma3) -> None:
    renamed = module_renamer(gemma3, key_mapping={r"^lm\.": "model.language_model."})
    assert renamed("lm.layers.0.mlp.up_proj") == "model.language_model.layers.0.mlp.up_proj"


def test_a_converted_tensor_is_refused() -> None:
    """transformers 5 merges per-expert weights into one tensor: quantized tensors cannot take that path."""
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    cfg = Qwen3MoeConfig(hidden_size=32, intermediate_size=64, moe_intermediate_size=16, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, num_experts=2, num_experts_per_tok=1,
                         vocab_size=64)
    with init_empty_weights():
        model = Qwen3MoeForCausalLM(cfg)
    rename = module_renamer(model)
    assert rename("model.layers.0.self_attn.q_proj") == "model.layers.0.self_attn.q_proj"
    with pytest.raises(ProfileError, match=r"model\.layers\.0\.mlp\.experts\.1\.gate_proj.*converts"):
        rename("model.layers.0.mlp.experts.1.gate_proj")


def test_regex_ignore_in_checkpoint_spelling_reaches_the_built_names(gemma3) -> None:
    """``re:vision_tower.*`` is written against the checkpoint; the model builds ``model.vision_tower.*``."""
    cfg = load_config({"quant_method": "compressed-tensors", "format": "pack-quantized",
                       "config_groups": {"W4A16": ["Linear"]}, "ignore": ["re:vision_tower.*", "lm_head"]})
    profile = profile_for_checkpoint(checkpoint_dir("ct-gemma3-mm"), gemma3)
    resolver = Resolver(cfg, profile)
    tower = resolver.resolve("model.vision_tower.encoder.layers.0.self_attn.q_proj")
    assert tower.scheme is None and tower.rule == "excluded"
    assert resolver.resolve("model.language_model.layers.0.self_attn.q_proj").algo == "W4A16"


# --------------------------------------------------------------------------- the default path (no profile given)


def _stored(name: str) -> list[str]:
    from quantresolve.checkpoint import build_inventory, read_checkpoint

    return sorted(build_inventory(read_checkpoint(checkpoint_dir(name))).modules)


def test_default_choice_is_the_profile_transformers_renamings_give(gemma3) -> None:
    """What ``load_quantized`` does without a profile: the same profile a user derives by hand, and says so."""
    choice = choose_profile(None, gemma3, _stored("ct-gemma3-mm"), {})
    derived = profile_for_checkpoint(checkpoint_dir("ct-gemma3-mm"), gemma3)
    assert choice.profile == derived
    assert choice.reason == ("derived from transformers' renamings of Gemma3ForConditionalGeneration "
                             "(3 prefix rules)")
    given = choose_profile("gemma3-mm", gemma3, _stored("ct-gemma3-mm"), {})
    assert given.profile.name == "gemma3-mm" and given.reason == GIVEN  # an explicit profile wins


def test_newer_gemma3_layout_maps_onto_the_same_model(gemma3) -> None:
    """transformers 4.5x saved Gemma-3 as ``model.language_model.*`` / ``model.vision_tower.vision_model.*``."""
    newer = {"model.language_model.layers.0.mlp.up_proj", "model.language_model.embed_tokens",
             "model.vision_tower.vision_model.encoder.layers.0.mlp.fc1",
             "model.vision_tower.vision_model.post_layernorm", "model.multi_modal_projector.mm_soft_emb_norm"}
    choice = choose_profile(None, gemma3, newer, {})
    assert choice.profile.mapper.orig_to_new_prefix == {"model.vision_tower.vision_model.": "model.vision_tower."}
    assert choice.reason.endswith("(1 prefix rule)")
    built = dict(gemma3.named_modules())
    assert all(choice.profile.mapper.map_name(n) in built for n in newer)


def test_experts_keep_transformers_renamings_but_not_its_merge() -> None:
    """Mixtral's published ``block_sparse_moe.experts.E.w1``: renamed to ``mlp.experts.E.w1``, the stand-in's name."""
    from transformers import MixtralConfig, MixtralForCausalLM

    from quantresolve.integrations.transformers.expert_containers import unfuse_experts

    cfg = MixtralConfig(hidden_size=32, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
                        num_key_value_heads=1, num_local_experts=2, vocab_size=64)
    with init_empty_weights():
        model = MixtralForCausalLM(cfg)
    with pytest.raises(ProfileError, match="converts"):  # the fused 3-D module: transformers would merge
        module_renamer(model)("model.layers.0.block_sparse_moe.experts.1.w1")
    containers = unfuse_experts(model)
    stored = [f"model.layers.{i}.block_sparse_moe.{m}" for i in range(2)
              for m in ("gate", *(f"experts.{e}.{r}" for e in range(2) for r in ("w1", "w2", "w3")))]
    choice = choose_profile(None, model, [*stored, "model.layers.0.self_attn.q_proj", "lm_head"], containers)
    assert choice.profile.mapper.orig_to_new_prefix == {f"model.layers.{i}.block_sparse_moe.": f"model.layers.{i}.mlp."
                                                        for i in range(2)}
    built = dict(model.named_modules())
    assert all(choice.profile.mapper.map_name(n) in built for n in stored)
