"""FP8 KV cache (``modelopt-w4a16-nvfp4-fp8kv``): k_scale / v_scale are consumed and applied in attention.

The fixture is W4A16_NVFP4 + ModelOpt's ``FP8_KV_CFG``; its reference is ModelOpt's fake-quant model,
whose KV quantizers round the post-RoPE keys and the values. With the scales applied our logits equal
it (0.0, on the machine that computed the reference: strict mode, :mod:`tests.references`; 0.0039 on
another machine's arithmetic, within the fixture's cross-machine bound); with them ignored they are
0.0244 away, and with the plain ``e4m3(x / scale) · scale`` rounding instead of ModelOpt's multiplier
0.0044 — so the tests below fail if the scales are dropped, applied to the wrong tensors, or rounded
another way.
"""

from __future__ import annotations

import pytest
import torch
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from quantresolve.dispatch import KVCacheScales, make_kv_cache_scales
from quantresolve.errors import DispatchError
from quantresolve.formats.scheme import modelopt_kv_scheme
from quantresolve.integrations.transformers import load_quantized
from quantresolve.integrations.transformers.install import KV_ATTR
from quantresolve.integrations.transformers.kv_attention import PREFIX, register

from ..conftest import checkpoint_dir
from ..references import STRICT, check_logits, reference_mode
from .loaded import loaded, reference
from .test_fixture_logits import ATOL

pytestmark = pytest.mark.filterwarnings("ignore")
NAME = "modelopt-w4a16-nvfp4-fp8kv"


def test_scales_are_loaded_and_reported() -> None:
    model = loaded(NAME)
    report = model.quantresolve_report
    assert [k.prefix for k in report.kv_cache] == ["model.layers.0.self_attn", "model.layers.1.self_attn"]
    assert all(k.applied and k.algo == "FP8" and 0 < k.k_scale < 1 and 0 < k.v_scale < 1 for k in report.kv_cache)
    assert model.config._attn_implementation == f"{PREFIX}sdpa"
    scales = model.model.layers[1].self_attn.__dict__[KV_ATTR]
    assert (scales.k_scale, scales.v_scale) == (report.kv_cache[1].k_scale, report.kv_cache[1].v_scale)


def test_applying_the_scales_is_what_matches_the_producer() -> None:
    ref = reference(NAME)
    model = load_quantized(checkpoint_dir(NAME))
    with torch.no_grad():
        applied = model(ref["input_ids"]).logits.float()
        for layer in model.model.layers:
            del layer.self_attn.__dict__[KV_ATTR]
        ignored = model(ref["input_ids"]).logits.float()
    mode = reference_mode(checkpoint_dir(NAME))
    bound = ATOL[NAME].for_mode(mode)
    if mode == STRICT:
        assert torch.equal(applied, ref["logits"])
    else:
        check_logits(applied, ref["logits"], bound, label=f"{NAME} ({mode})")
    assert float((ignored - ref["logits"]).abs().max()) > max(0.01, 2 * bound)  # 0.0244


def _scales(scale: torch.Tensor, producer: str = "modelopt") -> KVCacheScales:
    scheme = modelopt_kv_scheme("FP8")
    kv = make_kv_cache_scales(scheme if producer == "modelopt" else scheme.model_copy(update={"producer": producer}))
    kv.load("k_scale", scale)
    kv.load("v_scale", scale)
    kv.finalize()
    return kv


def _plain(x: torch.Tensor, scale: float) -> torch.Tensor:
    return ((x.float() / scale).clamp(-448, 448).to(torch.float8_e4m3fn).float() * scale).to(x.dtype)


# 0.9375 is the fixture's calibrated v amax of layer 1 (v_scale = amax / 448): the plain rounding differs
# from ModelOpt's on this data. For 3.875 (a bf16 value too), amax / 448 · 448 is one float32 step off the
# amax, and 68 of these values round elsewhere unless round_trip reads the amax back (activations.modelopt.modelopt_amax).
@pytest.mark.parametrize("amax", [0.9375, 3.875])
def test_modelopt_round_trip_is_its_kv_quantizer(amax: float) -> None:
    """Bit for bit ModelOpt's ``k_bmm_quantizer`` / ``v_bmm_quantizer`` (FP8, per tensor, calibrated
    amax) on bf16 states, given only the exported ``amax / 448``."""
    from modelopt.torch.quantization.config import QuantizerAttributeConfig
    from modelopt.torch.quantization.nn import TensorQuantizer

    g = torch.Generator().manual_seed(0)
    states = (torch.randn(2, 2, 64, 32, generator=g) * amax / 3).clamp(-amax, amax).to(torch.bfloat16)
    quantizer = TensorQuantizer(QuantizerAttributeConfig(num_bits=(4, 3), axis=None))
    quantizer.amax = torch.tensor(amax)
    expect = quantizer(states)
    scale = torch.tensor(amax) / 448
    kv = _scales(scale)
    key, value = kv.round_trip(states, states.float())
    assert torch.equal(key, expect)
    assert value.dtype == torch.float32 and torch.equal(value, kv.round_trip(states.float(), states)[0])
    if amax == 0.9375:
        assert not torch.equal(_plain(states, float(scale)), expect)
    else:
        assert float(scale * 448) != amax


def test_other_producers_round_trip_in_float32() -> None:
    """Without a producer rule (compressed-tensors' KV rounding is not pinned by a fixture yet): the
    plain float32 ``e4m3(x / scale) · scale``, saturating at ±448 · scale."""
    x = torch.randn(4, 64, dtype=torch.bfloat16) * 3
    kv = _scales(torch.tensor(0.01), producer="compressed-tensors")
    assert kv.arith == "float32"
    key, _ = kv.round_trip(x, x)
    assert torch.equal(key, _plain(x, 0.01))
    assert kv.round_trip(torch.tensor([1e6]), x)[0].item() == pytest.approx(448 * 0.01)


def test_round_trip_needs_finalize() -> None:
    kv = make_kv_cache_scales(modelopt_kv_scheme("FP8"))
    with pytest.raises(DispatchError, match="before finalize"):
        kv.round_trip(torch.zeros(1), torch.zeros(1))


def test_wrapper_is_transparent_without_scales() -> None:
    model = loaded("ct-w4a16")  # no KV scheme: attention stays the base implementation
    assert not model.config._attn_implementation.startswith(PREFIX)
    wrapper = ALL_ATTENTION_FUNCTIONS[register("sdpa")]
    attn = model.model.layers[0].self_attn
    q, k, v = (torch.randn(1, h, 5, 32, dtype=torch.bfloat16) for h in (4, 2, 2))
    base, _ = ALL_ATTENTION_FUNCTIONS["sdpa"](attn, q, k, v, None, scaling=attn.scaling)
    wrapped, _ = wrapper(attn, q, k, v, None, scaling=attn.scaling)
    assert torch.equal(base, wrapped)
