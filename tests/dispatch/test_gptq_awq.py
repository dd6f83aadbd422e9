"""GPTQ and AWQ dequantization and execution through the dispatcher.

Bit-exact against each format's **documented formula**, written here from the documentation (GPTQ:
``W[n, k] = (q[k, n] − z[g_idx[k], n]) · s[g_idx[k], n]`` with v1 zero points stored minus one, codes
packed LSB-first along K, 3 bits as one 96-bit little-endian stream per three words; AWQ GEMM:
``W[n, k] = (q[k, n] − z[k // g, n]) · s[k // g, n]`` packed along N in nibble order 0,2,4,6,1,3,5,7),
with a packer written bit by bit here as well. GPTQModel does not install in the project's environment
(fixtures/README.md), so GPTQ has no producer reference here. AWQ is also checked against AutoAWQ's own
``dequantize_gemm`` and ``WQLinear_GEMM`` packing where ``autoawq`` is installed (``pip install --no-deps
autoawq==0.2.9``; not part of the ``dev`` extra, which must install from PyPI as it is) — skipped,
saying so, elsewhere.
"""

from __future__ import annotations

import importlib.util
import sys
import types

import pytest
import torch

from quantresolve.dispatch import make_linear
from quantresolve.dispatch.slicing import TPSpec
from quantresolve.errors import DispatchError, LoadError
from quantresolve.formats.normalize_awq import awq_scheme
from quantresolve.formats.normalize_gptq import gptq_scheme

K, N = 128, 64
ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


def to_int32(words: list[int]) -> torch.Tensor:
    return torch.tensor([w - (1 << 32) if w >= 1 << 31 else w for w in words], dtype=torch.int64).to(torch.int32)


def stream(values: list[int], bits: int) -> list[int]:
    """Values as one LSB-first bit stream in 32-bit words, bit by bit (the documented layout)."""
    words = [0] * (len(values) * bits // 32)
    for i, v in enumerate(values):
        for b in range(bits):
            pos = i * bits + b
            words[pos // 32] |= ((v >> b) & 1) << (pos % 32)
    return words


def gptq_tensors(q, z, s, g_idx, bits, v1):
    qweight = torch.stack([to_int32(stream(q[:, n].tolist(), bits)) for n in range(q.shape[1])], dim=1)
    stored = (z - (1 if v1 else 0)) % (1 << bits)
    qzeros = torch.stack([to_int32(stream(row.tolist(), bits)) for row in stored])
    return {"qweight": qweight, "qzeros": qzeros, "scales": s, "g_idx": g_idx}


def case(bits: int, group: int, sym: bool, act: bool, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    groups = 1 if group == -1 else -(-K // group)
    q = torch.randint(0, 1 << bits, (K, N), generator=gen)
    z = torch.full((groups, N), 1 << (bits - 1)) if sym else torch.randint(0, 1 << bits, (groups, N), generator=gen)
    s = (torch.rand(groups, N, generator=gen) * 0.02 + 0.001).half()
    width = K if group == -1 else group
    g_idx = torch.arange(K) // width
    if act and group != -1:
        g_idx = g_idx[torch.randperm(K, generator=gen)]
    return q, z, s, g_idx.to(torch.int32)


def formula(q, z, s, g_idx):
    g = g_idx.long()
    return ((q - z[g]).double() * s[g].double()).t()  # exact


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize(("group", "sym", "act", "fmt"), [
    (32, True, False, "gptq"), (32, False, True, "gptq_v2"), (-1, False, False, "gptq"), (64, True, True, "gptq")])
def test_gptq_dequantize_is_the_documented_formula(bits, group, sym, act, fmt) -> None:
    q, z, s, g_idx = case(bits, group, sym, act)
    layer = make_linear(gptq_scheme(bits, group, sym, act, fmt), K, N, dtype=torch.float32, backend="dense_dequant")
    for name, t in gptq_tensors(q, z, s, g_idx, bits, fmt == "gptq").items():
        layer.load(name, t)
    layer.finalize()
    assert torch.equal(layer.dequantize().double(), formula(q, z, s, g_idx))


@pytest.mark.parametrize(("bits", "group", "act", "backend"), [
    (4, 32, True, "int4pack_cpu"), (3, 32, True, "int4pack_cpu"), (8, 64, True, "int8split_cpu"),
    (8, -1, False, "int8pack_cpu"), (4, 64, False, "int4pack_cpu")])
def test_integer_kernels_on_act_order(bits, group, act, backend) -> None:
    """The kernels hold codes sorted by group and take x in that order: the same weight, the reference's output."""
    q, z, s, g_idx = case(bits, group, True, act, seed=1)
    layer = make_linear(gptq_scheme(bits, group, True, act, "gptq"), K, N, backend=backend)
    for name, t in gptq_tensors(q, z, s, g_idx, bits, True).items():
        layer.load(name, t)
    layer.finalize()
    assert layer.backend == backend
    assert torch.equal(layer.dequantize().double(), formula(q, z, s, g_idx).to(torch.bfloat16).double())
    x = torch.randn(2, K, dtype=torch.bfloat16)
    ref = layer.reference(x)
    assert float((layer(x).float() - ref).abs().max() / ref.abs().max()) < 0.02


def awq_tensors(q, z, s):
    pack = lambda rows: torch.stack([to_int32([sum(int(r[8 * c + ORDER[i]]) << (4 * i) for i in range(8))  # noqa: E731
                                               for c in range(rows.shape[1] // 8)]) for r in rows])
    return {"qweight": pack(q), "qzeros": pack(z), "scales": s}


def test_awq_dequantize_is_the_documented_formula() -> None:
    q, z, s, _ = case(4, 32, False, False, seed=2)
    layer = make_linear(awq_scheme(32), K, N, dtype=torch.float32, backend="dense_dequant")
    for name, t in awq_tensors(q, z, s).items():
        layer.load(name, t)
    layer.finalize()
    g = torch.arange(K) // 32
    assert torch.equal(layer.dequantize().double(), ((q - z[g]).double() * s[g].double()).t())


def _autoawq():
    """AutoAWQ's packing module without running ``awq/__init__`` (which imports ``datasets``)."""
    spec = importlib.util.find_spec("awq")
    if spec is None:
        pytest.skip("autoawq not installed (pip install --no-deps autoawq==0.2.9): checked against the formula only")
    if "awq" not in sys.modules:
        package = types.ModuleType("awq")
        package.__path__ = list(spec.submodule_search_locations)  # type: ignore[attr-defined]
        sys.modules["awq"] = package
    from awq.modules.linear.gemm import WQLinear_GEMM
    from awq.utils.packing_utils import dequantize_gemm
    return WQLinear_GEMM, dequantize_gemm


def test_awq_against_autoawq() -> None:
    """AutoAWQ packs an RTN quantization with its own WQLinear_GEMM; its dequantize_gemm and ours agree bit for bit."""
    wq_linear, dequantize_gemm = _autoawq()
    gen = torch.Generator().manual_seed(3)
    linear = torch.nn.Linear(K, N, bias=False).half()
    with torch.no_grad():
        linear.weight.copy_(torch.randn(N, K, generator=gen).half() * 0.05)
    w = linear.weight.float().reshape(N, -1, 32)
    low, high = w.amin(-1), w.amax(-1)
    scales = ((high - low).clamp(min=1e-5) / 15).half()
    zeros = torch.round(-low / scales.float()).clamp(0, 15)
    packed = wq_linear.from_linear(linear, 4, 32, scales=scales.t().contiguous(), zeros=zeros.t().contiguous())
    layer = make_linear(awq_scheme(32), K, N, dtype=torch.float16, backend="dense_dequant")
    for name in ("qweight", "qzeros", "scales"):
        layer.load(name, getattr(packed, name))
    layer.finalize()
    theirs = dequantize_gemm(packed.qweight, packed.qzeros, packed.scales, 4, 32).t()
    assert torch.equal(layer.dequantize(), theirs.to(torch.float16))


def _loaded(bits=4, group=32, act=True, **edits):
    q, z, s, g_idx = case(bits, group, True, act)
    tensors = gptq_tensors(q, z, s, g_idx, bits, True) | edits
    layer = make_linear(gptq_scheme(bits, group, True, act, "gptq"), K, N, backend="dense_dequant")
    for name, t in tensors.items():
        layer.load(name, t)
    return layer


def test_g_idx_that_is_not_a_permutation_of_groups() -> None:
    bad = (torch.arange(K) // 32).to(torch.int32)
    bad[0] = 1  # group 1 gets 33 channels, group 0 31
    with pytest.raises(LoadError) as info:
        _loaded(g_idx=bad).finalize()
    assert info.value.field == "g_idx" and "not a permutation" in str(info.value)
    out_of_range = (torch.arange(K) // 32).to(torch.int32)
    out_of_range[5] = 9
    with pytest.raises(LoadError, match=r"outside 0\.\.3"):
        _loaded(g_idx=out_of_range).finalize()


def test_shape_mismatches_name_the_tensor() -> None:
    with pytest.raises(LoadError) as info:
        _loaded(qzeros=torch.zeros(4, N // 4, dtype=torch.int32))  # 8-bit zero points for a 4-bit layer
    assert info.value.field == "qzeros"
    with pytest.raises(LoadError) as info:
        _loaded(qweight=torch.zeros(K // 4, N, dtype=torch.int32))
    assert info.value.field == "qweight"


def test_sym_checkpoint_with_other_zero_points_is_refused() -> None:
    q, _, s, g_idx = case(4, 32, True, False)
    z = torch.full((4, N), 3)
    layer = make_linear(gptq_scheme(4, 32, True, False, "gptq"), K, N, backend="dense_dequant")
    for name, t in gptq_tensors(q, z, s, g_idx, 4, True).items():
        layer.load(name, t)
    with pytest.raises(LoadError) as info:
        layer.finalize()
    assert info.value.field == "qzeros" and "sym is true" in str(info.value)


def test_in_features_that_do_not_fill_3_bit_words() -> None:
    with pytest.raises(DispatchError, match="multiple of 32"):
        make_linear(gptq_scheme(3, 16, True, False), 48, N)


def test_tensor_parallel_cuts() -> None:
    """A column split takes whole zero-point words and keeps g_idx; a row split rebases g_idx; act-order refuses K cuts."""
    q, z, s, g_idx = case(4, 32, False, False)
    tensors = gptq_tensors(q, z, s, g_idx, 4, False)
    whole = formula(q, z, s, g_idx)
    for spec, rows, cols in ((TPSpec("column", 1, 2), slice(N // 2, N), slice(None)),
                             (TPSpec("row", 1, 2), slice(None), slice(K // 2, K))):
        layer = make_linear(gptq_scheme(4, 32, False, False, "gptq_v2"), K, N, backend="dense_dequant",
                            dtype=torch.float32, tp=spec)
        for name, t in tensors.items():
            layer.load(name, t)
        layer.finalize()
        assert torch.equal(layer.dequantize().double(), whole[rows, cols])
    with pytest.raises(DispatchError, match="act-order"):
        make_linear(gptq_scheme(4, 32, True, True), K, N, tp=TPSpec("row", 0, 2))
