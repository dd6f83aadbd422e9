"""GPTQ and AWQ configs: published ones normalize to the expected labels; what the producers refuse is refused,
naming the file and the field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from quantresolve import load_config
from quantresolve.errors import ConfigError, UnsupportedFormatError

#: Published configs (formats17 notes §3.1 / §4.1, from the model cards' repositories).
THEBLOKE_GPTQ = {"bits": 4, "group_size": 128, "damp_percent": 0.1, "desc_act": True, "sym": True,
                 "true_sequential": True, "model_name_or_path": None, "model_file_base_name": "model",
                 "quant_method": "gptq"}  # TheBloke/Speechless-Llama2-13B-GPTQ, config.json copy adds quant_method
QWEN_GPTQ_INT4 = {"batch_size": 1, "bits": 4, "block_name_to_quantize": None, "cache_block_outputs": True,
                  "damp_percent": 0.01, "dataset": None, "desc_act": False, "exllama_config": {"version": 2},
                  "group_size": 128, "max_input_length": None, "model_seqlen": None,
                  "module_name_preceding_first_block": None, "modules_in_block_to_quantize": None,
                  "pad_token_id": None, "quant_method": "gptq", "sym": True, "tokenizer": None,
                  "true_sequential": True, "use_cuda_fp16": False, "use_exllama": False}  # psyche/Qwen2-72B-...-Int4
GPTQMODEL_DYNAMIC = {"bits": 4, "dynamic": {"-:model\\.layers\\.([2-9]\\d*|[1-9]\\d+)\\..*": {},
                                            ".*\\.1\\..*": {"bits": 8, "group_size": 32, "desc_act": False}},
                     "group_size": 128, "desc_act": True, "sym": True, "lm_head": False, "quant_method": "gptq",
                     "checkpoint_format": "gptq", "meta": {"quantizer": ["gptqmodel:1.5.1-dev"]}}
AWQ_TRANSFORMERS = {"backend": "autoawq", "bits": 4, "do_fuse": False, "exllama_config": None, "fuse_max_seq_len": None,
                    "group_size": 128, "modules_to_fuse": None, "modules_to_not_convert": None, "quant_method": "awq",
                    "version": "gemm", "zero_point": True}  # LDCC/Qwen2.5-72B-Instruct-ko-AWQ
AWQ_QWEN_VL = {"bits": 4, "group_size": 128, "modules_to_not_convert": ["visual"], "quant_method": "awq",
               "version": "gemm", "zero_point": True}
THEBLOKE_AWQ = {"quant_method": "awq", "zero_point": True, "q_group_size": 128, "w_bit": 4, "version": "GEMM"}


def _cfg(section: dict[str, Any]) -> dict[str, Any]:
    return {"architectures": ["LlamaForCausalLM"], "quantization_config": section}


@pytest.mark.parametrize(("section", "producer", "label", "summary"), [
    (THEBLOKE_GPTQ, "gptq", "W4A16", "W4A16 (gptq, w4 group/128)"),
    (QWEN_GPTQ_INT4, "gptq", "W4A16", "W4A16 (gptq, w4 group/128)"),
    (GPTQMODEL_DYNAMIC, "gptq", "W4A16", "W4A16 (gptq, w4 group/128)"),
    ({**THEBLOKE_GPTQ, "bits": 3, "group_size": -1, "sym": False, "checkpoint_format": "gptq_v2"}, "gptq",
     "W3A16_ASYM", "W3A16_ASYM (gptq:gptq_v2, w3 channel)"),
    ({**THEBLOKE_GPTQ, "bits": 8}, "gptq", "W8A16", "W8A16 (gptq, w8 group/128)"),
    (AWQ_TRANSFORMERS, "awq", "W4A16_ASYM", "W4A16_ASYM (awq:gemm, w4 group/128)"),
    (AWQ_QWEN_VL, "awq", "W4A16_ASYM", "W4A16_ASYM (awq:gemm, w4 group/128)"),
    (THEBLOKE_AWQ, "awq", "W4A16_ASYM", "W4A16_ASYM (awq:gemm, w4 group/128)"),
    ({**AWQ_TRANSFORMERS, "version": "exllama"}, "awq", "W4A16_ASYM", "W4A16_ASYM (awq:gemm, w4 group/128)"),
])
def test_published_configs(section: dict[str, Any], producer: str, label: str, summary: str) -> None:
    cfg = load_config(_cfg(section))
    assert (cfg.producer, cfg.quant_algo, cfg.default_scheme.summary()) == (producer, label, summary)


def test_act_order_and_lm_head() -> None:
    cfg = load_config(_cfg(THEBLOKE_GPTQ))
    assert cfg.default_scheme.options == {"desc_act": True} and cfg.default_scheme.weights.actorder == "group"
    assert [(e.original, e.field) for e in cfg.exclude] == [("lm_head", "quantization_config.lm_head")]
    assert not load_config(_cfg({**THEBLOKE_GPTQ, "lm_head": True})).exclude
    # one group over K: act-order changes nothing
    assert load_config(_cfg({**THEBLOKE_GPTQ, "group_size": -1})).default_scheme.options == {"desc_act": False}


def test_dynamic_keys_keep_their_spelling_and_location() -> None:
    cfg = load_config(_cfg(GPTQMODEL_DYNAMIC))
    skip = cfg.exclude[0]
    assert (skip.original, skip.kind, skip.regex_body()) == (
        "-:model\\.layers\\.([2-9]\\d*|[1-9]\\d+)\\..*", "regex", "model\\.layers\\.([2-9]\\d*|[1-9]\\d+)\\..*")
    assert skip.field == 'quantization_config.dynamic["-:model\\\\.layers\\\\.([2-9]\\\\d*|[1-9]\\\\d+)\\\\..*"]'
    (group,) = cfg.groups
    assert group.name == ".*\\.1\\..*" and group.scheme.summary() == "W8A16 (gptq, w8 group/32)"
    assert group.scheme.options == {"desc_act": False}


def test_optimum_inclusion_lists() -> None:
    cfg = load_config(_cfg({**QWEN_GPTQ_INT4, "block_name_to_quantize": "model.layers",
                            "modules_in_block_to_quantize": [["self_attn.q_proj"], ["mlp.down_proj"]]}))
    assert [(e.original, e.kind, e.field) for e in cfg.include] == [
        ("model.layers", "exact", "quantization_config.block_name_to_quantize"),
        ("self_attn.q_proj", "regex", "quantization_config.modules_in_block_to_quantize[0][0]"),
        ("mlp.down_proj", "regex", "quantization_config.modules_in_block_to_quantize[1][0]")]


GPTQ = {"quant_method": "gptq", "bits": 4, "group_size": 128}
AWQ = {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}
Q = "quantization_config"

#: (case, section, error class, substrings of the message, field)
HOSTILE: list[tuple[str, dict[str, Any], type[Exception], list[str], str]] = [
    ("gptq-bits-5", {**GPTQ, "bits": 5}, ConfigError, ["5 bits", "2, 3, 4, 8"], f"{Q}.bits"),
    ("gptq-bits-bool", {**GPTQ, "bits": True}, ConfigError, ["bits"], f"{Q}.bits"),
    ("gptq-bits-missing", {"quant_method": "gptq"}, ConfigError, ["required"], f"{Q}.bits"),
    ("gptq-group-0", {**GPTQ, "group_size": 0}, ConfigError, ["group size 0"], f"{Q}.group_size"),
    ("gptq-group-minus-2", {**GPTQ, "group_size": -2}, ConfigError, ["-2"], f"{Q}.group_size"),
    ("gptq-group-huge", {**GPTQ, "group_size": 1 << 40}, ConfigError, ["group size"], f"{Q}.group_size"),
    ("gptq-marlin", {**GPTQ, "checkpoint_format": "marlin"}, UnsupportedFormatError, ["'marlin'", "gptq_v2"],
     f"{Q}.checkpoint_format"),
    ("gptq-is-marlin", {**GPTQ, "is_marlin_format": True}, UnsupportedFormatError, ["Marlin"], f"{Q}.is_marlin_format"),
    ("gptq-formats-disagree", {**GPTQ, "checkpoint_format": "gptq", "format": "gptq_v2"}, ConfigError, ["disagree"],
     f"{Q}.format"),
    ("gptq-pack-int16", {**GPTQ, "pack_dtype": "int16"}, UnsupportedFormatError, ["int16"], f"{Q}.pack_dtype"),
    ("gptq-dynamic-bad-regex", {**GPTQ, "dynamic": {"-:model.layers.(": {}}}, ConfigError,
     ["invalid regular expression"], f'{Q}.dynamic["-:model.layers.("]'),
    ("gptq-dynamic-empty", {**GPTQ, "dynamic": {"+:": {"bits": 8}}}, ConfigError, ["empty pattern"], f'{Q}.dynamic["+:"]'),
    ("gptq-dynamic-bits", {**GPTQ, "dynamic": {".*": {"bits": 6}}}, ConfigError, ["6 bits"], f'{Q}.dynamic[".*"].bits'),
    ("gptq-dynamic-unknown", {**GPTQ, "dynamic": {".*": {"adapter": {"rank": 8}}}}, ConfigError, ["'adapter'"],
     f'{Q}.dynamic[".*"].adapter'),
    ("gptq-dynamic-not-object", {**GPTQ, "dynamic": {".*": 8}}, ConfigError, [], f'{Q}.dynamic.'),
    ("awq-bits-3", {**AWQ, "bits": 3}, ConfigError, ["3 bits", "accepted: 4"], f"{Q}.bits"),
    ("awq-w-bit-8", {"quant_method": "awq", "w_bit": 8}, ConfigError, ["8 bits"], f"{Q}.w_bit"),
    ("awq-gemv", {**AWQ, "version": "gemv"}, UnsupportedFormatError, ["'gemv'", "supported: gemm"], f"{Q}.version"),
    ("awq-marlin", {**AWQ, "version": "marlin"}, UnsupportedFormatError, ["'marlin'"], f"{Q}.version"),
    ("awq-gemv-fast", {**AWQ, "version": "GEMV_FAST"}, UnsupportedFormatError, ["GEMV_FAST"], f"{Q}.version"),
    ("awq-unknown-version", {**AWQ, "version": "zip"}, ConfigError, ["unknown AWQ version"], f"{Q}.version"),
    ("awq-llm-awq", {**AWQ, "backend": "llm-awq"}, UnsupportedFormatError, ["llm-awq"], f"{Q}.backend"),
    ("awq-no-zero-point", {**AWQ, "zero_point": False}, UnsupportedFormatError, ["Marlin"], f"{Q}.zero_point"),
    ("awq-group-0", {**AWQ, "group_size": 0}, ConfigError, ["group size 0"], f"{Q}.group_size"),
    ("awq-exclude-empty", {**AWQ, "modules_to_not_convert": ["visual", ""]}, ConfigError, ["empty module name"],
     f"{Q}.modules_to_not_convert[1]"),
]


@pytest.mark.parametrize(("case", "section", "error", "words", "field"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_refused_naming_file_and_field(tmp_path: Path, case: str, section: dict[str, Any], error: type[Exception],
                                       words: list[str], field: str) -> None:
    (tmp_path / "config.json").write_text(json.dumps(_cfg(section)))
    with pytest.raises(error) as info:
        load_config(tmp_path)
    assert info.value.file == "config.json"
    assert (info.value.field or "").startswith(field), info.value.field
    for word in words:
        assert word in str(info.value)


def test_cli_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(_cfg({**GPTQ, "dynamic": {"-:(": {}}})))
    done = subprocess.run([sys.executable, "-m", "quantresolve", "inspect", str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and 'config.json: quantization_config.dynamic["-:("]' in done.stderr
