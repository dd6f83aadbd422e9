"""Real producer tensors (fixtures/checkpoints, layer 0) sharded for TP=2: the ranks' dequantized parts
reassemble the full layer's dequantized weight bit for bit — column-parallel gate/up and fused q/k/v,
row-parallel down_proj — and the splits a format cannot make are refused naming the tensor.
"""

from __future__ import annotations

import pytest
import torch

from quantresolve.dispatch.tp import TPSpec, merge_column_parts, shard_tensor
from quantresolve.errors import DispatchError

from .tp_fixture_layers import FIXTURES, available, build, scheme_of, tensors_of

pytestmark = pytest.mark.filterwarnings("ignore")

#: What a TP=2 split of layer 0 cannot do, by fixture and layer, and the tensor the refusal names:
#: bitsandbytes double quantization needs 16,384-weight runs (256 absmax blocks of 64); 128×128 FP8
#: blocks need 128 rows per rank, and q_proj has 128 rows in all.
REFUSED = {("bnb-nf4", "down_proj"): "weight.nested_absmax: .*nested absmax block .*16384 weights",
           ("bnb-nf4", "qkv"): "q_proj.weight.nested_absmax",
           ("ct-fp8-block", "qkv"): "q_proj.weight_scale: .* a cut at output row 64 falls inside a 128×128 scale block"}
LAYERS = {"gate_up": ("mlp", ["gate_proj", "up_proj"], "column"),
          "qkv": ("self_attn", ["q_proj", "k_proj", "v_proj"], "column"),
          "down_proj": ("mlp", ["down_proj"], "row")}


def _need(name: str) -> None:
    if not available(name):
        pytest.skip(f"fixture {name} not generated")


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_rank_parts_reassemble_the_full_weight(name: str, layer: str) -> None:
    _need(name)
    module, projections, mode = LAYERS[layer]
    if (name, layer) in REFUSED:
        with pytest.raises(DispatchError, match=REFUSED[(name, layer)]):
            build(name, module, projections, TPSpec(mode, 0, 2))
        return
    full = build(name, module, projections)
    ranks = [build(name, module, projections, TPSpec(mode, r, 2)) for r in range(2)]
    parts = [r.dequantize() for r in ranks]
    merged = merge_column_parts(parts, ranks[0].shard_sizes, dim=0) if mode == "column" else torch.cat(parts, 1)
    assert torch.equal(merged, full.dequantize())
    assert all(r.in_features * (2 if mode == "row" else 1) == full.in_features for r in ranks)
    assert all(r.out_features * (2 if mode == "column" else 1) == full.out_features for r in ranks)


def test_bnb_nf4_double_quant_column_split_on_whole_nested_blocks() -> None:
    """gate_proj [256, 128] → 128 rows × 128 = 16,384 weights per rank: exactly one nested block."""
    _need("bnb-nf4")
    prefix = "model.layers.0.mlp.gate_proj"
    tensors = tensors_of("bnb-nf4", prefix)
    scheme = scheme_of("bnb-nf4", prefix)
    parts = [shard_tensor(scheme, "weight.nested_absmax", tensors["weight.nested_absmax"], n=256, k=128,
                          tp=TPSpec("column", r, 2)) for r in range(2)]
    assert [p.tolist() for p in parts] == [[v] for v in tensors["weight.nested_absmax"].tolist()]


def test_awq_pre_quant_scale_follows_k_only() -> None:
    """``pre_quant_scale [K]``: split by a row-parallel layer, whole on a column-parallel one."""
    _need("modelopt-int4-awq")
    prefix = "model.layers.0.mlp.down_proj"
    pqs = tensors_of("modelopt-int4-awq", prefix)["pre_quant_scale"]
    scheme = scheme_of("modelopt-int4-awq", prefix)
    rows = [shard_tensor(scheme, "pre_quant_scale", pqs, n=128, k=256, tp=TPSpec("row", r, 2)) for r in range(2)]
    assert torch.equal(torch.cat(rows), pqs) and rows[0].shape == (128,)
    assert torch.equal(shard_tensor(scheme, "pre_quant_scale", pqs, n=128, k=256, tp=TPSpec("column", 1, 2)), pqs)


@pytest.mark.parametrize(("name", "suffix"), [("modelopt-nvfp4", "weight_scale_2"), ("modelopt-nvfp4", "input_scale"),
                                              ("ct-nvfp4", "weight_global_scale"), ("ct-nvfp4", "input_global_scale"),
                                              ("modelopt-w4a8-awq", "input_scale"), ("ct-fp8", "input_scale")])
@pytest.mark.parametrize("mode", ["column", "row"])
def test_per_tensor_scalars_are_replicated(name: str, suffix: str, mode: str) -> None:
    _need(name)
    prefix = "model.layers.0.mlp.down_proj"
    t = tensors_of(name, prefix)[suffix]
    part = shard_tensor(scheme_of(name, prefix), suffix, t, n=128, k=256, tp=TPSpec(mode, 1, 2))
    assert torch.equal(part.reshape(-1), t.reshape(-1))


def test_asym_zero_points_split_along_packed_n() -> None:
    """ct-w4a16-asym: zero points [N/8, groups] int32 — a column split takes whole words of 8 rows."""
    _need("ct-w4a16-asym")
    prefix = "model.layers.0.mlp.down_proj"
    zp = tensors_of("ct-w4a16-asym", prefix)["weight_zero_point"]   # [16, 2]: N=128 packed, 2 groups
    scheme = scheme_of("ct-w4a16-asym", prefix)
    cols = [shard_tensor(scheme, "weight_zero_point", zp, n=128, k=256, tp=TPSpec("column", r, 2)) for r in range(2)]
    rows = [shard_tensor(scheme, "weight_zero_point", zp, n=128, k=256, tp=TPSpec("row", r, 2)) for r in range(2)]
    assert torch.equal(torch.cat(cols, 0), zp) and cols[0].shape == (8, 2)
    assert torch.equal(torch.cat(rows, 1), zp) and rows[0].shape == (16, 1)
