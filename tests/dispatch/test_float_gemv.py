"""``float_gemv_cpu``: packing, the compiled E2M1 / E4M3 kernels against ``dequantize()``, guards, fallbacks.

The kernel tests need AVX2 + FMA + F16C and a C++ toolchain (they compile the extension once, ≈ 40 s, cached
in torch's extensions directory); elsewhere they are skipped with the reason. Exactness is stated the way
the int4 kernel's is (tests/dispatch/test_avx512_gemv.py): the weights the kernel multiplies by are
``dequantize()``'s bit for bit (checked on the tile path, which writes them out), and its float32 output is
``x @ dequantize()ᵀ`` up to float32 summation order (≤ 2e-6 of Σ|x·w| per output).
"""

from __future__ import annotations

import pytest
import torch

from quantresolve.dispatch import BACKENDS, DeviceInfo, Shapes, make_linear, select_backend
from quantresolve.dispatch.backends.inputs import weight_only_input
from quantresolve.dispatch.kernels import float_gemv
from quantresolve.dispatch.presets import scheme_from_label
from quantresolve.errors import BackendUnavailableError
from quantresolve.formats.scheme import modelopt_scheme

from .machine import check_machine_guard
from .test_tensor_parallel_codecs import _full_tensors

pytestmark = pytest.mark.filterwarnings("ignore")

_WHY_NOT = float_gemv.unavailable()
needs_kernel = pytest.mark.skipif(_WHY_NOT is not None, reason=f"float_gemv_cpu unavailable: {_WHY_NOT}")

MO, CT = "modelopt", "compressed-tensors"
#: Every float scheme the backend runs: (label, producer).
SCHEMES = [("NVFP4", MO), ("W4A16_NVFP4", MO), ("MXFP4", MO), ("W4A8_NVFP4_FP8", MO), ("FP8", MO),
           ("FP8_PER_CHANNEL_PER_TOKEN", MO), ("FP8_PB_WO", MO),
           ("NVFP4", CT), ("NVFP4A16", CT), ("MXFP4A16", CT), ("MXFP4", CT), ("FP8", CT), ("FP8_DYNAMIC", CT),
           ("FP8_BLOCK", CT), ("W4A8_AWQ", MO),
           # Hugging Face fine-grained FP8 (weight_scale_inv blocks; AutoFP8 per tensor) and gpt-oss MXFP4 experts
           ("FP8_BLOCK", "fp8"), ("FP8", "fp8"), ("FP8_DYNAMIC", "fp8"), ("MXFP4A16", "mxfp4")]
#: Packed bytes / checkpoint bytes where they differ from 1: ModelOpt W4A8_AWQ computes with FP8 weights derived
#: from its int4 codes (codecs/modelopt.py), held as one E4M3 byte per weight.
PACKED_RATIO = {"W4A8_AWQ": 2.0}
#: (shard sizes, K): N % 4 ≠ 0, K % 64 ≠ 0 (a padded block), fused shards whose scales differ, FP8 blocks cut.
SHAPES = [([40], 256), ([37], 96), ([24, 13], 320), ([130], 192)]


def _layer(label: str, producer: str, sizes: list[int], k: int, seed: int = 0, backend: str | None = None,
           special: bool = False):
    scheme = scheme_from_label(label, producer)
    names = [f"s{i}" for i in range(len(sizes))] if len(sizes) > 1 else [None]
    layer = make_linear(scheme, k, sizes if len(sizes) > 1 else sizes[0],
                        shard_names=names if len(sizes) > 1 else None, backend=backend)
    for name, tensors in zip(names, _full_tensors(scheme, sizes, k, seed), strict=True):
        for suffix, t in tensors.items():
            if special and suffix == "weight_scale":
                t = _special_scales(t, seed)
            layer.load(suffix, t, shard=name)
    layer.finalize()
    return layer


def _special_scales(t: torch.Tensor, seed: int) -> torch.Tensor:
    """Group scales at the ends of their formats (zero, subnormal, largest), where the kernel builds its
    tables entry by entry instead of by exponent steps; FP8 multipliers whose products leave the normal range."""
    g = torch.Generator().manual_seed(seed)
    flat = t.clone().reshape(-1)
    pick = torch.randint(0, flat.numel(), (max(1, flat.numel() // 5),), generator=g)
    if t.dtype == torch.uint8:  # E8M0: 2^-127 (0), 2^-126, 2^126, 2^127
        values = torch.tensor([0, 1, 253, 254], dtype=torch.uint8)
    elif t.dtype == torch.float8_e4m3fn:  # 0, the smallest subnormal, the largest normal
        values = torch.tensor([0.0, 2.0 ** -9, 448.0, 2.0 ** -6]).to(torch.float8_e4m3fn)
    elif t.dtype in (torch.float32, torch.bfloat16):  # FP8 multipliers whose products are subnormal or huge
        values = torch.tensor([2.0 ** -130, 3.0 * 2.0 ** -125, 2.0 ** 110, 0.0]).to(t.dtype)
    else:
        return t
    flat[pick] = values[torch.arange(pick.numel()) % values.numel()]
    return flat.reshape(t.shape)


def _float32_error(layer, x: torch.Tensor) -> float:
    """Largest |y − x·Wᵀ| / Σ|x·w| over the outputs, for the kernel's float32 output before any rounding."""
    w = layer.dequantize().double()
    errs = []
    row = 0
    for group, state in layer._groups:
        y = layer._impl.apply(state, x, group)
        assert y.dtype == torch.float32
        xk = weight_only_input(x, group).to(group.dtype).double()
        wg = w[row:row + group.n]
        row += group.n
        errs.append(((y.double() - xk @ wg.t()).abs() / (xk.abs() @ wg.abs().t()).clamp(min=1e-30)).max().item())
    return max(errs)


@pytest.mark.parametrize(("n", "k"), [(1, 32), (6, 96), (13, 128), (40, 320)])
def test_pack_roundtrips(n: int, k: int) -> None:
    g = torch.Generator().manual_seed(n)
    codes = torch.randint(0, 256, (n, k // 2), generator=g, dtype=torch.int32).to(torch.uint8)
    scales = torch.randint(0, 256, (n, k // 16), generator=g, dtype=torch.int32).to(torch.uint8)
    e4m3 = torch.randint(0, 256, (n, k), generator=g, dtype=torch.int32).to(torch.uint8)
    assert torch.equal(float_gemv.unpack_e2m1(float_gemv.pack_e2m1(codes, k), n, k), codes)
    assert torch.equal(float_gemv.unpack_group_scales(float_gemv.pack_group_scales(scales, 16, k), n, k // 16), scales)
    assert torch.equal(float_gemv.unpack_e4m3(float_gemv.pack_e4m3(e4m3), n, k), e4m3)


def test_e2m1_layout_is_what_the_kernel_reads() -> None:
    """Byte i of 16-byte lane L of a (block, row) = element 32L + i (low nibble) | element 32L + 16 + i (high)."""
    u = torch.arange(128, dtype=torch.int32).remainder(16).to(torch.uint8).reshape(1, 128)
    codes = (u[:, 0::2] | (u[:, 1::2] << 4)).repeat(2, 1)
    packed = float_gemv.pack_e2m1(codes, 128)
    assert packed.shape == (1, 2, 4, 32)
    for block, lane, i in ((0, 0, 3), (0, 1, 15), (1, 0, 7), (1, 1, 0)):
        byte = packed[0, block, 1, 16 * lane + i].item()
        e = 64 * block + 32 * lane + i
        assert byte == int(u[0, e]) | int(u[0, e + 16]) << 4
    assert packed[0, :, 2:].eq(0).all()  # padded rows: code 0 (weight 0)


@needs_kernel
@pytest.mark.parametrize(("label", "producer"), SCHEMES, ids=[f"{p}-{lb}" for lb, p in SCHEMES])
@pytest.mark.parametrize(("sizes", "k"), SHAPES, ids=[f"{s}x{k}" for s, k in SHAPES])
def test_kernel_weights_are_dequantize_bit_for_bit(label: str, producer: str, sizes: list[int], k: int) -> None:
    """The tile path writes the weights the kernels multiply by: exactly ``dequantize()`` (compute dtype),
    including group scales at the ends of their formats (the tables' slow path)."""
    if producer == MO and label == "FP8_PB_WO" and k % 128:
        k = 384  # ModelOpt's blocks must be whole (its spec); compressed-tensors crops the last one
    for special in (False, True):
        layer = _layer(label, producer, sizes, k, seed=len(sizes) + k, special=special)
        assert layer.backend == "float_gemv_cpu"
        w = layer.dequantize()
        rows = []
        for group, ops in layer._groups:
            n4 = float_gemv.tiles(group.n) * float_gemv.TILE
            buf = torch.empty(n4, float_gemv.padded(k), dtype=torch.float32)
            ops.tile(0, n4, buf)
            if isinstance(ops, float_gemv.E2M1Operands):
                order = float_gemv.x_order(float_gemv.padded(k) // float_gemv.BLOCK)
                buf = torch.empty_like(buf).index_copy_(1, order, buf)
            rows.append(buf[: group.n, :k])
        got = torch.cat(rows)
        assert torch.equal(got.to(w.dtype), w) and torch.equal(got, w.float()), (label, special)


@needs_kernel
@pytest.mark.parametrize(("label", "producer"), SCHEMES, ids=[f"{p}-{lb}" for lb, p in SCHEMES])
@pytest.mark.parametrize("batch", [1, 2, 3, 4, 7, 9])
def test_kernel_is_a_float32_gemv_on_the_dequantized_weight(label: str, producer: str, batch: int) -> None:
    """GEMV (≤ 8 rows, four at a time) and the tiled GEMM above: ``x @ dequantize()ᵀ`` in float32 sums;
    each row alone gives what it gives inside the batch up to the same bound."""
    for sizes, k in SHAPES:
        if producer == MO and label == "FP8_PB_WO" and k % 128:
            continue
        layer = _layer(label, producer, sizes, k, seed=batch)
        x = torch.randn(batch, k, generator=torch.Generator().manual_seed(batch)).to(torch.bfloat16)
        assert _float32_error(layer, x) < 2e-6, (sizes, k)
        assert _float32_error(layer, x[-1:]) < 2e-6
        y = layer(x)
        assert y.dtype == torch.bfloat16 and y.shape == (batch, sum(sizes))


@needs_kernel
def test_layer_holds_the_packed_bytes_and_rebuilds_exactly() -> None:
    """After ``finalize()`` the shards hold only the small tensors; ``dequantize()`` from the repacking equals
    the checkpoint's, and the packed operands are the checkpoint's size (plus padding to tiles and blocks)."""
    for label, producer in SCHEMES:
        ours = _layer(label, producer, [64], 256, backend="float_gemv_cpu")
        keeper = _layer(label, producer, [64], 256, backend="per_call_dequant")
        assert torch.equal(ours.dequantize(), keeper.dequantize()), label
        group, ops = ours._groups[0]
        assert all(t.numel() <= 64 for s in group.shards for t in s.tensors.values()), label
        kept = sum(t.numel() * t.element_size() for s in keeper._groups[0][0].shards for t in s.tensors.values())
        packed = sum(t.numel() * t.element_size() for t in vars(ops).values() if isinstance(t, torch.Tensor))
        ratio = PACKED_RATIO.get(label, 1.0)
        assert 0.9 * ratio * kept <= packed <= 1.1 * ratio * kept, (label, packed, kept)


@needs_kernel
def test_zero_rows_strided_and_float32_input() -> None:
    layer = _layer("NVFP4", MO, [16], 128)
    assert layer(torch.empty(0, 128, dtype=torch.bfloat16)).shape == (0, 16)
    x = torch.randn(128, 6).to(torch.bfloat16)
    assert torch.equal(layer(x.t()), layer(x.t().contiguous()))
    y = layer(x.t().float())
    assert y.dtype == torch.float32 and torch.isfinite(y).all()


# -- guards and fallbacks (no compiler needed) ---------------------------------------------------------------


@pytest.mark.parametrize(("patch", "value", "words"), [
    ("missing_cpu_flags", ("avx2", "fma"), "CPU lacks avx2, fma"),
    ("toolchain_problem", "no C++ compiler on PATH (c++)", "no C++ compiler"),
])
def test_machine_guards(monkeypatch: pytest.MonkeyPatch, patch: str, value, words: str) -> None:
    check_machine_guard(monkeypatch, float_gemv, "float_gemv_cpu", modelopt_scheme("NVFP4"), patch, value, words)
    assert select_backend(modelopt_scheme("NVFP4"), Shapes(64, 256)).name == "dense_dequant"


def test_build_failure_falls_back_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """A compiler error at ``finalize()``: an auto-selected layer runs on the next backend, and from then on
    the backend's verdict carries the compiler's message; a forced one raises it."""
    import torch.utils.cpp_extension as ext

    def broken(*args, **kwargs):
        raise RuntimeError("Error building extension 'quantresolve_float_gemv_avx2': error: '_mm256_cvtph_ps' undeclared")

    monkeypatch.setattr(float_gemv, "missing_cpu_flags", lambda: ())
    monkeypatch.setattr(float_gemv, "toolchain_problem", lambda: None)
    monkeypatch.setattr(float_gemv, "_BUILD", {})
    monkeypatch.setattr(ext, "load_inline", broken)
    scheme = modelopt_scheme("NVFP4")
    forced = make_linear(scheme, 256, 64, backend="float_gemv_cpu")
    for suffix, t in _full_tensors(scheme, [64], 256, 0)[0].items():
        forced.load(suffix, t)
    with pytest.raises(BackendUnavailableError, match=r"compiling the kernels failed: .*_mm256_cvtph_ps"):
        forced.finalize()
    auto = make_linear(scheme, 256, 64)
    assert auto.backend == "dense_dequant"  # the failure is remembered: declined up front now
    verdict = BACKENDS["float_gemv_cpu"].supports(DeviceInfo(), None, Shapes(64, 256), scheme)
    assert not verdict.ok and "_mm256_cvtph_ps" in verdict.reason


def test_build_failure_at_finalize_reselects(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first layer to find the build broken (selected while the build was untried) moves on at finalize."""
    import torch.utils.cpp_extension as ext

    def broken(*args, **kwargs):
        raise RuntimeError("no space left on device")

    monkeypatch.setattr(float_gemv, "missing_cpu_flags", lambda: ())
    monkeypatch.setattr(float_gemv, "toolchain_problem", lambda: None)
    monkeypatch.setattr(float_gemv, "_BUILD", {})
    scheme = scheme_from_label("FP8_DYNAMIC", CT)
    layer = make_linear(scheme, 256, 64)
    assert layer.backend == "float_gemv_cpu"
    monkeypatch.setattr(ext, "load_inline", broken)
    for suffix, t in _full_tensors(scheme, [64], 256, 0)[0].items():
        layer.load(suffix, t)
    layer.finalize()
    assert layer.backend == "dense_dequant"
    x = torch.randn(2, 256).to(torch.bfloat16)
    assert torch.allclose(layer(x).float(), layer.reference(x), rtol=2e-2, atol=1e-2)


def test_repacking_that_does_not_fit_fails_before_allocating(monkeypatch: pytest.MonkeyPatch) -> None:
    from quantresolve.errors import LoadError
    from quantresolve.util import memory

    monkeypatch.setattr(memory, "available_memory", lambda: 1 << 20)
    monkeypatch.setattr(float_gemv, "kernels", lambda: pytest.fail("compiled before the memory check"))
    scheme = modelopt_scheme("FP8")
    layer = make_linear(scheme, 4096, 1024, backend="float_gemv_cpu")
    for suffix, t in _full_tensors(scheme, [1024], 4096, 0)[0].items():
        layer.load(suffix, t)
    with pytest.raises(LoadError, match=r"repacking FP8.* 1024x4096 for float_gemv_cpu would need [0-9.]+ MiB, "
                                        r"but 1\.0 MiB of memory is available"):
        layer.finalize()


def test_unsupported_shapes_fall_back_with_a_reason() -> None:
    """E2M1 in float16, FP8 column blocks of 32: declined with the reason, the layer runs on dense_dequant."""
    nv16 = make_linear(modelopt_scheme("NVFP4"), 256, 64, dtype=torch.float16)
    assert nv16.backend == "dense_dequant"
    verdict = BACKENDS["float_gemv_cpu"].supports(DeviceInfo(), None, Shapes(64, 256, dtype="float16"),
                                                  modelopt_scheme("NVFP4"))
    assert "bfloat16" in verdict.reason
