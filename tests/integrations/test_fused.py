"""A fused profile (``llama``: q/k/v → ``qkv_proj``, gate/up → ``gate_up_proj``) inside transformers' Llama.

The fused layer is resolved at the fused name, loaded from the three (two) shard tensors, runs one
GEMM per input, and the shard modules slice it: same logits as the unfused load, bit for bit.
"""

from __future__ import annotations

import pytest
import torch

from quantresolve.dispatch import QuantLinear
from quantresolve.errors import ConflictingShardsError
from quantresolve.integrations.transformers import load_quantized
from quantresolve.integrations.transformers.fused import ShardView

from ..conftest import checkpoint_dir, write_json
from .loaded import loaded, logits, reference

pytestmark = pytest.mark.filterwarnings("ignore")

ONE_PER_FORMAT = ("ct-w4a16", "modelopt-nvfp4", "modelopt-int4-awq", "bnb-nf4", "ct-fp8-block")


@pytest.mark.parametrize("name", ONE_PER_FORMAT)
def test_fused_load_equals_unfused(name: str) -> None:
    model = loaded(name, "llama")
    fused = model.get_submodule("model.layers.0.self_attn.qkv_proj")
    assert isinstance(fused, QuantLinear) and fused.shard_names == ["q_proj", "k_proj", "v_proj"]
    assert isinstance(model.get_submodule("model.layers.1.mlp.gate_up_proj"), QuantLinear)
    assert torch.equal(logits(name, "llama"), logits(name))


def test_shard_views_share_one_gemm_and_dequantize_their_rows() -> None:
    model = loaded("ct-w4a16", "llama")
    attn = model.model.layers[0].self_attn
    q, k, v = attn.q_proj, attn.k_proj, attn.v_proj
    assert all(isinstance(m, ShardView) for m in (q, k, v))
    shared = q.__dict__["_shared"]
    before = shared.calls
    with torch.no_grad():
        model(reference("ct-w4a16")["input_ids"])
    assert shared.calls == before + 1  # q, k and v served by one fused call
    unfused = loaded("ct-w4a16").model.layers[0].self_attn
    for view, plain in ((q, unfused.q_proj), (k, unfused.k_proj), (v, unfused.v_proj)):
        assert torch.equal(view.dequantize(), plain.dequantize())
        assert view.backend == attn.qkv_proj.backend
        # nn.Linear-style questions get the shard's own shape (its stand-in holds no data)
        assert (view.weight.shape, view.weight.dtype) == (plain.weight.shape, plain.weight.dtype)
        assert view.weight.shape == (view.out_features, view.in_features) and view.weight.stride() == (0, 0)


def test_a_view_asked_twice_recomputes() -> None:
    model = loaded("ct-w4a16", "llama")
    q = model.model.layers[0].self_attn.q_proj
    x = torch.randn(1, 3, 128, dtype=torch.bfloat16)
    first, again = q(x), q(x)
    assert torch.equal(first, again)
    assert torch.equal(first, loaded("ct-w4a16").model.layers[0].self_attn.q_proj(x))


def test_fused_shards_that_disagree_are_refused(tmp_path) -> None:
    """ModelOpt mixed config where q_proj is FP8 but k/v unlisted: the fused qkv_proj cannot be built."""
    import json
    import shutil

    src = checkpoint_dir("modelopt-mixed")
    dst = tmp_path / "ckpt"
    shutil.copytree(src, dst)
    hf = json.loads((dst / "hf_quant_config.json").read_text())
    layers = hf["quantization"]["quantized_layers"]
    del layers["model.layers.0.self_attn.k_proj"]
    write_json(dst / "hf_quant_config.json", hf)
    cfg = json.loads((dst / "config.json").read_text())
    cfg.pop("quantization_config")
    cfg["quantization_config"] = {"quant_method": "modelopt", **hf["quantization"], "producer": hf["producer"]}
    write_json(dst / "config.json", cfg)
    with pytest.raises(ConflictingShardsError, match="qkv_proj"):
        load_quantized(dst, profile="llama")
