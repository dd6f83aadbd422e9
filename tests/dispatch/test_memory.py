"""A finalized layer holds its weight once, and large weights dequantize in row chunks — bit for bit.

- Backends whose prepared state rebuilds ``dequantize()`` exactly (the dense weight itself, the int4
  kernel's packed codes, the int8 kernels' codes) release the checkpoint tensors; ``dequantize()``
  still equals the same layer on ``per_call_dequant`` (which keeps them) bit for bit.
- Backends that keep a checkpoint matrix as it is (LLM.int8's rows, FP8 for ``_scaled_mm``) hold
  it once: the shard's tensor becomes a view of the kernel's operand.
- ``ShardGroup.dense`` cuts a large weight on the tensor-parallel column boundaries and dequantizes
  chunk by chunk into the result: equal to the whole-weight dequantization for every format.
"""

from __future__ import annotations

import pytest
import torch

from quantresolve.dispatch import BACKENDS, Shapes, backend_verdicts, make_linear
from quantresolve.dispatch.chunked import chunk_count, dequantize_into
from quantresolve.dispatch.kernels.int4pack import layout_known, unpack_int4pack
from quantresolve.dispatch.presets import scheme_from_label

from .machine import AVX512_GEMV, FLOAT_GEMV, native_dense
from .test_backends import LABELS, _random_tensors
from .test_strided_inputs import _bnb_4bit_layer

pytestmark = pytest.mark.filterwarnings("ignore")

#: Backends whose state rebuilds the dense weight (when the codec's dequantization is its int view).
REBUILDS = {"dense_dequant", "int4pack_cpu", "int8split_cpu", "int8pack_cpu", "int_mm_cpu"} | (
    {"avx512_gemv_cpu"} if AVX512_GEMV else set()) | ({"float_gemv_cpu"} if FLOAT_GEMV else set())


def _layer(producer: str, label: str, n: int, k: int, backend: str, fused: bool = False):
    scheme = scheme_from_label(label, producer)
    sizes = [n // 2, n // 2] if fused else n
    layer = make_linear(scheme, k, sizes, shard_names=["a", "b"] if fused else None, backend=backend)
    _random_tensors(layer)
    layer.finalize()
    return layer


@pytest.mark.parametrize("fused", [False, True])
def test_released_tensors_rebuild_dequantize_bit_for_bit(fused: bool) -> None:
    released = set()
    for producer, label in LABELS:
        scheme = scheme_from_label(label, producer)
        for n, k in ((64, 256), (208, 256), (96, 512)):  # 208 = 3 blocks of 64 + a tail of 16 (int4pack)
            shapes = Shapes(n, k, shard_sizes=(n // 2, n // 2) if fused else ())
            for name, verdict in backend_verdicts(scheme, shapes):
                if not verdict.ok or name == "per_call_dequant":
                    continue
                layer = _layer(producer, label, n, k, name, fused)
                keeper = _layer(producer, label, n, k, "per_call_dequant", fused)
                assert torch.equal(layer.dequantize(), keeper.dequantize()), (name, label, n)
                x = torch.randn(3, k, generator=torch.Generator().manual_seed(2)).to(torch.bfloat16)
                assert torch.equal(layer.reference(x), keeper.reference(x)), (name, label, n)
                groups = [g for g, _ in layer._groups]
                if all(g.rebuild is not None for g in groups):
                    assert all(s.tensors == {} for g in groups for s in g.shards)
                    released.add(name)
                assert layer._loaded == {}
    assert released == REBUILDS


def test_int4pack_layout_is_known_and_inverted() -> None:
    assert layout_known()  # torch 2.13's packer; a new layout would keep the tensors, not break
    codes = torch.randint(0, 16, (4096 + 64 + 48, 96), generator=torch.Generator().manual_seed(5), dtype=torch.int32)
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 1)
    assert torch.equal(unpack_int4pack(packed, codes.shape[0]).to(torch.int32), codes)


def test_kept_checkpoint_matrices_are_the_kernels_operand() -> None:
    """LLM.int8 on bnb_cpu: the shards' int8 rows are views of the kernel's stacked matrix."""
    layer = _layer("bitsandbytes", "BNB_INT8", 64, 256, "bnb_cpu", fused=True)
    group, (_, (cb, _, _)) = layer._groups[0]
    for shard in group.shards:
        assert shard.tensors["weight"].untyped_storage().data_ptr() == cb.untyped_storage().data_ptr()
    keeper = _layer("bitsandbytes", "BNB_INT8", 64, 256, "per_call_dequant", fused=True)
    assert torch.equal(layer.dequantize(), keeper.dequantize())


def test_bitsandbytes_4bit_keeps_its_tensors(monkeypatch: pytest.MonkeyPatch) -> None:
    """bitsandbytes repacks its own copy on the first CPU forward: the layer keeps the checkpoint's."""
    native_dense(monkeypatch)  # bnb_cpu's 4-bit path is offered where bitsandbytes' CPU GEMV is fused; run it anyway
    layer = _bnb_4bit_layer("bnb_cpu")
    before = layer.dequantize()
    with torch.no_grad():
        layer(torch.randn(1, 256, dtype=torch.bfloat16))
    assert layer._groups[0][0].rebuild is None and torch.equal(layer.dequantize(), before)


@pytest.mark.parametrize(("producer", "label"), [*LABELS, ("bitsandbytes", "BNB_NF4")])
def test_chunked_dequantization_is_bit_exact(producer: str, label: str) -> None:
    n, k = 512, 512  # 4 chunks even for 128x128 FP8 scale blocks
    if label == "BNB_NF4":
        layer = _bnb_4bit_layer("per_call_dequant")
        n, k = layer.out_features, layer.in_features
    else:
        layer = _layer(producer, label, n, k, "per_call_dequant")
    group = layer._groups[0][0]
    shard = group.shards[0]
    whole = group.codec.dequantize(shard.tensors, n, k)
    budget = n * k // 4
    chunks = chunk_count(group.codec, n, k, budget)
    assert chunks >= 4, chunks  # every format has a cut at this size
    out = torch.empty(n, k, dtype=whole.dtype)
    dequantize_into(group.codec, shard.tensors, n, k, out, budget)
    assert torch.equal(out, whole)


def test_no_even_cut_dequantizes_whole() -> None:
    from quantresolve.dispatch.codecs import codec_for

    awq = codec_for(scheme_from_label("W4A16_AWQ", "modelopt"))  # two output rows per byte
    assert chunk_count(awq, 131, 256, budget=256) == 1  # 131 rows: prime, and one row would split a byte
    assert chunk_count(awq, 128, 256, budget=256) == 64  # pairs of rows
    ct = codec_for(scheme_from_label("W4A16", "compressed-tensors"))  # packed along K only
    assert chunk_count(ct, 131, 256, budget=256) == 131


def test_every_cpu_backend_is_covered() -> None:
    cpu = {n for n in BACKENDS if not n.endswith("_cuda")}
    assert cpu >= REBUILDS


@pytest.mark.parametrize("fused", [False, True])
def test_chunked_loading_changes_nothing(monkeypatch: pytest.MonkeyPatch, fused: bool) -> None:
    """Every CPU backend with a budget of 2048 elements (many chunks at 128×512): the same outputs and
    dense weights as loaded whole."""
    import quantresolve.dispatch.chunked as chunked

    n, k = 128, 512
    x = torch.randn(3, k, generator=torch.Generator().manual_seed(4)).to(torch.bfloat16)
    ran, chunked_cases = set(), 0
    for producer, label in LABELS:
        scheme = scheme_from_label(label, producer)
        shapes = Shapes(n, k, shard_sizes=(n // 2, n // 2) if fused else ())
        for name, verdict in backend_verdicts(scheme, shapes):
            if not verdict.ok:
                continue
            monkeypatch.setattr(chunked, "CHUNK_ELEMENTS", 1 << 30)
            whole = _layer(producer, label, n, k, name, fused)
            monkeypatch.setattr(chunked, "CHUNK_ELEMENTS", 2048)
            cut = _layer(producer, label, n, k, name, fused)
            chunked_cases += chunk_count(cut._groups[0][0].codec, n // 2, k) > 1  # 128x128 FP8 blocks: none
            assert torch.equal(cut(x), whole(x)), (name, label)
            assert torch.equal(cut.dequantize(), whole.dequantize()), (name, label)
            ran.add(name)
    assert {"int4pack_cpu", "int8split_cpu", "int8pack_cpu", "int_mm_cpu", "dense_dequant"} <= ran
    assert chunked_cases >= 40
