"""Shard headers read from a hub repository with HTTP range requests (:mod:`quantresolve.checkpoint.remote`).

Everything runs against ``tests/hub_server.py`` on loopback (the ``hub`` fixture); no network.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from quantresolve.checkpoint import read_checkpoint
from quantresolve.checkpoint.header import read_shard_header
from quantresolve.checkpoint.remote import FIRST_READ, RemoteShards, hub_repo
from quantresolve.errors import CheckpointError, SourceError
from tests.hub_server import Body, HubServer, safetensors_bytes, split_checkpoint

from ..conftest import CHECKPOINTS, checkpoint_dir

FIXTURES = sorted(p.name for p in CHECKPOINTS.iterdir() if (p / "model.safetensors").is_file()) \
    if CHECKPOINTS.is_dir() else []


def _shards(hub: HubServer, repo_id: str) -> RemoteShards:
    return RemoteShards(hub_repo(repo_id))


@pytest.mark.parametrize("name", FIXTURES)
def test_remote_header_equals_local(hub: HubServer, name: str) -> None:
    local = checkpoint_dir(name)
    hub.add_directory(f"org/{name}", local)
    remote = _shards(hub, f"org/{name}").read_header("model.safetensors")
    assert remote == read_shard_header(local / "model.safetensors", "model.safetensors")
    shard_hits = hub.file_hits()
    assert len(shard_hits) == 1 and shard_hits[0].range == f"bytes=0-{FIRST_READ - 1}"


def test_sharded_catalog_equals_local_with_range_reads_only(hub: HubServer, tmp_path: Path) -> None:
    local = split_checkpoint(checkpoint_dir("modelopt-nvfp4"), tmp_path / "sharded", 5)
    hub.add_directory("org/sharded", local)
    shards = _shards(hub, "org/sharded")
    seen: list[tuple[int, int]] = []
    remote = read_checkpoint(local, on_shard=lambda done, total, _n: seen.append((done, total)), shards=shards)
    assert dict(remote.tensors) == dict(read_checkpoint(local).tensors)
    assert seen == [(i, 5) for i in range(1, 6)]
    hits = hub.file_hits()
    assert len(hits) == 5 == shards.requests
    for hit in hits:
        assert hit.method == "GET" and hit.status == 206 and hit.range is not None
        size = (local / hit.path.rsplit("/", 1)[1]).stat().st_size
        assert hit.sent == min(size, FIRST_READ)


def test_large_header_takes_exactly_one_more_range_read(hub: HubServer) -> None:
    header = {f"model.layers.{i}.mlp.down_proj.weight": {"dtype": "BF16", "shape": [4, 4],
                                                          "data_offsets": [32 * i, 32 * i + 32]}
              for i in range(3000)}
    body = safetensors_bytes(header, 32 * 3000)
    length = int.from_bytes(body.head[:8], "little")
    assert 8 + length > FIRST_READ
    hub.add_repo("org/wide", {"model.safetensors": body, "config.json": Body.of(b"{}")})
    shards = _shards(hub, "org/wide")
    parsed = shards.read_header("model.safetensors")
    assert len(parsed.tensors) == 3000
    assert [h.range for h in hub.file_hits()] == [f"bytes=0-{FIRST_READ - 1}", f"bytes={FIRST_READ}-{8 + length - 1}"]
    assert shards.bytes_read == 8 + length  # the header, not a byte more


def test_server_ignoring_range_is_read_only_up_to_the_header(hub: HubServer) -> None:
    hub.honour_range = False
    header = {"w": {"dtype": "BF16", "shape": [1 << 20, 512], "data_offsets": [0, 1 << 30]}}
    hub.add_repo("org/norange", {"model.safetensors": safetensors_bytes(header, 1 << 30)})
    shards = _shards(hub, "org/norange")
    assert shards.read_header("model.safetensors").tensors["w"].shape == (1 << 20, 512)
    assert shards.bytes_read <= FIRST_READ


@pytest.mark.parametrize(("header", "size", "match"), [
    ({"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}}, 4, "ends at data byte 8"),
    ({"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 6]}}, 6, "needs 8"),
    ({"w": {"dtype": "XX", "shape": [2], "data_offsets": [0, 4]}}, 4, "unknown dtype"),
])
def test_hostile_remote_header_gets_the_local_error(hub: HubServer, tmp_path: Path, header: dict,
                                                      size: int, match: str) -> None:
    body = safetensors_bytes(header, size)
    hub.add_repo("org/bad", {"model.safetensors": body, "config.json": Body.of(b"{}")})
    (tmp_path / "model.safetensors").write_bytes(body.read(0, body.size))
    with pytest.raises(CheckpointError, match=match) as local:
        read_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match=match) as remote:
        _shards(hub, "org/bad").read_header("model.safetensors")
    assert str(remote.value) == str(local.value)


def test_lying_header_length_is_refused_before_reading_it(hub: HubServer) -> None:
    hub.add_repo("org/liar", {"model.safetensors": Body((10**7).to_bytes(8, "little") + b"{}", 10)})
    with pytest.raises(CheckpointError, match="larger than the file"):
        _shards(hub, "org/liar").read_header("model.safetensors")
    assert len(hub.file_hits()) == 1


def test_at_least_sixteen_shards_in_flight(hub: HubServer, tmp_path: Path) -> None:
    local = split_checkpoint(checkpoint_dir("modelopt-nvfp4"), tmp_path / "sharded", 24)
    hub.add_directory("org/many", local)
    shards = _shards(hub, "org/many")
    hub.delay = 0.3
    hub.reset()
    read_checkpoint(local, shards=shards)
    assert hub.max_in_flight >= 16


def test_index_naming_a_shard_the_repo_lacks(hub: HubServer, tmp_path: Path) -> None:
    local = split_checkpoint(checkpoint_dir("modelopt-nvfp4"), tmp_path / "sharded", 3)
    files = {p.name: Body.from_file(p) for p in local.iterdir() if p.name != "model-00002-of-00003.safetensors"}
    hub.add_repo("org/partial", files)
    with pytest.raises(CheckpointError, match=r"model-00002-of-00003\.safetensors"):
        read_checkpoint(local, shards=_shards(hub, "org/partial"))


# --- errors -------------------------------------------------------------------------------------


def _repo_error(repo_id: str, revision: str | None = None) -> str:
    with pytest.raises(SourceError) as err:
        hub_repo(repo_id, revision)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_missing_private_gated_forbidden_and_unknown_revision(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {"config.json": Body.of(b"{}"), "model.safetensors": safetensors_bytes({}, 0)}
    hub.add_repo("org/private", files, access="private")
    hub.add_repo("org/gated", files, access="gated")
    hub.add_repo("org/forbidden", files, access="forbidden")
    hub.add_repo("org/public", files)
    assert "repository not found" in _repo_error("org/missing")
    assert "repository not found" in _repo_error("org/private") and "authenticate" in _repo_error("org/private")
    assert "access denied" in _repo_error("org/forbidden") and "403" in _repo_error("org/forbidden")
    assert _repo_error("org/public", "v9") == f"org/public@v9: revision 'v9' not found on {hub.url}"
    gated = hub_repo("org/gated")  # its card is public, its files are not
    with pytest.raises(SourceError, match=r"gated repository .* accept its conditions"):
        RemoteShards(gated).read_header("model.safetensors")
    monkeypatch.setenv("HF_TOKEN", hub.token)  # huggingface_hub's own token handling
    assert RemoteShards(hub_repo("org/private")).read_header("model.safetensors").tensors == {}
    assert RemoteShards(hub_repo("org/gated")).read_header("model.safetensors").tensors == {}


def test_unreachable_host(monkeypatch: pytest.MonkeyPatch, hub: HubServer) -> None:
    from huggingface_hub import constants

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    assert _repo_error("org/any").startswith(f"org/any: cannot reach http://127.0.0.1:{port}: ")


def test_host_that_never_answers_times_out(monkeypatch: pytest.MonkeyPatch, hub: HubServer) -> None:
    from huggingface_hub import constants

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
    monkeypatch.setattr(constants, "HF_HUB_ETAG_TIMEOUT", 0.3)
    try:
        assert "no answer within 0.3 s" in _repo_error("org/any")
    finally:
        for conn in accepted:
            conn.close()
        silent.close()
