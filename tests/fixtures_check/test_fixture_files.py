"""The committed real-producer checkpoints have the producers' configs and tensor layouts.

Torch-free: safetensors headers are parsed with ``struct`` + ``json`` and small
scalars are decoded from their raw bytes. Regenerate the fixtures with
``.venv/bin/python fixtures/generate.py``.
"""

from __future__ import annotations

import json
import re
import struct
from functools import cache
from pathlib import Path
from typing import Any

import pytest

CHECKPOINTS = Path(__file__).resolve().parents[2] / "fixtures" / "checkpoints"
HIDDEN, INTERMEDIATE, VOCAB, LAYERS = 128, 256, 256, 2

#: out x in of every linear in the tiny Llama (q 4 heads x 32, k/v 2 heads x 32).
LINEAR_SHAPES = {
    "self_attn.q_proj": (128, HIDDEN),
    "self_attn.k_proj": (64, HIDDEN),
    "self_attn.v_proj": (64, HIDDEN),
    "self_attn.o_proj": (HIDDEN, 128),
    "mlp.gate_proj": (INTERMEDIATE, HIDDEN),
    "mlp.up_proj": (INTERMEDIATE, HIDDEN),
    "mlp.down_proj": (HIDDEN, INTERMEDIATE),
}
ATTENTION = [name for name in LINEAR_SHAPES if name.startswith("self_attn")]
MLP = [name for name in LINEAR_SHAPES if name.startswith("mlp")]

MODELOPT_ALGOS = {
    "modelopt-nvfp4": "NVFP4",
    "modelopt-w4a16-nvfp4": "W4A16_NVFP4",
    "modelopt-fp8": "FP8",
    "modelopt-fp8-pc-pt": "FP8_PER_CHANNEL_PER_TOKEN",
    "modelopt-mxfp4": "mxfp4",
    "modelopt-int4-awq": "W4A16_AWQ",
    "modelopt-w4a8-awq": "W4A8_AWQ",
    "modelopt-int8-sq": "W8A8_SQ_PER_CHANNEL",
    "modelopt-mixed": "MIXED_PRECISION",
}
CT_FORMATS = {
    "ct-w4a16": "pack-quantized",
    "ct-w4a16-asym": "pack-quantized",
    "ct-w8a16": "pack-quantized",
    "ct-w8a8": "int-quantized",
    "ct-fp8": "float-quantized",
    "ct-fp8-dynamic": "float-quantized",
    "ct-fp8-block": "float-quantized",
    "ct-nvfp4a16": "nvfp4-pack-quantized",
    "ct-nvfp4": "nvfp4-pack-quantized",
    "ct-mxfp4a16": "mxfp4-pack-quantized",
    "ct-mixed": "mixed-precision",
    "ct-from-modelopt-nvfp4": "nvfp4-pack-quantized",
}
BNB = ["bnb-nf4", "bnb-int8"]
#: fixtures/gptq_awq.py: name → (quant_method, bits of every quantized linear, group size, act-order)
GPTQ_AWQ = {
    "gptq-w4-g128": ("gptq", 4, 128, False), "gptq-w4-g32-act": ("gptq", 4, 32, True),
    "gptq-w3-g32-asym-v2": ("gptq", 3, 32, False), "gptq-w8-channel": ("gptq", 8, -1, False),
    "awq-w4-g128": ("awq", 4, 128, False),
}
ALL = [*MODELOPT_ALGOS, *CT_FORMATS, *BNB, *GPTQ_AWQ, "gptq-dynamic", "awq-not-convert"]

pytestmark = pytest.mark.skipif(
    not CHECKPOINTS.is_dir(), reason="fixtures/checkpoints not generated"
)


@cache
def _raw_header(name: str, file: str) -> dict[str, Any]:
    with open(CHECKPOINTS / name / file, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        return json.loads(handle.read(length))


def header(name: str, file: str = "model.safetensors") -> dict[str, dict[str, Any]]:
    """The safetensors JSON header of ``fixtures/checkpoints/<name>/<file>`` (no metadata)."""
    return {k: v for k, v in _raw_header(name, file).items() if k != "__metadata__"}


def metadata(name: str, file: str) -> dict[str, str]:
    """The ``__metadata__`` of that safetensors file."""
    return _raw_header(name, file).get("__metadata__") or {}


def scalar_f32(name: str, tensor: str) -> float:
    """Decode a one-element F32 tensor straight from the file bytes."""
    entry = header(name)[tensor]
    assert entry["dtype"] == "F32", entry
    with open(CHECKPOINTS / name / "model.safetensors", "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        handle.seek(8 + length + entry["data_offsets"][0])
        (value,) = struct.unpack("<f", handle.read(4))
    return value


def layout(name: str, tensor: str) -> tuple[str, list[int]]:
    entry = header(name)[tensor]
    return entry["dtype"], entry["shape"]


def config(name: str) -> dict[str, Any]:
    return json.loads((CHECKPOINTS / name / "config.json").read_text())


def modules(*suffixes: str) -> list[tuple[str, tuple[int, int]]]:
    wanted = suffixes or tuple(LINEAR_SHAPES)
    return [
        (f"model.layers.{layer}.{suffix}", LINEAR_SHAPES[suffix])
        for layer in range(LAYERS)
        for suffix in wanted
    ]


# --------------------------------------------------------------------------- every fixture


@pytest.mark.parametrize("name", ALL)
def test_fixture_directory_is_complete(name: str) -> None:
    directory = CHECKPOINTS / name
    for file in ("config.json", "model.safetensors", "reference.safetensors", "FIXTURE.json"):
        assert (directory / file).is_file(), f"{name}: missing {file}"
    record = json.loads((directory / "FIXTURE.json").read_text())
    assert record["name"] == name
    assert {"producer", "producer_version", "preset", "reference", "notes"} <= record.keys()
    assert record["producer_version"]
    assert config(name)["architectures"] == ["LlamaForCausalLM"]
    # Which arithmetic computed reference.safetensors (fixtures/arith_fingerprint.py): the tests compare
    # strictly only where theirs is the same. FIXTURE.json and the reference's metadata agree.
    machine = record["reference_machine"]
    assert {"arith_fingerprint", "torch_version", "cpu_capability", "machine"} <= machine.keys()
    assert re.fullmatch(r"v\d+-[0-9a-f]{16}", machine["arith_fingerprint"])
    assert metadata(name, "reference.safetensors") == {"arith_fingerprint": machine["arith_fingerprint"]}


@pytest.mark.parametrize("name", ALL)
def test_reference_tensors(name: str) -> None:
    tensors = header(name, "reference.safetensors")
    assert set(tensors) == {"input_ids", "logits", "greedy_ids", "greedy_logits"}
    assert tensors["input_ids"]["dtype"] == "I64"
    assert tensors["input_ids"]["shape"] == [1, 8]
    assert tensors["logits"]["dtype"] == "F32"
    assert tensors["logits"]["shape"] == [1, 8, VOCAB]
    assert tensors["greedy_ids"]["dtype"] == "I64"
    batch, length = tensors["greedy_ids"]["shape"]
    assert batch == 1 and 8 < length <= 16
    # The logits each greedy step chose from: the tests tell a near-tie from a divergence by them.
    assert tensors["greedy_logits"]["dtype"] == "F32"
    assert tensors["greedy_logits"]["shape"] == [1, length - 8, VOCAB]


@pytest.mark.parametrize("name", ALL)
def test_unquantized_parts_stay_bf16(name: str) -> None:
    for tensor in ("lm_head.weight", "model.embed_tokens.weight"):
        assert layout(name, tensor) == ("BF16", [VOCAB, HIDDEN])


# --------------------------------------------------------------------------- nvidia-modelopt


@pytest.mark.parametrize(("name", "algo"), MODELOPT_ALGOS.items())
def test_modelopt_configs_agree(name: str, algo: str) -> None:
    legacy = json.loads((CHECKPOINTS / name / "hf_quant_config.json").read_text())
    assert legacy["producer"]["name"] == "modelopt"
    assert legacy["quantization"]["quant_algo"] == algo
    flat = config(name)["quantization_config"]
    assert flat["quant_method"] == "modelopt"
    assert flat["quant_algo"] == algo
    assert flat["producer"] == legacy["producer"]


@pytest.mark.parametrize("name", ["modelopt-nvfp4", "modelopt-w4a16-nvfp4"])
def test_modelopt_nvfp4_layout(name: str) -> None:
    for module, (n, k) in modules():
        assert layout(name, f"{module}.weight") == ("U8", [n, k // 2])
        assert layout(name, f"{module}.weight_scale") == ("F8_E4M3", [n, k // 16])
        assert layout(name, f"{module}.weight_scale_2") == ("F32", [])
        has_input = f"{module}.input_scale" in header(name)
        assert has_input == (name == "modelopt-nvfp4")


@pytest.mark.parametrize("name", ["modelopt-nvfp4", "modelopt-w4a16-nvfp4"])
def test_modelopt_nvfp4_fused_projections_share_weight_scale_2(name: str) -> None:
    for layer in range(LAYERS):
        prefix = f"model.layers.{layer}"
        for group in (["q", "k", "v"], ["gate", "up"]):
            part = "self_attn" if "q" in group else "mlp"
            values = {scalar_f32(name, f"{prefix}.{part}.{p}_proj.weight_scale_2") for p in group}
            assert len(values) == 1, (prefix, group, values)


def test_modelopt_fp8_layout() -> None:
    for module, (n, k) in modules():
        assert layout("modelopt-fp8", f"{module}.weight") == ("F8_E4M3", [n, k])
        assert layout("modelopt-fp8", f"{module}.weight_scale") == ("F32", [])
        assert layout("modelopt-fp8", f"{module}.input_scale") == ("F32", [])


def test_modelopt_fp8_per_channel_layout() -> None:
    for module, (n, k) in modules():
        assert layout("modelopt-fp8-pc-pt", f"{module}.weight") == ("F8_E4M3", [n, k])
        assert layout("modelopt-fp8-pc-pt", f"{module}.weight_scale") == ("F32", [n])
        assert f"{module}.input_scale" not in header("modelopt-fp8-pc-pt")


def test_modelopt_mxfp4_layout() -> None:
    for module, (n, k) in modules():
        assert layout("modelopt-mxfp4", f"{module}.weight") == ("U8", [n, k // 2])
        assert layout("modelopt-mxfp4", f"{module}.weight_scale") == ("U8", [n, k // 32])


@pytest.mark.parametrize("name", ["modelopt-int4-awq", "modelopt-w4a8-awq"])
def test_modelopt_awq_layout(name: str) -> None:
    tensors = header(name)
    for module, (n, k) in modules():
        # Two output rows per byte: [N/2, K], scales per 128 input columns.
        assert layout(name, f"{module}.weight") == ("U8", [n // 2, k])
        assert layout(name, f"{module}.weight_scale") == ("F32", [n, k // 128])
        # q/k/v and gate/up share their input with a layernorm that absorbed the
        # pre_quant_scale; o_proj and down_proj keep theirs.
        keeps_scale = module.endswith(("o_proj", "down_proj"))
        assert (f"{module}.pre_quant_scale" in tensors) == keeps_scale
        if keeps_scale:
            assert layout(name, f"{module}.pre_quant_scale") == ("BF16", [k])
        w4a8 = name == "modelopt-w4a8-awq"
        assert (f"{module}.weight_scale_2" in tensors) == w4a8
        assert (f"{module}.input_scale" in tensors) == w4a8
    legacy = json.loads((CHECKPOINTS / name / "hf_quant_config.json").read_text())
    assert legacy["quantization"]["group_size"] == 128
    assert legacy["quantization"]["pre_quant_scale"] is True


def test_modelopt_int8_smoothquant_layout() -> None:
    for module, (n, k) in modules():
        assert layout("modelopt-int8-sq", f"{module}.weight") == ("I8", [n, k])
        assert layout("modelopt-int8-sq", f"{module}.weight_scale") == ("F32", [n])
        assert layout("modelopt-int8-sq", f"{module}.input_scale") == ("F32", [])
        assert layout("modelopt-int8-sq", f"{module}.pre_quant_scale") == ("BF16", [k])


def test_modelopt_mixed_precision_lists_every_quantized_layer() -> None:
    legacy = json.loads((CHECKPOINTS / "modelopt-mixed" / "hf_quant_config.json").read_text())
    layers = legacy["quantization"]["quantized_layers"]
    expected = {f"model.layers.0.{a}": {"quant_algo": "FP8"} for a in ATTENTION}
    expected |= {m: {"quant_algo": "NVFP4", "group_size": 16} for m, _ in modules(*MLP)}
    assert layers == expected
    # Mixed mode drops exclude_modules: a module not listed is unquantized.
    assert "exclude_modules" not in legacy["quantization"]
    flat = config("modelopt-mixed")["quantization_config"]
    assert flat["quantized_layers"] == expected
    targets = sorted(t for group in flat["config_groups"].values() for t in group["targets"])
    assert targets == sorted(expected)


def test_modelopt_mixed_tensor_layout() -> None:
    for module, (n, k) in modules(*ATTENTION):
        dtype = "F8_E4M3" if module.startswith("model.layers.0.") else "BF16"
        assert layout("modelopt-mixed", f"{module}.weight") == (dtype, [n, k])
    for module, (n, k) in modules(*MLP):
        assert layout("modelopt-mixed", f"{module}.weight") == ("U8", [n, k // 2])
        assert layout("modelopt-mixed", f"{module}.weight_scale") == ("F8_E4M3", [n, k // 16])
    assert "model.layers.1.self_attn.q_proj.weight_scale" not in header("modelopt-mixed")


# --------------------------------------------------------------------------- compressed-tensors


@pytest.mark.parametrize(("name", "fmt"), CT_FORMATS.items())
def test_ct_config(name: str, fmt: str) -> None:
    quant = config(name)["quantization_config"]
    assert quant["quant_method"] == "compressed-tensors"
    assert quant["format"] == fmt
    assert quant["quantization_status"] == "compressed"
    assert quant["version"]
    for group in quant["config_groups"].values():
        assert group["format"] in CT_FORMATS.values()
    expected_ignore = (
        ["lm_head", "model.embed_tokens"] if name == "ct-from-modelopt-nvfp4" else ["lm_head"]
    )
    assert quant["ignore"] == expected_ignore


@pytest.mark.parametrize(("name", "bits"), [("ct-w4a16", 4), ("ct-w4a16-asym", 4), ("ct-w8a16", 8)])
def test_ct_pack_quantized_layout(name: str, bits: int) -> None:
    tensors = header(name)
    for module, (n, k) in modules():
        assert layout(name, f"{module}.weight_packed") == ("I32", [n, k * bits // 32])
        assert layout(name, f"{module}.weight_scale") == ("BF16", [n, k // 128])
        assert layout(name, f"{module}.weight_shape") == ("I64", [2])
        if name.endswith("asym"):
            # Zero points are packed along N (8 int4 values per int32).
            assert layout(name, f"{module}.weight_zero_point") == ("I32", [n // 8, k // 128])
        else:
            assert f"{module}.weight_zero_point" not in tensors


def test_ct_int_quantized_layout() -> None:
    for module, (n, k) in modules():
        assert layout("ct-w8a8", f"{module}.weight") == ("I8", [n, k])
        assert layout("ct-w8a8", f"{module}.weight_scale") == ("BF16", [n, 1])


@pytest.mark.parametrize(
    ("name", "scale_shape", "static_input"),
    [
        ("ct-fp8", lambda n, k: [1], True),
        ("ct-fp8-dynamic", lambda n, k: [n, 1], False),
        ("ct-fp8-block", lambda n, k: [-(-n // 128), -(-k // 128)], False),
    ],
)
def test_ct_float_quantized_layout(name: str, scale_shape: Any, static_input: bool) -> None:
    for module, (n, k) in modules():
        assert layout(name, f"{module}.weight") == ("F8_E4M3", [n, k])
        assert layout(name, f"{module}.weight_scale") == ("BF16", scale_shape(n, k))
        assert (f"{module}.input_scale" in header(name)) == static_input


@pytest.mark.parametrize("name", ["ct-nvfp4a16", "ct-nvfp4", "ct-from-modelopt-nvfp4"])
def test_ct_nvfp4_layout(name: str) -> None:
    # CT itself writes global scales as [1]; the ModelOpt converter keeps ModelOpt's [].
    scalar = [] if name == "ct-from-modelopt-nvfp4" else [1]
    for module, (n, k) in modules():
        assert layout(name, f"{module}.weight_packed") == ("U8", [n, k // 2])
        assert layout(name, f"{module}.weight_scale") == ("F8_E4M3", [n, k // 16])
        assert layout(name, f"{module}.weight_global_scale") == ("F32", scalar)
        has_input = f"{module}.input_global_scale" in header(name)
        assert has_input == (name != "ct-nvfp4a16")


def test_ct_nvfp4_fused_projections_share_global_scale() -> None:
    for layer in range(LAYERS):
        prefix = f"model.layers.{layer}"
        qkv = {
            scalar_f32("ct-nvfp4", f"{prefix}.self_attn.{p}_proj.weight_global_scale")
            for p in "qkv"
        }
        gate_up = {
            scalar_f32("ct-nvfp4", f"{prefix}.mlp.{p}_proj.weight_global_scale")
            for p in ("gate", "up")
        }
        assert len(qkv) == 1 and len(gate_up) == 1


def test_ct_from_modelopt_inverts_modelopt_scales() -> None:
    for module, _ in modules():
        source = scalar_f32("modelopt-nvfp4", f"{module}.weight_scale_2")
        converted = scalar_f32("ct-from-modelopt-nvfp4", f"{module}.weight_global_scale")
        assert converted == pytest.approx(1 / source, rel=1e-6)
        source_input = scalar_f32("modelopt-nvfp4", f"{module}.input_scale")
        converted_input = scalar_f32("ct-from-modelopt-nvfp4", f"{module}.input_global_scale")
        assert converted_input == pytest.approx(1 / source_input, rel=1e-6)


def test_ct_mxfp4_layout() -> None:
    for module, (n, k) in modules():
        assert layout("ct-mxfp4a16", f"{module}.weight_packed") == ("U8", [n, k // 2])
        assert layout("ct-mxfp4a16", f"{module}.weight_scale") == ("U8", [n, k // 32])


def test_ct_mixed_groups_carry_their_own_format() -> None:
    groups = config("ct-mixed")["quantization_config"]["config_groups"].values()
    by_target = {tuple(group["targets"]): group for group in groups}
    assert by_target[(r"re:.*mlp\..*_proj$",)]["format"] == "pack-quantized"
    assert by_target[(r"re:.*self_attn\..*_proj$",)]["format"] == "float-quantized"
    for module, (n, k) in modules(*MLP):
        assert layout("ct-mixed", f"{module}.weight_packed") == ("I32", [n, k // 8])
    for module, (n, k) in modules(*ATTENTION):
        assert layout("ct-mixed", f"{module}.weight") == ("F8_E4M3", [n, k])


# --------------------------------------------------------------------------- bitsandbytes


def test_bnb_nf4_layout() -> None:
    quant = config("bnb-nf4")["quantization_config"]
    assert quant["quant_method"] == "bitsandbytes"
    assert quant["load_in_4bit"] is True
    assert quant["bnb_4bit_quant_type"] == "nf4"
    assert quant["bnb_4bit_use_double_quant"] is True
    assert quant["bnb_4bit_compute_dtype"] == "bfloat16"
    for module, (n, k) in modules():
        weight = f"{module}.weight"
        assert layout("bnb-nf4", weight) == ("U8", [n * k // 2, 1])
        # Double quant stores the 64-block absmax as uint8 codes + a nested fp32 scale.
        assert layout("bnb-nf4", f"{weight}.absmax") == ("U8", [n * k // 64])
        assert layout("bnb-nf4", f"{weight}.quant_map") == ("F32", [16])
        assert layout("bnb-nf4", f"{weight}.nested_absmax")[0] == "F32"
        assert layout("bnb-nf4", f"{weight}.nested_quant_map") == ("F32", [256])
        assert layout("bnb-nf4", f"{weight}.quant_state.bitsandbytes__nf4")[0] == "U8"


def test_bnb_int8_layout() -> None:
    quant = config("bnb-int8")["quantization_config"]
    assert quant["quant_method"] == "bitsandbytes"
    assert quant["load_in_8bit"] is True
    assert quant["llm_int8_threshold"] == 6.0
    for module, (n, k) in modules():
        assert layout("bnb-int8", f"{module}.weight") == ("I8", [n, k])
        assert layout("bnb-int8", f"{module}.SCB") == ("F32", [n])
        assert layout("bnb-int8", f"{module}.weight_format") == ("U8", [])


# --------------------------------------------------------------------------- GPTQ / AWQ (fixtures/gptq_awq.py)


@pytest.mark.parametrize("name", sorted(GPTQ_AWQ))
def test_gptq_awq_layout(name: str) -> None:
    method, bits, group, act = GPTQ_AWQ[name]
    assert config(name)["quantization_config"]["quant_method"] == method
    assert config(name)["quantization_config"].get("desc_act", False) is act
    for module, (n, k) in modules():
        groups = 1 if group == -1 else k // group
        assert layout(name, f"{module}.scales") == ("F16", [groups, n])
        if method == "gptq":
            assert layout(name, f"{module}.qweight") == ("I32", [k * bits // 32, n])
            assert layout(name, f"{module}.qzeros") == ("I32", [groups, n * bits // 32])
            assert layout(name, f"{module}.g_idx") == ("I32", [k])
        else:
            assert layout(name, f"{module}.qweight") == ("I32", [k, n // 8])
            assert layout(name, f"{module}.qzeros") == ("I32", [groups, n // 8])
        assert f"{module}.weight" not in header(name)


def test_gptq_dynamic_and_awq_exclusions_stay_dense() -> None:
    assert layout("gptq-dynamic", "model.layers.1.mlp.down_proj.weight") == ("BF16", [HIDDEN, INTERMEDIATE])
    assert layout("gptq-dynamic", "model.layers.0.self_attn.q_proj.qweight") == ("I32", [HIDDEN // 4, 128])
    assert layout("gptq-dynamic", "model.layers.0.self_attn.q_proj.scales") == ("F16", [2, 128])
    assert layout("awq-not-convert", "model.layers.0.mlp.down_proj.weight") == ("BF16", [HIDDEN, INTERMEDIATE])
