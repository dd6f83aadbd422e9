"""Multi-shard checkpoints: tensors are streamed from every shard the index names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from quantresolve.errors import LoadError
from quantresolve.integrations.transformers import load_quantized

from ..conftest import checkpoint_dir
from .loaded import logits, reference

pytestmark = pytest.mark.filterwarnings("ignore")


def _resharded(tmp_path: Path, shards: int) -> Path:
    """ct-w4a16 split round-robin over ``shards`` files with a model.safetensors.index.json."""
    dst = tmp_path / "sharded"
    shutil.copytree(checkpoint_dir("ct-w4a16"), dst)
    tensors = load_file(str(dst / "model.safetensors"))
    (dst / "model.safetensors").unlink()
    weight_map: dict[str, str] = {}
    names = sorted(tensors)
    for i in range(shards):
        file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[i::shards]}
        save_file(part, str(dst / file), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, file))
    index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in tensors.values())},
             "weight_map": weight_map}
    (dst / "model.safetensors.index.json").write_text(json.dumps(index))
    return dst


def test_three_shards_load_like_one(tmp_path: Path) -> None:
    model = load_quantized(_resharded(tmp_path, 3))
    with torch.no_grad():
        out = model(reference("ct-w4a16")["input_ids"]).logits.float()
    assert torch.equal(out, logits("ct-w4a16"))


def test_index_without_its_shards_is_refused(tmp_path: Path) -> None:
    path = _resharded(tmp_path, 2)
    for shard in path.glob("model-*.safetensors"):
        shard.unlink()
    with pytest.raises(LoadError, match="no tensor data"):
        load_quantized(path)
