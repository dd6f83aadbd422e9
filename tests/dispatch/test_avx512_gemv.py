"""``avx512_gemv_cpu``: packing, the compiled kernel against the float32 reference, guards, build failures.

The kernel tests need AVX-512 BF16 and a C++ toolchain (they compile the extension once, ≈ 25 s, cached
in torch's extensions directory); elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import pytest
import torch

from quantresolve.dispatch import BACKENDS, DeviceInfo, Shapes, make_linear
from quantresolve.dispatch.backends.inputs import bf16_in, weight_only_input
from quantresolve.dispatch.kernels import avx512_gemv
from quantresolve.dispatch.presets import scheme_from_label
from quantresolve.errors import BackendUnavailableError
from quantresolve.formats.scheme import QuantArgs, QuantScheme, modelopt_scheme

from .machine import check_machine_guard

pytestmark = pytest.mark.filterwarnings("ignore")

_WHY_NOT = (("CPU lacks " + ", ".join(avx512_gemv.missing_cpu_flags())) if avx512_gemv.missing_cpu_flags()
            else avx512_gemv.toolchain_problem())
needs_kernel = pytest.mark.skipif(_WHY_NOT is not None, reason=f"avx512_gemv_cpu unavailable: {_WHY_NOT}")


def _ct_int(bits: int, strategy: str, group: int | None = None, symmetric: bool = True) -> QuantScheme:
    args = QuantArgs(num_bits=bits, type="int", strategy=strategy, group_size=group, symmetric=symmetric)
    return QuantScheme(algo=f"W{bits}A16", producer="compressed-tensors", format="pack-quantized", weights=args)


@pytest.mark.parametrize(("n", "k"), [(1, 32), (6, 96), (13, 128), (40, 320)])
def test_pack_roundtrips(n: int, k: int) -> None:
    g = torch.Generator().manual_seed(n)
    q4 = torch.randint(-8, 8, (n, k), generator=g, dtype=torch.int8)
    q8 = torch.randint(-128, 128, (n, k), generator=g, dtype=torch.int32).to(torch.int8)
    assert torch.equal(avx512_gemv.unpack_int4(avx512_gemv.pack_int4(q4), n, k), q4)
    assert torch.equal(avx512_gemv.unpack_int8(avx512_gemv.pack_int8(q8), n, k), q8)


def test_int4_layout_is_what_the_kernel_reads() -> None:
    """16-bit lane i of (block, row) = u[i] | u[32+i] << 4 | u[64+i] << 8 | u[96+i] << 12, little-endian,
    rows of a tile adjacent (the C++ source's contract)."""
    q = torch.arange(128, dtype=torch.int32).remainder(16).sub(8).to(torch.int8).repeat(2, 1)
    q[1] = q[1].flip(0)
    packed = avx512_gemv.pack_int4(q)
    assert packed.shape == (1, 1, 4, 64)
    u = q.to(torch.int32) + 8
    for row, i in ((0, 5), (1, 7), (1, 31)):
        lane = packed[0, 0, row, 2 * i].item() | packed[0, 0, row, 2 * i + 1].item() << 8
        assert lane == sum(u[row, 32 * j + i].item() << (4 * j) for j in range(4))
    assert packed[0, 0, 2:].eq(0).all()  # padded rows: byte 0 (their scale is 0, their output dropped)


def _fill(layer, scheme: QuantScheme, seed: int = 0) -> None:
    """Random checkpoint tensors; fused shards' scales differ by 10× per shard."""
    g = torch.Generator().manual_seed(seed)
    names = list(layer.shard_names or [None])
    for (shard, suffix), (shape, dtype) in layer.expected_tensors().items():
        index = names.index(shard)
        if dtype == "uint8":
            t = torch.randint(0, 256, shape, generator=g, dtype=torch.int32).to(torch.uint8)
        elif dtype == "int8":
            half = 1 << (scheme.weights.num_bits - 1)
            t = torch.randint(-half, half, shape, generator=g, dtype=torch.int32).to(torch.int8)
        elif dtype == "int32":
            t = torch.randint(-2**31, 2**31 - 1, shape, generator=g, dtype=torch.int64).to(torch.int32)
        elif dtype == "int64":
            t = torch.tensor([layer.shard_sizes[index], layer.in_features])
        elif suffix == "pre_quant_scale":
            t = torch.rand(shape, generator=g) + 0.5
        else:
            t = (torch.rand(shape if shape is not None else (1,), generator=g) * 0.02 + 0.005) * 10.0 ** index
        layer.load(suffix, t, shard=shard)


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm().clamp(min=1e-6))


# (scheme, N sizes of the fused shards, K, tolerance): the layer's bf16 output rounding (≈ 3e-3) dominates;
# the kernel's own float32 accuracy is checked in test_kernel_is_float32_exact.
CASES = [
    (modelopt_scheme("W4A16_AWQ", group_size=128), [64], 256, 1e-2),
    (modelopt_scheme("W4A16_AWQ", group_size=128), [37], 128, 1e-2),        # N % 4 ≠ 0, K = one group
    (modelopt_scheme("W4A16_AWQ", group_size=64), [24, 13], 192, 1e-2),    # fused shards, scales 10× apart
    (modelopt_scheme("W8A16"), [41], 320, 1e-2),                           # int8 channel, one group of K
    (scheme_from_label("W4A16", "compressed-tensors"), [48], 384, 1e-2),
    (scheme_from_label("W4A16_ASYM", "compressed-tensors"), [20, 12], 256, 1e-2),  # zero points
    (scheme_from_label("W8A16", "compressed-tensors"), [33], 256, 1e-2),   # int8 group-128
    (_ct_int(4, "group", 32), [9], 32, 1e-2),                              # g = 32, K = one group (padded block)
    (_ct_int(4, "group", 32, symmetric=False), [12], 96, 1e-2),            # g = 32, K % 64 = 32, zero points
    (_ct_int(4, "channel"), [8], 96, 1e-2),                                # channel as repeated groups of 32
    (_ct_int(8, "channel", symmetric=False), [16], 128, 1e-2),
    (scheme_from_label("W8A8", "compressed-tensors"), [16], 128, 2e-2),    # emulated int8 activations
]


@needs_kernel
@pytest.mark.parametrize(("scheme", "sizes", "k", "tol"), CASES, ids=[f"{c[0].algo}-{c[1]}x{c[2]}" for c in CASES])
@pytest.mark.parametrize("batch", [1, 3, 4, 6])
def test_kernel_matches_reference(scheme: QuantScheme, sizes: list[int], k: int, tol: float, batch: int) -> None:
    names = [f"s{i}" for i in range(len(sizes))] if len(sizes) > 1 else None
    layer = make_linear(scheme, k, sizes if names else sizes[0], shard_names=names, backend="avx512_gemv_cpu")
    _fill(layer, scheme)
    layer.finalize()
    x = torch.randn(batch, k, generator=torch.Generator().manual_seed(batch)).to(torch.bfloat16)
    y, ref = layer(x), layer.reference(x)
    assert y.shape == (batch, sum(sizes)) and torch.isfinite(y).all()
    assert _rel_err(y, ref) < tol, _rel_err(y, ref)
    for row in range(batch):  # each row on its own (M = 1 path) gives the same numbers as inside the batch
        assert _rel_err(layer(x[row:row + 1]), ref[row:row + 1]) < tol


@needs_kernel
@pytest.mark.parametrize(("bits", "n", "k", "group", "asym", "m"), [
    (4, 37, 32, 32, True, 1), (4, 13, 96, 32, False, 3), (4, 64, 256, 128, True, 2), (4, 9, 512, 512, True, 4),
    (4, 11, 192, 64, True, 1), (4, 6, 64, 64, False, 2), (4, 8, 384, 128, False, 1),
    (8, 37, 256, 128, True, 1), (8, 8, 192, 64, False, 4),
])
def test_kernel_is_float32_exact(bits: int, n: int, k: int, group: int, asym: bool, m: int) -> None:
    """The compiled kernel on packed operands against a float64 reference: products are exact and sums
    float32, so the relative error stays at float32 rounding (1e-5) — a wrong nibble, group or zero is O(1).
    int4 multiplies bf16(s·(q − z)) (float32 product, one rounding: the dequantized weight), int8 q·s."""
    g = torch.Generator().manual_seed(k + m)
    half = 1 << (bits - 1)
    q = torch.randint(-half, half, (n, k), generator=g, dtype=torch.int32).to(torch.int8)
    groups = k // group
    scale = torch.rand(n, groups, generator=g) * 0.01 + 0.001
    zero = torch.randint(-3, 4, (n, groups), generator=g).float() if asym else None
    x = torch.randn(m, k, generator=g).to(torch.bfloat16)
    zfull = zero.repeat_interleave(group, 1) if asym else 0
    if bits == 4:
        w = ((q.float() - zfull) * scale.repeat_interleave(group, 1)).to(torch.bfloat16).double()
    else:
        w = (q.double() - (zfull.double() if asym else 0)) * scale.double().repeat_interleave(group, 1)
    ref = x.double() @ w.t()
    zc = (zero if bits == 4 else scale * zero) if asym else None
    sc, zc = avx512_gemv.pack_scales(scale, zc, bits, k, group)
    kern = avx512_gemv.kernels()
    run = kern.gemv_int4 if bits == 4 else kern.gemv_int8
    codes = avx512_gemv.pack_int4(q) if bits == 4 else avx512_gemv.pack_int8(q)
    y = run(x, codes, sc, zc, n, k, group)
    assert y.dtype == torch.float32 and _rel_err(y, ref) < 1e-5, _rel_err(y, ref)


# int4 schemes whose kernel must compute a bf16 GEMV on layer.dequantize(): bf16 scales (CT checkpoints), float32
# scales (their float32 product then rounds once), zero points, fused shards, groups of 32 / 64 / 128 / channel.
EXACT_CASES = [
    (scheme_from_label("W4A16_ASYM", "compressed-tensors"), [20, 12], 512, torch.bfloat16),
    (scheme_from_label("W4A16", "compressed-tensors"), [48], 384, torch.bfloat16),
    (scheme_from_label("W4A16", "compressed-tensors"), [16], 256, torch.float32),
    (modelopt_scheme("W4A16_AWQ", group_size=128), [37], 256, torch.float32),
    (modelopt_scheme("W4A16_AWQ", group_size=64), [24, 13], 192, torch.bfloat16),
    (_ct_int(4, "group", 32, symmetric=False), [12], 96, torch.bfloat16),
    (_ct_int(4, "channel"), [8], 96, torch.float32),
]


@needs_kernel
@pytest.mark.parametrize(("scheme", "sizes", "k", "scale_dtype"), EXACT_CASES,
                         ids=[f"{c[0].algo}-{c[1]}x{c[2]}-{c[3]}" for c in EXACT_CASES])
@pytest.mark.parametrize("batch", [1, 2, 4])
def test_int4_is_a_bf16_gemv_on_the_dequantized_weight(scheme: QuantScheme, sizes: list[int], k: int,
                                                      scale_dtype: torch.dtype, batch: int) -> None:
    """Before the final rounding the kernel's float32 output is ``x @ dequantize()ᵀ`` up to float32 summation
    order (≤ 2e-6 of Σ|x·w| per output; one bf16 step on one weight of K is ≈ 4e-3 / K of it), and farther
    from the unrounded weight than that: the same weight the producers' dense bf16 GEMV uses."""
    names = [f"s{i}" for i in range(len(sizes))] if len(sizes) > 1 else None
    layer = make_linear(scheme, k, sizes if names else sizes[0], shard_names=names, backend="avx512_gemv_cpu")
    original, loaded = layer.load, {}

    def load(suffix: str, t: torch.Tensor, shard: str | None = None) -> None:
        t = t.to(scale_dtype) if t.is_floating_point() and suffix.endswith("scale") else t
        loaded.setdefault(shard, {})[suffix] = t
        original(suffix, t, shard)

    layer.load = load  # type: ignore[method-assign]
    _fill(layer, scheme)
    layer.finalize()
    x = torch.randn(batch, k, generator=torch.Generator().manual_seed(batch)).to(torch.bfloat16)
    w = layer.dequantize()
    assert w.dtype == torch.bfloat16
    y = torch.cat([layer._impl.apply(state, x, group) for group, state in layer._groups], dim=-1)
    assert y.dtype == torch.float32
    # per input group (AWQ's pre_quant_scale may differ per shard), x as the kernel takes it
    xs = [bf16_in(weight_only_input(x, group)).double() for group, _ in layer._groups]
    ws = w.double().split([group.n for group, _ in layer._groups])
    ref = torch.cat([xg @ wg.t() for xg, wg in zip(xs, ws, strict=True)], dim=-1)
    bound = torch.cat([xg.abs() @ wg.abs().t() for xg, wg in zip(xs, ws, strict=True)], dim=-1)
    err = ((y.double() - ref).abs() / bound).max().item()
    assert err < 2e-6, err
    codec = layer._groups[0][0].codec
    views = [codec.int_weights(loaded[shard], n, k) for shard, n in zip(names or [None], sizes, strict=True)]
    rep = lambda t: t.double().repeat_interleave(views[0].group, 1)[:, :k]  # noqa: E731
    unrounded = torch.cat([(v.q.double() - (rep(v.zero) if v.zero is not None else 0)) * rep(v.scale) for v in views])
    parts = unrounded.split([g.n for g, _ in layer._groups])
    far_ref = torch.cat([xg @ ug.t() for xg, ug in zip(xs, parts, strict=True)], dim=-1)
    far = ((y.double() - far_ref).abs() / bound).max().item()
    assert far > 10 * err, (far, err)


@needs_kernel
def test_rebuild_is_bit_exact_and_fp32_input_is_cast() -> None:
    scheme = modelopt_scheme("W4A16_AWQ", group_size=128)
    dense = make_linear(scheme, 256, 40, backend="dense_dequant")
    ours = make_linear(scheme, 256, 40, backend="avx512_gemv_cpu")
    for layer in (dense, ours):
        _fill(layer, scheme)
        layer.finalize()
    assert torch.equal(ours.dequantize(), dense.dequantize())
    x = torch.randn(2, 256)
    y = ours(x)
    assert y.dtype == torch.float32 and _rel_err(y, ours.reference(x)) < 1e-2


@needs_kernel
def test_zero_rows_and_strided_input() -> None:
    scheme = modelopt_scheme("W4A16_AWQ", group_size=128)
    layer = make_linear(scheme, 128, 16, backend="avx512_gemv_cpu")
    _fill(layer, scheme)
    layer.finalize()
    assert layer(torch.empty(0, 128, dtype=torch.bfloat16)).shape == (0, 16)
    wide = torch.randn(2, 256).to(torch.bfloat16)
    assert _rel_err(layer(wide[:, :128]), layer.reference(wide[:, :128])) < 1e-2


def test_compile_failure_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.utils.cpp_extension as ext

    def broken(*args, **kwargs):
        raise RuntimeError("Error building extension 'quantresolve_avx512_gemv': error: '__m512bh' was not declared")

    monkeypatch.setattr(avx512_gemv, "_BUILD", {})
    monkeypatch.setattr(ext, "load_inline", broken)
    with pytest.raises(BackendUnavailableError, match=r"compiling the AVX-512 kernel failed: .*__m512bh"):
        avx512_gemv.kernels()
    with pytest.raises(BackendUnavailableError, match="__m512bh"):  # remembered, not retried
        avx512_gemv.kernels()
    monkeypatch.setattr(avx512_gemv, "missing_cpu_flags", lambda: ())
    monkeypatch.setattr(avx512_gemv, "toolchain_problem", lambda: None)
    verdict = BACKENDS["avx512_gemv_cpu"].supports(DeviceInfo(), None, Shapes(64, 256), modelopt_scheme("W8A16"))
    assert not verdict.ok and "__m512bh" in verdict.reason
    with pytest.raises(BackendUnavailableError, match="avx512_gemv_cpu"):
        make_linear(modelopt_scheme("W8A16"), 256, 64, backend="avx512_gemv_cpu")


@pytest.mark.parametrize(("patch", "value", "words"), [
    ("missing_cpu_flags", ("avx512_bf16",), "CPU lacks avx512_bf16"),
    ("toolchain_problem", "no C++ compiler on PATH (c++)", "no C++ compiler"),
])
def test_machine_guards(monkeypatch: pytest.MonkeyPatch, patch: str, value, words: str) -> None:
    check_machine_guard(monkeypatch, avx512_gemv, "avx512_gemv_cpu", modelopt_scheme("W4A16_AWQ"), patch, value, words)


def test_missing_flags_read_from_cpuinfo(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import builtins

    fake = tmp_path / "cpuinfo"
    fake.write_text("processor : 0\nflags : fpu sse avx512f avx512bw avx512vl\n")
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda p, *a, **kw: real_open(fake if p == "/proc/cpuinfo" else p, *a, **kw))
    avx512_gemv.missing_cpu_flags.cache_clear()
    try:
        assert avx512_gemv.missing_cpu_flags() == ("avx512_bf16",)
    finally:
        monkeypatch.undo()
        avx512_gemv.missing_cpu_flags.cache_clear()
