"""Helpers for the checkpoint tests: raw safetensors writers and an open() recorder."""

from __future__ import annotations

import builtins
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.checkpoint.ckpt_helpers import write_shard


class OpenRecorder:
    """Records every path opened through builtins.open, io.open and os.open."""

    def __init__(self) -> None:
        self.paths: list[Path] = []

    def start(self) -> None:
        """Forget what the test's own setup opened."""
        self.paths.clear()

    def outside(self, root: Path) -> list[Path]:
        real = root.resolve()
        return [p for p in self.paths if not p.is_relative_to(real)]


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenRecorder]:
    recorder = OpenRecorder()
    real_open, real_io_open, real_os_open = builtins.open, io.open, os.open

    def _record(file: object) -> None:
        if isinstance(file, (str, bytes, os.PathLike)):
            recorder.paths.append(Path(os.fsdecode(file)).resolve())

    def fake_open(file, *args, **kwargs):
        _record(file)
        return real_open(file, *args, **kwargs)

    def fake_io_open(file, *args, **kwargs):
        _record(file)
        return real_io_open(file, *args, **kwargs)

    def fake_os_open(path, *args, **kwargs):
        _record(path)
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_io_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    yield recorder


@pytest.fixture
def outside_secret(tmp_path: Path) -> Path:
    """A valid safetensors file outside the checkpoint directory (which is tmp_path / 'ckpt')."""
    return write_shard(tmp_path / "outside" / "secret.safetensors", {"secret.weight": ("F32", [2])})


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    root = tmp_path / "ckpt"
    root.mkdir()
    return root
