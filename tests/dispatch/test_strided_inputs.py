"""Every backend takes a strided input — a column slice ``x[:, :K]``, a transposed view — and gives
exactly what it gives for the same values stored contiguously (``_weight_int4pack_mm_for_cpu``
refuses a non-contiguous ``A`` by itself)."""

from __future__ import annotations

import pytest
import torch

from quantresolve.dispatch import BACKENDS, Shapes, backend_verdicts, make_linear
from quantresolve.dispatch.presets import scheme_from_label
from quantresolve.formats.scheme import bnb_scheme

from .machine import AVX512_GEMV, native_dense
from .test_backends import LABELS, _random_tensors

pytestmark = pytest.mark.filterwarnings("ignore")

N, K = 64, 256


def _strided_inputs() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    wide = torch.randn(5, K + 40, generator=g).to(torch.bfloat16)[:, 8:8 + K]   # column slice
    transposed = torch.randn(K, 5, generator=g).to(torch.bfloat16).t()          # column-major
    for x in (wide, transposed):
        assert not x.is_contiguous()
    return [wide, transposed]


def _bnb_4bit_layer(backend: str):
    import bitsandbytes.functional as F

    w = (torch.randn(N, K, generator=torch.Generator().manual_seed(0)) * 0.05).to(torch.bfloat16)
    packed, qs = F.quantize_4bit(w, blocksize=64, quant_type="nf4")
    layer = make_linear(bnb_scheme("BNB_NF4"), K, N, backend=backend)
    layer.load("weight", packed)
    for key, t in qs.as_dict(packed=True).items():
        layer.load(f"weight.{key}", t)
    layer.finalize()
    return layer


def _layers():
    """(backend, label, finalized layer) for every CPU backend and every scheme it runs at N×K."""
    for producer, label in LABELS:
        scheme = scheme_from_label(label, producer)
        for name, verdict in backend_verdicts(scheme, Shapes(N, K)):
            if verdict.ok:
                layer = make_linear(scheme, K, N, backend=name)
                _random_tensors(layer)
                layer.finalize()
                yield name, label, layer
    for name in ("bnb_cpu", "dense_dequant"):
        yield name, "BNB_NF4", _bnb_4bit_layer(name)


def test_every_backend_accepts_strided_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    native_dense(monkeypatch)  # bnb_cpu's 4-bit path is offered where bitsandbytes' CPU GEMV is fused; run it anyway
    covered = set()
    for name, label, layer in _layers():
        for x in _strided_inputs():
            expect = layer(x.contiguous())
            assert torch.equal(layer(x), expect), (name, label)
            group, state = layer._groups[0]
            direct = BACKENDS[name].apply(state, x, group)  # the backend itself, not only the layer
            assert torch.equal(direct.to(expect.dtype)[:, : group.n], expect[:, : group.n]), (name, label)
        covered.add(name)
    cpu = {n for n in BACKENDS if not n.endswith("_cuda")} - (set() if AVX512_GEMV else {"avx512_gemv_cpu"})
    assert covered == cpu
