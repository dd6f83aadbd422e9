"""Build a real Hugging Face cache layout from a checkpoint directory (for locator tests).

What ``huggingface_hub.snapshot_download`` leaves behind::

    <cache>/models--ORG--NAME/blobs/<sha256 of the file>
    <cache>/models--ORG--NAME/snapshots/<commit>/<file> -> ../../blobs/<sha256>   (relative symlinks)
    <cache>/models--ORG--NAME/refs/<branch or tag>                                (the commit, no newline)

(A helper on another branch writes ``tests/hf_cache.py`` for the containment tests; the two
builders do the same thing and can be merged.)

    >>> import tempfile
    >>> cache = Path(tempfile.mkdtemp())
    >>> snap = cache_checkpoint(cache, "org/name", Path("fixtures/checkpoints/modelopt-mixed"))
    >>> snap.parent.name, (snap / "config.json").is_symlink(), (cache / "models--org--name/refs/main").read_text() == snap.name
    ('snapshots', True, True)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_checkpoint(cache: Path, repo_id: str, source: Path, *, refs: tuple[str, ...] = ("main",),
                     commit: str | None = None, only: tuple[str, ...] | None = None) -> Path:
    """Put the files of ``source`` (or just ``only``) into ``cache`` as ``repo_id``; returns the snapshot dir."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    names = sorted(p.name for p in source.iterdir() if p.is_file() and (only is None or p.name in only))
    commit = commit or hashlib.sha1(("".join(names) + repo_id).encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for name in names:
        data = (source / name).read_bytes()
        blob = hashlib.sha256(data).hexdigest()
        (repo / "blobs" / blob).write_bytes(data)
        link = snapshot / name
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(Path("..", "..", "blobs", blob), link)
    (repo / "refs").mkdir(exist_ok=True)
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)
    return snapshot
