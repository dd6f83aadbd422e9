"""``quantresolve audit ORG/NAME`` against the hub, headers only, and ``inspect`` / ``resolve`` / ``run`` with
repository ids — all against ``tests/hub_server.py`` on loopback (no network)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from quantresolve.checkpoint.remote import FIRST_READ
from tests.hub_server import HubServer, split_checkpoint

from .conftest import CHECKPOINTS, REPO

SCHEMA = json.loads((REPO / "schemas" / "audit-report.schema.json").read_text())
FIXTURES = sorted(p.name for p in CHECKPOINTS.iterdir() if (p / "model.safetensors").is_file()) \
    if CHECKPOINTS.is_dir() else []
#: The report fields that name where a checkpoint was read from; everything else must be equal.
WHERE = ("checkpoint", "location")


def _without_where(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in WHERE}


def _header_bytes(path: Path) -> int:
    with open(path, "rb") as handle:
        return 8 + int.from_bytes(handle.read(8), "little")


@pytest.mark.parametrize("name", FIXTURES)
def test_remote_audit_equals_local_audit(hub: HubServer, cli, name: str) -> None:
    local = CHECKPOINTS / name
    hub.add_directory(f"org/{name}", local)
    remote = cli("audit", f"org/{name}", "--format", "json")
    here = cli("audit", local, "--format", "json")
    assert remote.rc == here.rc and remote.err == here.err == ""
    report = remote.json()
    jsonschema.validate(report, SCHEMA)
    assert report["checkpoint"] == f"org/{name}@main"
    assert report["location"] == {"kind": "hub", "path": None, "repo_id": f"org/{name}", "revision": None,
                                  "commit": hub.repos[f"org/{name}"].refs["main"], "endpoint": hub.url}
    assert _without_where(report) == _without_where(here.json())


def test_sharded_remote_audit_reads_headers_only(hub: HubServer, cli, tmp_path: Path) -> None:
    local = split_checkpoint(CHECKPOINTS / "modelopt-qwen3-moe-nvfp4", tmp_path / "sharded", 7)
    hub.add_directory("org/moe", local)
    remote = cli("audit", "hf://org/moe@main", "--format", "json")
    assert remote.rc == 0, remote.err
    assert _without_where(remote.json()) == _without_where(cli("audit", local, "--format", "json").json())
    shards = hub.file_hits(".safetensors")
    assert sorted(h.path.rsplit("/", 1)[1] for h in shards) == sorted(p.name for p in local.glob("*.safetensors"))
    for hit in shards:  # every shard read is one Range request of at most header + 128 KiB
        assert hit.method == "GET" and hit.range is not None and hit.status == 206
        assert hit.sent <= _header_bytes(local / hit.path.rsplit("/", 1)[1]) + FIRST_READ
    fetched = sorted(h.path.rsplit("/", 1)[1] for h in hub.file_hits(".json"))
    assert fetched == ["config.json", "hf_quant_config.json", "model.safetensors.index.json"]
    assert not any(h.method == "GET" and h.range is None for h in shards)


def test_inspect_and_resolve_take_a_repo_id(hub: HubServer, cli) -> None:
    hub.add_directory("org/mixed", CHECKPOINTS / "modelopt-mixed")
    assert cli("inspect", "org/mixed", "--json").json()["quant_algo"] == "MIXED_PRECISION"
    assert sorted(h.path.rsplit("/", 1)[1] for h in hub.file_hits(".json")) == ["config.json", "hf_quant_config.json"]
    out = cli("resolve", "org/mixed", "model.layers.0.mlp.down_proj").out
    assert out.split("\t")[:3] == ["model.layers.0.mlp.down_proj", "NVFP4", "direct"]
    assert hub.file_hits(".safetensors") == []  # no header needed for these


def test_run_never_downloads(hub: HubServer, cli) -> None:
    hub.add_directory("org/mixed", CHECKPOINTS / "modelopt-mixed")
    result = cli("run", "org/mixed", "--prompt-ids", "1,2")
    assert result.rc == 2 and "reads local files only" in result.err and result.err.count("\n") == 1
    assert hub.hits == []


@pytest.mark.parametrize(("repo", "access", "expected"), [
    ("org/missing", None, "org/missing: no local file or directory of that name; on the hub: repository not found"),
    ("hf://org/private", "private", "org/private: repository not found on"),
    ("org/gated", "gated", "org/gated@main/config.json: gated repository on"),
    ("org/forbidden", "forbidden", "access denied by"),
    ("org/public@v7", "public", "revision 'v7' not found on"),
])
def test_remote_errors_are_one_line(hub: HubServer, cli, repo: str, access: str | None, expected: str) -> None:
    if access is not None:
        hub.add_directory(repo.removeprefix("hf://").split("@")[0], CHECKPOINTS / "modelopt-mixed", access=access)
    result = cli("audit", repo)
    assert result.rc == 2 and result.out == ""
    assert result.err.startswith("quantresolve audit: error: ") and result.err.count("\n") == 1
    assert expected in result.err


def test_offline_and_not_cached(hub: HubServer, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    hub.add_directory("org/mixed", CHECKPOINTS / "modelopt-mixed")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    result = cli("audit", "org/mixed")
    assert (result.rc, result.err) == (2, "quantresolve audit: error: org/mixed: not in the local cache "
                                          "(HF_HUB_OFFLINE=1)\n")
    assert hub.hits == []


def test_environment_is_what_huggingface_hub_reads(hub: HubServer, tmp_path: Path) -> None:
    """A fresh process: HF_ENDPOINT / HF_HUB_CACHE / HF_HUB_OFFLINE reach huggingface_hub at import."""
    hub.add_directory("org/mixed", CHECKPOINTS / "modelopt-mixed")
    env = {**os.environ, "HF_HUB_DISABLE_TELEMETRY": "1"}
    run = [sys.executable, "-m", "quantresolve", "audit", "org/mixed", "--format", "json"]
    done = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["location"]["endpoint"] == hub.url
    offline = subprocess.run(run, env={**env, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True,
                             timeout=120, cwd=tmp_path)
    assert offline.returncode == 2 and "(HF_HUB_OFFLINE=1)" in offline.stderr
