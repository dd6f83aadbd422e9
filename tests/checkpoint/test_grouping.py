"""Grouping modules into fused layers and MoE expert containers (pure, no sibling guessing)."""

from __future__ import annotations

import pytest

from quantresolve.checkpoint import group_experts, group_fused
from quantresolve.errors import MappingError

PACKED = {"qkv_proj": ["q_proj", "k_proj", "v_proj"], "gate_up_proj": ["gate_proj", "up_proj"]}
EXPERTS = (
    r"^(?P<container>.*\.mlp\.experts)\.(?P<expert>\d+)\.(?P<proj>gate_proj|up_proj|down_proj)$"
)


def test_fused_groups_and_missing_shard() -> None:
    modules = [
        "model.layers.0.self_attn.q_proj",
        "model.layers.0.self_attn.k_proj",
        "model.layers.0.self_attn.v_proj",
        "model.layers.0.mlp.gate_proj",
        "model.layers.0.mlp.up_proj",
        "model.layers.0.mlp.down_proj",
        # Gemma-4 style global layer: no v_proj. It must be reported absent, not invented.
        "model.layers.5.self_attn.q_proj",
        "model.layers.5.self_attn.k_proj",
    ]
    groups = group_fused(modules, PACKED)
    assert list(groups) == sorted(groups)
    assert set(groups) == {
        "model.layers.0.self_attn.qkv_proj",
        "model.layers.0.mlp.gate_up_proj",
        "model.layers.5.self_attn.qkv_proj",
    }
    full = groups["model.layers.0.self_attn.qkv_proj"]
    assert full.missing == () and full.present == ("q_proj", "k_proj", "v_proj")
    assert full.members["k_proj"] == "model.layers.0.self_attn.k_proj"
    partial = groups["model.layers.5.self_attn.qkv_proj"]
    assert partial.missing == ("v_proj",)
    assert partial.fused == "qkv_proj"


def test_identity_and_multi_component_entries() -> None:
    mapping = {
        "qkv_proj": ["qkv_proj"],
        "linear_proj.merged_proj": ["linear_proj.a", "linear_proj.b"],
    }
    groups = group_fused(["m.attn.qkv_proj", "v.linear_proj.a", "v.linear_proj.b", "v.b"], mapping)
    assert groups["m.attn.qkv_proj"].members == {"qkv_proj": "m.attn.qkv_proj"}
    assert groups["v.linear_proj.merged_proj"].members == {
        "linear_proj.a": "v.linear_proj.a",
        "linear_proj.b": "v.linear_proj.b",
    }
    # "v.b" ends with "b" but not with the declared shard "linear_proj.b".
    assert all("v.b" not in g.members.values() for g in groups.values())


def test_component_boundaries_respected() -> None:
    # kv_proj must not match inside qkv_proj (field-notes §4 class 11).
    groups = group_fused(["m.attn.qkv_proj"], {"kv_fused": ["kv_proj"]})
    assert groups == {}


def test_ambiguous_mapping_refused() -> None:
    with pytest.raises(MappingError, match="gate_proj"):
        group_fused([], {"a": ["gate_proj"], "b": ["gate_proj"]})


def test_expert_containers() -> None:
    modules = [
        f"model.layers.3.mlp.experts.{e}.{p}"
        for e in (10, 2, 0)
        for p in ("down_proj", "up_proj", "gate_proj")
    ] + ["model.layers.3.mlp.shared_experts.down_proj", "model.layers.4.mlp.experts.0.up_proj"]
    containers = group_experts(modules, [EXPERTS])
    assert list(containers) == ["model.layers.3.mlp.experts", "model.layers.4.mlp.experts"]
    c = containers["model.layers.3.mlp.experts"]
    assert list(c.experts) == ["0", "2", "10"]
    assert list(c.experts["2"]) == ["down_proj", "gate_proj", "up_proj"]
    assert c.experts["10"]["up_proj"] == "model.layers.3.mlp.experts.10.up_proj"
    assert len(c.modules) == 9
    # A gateless MoE is reported as it is: no gate_proj invented.
    assert containers["model.layers.4.mlp.experts"].experts == {
        "0": {"up_proj": "model.layers.4.mlp.experts.0.up_proj"}
    }


def test_expert_pattern_without_proj_group_and_first_match_wins() -> None:
    minimax = r"^(?P<container>.*\.block_sparse_moe\.experts)\.(?P<expert>\d+)\.(?P<proj>w[123])$"
    generic = r"^(?P<container>.*\.experts)\.(?P<expert>\d+)"
    containers = group_experts(
        ["m.0.block_sparse_moe.experts.1.w2", "m.0.x.experts.3.fc"], [minimax, generic]
    )
    assert containers["m.0.block_sparse_moe.experts"].experts == {
        "1": {"w2": "m.0.block_sparse_moe.experts.1.w2"}
    }
    assert containers["m.0.x.experts"].experts == {"3": {"": "m.0.x.experts.3.fc"}}


def test_expert_pattern_needs_named_groups() -> None:
    with pytest.raises(MappingError, match="container"):
        group_experts(["a"], [r"^(.*)\.experts\.(\d+)"])
