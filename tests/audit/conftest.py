"""Helpers for the audit tests: copy a real-producer fixture, edit one thing, run the CLI."""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from quantresolve.cli.main import main

REPO = Path(__file__).resolve().parents[2]
CHECKPOINTS = REPO / "fixtures" / "checkpoints"
CORPUS = REPO.parent / "shared" / "corpus"
BENCHMARK = REPO / "benchmarks" / "audit_scale_data.py"

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
        self._json: dict | None = None

    def json(self) -> dict:
        if self._json is None:  # a config-only corpus report is tens of MB: parse it once
            self._json = json.loads(self.out)
        return self._json

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


def audit_json(path: Path) -> CliResult:
    """``quantresolve audit PATH --format json`` in this process, its output captured (no fixture needed)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["audit", str(path), "--format", "json"])
    return CliResult(rc, out.getvalue(), err.getvalue())


class CorpusAudits:
    """``quantresolve audit ../shared/corpus/FOLDER --format json``, run once per test run.

    Config-only MoE giants take seconds each (the meta-device build, then resolving every expert
    projection; DeepSeek-V4-Pro tens of seconds on a loaded 2-core machine), and several test files
    read the same folders (:mod:`.test_every_model`, :mod:`.test_expected_findings`,
    :mod:`.test_corpus`). Each folder is audited once per process and, under pytest-xdist, once per
    run: the first worker to ask writes the result next to the workers' temporary directories, under a
    file lock, and the others read it.
    """

    def __init__(self, shared: Path | None) -> None:
        self.shared = shared
        self.memo: dict[str, CliResult] = {}

    def __call__(self, folder: str) -> CliResult:
        hit = self.memo.get(folder)
        if hit is None:
            path = CORPUS / folder
            if not path.is_dir():
                pytest.skip(f"corpus folder {folder} not available")
            hit = self.memo[folder] = audit_json(path) if self.shared is None else self._shared(folder, path)
        return hit

    def _shared(self, folder: str, path: Path) -> CliResult:
        from filelock import FileLock  # huggingface_hub's own dependency

        assert self.shared is not None
        status, out = self.shared / f"{folder}.status.json", self.shared / f"{folder}.out"
        with FileLock(str(self.shared / f"{folder}.lock")):
            if status.is_file():  # the output as written (tens of MB: not re-encoded inside another JSON)
                data = json.loads(status.read_text(encoding="utf-8"))
                return CliResult(data["rc"], out.read_text(encoding="utf-8"), data["err"])
            result = audit_json(path)
            out.write_text(result.out, encoding="utf-8")
            status.write_text(json.dumps({"rc": result.rc, "err": result.err}), encoding="utf-8")
            return result


@pytest.fixture(scope="session")
def corpus_audit(tmp_path_factory: pytest.TempPathFactory) -> CorpusAudits:
    """:class:`CorpusAudits` for this run (shared between xdist workers through their common temporary root)."""
    shared = None
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = tmp_path_factory.getbasetemp().parent / "corpus-audits"
        shared.mkdir(exist_ok=True)
    return CorpusAudits(shared)


@pytest.fixture(scope="session")
def deepseek(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The DeepSeek-V3 layout (exclude list of nvidia/DeepSeek-V3.1-NVFP4 when the corpus is there, else a
    summary of it; 4 experts per layer): 62 layers, routers built unquantized (one info group of 58),
    KV-cache scales, headers (parameters known)."""
    path = tmp_path_factory.mktemp("deepseek")
    bench = runpy.run_path(str(BENCHMARK))
    bench["write_synthetic_checkpoint"](path, bench["CONFIG"], bench["load_quant_config"](), shards=2, experts=4)
    return path
