"""Suffix stripping for every producer format, and grouping tensors into modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantresolve.checkpoint import (
    SUFFIX_RULES,
    CheckpointCatalog,
    TensorInfo,
    build_inventory,
    split_parameter,
)

M = "model.layers.3.mlp.down_proj"
ATTN = "model.layers.3.self_attn"


@pytest.mark.parametrize(
    ("tensor", "module", "param"),
    [
        # dense / all producers
        (f"{M}.weight", M, "weight"),
        (f"{M}.bias", M, "bias"),
        # compressed-tensors
        (f"{M}.weight_packed", M, "weight_packed"),
        (f"{M}.weight_scale", M, "weight_scale"),
        (f"{M}.weight_global_scale", M, "weight_global_scale"),
        (f"{M}.weight_zero_point", M, "weight_zero_point"),
        (f"{M}.weight_shape", M, "weight_shape"),
        (f"{M}.weight_g_idx", M, "weight_g_idx"),
        (f"{M}.input_scale", M, "input_scale"),
        (f"{M}.input_global_scale", M, "input_global_scale"),
        (f"{M}.input_zero_point", M, "input_zero_point"),
        (f"{M}.output_scale", M, "output_scale"),
        (f"{ATTN}.k_scale", ATTN, "k_scale"),
        (f"{ATTN}.v_scale", ATTN, "v_scale"),
        # ModelOpt
        (f"{M}.weight_scale_2", M, "weight_scale_2"),
        (f"{M}.pre_quant_scale", M, "pre_quant_scale"),
        (f"{ATTN}.k_proj.k_scale", ATTN, "k_scale"),
        (f"{ATTN}.v_proj.v_scale", ATTN, "v_scale"),
        # bitsandbytes
        (f"{M}.SCB", M, "SCB"),
        (f"{M}.weight_format", M, "weight_format"),
        (f"{M}.weight.absmax", M, "weight.absmax"),
        (f"{M}.weight.quant_map", M, "weight.quant_map"),
        (f"{M}.weight.nested_absmax", M, "weight.nested_absmax"),
        (f"{M}.weight.nested_quant_map", M, "weight.nested_quant_map"),
        (f"{M}.weight.quant_state.bitsandbytes__nf4", M, "weight.quant_state.bitsandbytes__nf4"),
        (f"{M}.weight.quant_state.bitsandbytes__fp4", M, "weight.quant_state.bitsandbytes__fp4"),
        # non-linear parameters
        ("model.layers.3.input_layernorm.weight", "model.layers.3.input_layernorm", "weight"),
        ("model.embed_tokens.weight", "model.embed_tokens", "weight"),
        ("lm_head.weight", "lm_head", "weight"),
    ],
)
def test_known_suffixes(tensor: str, module: str, param: str) -> None:
    assert split_parameter(tensor) == (module, param, True)


def test_every_registered_rule_is_exercised() -> None:
    tested = {r.suffix for r in SUFFIX_RULES}
    for rule in SUFFIX_RULES:
        name = "x.y." + rule.suffix.replace("*", "nf4")
        module, _, known = split_parameter(name)
        assert known, rule.suffix
        assert module in ("x.y", "x"), (rule.suffix, module)
    assert "weight.quant_state.bitsandbytes__*" in tested


def test_kv_scale_belongs_to_attention_not_k_proj() -> None:
    # A k_proj *weight* scale stays on k_proj; the KV-cache k_scale moves to the attention.
    assert split_parameter(f"{ATTN}.k_proj.weight_scale")[0] == f"{ATTN}.k_proj"
    assert split_parameter(f"{ATTN}.k_proj.k_scale")[0] == ATTN


def test_unknown_suffix_splits_at_last_dot() -> None:
    assert split_parameter("backbone.layers.0.mixer.A_log") == (
        "backbone.layers.0.mixer",
        "A_log",
        False,
    )
    assert split_parameter("model.layers.3.mlp.gate.e_score_correction_bias")[2] is False
    assert split_parameter("weight") == ("weight", "", False)


def _catalog(names: list[str]) -> CheckpointCatalog:
    tensors = {n: TensorInfo(n, None, None, "s.safetensors", None) for n in sorted(names)}
    return CheckpointCatalog(Path("."), tensors, False, ("s.safetensors",))


def test_inventory_groups_modules() -> None:
    names = [
        f"{M}.weight",
        f"{M}.weight_scale",
        f"{M}.weight_scale_2",
        f"{M}.input_scale",
        f"{ATTN}.k_proj.weight",
        f"{ATTN}.k_proj.k_scale",
        f"{ATTN}.v_proj.v_scale",
        "model.layers.3.mlp.gate.weight",
        "model.layers.3.mlp.gate.e_score_correction_bias",
    ]
    inventory = build_inventory(_catalog(names))
    assert list(inventory.modules) == sorted(inventory.modules)
    assert set(inventory.modules) == {
        M,
        f"{ATTN}.k_proj",
        ATTN,
        "model.layers.3.mlp.gate",
    }
    assert list(inventory.modules[M].params) == [
        "input_scale",
        "weight",
        "weight_scale",
        "weight_scale_2",
    ]
    assert set(inventory.modules[ATTN].params) == {"k_scale", "v_scale"}
    assert inventory.modules[ATTN].params["k_scale"].name == f"{ATTN}.k_proj.k_scale"
    gate = inventory.modules["model.layers.3.mlp.gate"]
    assert gate.unknown_params == ("e_score_correction_bias",)
    assert inventory.tensor_count == len(names)
    assert inventory.module_of(f"{ATTN}.v_proj.v_scale") == ATTN


def test_gpt_oss_fused_experts_are_one_module() -> None:
    """gpt-oss stores every expert of a layer in fused tensors on the experts module itself."""
    names = [
        "model.layers.0.mlp.experts.gate_up_proj_blocks",
        "model.layers.0.mlp.experts.gate_up_proj_scales",
        "model.layers.0.mlp.experts.gate_up_proj_bias",
        "model.layers.0.mlp.experts.down_proj",
        "model.layers.0.mlp.router.weight",
    ]
    inventory = build_inventory(_catalog(names))
    experts = inventory.modules["model.layers.0.mlp.experts"]
    assert experts.layout == "fused-experts"
    assert list(experts.params) == ["down_proj", "gate_up_proj_bias", "gate_up_proj_blocks", "gate_up_proj_scales"]
    assert experts.unknown_params == ()
    assert inventory.module_of("model.layers.0.mlp.experts.gate_up_proj_scales") == "model.layers.0.mlp.experts"
    assert inventory.modules["model.layers.0.mlp.router"].layout == "standard"


def test_per_expert_linears_are_standard_modules() -> None:
    inventory = build_inventory(_catalog(["model.layers.3.mlp.experts.7.down_proj.weight"]))
    assert inventory.modules["model.layers.3.mlp.experts.7.down_proj"].layout == "standard"
    assert "model.layers.3.mlp.experts.7.down_proj" in inventory.modules
