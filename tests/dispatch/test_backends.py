"""Backend registry: order, forcing/denying, every backend vs reference (guards: test_guards.py)."""

from __future__ import annotations

import pytest
import torch

from quantresolve.dispatch import (
    BACKENDS,
    DeviceInfo,
    Shapes,
    backend_verdicts,
    make_linear,
    select_backend,
)
from quantresolve.dispatch.presets import scheme_from_label
from quantresolve.errors import BackendUnavailableError, DispatchError
from quantresolve.formats.scheme import QuantArgs, QuantScheme, bnb_scheme, modelopt_scheme

from .machine import AVX512_GEMV, native_dense

pytestmark = pytest.mark.filterwarnings("ignore")
CPU = DeviceInfo()


def _verdict(name: str, scheme, shapes: Shapes, device: DeviceInfo = CPU):
    return BACKENDS[name].supports(device, device.capability, shapes, scheme)


AWQ = modelopt_scheme("W4A16_AWQ", group_size=128)
W8 = modelopt_scheme("W8A16")


def test_registry_order_and_listing() -> None:
    names = [n for n, _ in backend_verdicts(AWQ, Shapes(64, 256))]
    assert names == list(BACKENDS)
    # the dequantizing references, then our Triton GEMV (not yet run on a GPU) and gemlite (slower than
    # dequantize-once + cuBLAS where measured): both are chosen only when forced
    assert names[-4:] == ["dense_dequant", "per_call_dequant", "triton_gemv_cuda", "gemlite_cuda"]
    assert select_backend(AWQ, Shapes(64, 256)).name == ("avx512_gemv_cpu" if AVX512_GEMV else "int4pack_cpu")
    assert select_backend(AWQ, Shapes(40, 256)).name == ("avx512_gemv_cpu" if AVX512_GEMV else "dense_dequant")


def test_force_unsupported_backend_is_clear_error() -> None:
    with pytest.raises(BackendUnavailableError, match=r"int8pack_cpu.*K % 16"):
        make_linear(W8, 200, 64, backend="int8pack_cpu")
    with pytest.raises(BackendUnavailableError, match="no CUDA device"):
        make_linear(modelopt_scheme("FP8"), 64, 64, backend="scaled_mm_cuda")
    with pytest.raises(DispatchError, match="unknown backend 'nope'"):
        make_linear(W8, 256, 64, backend="nope")


def test_force_and_deny_by_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUANTRESOLVE_BACKEND", "per_call_dequant")
    assert make_linear(AWQ, 256, 64).backend == "per_call_dequant"
    assert make_linear(AWQ, 256, 64, backend="dense_dequant").backend == "dense_dequant"
    monkeypatch.delenv("QUANTRESOLVE_BACKEND")
    monkeypatch.setenv("QUANTRESOLVE_DENY_BACKENDS", "avx512_gemv_cpu, int4pack_cpu, dense_dequant")
    assert make_linear(AWQ, 256, 64).backend == "per_call_dequant"
    monkeypatch.delenv("QUANTRESOLVE_DENY_BACKENDS")
    assert make_linear(AWQ, 256, 64, deny=["avx512_gemv_cpu", "int4pack_cpu"]).backend == "dense_dequant"


def test_unimplemented_scheme_is_error_naming_it() -> None:
    odd = QuantScheme(algo="W4A16_SPARSE", producer="compressed-tensors", format="marlin-24",
                      weights=QuantArgs(num_bits=4, type="int", strategy="group", group_size=128))
    with pytest.raises(DispatchError, match=r"W4A16_SPARSE.*marlin-24"):
        make_linear(odd, 256, 64)


# -- every backend agrees with transform(x) @ dequantize()ᵀ ------------------------------------

def _random_tensors(layer, seed: int = 0) -> None:
    """Fill a layer with plausible random checkpoint tensors of its expected specs."""
    g = torch.Generator().manual_seed(seed)
    for (shard, suffix), (shape, dtype) in layer.expected_tensors().items():
        shape = shape if shape is not None else (1,)
        if suffix.startswith("weight.quant_state") or suffix == "weight_format":
            continue
        if dtype in ("float", "float32"):
            t = torch.rand(shape, generator=g) * 0.02 + 0.005
            if suffix in ("pre_quant_scale",):
                t = t * 50 + 0.5
            if suffix in ("input_global_scale", "weight_global_scale"):
                t = t * 0 + 200.0
        elif dtype == "float8_e4m3fn":
            t = (torch.randn(shape, generator=g) * (0.5 if "scale" in suffix else 40)).abs().to(torch.float8_e4m3fn)
            t = t if "scale" in suffix else (torch.randn(shape, generator=g) * 40).to(torch.float8_e4m3fn)
        elif dtype == "uint8":
            hi = 256 if "scale" not in suffix else 8
            t = torch.randint(0, hi, shape, generator=g, dtype=torch.int32).to(torch.uint8)
            if "scale" in suffix:
                t = t + 120
        elif dtype == "int8":
            half = 1 << (layer.scheme.weights.num_bits - 1)  # int4 values stored one per int8 (W4A8)
            t = torch.randint(-half, half, shape, generator=g, dtype=torch.int32).to(torch.int8)
        elif dtype == "int32":
            t = torch.randint(-2**31, 2**31 - 1, shape, generator=g, dtype=torch.int64).to(torch.int32)
        elif dtype == "int64":
            t = torch.tensor([layer.shard_sizes[0], layer.in_features])
        else:
            t = torch.rand(shape, generator=g)
        layer.load(suffix, t, shard=shard)


LABELS = [("modelopt", "W4A16_AWQ"), ("modelopt", "W4A8_AWQ"), ("modelopt", "W8A16"),
          ("modelopt", "W8A8_SQ_PER_CHANNEL"), ("modelopt", "FP8"), ("modelopt", "FP8_PER_CHANNEL_PER_TOKEN"),
          ("modelopt", "FP8_PB_WO"), ("modelopt", "NVFP4"), ("modelopt", "W4A16_NVFP4"), ("modelopt", "MXFP4"),
          ("modelopt", "MXFP8"),
          ("compressed-tensors", "W4A16"), ("compressed-tensors", "W4A16_ASYM"), ("compressed-tensors", "W8A16"),
          ("compressed-tensors", "W8A8"), ("compressed-tensors", "W4A8"), ("compressed-tensors", "FP8"),
          ("compressed-tensors", "FP8_DYNAMIC"), ("compressed-tensors", "FP8_BLOCK"),
          ("compressed-tensors", "NVFP4A16"), ("compressed-tensors", "NVFP4"), ("compressed-tensors", "MXFP4"),
          ("bitsandbytes", "BNB_INT8")]
SHAPES = [(64, 256), (48, 384), (128, 512)]


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm().clamp(min=1e-6))


@pytest.mark.parametrize(("producer", "label"), LABELS)
@pytest.mark.parametrize("shape", SHAPES)
def test_every_backend_matches_reference(producer: str, label: str, shape: tuple[int, int]) -> None:
    """Tolerance: relative Frobenius error 2e-2 (bf16 compute; int4pack's bf16 scale/zero rounding)."""
    n, k = shape
    scheme = scheme_from_label(label, producer)
    x = torch.randn(5, k, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
    ran = []
    for name, verdict in backend_verdicts(scheme, Shapes(n, k)):
        if not verdict.ok:
            continue
        layer = make_linear(scheme, k, n, backend=name)
        _random_tensors(layer)
        layer.finalize()
        y, ref = layer(x), layer.reference(x)
        assert y.shape == (5, n) and torch.isfinite(y).all(), name
        assert _rel_err(y, ref) < 2e-2, (name, _rel_err(y, ref))
        ran.append(name)
    assert "per_call_dequant" in ran and "dense_dequant" in ran


@pytest.mark.parametrize("quant_type", ["nf4", "fp4"])
@pytest.mark.parametrize("double_quant", [False, True])
def test_bnb_backends_match_reference(quant_type: str, double_quant: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    import bitsandbytes.functional as F

    native_dense(monkeypatch)  # bnb_cpu's 4-bit path is offered where bitsandbytes' CPU GEMV is fused; run it anyway

    n, k = 64, 128
    w = (torch.randn(n, k) * 0.05).to(torch.bfloat16)
    packed, qs = F.quantize_4bit(w, blocksize=64, compress_statistics=double_quant, quant_type=quant_type)
    scheme = bnb_scheme(f"BNB_{quant_type.upper()}", double_quant=double_quant)
    x = torch.randn(3, k).to(torch.bfloat16)
    for name in ("bnb_cpu", "dense_dequant", "per_call_dequant"):
        layer = make_linear(scheme, k, n, backend=name)
        layer.load("weight", packed)
        for key, t in qs.as_dict(packed=True).items():
            layer.load(f"weight.{key}", t)
        layer.finalize()
        assert _rel_err(layer(x), layer.reference(x)) < 2e-2, name


def test_fp32_activations_cast_and_back() -> None:
    layer = make_linear(AWQ, 256, 64)
    _random_tensors(layer)
    layer.finalize()
    x = torch.randn(2, 256)
    y = layer(x)
    assert layer.backend == ("avx512_gemv_cpu" if AVX512_GEMV else "int4pack_cpu") and y.dtype == torch.float32 and torch.isfinite(y).all()
