"""Broken configs: each gives the exact error class, and the message names the file and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from quantresolve import load_config
from quantresolve.errors import (
    ConfigError,
    NoQuantizationConfigError,
    ProducerConflictError,
    UnknownAlgorithmError,
    UnsupportedFormatError,
)

HF = "hf_quant_config.json"
CFG = "config.json"


def hf(quantization: dict[str, Any], producer: Any = None) -> dict[str, Any]:
    return {"producer": producer or {"name": "modelopt", "version": "0.47.0"}, "quantization": quantization}


def cfg(section: Any) -> dict[str, Any]:
    return {"architectures": ["LlamaForCausalLM"], "quantization_config": section}


# (case id, files to write {name: json-able or raw text}, error class, substrings the message must contain)
CASES: list[tuple[str, dict[str, Any], type[Exception], list[str]]] = [
    ("truncated-json", {HF: '{"quantization": {"quant_algo": "FP8"'}, ConfigError, [HF, "invalid JSON"]),
    ("empty-file", {HF: ""}, ConfigError, [HF, "invalid JSON"]),
    ("not-utf8", {HF: b"\xff\xfe{}"}, ConfigError, [HF, "UTF-8"]),
    ("top-level-list", {HF: [1, 2]}, ConfigError, [HF, "object"]),
    ("duplicate-keys", {HF: '{"quantization": {"quant_algo": "FP8", "quant_algo": "NVFP4"}}'}, ConfigError,
     [HF, "duplicate key 'quant_algo'"]),
    ("unknown-algo", {HF: hf({"quant_algo": "FP9"})}, UnknownAlgorithmError, [HF, "quantization.quant_algo", "'FP9'", "known: FP8"]),
    ("unknown-layer-algo", {HF: hf({"quant_algo": "MIXED_PRECISION",
                                    "quantized_layers": {"model.layers.0.mlp.experts": {"quant_algo": "FP9"}}})},
     UnknownAlgorithmError, [HF, 'quantization.quantized_layers["model.layers.0.mlp.experts"].quant_algo', "'FP9'"]),
    ("layer-algo-mixed", {HF: hf({"quant_algo": "MIXED_PRECISION",
                                  "quantized_layers": {"a.b": {"quant_algo": "MIXED_PRECISION"}}})},
     UnknownAlgorithmError, [HF, 'quantized_layers["a.b"].quant_algo']),
    ("unknown-kv-algo", {HF: hf({"quant_algo": "FP8", "kv_cache_quant_algo": "FP7"})}, UnknownAlgorithmError,
     [HF, "quantization.kv_cache_quant_algo", "FP7"]),
    ("algo-not-string", {HF: hf({"quant_algo": 8})}, ConfigError, [HF, "quantization.quant_algo"]),
    ("group-size-string", {HF: hf({"quant_algo": "NVFP4", "group_size": "16"})}, ConfigError,
     [HF, "quantization.group_size"]),
    ("exclude-not-list", {HF: hf({"quant_algo": "FP8", "exclude_modules": "lm_head"})}, ConfigError,
     [HF, "quantization.exclude_modules"]),
    ("exclude-item-not-string", {HF: hf({"quant_algo": "FP8", "exclude_modules": ["lm_head", 3]})}, ConfigError,
     [HF, "quantization.exclude_modules[1]"]),
    ("exclude-empty-name", {HF: hf({"quant_algo": "FP8", "exclude_modules": ["lm_head", " "]})}, ConfigError,
     [HF, "quantization.exclude_modules[1]", "empty module name"]),
    ("mixed-empty-layers", {HF: hf({"quant_algo": "MIXED_PRECISION", "quantized_layers": {}})}, ConfigError,
     [HF, "quantization.quantized_layers", "MIXED_PRECISION"]),
    ("mixed-missing-layers", {HF: hf({"quant_algo": "MIXED_PRECISION"})}, ConfigError, [HF, "quantized_layers"]),
    ("layers-without-mixed", {HF: hf({"quant_algo": None, "quantized_layers": {"a.b": {"quant_algo": "FP8"}}})},
     ConfigError, [HF, "quant_algo"]),
    ("layer-entry-not-object", {HF: hf({"quant_algo": "MIXED_PRECISION", "quantized_layers": {"a.b": "FP8"}})},
     ConfigError, [HF, 'quantization.quantized_layers["a.b"]']),
    ("layer-group-size-float", {HF: hf({"quant_algo": "MIXED_PRECISION",
                                        "quantized_layers": {"a.b": {"quant_algo": "NVFP4", "group_size": 16.5}}})},
     ConfigError, [HF, 'quantized_layers["a.b"].group_size']),
    ("quantization-missing", {HF: {"producer": {"name": "modelopt"}}}, ConfigError, [HF, "quantization"]),
    ("producer-not-modelopt", {HF: hf({"quant_algo": "FP8"}, producer={"name": "acme"})}, ConfigError,
     [HF, "producer.name", "acme"]),
    # A stale ModelOpt sidecar next to another producer's config.json is a finding, not an error
    # (tests/formats/test_stale_sidecar.py); one section claiming two producers stays refused.
    ("one-section-two-producers", {CFG: cfg({"quant_method": "compressed-tensors", "producer": {"name": "modelopt"},
                                             "config_groups": {"W4A16": ["Linear"]}})},
     ProducerConflictError, [CFG, "quantization_config.producer.name", "compressed-tensors", "two producers"]),
    ("one-section-two-producers-bnb", {HF: hf({"quant_algo": "FP8"}),
                                       CFG: cfg({"quant_method": "bitsandbytes", "load_in_4bit": True,
                                                 "producer": {"name": "ModelOpt"}})},
     ProducerConflictError, [CFG, "bitsandbytes", "two producers"]),
    ("no-config", {CFG: {"architectures": ["LlamaForCausalLM"]}}, NoQuantizationConfigError, ["no quantization config"]),
    ("empty-dir", {}, NoQuantizationConfigError, ["no quantization config"]),
    ("out-of-scope-method", {CFG: cfg({"quant_method": "hqq"})}, UnsupportedFormatError,
     [CFG, "quantization_config.quant_method", "'hqq'", "supported: ", "fp8", "mxfp4"]),
    ("unknown-method", {CFG: cfg({"quant_method": "zzz"})}, ConfigError,
     [CFG, "quantization_config.quant_method", "zzz", "fp8, mxfp4"]),
    ("fp8-activation-scheme", {CFG: cfg({"quant_method": "fp8", "activation_scheme": "per-group"})}, ConfigError,
     [CFG, "quantization_config.activation_scheme", "'per-group'", "accepted: 'dynamic', 'static'"]),
    ("fp8-fmt", {CFG: cfg({"quant_method": "fp8", "fmt": "e5m2", "weight_block_size": [128, 128]})}, ConfigError,
     [CFG, "quantization_config.fmt", "'e5m2'", "float8_e4m3fn"]),
    ("fp8-block-one-int", {CFG: cfg({"quant_method": "fp8", "weight_block_size": [128]})}, ConfigError,
     [CFG, "quantization_config.weight_block_size", "[128]", "two positive integers"]),
    ("fp8-block-zero", {CFG: cfg({"quant_method": "fp8", "weight_block_size": [128, 0]})}, ConfigError,
     [CFG, "quantization_config.weight_block_size", "[128, 0]"]),
    ("fp8-block-huge", {CFG: cfg({"quant_method": "fp8", "weight_block_size": [128, 10**30]})}, ConfigError,
     [CFG, "quantization_config.weight_block_size"]),
    ("fp8-block-string", {CFG: cfg({"quant_method": "fp8", "weight_block_size": ["128", 128]})}, ConfigError,
     [CFG, "quantization_config.weight_block_size[0]", "integer"]),
    ("fp8-scale-fmt", {CFG: cfg({"quant_method": "fp8", "scale_fmt": "e8m0"})}, ConfigError,
     [CFG, "quantization_config.scale_fmt", "'e8m0'", "'ue8m0'"]),
    ("fp8-fp4-experts", {CFG: cfg({"quant_method": "fp8", "expert_dtype": "fp4"})}, UnsupportedFormatError,
     [CFG, "quantization_config.expert_dtype", "fp4"]),
    ("fp8-skip-not-list", {CFG: cfg({"quant_method": "fp8", "modules_to_not_convert": "lm_head"})}, ConfigError,
     [CFG, "quantization_config.modules_to_not_convert"]),
    ("mxfp4-skip-not-list", {CFG: cfg({"quant_method": "mxfp4", "modules_to_not_convert": {"lm_head": 1}})},
     ConfigError, [CFG, "quantization_config.modules_to_not_convert"]),
    ("mxfp4-empty-entry", {CFG: cfg({"quant_method": "mxfp4", "modules_to_not_convert": ["lm_head", " "]})},
     ConfigError, [CFG, "quantization_config.modules_to_not_convert[1]", "empty"]),
    ("section-not-object", {CFG: cfg(["FP8"])}, ConfigError, [CFG, "quantization_config", "object"]),
    ("flat-ignore-not-list", {CFG: cfg({"quant_method": "modelopt", "quant_algo": "FP8", "ignore": {"a": 1}})},
     ConfigError, [CFG, "quantization_config.ignore"]),
    ("flat-kv-unknown", {CFG: cfg({"quant_method": "modelopt", "quant_algo": "FP8", "kv_cache_scheme": "FP3"})},
     UnknownAlgorithmError, [CFG, "quantization_config.kv_cache_scheme", "FP3"]),
    ("flat-kv-dict-odd", {CFG: cfg({"quant_method": "modelopt", "quant_algo": "FP8",
                                    "kv_cache_scheme": {"num_bits": 3, "type": "float"}})},
     ConfigError, [CFG, "quantization_config.kv_cache_scheme"]),
    ("ct-bad-num-bits", {CFG: cfg({"quant_method": "compressed-tensors", "format": "pack-quantized",
                                   "config_groups": {"g": {"targets": ["Linear"], "weights": {"num_bits": "x"}}}})},
     ConfigError, [CFG, 'quantization_config.config_groups["g"].weights.num_bits']),
    ("ct-unknown-preset", {CFG: cfg({"quant_method": "compressed-tensors", "config_groups": {"W9A9": ["Linear"]}})},
     ConfigError, [CFG, "quantization_config"]),
    ("ct-unknown-format", {CFG: cfg({"quant_method": "compressed-tensors", "format": "zip-quantized",
                                     "config_groups": {"W4A16": ["Linear"]}})},
     ConfigError, [CFG, 'config_groups["W4A16"].format', "zip-quantized"]),
    ("ct-mixed-without-group-format", {CFG: cfg({"quant_method": "compressed-tensors", "format": "mixed-precision",
                                                 "config_groups": {"W4A16": ["Linear"]}})},
     ConfigError, [CFG, 'config_groups["W4A16"].format']),
    ("ct-empty-groups", {CFG: cfg({"quant_method": "compressed-tensors", "format": "dense", "config_groups": {}})},
     ConfigError, [CFG, "quantization_config.config_groups"]),
    ("bnb-no-mode", {CFG: cfg({"quant_method": "bitsandbytes", "load_in_4bit": False})}, ConfigError,
     [CFG, "quantization_config", "load_in"]),
    ("bnb-both-modes", {CFG: cfg({"quant_method": "bitsandbytes", "load_in_4bit": True, "load_in_8bit": True})},
     ConfigError, [CFG, "both"]),
    ("bnb-bad-quant-type", {CFG: cfg({"load_in_4bit": True, "bnb_4bit_quant_type": "nf5"})}, ConfigError,
     [CFG, "quantization_config.bnb_4bit_quant_type"]),
    ("bnb-skip-not-list", {CFG: cfg({"load_in_4bit": True, "llm_int8_skip_modules": "lm_head"})}, ConfigError,
     [CFG, "quantization_config.llm_int8_skip_modules"]),
    ("deeply-nested", {HF: "[" * 100000 + "]" * 100000}, ConfigError, [HF, "JSON"]),
    ("two-nested-sections", {CFG: {"architectures": ["X"], "text_config": {"quantization_config": {"quant_algo": "FP8"}},
                                   "vision_config": {"quantization_config": {"quant_algo": "NVFP4"}}}},
     ConfigError, [CFG, "text_config.quantization_config", "vision_config.quantization_config"]),
]


def _write(tmp: Path, files: dict[str, Any]) -> None:
    for name, content in files.items():
        path = tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_text(json.dumps(content), encoding="utf-8")


def test_there_are_enough_hostile_cases() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize(("case", "files", "error", "needles"), CASES, ids=[c[0] for c in CASES])
def test_hostile_config(tmp_path: Path, case: str, files: dict[str, Any], error: type[Exception],
                        needles: list[str]) -> None:
    _write(tmp_path, files)
    with pytest.raises(error) as info:
        load_config(tmp_path)
    assert type(info.value) is error, f"{case}: got {type(info.value).__name__}: {info.value}"
    message = str(info.value)
    for needle in needles:
        assert needle in message, f"{case}: {needle!r} not in {message!r}"
    assert "\n" not in message


def test_huge_config_is_refused_by_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from quantresolve.util import jsonfile

    monkeypatch.setattr(jsonfile, "MAX_CONFIG_BYTES", 1000)
    (tmp_path / HF).write_text(json.dumps(hf({"quant_algo": "FP8", "exclude_modules": ["x" * 50] * 100})))
    with pytest.raises(ConfigError, match=r"hf_quant_config\.json: file is .* bytes"):
        load_config(tmp_path)


def test_large_but_valid_config_loads(tmp_path: Path) -> None:
    layers = {f"model.layers.{i}.mlp.experts.{e}.up_proj": {"quant_algo": "NVFP4", "group_size": 16}
              for i in range(20) for e in range(500)}
    (tmp_path / HF).write_text(json.dumps(hf({"quant_algo": "MIXED_PRECISION", "quantized_layers": layers})))
    assert len(load_config(tmp_path).layers) == 10000


def test_symlink_out_of_directory_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps(hf({"quant_algo": "FP8"})))
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / HF).symlink_to(outside)
    with pytest.raises(ConfigError, match="outside the checkpoint directory"):
        load_config(ckpt)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope")
