"""Hugging Face cache snapshots: read through their symlinks into the repo's own blobs, nothing else.

Each case builds a real cache layout (``tests/hf_cache.py``: blobs named by SHA-256, relative
symlinks, ``refs/main``) from a fixture and runs the CLI on the snapshot directory, as a user with
``snapshot_download`` would; the hostile variants edit one link each and must be refused with one
line and exit 2, naming the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from quantresolve import load_config
from quantresolve.audit import audit_checkpoint
from quantresolve.cli.main import main
from quantresolve.errors import CheckpointError, ConfigError
from quantresolve.resolve.resolver import Resolver
from tests.hf_cache import HfCache, make_hf_cache

pytestmark = pytest.mark.filterwarnings("ignore")


def _cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def _refused(capsys: pytest.CaptureFixture[str], command: str, path: Path, *needles: str) -> str:
    extra = {"resolve": ["model.layers.0.mlp.down_proj"],
             "run": ["--prompt-ids", "1,2", "--max-new-tokens", "1"]}.get(command, [])
    rc, out, err = _cli(capsys, command, path, *extra)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, (rc, out, err)
    assert lines[0].startswith(f"quantresolve {command}: error:"), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _relink(link: Path, target: str | Path) -> None:
    link.unlink()
    link.symlink_to(target)


@pytest.fixture
def ct_cache(tmp_path: Path) -> HfCache:
    return make_hf_cache(tmp_path, "ct-w4a16", "org/tiny-ct")


def test_layout_is_what_huggingface_hub_reads(ct_cache: HfCache) -> None:
    from huggingface_hub import scan_cache_dir

    info = scan_cache_dir(ct_cache.cache)
    assert not info.warnings
    (repo,) = info.repos
    assert repo.repo_id == "org/tiny-ct"
    assert {r.commit_hash for r in repo.revisions} == {ct_cache.commit}
    assert (ct_cache.snapshot / "config.json").is_symlink()
    assert not os.readlink(ct_cache.snapshot / "config.json").startswith("/")


@pytest.mark.parametrize("fixture", ["ct-w4a16", "modelopt-mixed", "bnb-nf4", "modelopt-qwen3-moe-nvfp4", "llama"])
def test_inspect_resolve_audit_on_a_snapshot(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             fixture: str) -> None:
    cache = make_hf_cache(tmp_path, fixture, f"org/{fixture}")
    rc, out, err = _cli(capsys, "inspect", cache.snapshot, "--json")
    assert rc == 0 and err == "", err
    assert json.loads(out)["producer"]
    rc, _, err = _cli(capsys, "resolve", cache.snapshot, "lm_head")
    assert rc == 0 and err == "", err
    rc, out, err = _cli(capsys, "audit", cache.snapshot, "--format", "json")
    assert rc in (0, 1) and err == "", err
    assert json.loads(out)["modules"]


def test_python_apis_on_a_snapshot(ct_cache: HfCache) -> None:
    assert load_config(ct_cache.snapshot).quant_algo == "W4A16"
    res = Resolver.from_checkpoint(ct_cache.snapshot).resolve("model.layers.0.mlp.down_proj")
    assert res.algo == "W4A16"
    assert audit_checkpoint(ct_cache.snapshot).exit_code() == 0


def test_same_answers_as_the_plain_directory(ct_cache: HfCache, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import checkpoint_dir

    plain = checkpoint_dir("ct-w4a16")
    reports = []
    for path in (plain, ct_cache.snapshot):
        rc, out, _ = _cli(capsys, "audit", path, "--format", "json")
        assert rc == 0
        reports.append(json.loads(out))
        reports[-1].pop("checkpoint")
    locations = [r.pop("location") for r in reports]
    assert reports[0] == reports[1]
    assert [loc["kind"] for loc in locations] == ["local", "hf-cache"]
    assert (locations[1]["repo_id"], locations[1]["commit"]) == ("org/tiny-ct", ct_cache.commit)


def test_run_on_a_snapshot(ct_cache: HfCache, capsys: pytest.CaptureFixture[str]) -> None:
    from quantresolve.integrations.transformers import load_quantized

    rc, out, err = _cli(capsys, "run", ct_cache.snapshot, "--prompt-ids", "1,2,3", "--max-new-tokens", 2)
    assert rc == 0, err
    assert "compressed-tensors W4A16" in out
    model = load_quantized(ct_cache.snapshot)
    assert model.model.layers[0].mlp.down_proj.dequantize().shape[0] > 0


def test_a_symlink_to_a_snapshot_is_the_snapshot(ct_cache: HfCache, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    alias = tmp_path / "my-model"
    alias.symlink_to(ct_cache.snapshot)
    rc, _, err = _cli(capsys, "audit", alias)
    assert rc == 0, err


def test_a_link_to_another_snapshot_of_the_same_repo_is_inside(tmp_path: Path, ct_cache: HfCache,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    other = ct_cache.repo / "snapshots" / ("0" * 40)
    other.mkdir()
    (other / "config.json").symlink_to(f"../{ct_cache.commit}/config.json")
    (other / "model.safetensors").symlink_to(f"../{ct_cache.commit}/model.safetensors")
    rc, _, err = _cli(capsys, "audit", other)
    assert rc == 0, err


# --- hostile snapshots ----------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["inspect", "resolve", "audit", "run"])
def test_config_linked_out_of_the_cache(tmp_path: Path, ct_cache: HfCache, command: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text(ct_cache.blob("config.json").read_text())
    _relink(ct_cache.snapshot / "config.json", secret)
    _refused(capsys, command, ct_cache.snapshot, "config.json", "outside")


@pytest.mark.parametrize("command", ["inspect", "audit", "run"])
def test_config_linked_to_etc_passwd(ct_cache: HfCache, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    _relink(ct_cache.snapshot / "config.json", "/etc/passwd")
    _refused(capsys, command, ct_cache.snapshot, "config.json", "/etc/passwd")


@pytest.mark.parametrize("command", ["resolve", "audit", "run"])
def test_shard_linked_to_another_repos_blob(tmp_path: Path, ct_cache: HfCache, command: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    other = make_hf_cache(tmp_path, "ct-w8a16", "org/other", cache=ct_cache.cache)
    blob = other.blob("model.safetensors")
    _relink(ct_cache.snapshot / "model.safetensors", os.path.relpath(blob, ct_cache.snapshot))
    _refused(capsys, command, ct_cache.snapshot, "model.safetensors", "models--org--tiny-ct")


@pytest.mark.parametrize("command", ["inspect", "resolve", "audit", "run"])
def test_config_symlink_loop(ct_cache: HfCache, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    _relink(ct_cache.snapshot / "config.json", "config.json")
    _refused(capsys, command, ct_cache.snapshot, "config.json", "symlink loop")


@pytest.mark.parametrize("command", ["resolve", "audit", "run"])
def test_shard_symlink_loop_through_two_links(ct_cache: HfCache, command: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _relink(ct_cache.snapshot / "model.safetensors", "../../blobs/loop-a")
    (ct_cache.repo / "blobs" / "loop-a").symlink_to("loop-b")
    (ct_cache.repo / "blobs" / "loop-b").symlink_to("loop-a")
    _refused(capsys, command, ct_cache.snapshot, "model.safetensors", "symlink loop")


@pytest.mark.parametrize("command", ["inspect", "audit"])
def test_blob_missing(ct_cache: HfCache, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    ct_cache.blob("config.json").unlink()
    _refused(capsys, command, ct_cache.snapshot, "config.json", "dangling symlink")


def test_config_linked_to_the_blobs_directory(ct_cache: HfCache, capsys: pytest.CaptureFixture[str]) -> None:
    _relink(ct_cache.snapshot / "config.json", "../../blobs")
    _refused(capsys, "inspect", ct_cache.snapshot, "config.json", "a directory")


@pytest.mark.parametrize("command", ["inspect", "resolve", "audit", "run"])
def test_snapshot_directory_that_is_itself_a_symlink_elsewhere(tmp_path: Path, ct_cache: HfCache, command: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in ("config.json", "model.safetensors"):
        (elsewhere / name).write_bytes(ct_cache.blob(name).read_bytes())
    fake = ct_cache.repo / "snapshots" / ("f" * 40)
    fake.symlink_to(elsewhere)
    _refused(capsys, command, fake, "snapshot directory", "must not be a symlink")


def test_index_shard_names_still_cannot_climb_out(ct_cache: HfCache) -> None:
    index = {"weight_map": {"lm_head.weight": "../../blobs/x"}}
    blob = ct_cache.repo / "blobs" / "index"
    blob.write_text(json.dumps(index))
    (ct_cache.snapshot / "model.safetensors.index.json").symlink_to("../../blobs/index")
    with pytest.raises(CheckpointError, match="escapes the checkpoint directory"):
        audit_checkpoint(ct_cache.snapshot)


def test_a_non_models_cache_folder_gets_no_allowance(tmp_path: Path) -> None:
    cache = make_hf_cache(tmp_path, "ct-w4a16", "org/tiny")
    renamed = cache.cache / "datasets--org--tiny"
    cache.repo.rename(renamed)
    with pytest.raises(ConfigError, match="outside the checkpoint directory"):
        load_config(renamed / "snapshots" / cache.commit)
