"""Shared test helpers: paths to the repo, the shared corpus and the fixtures."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
FIXTURES = REPO / "fixtures"
CHECKPOINTS = FIXTURES / "checkpoints"


def corpus_dir(name: str) -> Path:
    """A corpus folder, or skip the test when ../shared/corpus is absent."""
    path = CORPUS / name
    if not path.is_dir():
        pytest.skip(f"corpus folder {name} not available")
    return path


def corpus_folders() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.is_dir()) if CORPUS.is_dir() else []


def checkpoint_dir(name: str) -> Path:
    """A generated fixture checkpoint, or skip when it has not been generated."""
    path = CHECKPOINTS / name
    if not (path / "config.json").is_file():
        pytest.skip(f"fixture checkpoint {name} not generated")
    return path


def fixtures_module(name: str) -> ModuleType:
    """``fixtures/<name>.py``, imported by path once per process (``fixtures/`` is a script folder,
    not a package: the generator imports its helpers by bare name, so the folder is on ``sys.path``
    while the module runs, as it is for the generator).

    >>> fixtures_module("arith_fingerprint").METADATA_KEY
    'arith_fingerprint'
    """
    key = f"_quantresolve_fixtures_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, FIXTURES / f"{name}.py")
        assert spec is not None and spec.loader is not None, name
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        sys.path.insert(0, str(FIXTURES))
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(FIXTURES))
    return sys.modules[key]


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A :class:`tests.hub_server.HubServer` on loopback that huggingface_hub talks to.

    huggingface_hub reads ``HF_ENDPOINT``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE`` and the token path
    once, at import, into ``huggingface_hub.constants``: those are patched for this process, and
    the environment for subprocesses. The cache is an empty temporary one, no token is set.
    """
    from huggingface_hub import constants

    from tests.hub_server import HubServer

    server = HubServer().start()
    cache = tmp_path / "hf-cache"
    for name, value in (("ENDPOINT", server.url),
                        ("HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}"),
                        ("HF_HUB_CACHE", str(cache)), ("HF_HUB_OFFLINE", False),
                        ("HF_TOKEN_PATH", str(tmp_path / "no-token")),
                        ("HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens")),
                        ("AGENT_HARNESSES_PATH", str(tmp_path / "agent-harnesses.json"))):
        monkeypatch.setattr(constants, name, value)
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    try:
        yield server
    finally:
        server.stop()
