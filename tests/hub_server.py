"""A hub-shaped HTTP server on loopback, for remote-audit tests and benchmarks (no network needed).

It answers the routes huggingface_hub calls, with the headers it reads (checked against
huggingface_hub 2.4's ``file_download.py`` / ``utils/_http.py``):

- ``GET /api/models/ORG/NAME`` and ``.../revision/REV``: ``{"id", "sha", "siblings": [...]}``;
- ``GET|HEAD /ORG/NAME/resolve/REV/FILE``: ``Range: bytes=a-b`` → 206 + ``Content-Range``; HEAD →
  ``Content-Length``, ``ETag``, ``X-Repo-Commit`` (+ ``X-Linked-Etag`` / ``X-Linked-Size`` for
  ``.safetensors``, as the hub sends for LFS files);
- ``GET /api/models/ORG/NAME/safetensors-metadata/FILE``: 404, as a mirror answers;
- errors as the hub spells them: a missing or private repository → 401 ``X-Error-Code:
  RepoNotFound``; a gated one → 403 ``GatedRepo`` on its files; ``access="forbidden"`` → a bare 403;
  an unknown revision → 404 ``RevisionNotFound``; a missing file → 404 ``EntryNotFound``.

Files are :class:`Body` objects: real bytes, or a header followed by zeros up to a size, so a
400 GB checkpoint is served without storing it. ``delay`` adds seconds to every request (an
emulated round trip); ``honour_range=False`` answers 200 with the whole body, as a server without
range support would. Every request is logged (:class:`Hit`: method, path, ``Range`` header,
status, body bytes sent) so tests can count requests and bytes.

    >>> server = HubServer().start()
    >>> sha = server.add_repo("org/tiny", {"config.json": Body.of(b"{}")})
    >>> import urllib.request
    >>> urllib.request.urlopen(f"{server.url}/org/tiny/resolve/main/config.json").read()
    b'{}'
    >>> server.stop()
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

Access = Literal["public", "private", "gated", "forbidden"]
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Body:
    """A served file: ``head`` then zeros up to ``size`` bytes."""

    head: bytes
    size: int

    @classmethod
    def of(cls, data: bytes) -> Body:
        return cls(data, len(data))

    @classmethod
    def from_file(cls, path: Path) -> Body:
        return cls.of(path.read_bytes())

    def read(self, start: int, stop: int) -> bytes:
        """Bytes ``[start, stop)`` (zeros past ``head``)."""
        part = self.head[start:stop]
        return part + bytes(max(0, stop - max(start, len(self.head))))

    @property
    def etag(self) -> str:
        return hashlib.sha256(self.head + str(self.size).encode()).hexdigest()


@dataclass
class Repo:
    commits: dict[str, dict[str, Body]]
    refs: dict[str, str]
    access: Access = "public"


@dataclass(frozen=True)
class Hit:
    """One request as the server saw it; ``sent``: the body bytes it answered with (its Content-Length;
    a client that stops reading early receives fewer)."""

    method: str
    path: str
    range: str | None
    status: int
    sent: int


@dataclass
class HubServer:
    """The server; :meth:`start` it, :meth:`add_repo` / :meth:`add_directory`, read :attr:`hits`."""

    delay: float = 0.0
    honour_range: bool = True
    token: str = "hf_test_token"
    repos: dict[str, Repo] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    #: Most requests being answered at one time (what a client's parallelism achieved).
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._httpd: ThreadingHTTPServer | None = None

    # --- content ------------------------------------------------------------------------------

    def add_repo(self, repo_id: str, files: dict[str, Body], *, access: Access = "public",
                 refs: tuple[str, ...] = ("main",)) -> str:
        """Add (or add a commit to) ``repo_id``; every name in ``refs`` points at it. Returns the commit."""
        digest = hashlib.sha1(repo_id.encode())
        for name in sorted(files):
            digest.update(name.encode() + files[name].etag.encode())
        sha = digest.hexdigest()
        repo = self.repos.setdefault(repo_id, Repo({}, {}, access))
        repo.commits[sha] = dict(files)
        repo.access = access
        for ref in refs:
            repo.refs[ref] = sha
        return sha

    def add_directory(self, repo_id: str, directory: Path, **kw: object) -> str:
        """Serve every file of ``directory`` (recursively, relative names) as ``repo_id``."""
        files = {p.relative_to(directory).as_posix(): Body.from_file(p)
                 for p in sorted(directory.rglob("*")) if p.is_file()}
        return self.add_repo(repo_id, files, **kw)  # type: ignore[arg-type]

    # --- accounting ---------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.hits.clear()
            self.max_in_flight = 0

    def enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def log(self, hit: Hit) -> None:
        with self._lock:
            self.hits.append(hit)

    def file_hits(self, suffix: str = ".safetensors") -> list[Hit]:
        """Requests for files whose name ends with ``suffix``."""
        return [h for h in self.hits if "/resolve/" in h.path and h.path.endswith(suffix)]

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        server = self

        class Handler(_Handler):
            hub = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.request_queue_size = 128
        threading.Thread(target=self._httpd.serve_forever, name="hub-server", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: HubServer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    # --- plumbing -----------------------------------------------------------------------------

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              *, stream: Body | None = None, span: tuple[int, int] = (0, 0)) -> None:
        size = span[1] - span[0] if stream is not None else len(body)
        # Logged before answering, so a client that has its answer always finds the hit logged.
        self.hub.log(Hit(self.command, urlsplit(self.path).path, self.headers.get("Range"), status,
                         0 if self.command == "HEAD" else size))
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            if stream is None:
                self.wfile.write(body)
            else:
                for start in range(span[0], span[1], _CHUNK):
                    self.wfile.write(stream.read(start, min(span[1], start + _CHUNK)))
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading: fine
            self.close_connection = True

    def _error(self, status: int, code: str | None, message: str) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, json.dumps({"error": message}).encode(), headers)

    def _repo(self, repo_id: str, *, files: bool) -> Repo | None:
        repo = self.hub.repos.get(repo_id)
        authorized = self.headers.get("Authorization") == f"Bearer {self.hub.token}"
        if repo is None or (repo.access == "private" and not authorized):
            self._error(401, "RepoNotFound", "Repository not found")
            return None
        if repo.access == "forbidden":
            self._error(403, None, "Forbidden")
            return None
        if repo.access == "gated" and files and not authorized:
            self._error(403, "GatedRepo", "Access to this model is restricted")
            return None
        return repo

    def _commit(self, repo: Repo, revision: str) -> str | None:
        sha = repo.refs.get(revision, revision if revision in repo.commits else None)
        if sha is None:
            self._error(404, "RevisionNotFound", "Invalid rev id")
        return sha

    # --- routes -------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self.hub.enter()
        try:
            if self.hub.delay:
                time.sleep(self.hub.delay)
            parts = [unquote(p) for p in urlsplit(self.path).path.split("/")[1:]]
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                self._api(parts[2:])
            elif len(parts) >= 5 and parts[2] == "resolve":
                self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]))
            else:
                self._error(404, None, "Not found")
        finally:
            self.hub.leave()

    def _api(self, parts: list[str]) -> None:
        repo_id, rest = "/".join(parts[:2]), parts[2:]
        if rest[:1] == ["safetensors-metadata"]:  # huggingface.co only; a mirror answers 404
            self._error(404, None, "Not found")
            return
        repo = self._repo(repo_id, files=False)
        if repo is None:
            return
        revision = "/".join(rest[1:]) if rest[:1] == ["revision"] else "main"
        sha = self._commit(repo, revision)
        if sha is None:
            return
        info = {"id": repo_id, "modelId": repo_id, "sha": sha, "private": repo.access == "private",
                "gated": "auto" if repo.access == "gated" else False,
                "siblings": [{"rfilename": name} for name in sorted(repo.commits[sha])]}
        self._send(200, json.dumps(info).encode(), {"Content-Type": "application/json"})

    def _resolve(self, repo_id: str, revision: str, name: str) -> None:
        repo = self._repo(repo_id, files=True)
        if repo is None:
            return
        sha = self._commit(repo, revision)
        if sha is None:
            return
        body = repo.commits[sha].get(name)
        if body is None:
            self._error(404, "EntryNotFound", f"{name} does not exist on {revision}")
            return
        headers = {"ETag": f'"{body.etag}"', "X-Repo-Commit": sha, "Accept-Ranges": "bytes"}
        if name.endswith(".safetensors"):
            headers |= {"X-Linked-Etag": f'"{body.etag}"', "X-Linked-Size": str(body.size)}
        wanted = self.headers.get("Range")
        match = _RANGE.fullmatch(wanted.strip()) if wanted and self.hub.honour_range else None
        if match is None or not (match.group(1) or match.group(2)):
            self._send(200, headers=headers, stream=body, span=(0, body.size))
            return
        first, last = match.groups()
        if first:
            start, stop = int(first), min(body.size, int(last) + 1 if last else body.size)
        else:
            start, stop = max(0, body.size - int(last)), body.size
        if start >= body.size or start >= stop:
            self._send(416, headers={"Content-Range": f"bytes */{body.size}"})
            return
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{body.size}"
        self._send(206, headers=headers, stream=body, span=(start, stop))


# --- checkpoints to serve ---------------------------------------------------------------------


def split_checkpoint(source: Path, dest: Path, shards: int) -> Path:
    """``source``'s ``model.safetensors`` split round-robin into ``shards`` files plus an index, byte for
    byte (torch-free: tensors are copied as raw spans), next to copies of its JSON files."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in source.glob("*.json"):
        (dest / path.name).write_bytes(path.read_bytes())
    raw = (source / "model.safetensors").read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + length])
    data = raw[8 + length :]
    names = sorted(n for n in header if n != "__metadata__")
    weight_map: dict[str, str] = {}
    for i in range(shards):
        file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part: dict[str, object] = {"__metadata__": {"format": "pt"}}
        body = bytearray()
        for name in names[i::shards]:
            begin, end = header[name]["data_offsets"]
            part[name] = {**header[name], "data_offsets": [len(body), len(body) + end - begin]}
            body += data[begin:end]
            weight_map[name] = file
        write_safetensors(dest / file, part, bytes(body))
    index = {"metadata": {"total_size": len(data)}, "weight_map": weight_map}
    (dest / "model.safetensors.index.json").write_text(json.dumps(index, indent=1))
    return dest


def safetensors_bytes(header: dict[str, object], body: bytes | int) -> Body:
    """A safetensors file as a :class:`Body`: 8-byte length, the JSON header padded to 8, then
    ``body`` (bytes, or a size served as zeros)."""
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    head = len(raw).to_bytes(8, "little") + raw
    if isinstance(body, int):
        return Body(head, len(head) + body)
    return Body.of(head + body)


def write_safetensors(path: Path, header: dict[str, object], body: bytes) -> Path:
    path.write_bytes(safetensors_bytes(header, body).head)
    return path
