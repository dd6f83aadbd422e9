"""Activation quantization is bit-exact against each producer's own functions, on bf16 activations.

ModelOpt: its ``TensorQuantizer`` on CPU (FP8 static / per-token, INT8 static) and the
``NVFP4QTensor`` / ``MXFP4QTensor`` / ``MXFP8QTensor`` round trips (its block formats have no
CPU quantizer; the fixtures' references use these). compressed-tensors: its
``compute_dynamic_scales_and_zp`` + ``fake_quantize`` — what ``forward_quantize`` runs — with
each preset's own ``input_activations``. Every case also checks that the data tells the
arithmetics apart (a plain float32 rounding, or the other producer's, gets some values wrong),
so a test passing is not an accident of easy inputs.
"""

from __future__ import annotations

import pytest
import torch

from quantresolve.dispatch.activations import ActQuant
from quantresolve.dispatch.codecs.base import act_from_scheme
from quantresolve.dispatch.numerics import E4M3_MAX
from quantresolve.dispatch.presets import scheme_from_label
from quantresolve.errors import DispatchError

pytestmark = pytest.mark.filterwarnings("ignore")


def _acts(dtype: torch.dtype = torch.bfloat16, k: int = 1024) -> torch.Tensor:
    """Rows of very different magnitude, an all-zero row and a zero block (the epsilon rules), and a
    32-block whose max is exactly 1.75 · 2 with a tiny element (where the MX exponent rules part:
    see the MXFP8 test)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 24, k, generator=g) * torch.rand(3, 24, 1, generator=g) * 3
    x[0, 0] = 0
    x[1, 1, :32] = 0
    x[2, 3, 64:96] = torch.linspace(-1.0, 1.0, 32)
    x[2, 3, 70] = 3.5
    x[2, 3, 71] = 1e-4  # subnormal in E4M3 after one of the two candidate exponents, normal after the other
    return x.to(dtype)


def _differs(a: torch.Tensor, b: torch.Tensor) -> bool:
    return not torch.equal(a.float(), b.float())


# --------------------------------------------------------------------------- compressed-tensors

def _ct_reference(preset: str, x: torch.Tensor, global_scale: torch.Tensor | None = None) -> torch.Tensor:
    from compressed_tensors.quantization import preset_name_to_scheme
    from compressed_tensors.quantization.lifecycle.forward import fake_quantize
    from compressed_tensors.quantization.utils import compute_dynamic_scales_and_zp

    args = preset_name_to_scheme(preset, ["Linear"]).input_activations
    scale, zp = compute_dynamic_scales_and_zp(value=x, args=args, module=None, global_scale=global_scale)
    return fake_quantize(x, scale, zp, args, global_scale=global_scale)


def _ct_act(preset: str, tensors: dict[str, torch.Tensor] | None = None) -> ActQuant:
    from quantresolve.dispatch.codecs import codec_for

    act = codec_for(scheme_from_label(preset, "compressed-tensors")).act_quant(tensors or {})
    assert act is not None and act.arith == "compressed-tensors"
    return act


@pytest.mark.parametrize("preset", ["FP8_DYNAMIC", "W8A8", "W4A8", "FP8_BLOCK", "MXFP4", "MXFP8"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_ct_dynamic_activations_bit_exact(preset: str, dtype: torch.dtype) -> None:
    x = _acts(dtype)
    act = _ct_act(preset) if preset != "MXFP8" else ActQuant(kind="mxfp8", granularity="group", group=32,
                                                             arith="compressed-tensors")  # no MXFP8 codec yet
    expect = _ct_reference(preset, x)
    assert torch.equal(act.fake(x), expect.float())
    if act.kind in ("mxfp4", "mxfp8"):  # power-of-two scales: the dtype does not matter, the exponent rule does
        assert _differs(ActQuant(kind=act.kind, granularity="group", group=32, arith="modelopt").fake(x), expect)
    elif dtype == torch.bfloat16:  # compressed-tensors rounds in bf16: the same rule in float32 differs
        assert _differs(act.fake(x.float()).to(torch.bfloat16), expect)


def test_ct_nvfp4_activations_bit_exact() -> None:
    x = _acts()
    g = (448 * 6 / x.float().abs().amax()).reshape(1)  # as calibration sets it (generate_gparam)
    act = _ct_act("NVFP4", {"input_global_scale": g})
    expect = _ct_reference("NVFP4", x, global_scale=g)
    assert torch.equal(act.fake(x), expect.float())
    modelopt_rule = ActQuant(kind="nvfp4", granularity="group", group=16, static_scale=act.static_scale,
                             arith="modelopt")
    assert _differs(modelopt_rule.fake(x), expect)  # ModelOpt takes the block amax in float32


def test_ct_static_fp8_divides_in_the_stored_scale_dtype() -> None:
    from compressed_tensors.quantization import preset_name_to_scheme
    from compressed_tensors.quantization.lifecycle.forward import fake_quantize

    x = _acts()
    scale = torch.tensor([0.0123], dtype=torch.bfloat16)
    args = preset_name_to_scheme("FP8", ["Linear"]).input_activations
    expect = fake_quantize(x, scale, torch.zeros(1, dtype=torch.bfloat16), args)
    act = _ct_act("FP8", {"input_scale": scale})
    assert act.static_dtype == "bfloat16"
    assert torch.equal(act.fake(x), expect.float())


def test_ct_int8_codes_are_its_fake_quantization() -> None:
    """``quantize`` (torch._int_mm's codes) and ``fake`` agree: codes · scale, rounded to bf16, is the fake."""
    x = _acts()
    act = _ct_act("W8A8")
    codes, scale = act.quantize(x)
    assert codes.abs().max() <= 128 and torch.equal(codes, codes.round())
    assert torch.equal((codes.to(torch.bfloat16) * scale.to(torch.bfloat16)).float(), act.fake(x))
    assert float(scale.max()) == float((x.abs().amax(-1).max() / 127.5).to(torch.bfloat16))  # range / 2 = 127.5


# --------------------------------------------------------------------------- ModelOpt

def _modelopt_quantizer(num_bits: object, **extra: object):
    from modelopt.torch.quantization.config import QuantizerAttributeConfig
    from modelopt.torch.quantization.nn import TensorQuantizer

    return TensorQuantizer(QuantizerAttributeConfig(num_bits=num_bits, axis=None, **extra))


@pytest.mark.parametrize(("kind", "num_bits", "qmax"), [("fp8", (4, 3), 448.0), ("int8", 8, 127.0)])
@pytest.mark.parametrize("amax", [5.3, 2.7, 0.9])
def test_modelopt_static_activations_bit_exact(kind: str, num_bits: object, qmax: float, amax: float) -> None:
    x = _acts()
    quantizer = _modelopt_quantizer(num_bits)
    quantizer.amax = torch.tensor(amax)
    expect = quantizer(x)
    act = ActQuant(kind=kind, granularity="tensor", static_scale=float(torch.tensor(amax) / qmax), arith="modelopt")
    assert torch.equal(act.fake(x), expect.float())
    codes, _ = act.quantize(x)
    assert float(codes.min()) == (-E4M3_MAX if kind == "fp8" else -128.0)  # the clamp ran (int8 is not narrow)


def test_modelopt_static_amax_is_read_back_from_the_exported_scale() -> None:
    """The checkpoint stores ``input_scale = amax / 448`` (float32). For the bf16 amax 3.875,
    ``input_scale · 448`` is one float32 step off it, and 568 of these activations then round to
    another E4M3 value than ModelOpt's quantizer puts them on; read back as a bf16 value it is exact."""
    from quantresolve.dispatch.activations.modelopt import modelopt_amax

    x = _acts()
    amax = torch.tensor(3.875)
    scale = amax / E4M3_MAX
    assert float(scale * E4M3_MAX) != 3.875
    assert float(modelopt_amax(scale, E4M3_MAX, torch.bfloat16)) == 3.875
    assert float(modelopt_amax(scale, E4M3_MAX, torch.float32)) == float(scale * E4M3_MAX)  # no bf16 to read
    quantizer = _modelopt_quantizer((4, 3))
    quantizer.amax = amax
    expect = quantizer(x)
    act = ActQuant(kind="fp8", granularity="tensor", static_scale=float(scale), arith="modelopt")
    assert torch.equal(act.fake(x), expect.float())
    mult = E4M3_MAX / (scale * E4M3_MAX)  # the amax taken as the scale times 448
    unread = ((x.float() * mult).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn).float() * (1 / mult))
    assert _differs(unread.to(torch.bfloat16), expect)


def test_modelopt_fp8_dequant_is_its_quantizers_multiplier() -> None:
    """The weights of ``modelopt-fp8-pc-pt`` (FP8 per channel): for a row whose bf16 amax is a multiple
    of 7, ``amax / 448`` is short and a code times it can be a bf16 tie; ModelOpt's quantizer multiplies
    by ``1 / (448 / amax)`` and breaks it the other way. The codec's dense weight is the quantizer's."""
    from quantresolve.dispatch.activations.modelopt import modelopt_fp8_dequant

    codes = torch.arange(-448, 449, dtype=torch.float32).to(torch.float8_e4m3fn).float().unique()
    amax = torch.tensor([[0.07177734375], [0.0703125], [0.98046875], [3.875]])  # bf16 values; 147 = 7 · 21
    weight = (codes * (amax / E4M3_MAX)).to(torch.bfloat16)  # the checkpoint's codes · weight_scale
    quantizer = _modelopt_quantizer((4, 3))
    quantizer.axis = 0
    quantizer.amax = amax
    expect = quantizer(weight)
    got = (codes * modelopt_fp8_dequant(amax / E4M3_MAX, torch.bfloat16)).to(torch.bfloat16)
    assert torch.equal(got, expect)
    assert _differs(weight, expect)  # the plain product is off on the ties


def test_modelopt_per_token_fp8_bit_exact() -> None:
    x = _acts()
    expect = _modelopt_quantizer((4, 3), type="dynamic", block_sizes={-1: None})(x)
    act = ActQuant(kind="fp8", granularity="token", arith="modelopt")
    assert torch.equal(act.fake(x), expect.float())
    codes, scale = act.quantize(x)  # scaled_mm's operands
    assert torch.equal((codes * scale).to(torch.bfloat16).float(), act.fake(x))


def test_modelopt_nvfp4_activations_bit_exact() -> None:
    from modelopt.torch.quantization.qtensor import NVFP4QTensor

    x = _acts()
    s2 = x.float().abs().amax() * 0.7 / (6 * 448)
    qt, scale, s2 = NVFP4QTensor.quantize(x.float(), 16, weights_scaling_factor_2=s2)
    expect = qt.dequantize(dtype=torch.float32, scale=scale, double_scale=s2, block_sizes={-1: 16}).to(x.dtype)
    act = ActQuant(kind="nvfp4", granularity="group", group=16, static_scale=float(s2), arith="modelopt")
    assert torch.equal(act.fake(x), expect.float())
    ct_rule = ActQuant(kind="nvfp4", granularity="group", group=16, static_scale=float(s2), arith="compressed-tensors",
                       global_scale=float(1 / s2))
    assert _differs(ct_rule.fake(x), expect)


def test_modelopt_mxfp4_activations_bit_exact() -> None:
    """``ceil(log2(amax / 6))`` and E2M1 ties rounded down — not compressed-tensors' power-of-two rule."""
    from modelopt.torch.quantization.qtensor import MXFP4QTensor

    x = _acts()
    qt, e8m0 = MXFP4QTensor.quantize(x.float(), 32)
    expect = qt.dequantize(dtype=torch.float32, scale=e8m0, block_sizes={-1: 32}).to(x.dtype)
    act = ActQuant(kind="mxfp4", granularity="group", group=32, arith="modelopt")
    assert torch.equal(act.fake(x), expect.float())
    assert _differs(ActQuant(kind="mxfp4", granularity="group", group=32, arith="compressed-tensors").fake(x), expect)


def test_modelopt_mxfp8_activations_bit_exact() -> None:
    """``ceil(log2(amax / 448))``: the same exponent as compressed-tensors' rule except for a block max
    of exactly 1.75 · 2^e, which compressed-tensors rounds up — ``_acts`` holds one."""
    from modelopt.torch.quantization.qtensor import MXFP8QTensor

    x = _acts()
    qt, e8m0 = MXFP8QTensor.quantize(x)
    expect = qt.dequantize(dtype=x.dtype, scale=e8m0)
    act = ActQuant(kind="mxfp8", granularity="group", group=32, arith="modelopt")
    assert torch.equal(act.fake(x), expect.float())
    assert _differs(ActQuant(kind="mxfp8", granularity="group", group=32, arith="compressed-tensors").fake(x), expect)


# --------------------------------------------------------------------------- wiring and refusals

@pytest.mark.parametrize(("producer", "label", "arith"), [
    ("modelopt", "FP8", "modelopt"), ("modelopt", "NVFP4", "modelopt"), ("modelopt", "W8A8_SQ_PER_CHANNEL", "modelopt"),
    ("compressed-tensors", "W8A8", "compressed-tensors"), ("compressed-tensors", "NVFP4", "compressed-tensors"),
    ("bitsandbytes", "BNB_INT8", "bitsandbytes"),
])
def test_schemes_round_with_their_producers_arithmetic(producer: str, label: str, arith: str) -> None:
    from quantresolve.dispatch.codecs import codec_for

    tensors = {"input_scale": torch.tensor(0.01), "input_global_scale": torch.tensor([100.0])}
    act = codec_for(scheme_from_label(label, producer)).act_quant(tensors)
    assert act is not None and act.arith == arith


def test_unimplemented_activation_rounding_is_refused() -> None:
    with pytest.raises(DispatchError, match="float32 activation arithmetic has no nvfp4"):
        ActQuant(kind="nvfp4", granularity="group", group=16)
    with pytest.raises(DispatchError, match="modelopt fp8 activations with group scales are not implemented"):
        ActQuant(kind="fp8", granularity="group", group=128, arith="modelopt")
    with pytest.raises(DispatchError, match="unknown activation arithmetic 'vllm'"):
        ActQuant(kind="fp8", granularity="token", arith="vllm")
    asym = scheme_from_label("W8A8", "compressed-tensors")
    asym = asym.model_copy(update={"input_activations": asym.input_activations.model_copy(update={"symmetric": False})})
    with pytest.raises(DispatchError, match="asymmetric activation quantization is not implemented"):
        act_from_scheme(asym, None)
