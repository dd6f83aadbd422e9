"""Build a real Hugging Face hub cache layout from a fixture checkpoint, for tests that read snapshots.

``huggingface_hub`` stores a repo as ``<cache>/models--ORG--NAME/`` with ``blobs/<sha256>`` (the
file contents, named by their SHA-256), ``refs/<branch>`` (the commit hash a branch points at) and
``snapshots/<commit>/<path>`` — every file there a *relative* symlink into ``../../blobs/``. This
helper lays out exactly that (``make_hf_cache(tmp_path, "ct-w4a16", "org/tiny")``), so tests exercise
the same tree a ``snapshot_download`` leaves behind; hostile variants edit the returned paths.

    >>> import tempfile
    >>> cache = make_hf_cache(Path(tempfile.mkdtemp()), "modelopt-fp8", "org/tiny")   # doctest: +SKIP
    >>> os.readlink(cache.snapshot / "config.json")                                     # doctest: +SKIP
    '../../blobs/5d1c...'
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CHECKPOINTS, FIXTURES

#: Files of a fixture folder that are not part of the checkpoint a user would download.
NOT_DOWNLOADED = frozenset({"reference.safetensors", "FIXTURE.json"})


@dataclass(frozen=True)
class HfCache:
    """Where the pieces of one cached repo are."""

    cache: Path      # HF_HUB_CACHE
    repo: Path       # cache / models--ORG--NAME
    snapshot: Path   # repo / snapshots / <commit>
    commit: str

    def blob(self, name: str) -> Path:
        """The blob a snapshot file links to."""
        return (self.snapshot / name).resolve()


def fixture_source(fixture: str | Path) -> Path:
    """``fixtures/checkpoints/<name>``, ``fixtures/families/<name>/checkpoint``, or a directory path."""
    for candidate in (Path(fixture), CHECKPOINTS / str(fixture), FIXTURES / "families" / str(fixture) / "checkpoint"):
        if (candidate / "config.json").is_file():
            return candidate
    pytest.skip(f"fixture checkpoint {fixture} not generated")
    raise AssertionError  # pragma: no cover


def repo_folder_name(repo_id: str) -> str:
    """``org/name`` → ``models--org--name`` (huggingface_hub's own spelling)."""
    return "models--" + repo_id.replace("/", "--")


def make_hf_cache(tmp_path: Path, fixture: str | Path, repo_id: str, *, cache: Path | None = None,
                  refs: tuple[str, ...] = ("main",), only: tuple[str, ...] | None = None) -> HfCache:
    """Lay out ``fixture`` as the cached repo ``repo_id`` under ``cache`` (default ``tmp_path/hub``), its
    commit named by every branch / tag in ``refs``; ``only`` keeps just those files (a partial snapshot,
    e.g. the ``config.json`` alone that ``AutoConfig`` leaves)."""
    src = fixture_source(fixture)
    cache = cache or tmp_path / "hub"
    repo = cache / repo_folder_name(repo_id)
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.name not in NOT_DOWNLOADED
                   and (only is None or p.relative_to(src).as_posix() in only))
    commit = hashlib.sha1(b"".join(p.relative_to(src).as_posix().encode() + p.read_bytes()
                                   for p in files)).hexdigest()
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    for path in files:
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        blob = repo / "blobs" / sha
        if not blob.exists():
            blob.write_bytes(data)
        link = snapshot / path.relative_to(src)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(exist_ok=True)
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)
    return HfCache(cache=cache, repo=repo, snapshot=snapshot, commit=commit)
