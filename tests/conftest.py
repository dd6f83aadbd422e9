"""Shared test helpers: paths to the repo, the shared corpus and the fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
FIXTURES = REPO / "fixtures"
CHECKPOINTS = FIXTURES / "checkpoints"


def corpus_dir(name: str) -> Path:
    """A corpus folder, or skip the test when ../shared/corpus is absent."""
    path = CORPUS / name
    if not path.is_dir():
        pytest.skip(f"corpus folder {name} not available")
    return path


def corpus_folders() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.is_dir()) if CORPUS.is_dir() else []


def checkpoint_dir(name: str) -> Path:
    """A generated fixture checkpoint, or skip when it has not been generated."""
    path = CHECKPOINTS / name
    if not (path / "config.json").is_file():
        pytest.skip(f"fixture checkpoint {name} not generated")
    return path


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path
