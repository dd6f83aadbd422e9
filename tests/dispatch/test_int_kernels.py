"""The int4pack-based CPU kernels and gemlite's operands reproduce the checkpoint's weight.

``int8split_cpu`` runs group-wise int8 (compressed-tensors W8A16) as two int4
halves; with bf16 scales every partial product is exact in the kernel's
float32 accumulator, so feeding the identity matrix returns the dequantized
weight bit for bit. The same holds for ``int4pack_cpu`` with symmetric codes,
also for channel-wise scales run as a kernel group.
"""

from __future__ import annotations

import pytest
import torch

from quantresolve.dispatch import make_linear
from quantresolve.dispatch.backends.gemlite import int_operands
from quantresolve.dispatch.presets import scheme_from_label
from quantresolve.formats.compressed_tensors import ct_scheme

from .test_bitexact import ct_compress

pytestmark = pytest.mark.filterwarnings("ignore")


def _ct_layer(ct, n: int, k: int, backend: str | None = None, seed: int = 0):
    w = (torch.randn(n, k, generator=torch.Generator().manual_seed(seed)) * 0.05).to(torch.bfloat16)
    tensors, ref, fmt = ct_compress(ct, w)
    layer = make_linear(ct_scheme(ct, fmt=fmt, version="0.20.0"), k, n, backend=backend)
    for suffix, t in tensors.items():
        if (None, suffix) in layer.expected_tensors():
            layer.load(suffix, t)
    layer.finalize()
    return layer, ref


def _identity_out(layer) -> torch.Tensor:
    return layer(torch.eye(layer.in_features, dtype=torch.bfloat16)).t()


def _preset(name: str):
    from compressed_tensors.quantization import preset_name_to_scheme

    return preset_name_to_scheme(name, ["Linear"])


def _channel(bits: int, symmetric: bool = True):
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme

    return QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(
        num_bits=bits, type="int", strategy="channel", symmetric=symmetric))


@pytest.mark.parametrize(("n", "k"), [(64, 256), (128, 512)])
def test_int8split_is_exact_for_ct_w8a16(n: int, k: int) -> None:
    layer, ref = _ct_layer(_preset("W8A16"), n, k, backend="int8split_cpu")
    assert layer.backend == "int8split_cpu"
    assert torch.equal(_identity_out(layer), ref.to(torch.bfloat16))
    x = torch.randn(3, k, generator=torch.Generator().manual_seed(5)).to(torch.bfloat16)
    y, expect = layer(x).float(), layer.reference(x)
    assert float((y - expect).norm() / expect.norm()) < 4e-3  # one bf16 rounding of the output


def test_int8split_asymmetric_channel_within_bf16() -> None:
    """Asymmetric zero points enter the kernel as bf16 ``(8 − zp)·s``: one bf16 rounding per weight."""
    layer, ref = _ct_layer(_channel(8, symmetric=False), 64, 256, backend="int8split_cpu")
    assert layer.backend == "int8split_cpu"
    out = _identity_out(layer).float()
    assert float((out - ref.float()).abs().max() / ref.float().abs().max()) < 1e-2


def test_int4pack_channel_scales_are_exact() -> None:
    layer, ref = _ct_layer(_channel(4), 64, 192, backend="int4pack_cpu")
    assert layer.backend == "int4pack_cpu"
    assert torch.equal(_identity_out(layer), ref.to(torch.bfloat16))


def test_int4pack_group_is_exact() -> None:
    layer, ref = _ct_layer(_preset("W4A16"), 64, 256, backend="int4pack_cpu")
    assert layer.backend == "int4pack_cpu"
    assert torch.equal(_identity_out(layer), ref.to(torch.bfloat16))


@pytest.mark.parametrize("preset", ["W4A16", "W4A16_ASYM", "W8A16"])
def test_gemlite_int_operands_reproduce_the_weight(preset: str) -> None:
    layer, _ = _ct_layer(_preset(preset), 64, 256, backend="per_call_dequant")  # keeps the checkpoint tensors
    group = layer._groups[0][0]
    shard = group.shards[0]
    view = group.codec.int_weights(shard.tensors, shard.n, group.k)
    w_q, scales, zeros = int_operands(view, torch.float32)
    assert w_q.dtype == torch.uint8 and int(w_q.max()) < (1 << view.bits)
    rebuilt = (w_q.float() - zeros.repeat_interleave(view.group, 1)) * scales.repeat_interleave(view.group, 1)
    expect = (view.q.float() - (view.zero.repeat_interleave(view.group, 1) if view.zero is not None else 0.0)) \
        * view.scale.repeat_interleave(view.group, 1)
    assert torch.equal(rebuilt, expect)
    assert torch.allclose(rebuilt.to(torch.bfloat16).float(), layer.dequantize().float(), rtol=1e-2, atol=1e-4)


@pytest.mark.cuda
@pytest.mark.parametrize(("producer", "label"), [("compressed-tensors", "W4A16"), ("compressed-tensors", "W8A16"),
                                                 ("modelopt", "W4A16_AWQ")])
def test_gemlite_matches_reference_on_gpu(producer: str, label: str) -> None:
    """Runs only with a CUDA device and gemlite installed (``pip install 'quantresolve[cuda]'``)."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    pytest.importorskip("gemlite")
    from .test_backends import _random_tensors

    n, k = 256, 512
    layer = make_linear(scheme_from_label(label, producer), k, n, backend="gemlite_cuda", device="cuda")
    _random_tensors(layer)
    layer.finalize()
    x = torch.randn(4, k, device="cuda").to(torch.bfloat16)
    y, ref = layer(x).float(), layer.reference(x)
    assert float((y - ref).norm() / ref.norm()) < 2e-2


@pytest.mark.parametrize("preset", ["W4A16", "W8A16"])
def test_packing_in_row_chunks_equals_whole(preset: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The packer's layout is blocked by 64 rows: chunked packing (bounded memory) gives the same kernel."""
    from quantresolve.dispatch.kernels import int4pack

    x = torch.randn(2, 256, generator=torch.Generator().manual_seed(3)).to(torch.bfloat16)
    whole, _ = _ct_layer(_preset(preset), 208, 256)
    monkeypatch.setattr(int4pack, "CHUNK_ROWS", 64)
    chunked, _ = _ct_layer(_preset(preset), 208, 256)
    assert torch.equal(chunked._groups[0][1][0], whole._groups[0][1][0])
    assert torch.equal(chunked(x), whole(x))
