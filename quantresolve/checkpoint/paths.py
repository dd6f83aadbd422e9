"""Containment: a file named by a checkpoint may only live inside the checkpoint.

Shard names come from untrusted JSON (``weight_map`` values) or from directory
listings that may hold symlinks. Before anything is opened, the name is
checked syntactically (no absolute paths, no ``..``, no NUL or backslash) and
then resolved (following every symlink) and required to sit under the
resolved root. Only regular files are accepted, so a symlink to a FIFO or a
device can never block or stream the reader.

One documented allowance: a Hugging Face cache snapshot
(``.../models--org--name/snapshots/<rev>/``) keeps its files as symlinks into
the sibling ``.../models--org--name/blobs/`` directory. When the root has that
shape, the repository's own ``blobs`` directory is an allowed target too::

    >>> import tempfile, os
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "a.safetensors").write_bytes(b"")
    >>> resolve_inside(d, "a.safetensors", allowed_roots(d)).name
    'a.safetensors'
    >>> resolve_inside(d, "../a.safetensors", allowed_roots(d))
    Traceback (most recent call last):
    ...
    quantresolve.errors.CheckpointError: ../a.safetensors: path escapes the checkpoint directory
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from ..errors import CheckpointError


def allowed_roots(root: Path) -> tuple[Path, ...]:
    """Resolved directories a checkpoint rooted at ``root`` may read from.

    >>> allowed_roots(Path("/nonexistent/x")) == (Path("/nonexistent/x"),)
    True
    """
    absolute = Path(os.path.abspath(root))
    roots = [absolute.resolve()]
    # HF cache: <cache>/models--org--name/snapshots/<rev>/file -> ../../blobs/<sha>
    if absolute.parent.name == "snapshots" and absolute.parent.parent.name.startswith(
        ("models--", "datasets--")
    ):
        blobs = absolute.parent.parent / "blobs"
        if blobs.is_dir():
            roots.append(blobs.resolve())
    return tuple(roots)


def check_relative_name(name: object, *, file: str, field: str | None = None) -> str:
    """Refuse a shard name that is not a plain relative path inside the directory."""
    if not isinstance(name, str) or not name:
        raise CheckpointError(
            f"shard name must be a non-empty string, got {name!r}", file=file, field=field
        )
    if "\x00" in name or "\\" in name:
        raise CheckpointError(
            f"shard name {name!r} contains a NUL or backslash", file=file, field=field
        )
    pure = PurePosixPath(name)
    if pure.is_absolute() or os.path.isabs(name):
        raise CheckpointError(f"shard name {name!r} is an absolute path", file=file, field=field)
    if ".." in pure.parts:
        raise CheckpointError(
            f"shard name {name!r} escapes the checkpoint directory", file=file, field=field
        )
    return name


def resolve_inside(root: Path, name: str, roots: tuple[Path, ...]) -> Path:
    """Resolve ``root / name`` through symlinks and require it inside one of ``roots``.

    Raises :class:`CheckpointError` naming ``name`` if the resolved file is
    outside, missing, or not a regular file. Nothing is opened here.
    """
    if os.path.isabs(name) or ".." in PurePosixPath(name).parts:
        raise CheckpointError("path escapes the checkpoint directory", file=name)
    resolved = (root / name).resolve()
    if not any(resolved.is_relative_to(r) for r in roots):
        raise CheckpointError(
            f"resolves to {resolved}, outside the checkpoint directory (symlink escape)", file=name
        )
    try:
        mode = os.stat(resolved).st_mode
    except FileNotFoundError:
        raise CheckpointError("file does not exist", file=name) from None
    except OSError as err:
        raise CheckpointError(f"cannot stat file: {err.strerror}", file=name) from None
    if not stat.S_ISREG(mode):
        raise CheckpointError("not a regular file", file=name)
    return resolved
