"""``triton_gemv_cuda``: its guards, its packed layout, and its kernels against ``x · dequantize()ᵀ``.

Three tiers: the guards and the layout need neither Triton nor a GPU; the kernels run on CPU
tensors under Triton's interpreter (``TRITON_INTERPRET=1``, set only in a subprocess so it cannot
leak into other tests; skipped without Triton); and at realistic shapes on a CUDA device (skipped
without one).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from quantresolve.dispatch import BACKENDS, DeviceInfo, Shapes, make_linear, select_backend
from quantresolve.dispatch.backends import triton_gemv
from quantresolve.dispatch.kernels.gemv_configs import GemvConfig, choose_config, split_for
from quantresolve.dispatch.kernels.gemv_layout import (
    pack_codes,
    padded_rows,
    padded_words,
    slot_element,
    unpack_codes,
)
from quantresolve.dispatch.kernels.triton_tiles import launch_grid
from quantresolve.errors import BackendUnavailableError
from quantresolve.formats.scheme import QuantArgs, QuantScheme, modelopt_scheme

pytestmark = pytest.mark.filterwarnings("ignore")
REPO = Path(__file__).resolve().parents[2]
HAS_TRITON = importlib.util.find_spec("triton") is not None
NAME = "triton_gemv_cuda"

H100 = DeviceInfo(type="cuda", capability=(9, 0))
TURING = DeviceInfo(type="cuda", capability=(7, 5))


def ct_int(bits: int, group: int | None, symmetric: bool = True, fmt: str = "pack-quantized",
           acts: QuantArgs | None = None) -> QuantScheme:
    """A compressed-tensors integer scheme, built without the compressed-tensors library."""
    strategy = "group" if group else "channel"
    args = QuantArgs(num_bits=bits, type="int", strategy=strategy, group_size=group, symmetric=symmetric)
    return QuantScheme(algo=f"W{bits}A{8 if acts else 16}", producer="compressed-tensors", format=fmt,
                       weights=args, input_activations=acts)


def ct_fp4(kind: str, w4a4: bool = False) -> QuantScheme:
    if kind == "nvfp4":
        args = QuantArgs(num_bits=4, type="float", strategy="tensor_group", group_size=16,
                         scale_dtype="float8_e4m3fn")
        acts = args.model_copy(update={"dynamic": "local"}) if w4a4 else None
        return QuantScheme(algo="NVFP4" if w4a4 else "NVFP4A16", producer="compressed-tensors",
                           format="nvfp4-pack-quantized", weights=args, input_activations=acts)
    args = QuantArgs(num_bits=4, type="float", strategy="group", group_size=32, scale_dtype="uint8")
    return QuantScheme(algo="MXFP4A16", producer="compressed-tensors", format="mxfp4-pack-quantized",
                       weights=args)


#: name → scheme for the kernel tests (every format and zero-point / scale variant the kernel reads)
SCHEMES: dict[str, QuantScheme] = {
    "ct-w4a16-g128": ct_int(4, 128),
    "ct-w4a16-asym-g32": ct_int(4, 32, symmetric=False),
    "ct-w4a16-channel": ct_int(4, None),
    "ct-w8a16-g128": ct_int(8, 128),
    "ct-w8a16-asym-channel": ct_int(8, None, symmetric=False),
    "ct-w4a8-g128": ct_int(4, 128, fmt="int-quantized",
                           acts=QuantArgs(num_bits=8, type="int", strategy="token", dynamic=True)),
    "mo-w4a16-awq-g128": modelopt_scheme("W4A16_AWQ", group_size=128),
    "mo-w4a16-awq-g16": modelopt_scheme("W4A16_AWQ", group_size=16),
    "mo-w8a16": modelopt_scheme("W8A16"),
    "ct-nvfp4a16": ct_fp4("nvfp4"),
    "ct-nvfp4-w4a4": ct_fp4("nvfp4", w4a4=True),
    "mo-nvfp4": modelopt_scheme("NVFP4"),
    "mo-w4a16-nvfp4": modelopt_scheme("W4A16_NVFP4"),
    "ct-mxfp4a16": ct_fp4("mxfp4"),
}


# -- guards (no Triton, no GPU) -------------------------------------------------------------------

@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(triton_gemv, "triton_installed", lambda: True)


def _verdict(scheme: QuantScheme | None, shapes: Shapes, device: DeviceInfo = H100):
    return BACKENDS[NAME].supports(device, device.capability, shapes, scheme)


AWQ = SCHEMES["mo-w4a16-awq-g128"]

# (accepted side, declined side, words of the decline reason)
GUARD_CASES = [
    ((AWQ, Shapes(64, 256)), (AWQ, Shapes(64, 256), DeviceInfo()), "no CUDA device"),
    ((AWQ, Shapes(64, 256)), (AWQ, Shapes(64, 256), TURING), "capability ≥ 8.0"),
    ((AWQ, Shapes(64, 256)), (None, Shapes(64, 256)), "quantized weights only"),
    ((AWQ, Shapes(64, 256)), (modelopt_scheme("FP8"), Shapes(64, 256)), "integer, NVFP4 and MXFP4"),
    ((AWQ, Shapes(64, 256)), (modelopt_scheme("W4A8_AWQ"), Shapes(64, 256)), "integer, NVFP4 and MXFP4"),
    ((AWQ, Shapes(64, 256)), (ct_int(8, None).model_copy(update={"weights": QuantArgs(
        num_bits=8, type="int", strategy="tensor")}), Shapes(64, 256)), "group or channel"),
    ((SCHEMES["mo-w4a16-awq-g16"], Shapes(64, 256)), (modelopt_scheme("W4A16_AWQ", group_size=48),
                                                       Shapes(64, 256)), "multiple of 32 or 16"),
    ((ct_int(4, 16), Shapes(64, 256)), (ct_int(4, 8), Shapes(64, 256)), "multiple of 32 or 16"),
    ((SCHEMES["ct-w8a16-g128"], Shapes(64, 256)), (ct_int(8, 24), Shapes(64, 256)), "multiple of 16"),
    ((AWQ, Shapes(64, 256, batch=8)), (AWQ, Shapes(64, 256, batch=9)), "batch 9 > 8"),
    # a group as large as K is one scale column, whatever its size
    ((modelopt_scheme("W4A16_AWQ", group_size=48), Shapes(64, 48)), (modelopt_scheme(
        "W4A16_AWQ", group_size=48), Shapes(64, 96)), "got 48"),
]


@pytest.mark.parametrize(("good", "bad", "reason"), GUARD_CASES, ids=[c[2] for c in GUARD_CASES])
def test_guard_both_sides(fake_cuda: None, good: tuple, bad: tuple, reason: str) -> None:
    accepted, declined = _verdict(*good), _verdict(*bad)
    assert accepted.ok, accepted.reason
    assert not declined.ok and reason in declined.reason, declined.reason


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_every_kernel_scheme_is_accepted_at_awkward_shapes(fake_cuda: None, name: str) -> None:
    """N and K that are no multiple of any tile (nor K of the group) are padded, not declined."""
    assert _verdict(SCHEMES[name], Shapes(40, 200, shard_sizes=(24, 16))).ok


def test_triton_missing_is_a_reason_and_registry_stays_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(triton_gemv, "triton_installed", lambda: False)
    v = _verdict(AWQ, Shapes(64, 256))
    assert not v.ok and "Triton is not installed" in v.reason and "[cuda]" in v.reason
    assert NAME in BACKENDS


def test_without_cuda_the_real_verdict_is_no_device() -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert _verdict(AWQ, Shapes(64, 256)).reason == "unavailable: no CUDA device"


@pytest.mark.parametrize(("scheme", "batch", "forced"), [
    (AWQ, 1, NAME), (AWQ, 8, NAME), (AWQ, 9, None), (SCHEMES["ct-nvfp4a16"], 1, NAME),
    (SCHEMES["mo-nvfp4"], None, NAME), (SCHEMES["ct-mxfp4a16"], 4, NAME), (modelopt_scheme("MXFP8"), 1, None),
])
def test_cuda_auto_order_keeps_the_unverified_gemv_behind_the_dequantizing_reference(
        fake_cuda: None, scheme, batch, forced) -> None:
    """Not yet run on a GPU: the auto choice is the dequantizing reference; forcing it works where it supports."""
    shapes = Shapes(64, 256, batch=batch)
    assert select_backend(scheme, shapes, H100).name == "dense_dequant"
    if forced is None:
        with pytest.raises(BackendUnavailableError):
            select_backend(scheme, shapes, H100, backend=NAME)
    else:
        assert select_backend(scheme, shapes, H100, backend=NAME).name == NAME


def test_registry_import_does_not_import_triton() -> None:
    code = "import sys, quantresolve.dispatch as d; assert 'triton_gemv_cuda' in d.BACKENDS; print('triton' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


def test_forcing_it_on_cpu_is_a_clear_error() -> None:

    with pytest.raises(BackendUnavailableError, match=rf"forced backend '{NAME}' cannot run .*no CUDA device"):
        make_linear(AWQ, 256, 64, backend=NAME)


# -- the packed layout and the launch arithmetic (torch only) ---------------------------------------

@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("stripe", [1, 4])
@pytest.mark.parametrize(("n", "k"), [(3, 64), (130, 100), (5, 8), (1, 1000)])
def test_pack_unpack_round_trip_and_slot_positions(bits: int, stripe: int, n: int, k: int) -> None:
    g = torch.Generator().manual_seed(n * k + bits)
    codes = torch.randint(0, 1 << bits, (n, k), generator=g, dtype=torch.int32).to(torch.uint8)
    words = pack_codes(codes, bits=bits, stripe=stripe, fill=3)
    assert words.dtype == torch.int32 and words.shape == (padded_rows(n), padded_words(k, bits))
    assert torch.equal(unpack_codes(words, n, k, bits=bits, stripe=stripe), codes)
    everything = unpack_codes(words, words.shape[0], words.shape[1] * 32 // bits, bits=bits, stripe=stripe)
    assert (everything[n:] == 3).all() and (everything[:, k:] == 3).all()  # padding holds the fill code
    vpw = 32 // bits
    for kw in range(min(words.shape[1], 9)):
        for j in range(vpw):
            e = slot_element(kw, j, stripe, vpw)
            if e < k:
                assert (int(words[0, kw]) & 0xFFFFFFFF) >> (bits * j) & ((1 << bits) - 1) == int(codes[0, e])


@pytest.mark.parametrize("name", ["ct-w4a16-g128", "ct-nvfp4a16", "ct-w8a16-asym-channel", "mo-w4a16-awq-g16"])
def test_repacking_in_row_chunks_equals_repacking_whole(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """``prepare()`` unpacks a large weight a row chunk at a time (bounded memory): same words, scales."""
    from tests.dispatch.test_backends import _random_tensors

    layer = make_linear(SCHEMES[name], 256, 300, backend="per_call_dequant")
    _random_tensors(layer, seed=3)
    layer.finalize()
    group = layer._groups[0][0]
    whole = BACKENDS[NAME].prepare(group)[0]
    monkeypatch.setattr(triton_gemv, "CHUNK_ELEMENTS", 256 * 7)  # 7 rows per chunk
    parts = BACKENDS[NAME].prepare(group)[0]
    assert torch.equal(whole.words, parts.words) and torch.equal(whole.scale, parts.scale)
    assert whole.words.shape == (512, 64)  # 300 rows padded to 512, 256 codes in 32 words padded to 64


@pytest.mark.parametrize(("n", "kw", "cfg"), [
    (4096, 512, GemvConfig(64, 32, 8)), (8192, 3584, GemvConfig(64, 32, 5)), (28672, 1024, GemvConfig(64, 32, 1)),
    (40, 64, GemvConfig(16, 16, 7)), (130, 128, GemvConfig(128, 64, 3)),
])
def test_launch_grid_splits_k_into_equal_whole_tiles(n: int, kw: int, cfg: GemvConfig) -> None:
    (rows, split), per_split = launch_grid(n, kw, cfg)
    assert rows * cfg.block_n >= n > (rows - 1) * cfg.block_n
    assert per_split % cfg.block_kw == 0 and per_split * split == kw and split <= max(1, cfg.split_k)


def test_config_rule_fills_the_device() -> None:
    wide = choose_config("int4", n=8192, k=28672, m=1, sm_count=132)
    assert wide.split_k > 1  # 128 row tiles alone would leave SMs idle
    assert split_for(28672, 1024, 64, 32, 132) <= 2
    assert choose_config("nvfp4", n=4096, k=4096, m=8, sm_count=132).block_n <= 32


# -- the kernels under Triton's interpreter (CPU, subprocess) ---------------------------------------

#: (scheme, out_features (a list = fused shards), in_features, batch); shapes off every tile, and a
#: batch above the GEMV's limit for the dequantize-and-matmul path.
INTERPRETER_CASES = [
    ("ct-w4a16-g128", 64, 256, 1), ("ct-w4a16-g128", 40, 320, 3), ("ct-w4a16-asym-g32", 64, 256, 1),
    ("ct-w4a16-asym-g32", 48, 96, 8), ("ct-w4a16-channel", 64, 200, 2), ("ct-w8a16-g128", 64, 256, 1),
    ("ct-w8a16-asym-channel", 40, 136, 4), ("ct-w4a8-g128", 64, 256, 2), ("mo-w4a16-awq-g128", 64, 256, 1),
    ("mo-w4a16-awq-g16", 48, 128, 2), ("mo-w8a16", 64, 256, 1), ("ct-nvfp4a16", 64, 256, 1),
    ("ct-nvfp4a16", [32, 24], 208, 5), ("ct-nvfp4-w4a4", 64, 256, 2), ("mo-nvfp4", [32, 32], 256, 1),
    ("mo-w4a16-nvfp4", 40, 160, 1), ("mo-w4a16-nvfp4", [24, 40], 96, 2), ("ct-mxfp4a16", 64, 256, 1), ("ct-mxfp4a16", 40, 224, 6),
    ("ct-w4a16-g128", 64, 256, 12), ("ct-nvfp4a16", 40, 160, 9), ("ct-w4a16-asym-g32", 40, 96, 33),
    ("ct-w8a16-g128", 24, 128, 70),
]


def _run_case(scheme_name: str, n: int | list[int], k: int, m: int) -> dict[str, object]:
    """Build the layer on the dequantizing reference, then prepare / apply / rebuild every input
    group through the GEMV backend and compare; and both kernels with the rule's tiles."""
    from dataclasses import replace

    from quantresolve.dispatch.backends.triton_gemv import kernel_launcher
    from quantresolve.dispatch.kernels.gemv_configs import GEMV_MAX_M, PACKED_MAX_M
    from tests.dispatch.test_backends import _random_tensors

    fused = isinstance(n, list)
    # float32 compute: the result is not rounded to bf16 (which the interpreter truncates), so
    # the comparison sees the kernel's own arithmetic
    layer = make_linear(SCHEMES[scheme_name], k, n, backend="per_call_dequant", dtype=torch.float32,
                        shard_names=[f"s{i}" for i in range(len(n))] if fused else None)
    _random_tensors(layer, seed=k + m)
    layer.finalize()
    backend = BACKENDS[NAME]
    x = torch.randn(m, k, generator=torch.Generator().manual_seed(m)).to(torch.bfloat16)
    errs, exact, kernel_errs = [], [], {}
    for group, _ in layer._groups:
        ref = group.transform.apply(x).float() @ group.dense().t()
        dense = group.dense()
        state = backend.prepare(group)
        y = backend.apply(state, x, group)
        assert y.shape == (m, group.n)
        errs.append(float((y.float() - ref).norm() / ref.norm().clamp(min=1e-6)))
        xin = group.transform.apply(x)
        for kernel, most in (("fma", GEMV_MAX_M), ("dot", PACKED_MAX_M)):
            if m <= most:
                cfg = replace(choose_config(state[0].fmt, group.n, k, m, 132), kernel=kernel)
                yk = kernel_launcher(cfg)(xin, state[0], cfg, torch.float32)
                err = float((yk - ref).norm() / ref.norm().clamp(min=1e-6))
                kernel_errs[kernel] = max(kernel_errs.get(kernel, 0.0), err)
        rebuild = backend.rebuild(state, group)
        exact.append(rebuild is not None and torch.equal(rebuild().to(dense.dtype), dense))
    return {"err": max(errs), "rebuild_exact": all(exact), "kernels": kernel_errs}


def _interpreter_main() -> None:  # the subprocess' entry point
    assert os.environ.get("TRITON_INTERPRET") == "1"
    from quantresolve.dispatch.kernels.triton_gemv import patch_interpreter_for_numpy2

    patch_interpreter_for_numpy2()
    results = {}
    for case in INTERPRETER_CASES:
        key = json.dumps(case)
        try:
            results[key] = _run_case(*case)
        except Exception as err:  # reported per case by the parent
            results[key] = {"error": f"{type(err).__name__}: {err}"[:500]}
    print(json.dumps(results))


@pytest.fixture(scope="module")
def interpreted() -> dict[str, dict[str, object]]:
    if not HAS_TRITON:
        pytest.skip("Triton is not installed")
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c",
                          "from tests.dispatch.test_triton_gemv import _interpreter_main; _interpreter_main()"],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", INTERPRETER_CASES, ids=[f"{c[0]}-{c[1]}x{c[2]}-m{c[3]}" for c in INTERPRETER_CASES])
def test_interpreted_kernel_matches_dequantized_reference(interpreted: dict, case: tuple) -> None:
    """float32 decode and accumulation against the float32 dequantized weight: summation order only
    (the backends' shared bound is 2e-2); the rebuild from the packed words reproduces
    ``dequantize()`` bit for bit."""
    result = interpreted[json.dumps(case)]
    assert "error" not in result, result.get("error")
    assert result["err"] < 1e-5, result
    assert result["rebuild_exact"], result
    m = case[3]
    assert set(result["kernels"]) == {k for k, most in (("fma", 8), ("dot", 64)) if m <= most}, result
    assert max(result["kernels"].values(), default=0.0) < 1e-5, result


def test_interpreter_flag_does_not_leak() -> None:
    assert os.environ.get("TRITON_INTERPRET") in (None, "", "0")


# -- on a CUDA device -------------------------------------------------------------------------------

needs_gpu = pytest.mark.skipif(not (torch.cuda.is_available() and HAS_TRITON), reason="needs CUDA and Triton")
GPU_SCHEMES = ["ct-w4a16-g128", "ct-w4a16-asym-g32", "mo-w4a16-awq-g128", "ct-w8a16-g128", "mo-w8a16",
               "ct-nvfp4a16", "ct-nvfp4-w4a4", "mo-w4a16-nvfp4", "ct-mxfp4a16"]


@needs_gpu
@pytest.mark.cuda
@pytest.mark.parametrize("scheme_name", GPU_SCHEMES)
@pytest.mark.parametrize(("n", "k"), [(4096, 4096), (8192, 2048), (2000, 4100)])
@pytest.mark.parametrize("m", [1, 2, 4, 8, 16, 80])
def test_gpu_layer_matches_dequantized_reference(scheme_name: str, n: int, k: int, m: int) -> None:
    """Through the layer: the configuration rule's kernel per batch (80 rows: dequantize + matmul)."""
    from tests.dispatch.test_backends import _random_tensors

    layer = make_linear(SCHEMES[scheme_name], k, n, backend=NAME, device="cuda")
    _random_tensors(layer, seed=3)
    layer.finalize()
    x = torch.randn(m, k, device="cuda").to(torch.bfloat16)
    y, ref = layer(x).float(), layer.reference(x).float()  # reference: the bf16 dequantized weight
    err = float((y - ref).norm() / ref.norm())
    assert err < 1e-2, err


@needs_gpu
@pytest.mark.cuda
@pytest.mark.parametrize("scheme_name", GPU_SCHEMES)
@pytest.mark.parametrize("kernel", ["fma", "dot"])
@pytest.mark.parametrize("m", [1, 3, 8])
def test_gpu_both_kernels_match_at_every_small_batch(scheme_name: str, kernel: str, m: int) -> None:
    from dataclasses import replace

    from quantresolve.dispatch.backends.triton_gemv import kernel_launcher, sm_count
    from tests.dispatch.test_backends import _random_tensors

    n, k = 3000, 2048
    layer = make_linear(SCHEMES[scheme_name], k, n, backend=NAME, device="cuda")
    _random_tensors(layer, seed=5)
    layer.finalize()
    group, state = layer._groups[0]
    x = torch.randn(m, k, device="cuda").to(torch.bfloat16)
    ref = layer.reference(x).float()
    for split in (1, 4):
        cfg = replace(choose_config(state[0].fmt, n, k, m, sm_count(x.device)), kernel=kernel, split_k=split)
        y = kernel_launcher(cfg)(group.transform.apply(x), state[0], cfg, torch.bfloat16).float()
        assert float((y - ref).norm() / ref.norm()) < 1e-2, (cfg.text(), float((y - ref).norm() / ref.norm()))


@needs_gpu
@pytest.mark.cuda
def test_gpu_forced_for_decoding_and_declined_above_its_batch() -> None:
    assert make_linear(AWQ, 4096, 4096, batch=1, device="cuda", backend=NAME).backend == NAME
    assert make_linear(AWQ, 4096, 4096, batch=64, device="cuda").backend == "dense_dequant"
