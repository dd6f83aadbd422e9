"""FP8 KV cache (``modelopt-w4a16-nvfp4-fp8kv``): k_scale / v_scale are consumed and applied in attention.

The fixture is W4A16_NVFP4 + ModelOpt's ``FP8_KV_CFG``; its reference is ModelOpt's fake-quant model,
whose KV quantizers round the post-RoPE keys and the values. With the scales applied our logits are
within 0.0078 of it; with them ignored, 0.0244 — so the test below fails if the scales are dropped
or applied to the wrong tensors.
"""

from __future__ import annotations

import pytest
import torch
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from quantresolve.integrations.transformers import load_quantized
from quantresolve.integrations.transformers.install import KV_ATTR
from quantresolve.integrations.transformers.kv_attention import PREFIX, fp8_round_trip, register

from ..conftest import checkpoint_dir
from .loaded import loaded, reference

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
    err_applied = float((applied - ref["logits"]).abs().max())
    err_ignored = float((ignored - ref["logits"]).abs().max())
    assert err_applied <= 0.012
    assert err_ignored > 2 * err_applied


def test_round_trip_is_torch_float8() -> None:
    x = torch.randn(4, 64, dtype=torch.bfloat16) * 3
    scale = 0.01
    expected = ((x.float() / scale).clamp(-448, 448).to(torch.float8_e4m3fn).float() * scale).to(torch.bfloat16)
    assert torch.equal(fp8_round_trip(x, scale), expected)
    assert fp8_round_trip(torch.tensor([1e6]), scale).item() == pytest.approx(448 * scale)  # saturates


def test_wrapper_is_transparent_without_scales() -> None:
    model = loaded("ct-w4a16")  # no KV scheme: attention stays the base implementation
    assert not model.config._attn_implementation.startswith(PREFIX)
    wrapper = ALL_ATTENTION_FUNCTIONS[register("sdpa")]
    attn = model.model.layers[0].self_attn
    q, k, v = (torch.randn(1, h, 5, 32, dtype=torch.bfloat16) for h in (4, 2, 2))
    base, _ = ALL_ATTENTION_FUNCTIONS["sdpa"](attn, q, k, v, None, scaling=attn.scaling)
    wrapped, _ = wrapper(attn, q, k, v, None, scaling=attn.scaling)
    assert torch.equal(base, wrapped)
