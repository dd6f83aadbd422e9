"""Every codec's tensors shard so that the ranks' dequantized parts reassemble the full weight bit for bit.

Tensors are random but valid in each format (random packed codes and words,
positive scales, E8M0 exponents in range, bitsandbytes' JSON state with the
layer's shape), built from the codec's own ``expected()`` specs — so a codec
that gains a tensor is covered without editing this file. Real producer
tensors are covered by ``test_tensor_parallel_slicing``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import torch

from quantresolve.dispatch import make_linear
from quantresolve.dispatch.codecs import CODECS, codec_for
from quantresolve.dispatch.presets import scheme_from_label
from quantresolve.dispatch.specs import ANY_DTYPE, ANY_FLOAT, TensorSpec
from quantresolve.dispatch.tp import LAYOUTS, TPSpec, merge_column_parts
from quantresolve.errors import DispatchError
from quantresolve.formats.normalize_awq import awq_scheme
from quantresolve.formats.normalize_gptq import gptq_scheme
from quantresolve.formats.scheme import QuantArgs, QuantScheme, bnb_scheme, modelopt_scheme

pytestmark = pytest.mark.filterwarnings("ignore")


def _ct_int(bits: int, version: str, *, symmetric: bool = True) -> QuantScheme:
    w = QuantArgs(num_bits=bits, type="int", strategy="group", group_size=64, symmetric=symmetric)
    return QuantScheme(algo=f"W{bits}A16", producer="compressed-tensors", format="pack-quantized", weights=w,
                       options={"version": version})


def _schemes() -> dict[str, QuantScheme]:
    ct = {f"ct-{p}": scheme_from_label(p, "compressed-tensors")
          for p in ["W4A16", "W4A16_ASYM", "W8A16", "W8A8", "W4A8", "FP8", "FP8_DYNAMIC", "FP8_BLOCK",
                    "NVFP4A16", "NVFP4", "MXFP4A16"]}
    ct |= {"ct-int3-dense": _ct_int(3, "0.20.0", symmetric=False), "ct-int3-legacy": _ct_int(3, "0.16.0"),
           "ct-int2-asym": _ct_int(2, "0.20.0", symmetric=False)}
    modelopt = {f"modelopt-{label}": modelopt_scheme(label)
                for label in ["FP8", "FP8_PER_CHANNEL_PER_TOKEN", "FP8_PB_WO", "NVFP4", "W4A16_NVFP4", "NVFP4_AWQ",
                              "W4A16_AWQ", "W4A8_AWQ", "W8A16", "W8A8_SQ_PER_CHANNEL", "MXFP4", "MXFP8"]}
    bnb = {"bnb-nf4": bnb_scheme("BNB_NF4"), "bnb-nf4-dq": bnb_scheme("BNB_NF4", double_quant=True),
           "bnb-fp4": bnb_scheme("BNB_FP4"), "bnb-int8": bnb_scheme("BNB_INT8")}
    gptq = {"gptq-w4-g32": gptq_scheme(4, 32, True, False, "gptq"), "gptq-w4-g32-act": gptq_scheme(4, 32, True, True, "gptq"),
            "gptq-w3-g32-asym-v2": gptq_scheme(3, 32, False, False, "gptq_v2"), "gptq-w8-channel": gptq_scheme(8, -1, True, False, "gptq")}
    hf = {f"fp8-{label}": scheme_from_label(label, "fp8") for label in ["FP8_BLOCK", "FP8", "FP8_DYNAMIC"]}
    hf |= {"mxfp4-MXFP4A16": scheme_from_label("MXFP4A16", "mxfp4")}
    return ct | modelopt | bnb | gptq | {"awq-w4-g32": awq_scheme(32)} | hf


SCHEMES = _schemes()
#: (scheme id, mode) that cannot split at these shapes, and the tensor the refusal names.
REFUSED = {("bnb-nf4-dq", "row"): "weight.nested_absmax",
           ("ct-int3-legacy", "row"): "weight_packed: .* int32 word of 10 int3 values",
           ("gptq-w4-g32-act", "row"): "g_idx: .*act-order"}


def _bnb_state(n: int, k: int, g: torch.Generator) -> torch.Tensor:
    state = {"quant_type": "nf4", "blocksize": 64, "shape": [n, k], "nested_blocksize": 256, "nested_offset": 0.0125}
    return torch.tensor(list(json.dumps(state).encode()), dtype=torch.uint8)


def _fp8(shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    return (torch.randn(shape, generator=g) * 64).clamp(-448, 448).to(torch.float8_e4m3fn)


#: spec dtype → random valid tensor of that shape.
RANDOM: dict[str, Callable[[tuple[int, ...], torch.Generator], torch.Tensor]] = {
    "uint8": lambda s, g: torch.randint(0, 256, s, dtype=torch.uint8, generator=g),
    "int8": lambda s, g: torch.randint(-128, 128, s, dtype=torch.int8, generator=g),
    "int32": lambda s, g: torch.randint(-2**31, 2**31, s, dtype=torch.int64, generator=g).to(torch.int32),
    "float8_e4m3fn": _fp8,
    "float32": lambda s, g: torch.rand(s, generator=g) + 0.01,
    ANY_FLOAT: lambda s, g: (torch.rand(s, generator=g) + 0.01).to(torch.bfloat16),
    ANY_DTYPE: lambda s, g: torch.randint(-8, 8, s, dtype=torch.int8, generator=g),
}
#: Values a random draw would get wrong: E8M0 exponents near 1.0, positive FP8 block scales.
_BY_SUFFIX: dict[str, Callable[[QuantScheme, tuple[int, ...], int, int, torch.Generator], torch.Tensor]] = {
    "weight_shape": lambda s, shape, n, k, g: torch.tensor([n, k]),
    "g_idx": lambda s, shape, n, k, g: _g_idx(s, k, g),
    "qzeros": lambda s, shape, n, k, g: _qzeros(s, shape, g),
}


def _qzeros(scheme: QuantScheme, shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    """GPTQ zero points: random when asymmetric; symmetric ones are all 2^(bits-1), stored minus one by v1."""
    if not scheme.weights.symmetric:
        return RANDOM["int32"](shape, g)
    bits = scheme.weights.num_bits
    stored = (1 << (bits - 1)) - (1 if scheme.format == "gptq" else 0)
    word = sum(stored << (i * bits) for i in range(32 // bits))
    return torch.full(shape, word - (1 << 32) if word >= 1 << 31 else word, dtype=torch.int32)


def _g_idx(scheme: QuantScheme, k: int, g: torch.Generator) -> torch.Tensor:
    """GPTQ's input-channel → group map: in order, or (act-order) a random permutation of the groups' channels."""
    group = scheme.weights.group_size if scheme.weights and scheme.weights.group_size else k
    g_idx = torch.arange(k) // group
    if scheme.options.get("desc_act"):
        g_idx = g_idx[torch.randperm(k, generator=g)]
    return g_idx.to(torch.int32)


def _tensor(scheme: QuantScheme, suffix: str, spec: TensorSpec, n: int, k: int, g: torch.Generator) -> torch.Tensor:
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix](scheme, spec.shape or (), n, k, g)
    if suffix.startswith("weight.quant_state."):
        return _bnb_state(n, k, g)
    shape = tuple(spec.shape or ())
    if suffix in ("weight_scale", "scales") and spec.dtype == "uint8":  # E8M0: 2^-17 .. 2^12
        return torch.randint(110, 140, shape, dtype=torch.uint8, generator=g)
    if suffix == "weight_scale" and spec.dtype == "float8_e4m3fn":
        return (torch.rand(shape, generator=g) * 8 + 0.05).to(torch.float8_e4m3fn)
    return RANDOM[spec.dtype](shape, g)


def _full_tensors(scheme: QuantScheme, sizes: list[int], k: int, seed: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    codec = codec_for(scheme)
    return [{suffix: _tensor(scheme, suffix, spec, n, k, g) for suffix, spec in codec.expected(n, k).items()
             if spec.shape is not None or suffix.startswith("weight.quant_state.")} for n in sizes]


def _build(scheme: QuantScheme, sizes: list[int], k: int, shards: list[dict[str, torch.Tensor]],
           tp: TPSpec | None) -> torch.Tensor:
    names = [f"s{i}" for i in range(len(sizes))]
    fused = len(sizes) > 1
    layer = make_linear(scheme, k, sizes if fused else sizes[0], shard_names=names if fused else None,
                        backend="per_call_dequant", tp=tp)
    for name, tensors in zip(names, shards, strict=True):
        for suffix, tensor in tensors.items():
            layer.load(suffix, tensor, shard=name if fused else None)
    layer.finalize()
    return layer.dequantize()


def _check(sid: str, mode: str, world: int, sizes: list[int], k: int, refused: str | None = None) -> None:
    """Ranks' parts reassemble the full dequantized weight exactly, or (``refused``) the split is refused."""
    scheme = SCHEMES[sid]
    shards = _full_tensors(scheme, sizes, k, seed=len(sid))
    full = _build(scheme, sizes, k, shards, None)
    if refused is not None:
        with pytest.raises(DispatchError, match=refused):
            _build(scheme, sizes, k, shards, TPSpec(mode, 0, world))
        return
    parts = [_build(scheme, sizes, k, shards, TPSpec(mode, r, world)) for r in range(world)]
    local = [n // world for n in sizes] if mode == "column" else sizes
    if mode == "column":
        merged = merge_column_parts(parts, local, dim=0)
    else:
        merged = torch.cat(parts, dim=1)
    assert torch.equal(merged, full)


@pytest.mark.parametrize("sid", sorted(SCHEMES))
@pytest.mark.parametrize("mode", ["column", "row"])
@pytest.mark.parametrize("world", [2, 4])
def test_parts_reassemble_the_full_weight(sid: str, mode: str, world: int) -> None:
    split = 128 * world  # the smallest that keeps every rank a whole 128×128 FP8 block
    n, k = (split, 128) if mode == "column" else (128, split)
    _check(sid, mode, world, [n], k, REFUSED.get((sid, mode)))


@pytest.mark.parametrize("sid", sorted(SCHEMES))
def test_fused_column_parts_reassemble_shard_by_shard(sid: str) -> None:
    _check(sid, "column", 2, [512, 256, 256], 128, REFUSED.get((sid, "column")))


def test_legacy_int3_row_split_on_a_word_and_group_boundary() -> None:
    """Legacy packing holds 10 int3 values per word: K/W must be a multiple of lcm(10, 64) = 320."""
    _check("ct-int3-legacy", "row", 2, [64], 640)


def test_every_codec_has_a_layout_and_a_case_here() -> None:
    """A codec added to the dispatcher must say how it shards (and be tested here)."""
    codecs = set(CODECS.values())
    assert codecs <= set(LAYOUTS), sorted(c.__name__ for c in codecs - set(LAYOUTS))
    covered = {type(codec_for(s)) for s in SCHEMES.values()}
    assert codecs <= covered, sorted(c.__name__ for c in codecs - covered)
