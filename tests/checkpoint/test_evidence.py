"""Evidence classification: each kind from producer-shaped tensors, real producer fixtures, names only."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantresolve.checkpoint import (
    RECOGNISERS,
    Evidence,
    Module,
    build_inventory,
    classify_inventory,
    classify_module,
    packed_logical_shape,
    read_checkpoint,
)
from quantresolve.checkpoint.catalog import TensorInfo

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "checkpoints"
N, K = 256, 512


def _module(
    spec: dict[str, tuple[str | None, tuple[int, ...] | None]], name: str = "m.proj"
) -> Module:
    return Module(
        name,
        {
            p: TensorInfo(f"{name}.{p}", d, s, "a.safetensors", None if s is None else 0)
            for p, (d, s) in spec.items()
        },
    )


CASES: dict[str, tuple[dict, dict]] = {
    "dense": ({"weight": ("BF16", (N, K)), "bias": ("BF16", (N,))}, {"logical_shape": (N, K)}),
    "fp8": (
        {"weight": ("F8_E4M3", (N, K)), "weight_scale": ("F32", ()), "input_scale": ("F32", ())},
        {"logical_shape": (N, K), "has_input_scale": True},
    ),
    "nvfp4": (
        {
            "weight": ("U8", (N, K // 2)),
            "weight_scale": ("F8_E4M3", (N, K // 16)),
            "weight_scale_2": ("F32", ()),
            "input_scale": ("F32", ()),
        },
        {
            "logical_shape": (N, K),
            "group_size": 16,
            "groups_along_k": K // 16,
            "has_input_scale": True,
        },
    ),
    "mxfp4": (
        {"weight_packed": ("U8", (N, K // 2)), "weight_scale": ("U8", (N, K // 32))},
        {"logical_shape": (N, K), "group_size": 32},
    ),
    "mxfp8": (
        {"weight": ("F8_E4M3", (N, K)), "weight_scale": ("F8_E8M0", (N, K // 32))},
        {"logical_shape": (N, K), "group_size": 32},
    ),
    "int4-packed": (
        {
            "weight_packed": ("I32", (N, K // 8)),
            "weight_scale": ("BF16", (N, K // 128)),
            "weight_shape": ("I64", (2,)),
        },
        {"logical_shape": None, "groups_along_k": K // 128, "group_size": None},
    ),
    "int8": (
        {"weight": ("I8", (N, K)), "weight_scale": ("BF16", (N, 1))},
        {"logical_shape": (N, K), "group_size": K},
    ),
    "int4-awq": (
        {
            "weight": ("U8", (N // 2, K)),
            "weight_scale": ("F16", (N, K // 128)),
            "pre_quant_scale": ("F16", (K,)),
        },
        {"logical_shape": (N, K), "group_size": 128},
    ),
    "bnb-4bit": (
        {
            "weight": ("U8", (N * K // 2, 1)),
            "weight.absmax": ("U8", (N * K // 64,)),
            "weight.quant_map": ("F32", (16,)),
            "weight.nested_absmax": ("F32", (8,)),
            "weight.nested_quant_map": ("F32", (256,)),
            "weight.quant_state.bitsandbytes__nf4": ("U8", (120,)),
        },
        {"logical_shape": None},
    ),
    "bnb-int8": (
        {"weight": ("I8", (N, K)), "SCB": ("F32", (N,)), "weight_format": ("U8", ())},
        {"logical_shape": (N, K)},
    ),
    "gptq-packed": (  # 3-bit, group 128, act-order: qweight [K·3/32, N], qzeros [G, N·3/32]
        {
            "qweight": ("I32", (K * 3 // 32, N)),
            "qzeros": ("I32", (K // 128, N * 3 // 32)),
            "scales": ("F16", (K // 128, N)),
            "g_idx": ("I32", (K,)),
        },
        {"logical_shape": (N, K), "bits": 3, "group_size": 128, "groups_along_k": K // 128},
    ),
    "awq-packed": (  # GEMM: qweight [K, N/8] packed along N
        {"qweight": ("I32", (K, N // 8)), "qzeros": ("I32", (K // 64, N // 8)), "scales": ("F16", (K // 64, N))},
        {"logical_shape": (N, K), "bits": 4, "group_size": 64},
    ),
}


def test_gptq_shapes_that_disagree_on_the_bit_width() -> None:
    """qzeros say 8 bits, g_idx says 4: no bit width, and a note naming both tensors."""
    spec = {"qweight": ("I32", (K // 8, N)), "qzeros": ("I32", (4, N // 4)), "scales": ("F16", (4, N)),
            "g_idx": ("I32", (K,))}
    evidence = classify_module(_module(spec))
    assert evidence.kind == "gptq-packed" and evidence.bits is None and evidence.logical_shape is None
    assert "qzeros" in evidence.notes[0] and "g_idx" in evidence.notes[0]


@pytest.mark.parametrize("kind", sorted(CASES))
def test_each_kind(kind: str) -> None:
    spec, expected = CASES[kind]
    evidence = classify_module(_module(spec))
    assert evidence.kind == kind
    assert evidence.confidence == "headers"
    for field, value in expected.items():
        assert getattr(evidence, field) == value, field


def test_every_recogniser_kind_has_a_case() -> None:
    assert {r.kind for r in RECOGNISERS} <= set(CASES)
    assert all(r.signature for r in RECOGNISERS)


def test_w4a8_awq_and_block_wise_int4() -> None:
    w4a8 = {
        "weight": ("U8", (N // 2, K)),
        "weight_scale": ("F16", (N, K // 128)),
        "pre_quant_scale": ("F16", (K,)),
        "weight_scale_2": ("F32", ()),
        "input_scale": ("F32", ()),
    }
    assert classify_module(_module(w4a8)).kind == "int4-awq"
    blockwise = {"weight": ("U8", (N // 2, K)), "weight_scale": ("F16", (N, K // 128))}
    assert classify_module(_module(blockwise)).kind == "int4-awq"


def test_nvfp4_compressed_tensors_layout() -> None:
    ct = {
        "weight_packed": ("U8", (N, K // 2)),
        "weight_scale": ("F8_E4M3", (N, K // 16)),
        "weight_global_scale": ("F32", (1,)),
        "input_global_scale": ("F32", (1,)),
    }
    e = classify_module(_module(ct))
    assert (e.kind, e.weight_dtype, e.group_size, e.has_input_scale) == ("nvfp4", "U8", 16, True)


def test_fp8_granularities() -> None:
    def notes(scale_shape: tuple[int, ...]) -> str:
        return classify_module(
            _module({"weight": ("F8_E4M3", (N, K)), "weight_scale": ("F32", scale_shape)})
        ).notes[0]

    assert notes(()).endswith("tensor")
    assert notes((N, 1)).endswith("channel")
    assert notes((N // 128, K // 128)).endswith("block-128x128")


def test_kv_scale_holder_and_unknown() -> None:
    kv = classify_module(_module({"k_scale": ("F32", ()), "v_scale": ("F32", ())}, "m.self_attn"))
    assert (kv.kind, kv.has_kv_scales) == ("no-weight", True)
    odd = classify_module(_module({"weight": ("I16", (N, K))}))
    assert odd.kind == "unknown" and "I16" in odd.notes[0]
    # An FP8 weight with a U8 (E8M0) scale is MXFP8, never plain FP8.
    assert (
        classify_module(
            _module({"weight": ("F8_E4M3", (N, K)), "weight_scale": ("U8", (N, K // 32))})
        ).kind
        == "mxfp8"
    )


def _experts(params: dict[str, tuple[str, tuple[int, ...]]]) -> Module:
    return Module("model.layers.0.mlp.experts", _module(params).params, layout="fused-experts")


def test_gpt_oss_fused_mxfp4_experts() -> None:
    """``*_blocks`` U8 [E, N, K/32, 16] + ``*_scales`` U8 [E, N, K/32]: MXFP4 in groups of 32, every expert."""
    e = classify_module(_experts({
        "gate_up_proj_blocks": ("U8", (32, 5760, 90, 16)), "gate_up_proj_scales": ("U8", (32, 5760, 90)),
        "gate_up_proj_bias": ("BF16", (32, 5760)), "down_proj_blocks": ("U8", (32, 2880, 90, 16)),
        "down_proj_scales": ("U8", (32, 2880, 90)), "down_proj_bias": ("BF16", (32, 2880))}))
    assert (e.kind, e.fused_experts, e.group_size, e.groups_along_k) == ("mxfp4", True, 32, 90)
    assert e.param_count == 32 * (5760 + 2880) * 2880
    assert set(e.scale_params) == {"gate_up_proj_scales", "down_proj_scales"}


def test_fused_experts_scale_of_wrong_shape_is_unknown_naming_it() -> None:
    e = classify_module(_experts({"down_proj_blocks": ("U8", (4, 64, 2, 16)), "down_proj_scales": ("U8", (4, 64, 3))}))
    assert e.kind == "unknown" and e.fused_experts
    assert e.notes == ("down_proj_scales U8 [4, 64, 3]: expected U8 (E8M0) [4, 64, 2], one scale per 32 values of "
                       "down_proj_blocks",)


def test_unquantized_fused_experts() -> None:
    e = classify_module(_experts({"gate_up_proj": ("BF16", (4, 64, 96)), "down_proj": ("BF16", (4, 48, 64)),
                                  "gate_up_proj_bias": ("BF16", (4, 96))}))
    assert (e.kind, e.fused_experts, e.param_count) == ("dense", True, 4 * 64 * 96 + 4 * 48 * 64)


def test_hf_fp8_block_scale_is_weight_scale_inv() -> None:
    e = classify_module(_module({"weight": ("F8_E4M3", (200, 256)), "weight_scale_inv": ("F32", (2, 2))}))
    assert (e.kind, e.scale_shape, e.scale_params) == ("fp8", (2, 2), ("weight_scale_inv",))
    assert e.notes == ("weight scale granularity: block-128x128",)


def test_packed_logical_shape() -> None:
    e = Evidence("int4-packed", weight_dtype="I32", weight_shape=(N, K // 8))
    assert packed_logical_shape(e, 4) == (N, K)
    assert packed_logical_shape(e, 8) == (N, K // 2)
    assert packed_logical_shape(Evidence("dense"), 4) is None


@pytest.mark.parametrize(
    ("names", "kind"),
    [
        (
            ["weight", "weight.absmax", "weight.quant_map", "weight.quant_state.bitsandbytes__nf4"],
            "bnb-4bit",
        ),
        (["weight", "SCB"], "bnb-int8"),
        (["weight_packed", "weight_scale", "weight_global_scale"], "nvfp4"),
        (["weight_packed", "weight_scale", "weight_shape"], "int4-packed"),
        (["weight", "weight_scale", "weight_scale_2", "input_scale"], "nvfp4"),
        (["weight", "weight_scale", "pre_quant_scale"], "int4-awq"),
        (["weight", "bias"], "dense"),
        (["weight", "weight_scale"], "unknown"),
        (["k_scale", "v_scale"], "no-weight"),
    ],
)
def test_names_only(names: list[str], kind: str) -> None:
    e = classify_module(_module({n: (None, None) for n in names}))
    assert (e.kind, e.confidence) == (kind, "names-only")


FIXTURE_KINDS = {
    "bnb-int8": "bnb-int8",
    "bnb-nf4": "bnb-4bit",
    "ct-fp8": "fp8",
    "ct-fp8-block": "fp8",
    "ct-fp8-dynamic": "fp8",
    "ct-from-modelopt-nvfp4": "nvfp4",
    "ct-mxfp4a16": "mxfp4",
    "ct-nvfp4": "nvfp4",
    "ct-nvfp4a16": "nvfp4",
    "ct-w4a16": "int4-packed",
    "ct-w4a16-asym": "int4-packed",
    "ct-w8a16": "int4-packed",
    "ct-w8a8": "int8",
    "modelopt-fp8": "fp8",
    "modelopt-fp8-pc-pt": "fp8",
    "modelopt-int4-awq": "int4-awq",
    "modelopt-int8-sq": "int8",
    "modelopt-mxfp4": "mxfp4",
    "modelopt-nvfp4": "nvfp4",
    "modelopt-w4a16-nvfp4": "nvfp4",
    "modelopt-w4a8-awq": "int4-awq",
}


@pytest.mark.parametrize("fixture", sorted(FIXTURE_KINDS))
def test_real_producer_checkpoints(fixture: str) -> None:
    root = FIXTURES / fixture
    if not (root / "model.safetensors").is_file():
        pytest.skip("fixture not generated")
    evidence = classify_inventory(build_inventory(read_checkpoint(root)))
    linears = {n: e for n, e in evidence.items() if n.rsplit(".", 1)[-1].endswith("_proj")}
    assert linears, "no *_proj modules found"
    assert {e.kind for e in linears.values()} == {FIXTURE_KINDS[fixture]}
    assert evidence["lm_head"].kind == "dense"
    assert evidence["model.layers.0.input_layernorm"].kind == "dense"
    down = linears["model.layers.0.mlp.down_proj"]
    if down.logical_shape is not None:
        assert down.logical_shape == (128, 256)


def test_classify_inventory_matches_per_module() -> None:
    root = FIXTURES / "modelopt-mixed"
    if not (root / "model.safetensors").is_file():
        pytest.skip("fixture not generated")
    inventory = build_inventory(read_checkpoint(root))
    shared = classify_inventory(inventory)
    assert shared == {n: classify_module(m) for n, m in inventory.modules.items()}
    assert {e.kind for e in shared.values()} >= {"nvfp4", "fp8", "dense"}
