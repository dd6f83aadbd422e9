"""Positive reading: real safetensors files (written by the safetensors library) in every layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import save_file
from safetensors.torch import save_file as save_torch

from quantresolve.checkpoint import read_checkpoint

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "checkpoints"


def _nvfp4_linear(prefix: str, n: int, k: int) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}.weight": torch.zeros(n, k // 2, dtype=torch.uint8),
        f"{prefix}.weight_scale": torch.zeros(n, k // 16, dtype=torch.float8_e4m3fn),
        f"{prefix}.weight_scale_2": torch.ones((), dtype=torch.float32),
        f"{prefix}.input_scale": torch.ones((), dtype=torch.float32),
    }


def _assert_matches_safe_open(catalog, root: Path) -> None:
    """Our parser agrees with the safetensors library on every name, dtype and shape."""
    seen = {}
    for shard in catalog.shards:
        with safe_open(root / shard, framework="numpy") as handle:
            for name in handle.keys():  # noqa: SIM118 (safe_open is not iterable)
                sl = handle.get_slice(name)
                seen[name] = (sl.get_dtype(), tuple(sl.get_shape()), shard)
    ours = {n: (t.dtype, t.shape, t.file) for n, t in catalog.tensors.items()}
    assert ours == seen


def test_single_file_numpy(tmp_path: Path) -> None:
    tensors = {
        "model.embed_tokens.weight": np.zeros((8, 4), np.float32),
        "model.layers.0.mlp.down_proj.weight": np.zeros((4, 6), np.int8),
        "model.layers.0.mlp.down_proj.SCB": np.zeros((4,), np.float32),
        "model.layers.0.mlp.down_proj.weight_format": np.zeros((), np.uint8),
        "model.layers.0.ids": np.zeros((3,), np.int64),
    }
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    catalog = read_checkpoint(tmp_path)
    assert catalog.has_headers
    assert catalog.shards == ("model.safetensors",)
    assert list(catalog.tensors) == sorted(tensors)
    assert catalog.tensors["model.layers.0.mlp.down_proj.weight"].dtype == "I8"
    assert catalog.tensors["model.layers.0.ids"].dtype == "I64"
    assert catalog.tensors["model.layers.0.mlp.down_proj.weight_format"].shape == ()
    assert catalog.total_bytes == sum(a.nbytes for a in tensors.values())
    _assert_matches_safe_open(catalog, tmp_path)


def test_single_file_path_argument(tmp_path: Path) -> None:
    save_file({"a.weight": np.zeros((2, 2), np.float32)}, tmp_path / "x.safetensors")
    catalog = read_checkpoint(tmp_path / "x.safetensors")
    assert catalog.shards == ("x.safetensors",)
    assert catalog.root == tmp_path


def test_sharded_with_index_torch_dtypes(tmp_path: Path) -> None:
    shard_a = _nvfp4_linear("model.layers.0.mlp.down_proj", 64, 128)
    shard_b = {
        "lm_head.weight": torch.zeros(16, 128, dtype=torch.bfloat16),
        "model.layers.0.self_attn.k_proj.k_scale": torch.ones((), dtype=torch.float32),
    }
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    save_torch(shard_a, tmp_path / names[0])
    save_torch(shard_b, tmp_path / names[1])
    weight_map = {n: names[0] for n in shard_a} | {n: names[1] for n in shard_b}
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 123}, "weight_map": weight_map})
    )
    calls = []
    catalog = read_checkpoint(tmp_path, on_shard=lambda d, t, n: calls.append((d, t, n)))
    assert calls == [(1, 2, names[0]), (2, 2, names[1])]
    assert catalog.shards == tuple(names)
    assert catalog.index_metadata == {"total_size": 123}
    assert catalog.warnings == ()
    w = catalog.tensors["model.layers.0.mlp.down_proj.weight"]
    assert (w.dtype, w.shape, w.file, w.nbytes) == ("U8", (64, 64), names[0], 64 * 64)
    assert catalog.tensors["model.layers.0.mlp.down_proj.weight_scale"].dtype == "F8_E4M3"
    assert catalog.tensors["lm_head.weight"].dtype == "BF16"
    _assert_matches_safe_open(catalog, tmp_path)


def test_several_files_without_index(tmp_path: Path) -> None:
    save_file({"b.weight": np.zeros(2, np.float16)}, tmp_path / "b.safetensors")
    save_file({"a.weight": np.zeros(2, np.float16)}, tmp_path / "a.safetensors")
    (tmp_path / "notes.txt").write_text("ignored")
    catalog = read_checkpoint(tmp_path)
    assert catalog.shards == ("a.safetensors", "b.safetensors")
    assert catalog.tensors["b.weight"].file == "b.safetensors"
    assert catalog.tensors["a.weight"].dtype == "F16"


def test_tensor_missing_from_index_is_a_warning(tmp_path: Path) -> None:
    save_file(
        {"a.weight": np.zeros(2, np.float32), "b.weight": np.zeros(2, np.float32)},
        tmp_path / "s.safetensors",
    )
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a.weight": "s.safetensors"}})
    )
    catalog = read_checkpoint(tmp_path)
    assert set(catalog.tensors) == {"a.weight", "b.weight"}
    assert len(catalog.warnings) == 1 and "b.weight" in catalog.warnings[0]


def test_index_only_directory(tmp_path: Path) -> None:
    weight_map = {"z.weight": "m-2.safetensors", "a.weight": "m-1.safetensors"}
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 99}, "weight_map": weight_map})
    )
    catalog = read_checkpoint(tmp_path)
    assert not catalog.has_headers
    assert list(catalog.tensors) == ["a.weight", "z.weight"]
    assert catalog.tensors["a.weight"].dtype is None and catalog.tensors["a.weight"].shape is None
    assert catalog.tensors["z.weight"].file == "m-2.safetensors"
    assert catalog.total_bytes == 99
    assert catalog.shards == ("m-1.safetensors", "m-2.safetensors")


def test_hf_cache_snapshot_symlinks_into_blobs(tmp_path: Path) -> None:
    repo = tmp_path / "hub" / "models--org--name"
    blobs, snap = repo / "blobs", repo / "snapshots" / "abc123"
    blobs.mkdir(parents=True)
    snap.mkdir(parents=True)
    save_file({"a.weight": np.zeros(2, np.float32)}, blobs / "deadbeef")
    os.symlink("../../blobs/deadbeef", snap / "model.safetensors")
    assert read_checkpoint(snap).tensors["a.weight"].dtype == "F32"


def test_deterministic(tmp_path: Path) -> None:
    save_file(
        {f"l.{i}.weight": np.zeros(2, np.float32) for i in (3, 1, 2)},
        tmp_path / "model.safetensors",
    )
    first, second = read_checkpoint(tmp_path), read_checkpoint(tmp_path)
    assert list(first.tensors.items()) == list(second.tensors.items())
    assert list(first.tensors) == ["l.1.weight", "l.2.weight", "l.3.weight"]


@pytest.mark.parametrize(
    "name", sorted(p.name for p in FIXTURES.glob("*")) if FIXTURES.is_dir() else []
)
def test_real_producer_fixtures_match_safe_open(name: str) -> None:
    root = FIXTURES / name
    if not (root / "model.safetensors").is_file():
        pytest.skip("fixture not generated")
    catalog = read_checkpoint(root)
    _assert_matches_safe_open(catalog, root)
