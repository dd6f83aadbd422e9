"""What a checkpoint argument names: a local path, a Hugging Face cache snapshot, or a hub repository.

``audit``, ``inspect``, ``resolve`` and ``run`` take one argument, decided in this order:

1. **an existing local path wins** — a checkpoint directory, one ``.safetensors`` file, or a
   snapshot directory inside the cache (``.../models--org--name/snapshots/<commit>``). A local
   directory that happens to be spelled like a repository id (``org/name``) is that directory:
   the path is checked first, so an existing file or folder is never shadowed by the hub;
2. ``org/name[@revision]`` or ``hf://org/name[@revision]`` — **the local Hugging Face cache**,
   through huggingface_hub's own API (``try_to_load_from_cache``, then ``scan_cache_dir``;
   ``HF_HUB_CACHE`` / ``HF_HOME`` as huggingface_hub reads them). The revision is a branch or
   tag (``refs/<name>`` in the cache) or a commit hash; none means ``main``. A cached snapshot
   is used when it is *complete* (``config.json`` and every shard the index names, or a
   ``*.safetensors`` file without an index); an incomplete one (e.g. only the ``config.json``
   that ``AutoConfig`` fetched) is used only where the hub is not an option;
3. **the hub, headers only** (``remote=True``: ``audit``, ``inspect``, ``resolve``; never
   ``run``), unless ``HF_HUB_OFFLINE=1``: the metadata files are fetched into a temporary
   directory (removed when the ``with`` block ends) and the shard headers are read with HTTP
   range requests (:mod:`.remote`). Nothing is written to the cache.

Anything else is one :class:`~quantresolve.errors.SourceError` line naming the argument:
not a path and not a repository id, not cached while offline, a missing / private / gated
repository, an unknown revision, an unreachable host::

    >>> parse_repo_ref("hf://nvidia/DeepSeek-V3.1-NVFP4@main")
    ('nvidia/DeepSeek-V3.1-NVFP4', 'main')
    >>> parse_repo_ref("nvidia/DeepSeek-V3.1-NVFP4"), parse_repo_ref("./ckpt")
    (('nvidia/DeepSeek-V3.1-NVFP4', None), None)
    >>> import tempfile
    >>> with locate(tempfile.mkdtemp(suffix="-ckpt")) as where:
    ...     where.kind, where.path.name.endswith("-ckpt")
    ('local', True)
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from huggingface_hub.constants import SAFETENSORS_INDEX_FILE, SAFETENSORS_SINGLE_FILE

from ..errors import SourceError
from ..util.containment import HF_REPO_PREFIX, HF_SNAPSHOTS
from .reader import PYTORCH_INDEX_FILE, ShardSource

SourceKind = Literal["local", "hf-cache", "hub"]

#: Files a checkpoint is described by when no caller says more (callers add the producers' sidecars).
DEFAULT_FILES: tuple[str, ...] = ("config.json",)
_HF = "hf://"


@dataclass(frozen=True)
class Location:
    """Where a checkpoint argument was found.

    ``path`` is a local directory (or ``.safetensors`` file) holding the checkpoint's metadata
    files; for ``kind="hub"`` a temporary directory with the fetched ones, and ``shards`` reads
    the shard headers remotely. ``commit`` is the resolved commit of a cached or remote repository.
    """

    argument: str
    kind: SourceKind
    path: Path
    repo_id: str | None = None
    revision: str | None = None
    commit: str | None = None
    endpoint: str | None = None
    shards: ShardSource | None = field(default=None, compare=False, repr=False)

    @property
    def display(self) -> str:
        """How reports name the checkpoint: the path, or ``org/name@revision``."""
        if self.repo_id is None:
            return str(self.path)
        return f"{self.repo_id}@{self.revision or 'main'}"

    def to_json(self) -> dict[str, Any]:
        """The report's ``source`` object."""
        return {"kind": self.kind, "path": str(self.path) if self.kind != "hub" else None,
                "repo_id": self.repo_id, "revision": self.revision, "commit": self.commit,
                "endpoint": self.endpoint}


def parse_repo_ref(argument: str) -> tuple[str, str | None] | None:
    """``(repo_id, revision)`` of ``org/name[@rev]`` or ``hf://org/name[@rev]``; ``None`` when it is not one.

    An ``hf://`` argument that does not parse (a dataset, a path inside the repository) is an error.
    """
    from huggingface_hub import parse_hf_uri
    from huggingface_hub.errors import HfUriError

    explicit = argument.startswith(_HF)
    if not explicit and (argument.count("/") != 1 or argument.startswith(("/", "."))
                         or argument.split("@", 1)[0].endswith("/")):
        return None
    try:
        uri = parse_hf_uri(argument if explicit else _HF + argument)
    except (HfUriError, ValueError) as err:
        if explicit:
            raise SourceError(f"not a model repository URI: {err}", file=argument) from None
        return None
    if uri.type != "model" or uri.path_in_repo:
        if explicit:
            raise SourceError("only model repositories (hf://org/name[@revision]) can be read, without a "
                              "path inside the repository", file=argument)
        return None
    return uri.id, uri.revision


def _local(text: str) -> Location:
    """A local path; a snapshot directory of the cache (``models--org--name/snapshots/<commit>``) says so.

        >>> _local("/cache/models--org--name/snapshots/0123abcd").to_json()["repo_id"]
        'org/name'
    """
    path = Path(text)
    snapshot = path if path.suffix != ".safetensors" else path.parent
    repo = snapshot.parent.parent.name
    if snapshot.parent.name == HF_SNAPSHOTS and repo.startswith(HF_REPO_PREFIX) and repo.count("--") >= 2:
        return Location(text, "hf-cache", path, repo.removeprefix(HF_REPO_PREFIX).replace("--", "/", 1),
                        snapshot.name, snapshot.name)  # the path names its commit: that is the revision
    return Location(text, "local", path)


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())


def _complete(snapshot: Path) -> bool:
    """Whether a cached snapshot holds config.json and every shard its index names (or a lone shard)."""
    if not (snapshot / "config.json").is_file():
        return False
    index = snapshot / SAFETENSORS_INDEX_FILE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_bytes()).get("weight_map")
            shards = set(weight_map.values())
        except (OSError, ValueError, AttributeError, TypeError):
            return True  # a broken index is the reader's to report, from the snapshot
        return all(isinstance(s, str) and (snapshot / s).is_file() for s in shards)
    return (snapshot / SAFETENSORS_SINGLE_FILE).is_file() or any(snapshot.glob("*.safetensors"))


def cached_snapshot(repo_id: str, revision: str | None) -> tuple[Path | None, list[str]]:
    """The cached snapshot directory of ``repo_id`` at ``revision`` (``None`` if not cached), and the
    revisions (refs, else commits) the cache does hold, for error messages."""
    from huggingface_hub import constants, scan_cache_dir, try_to_load_from_cache
    from huggingface_hub.errors import CacheNotFound

    # Named explicitly: scan_cache_dir's default is bound when its module is first imported.
    cache_dir = constants.HF_HUB_CACHE
    hit = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache_dir, revision=revision)
    if isinstance(hit, str):
        return Path(hit).parent, []
    try:
        cache = scan_cache_dir(cache_dir)
    except CacheNotFound:
        return None, []
    wanted = revision or "main"
    held: list[str] = []
    for repo in cache.repos:
        if repo.repo_id != repo_id or repo.repo_type != "model":
            continue
        for rev in sorted(repo.revisions, key=lambda r: r.commit_hash):
            if wanted in rev.refs or rev.commit_hash == wanted:
                return rev.snapshot_path, []
            held.extend(sorted(rev.refs) or [rev.commit_hash[:12]])
    return None, held


@contextmanager
def locate(argument: str | os.PathLike[str], *, remote: bool = True, files: Sequence[str] = DEFAULT_FILES,
           index: bool = True) -> Iterator[Location]:
    """Find ``argument`` (see the module docstring); ``files`` are the metadata files to fetch from the
    hub, with the index too unless ``index=False`` (a command that reads the config only). The hub's
    temporary directory lives as long as the ``with``."""
    text = os.fspath(argument)
    if not text.startswith(_HF) and os.path.lexists(text):
        yield _local(text)
        return
    ref = parse_repo_ref(text)
    if ref is None:
        raise SourceError("no such file or directory, and not a hub repository id (org/name[@revision] "
                          "or hf://org/name[@revision])", file=text)
    repo_id, revision = ref
    snapshot, held = cached_snapshot(repo_id, revision)
    if snapshot is not None and (_complete(snapshot) or not remote or _offline()):
        yield Location(text, "hf-cache", snapshot, repo_id, revision, snapshot.name)
        return
    if not remote:
        cached = f"; the cache holds {', '.join(held)}" if held else ""
        raise SourceError(f"not a local path and not in the local Hugging Face cache at revision "
                          f"{revision or 'main'}{cached} (this command reads local files only; "
                          "download it first, e.g. `hf download REPO`)", file=text)
    if _offline():
        cached = f" at revision {revision or 'main'} (the cache holds {', '.join(held)})" if held else ""
        raise SourceError(f"not in the local cache{cached} (HF_HUB_OFFLINE=1)", file=text)
    from .remote import RemoteShards, fetch_files, hub_repo

    try:
        repo = hub_repo(repo_id, revision)
    except SourceError as err:
        if text.startswith(_HF):
            raise
        raise SourceError(f"no local file or directory of that name; on the hub: {err.detail}", file=text) from None
    with tempfile.TemporaryDirectory(prefix="quantresolve-hub-") as tmp:
        indexes = [SAFETENSORS_INDEX_FILE, PYTORCH_INDEX_FILE] if index else []
        fetch_files(repo, dict.fromkeys([*files, *indexes]), Path(tmp))
        yield Location(text, "hub", Path(tmp), repo_id, revision, repo.commit, repo.endpoint,
                       RemoteShards(repo))


__all__ = ["DEFAULT_FILES", "Location", "SourceKind", "cached_snapshot", "locate", "parse_repo_ref"]
