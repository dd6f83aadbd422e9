"""model → JSON → model is lossless for every input layout and for the normalized view."""

from __future__ import annotations

import json

import pytest

from quantresolve import load_config
from quantresolve.formats.bitsandbytes import BnbConfig
from quantresolve.formats.modelopt import HfQuantConfigFile, ModelOptFlatConfig
from quantresolve.formats.normalized import NormalizedConfig
from tests.conftest import corpus_dir


def _roundtrip(model_cls, data):
    first = model_cls.model_validate(data)
    text = first.model_dump_json(by_alias=True, exclude_unset=True)
    second = model_cls.model_validate(json.loads(text))
    assert second == first
    assert json.loads(second.model_dump_json(by_alias=True, exclude_unset=True)) == json.loads(text)
    return first, json.loads(text)


@pytest.mark.parametrize("folder", ["nvidia__Qwen3.6-35B-A3B-NVFP4", "nvidia__DeepSeek-V3.1-NVFP4",
                                    "nvidia__NVIDIA-Nemotron-3.5-Lightning-30B-A3B-NVFP4"])
def test_hf_quant_config_roundtrip_is_identity_on_real_files(folder: str) -> None:
    raw = json.loads((corpus_dir(folder) / "hf_quant_config.json").read_text())
    _, dumped = _roundtrip(HfQuantConfigFile, raw)
    assert dumped == raw  # nothing dropped, nothing invented


@pytest.mark.parametrize("folder", ["nvidia__Qwen3.6-27B-NVFP4", "nvidia__GLM-5.1-NVFP4",
                                    "Qwen__Qwen3-32B-FP8-Static-PerTensor", "nvidia__DeepSeek-V4-Flash-NVFP4"])
def test_flat_config_roundtrip_is_identity_on_real_files(folder: str) -> None:
    raw = json.loads((corpus_dir(folder) / "config.json").read_text())["quantization_config"]
    _, dumped = _roundtrip(ModelOptFlatConfig, raw)
    assert dumped == raw


@pytest.mark.parametrize("folder", ["allenai__Molmo-7B-D-0924__NF4-reubzdubz",
                                    "Irfanuruchi__Llama-3.1-8B-Computer-Networks-LLM"])
def test_bnb_roundtrip_keeps_both_spellings(folder: str) -> None:
    raw = json.loads((corpus_dir(folder) / "config.json").read_text())["quantization_config"]
    _model, dumped = _roundtrip(BnbConfig, raw)
    assert dumped == raw
    assert "_load_in_4bit" in dumped and "load_in_4bit" in dumped


def test_compressed_tensors_roundtrip_through_the_library() -> None:
    from compressed_tensors.quantization import QuantizationConfig

    raw = json.loads((corpus_dir("RedHatAI__DeepSeek-V4-Flash-NVFP4-FP8") / "config.json").read_text())
    first = QuantizationConfig.model_validate(raw["quantization_config"])
    second = QuantizationConfig.model_validate(json.loads(first.model_dump_json()))
    assert second == first


@pytest.mark.parametrize("folder", ["nvidia__Qwen3.6-35B-A3B-NVFP4", "allenai__Molmo-7B-D-0924__NF4-reubzdubz",
                                    "RedHatAI__DeepSeek-V4-Flash-NVFP4-FP8", "nvidia__GLM-5.1-NVFP4"])
def test_normalized_view_roundtrip(folder: str) -> None:
    cfg = load_config(corpus_dir(folder))
    again = NormalizedConfig.model_validate(json.loads(cfg.model_dump_json()))
    assert again == cfg.model_copy(update={"raw": {}})


def test_bare_string_kv_scheme_survives() -> None:
    flat = ModelOptFlatConfig.model_validate({"quant_algo": "FP8", "kv_cache_scheme": "FP8"})
    assert ModelOptFlatConfig.model_validate_json(flat.model_dump_json()).kv_cache_scheme == "FP8"
