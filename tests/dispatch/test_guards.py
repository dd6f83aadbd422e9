"""Every backend's ``supports()`` verdict on both sides of every guard (field notes §6).

CUDA backends are asked about a CUDA device with ``torch.cuda.is_available``
patched to true: ``supports()`` only reads shapes, scheme and capability, so
the guards are testable without a GPU (the kernels themselves are not).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from quantresolve.dispatch import BACKENDS, DeviceInfo, Shapes, make_linear, select_backend
from quantresolve.dispatch.backends import gemlite, triton_gemv
from quantresolve.dispatch.kernels import avx512_gemv, float_gemv
from quantresolve.dispatch.presets import scheme_from_label
from quantresolve.errors import BackendUnavailableError
from quantresolve.formats.scheme import QuantArgs, QuantScheme, bnb_scheme, modelopt_scheme

from .machine import as_cpu, native_dense

pytestmark = pytest.mark.filterwarnings("ignore")

CPU = DeviceInfo()
H100 = DeviceInfo(type="cuda", capability=(9, 0))
A100 = DeviceInfo(type="cuda", capability=(8, 0))
ADA = DeviceInfo(type="cuda", capability=(8, 9))  # L4 / L40S / RTX 40: FP8, row-wise scales via CUTLASS only
B200 = DeviceInfo(type="cuda", capability=(10, 0))  # row-wise scales via CUTLASS again
TURING = DeviceInfo(type="cuda", capability=(7, 5))


def _ct_int(bits: int, strategy: str, group: int | None = None, symmetric: bool = True) -> QuantScheme:
    args = QuantArgs(num_bits=bits, type="int", strategy=strategy, group_size=group, symmetric=symmetric)
    return QuantScheme(algo=f"W{bits}A16", producer="compressed-tensors", format="pack-quantized", weights=args)


AWQ = modelopt_scheme("W4A16_AWQ", group_size=128)
AWQ16 = modelopt_scheme("W4A16_AWQ", group_size=16)
MO_W8 = modelopt_scheme("W8A16")
CT_W8 = scheme_from_label("W8A16", "compressed-tensors")  # int8 group-128
CT_W8A8 = scheme_from_label("W8A8", "compressed-tensors")
CT_W4A8 = scheme_from_label("W4A8", "compressed-tensors")
CT_W4_CHANNEL = _ct_int(4, "channel")
CT_W8_ASYM_CHANNEL = _ct_int(8, "channel", symmetric=False)
CT_W3 = _ct_int(3, "group", 128)
FP8 = modelopt_scheme("FP8")
FP8_PC_PT = modelopt_scheme("FP8_PER_CHANNEL_PER_TOKEN")
FP8_BLOCK = modelopt_scheme("FP8_PB_WO")
NVFP4 = modelopt_scheme("NVFP4")
CT_MXFP4 = scheme_from_label("MXFP4A16", "compressed-tensors")
CT_FP8_BLOCK = scheme_from_label("FP8_BLOCK", "compressed-tensors")
FP8_BLOCK_32 = QuantScheme(algo="FP8_BLOCK", producer="compressed-tensors", format="float-quantized",
                           weights=QuantArgs(num_bits=8, type="float", strategy="block", block_structure=(128, 32)))
NF4 = bnb_scheme("BNB_NF4")
INT8 = bnb_scheme("BNB_INT8")


@dataclass(frozen=True)
class Side:
    scheme: QuantScheme | None
    shapes: Shapes
    device: DeviceInfo = CPU


# (backend, accepted, declined, words of the decline reason)
CASES: list[tuple[str, Side, Side, str]] = [
    # int_mm_cpu: int8 activations, int8 symmetric per-channel weights, CPU
    ("int_mm_cpu", Side(CT_W8A8, Shapes(64, 64)), Side(MO_W8, Shapes(64, 64)), "int8 activation"),
    ("int_mm_cpu", Side(CT_W8A8, Shapes(64, 64)), Side(CT_W4A8, Shapes(64, 64)), "int8 symmetric per-channel"),
    ("int_mm_cpu", Side(CT_W8A8, Shapes(64, 64)), Side(CT_W8A8, Shapes(64, 64), H100), "CPU-only"),
    ("int_mm_cpu", Side(CT_W8A8, Shapes(64, 64)), Side(NF4, Shapes(64, 64)), "integer weights only"),
    # int8pack_cpu: per-channel symmetric int8, K % 16, batch
    ("int8pack_cpu", Side(MO_W8, Shapes(64, 256)), Side(MO_W8, Shapes(64, 200)), "K % 16"),
    ("int8pack_cpu", Side(MO_W8, Shapes(64, 256)), Side(CT_W8, Shapes(64, 256)), "per-channel"),
    ("int8pack_cpu", Side(MO_W8, Shapes(64, 256)), Side(CT_W8_ASYM_CHANNEL, Shapes(64, 256)), "symmetric"),
    ("int8pack_cpu", Side(MO_W8, Shapes(64, 256, batch=4)), Side(MO_W8, Shapes(64, 256, batch=5)), "batch 5 > 4"),
    # int4pack_cpu: ≤ 4 bits, group 32..256 dividing K or channel with K % 32, N % 16, batch
    ("int4pack_cpu", Side(AWQ, Shapes(64, 256)), Side(AWQ, Shapes(40, 256)), "N % 16"),
    ("int4pack_cpu", Side(AWQ, Shapes(48, 256)), Side(AWQ, Shapes(48, 256, shard_sizes=(24, 24))), "shards"),
    ("int4pack_cpu", Side(AWQ, Shapes(64, 256)), Side(AWQ16, Shapes(64, 256)), "group size"),
    ("int4pack_cpu", Side(AWQ, Shapes(64, 256)), Side(AWQ, Shapes(64, 320)), "dividing K"),
    ("int4pack_cpu", Side(CT_W4_CHANNEL, Shapes(64, 96)), Side(CT_W4_CHANNEL, Shapes(64, 100)), "channel"),
    ("int4pack_cpu", Side(AWQ, Shapes(64, 256)), Side(MO_W8, Shapes(64, 256)), "≤ 4-bit"),
    ("int4pack_cpu", Side(AWQ, Shapes(64, 256, batch=6)), Side(AWQ, Shapes(64, 256, batch=7)), "batch 7 > 6"),
    # avx512_gemv_cpu: CPU, eval mode, ≤ 8-bit integer codes, int4 group 32 / multiple of 64 dividing K, int8
    # group multiple of 64, channel with K % 32 (int4) / K % 64 (int8), batch; the CPU-flag, toolchain and
    # build-failure guards are patched here and tested on both sides in tests/dispatch/test_avx512_gemv.py
    ("avx512_gemv_cpu", Side(AWQ, Shapes(64, 256)), Side(AWQ, Shapes(64, 256), H100), "CPU-only"),
    ("avx512_gemv_cpu", Side(AWQ, Shapes(64, 256)), Side(AWQ, Shapes(64, 256), DeviceInfo(training=True)), "eval mode"),
    ("avx512_gemv_cpu", Side(MO_W8, Shapes(64, 256)), Side(NF4, Shapes(64, 256)), "integer weights only"),
    ("avx512_gemv_cpu", Side(AWQ, Shapes(40, 256)), Side(AWQ16, Shapes(40, 256)), "group size 32, 64 or a multiple of 128"),
    ("avx512_gemv_cpu", Side(AWQ, Shapes(37, 384)), Side(AWQ, Shapes(37, 320)), "dividing K"),
    ("avx512_gemv_cpu", Side(_ct_int(4, "group", 32), Shapes(8, 96)), Side(_ct_int(8, "group", 32), Shapes(8, 96)),
     "a multiple of 64"),
    ("avx512_gemv_cpu", Side(CT_W4_CHANNEL, Shapes(64, 96)), Side(CT_W4_CHANNEL, Shapes(64, 100)), "K % 32"),
    ("avx512_gemv_cpu", Side(CT_W8_ASYM_CHANNEL, Shapes(64, 128)), Side(CT_W8_ASYM_CHANNEL, Shapes(64, 96)), "K % 64"),
    ("avx512_gemv_cpu", Side(AWQ, Shapes(64, 256, batch=2)), Side(AWQ, Shapes(64, 256, batch=3)), "batch 3 > 2"),
    ("avx512_gemv_cpu", Side(MO_W8, Shapes(64, 256, batch=2)), Side(MO_W8, Shapes(64, 256, batch=3)), "batch 3 > 2"),
    # group-wise int8 has its own crossover (int8pack cannot run it)
    ("avx512_gemv_cpu", Side(CT_W8, Shapes(64, 256, batch=4)), Side(CT_W8, Shapes(64, 256, batch=5)), "batch 5 > 4"),
    # float_gemv_cpu: CPU, eval mode, an FP4 / FP8 view, E2M1 groups 16 (E4M3) / 32 (E8M0) in bf16, FP8 column
    # blocks of a multiple of 64; the machine guard (CPU flags, toolchain, a failed build) is patched here and
    # tested on both sides in tests/dispatch/test_float_gemv.py
    ("float_gemv_cpu", Side(NVFP4, Shapes(64, 256)), Side(NVFP4, Shapes(64, 256), H100), "CPU-only"),
    ("float_gemv_cpu", Side(FP8, Shapes(64, 256)), Side(FP8, Shapes(64, 256), DeviceInfo(training=True)), "eval mode"),
    ("float_gemv_cpu", Side(CT_MXFP4, Shapes(64, 256)), Side(AWQ, Shapes(64, 256)), "no packed float view"),
    ("float_gemv_cpu", Side(NVFP4, Shapes(64, 256)), Side(None, Shapes(64, 256)), "dense"),
    ("float_gemv_cpu", Side(NVFP4, Shapes(64, 256)), Side(NVFP4, Shapes(64, 256, dtype="float16")), "bfloat16"),
    ("float_gemv_cpu", Side(FP8_PC_PT, Shapes(64, 256, dtype="float16")),
     Side(CT_MXFP4, Shapes(64, 256, dtype="float32")), "bfloat16"),
    ("float_gemv_cpu", Side(CT_FP8_BLOCK, Shapes(64, 256)), Side(FP8_BLOCK_32, Shapes(64, 256)), "multiple of 64"),
    ("float_gemv_cpu", Side(FP8_BLOCK_32, Shapes(64, 32)), Side(FP8_BLOCK_32, Shapes(64, 96)), "multiple of 64"),
    # int8split_cpu: 5..8 bits, same shape rules, batch
    ("int8split_cpu", Side(CT_W8, Shapes(64, 256)), Side(AWQ, Shapes(64, 256)), "5..8-bit"),
    ("int8split_cpu", Side(CT_W8, Shapes(64, 256)), Side(CT_W8, Shapes(40, 256)), "N % 16"),
    ("int8split_cpu", Side(CT_W8_ASYM_CHANNEL, Shapes(64, 64)), Side(CT_W8_ASYM_CHANNEL, Shapes(64, 48)), "channel"),
    ("int8split_cpu", Side(CT_W8, Shapes(64, 256, batch=2)), Side(CT_W8, Shapes(64, 256, batch=3)), "batch 3 > 2"),
    # bnb_cpu: bitsandbytes formats, N % 32 and even K for 4-bit, eval mode, batch
    ("bnb_cpu", Side(NF4, Shapes(64, 128)), Side(NF4, Shapes(48, 128)), "N % 32"),
    ("bnb_cpu", Side(INT8, Shapes(48, 128)), Side(NF4, Shapes(64, 129)), "even K"),
    ("bnb_cpu", Side(NF4, Shapes(64, 128)), Side(NF4, Shapes(64, 128), DeviceInfo(training=True)), "eval mode"),
    ("bnb_cpu", Side(INT8, Shapes(64, 128, batch=4)), Side(INT8, Shapes(64, 128, batch=5)), "batch 5 > 4"),
    ("bnb_cpu", Side(NF4, Shapes(64, 128)), Side(AWQ, Shapes(64, 128)), "bitsandbytes"),
    # scaled_mm_cuda: CUDA, SM 8.9, FP8 tensor/channel weights, FP8 tensor/token activations, N and K % 16
    ("scaled_mm_cuda", Side(FP8, Shapes(64, 64), H100), Side(FP8, Shapes(64, 64)), "no CUDA device"),
    ("scaled_mm_cuda", Side(FP8, Shapes(64, 64), H100), Side(FP8, Shapes(64, 64), A100), "8.9"),
    ("scaled_mm_cuda", Side(FP8, Shapes(64, 64), H100), Side(FP8_BLOCK, Shapes(64, 64), H100), "tensor or channel"),
    ("scaled_mm_cuda", Side(FP8, Shapes(64, 64), H100), Side(FP8, Shapes(64, 72), H100), "multiples of 16"),
    # row-wise scales (per-channel / per-token, fused shards) need a bf16 output on SM 8.9 and on
    # every SM whose torch routes them to CUTLASS; per-tensor unfused layers run in any dtype
    ("scaled_mm_cuda", Side(FP8_PC_PT, Shapes(64, 64), ADA), Side(FP8_PC_PT, Shapes(64, 64, dtype="float16"), ADA),
     "bfloat16 output"),
    ("scaled_mm_cuda", Side(FP8, Shapes(64, 64, dtype="float16"), ADA),
     Side(FP8, Shapes(64, 64, shard_sizes=(32, 32), dtype="float16"), ADA), "per-tensor"),
    ("scaled_mm_cuda", Side(FP8_PC_PT, Shapes(64, 64), ADA), Side(FP8_PC_PT, Shapes(64, 64, dtype="float32"), B200),
     "bfloat16 output"),
    # gemlite_cuda: CUDA, installed (patched), K % 32, 1/2/4/8-bit, group % 32, FP4 on SM 9.0+
    ("gemlite_cuda", Side(AWQ, Shapes(64, 256), A100), Side(AWQ, Shapes(64, 256)), "no CUDA device"),
    ("gemlite_cuda", Side(AWQ, Shapes(64, 256), A100), Side(AWQ, Shapes(64, 240), A100), "K % 32"),
    ("gemlite_cuda", Side(AWQ, Shapes(64, 256), A100), Side(CT_W3, Shapes(64, 256), A100), "1/2/4/8-bit"),
    ("gemlite_cuda", Side(AWQ, Shapes(64, 256), A100), Side(AWQ16, Shapes(64, 256), A100), "multiple of 32"),
    ("gemlite_cuda", Side(AWQ, Shapes(64, 256), A100), Side(AWQ, Shapes(64, 256), TURING), "8.0"),
    ("gemlite_cuda", Side(AWQ, Shapes(64, 256), H100), Side(NVFP4, Shapes(64, 256), H100), "not verified"),
    ("gemlite_cuda", Side(AWQ, Shapes(64, 256), H100), Side(CT_MXFP4, Shapes(64, 256), H100), "not verified"),
    ("gemlite_cuda", Side(AWQ, Shapes(64, 256), H100), Side(FP8, Shapes(64, 256), H100), "integer, NVFP4"),
    # bnb_cuda: CUDA, bitsandbytes formats
    ("bnb_cuda", Side(NF4, Shapes(48, 128), H100), Side(NF4, Shapes(48, 128)), "no CUDA device"),
    ("bnb_cuda", Side(INT8, Shapes(48, 128), H100), Side(AWQ, Shapes(48, 128), H100), "bitsandbytes"),
    # triton_gemv_cuda: CUDA, Triton (patched), SM 8.0, int / NVFP4 / MXFP4, groups fitting its chunks,
    # batch (every guard on both sides: tests/dispatch/test_triton_gemv.py)
    ("triton_gemv_cuda", Side(AWQ, Shapes(40, 200), A100), Side(AWQ, Shapes(40, 200)), "no CUDA device"),
    ("triton_gemv_cuda", Side(NVFP4, Shapes(64, 256), A100), Side(NVFP4, Shapes(64, 256), TURING), "8.0"),
    ("triton_gemv_cuda", Side(CT_MXFP4, Shapes(64, 256), H100), Side(FP8, Shapes(64, 256), H100), "integer, NVFP4"),
    ("triton_gemv_cuda", Side(AWQ16, Shapes(64, 256), H100), Side(CT_W3, Shapes(64, 256, batch=9), H100),
     "batch 9 > 8"),
]


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(gemlite, "gemlite_installed", lambda: True)
    monkeypatch.setattr(triton_gemv, "triton_installed", lambda: True)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    # the AVX-512 GEMV's machine guards (CPU flags, C++ toolchain) as on a machine that has them
    monkeypatch.setattr(avx512_gemv, "missing_cpu_flags", lambda: ())
    monkeypatch.setattr(avx512_gemv, "toolchain_problem", lambda: None)
    monkeypatch.setattr(float_gemv, "unavailable", lambda: None)
    native_dense(monkeypatch)  # the batch crossovers hold where the dense matmul is native


@pytest.mark.parametrize(("cuda", "device", "ok"), [
    ("13.0", H100, True), ("12.9", H100, True), ("12.6", H100, False),  # cuBLAS row-wise from 12.9
    ("13.0", ADA, False), ("13.0", B200, False), (None, H100, False),
])
def test_scaled_mm_rowwise_output_dtypes_follow_torchs_dispatch(monkeypatch: pytest.MonkeyPatch, cuda, device,
                                                                 ok: bool) -> None:
    """fp16 output with per-token scales: cuBLAS (SM 9.x, CUDA ≥ 12.9) takes it, CUTLASS does not."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.version, "cuda", cuda)
    verdict = _verdict("scaled_mm_cuda", Side(FP8_PC_PT, Shapes(64, 64, dtype="float16"), device))
    assert verdict.ok is ok, verdict.reason
    assert _verdict("scaled_mm_cuda", Side(FP8_PC_PT, Shapes(64, 64), device)).ok  # bf16: everywhere ≥ 8.9


def _verdict(name: str, side: Side):
    return BACKENDS[name].supports(side.device, side.device.capability, side.shapes, side.scheme)


@pytest.mark.parametrize(("name", "good", "bad", "reason"), CASES,
                         ids=[f"{c[0]}-{c[3]}" for c in CASES])
def test_guard_both_sides(fake_cuda: None, name: str, good: Side, bad: Side, reason: str) -> None:
    accepted, declined = _verdict(name, good), _verdict(name, bad)
    assert accepted.ok, accepted.reason
    assert not declined.ok and reason in declined.reason, declined.reason


def test_every_backend_has_guard_cases() -> None:
    assert {c[0] for c in CASES} == set(BACKENDS) - {"dense_dequant", "per_call_dequant"}


def test_cuda_backends_unavailable_without_gpu() -> None:
    """Without patching, this machine's verdict is the real one: no CUDA device (or not installed)."""
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    for name in ("scaled_mm_cuda", "gemlite_cuda", "bnb_cuda", "triton_gemv_cuda"):
        v = _verdict(name, Side(modelopt_scheme("FP8"), Shapes(64, 64), H100))
        assert not v.ok and v.reason == "unavailable: no CUDA device"


def test_gemlite_not_installed_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(gemlite, "gemlite_installed", lambda: False)
    v = _verdict("gemlite_cuda", Side(AWQ, Shapes(64, 256), A100))
    assert not v.ok and "gemlite is not installed" in v.reason and "[cuda]" in v.reason


@pytest.mark.parametrize("avx512", [False, True])
def test_failing_guard_falls_to_next_backend(monkeypatch: pytest.MonkeyPatch, avx512: bool) -> None:
    """A shape outside every kernel's guards runs on the dense fallback, finite (no inf/nan, no crash)."""
    as_cpu(monkeypatch, avx512=avx512)
    ours = "avx512_gemv_cpu" if avx512 else None
    assert select_backend(AWQ, Shapes(40, 256)).name == (ours or "dense_dequant")  # N % 16: int4pack declines
    assert select_backend(MO_W8, Shapes(40, 200)).name == "dense_dequant"
    assert select_backend(CT_W8, Shapes(64, 256)).name == (ours or "int8split_cpu")
    assert select_backend(CT_W8, Shapes(64, 256, batch=32)).name == "dense_dequant"
    layer = make_linear(MO_W8, 200, 40)
    layer.load("weight", torch.randint(-127, 128, (40, 200), dtype=torch.int8))
    layer.load("weight_scale", torch.rand(40) * 0.01)
    layer.finalize()
    assert torch.isfinite(layer(torch.randn(3, 200, dtype=torch.bfloat16))).all()


OURS = "avx512_gemv_cpu"


# (scheme, batch hint, choice without AVX-512 BF16, choice with it)
@pytest.mark.parametrize(("scheme", "batch", "expect", "expect_avx512"), [
    (CT_W8A8, None, "int8pack_cpu", OURS), (CT_W8A8, 4, "int8pack_cpu", "int8pack_cpu"),
    (CT_W8A8, 32, "int_mm_cpu", "int_mm_cpu"),
    (AWQ, 1, "int4pack_cpu", OURS), (AWQ, 5, "int4pack_cpu", "int4pack_cpu"), (AWQ, 32, "dense_dequant", "dense_dequant"),
    (CT_W8, 2, "int8split_cpu", OURS), (CT_W8, 3, "dense_dequant", OURS), (AWQ, 2, "int4pack_cpu", OURS),
    (AWQ, 3, "int4pack_cpu", "int4pack_cpu"), (CT_W8, 4, "dense_dequant", OURS), (CT_W8, 5, "dense_dequant", "dense_dequant"), (MO_W8, 3, "int8pack_cpu", "int8pack_cpu"),
    (INT8, 1, "int8pack_cpu", OURS), (MO_W8, 5, "dense_dequant", "dense_dequant"), (INT8, 32, "dense_dequant", "dense_dequant"), (NF4, 4, "bnb_cpu", "bnb_cpu"),
    (NF4, 32, "dense_dequant", "dense_dequant"),
])
@pytest.mark.parametrize("avx512", [False, True])
def test_batch_hint_selection(monkeypatch: pytest.MonkeyPatch, scheme: QuantScheme, batch: int | None, expect: str,
                              expect_avx512: str, avx512: bool) -> None:
    """Weight-only kernels win small batches (W8A8 too, activations emulated); large hints go to
    torch._int_mm for W8A8 and to the dense matmul otherwise (crossovers in backends/needs.py)."""
    as_cpu(monkeypatch, avx512=avx512)
    assert select_backend(scheme, Shapes(64, 256, batch=batch)).name == (expect_avx512 if avx512 else expect)


@pytest.mark.parametrize(("scheme", "expect"), [(AWQ, "int4pack_cpu"), (MO_W8, "int8pack_cpu")])
def test_batch_crossovers_need_a_native_dense_matmul(monkeypatch: pytest.MonkeyPatch, scheme: QuantScheme,
                                                     expect: str) -> None:
    """Where bf16 matmul is emulated (no AVX-512 BF16 / AMX: AVX2 machines) the packed kernel keeps large
    batches; a float32 layer's dense matmul is native everywhere, so its crossover still applies."""
    as_cpu(monkeypatch, avx512=False, dense_native=False)
    assert select_backend(scheme, Shapes(64, 256, batch=32)).name == expect
    assert select_backend(scheme, Shapes(64, 256, batch=32, dtype="float32")).name == "dense_dequant"
    as_cpu(monkeypatch, avx512=False, dense_native=True)
    assert select_backend(scheme, Shapes(64, 256, batch=32)).name == "dense_dequant"


def test_bnb_cpu_4bit_needs_bitsandbytes_fused_gemv(monkeypatch: pytest.MonkeyPatch) -> None:
    """bitsandbytes registers its fused CPU 4-bit GEMV only with AVX-512 BF16; elsewhere each call dequantizes
    (15x slower than dense_dequant on the AVX2 machine), so auto goes to the dense matmul and says why."""
    as_cpu(monkeypatch, avx512=False, dense_native=False)
    verdict = _verdict("bnb_cpu", Side(NF4, Shapes(64, 128)))
    assert not verdict.ok and "AVX-512 BF16" in verdict.reason
    assert select_backend(NF4, Shapes(64, 128)).name == "dense_dequant"
    as_cpu(monkeypatch, avx512=False, dense_native=True)
    assert select_backend(NF4, Shapes(64, 128)).name == "bnb_cpu"


@pytest.mark.parametrize("name", ["avx512_gemv_cpu", "int8pack_cpu", "int4pack_cpu", "int8split_cpu", "bnb_cpu", "int_mm_cpu",
                                  "scaled_mm_cuda", "gemlite_cuda", "bnb_cuda", "triton_gemv_cuda"])
def test_forcing_a_declining_backend_is_a_clear_error(name: str) -> None:
    scheme = modelopt_scheme("MXFP8")  # no specialised kernel runs MXFP8
    with pytest.raises(BackendUnavailableError, match=rf"forced backend '{name}' cannot run MXFP8 .* at 64x256: "):
        make_linear(scheme, 256, 64, backend=name)


@pytest.mark.parametrize(("scheme", "sizes", "scales", "per_tensor"), [
    (FP8, [64], [0.02], True),                  # unfused per-tensor: one scalar per operand (any dtype)
    (FP8, [32, 32], [0.02, 0.02], True),        # fused shards with equal scales still are one tensor
    (FP8, [32, 32], [0.02, 0.03], False),       # unequal shard scales: row-wise
    (FP8_PC_PT, [64], None, False),             # per-channel weights, per-token activations: row-wise
])
def test_scaled_mm_scaling_choice_runs_on_torchs_cpu_emulation(scheme, sizes, scales, per_tensor) -> None:
    """The GEMM itself needs a GPU for speed, but torch._scaled_mm has a CPU emulation: the operands
    prepared here (per-tensor or row-wise) give the layer's reference result."""
    g = torch.Generator().manual_seed(0)
    fused = len(sizes) > 1
    layer = make_linear(scheme, 64, sizes if fused else sizes[0], shard_names=["a", "b"] if fused else None,
                        backend="per_call_dequant")
    for i, n in enumerate(sizes):
        shard = ["a", "b"][i] if fused else None
        layer.load("weight", (torch.randn(n, 64, generator=g) * 20).to(torch.float8_e4m3fn), shard=shard)
        layer.load("weight_scale", torch.tensor(scales[i]) if scales else torch.rand(n, generator=g) * 0.02 + 0.01,
                   shard=shard)
        if scheme is FP8:
            layer.load("input_scale", torch.tensor(0.01), shard=shard)
    layer.finalize()
    group = layer._groups[0][0]
    backend = BACKENDS["scaled_mm_cuda"]
    state = backend.prepare(group)
    assert state[2] is per_tensor and state[1].dim() == (0 if per_tensor else 2)
    x = torch.randn(5, 64, generator=g).to(torch.bfloat16)
    y = backend.apply(state, x, group).float()
    ref = layer.reference(x)
    assert float((y - ref).norm() / ref.norm()) < 1e-2


def test_scaled_mm_reads_hf_fp8_through_the_codecs_fp8_view(fake_cuda: None) -> None:
    """HF ``quant_method: fp8`` per-tensor weights (AutoFP8's ``weight_scale`` / transformers' scalar
    ``weight_scale_inv``) reach scaled_mm through the codec's ``fp8_weights`` view; block scales do not."""
    assert _verdict("scaled_mm_cuda", Side(scheme_from_label("FP8", "fp8"), Shapes(64, 64), H100)).ok
    assert _verdict("scaled_mm_cuda", Side(scheme_from_label("FP8_DYNAMIC", "fp8"), Shapes(64, 64), H100)).ok
    block = _verdict("scaled_mm_cuda", Side(scheme_from_label("FP8_BLOCK", "fp8"), Shapes(128, 128), H100))
    assert not block.ok and "tensor or channel" in block.reason
