"""The HF fine-grained FP8 and gpt-oss MXFP4 fixtures have their formats' configs and tensor layouts
(headers and JSON only; no torch)."""

from __future__ import annotations

import json

import pytest

from .test_fixture_files import CHECKPOINTS, config, header

FP8_BLOCK = ["fp8-block", "fp8-block-ragged", "fp8-qwen3-moe-block"]
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _projections(name: str) -> dict[str, dict]:
    """Every stored projection module (``...<proj>``) → its ``weight`` header entry."""
    return {t.removesuffix(".weight"): e for t, e in header(name).items()
            if t.endswith(".weight") and t.removesuffix(".weight").rsplit(".", 1)[-1] in PROJECTIONS}


@pytest.mark.parametrize("name", [*FP8_BLOCK, "fp8-autofp8-static", "mxfp4-gpt-oss"])
def test_fixture_record(name: str) -> None:
    record = json.loads((CHECKPOINTS / name / "FIXTURE.json").read_text())
    assert record["name"] == name and record["producer"] == config(name)["quantization_config"]["quant_method"]
    assert "fixtures/hf_formats.py" in record["notes"] and record["reference"]


@pytest.mark.parametrize("name", FP8_BLOCK)
def test_fp8_block_layout(name: str) -> None:
    section = config(name)["quantization_config"]
    assert {k: section[k] for k in ("quant_method", "fmt", "activation_scheme", "weight_block_size")} == {
        "quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic", "weight_block_size": [128, 128]}
    assert "lm_head" in section["modules_to_not_convert"]
    tensors = header(name)
    projections = _projections(name)
    assert len(projections) >= 14
    for module, weight in projections.items():
        n, k = weight["shape"]
        assert weight["dtype"] == "F8_E4M3", module
        scale = tensors[f"{module}.weight_scale_inv"]
        assert (scale["dtype"], scale["shape"]) == ("F32", [-(-n // 128), -(-k // 128)]), module
    assert tensors["lm_head.weight"]["dtype"] == "BF16"
    assert not any(t.endswith((".weight_scale", ".input_scale")) for t in tensors)


def test_fp8_ragged_has_partial_edge_blocks() -> None:
    tensors = header("fp8-block-ragged")
    assert tensors["model.layers.0.mlp.gate_proj.weight_scale_inv"]["shape"] == [3, 1]
    assert tensors["model.layers.0.mlp.down_proj.weight_scale_inv"]["shape"] == [1, 3]


def test_qwen3_moe_skip_list_and_per_expert_layout() -> None:
    section = config("fp8-qwen3-moe-block")["quantization_config"]
    assert section["modules_to_not_convert"][:4] == [
        "lm_head", "model.layers.0.input_layernorm", "model.layers.0.mlp.gate", "model.layers.0.post_attention_layernorm"]
    tensors = header("fp8-qwen3-moe-block")
    assert tensors["model.layers.1.mlp.experts.3.down_proj.weight"]["dtype"] == "F8_E4M3"
    assert tensors["model.layers.1.mlp.gate.weight"]["dtype"] == "BF16"


def test_autofp8_layout() -> None:
    section = config("fp8-autofp8-static")["quantization_config"]
    assert section == {"quant_method": "fp8", "activation_scheme": "static", "ignored_layers": ["lm_head"]}
    tensors = header("fp8-autofp8-static")
    for module, weight in _projections("fp8-autofp8-static").items():
        assert weight["dtype"] == "F8_E4M3", module
        for scale in ("weight_scale", "input_scale"):
            assert (tensors[f"{module}.{scale}"]["dtype"], tensors[f"{module}.{scale}"]["shape"]) == ("F32", [])
    assert not any(t.endswith(".weight_scale_inv") for t in tensors)


def test_mxfp4_gpt_oss_layout() -> None:
    cfg = config("mxfp4-gpt-oss")
    assert cfg["architectures"] == ["GptOssForCausalLM"]
    assert cfg["quantization_config"] == {"quant_method": "mxfp4", "modules_to_not_convert": [
        "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]}
    experts, hidden, inter = cfg["num_local_experts"], cfg["hidden_size"], cfg["intermediate_size"]
    tensors = header("mxfp4-gpt-oss")
    for layer in range(cfg["num_hidden_layers"]):
        base = f"model.layers.{layer}.mlp.experts"
        for proj, n, k in (("gate_up_proj", 2 * inter, hidden), ("down_proj", hidden, inter)):
            assert (tensors[f"{base}.{proj}_blocks"]["dtype"], tensors[f"{base}.{proj}_blocks"]["shape"]) == (
                "U8", [experts, n, k // 32, 16])
            assert (tensors[f"{base}.{proj}_scales"]["dtype"], tensors[f"{base}.{proj}_scales"]["shape"]) == (
                "U8", [experts, n, k // 32])
            assert tensors[f"{base}.{proj}_bias"]["shape"] == [experts, n]
            assert f"{base}.{proj}" not in tensors
    assert not any(e["dtype"] in ("F8_E4M3", "U8") for t, e in tensors.items() if ".experts." not in t)
