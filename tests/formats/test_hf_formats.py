"""Config models of HF fine-grained FP8 and gpt-oss MXFP4 on realistic configs.

The inline configs are the published ones (DeepSeek-V3's ``config.json``, OpenAI's gpt-oss conversion
output, a shortened Qwen3-30B-A3B-FP8 list); the corpus copies, when present, are checked against the
committed JSON Schemas and the same normalization.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quantresolve import load_config
from quantresolve.formats.fp8 import Fp8ConfigFile
from quantresolve.formats.mxfp4 import Mxfp4ConfigFile

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus"

DEEPSEEK_V3 = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]}
QWEN3_FP8 = {**DEEPSEEK_V3, "modules_to_not_convert": [
    "lm_head", "model.layers.0.input_layernorm", "model.layers.0.mlp.gate", "model.layers.0.post_attention_layernorm"]}
AUTOFP8 = {"quant_method": "fp8", "activation_scheme": "static", "ignored_layers": ["lm_head"]}
GPT_OSS = {"quant_method": "mxfp4", "modules_to_not_convert": [
    "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]}


def test_deepseek_v3_is_fp8_block_128() -> None:
    cfg = load_config(DEEPSEEK_V3)
    assert (cfg.producer, cfg.format, cfg.quant_algo) == ("fp8", "finegrained-fp8", "FP8_BLOCK")
    assert cfg.default_scheme.summary() == "FP8_BLOCK (fp8:finegrained-fp8, w8 block/128x128, a8 dynamic)"
    assert cfg.default_scheme.input_activations.group_size == 128  # per token, 1x128 groups
    assert cfg.exclude == () and cfg.findings == ()


def test_qwen3_fp8_skip_list_is_exact_names_with_fields() -> None:
    cfg = load_config(QWEN3_FP8)
    assert [(e.original, e.kind, e.field) for e in cfg.exclude][:2] == [
        ("lm_head", "exact", "modules_to_not_convert[0]"),
        ("model.layers.0.input_layernorm", "exact", "modules_to_not_convert[1]")]


def test_autofp8_static_per_tensor_dialect() -> None:
    cfg = load_config(AUTOFP8)
    assert cfg.default_scheme.summary() == "FP8 (fp8:autofp8, w8 tensor, a8 static)"
    assert [e.field for e in cfg.exclude] == ["ignored_layers[0]"]
    (finding,) = cfg.findings
    assert finding.code == "engines-disagree" and finding.field == "weight_block_size"


@pytest.mark.parametrize(("section", "field", "words"), [
    ({**DEEPSEEK_V3, "activation_scheme": "STATIC"}, "activation_scheme", "vLLM refuses it"),
    ({**DEEPSEEK_V3, "weight_block_size": None}, "weight_block_size", "scalar weight_scale_inv"),
    ({**DEEPSEEK_V3, "ignored_layers": ["a"], "modules_to_not_convert": ["b"]}, "ignored_layers",
     "vLLM reads ignored_layers"),
])
def test_fp8_configs_engines_read_differently(section: dict, field: str, words: str) -> None:
    (finding,) = load_config(section).findings
    assert (finding.code, finding.field) == ("engines-disagree", field) and words in finding.message


def test_gpt_oss_is_mxfp4_with_globs_kept_verbatim() -> None:
    cfg = load_config(GPT_OSS)
    assert (cfg.producer, cfg.quant_algo) == ("mxfp4", "MXFP4A16")
    assert cfg.default_scheme.summary() == "MXFP4A16 (mxfp4:gpt-oss, w4 group/32)"
    assert [(e.original, e.kind) for e in cfg.exclude] == [
        ("model.layers.*.self_attn", "glob"), ("model.layers.*.mlp.router", "glob"),
        ("model.embed_tokens", "exact"), ("lm_head", "exact")]
    assert cfg.findings == ()


@pytest.mark.parametrize(("folder", "model", "schema"), [
    ("Qwen__Qwen3-30B-A3B-FP8", Fp8ConfigFile, "fp8-config.schema.json"),
    ("deepseek-ai__DeepSeek-V3", Fp8ConfigFile, "fp8-config.schema.json"),
    ("openai__gpt-oss-20b__EchoCog", Mxfp4ConfigFile, "mxfp4-config.schema.json"),
])
def test_corpus_sections_validate_against_model_and_schema(folder: str, model: type, schema: str) -> None:
    path = CORPUS / folder / "config.json"
    if not path.is_file():
        pytest.skip(f"corpus folder {folder} absent")
    section = json.loads(path.read_text())["quantization_config"]
    parsed = model.model_validate(section)
    assert parsed.quant_method == section["quant_method"]
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(section, json.loads((REPO / "schemas" / schema).read_text()))
    cfg = load_config(path.parent)
    assert cfg.sources == ("config.json",) and cfg.producer == section["quant_method"]
