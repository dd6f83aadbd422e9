"""Containment: every file a checkpoint names is read from inside that checkpoint, and only there.

File names come from untrusted places — an index's ``weight_map`` values, a directory listing
full of symlinks, the fixed names ``config.json`` / ``hf_quant_config.json`` that a hostile
checkpoint may make symlinks to anything. Every read of the config reader, the profile chooser,
the header reader and the tensor streamer goes through :meth:`Confinement.locate`, which:

1. checks the name syntactically (a plain relative path: not absolute, no ``..``, no NUL or
   backslash);
2. tells *absent* (nothing at that path, not even a dangling link: ``None`` when the file is
   optional) from *present but unusable* — a directory, a FIFO, a dangling link or a symlink
   loop in the place of ``config.json`` is an error naming the file, never "no config";
3. resolves every symlink and requires the target inside the checkpoint's *area* and to be a
   regular file (a FIFO or a device could block or stream the reader).

The area is the resolved checkpoint directory, with one allowance: a Hugging Face cache
snapshot. ``huggingface_hub`` keeps a repo as ``<cache>/models--ORG--NAME/{blobs,refs,snapshots}``
and every file of ``snapshots/<rev>/`` is a relative symlink into ``../../blobs/<sha256>``. When
the (resolved) directory is such a snapshot, the area is that repo's own folder
``models--ORG--NAME/``: a link into its blobs is read, a link to another repo's blobs, out of the
cache, or to ``/etc/passwd`` is refused like any escape. A directory that *looks* like a snapshot
(``.../models--ORG--NAME/snapshots/<rev>`` as given) but is itself a symlink out of that repo
folder is refused outright: huggingface_hub never makes one, and following it would move the
allowance to wherever it points. A plain symlink *to* a snapshot (``./my-model -> <cache>/...``)
is fine: the resolved directory is the snapshot, and its repo folder is the area::

    >>> import tempfile
    >>> repo = Path(tempfile.mkdtemp()) / "models--org--tiny"
    >>> (repo / "blobs").mkdir(parents=True); (repo / "snapshots" / "abc").mkdir(parents=True)
    >>> _ = (repo / "blobs" / "0f1e").write_text("{}")
    >>> (repo / "snapshots" / "abc" / "config.json").symlink_to("../../blobs/0f1e")
    >>> box = Confinement.of(repo / "snapshots" / "abc")
    >>> box.area.name, box.locate("config.json").name
    ('models--org--tiny', '0f1e')
    >>> box.locate("generation_config.json", required=False) is None
    True
    >>> box.locate("../config.json")
    Traceback (most recent call last):
    ...
    quantresolve.errors.CheckpointError: ../config.json: name '../config.json' escapes the checkpoint directory
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from quantresolve.errors import CheckpointError, QuantResolveError

#: How a Hugging Face cache names a model repo's folder (``models--ORG--NAME``).
HF_REPO_PREFIX = "models--"
#: The folder of a repo's revisions inside it.
HF_SNAPSHOTS = "snapshots"

ErrorType = type[QuantResolveError]


def check_relative_name(name: object, *, file: str, field: str | None = None,
                        error: ErrorType = CheckpointError) -> str:
    """``name`` if it is a plain relative path inside a directory, else ``error`` naming ``file``/``field``.

        >>> check_relative_name("/etc/passwd", file="model.safetensors.index.json", field="weight_map['x']")
        Traceback (most recent call last):
        ...
        quantresolve.errors.CheckpointError: model.safetensors.index.json: weight_map['x']: name '/etc/passwd' is an absolute path
    """
    if not isinstance(name, str) or not name:
        raise error(f"file name must be a non-empty string, got {name!r}", file=file, field=field)
    if "\x00" in name or "\\" in name:
        raise error(f"name {name!r} contains a NUL or backslash", file=file, field=field)
    pure = PurePosixPath(name)
    if pure.is_absolute() or os.path.isabs(name):
        raise error(f"name {name!r} is an absolute path", file=file, field=field)
    if ".." in pure.parts:
        raise error(f"name {name!r} escapes the checkpoint directory", file=file, field=field)
    return name


def _hf_repo(path: Path) -> Path | None:
    """``.../models--ORG--NAME`` when ``path`` is ``.../models--ORG--NAME/snapshots/<rev>`` (by its spelling)."""
    if path.parent.name == HF_SNAPSHOTS and path.parent.parent.name.startswith(HF_REPO_PREFIX):
        return path.parent.parent
    return None


def _real(path: Path, *, file: str, error: ErrorType) -> Path:
    """``path`` with every symlink resolved; a loop or a dangling link is ``error`` naming ``file``."""
    try:
        return Path(os.path.realpath(path, strict=True))
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise error("symlink loop", file=file) from None
        if err.errno == errno.ENOENT:
            what = "dangling symlink" if os.path.islink(path) else "no such file or directory"
            raise error(what, file=file) from None
        raise error(f"cannot resolve: {err.strerror or err}", file=file) from None


@dataclass(frozen=True)
class Confinement:
    """A checkpoint directory and the resolved folder (``area``) every read from it must stay inside."""

    root: Path
    area: Path
    hf_snapshot: bool = False

    @classmethod
    def of(cls, root: str | os.PathLike[str], *, error: ErrorType = CheckpointError) -> Confinement:
        """The confinement of the checkpoint directory ``root`` (see the module docstring for the rules)."""
        given = Path(os.path.abspath(root))
        real = _real(given, file=str(root), error=error)
        if not real.is_dir():
            raise error("not a directory", file=str(root))
        claimed = _hf_repo(given)
        if claimed is not None:
            repo_real = Path(os.path.realpath(claimed))
            if not real.is_relative_to(repo_real):
                raise error(f"Hugging Face snapshot directory resolves to {real}, outside its repo's cache "
                            f"folder {claimed}: a snapshot directory must not be a symlink", file=str(root))
        repo = _hf_repo(real)
        return cls(root=given, area=repo if repo is not None else real, hf_snapshot=repo is not None)

    def where(self) -> str:
        """The area in words, for messages."""
        return (f"the Hugging Face cache repo folder {self.area}" if self.hf_snapshot
                else "the checkpoint directory")

    def locate(self, name: str, *, required: bool = True, field: str | None = None,
               error: ErrorType = CheckpointError) -> Path | None:
        """The resolved, regular file ``root/name`` inside the area; ``None`` when absent and not ``required``.

        Absent means nothing at all at that path. Anything there that cannot be read as a regular file
        inside the area (a directory, a loop, a dangling link, an escape) is ``error`` naming ``name``.
        """
        check_relative_name(name, file=name, field=field, error=error)
        path = self.root / name
        if not os.path.lexists(path):
            if required:
                raise error("file does not exist", file=name, field=field)
            return None
        lexical = Path(os.path.realpath(path))  # non-strict: where the links point, even when dangling
        if not lexical.is_relative_to(self.area):
            raise error(f"resolves to {lexical}, outside {self.where()} (symlink escape)", file=name, field=field)
        resolved = _real(path, file=name, error=error)
        if not resolved.is_relative_to(self.area):  # pragma: no cover - lexical check above covers it
            raise error(f"resolves to {resolved}, outside {self.where()}", file=name, field=field)
        try:
            mode = os.stat(resolved).st_mode
        except OSError as err:
            raise error(f"cannot stat file: {err.strerror}", file=name, field=field) from None
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise error(f"{kind}, expected a file", file=name, field=field)
        return resolved

    def present(self, name: str) -> bool:
        """Is anything at ``root/name`` (a file, a directory, even a dangling or looping link)?"""
        return os.path.lexists(self.root / name)


__all__ = ["HF_REPO_PREFIX", "HF_SNAPSHOTS", "Confinement", "check_relative_name"]
