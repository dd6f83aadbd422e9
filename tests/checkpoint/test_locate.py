"""The checkpoint argument: local path, local Hugging Face cache, or the hub (:mod:`quantresolve.checkpoint.locate`).

The cache is a real layout (blobs + relative symlinks + refs, ``tests/hf_cache.py``) in a
temporary ``HF_HUB_CACHE``; the hub is ``tests/hub_server.py`` on loopback (``hub`` fixture).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from quantresolve.checkpoint.locate import locate, parse_repo_ref
from quantresolve.errors import SourceError
from tests.hf_cache import make_hf_cache
from tests.hub_server import HubServer

from ..conftest import checkpoint_dir


@pytest.fixture
def cache(hub: HubServer) -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


@pytest.fixture
def cached(tmp_path: Path, cache: Path) -> Callable[..., Path]:
    """``cached(refs=..., only=...)``: modelopt-mixed as the cached repo ``org/name``; its snapshot directory."""
    def make(**options: Any) -> Path:
        return make_hf_cache(tmp_path, "modelopt-mixed", "org/name", cache=cache, **options).snapshot
    return make


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, hub: HubServer) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


@pytest.mark.parametrize(("text", "expected"), [
    ("org/name", ("org/name", None)),
    ("org/name@v1.0", ("org/name", "v1.0")),
    ("hf://org/name@refs/pr/3", ("org/name", "refs/pr/3")),
    ("hf://models/org/name", ("org/name", None)),
    ("./org", None), ("/abs/path", None), ("name", None), ("a/b/c", None), ("org/", None),
])
def test_parse_repo_ref(text: str, expected: tuple[str, str | None] | None) -> None:
    assert parse_repo_ref(text) == expected


@pytest.mark.parametrize("text", ["hf://org", "hf://datasets/org/name", "hf://org/name/sub/file.json", "hf://org/name@"])
def test_hf_uri_that_is_not_a_model_repo_is_an_error(text: str) -> None:
    with pytest.raises(SourceError, match="hf://"):
        parse_repo_ref(text)


def test_existing_local_path_wins_over_a_repo_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  hub: HubServer, cached: Callable[..., Path]) -> None:
    cached()
    (tmp_path / "org" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    with locate("org/name") as where:
        assert where.kind == "local" and where.path == Path("org/name")
    with locate("hf://org/name") as where:  # the explicit scheme never means a local path
        assert where.kind == "hf-cache"
    assert hub.hits == []


def test_cached_snapshot_by_branch_tag_and_commit(hub: HubServer, cached: Callable[..., Path]) -> None:
    snap = cached(refs=("main", "v1"))
    for text in ("org/name", "org/name@main", "hf://org/name@v1", f"org/name@{snap.name}"):
        with locate(text) as where:
            assert (where.kind, where.path, where.commit) == ("hf-cache", snap, snap.name), text
            assert where.to_json()["repo_id"] == "org/name"
    assert hub.hits == []


def test_not_cached_offline_is_a_clear_error(offline: None, hub: HubServer, cached: Callable[..., Path]) -> None:
    with pytest.raises(SourceError, match=r"^org/name: not in the local cache \(HF_HUB_OFFLINE=1\)$"), \
            locate("org/name"):
        pass
    cached(refs=("main", "v1"))
    with pytest.raises(SourceError, match=r"at revision v2 \(the cache holds main, v1\) \(HF_HUB_OFFLINE=1\)"), \
            locate("org/name@v2"):
        pass
    assert hub.hits == []


def test_incomplete_snapshot_goes_to_the_hub_unless_offline(hub: HubServer, cached: Callable[..., Path],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A snapshot holding only config.json (what AutoConfig leaves) is not the checkpoint."""
    from huggingface_hub import constants

    snap = cached(only=("config.json",))
    hub.add_directory("org/name", checkpoint_dir("modelopt-mixed"))
    with locate("org/name", files=("config.json", "hf_quant_config.json")) as where:
        assert where.kind == "hub" and (where.path / "hf_quant_config.json").is_file()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with locate("org/name") as where:
        assert (where.kind, where.path) == ("hf-cache", snap)


def test_local_only_commands_never_reach_the_hub(hub: HubServer) -> None:
    hub.add_directory("org/name", checkpoint_dir("modelopt-mixed"))
    with pytest.raises(SourceError, match=r"not in the local Hugging Face cache .* reads local files only"), \
            locate("org/name", remote=False):
        pass
    assert hub.hits == []


def test_hub_fetches_metadata_into_a_temporary_directory(hub: HubServer) -> None:
    hub.add_directory("org/name", checkpoint_dir("modelopt-mixed"))
    with locate("org/name", files=("config.json", "hf_quant_config.json", "absent.json")) as where:
        tmp = where.path
        assert sorted(p.name for p in tmp.iterdir()) == ["config.json", "hf_quant_config.json"]
        assert where.to_json() == {"kind": "hub", "path": None, "repo_id": "org/name", "revision": None,
                                   "commit": where.commit, "endpoint": hub.url}
    assert not tmp.exists()
    assert not any(h.path.endswith("model.safetensors") for h in hub.hits)  # headers are the reader's job


def test_neither_path_nor_repo(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file or directory, and not a hub repository id"), \
            locate(str(tmp_path / "missing")):
        pass


def test_missing_local_path_spelled_like_a_repo_says_both(hub: HubServer) -> None:
    with pytest.raises(SourceError, match=r"^my/ckpt: no local file or directory of that name; on the hub: "
                                          "repository not found"), locate("my/ckpt"):
        pass


def test_cached_repo_audits_end_to_end(hub: HubServer, cached: Callable[..., Path]) -> None:
    """config.json and the shards are symlinks into the repo's blobs/: read through the containment check."""
    from quantresolve.audit import audit_checkpoint

    cached()
    with locate("org/name") as where:
        report = audit_checkpoint(where)
    local = audit_checkpoint(checkpoint_dir("modelopt-mixed")).to_json()
    remote = report.to_json()
    assert remote["location"]["kind"] == "hf-cache" and remote["checkpoint"] == "org/name@main"
    for key in ("checkpoint", "location"):
        del remote[key], local[key]
    assert remote == local


def test_a_snapshot_path_is_named_as_the_cached_repo(hub: HubServer, cached: Callable[..., Path]) -> None:
    snap = cached()
    with locate(str(snap)) as where:
        assert (where.kind, where.path, where.repo_id, where.commit) == ("hf-cache", snap, "org/name", snap.name)
        assert where.display == f"org/name@{snap.name}"
    assert hub.hits == []
