"""`quantresolve kernels` lists every backend with its verdict and reason."""

from __future__ import annotations

import json

import pytest

from quantresolve.cli.main import main
from quantresolve.dispatch import BACKENDS

from .machine import as_cpu

pytestmark = pytest.mark.filterwarnings("ignore")


def test_json_lists_every_backend(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    as_cpu(monkeypatch, avx512=False)  # torch's int4pack is the choice without AVX-512 BF16
    assert main(["kernels", "--scheme", "int4_awq", "--shape", "4096x4096", "--batch", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["algo"] == "W4A16_AWQ" and out["selected"] == "int4pack_cpu"
    assert [r["backend"] for r in out["backends"]] == list(BACKENDS)
    by = {r["backend"]: r for r in out["backends"]}
    assert by["scaled_mm_cuda"]["reason"] == "unavailable: no CUDA device"
    assert by["int4pack_cpu"]["ok"] and by["int4pack_cpu"]["selected"]


def test_ct_preset_and_guard_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kernels", "--scheme", "W8A16", "--producer", "compressed-tensors", "--shape", "40x200"]) == 0
    text = capsys.readouterr().out
    assert "W8A16 (compressed-tensors:pack-quantized" in text
    assert "needs int8 per-channel scales, got int8 group" in text
    assert "selected: dense_dequant" in text


def test_bnb_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kernels", "--scheme", "BNB_NF4", "--shape", "48x128"]) == 0
    assert "needs N % 32 == 0 (N=48)" in capsys.readouterr().out


def test_bad_shape_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kernels", "--scheme", "NVFP4", "--shape", "4096"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--shape" in err[0]


def test_unknown_preset_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kernels", "--scheme", "W9A9", "--producer", "compressed-tensors", "--shape", "8x8"]) == 2
    assert "W9A9" in capsys.readouterr().err
