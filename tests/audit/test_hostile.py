"""Hostile checkpoints through the CLI: each refused with exit 2 and one line, nothing read outside."""

from __future__ import annotations

import builtins
import io
import json
import os
import struct
from pathlib import Path

import pytest

from .conftest import copy_fixture, read_tensors, write_tensors


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path opened while the test runs (builtins.open, io.open, os.open), resolved."""
    seen: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)):
            seen.append(os.path.realpath(file))
        return real_open(file, *args, **kwargs)

    def spy_os_open(path, *args, **kwargs):
        seen.append(os.path.realpath(path))
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(io, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    return seen


def _outside(tmp_path: Path, src: Path) -> Path:
    """A valid safetensors file outside the checkpoint directory (a read of it would be a leak)."""
    target = tmp_path / "outside" / "secret.safetensors"
    target.parent.mkdir()
    write_tensors(target, read_tensors(src / "model.safetensors"))
    return target


def _refused(result, *words: str) -> None:
    assert result.rc == 2, result.out
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("quantresolve audit: error:"), result.err
    for word in words:
        assert word in lines[0], lines[0]


def test_path_traversal_in_index(tmp_path, cli, opened):
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    secret = _outside(tmp_path, ckpt)
    names = read_tensors(ckpt / "model.safetensors")
    weight_map = {n: "model.safetensors" for n in names}
    weight_map["lm_head.weight"] = "../outside/secret.safetensors"
    (ckpt / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    opened.clear()
    _refused(cli("audit", ckpt), "escapes")
    assert opened and str(secret.resolve()) not in opened


def test_symlink_escape(tmp_path, cli, opened):
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    secret = _outside(tmp_path, ckpt)
    (ckpt / "model.safetensors").unlink()
    (ckpt / "model.safetensors").symlink_to(secret)
    opened.clear()
    _refused(cli("audit", ckpt), "model.safetensors")
    assert opened and str(secret.resolve()) not in opened


def test_lying_header_length(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    path = ckpt / "model.safetensors"
    raw = path.read_bytes()
    path.write_bytes(struct.pack("<Q", 2**40) + raw[8:])
    _refused(cli("audit", ckpt, "--format", "json"), "model.safetensors")


def test_truncated_file(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    path = ckpt / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    _refused(cli("audit", ckpt, "--format", "json"), "model.safetensors")


def test_duplicate_tensor_names(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    path = ckpt / "model.safetensors"
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = raw[8:8 + length].decode().rstrip()
    first = json.loads(header)
    name = next(n for n in first if n != "__metadata__")
    entry = json.dumps(first[name])
    doubled = header[:-1] + f", {json.dumps(name)}: {entry}" + "}"
    doubled += " " * (-len(doubled) % 8)
    path.write_bytes(struct.pack("<Q", len(doubled)) + doubled.encode() + raw[8 + length:])
    _refused(cli("audit", ckpt, "--format", "json"), "duplicate")


def test_duplicate_names_across_shards(tmp_path, cli):
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    tensors = read_tensors(ckpt / "model.safetensors")
    write_tensors(ckpt / "extra.safetensors", {"lm_head.weight": tensors["lm_head.weight"]})
    (ckpt / "model.safetensors").rename(ckpt / "a.safetensors")
    _refused(cli("audit", ckpt, "--format", "json"), "duplicate")


def test_malformed_fused_experts_are_a_finding(tmp_path, cli):
    """gpt-oss-style fused expert tensors of the wrong rank: one MoE unit whose tensors no recogniser accepts."""
    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    tensors = read_tensors(ckpt / "model.safetensors")
    tensors["model.layers.0.mlp.experts.gate_up_proj_blocks"] = ["U8", [2, 4], b"\x00" * 8]
    write_tensors(ckpt / "model.safetensors", tensors)
    result = cli("audit", ckpt, "--format", "json")
    assert result.rc == 0, result.err
    unknown = [f for f in result.json()["findings"] if f["code"] == "unknown-tensor-format"]
    assert [f["members"] for f in unknown] == [["model.layers.0.mlp.experts"]]
    assert "gate_up_proj_blocks U8 [2, 4]: expected U8 [experts, rows, K/32, 16]" in unknown[0]["message"]


def test_missing_path(tmp_path, cli):
    _refused(cli("audit", tmp_path / "nope"))
