"""Audit of the HF fine-grained FP8 and gpt-oss MXFP4 fixtures: tensor evidence, and config-vs-tensor findings
each triggered by one edit of a fixture."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

from ..conftest import checkpoint_dir
from .conftest import copy_fixture, edit_tensors

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus"
BENCHMARK = REPO / "benchmarks" / "audit_scale_data.py"


def _findings(result, code: str) -> list[dict]:
    return [f for f in result.json()["findings"] if f["code"] == code]


def _module(result, name: str) -> dict:
    return next(m for m in result.json()["modules"] if m["name"] == name)


def test_fp8_block_evidence_is_weight_scale_inv(cli):
    result = cli("audit", checkpoint_dir("fp8-block"), "--format", "json")
    assert result.rc == 0 and result.json()["findings"] == []
    module = _module(result, "model.layers.0.mlp.down_proj")
    assert (module["algo"], module["rule"]) == ("FP8_BLOCK", "default")
    evidence = module["evidence"]
    assert (evidence["format"], evidence["weight_dtype"], evidence["scale_params"]) == (
        "fp8", "F8_E4M3", ["weight_scale_inv"])
    assert _module(result, "lm_head")["rule"] == "excluded"


def test_qwen3_moe_skip_list_of_norms_and_routers_is_not_dead(cli):
    """Qwen3-*-FP8 lists norms and routers (not linears): every entry names a stored module, none is dead."""
    result = cli("audit", checkpoint_dir("fp8-qwen3-moe-block"), "--format", "json")
    assert result.rc == 0 and result.json()["findings"] == []
    assert _module(result, "model.layers.1.mlp.gate")["rule"] == "excluded"


def test_mxfp4_evidence_is_blocks_and_scales(cli):
    result = cli("audit", checkpoint_dir("mxfp4-gpt-oss"), "--format", "json")
    assert result.rc == 0 and result.json()["findings"] == []
    experts = _module(result, "model.layers.0.mlp.experts")
    assert (experts["kind"], experts["algo"], experts["evidence"]["format"]) == ("moe", "MXFP4A16", "mxfp4")
    assert experts["evidence"]["group_size"] == 32
    assert sorted(experts["evidence"]["scale_params"]) == ["down_proj_scales", "gate_up_proj_scales"]
    attention = _module(result, "model.layers.0.self_attn.q_proj")
    assert (attention["rule"], attention["source"]["original"]) == ("excluded", "model.layers.*.self_attn")


def test_fp8_dense_weight_where_config_says_fp8(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "fp8-block")
    name = "model.layers.1.self_attn.o_proj"

    def densify(tensors: dict) -> None:
        del tensors[f"{name}.weight_scale_inv"]
        _dtype, shape, data = tensors[f"{name}.weight"]
        tensors[f"{name}.weight"] = ["BF16", shape, data * 2]

    edit_tensors(ckpt, densify)
    result = cli("audit", ckpt, "--format", "json")
    (hit,) = _findings(result, "config-quantized-tensors-dense")
    assert hit["members"] == [name] and "config says FP8_BLOCK but the tensors are dense (weight BF16)" in hit["message"]
    assert result.rc == 1


def test_fp8_ragged_scale_grid_transformers_would_misread(tmp_path, cli):
    """A 320-row weight with a 2-row grid: transformers would take 160-row blocks and load it silently wrong."""
    ckpt = copy_fixture(tmp_path, "fp8-block-ragged")
    name = "model.layers.0.mlp.gate_proj.weight_scale_inv"

    def two_rows(tensors: dict) -> None:
        dtype, _shape, data = tensors[name]
        tensors[name] = [dtype, [2, 1], data[: len(data) * 2 // 3]]

    edit_tensors(ckpt, two_rows)
    result = cli("audit", ckpt, "--format", "json")
    (hit,) = _findings(result, "scale-grid-mismatch")
    assert "a [320, 128] weight needs a 3x1 scale grid, the weight scale is [2, 1]" in hit["message"]
    assert result.rc == 1


def test_fp8_autofp8_scale_name_under_a_block_config(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "fp8-block")
    name = "model.layers.0.mlp.up_proj"
    edit_tensors(ckpt, lambda t: t.__setitem__(f"{name}.weight_scale", t.pop(f"{name}.weight_scale_inv")))
    result = cli("audit", ckpt, "--format", "json")
    (hit,) = _findings(result, "format-mismatch")
    assert hit["members"] == [name] and "weight_scale_inv" in hit["message"] and "weight_scale" in hit["message"]


def test_mxfp4_scales_of_the_wrong_shape(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "mxfp4-gpt-oss")
    name = "model.layers.0.mlp.experts.down_proj_scales"

    def one_group_short(tensors: dict) -> None:
        dtype, (e, n, g), data = tensors[name]
        tensors[name] = [dtype, [e, n, g - 1], data[: e * n * (g - 1)]]

    edit_tensors(ckpt, one_group_short)
    result = cli("audit", ckpt, "--format", "json")
    (hit,) = _findings(result, "unknown-tensor-format")
    assert hit["members"] == ["model.layers.0.mlp.experts"]
    assert "down_proj_scales U8 [4, 128, 2]: expected U8 (E8M0) [4, 128, 3]" in hit["message"]


def test_mxfp4_quantized_tensors_where_a_glob_skips(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "mxfp4-gpt-oss")
    name = "model.layers.0.self_attn.q_proj"

    def fp8(tensors: dict) -> None:
        _dtype, shape, data = tensors[f"{name}.weight"]
        tensors[f"{name}.weight"] = ["F8_E4M3", shape, data[: len(data) // 2]]
        tensors[f"{name}.weight_scale_inv"] = ["F32", [1, 1], b"\x00\x00\x80\x3f"]

    edit_tensors(ckpt, fp8)
    result = cli("audit", ckpt, "--format", "json")
    (hit,) = _findings(result, "config-unquantized-tensors-quantized")
    assert hit["members"] == [name] and result.rc == 1


def _deepseek_v3_fp8(root, config: dict) -> None:
    """DeepSeek-V3's HF FP8 layout over sparse files (the benchmark's writer): every layer, 4 routed experts;
    each linear E4M3 with a ``weight_scale_inv`` grid of ``ceil(N/128) x ceil(K/128)``, the head bf16."""
    bench = runpy.run_path(str(BENCHMARK))
    cfg = {**config, "n_routed_experts": 4, "num_nextn_predict_layers": 0}
    h, vocab = cfg["hidden_size"], cfg["vocab_size"]
    tensors = [("model.embed_tokens.weight", "BF16", [vocab, h]), ("model.norm.weight", "BF16", [h]),
               ("lm_head.weight", "BF16", [vocab, h])]
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}"
        tensors += [(f"{p}.input_layernorm.weight", "BF16", [h]), (f"{p}.post_attention_layernorm.weight", "BF16", [h]),
                    (f"{p}.self_attn.q_a_layernorm.weight", "BF16", [cfg["q_lora_rank"]]),
                    (f"{p}.self_attn.kv_a_layernorm.weight", "BF16", [cfg["kv_lora_rank"]])]
        if layer >= cfg["first_k_dense_replace"]:
            tensors += [(f"{p}.mlp.gate.weight", "BF16", [4, h]), (f"{p}.mlp.gate.e_score_correction_bias", "F32", [4])]
        for module, n, k in bench["_linears"](layer, cfg):
            tensors += [(f"{module}.weight", "F8_E4M3", [n, k]),
                        (f"{module}.weight_scale_inv", "F32", [-(-n // 128), -(-k // 128)])]
    bench["_write_shard"](root / "model.safetensors", tensors)
    (root / "config.json").write_text(json.dumps(config))


def test_deepseek_v3_fp8_layout_audits_clean(tmp_path, cli):
    """DeepSeek-V3's real config over its tensor layout: kv_a_proj_with_mqa [576, 7168] has a 5x56 grid
    (a partial block row, which transformers' loader refuses) and the head is left to the producer default;
    the 58 routers (layers 3..60) are reported as an info, as for the NVFP4 DeepSeek layout."""
    source = CORPUS / "deepseek-ai__DeepSeek-V3" / "config.json"
    if not source.is_file():
        pytest.skip("corpus folder deepseek-ai__DeepSeek-V3 absent")
    _deepseek_v3_fp8(tmp_path, json.loads(source.read_text()))
    result = cli("audit", tmp_path, "--format", "json")
    assert result.rc == 0, result.err
    report = result.json()
    assert (report["producer"], report["quant_algo"]) == ("fp8", "FP8_BLOCK")
    # the routers are not linears: FP8 by the config (no skip list), built unquantized, stored bf16 — info only
    ((code, severity, count),) = [(f["code"], f["severity"], f["count"]) for f in report["findings"]]
    assert (code, severity, count) == ("config-quantized-model-unquantized", "info", 58)
    qkv_a = _module(result, "model.layers.0.self_attn.fused_qkv_a_proj")  # q_a_proj + kv_a_proj_with_mqa
    assert (qkv_a["algo"], qkv_a["grouping"], qkv_a["evidence"]["scale_params"]) == (
        "FP8_BLOCK", "fused", ["weight_scale_inv"])
    assert "model.layers.0.self_attn.kv_a_proj_with_mqa" in qkv_a["checkpoint_names"]
    assert _module(result, "lm_head")["rule"] == "producer-default-skip"
