"""Tensor-parallel splits that a format cannot make are refused at construction, naming the tensor and
the unit the cut would fall inside; loader and wrapper misuse are errors too; bias and activation
scales behave as documented."""

from __future__ import annotations

import json

import pytest
import torch

from quantresolve.dispatch import make_linear
from quantresolve.dispatch.codecs.base import WeightCodec
from quantresolve.dispatch.presets import scheme_from_label
from quantresolve.dispatch.tp import (
    ColumnParallelLinear,
    RowParallelLinear,
    TPSpec,
    layout_for,
    shard_tensor,
)
from quantresolve.errors import DispatchError, LoadError
from quantresolve.formats.scheme import QuantArgs, QuantScheme, bnb_scheme, modelopt_scheme

pytestmark = pytest.mark.filterwarnings("ignore")


def _ct(weights: QuantArgs, acts: QuantArgs | None = None, fmt: str = "pack-quantized") -> QuantScheme:
    return QuantScheme(algo="custom", producer="compressed-tensors", format=fmt, weights=weights,
                       input_activations=acts)


_INT4_CHANNEL = _ct(QuantArgs(num_bits=4, type="int", strategy="channel"))
_FP8_CHANNEL_GROUP_ACTS = _ct(QuantArgs(num_bits=8, type="float", strategy="channel"),
                              QuantArgs(num_bits=8, type="float", strategy="group", group_size=128, dynamic=True),
                              fmt="float-quantized")

#: id → (scheme, in_features, out_features, mode, world, field, message pattern)
BOUNDARIES = {
    "ct-group": (lambda: scheme_from_label("W4A16", "compressed-tensors"), 256, 64, "row", 4,
                 "weight_scale", "cut at input column 64 falls inside a group of 128 input columns"),
    "ct-int32-word": (lambda: _INT4_CHANNEL, 72, 64, "row", 2,
                      "weight_packed", "cut at input column 36 falls inside an int32 word of 8 int4 values"),
    "ct-zero-point-word": (lambda: scheme_from_label("W4A16_ASYM", "compressed-tensors"), 128, 40, "column", 2,
                           "weight_zero_point", "output row 20 falls inside an int32 word of 8 zero points"),
    "awq-row-pair": (lambda: modelopt_scheme("W4A16_AWQ"), 128, 12, "column", 4,
                     "weight", "output row 3 falls inside a byte holding two output rows"),
    "fp8-block-rows": (lambda: modelopt_scheme("FP8_PB_WO"), 128, 256, "column", 4,
                       "weight_scale", "output row 64 falls inside a 128×128 scale block"),
    "fp8-block-cols": (lambda: scheme_from_label("FP8_BLOCK", "compressed-tensors"), 256, 128, "row", 4,
                       "weight_scale", "input column 64 falls inside a 128×128 scale block"),
    "nvfp4-group": (lambda: modelopt_scheme("NVFP4"), 64, 32, "row", 8,
                    "weight_scale", "input column 8 falls inside a group of 16 input columns"),
    "fp4-byte": (lambda: modelopt_scheme("W4A16_NVFP4"), 96, 32, "row", 32,
                 "weight", "input column 3 falls inside a byte of two FP4 values"),
    "mxfp4-group": (lambda: modelopt_scheme("MXFP4"), 128, 32, "row", 8,
                    "weight_scale", "input column 16 falls inside a group of 32 input columns"),
    "bnb-absmax-rows": (lambda: bnb_scheme("BNB_NF4"), 96, 32, "row", 2,
                        "weight.absmax", r"rows of 96 weights do not start on an absmax block \(64 weights\)"),
    "bnb-nested-column": (lambda: bnb_scheme("BNB_FP4", double_quant=True), 128, 64, "column", 2,
                          "weight.nested_absmax", "flat weight 4096.* nested absmax block"),
    "activation-group": (lambda: _FP8_CHANNEL_GROUP_ACTS, 128, 32, "row", 2,
                         "input_activations", "input column 64 falls inside a dynamic activation group of 128"),
}


@pytest.mark.parametrize("case", sorted(BOUNDARIES))
def test_a_cut_inside_a_unit_is_refused_naming_tensor_and_unit(case: str) -> None:
    scheme, k, n, mode, world, field, pattern = BOUNDARIES[case]
    with pytest.raises(DispatchError, match=pattern) as err:
        make_linear(scheme(), k, n, tp=TPSpec(mode, world - 1, world))
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: {mode}-parallel split of ")
    make_linear(scheme(), k, n, tp=TPSpec(mode, 0, 1))  # the same layer unsplit is fine


def test_fused_refusal_names_the_shard() -> None:
    with pytest.raises(DispatchError, match="byte holding two output rows") as err:
        make_linear(modelopt_scheme("W4A16_AWQ"), 128, [16, 12, 12], shard_names=["q_proj", "k_proj", "v_proj"],
                    tp=TPSpec("column", 0, 4))
    assert err.value.field == "k_proj.weight"


def test_world_must_divide_the_split_dimension() -> None:
    with pytest.raises(DispatchError, match=r"out_features of a shard 100 is not divisible by .* world size 3"):
        make_linear(None, 128, [96, 100], tp=TPSpec("column", 0, 3))
    with pytest.raises(DispatchError, match="in_features 128 is not divisible"):
        make_linear(None, 128, 96, tp=TPSpec("row", 0, 3))


def test_modes_and_ranks_are_checked() -> None:
    with pytest.raises(DispatchError, match="unknown tensor-parallel mode 'diagonal'; known: column, row"):
        TPSpec("diagonal", 0, 2)
    with pytest.raises(DispatchError, match="rank 2 is not in a world of 2"):
        TPSpec("row", 2, 2)


def test_a_codec_without_a_layout_is_an_error_naming_it() -> None:
    class Mystery(WeightCodec):
        pass

    with pytest.raises(DispatchError, match="no tensor-parallel layout for codec Mystery"):
        layout_for(Mystery(modelopt_scheme("FP8")))


def test_load_takes_the_full_tensor_and_checks_its_shape() -> None:
    layer = make_linear(modelopt_scheme("W8A16"), 64, 32, tp=TPSpec("row", 0, 2))
    assert layer.expected_tensors()[(None, "weight")] == ((32, 64), "int8")
    with pytest.raises(LoadError, match=r"weight: shape \[32, 32\] does not match expected \[32, 64\]"):
        layer.load("weight", torch.zeros(32, 32, dtype=torch.int8))  # already a rank's part: refused


def test_stored_shapes_must_match_the_layer() -> None:
    scheme = scheme_from_label("W4A16", "compressed-tensors")
    with pytest.raises(LoadError, match=r"weight_shape: holds \[64, 512\], but the layer is \[64, 256\]"):
        shard_tensor(scheme, "weight_shape", torch.tensor([64, 512]), n=64, k=256, tp=TPSpec("row", 0, 2))
    state = torch.tensor(list(json.dumps({"shape": [8, 8]}).encode()), dtype=torch.uint8)
    with pytest.raises(LoadError, match=r"quant state shape \[8, 8\] is not the layer's \[64, 128\]"):
        shard_tensor(bnb_scheme("BNB_NF4"), "weight.quant_state.bitsandbytes__nf4", state, n=64, k=128,
                     tp=TPSpec("column", 0, 2))
    with pytest.raises(LoadError, match="not a tensor of this layer"):
        shard_tensor(scheme, "weight", torch.zeros(64, 256), n=64, k=256, tp=TPSpec("row", 0, 2))


def test_bnb_quant_state_shape_is_rewritten_for_the_rank() -> None:
    state = {"quant_type": "nf4", "blocksize": 64, "shape": [64, 128], "nested_offset": 0.5}
    raw = torch.tensor(list(json.dumps(state).encode()), dtype=torch.uint8)
    part = shard_tensor(bnb_scheme("BNB_NF4"), "weight.quant_state.bitsandbytes__nf4", raw, n=64, k=128,
                        tp=TPSpec("row", 1, 2))
    assert json.loads(bytes(part.tolist())) == state | {"shape": [64, 64]}


def _dense_pair(mode: str) -> tuple[torch.nn.Module, list[torch.nn.Module], torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    w, b = torch.randn(8, 16, generator=g), torch.randn(8, generator=g)

    def build(tp: TPSpec | None):  # type: ignore[no-untyped-def]
        layer = make_linear(None, 16, 8, bias=True, dtype=torch.float32, tp=tp)
        layer.load("weight", w)
        layer.load("bias", b)
        layer.finalize()
        return layer

    return build(None), [build(TPSpec(mode, r, 2)) for r in range(2)], b


def test_row_parallel_bias_is_added_once_after_the_reduction() -> None:
    full, ranks, bias = _dense_pair("row")
    x = torch.randn(3, 16)
    partials = [r(x[:, 8 * i: 8 * (i + 1)]) for i, r in enumerate(ranks)]
    assert all(torch.equal(r.bias_after_reduce, bias) for r in ranks)
    torch.testing.assert_close(partials[0] + partials[1] + bias, full(x), rtol=1e-6, atol=1e-6)
    assert not torch.allclose(partials[0] + partials[1], full(x), atol=1e-3)  # the partials carry no bias


def test_column_parallel_bias_is_split_with_the_rows() -> None:
    full, ranks, _ = _dense_pair("column")
    x = torch.randn(3, 16)
    assert torch.equal(torch.cat([r(x) for r in ranks], dim=-1), full(x))


def test_local_activation_scales_are_reported_for_row_splits_of_dynamic_per_token_schemes() -> None:
    scheme = scheme_from_label("W8A8", "compressed-tensors")  # int8 weights, dynamic per-token int8 acts
    g = torch.Generator().manual_seed(0)
    tensors = {"weight": torch.randint(-127, 127, (32, 64), dtype=torch.int8, generator=g),
               "weight_scale": torch.rand(32, 1, generator=g)}
    flags = {}
    for mode in ("row", "column"):
        layer = make_linear(scheme, 64, 32, tp=TPSpec(mode, 0, 2))
        for suffix, t in tensors.items():
            layer.load(suffix, t)
        layer.finalize()
        flags[mode] = layer.tp_plan.local_activation_scales
    assert flags == {"row": True, "column": False}


def test_wrappers_check_the_layer_and_the_process_group() -> None:
    plain = make_linear(None, 16, 8)
    with pytest.raises(DispatchError, match=r"needs a layer built with tp=TPSpec.*built without tp"):
        ColumnParallelLinear(plain)
    column = make_linear(None, 16, 8, tp=TPSpec("column", 0, 2))
    with pytest.raises(DispatchError, match=r"row-parallel wrapper .* built for column-parallel"):
        RowParallelLinear(column)
    assert not torch.distributed.is_initialized()
    with pytest.raises(DispatchError, match=r"a world of 2 needs torch.distributed initialized"):
        ColumnParallelLinear(column)
