"""Every real config in ../shared/corpus loads, with producer / algo / counts asserted."""

from __future__ import annotations

import pytest

from quantresolve import load_config
from quantresolve.errors import NoQuantizationConfigError, QuantResolveError, UnsupportedFormatError
from tests.conftest import corpus_dir, corpus_folders

# folder → (producer, quant_algo, #exclude entries, #per-layer entries, KV algo)
EXPECTED = {
    "nvidia__Llama-3.1-70B-Instruct-FP8": ("modelopt", "FP8", 1, 0, "FP8"),
    "Qwen__Qwen3-32B-FP8-Static-PerTensor": ("modelopt", "FP8", 1, 0, "FP8"),
    "nvidia__DeepSeek-V3.1-NVFP4": ("modelopt", "NVFP4", 246, 0, "FP8"),
    "nvidia__DeepSeek-V3.2-NVFP4": ("modelopt", "NVFP4", 307, 0, "FP8"),
    "nvidia__DeepSeek-V4-Flash-NVFP4": ("modelopt", "MIXED_PRECISION", 4, 43, None),
    "nvidia__GLM-5-NVFP4": ("modelopt", "NVFP4", 471, 0, "FP8"),
    "nvidia__GLM-5.1-NVFP4": ("modelopt", "NVFP4", 155, 0, "FP8"),
    "nvidia__Kimi-K2.5-NVFP4": ("modelopt", "NVFP4", 64, 0, "FP8"),
    "nvidia__Qwen3-235B-A22B-NVFP4": ("modelopt", "NVFP4", 95, 0, "FP8"),
    "nvidia__NVIDIA-Nemotron-3.5-Lightning-30B-A3B-NVFP4": ("modelopt", "MIXED_PRECISION", 72, 5981, "FP8"),
    "nvidia__Qwen3.6-27B-NVFP4": ("modelopt", "MIXED_PRECISION", 2, 401, "FP8"),
    "nvidia__Qwen3.6-35B-A3B-NVFP4": ("modelopt", "MIXED_PRECISION", 2, 291, "FP8"),
    "allenai__Molmo-7B-D-0924__NF4-reubzdubz": ("bitsandbytes", "BNB_NF4", 3, 0, None),
    "Irfanuruchi__Llama-3.1-8B-Computer-Networks-LLM": ("bitsandbytes", "BNB_INT8", 0, 0, None),
    "RedHatAI__DeepSeek-V4-Flash-NVFP4-FP8": ("compressed-tensors", None, 0, 0, None),
    "Qwen__Qwen3-30B-A3B-FP8": ("fp8", "FP8_BLOCK", 145, 0, None),
    "deepseek-ai__DeepSeek-V3": ("fp8", "FP8_BLOCK", 0, 0, None),
    "openai__gpt-oss-20b__EchoCog": ("mxfp4", "MXFP4A16", 4, 0, None),
}


@pytest.mark.parametrize("folder", sorted(EXPECTED))
def test_expected_producer_algo_counts(folder: str) -> None:
    cfg = load_config(corpus_dir(folder))
    producer, algo, n_exclude, n_layers, kv = EXPECTED[folder]
    assert cfg.producer == producer
    assert cfg.quant_algo == algo
    assert len(cfg.exclude) == n_exclude
    assert len(cfg.layers) == n_layers
    assert (cfg.kv_cache.algo if cfg.kv_cache else None) == kv


def test_every_corpus_folder_loads_or_is_refused_clearly() -> None:
    folders = corpus_folders()
    if not folders:
        pytest.skip("corpus not available")
    loaded = 0
    for folder in folders:
        try:
            load_config(folder)
            loaded += 1
        except (NoQuantizationConfigError, UnsupportedFormatError):
            pass
        except QuantResolveError as err:  # pragma: no cover - would be a bug
            pytest.fail(f"{folder.name}: {err}")
    assert loaded >= len(EXPECTED)


def test_qwen36_moe_files_disagree_findings() -> None:
    cfg = load_config(corpus_dir("nvidia__Qwen3.6-35B-A3B-NVFP4"))
    codes = {f.code for f in cfg.findings}
    assert codes == {"files-disagree-kv", "files-disagree-producer-version"}
    assert cfg.producer_version == "0.44.0"  # hf_quant_config.json is authoritative
    assert cfg.sources == ("hf_quant_config.json", "config.json")


def test_qwen36_mixed_layers_keep_original_spelling_and_groups() -> None:
    cfg = load_config(corpus_dir("nvidia__Qwen3.6-35B-A3B-NVFP4"))
    by_name = {e.name: e for e in cfg.layers}
    experts = by_name["model.language_model.layers.0.mlp.experts"]
    assert experts.scheme.algo == "W4A16_NVFP4" and experts.scheme.weights.group_size == 16
    assert experts.field == 'quantization.quantized_layers["model.language_model.layers.0.mlp.experts"]'
    assert "model.language_model.layers.0.linear_attn.in_proj_a" not in by_name


def test_deepseek_v4_base_fp8_is_a_finding_not_a_crash() -> None:
    cfg = load_config(corpus_dir("nvidia__DeepSeek-V4-Flash-NVFP4"))
    assert [f.code for f in cfg.findings] == ["base-format-fp8"]
    assert {e.name.split(".")[0] for e in cfg.layers} == {"layers"}  # DeepSeek's own names, no model.


def test_ct_mixed_precision_groups_have_their_own_format() -> None:
    cfg = load_config(corpus_dir("RedHatAI__DeepSeek-V4-Flash-NVFP4-FP8"))
    formats = {g.name: (g.scheme.algo, g.scheme.format) for g in cfg.groups}
    assert formats == {"group_0": ("FP8_BLOCK", "float-quantized"), "group_1": ("NVFP4", "nvfp4-pack-quantized")}
    assert cfg.groups[0].targets[0].kind == "regex"


def test_molmo_skip_modules_are_exact_entries() -> None:
    cfg = load_config(corpus_dir("allenai__Molmo-7B-D-0924__NF4-reubzdubz"))
    assert [(e.original, e.kind) for e in cfg.exclude] == [
        ("model.vision_backbone", "exact"), ("model.transformer.ff_out", "exact"), ("model.transformer.ln_f", "exact")]
    assert cfg.default_scheme.options["quant_type"] == "nf4"


def test_glob_entries_are_classified() -> None:
    cfg = load_config(corpus_dir("nvidia__GLM-5.1-NVFP4"))
    kinds = {e.kind for e in cfg.exclude}
    assert kinds == {"glob", "exact"}
    assert all(("*" in e.original) == (e.kind == "glob") for e in cfg.exclude)
