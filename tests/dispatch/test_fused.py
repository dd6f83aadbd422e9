"""Fused shards (q/k/v, gate/up) equal the shards run separately; loader errors name what is wrong."""

from __future__ import annotations

import pytest
import torch

from quantresolve.dispatch import make_linear
from quantresolve.dispatch.presets import scheme_from_label
from quantresolve.errors import LoadError
from quantresolve.formats.scheme import bnb_scheme, modelopt_scheme

pytestmark = pytest.mark.filterwarnings("ignore")
SIZES = {"q_proj": 64, "k_proj": 32, "v_proj": 32}
K = 128


def _nvfp4_shard(n: int, seed: int, scale_2: float, input_scale: float) -> dict[str, torch.Tensor]:
    from modelopt.torch.quantization.qtensor.nvfp4_tensor import NVFP4QTensor

    w = torch.randn(n, K, generator=torch.Generator().manual_seed(seed)) * 0.05
    qt, scale, _ = NVFP4QTensor.quantize(w, 16, weights_scaling_factor_2=torch.tensor(scale_2))
    return {"weight": qt._quantized_data, "weight_scale": scale, "weight_scale_2": torch.tensor(scale_2),
            "input_scale": torch.tensor(input_scale)}


def _ct_shard(preset: str, n: int, seed: int) -> dict[str, torch.Tensor]:
    from compressed_tensors.quantization import preset_name_to_scheme

    from .test_bitexact import ct_compress

    w = (torch.randn(n, K, generator=torch.Generator().manual_seed(seed)) * 0.05 * (seed + 1)).to(torch.bfloat16)
    tensors, _, _ = ct_compress(preset_name_to_scheme(preset, ["Linear"]), w)
    return tensors


def _check_fused_equals_separate(scheme, shards: dict[str, dict[str, torch.Tensor]], backend=None,
                                 outliers: bool = False) -> str:
    fused = make_linear(scheme, K, list(SIZES.values()), shard_names=list(SIZES), backend=backend)
    for name, tensors in shards.items():
        for suffix, t in tensors.items():
            if (name, suffix) in fused.expected_tensors():
                fused.load(suffix, t, shard=name)
    fused.finalize()
    x = torch.randn(3, K, generator=torch.Generator().manual_seed(9)).to(torch.bfloat16)
    if outliers:
        x[:, 5] *= 30.0
    parts, deq = [], []
    for name, n in SIZES.items():
        single = make_linear(scheme, K, n, backend=fused.backend)
        for suffix, t in shards[name].items():
            if (None, suffix) in single.expected_tensors():
                single.load(suffix, t)
        single.finalize()
        parts.append(single(x))
        deq.append(single.dequantize())
    assert torch.equal(fused.dequantize(), torch.cat(deq))
    assert torch.equal(fused(x), torch.cat(parts, dim=-1))
    return fused.backend


def test_modelopt_nvfp4_qkv_shared_scales() -> None:
    shards = {name: _nvfp4_shard(n, i, 0.002, 0.01) for i, (name, n) in enumerate(SIZES.items())}
    _check_fused_equals_separate(modelopt_scheme("NVFP4"), shards)


def test_modelopt_nvfp4_unequal_scales_stay_exact() -> None:
    shards = {name: _nvfp4_shard(n, i, 0.002 * (i + 1), 0.01 * (i + 1)) for i, (name, n) in enumerate(SIZES.items())}
    _check_fused_equals_separate(modelopt_scheme("NVFP4"), shards)


#: (preset, backend): the per-shard scales go through that kernel's repack.
CT_FUSED = [("NVFP4A16", "dense_dequant"), ("FP8", "dense_dequant"), ("W4A16", "int4pack_cpu"),
            ("W4A16_ASYM", "int4pack_cpu"), ("W8A16", "int8split_cpu"), ("W8A8", "int_mm_cpu"),
            ("W8A8", "int8pack_cpu"), ("MXFP4A16", "dense_dequant"), ("FP8_DYNAMIC", "dense_dequant")]


@pytest.mark.parametrize(("preset", "backend"), CT_FUSED)
def test_ct_per_shard_global_scales(preset: str, backend: str) -> None:
    """compressed-tensors shards carry their own (different) global / tensor / group scales."""
    scheme = scheme_from_label(preset, "compressed-tensors")
    shards = {name: _ct_shard(preset, n, i) for i, (name, n) in enumerate(SIZES.items())}
    if preset == "FP8":
        for i, t in enumerate(shards.values()):
            t["input_scale"] = torch.tensor([0.01 * (i + 1)])
    assert _check_fused_equals_separate(scheme, shards, backend=backend) == backend


@pytest.mark.parametrize("backend", ["bnb_cpu", "int8pack_cpu", "int8split_cpu", "dense_dequant"])
def test_bnb_int8_fused_equals_separate(backend: str) -> None:
    """LLM.int8: the outlier columns come from the shared input, so fused = separate on every backend."""
    import bitsandbytes.functional as F

    shards = {}
    for i, (name, n) in enumerate(SIZES.items()):
        w = (torch.randn(n, K, generator=torch.Generator().manual_seed(i)) * 0.05 * (i + 1)).half()
        cb, scb, _ = F.int8_vectorwise_quant(w)
        shards[name] = {"weight": cb, "SCB": scb}
    assert _check_fused_equals_separate(bnb_scheme("BNB_INT8"), shards, backend=backend, outliers=True) == backend


def test_loader_errors_name_suffix_and_shard() -> None:
    layer = make_linear(modelopt_scheme("NVFP4"), K, list(SIZES.values()), shard_names=list(SIZES), bias=True)
    with pytest.raises(LoadError, match=r"k_proj\.weight_zero_point: unexpected"):
        layer.load("weight_zero_point", torch.zeros(1), shard="k_proj")
    with pytest.raises(LoadError, match=r"weight: unexpected"):
        layer.load("weight", torch.zeros(64, 64, dtype=torch.uint8))  # fused layer needs a shard
    with pytest.raises(LoadError, match=r"q_proj\.weight: shape \[64, 32\] does not match expected \[64, 64\]"):
        layer.load("weight", torch.zeros(64, 32, dtype=torch.uint8), shard="q_proj")
    with pytest.raises(LoadError, match=r"q_proj\.weight: dtype torch.int8"):
        layer.load("weight", torch.zeros(64, 64, dtype=torch.int8), shard="q_proj")
    layer.load("weight", torch.zeros(64, 64, dtype=torch.uint8), shard="q_proj")
    with pytest.raises(LoadError, match="loaded twice"):
        layer.load("weight", torch.zeros(64, 64, dtype=torch.uint8), shard="q_proj")
    with pytest.raises(LoadError, match=r"missing tensors \['q_proj.weight_scale'.*'v_proj.bias'\]"):
        layer.finalize()


def test_expected_tensors_use_checkpoint_names() -> None:
    layer = make_linear(modelopt_scheme("NVFP4"), K, 64)
    assert layer.expected_tensors() == {
        (None, "weight"): ((64, 64), "uint8"), (None, "weight_scale"): ((64, 8), "float8_e4m3fn"),
        (None, "weight_scale_2"): ((), "float32"), (None, "input_scale"): ((), "float32")}
    dense = make_linear(None, K, [8, 8], shard_names=["gate_proj", "up_proj"], bias=True)
    assert set(dense.expected_tensors()) == {("gate_proj", "weight"), ("up_proj", "weight"),
                                             ("gate_proj", "bias"), ("up_proj", "bias")}


def test_scalar_scales_accept_both_shapes() -> None:
    layer = make_linear(modelopt_scheme("FP8"), K, 16)
    layer.load("weight", torch.zeros(16, K, dtype=torch.float8_e4m3fn))
    layer.load("weight_scale", torch.tensor([0.5]))  # [1] instead of []
    layer.load("input_scale", torch.tensor(0.1))
    layer.finalize()
    assert layer.dequantize().shape == (16, K)
