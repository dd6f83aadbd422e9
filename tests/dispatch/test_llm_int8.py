"""LLM.int8 (bitsandbytes ``load_in_8bit``): outlier decomposition as bitsandbytes runs it on CPU.

The reference is bitsandbytes' own ``Linear8bitLt`` in eval mode on tensors it
quantized itself. ``bnb_cpu`` (bitsandbytes' int8 ops) must equal it bit for
bit; the emulating backends (``x_fake @ W_dequantᵀ`` in bf16) agree within
5e-3 relative Frobenius error — the bf16 rounding of the dequantized weight
and of the emulated activations.
"""

from __future__ import annotations

import pytest
import torch

from quantresolve.dispatch import backend_verdicts, make_linear
from quantresolve.dispatch.activations.bitsandbytes import llm_int8_fake
from quantresolve.dispatch.specs import Shapes
from quantresolve.formats.scheme import bnb_scheme

from .machine import as_cpu

pytestmark = pytest.mark.filterwarnings("ignore")
EMULATED_TOL = 5e-3


def _bnb_layer(n: int, k: int, threshold: float, seed: int = 0):
    """bitsandbytes' own Linear8bitLt (eval) and its serialized tensors."""
    import bitsandbytes as bnb

    w = (torch.randn(n, k, generator=torch.Generator().manual_seed(seed)) * 0.05).half()
    lin = bnb.nn.Linear8bitLt(k, n, bias=False, has_fp16_weights=False, threshold=threshold)
    lin.weight = bnb.nn.Int8Params(w, requires_grad=False, has_fp16_weights=False)
    lin = lin.to("cpu").eval()
    return lin, lin.state_dict()


def _x(m: int, k: int, seed: int = 1) -> torch.Tensor:
    """Activations with two outlier columns (one in a single row only), as LLM activations have."""
    x = torch.randn(m, k, generator=torch.Generator().manual_seed(seed))
    x[:, 3] *= 25.0
    x[m // 2, 7] = -9.0
    return x.to(torch.bfloat16)


def _ours(n: int, k: int, threshold: float, state: dict[str, torch.Tensor], backend: str):
    layer = make_linear(bnb_scheme("BNB_INT8", threshold=threshold), k, n, backend=backend)
    layer.load("weight", state["weight"])
    layer.load("SCB", state["SCB"])
    layer.load("weight_format", state["weight_format"])
    layer.finalize()
    return layer


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


@pytest.mark.parametrize("threshold", [6.0, 0.0])
@pytest.mark.parametrize(("n", "k"), [(48, 200), (64, 256)])
@pytest.mark.parametrize("m", [1, 5])
def test_bnb_cpu_equals_linear8bitlt(threshold: float, n: int, k: int, m: int) -> None:
    lin, state = _bnb_layer(n, k, threshold)
    x = _x(m, k)
    with torch.no_grad():
        expect = lin(x)
    layer = _ours(n, k, threshold, state, "bnb_cpu")
    assert torch.equal(layer(x), expect)


@pytest.mark.parametrize("threshold", [6.0, 0.0])
@pytest.mark.parametrize(("n", "k"), [(48, 208), (64, 256)])
def test_emulating_backends_follow_bitsandbytes(threshold: float, n: int, k: int) -> None:
    lin, state = _bnb_layer(n, k, threshold, seed=2)
    x = _x(5, k, seed=3)
    with torch.no_grad():
        expect = lin(x)
    for backend in ("int8pack_cpu", "dense_dequant", "per_call_dequant"):
        layer = _ours(n, k, threshold, state, backend)
        assert _rel(layer(x), expect) < EMULATED_TOL, backend
        assert _rel(layer.reference(x), expect) < EMULATED_TOL


def test_decomposition_matters() -> None:
    """Without the outlier columns in 16 bits the int8 rows lose the small values: far outside tolerance."""
    n, k = 64, 256
    lin_off, state = _bnb_layer(n, k, 0.0)
    x = _x(4, k)
    layer = _ours(n, k, 6.0, state, "dense_dequant")
    with torch.no_grad():
        no_decomposition = lin_off(x)
    assert _rel(layer(x), no_decomposition) > 4 * EMULATED_TOL
    weight_only = x.float() @ layer.dequantize().float().t()
    assert _rel(_ours(n, k, 0.0, state, "dense_dequant")(x), weight_only) > EMULATED_TOL


def test_fake_keeps_outlier_columns_and_zero_rows() -> None:
    x = torch.tensor([[0.5, -1.0, 20.0], [0.0, 0.0, 0.0], [0.25, 2.0, 1.0]])
    fake = llm_int8_fake(x, 6.0)
    assert torch.equal(fake[:, 2], x[:, 2])  # the whole column, also in rows without an outlier
    assert torch.equal(fake[1], torch.zeros(3))
    assert fake[2, 1].item() == 2.0 and abs(fake[2, 0].item() - 0.25) < 2.0 / 127


def test_threshold_from_scheme() -> None:
    assert bnb_scheme("BNB_INT8").options["threshold"] == 6.0
    assert bnb_scheme("BNB_INT8", threshold=4.5).options["threshold"] == 4.5
    layer = make_linear(bnb_scheme("BNB_INT8", threshold=4.5), 64, 32)
    assert layer.codec.act_quant({}).threshold == 4.5


@pytest.mark.parametrize("avx512", [False, True])
def test_selection_order(monkeypatch: pytest.MonkeyPatch, avx512: bool) -> None:
    """Our AVX-512 GEMV first where the CPU runs it (faster than int8pack at batch 1 and 2, measured), then
    int8pack (emulated, faster at small batch than the rest); bitsandbytes' exact ops where int8pack cannot run."""
    as_cpu(monkeypatch, avx512=avx512)
    def ok(shapes: Shapes) -> list[str]:
        return [name for name, v in backend_verdicts(bnb_scheme("BNB_INT8"), shapes) if v.ok]

    assert ok(Shapes(64, 256))[:2] == (["avx512_gemv_cpu", "int8pack_cpu"] if avx512 else ["int8pack_cpu", "int8split_cpu"])
    assert "bnb_cpu" in ok(Shapes(64, 256))
    assert ok(Shapes(64, 200))[0] == "bnb_cpu"  # K % 16 != 0
