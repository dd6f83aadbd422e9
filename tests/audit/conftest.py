"""Helpers for the audit tests: copy a real-producer fixture, edit one thing, run the CLI."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from quantresolve.cli.main import main

REPO = Path(__file__).resolve().parents[2]
CHECKPOINTS = REPO / "fixtures" / "checkpoints"
CORPUS = REPO.parent / "shared" / "corpus"

#: name → [dtype, shape, raw bytes]
Tensors = dict[str, list]


def copy_fixture(tmp_path: Path, name: str) -> Path:
    """A writable copy of ``fixtures/checkpoints/<name>`` (without the reference outputs)."""
    src = CHECKPOINTS / name
    if not (src / "config.json").is_file():
        pytest.skip(f"fixture checkpoint {name} not generated")
    dst = tmp_path / name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("reference.safetensors"))
    return dst


def edit_json(path: Path, edit: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def read_tensors(path: Path) -> Tensors:
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    data = raw[8 + length:]
    return {name: [e["dtype"], e["shape"], data[e["data_offsets"][0]:e["data_offsets"][1]]]
            for name, e in header.items() if name != "__metadata__"}


def write_tensors(path: Path, tensors: Tensors) -> None:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name, (dtype, shape, blob) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def edit_tensors(ckpt: Path, edit: Callable[[Tensors], None], shard: str = "model.safetensors") -> None:
    tensors = read_tensors(ckpt / shard)
    edit(tensors)
    write_tensors(ckpt / shard, tensors)


class CliResult:
    def __init__(self, rc: int, out: str, err: str) -> None:
        self.rc, self.out, self.err = rc, out, err

    def json(self) -> dict:
        return json.loads(self.out)

    def codes(self) -> set[str]:
        return {f["code"] for f in self.json()["findings"]}


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    def run(*args: object) -> CliResult:
        capsys.readouterr()
        rc = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(rc, captured.out, captured.err)
    return run


@functools.cache
def corpus_audit(folder: str) -> CliResult:
    """``quantresolve audit ../shared/corpus/FOLDER --format json``, run once per test process.

    Config-only MoE giants take seconds each (the meta-device build, then resolving every expert
    projection), so every corpus test reads this one run instead of auditing again.
    """
    path = CORPUS / folder
    if not path.is_dir():
        pytest.skip(f"corpus folder {folder} not available")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["audit", str(path), "--format", "json"])
    return CliResult(rc, out.getvalue(), err.getvalue())
