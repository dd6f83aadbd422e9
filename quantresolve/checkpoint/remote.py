"""A repository on the Hugging Face Hub read without downloading its weights.

Three things are fetched, all through ``huggingface_hub`` (its endpoint — ``HF_ENDPOINT`` —,
its token — ``HF_TOKEN`` or the saved login —, its HTTP session, its error classes):

1. the repository's commit and file list (:func:`hub_repo`, ``HfApi.model_info``);
2. the small metadata files a checkpoint is described by — ``config.json``, the quantization
   sidecars, the safetensors index — into a local directory (:func:`fetch_files`), so every
   reader of the package reads them exactly as it reads a local checkpoint;
3. each shard's safetensors *header* (:class:`RemoteShards`): one HTTP ``Range`` request for
   the first :data:`FIRST_READ` bytes (the 8-byte length and, almost always, the whole header)
   and, only for a larger header, one more for the rest. Never a byte past the header is asked
   for; a server that ignores ``Range`` (status 200) is read only as far as the header and the
   connection dropped. The bytes go through :func:`~.header.parse_shard_header`, the validator
   of local shards, so a remote header gets exactly the same checks.

Shards are read :data:`WORKERS` at a time, so a 163-shard repository costs about
``163 / WORKERS + 2`` round trips instead of 163.

Why not ``HfApi.get_safetensors_metadata``? It reads shards on ``min(32, cpus + 4)`` threads
(6 on a 2-core machine), asks for a fixed ``bytes=0-100000`` first, and parses headers with its
own lenient parser (no duplicate-key, overlap or file-size checks). ``get_sharded_safetensors_metadata``
gets every header in one request but exists on huggingface.co only (a mirror answers 404) and only
for ``main``. The building blocks (``hf_hub_url``, the session, ``hf_raise_for_status``) are
huggingface_hub's own.

Every failure is a :class:`~quantresolve.errors.SourceError` with one line naming the
repository and what went wrong (missing, private or gated, unknown revision, host unreachable)::

    >>> hub_error(ConnectionRefusedError("refused"), "org/name", None, "http://127.0.0.1:9").detail
    'cannot reach http://127.0.0.1:9: ConnectionRefusedError: refused'
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import QuantResolveError, SourceError
from ..util.containment import check_relative_name
from .header import MAX_HEADER_BYTES, ShardHeader, header_length, parse_shard_header

#: Bytes asked for by the first (speculative) read of each shard: the length prefix and the header.
FIRST_READ = 128 * 1024
#: Shards read at once.
WORKERS = 32
#: Largest metadata file fetched (configs, sidecars, the index).
MAX_FILE_BYTES = MAX_HEADER_BYTES

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


@dataclass(frozen=True)
class HubRepo:
    """One revision of a model repository on the hub: what was asked and what it resolved to."""

    repo_id: str
    revision: str | None
    commit: str
    endpoint: str
    files: frozenset[str]

    @property
    def label(self) -> str:
        """``org/name@revision`` as asked (``main`` when none was given)."""
        return f"{self.repo_id}@{self.revision or 'main'}"


def _timeout() -> float:
    from huggingface_hub import constants

    return float(constants.HF_HUB_ETAG_TIMEOUT)


def hub_error(err: BaseException, repo_id: str, revision: str | None, endpoint: str,
              *, file: str | None = None) -> SourceError:
    """One line for a huggingface_hub / HTTP failure while reading ``repo_id``."""
    from huggingface_hub import errors as hf_errors

    where = f"{repo_id}@{revision}" if revision else repo_id
    status = getattr(getattr(err, "response", None), "status_code", None)
    if isinstance(err, hf_errors.OfflineModeIsEnabled):
        detail = "not in the local cache (HF_HUB_OFFLINE=1)"
    elif isinstance(err, hf_errors.GatedRepoError):
        detail = (f"gated repository on {endpoint} ({status}): accept its conditions on the hub, then "
                  "authenticate (HF_TOKEN or `hf auth login`)")
    elif isinstance(err, hf_errors.RepositoryNotFoundError):
        detail = (f"repository not found on {endpoint} ({status}); if it is private, authenticate "
                  "(HF_TOKEN or `hf auth login`)")
    elif isinstance(err, hf_errors.RevisionNotFoundError):
        detail = f"revision {revision!r} not found on {endpoint}"
    elif isinstance(err, hf_errors.RemoteEntryNotFoundError):
        detail = f"file not found in the repository on {endpoint}"
    elif status in (401, 403):
        detail = (f"access denied by {endpoint} ({status}): private or gated repository; authenticate "
                  "(HF_TOKEN or `hf auth login`)")
    elif isinstance(err, hf_errors.HfHubHTTPError):
        detail = f"{endpoint} answered HTTP {status}"
    elif isinstance(err, TimeoutError) or type(err).__name__.endswith(("Timeout", "TimeoutException")):
        detail = f"cannot reach {endpoint}: no answer within {_timeout():g} s (HF_HUB_ETAG_TIMEOUT)"
    else:
        detail = f"cannot reach {endpoint}: {type(err).__name__}: {err}"
    return SourceError(detail, file=file or where)


@contextmanager
def _guard(repo_id: str, revision: str | None, endpoint: str, file: str | None = None) -> Iterator[None]:
    """Turn any failure that is not already a quantresolve error into :func:`hub_error`'s one line."""
    try:
        yield
    except QuantResolveError:
        raise
    except Exception as err:  # httpx / huggingface_hub errors: all become one line
        raise hub_error(err, repo_id, revision, endpoint, file=file) from None


def hub_repo(repo_id: str, revision: str | None = None) -> HubRepo:
    """Resolve ``repo_id`` at ``revision`` (branch, tag or commit) on the configured endpoint."""
    from huggingface_hub import HfApi

    api = HfApi()
    with _guard(repo_id, revision, api.endpoint):
        info = api.model_info(repo_id, revision=revision, timeout=_timeout())
    if not info.sha:
        raise SourceError(f"{api.endpoint} did not say which commit {revision or 'main'} is", file=repo_id)
    files = frozenset(s.rfilename for s in info.siblings or ())
    return HubRepo(repo_id, revision, info.sha, api.endpoint, files)


class _Fetcher:
    """GETs of one repository's files at its resolved commit, through huggingface_hub's session."""

    def __init__(self, repo: HubRepo) -> None:
        from huggingface_hub.utils import build_hf_headers

        self.repo = repo
        self.headers = build_hf_headers()
        self.timeout = _timeout()

    def url(self, name: str) -> str:
        from huggingface_hub import hf_hub_url

        return hf_hub_url(self.repo.repo_id, name, revision=self.repo.commit, endpoint=self.repo.endpoint)

    def get(self, name: str, start: int, stop: int | None) -> tuple[bytes, int]:
        """Bytes ``[start, stop)`` of ``name`` (``stop=None``: to the end, capped) and the file's size.

        With ``stop`` a ``Range`` request; a server that ignores it is read only up to ``stop``.
        """
        from huggingface_hub.utils import get_session, hf_raise_for_status

        headers = dict(self.headers)
        if stop is not None:
            headers["Range"] = f"bytes={start}-{stop - 1}"
        where = f"{self.repo.label}/{name}"
        with _guard(self.repo.repo_id, self.repo.revision, self.repo.endpoint, file=where), \
                get_session().stream("GET", self.url(name), headers=headers, timeout=self.timeout) as response:
            if response.status_code >= 400:
                response.read()
                hf_raise_for_status(response)
            size = self._size(response, name)
            skip = start if response.status_code == 200 else 0
            limit = (stop - start) if stop is not None else MAX_FILE_BYTES + 1
            chunks, got = [], 0
            for chunk in response.iter_bytes():
                if skip:
                    cut = min(skip, len(chunk))
                    chunk, skip = chunk[cut:], skip - cut
                chunks.append(chunk[: limit - got])
                got += len(chunks[-1])
                if got >= limit:
                    break
        data = b"".join(chunks)
        if stop is None and len(data) > MAX_FILE_BYTES:
            raise SourceError(f"larger than {MAX_FILE_BYTES} bytes; refused", file=name)
        return data, size

    @staticmethod
    def _size(response: object, name: str) -> int:
        headers = response.headers  # type: ignore[attr-defined]
        if response.status_code == 206:  # type: ignore[attr-defined]
            match = _CONTENT_RANGE.fullmatch(headers.get("Content-Range", "").strip())
            if match is None:
                raise SourceError(f"the server's Content-Range {headers.get('Content-Range')!r} is not "
                                  "'bytes a-b/size'", file=name)
            return int(match.group(3))
        length = headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise SourceError("the server reported no file size (Content-Length)", file=name)
        return int(length)


def fetch_files(repo: HubRepo, names: Iterable[str], dest: Path) -> list[str]:
    """Download those of ``names`` the repository holds into ``dest``; returns the names fetched."""
    fetcher = _Fetcher(repo)
    fetched = []
    for name in names:
        if name not in repo.files:
            continue
        check_relative_name(name, file=repo.label)
        data, _size = fetcher.get(name, 0, None)
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        fetched.append(name)
    return fetched


class RemoteShards:
    """The :class:`~.reader.ShardSource` of a hub repository: headers by HTTP range requests.

    ``requests`` and ``bytes_read`` count what was fetched (for reports and tests).
    """

    def __init__(self, repo: HubRepo, *, workers: int = WORKERS, first_read: int = FIRST_READ) -> None:
        self.repo = repo
        self.workers = workers
        self.first_read = first_read
        self.requests = 0
        self.bytes_read = 0
        self._lock = threading.Lock()
        self._fetcher = _Fetcher(repo)

    def exists(self, name: str) -> bool:
        return name in self.repo.files

    def listing(self) -> list[str]:
        return sorted(f for f in self.repo.files if "/" not in f and f.endswith(".safetensors"))

    def _get(self, name: str, start: int, stop: int) -> tuple[bytes, int]:
        data, size = self._fetcher.get(name, start, stop)
        with self._lock:
            self.requests += 1
            self.bytes_read += len(data)
        return data, size

    def read_header(self, name: str) -> ShardHeader:
        """One shard's validated header: one range read, two when the header exceeds :attr:`first_read`."""
        head, size = self._get(name, 0, self.first_read)
        length = header_length(head[:8], name, size)
        if 8 + length > len(head):
            rest, _ = self._get(name, len(head), 8 + length)
            head += rest
        if len(head) < 8 + length:
            raise SourceError(f"the server sent {len(head)} bytes of a {8 + length}-byte header", file=name)
        return parse_shard_header(head[8 : 8 + length], name, size)

    def read_headers(self, shards: Sequence[str], on_shard=None) -> list[ShardHeader]:  # type: ignore[no-untyped-def]
        """Every shard's header, :attr:`workers` at a time; the first failure (in shard order) is raised."""
        if not shards:
            return []
        done = 0
        progress = threading.Lock()

        def one(name: str) -> ShardHeader:
            nonlocal done
            header = self.read_header(name)
            if on_shard is not None:
                with progress:
                    done += 1
                    on_shard(done, len(shards), name)
            return header

        pool = ThreadPoolExecutor(max_workers=min(self.workers, len(shards)),
                                  thread_name_prefix="quantresolve-headers")
        futures = [pool.submit(one, name) for name in shards]
        try:
            return [future.result() for future in futures]
        finally:  # on a failure, the shards not yet started are not fetched at all
            pool.shutdown(wait=True, cancel_futures=True)


__all__ = ["FIRST_READ", "WORKERS", "HubRepo", "RemoteShards", "fetch_files", "hub_error", "hub_repo"]
