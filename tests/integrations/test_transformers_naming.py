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
