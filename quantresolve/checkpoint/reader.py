"""``read_checkpoint``: catalogue a checkpoint directory's tensors from headers only.

Layouts, tried in this order:

1. ``model.safetensors.index.json`` present: its ``weight_map`` names every
   tensor and shard. If *none* of the named shards is present the catalog is
   built from names alone (``has_headers=False``); if some are present, every
   one must be, and each shard header must contain exactly the tensors the
   index assigns to it (extra header tensors are kept, with a warning).
2. ``model.safetensors`` alone.
3. Any ``*.safetensors`` files (sorted by name), no index.
4. ``pytorch_model.bin.index.json`` alone: its names only (``has_headers=False``); the pickled
   ``.bin`` shards are never opened.

The directory and every file name are untrusted: names are checked for
containment before anything is opened (:class:`~quantresolve.util.containment.Confinement`:
Hugging Face cache snapshots included), headers are capped and
validated (:mod:`.header`), and duplicate tensor names (across shards, or as
duplicate JSON keys) are errors. Where the shard headers come from is a
:class:`ShardSource`: the files next to the index (:class:`LocalShards`, the default,
one shard at a time) or a remote repository read with HTTP range requests
(:class:`~quantresolve.checkpoint.remote.RemoteShards`); the index and every header go
through the same validation either way. ``on_shard(done, total, name)`` is called
after each header so a CLI can draw progress::

    >>> import tempfile
    >>> from safetensors.numpy import save_file
    >>> import numpy as np
    >>> d = Path(tempfile.mkdtemp())
    >>> save_file({"lm_head.weight": np.zeros((4, 2), np.float32)}, d / "model.safetensors")
    >>> cat = read_checkpoint(d)
    >>> cat.tensors["lm_head.weight"].dtype, cat.has_headers, cat.shards
    ('F32', True, ('model.safetensors',))
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from huggingface_hub.constants import SAFETENSORS_INDEX_FILE, SAFETENSORS_SINGLE_FILE

from ..errors import CheckpointError, NoTensorFilesError
from ..util.containment import Confinement, check_relative_name
from ..util.gcpause import gc_paused
from .catalog import CheckpointCatalog, TensorInfo
from .header import MAX_HEADER_BYTES, ShardHeader, read_shard_header
from .jsonutil import strict_loads

#: The index of pickled PyTorch shards: read for its names only, its shards are never opened.
PYTORCH_INDEX_FILE = "pytorch_model.bin.index.json"

#: Progress hook: ``on_shard(done, total, shard_name)`` after each header is read.
ShardCallback = Callable[[int, int, str], None]


def _read_index(box: Confinement, file: str = SAFETENSORS_INDEX_FILE) -> tuple[dict[str, str], dict[str, Any]]:
    """Parse the index: (tensor → shard name, metadata). Every shard name is checked, nothing opened."""
    path = box.locate(file)
    assert path is not None
    if os.stat(path).st_size > MAX_HEADER_BYTES:
        raise CheckpointError(f"index larger than {MAX_HEADER_BYTES} bytes", file=file)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"cannot read file: {err.strerror}", file=file) from None
    index = strict_loads(raw, file=file, what="index")
    if not isinstance(index, dict):
        raise CheckpointError("index must be a JSON object", file=file)
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict):
        raise CheckpointError(
            "weight_map must be an object of tensor name → shard file",
            file=file,
            field="weight_map",
        )
    metadata = index.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise CheckpointError("metadata must be an object", file=file, field="metadata")
    try:
        shards: set[str] | None = set(weight_map.values())
    except TypeError:  # an unhashable (list/object) shard name
        shards = None
    if shards is None or not all(type(s) is str for s in shards):
        for tensor, shard in weight_map.items():  # slow path: name the first bad entry
            check_relative_name(shard, file=file, field=f"weight_map[{tensor!r}]")
    for shard in sorted(shards or ()):
        try:
            check_relative_name(shard, file=file)
        except CheckpointError:
            tensor = next(t for t, s in weight_map.items() if s == shard)
            check_relative_name(shard, file=file, field=f"weight_map[{tensor!r}]")
    if "" in weight_map:
        raise CheckpointError("empty tensor name", file=file, field="weight_map")
    return weight_map, metadata


class ShardSource(Protocol):
    """Where a checkpoint's shard headers are read from (the index and configs are local files)."""

    def exists(self, name: str) -> bool:
        """Whether shard ``name`` (relative to the checkpoint root) exists."""
        ...

    def listing(self) -> list[str]:
        """Names of the ``*.safetensors`` files at the root, sorted."""
        ...

    def read_headers(self, shards: Sequence[str], on_shard: ShardCallback | None) -> list[ShardHeader]:
        """The validated header of every shard in ``shards``, in that order."""
        ...


class LocalShards:
    """Shard files inside a local checkpoint directory, every name contained
    (:class:`~quantresolve.util.containment.Confinement`)."""

    def __init__(self, box: Confinement) -> None:
        self.box = box

    def exists(self, name: str) -> bool:
        return self.box.present(name)

    def listing(self) -> list[str]:
        return sorted(e.name for e in os.scandir(self.box.root) if e.name.endswith(".safetensors"))

    def read_headers(self, shards: Sequence[str], on_shard: ShardCallback | None) -> list[ShardHeader]:
        # Resolve every shard before reading any, so a hostile name fails fast and nothing is read.
        paths = [self.box.locate(shard) for shard in shards]
        headers = []
        for done, (shard, path) in enumerate(zip(shards, paths, strict=True), start=1):
            headers.append(read_shard_header(path, shard))  # type: ignore[arg-type]
            if on_shard is not None:
                on_shard(done, len(shards), shard)
        return headers


def _merge(headers: list[ShardHeader]) -> dict[str, TensorInfo]:
    merged: dict[str, TensorInfo] = {}
    for header in headers:
        clash = merged.keys() & header.tensors.keys()
        if clash:
            name = min(clash)
            raise CheckpointError(
                f"tensor {name!r} also appears in {merged[name].file}: duplicate tensor name across shards",
                file=header.file,
            )
        merged.update(header.tensors)
    return merged


def _check_against_index(
    weight_map: Mapping[str, str], tensors: dict[str, TensorInfo]
) -> list[str]:
    if {name: info.file for name, info in tensors.items()} == weight_map:
        return []  # fast path: the index and the headers agree exactly
    warnings = []
    for name, shard in weight_map.items():
        info = tensors.get(name)
        if info is None:
            raise CheckpointError(
                f"index lists tensor {name!r} in {shard} but that shard's header does not contain it",
                file=SAFETENSORS_INDEX_FILE,
                field=f"weight_map[{name!r}]",
            )
        if info.file != shard:
            raise CheckpointError(
                f"index puts tensor {name!r} in {shard} but it is stored in {info.file}",
                file=SAFETENSORS_INDEX_FILE,
                field=f"weight_map[{name!r}]",
            )
    if len(tensors) != len(weight_map):
        extra = sorted(set(tensors) - weight_map.keys())
        warnings.append(
            f"{len(extra)} tensor(s) in shard headers are missing from {SAFETENSORS_INDEX_FILE}, "
            f"e.g. {extra[0]!r} in {tensors[extra[0]].file}"
        )
    return warnings


def _catalog_from_index(
    root: Path,
    box: Confinement,
    source: ShardSource,
    on_shard: ShardCallback | None,
    file: str = SAFETENSORS_INDEX_FILE,
) -> CheckpointCatalog:
    weight_map, metadata = _read_index(box, file)
    shards = sorted(set(weight_map.values()))
    # Pickled shards are never opened: their index gives names only.
    present = [s for s in shards if source.exists(s)] if file == SAFETENSORS_INDEX_FILE else []
    if not present:
        # Index-only directory: names and shard assignment, nothing else.
        tensors = {n: TensorInfo(n, None, None, weight_map[n], None) for n in sorted(weight_map)}
        total = metadata.get("total_size")
        return CheckpointCatalog(
            root,
            MappingProxyType(tensors),
            False,
            tuple(shards),
            MappingProxyType(metadata),
            total if type(total) is int else None,
        )
    missing = [s for s in shards if s not in present]
    if missing:
        raise CheckpointError(
            f"index names shard {missing[0]!r}, which does not exist"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
            file=SAFETENSORS_INDEX_FILE,
            field="weight_map",
        )
    tensors = _merge(source.read_headers(shards, on_shard))
    warnings = _check_against_index(weight_map, tensors)
    return _finish(root, tensors, shards, metadata, warnings)


def _finish(
    root: Path,
    tensors: dict[str, TensorInfo],
    shards: list[str],
    metadata: Mapping[str, Any],
    warnings: list[str],
) -> CheckpointCatalog:
    ordered = {name: tensors[name] for name in sorted(tensors)}
    total = sum(t.nbytes for t in ordered.values())  # type: ignore[misc]
    return CheckpointCatalog(
        root,
        MappingProxyType(ordered),
        True,
        tuple(shards),
        MappingProxyType(dict(metadata)),
        total,
        tuple(warnings),
    )


def read_checkpoint(
    path: str | os.PathLike[str],
    on_shard: ShardCallback | None = None,
    *,
    shards: ShardSource | None = None,
) -> CheckpointCatalog:
    """Catalogue the checkpoint at ``path`` (a directory, or one ``.safetensors`` file).

    ``shards`` says where the shard headers come from (default: the files in ``path``);
    the index is always read from ``path``. Raises
    :class:`~quantresolve.errors.CheckpointError` naming the offending file for anything
    unreadable or hostile; never reads outside the directory.
    """
    with gc_paused():
        return _read_checkpoint(Path(path), on_shard, shards)


def _read_checkpoint(
    given: Path, on_shard: ShardCallback | None, source: ShardSource | None
) -> CheckpointCatalog:
    if given.is_file() and given.suffix == ".safetensors":
        root, names = given.parent, [given.name]
    elif given.is_dir():
        root, names = given, []
    else:
        raise CheckpointError("not a checkpoint directory or .safetensors file", file=str(given))
    box = Confinement.of(root)
    source = source if source is not None else LocalShards(box)
    if not names:
        if box.present(SAFETENSORS_INDEX_FILE):
            return _catalog_from_index(root, box, source, on_shard)
        if source.exists(SAFETENSORS_SINGLE_FILE):
            names = [SAFETENSORS_SINGLE_FILE]
        else:
            names = source.listing()
        if not names and box.present(PYTORCH_INDEX_FILE):
            return _catalog_from_index(root, box, source, on_shard, PYTORCH_INDEX_FILE)
        if not names:
            raise NoTensorFilesError(
                f"no {SAFETENSORS_INDEX_FILE} and no *.safetensors files", file=str(given)
            )
    tensors = _merge(source.read_headers(names, on_shard))
    return _finish(root, tensors, names, {}, [])
