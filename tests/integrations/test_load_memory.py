"""load_quantized keeps no part of the checkpoint file mapped, and what it reads is what safe_open reads.

Peak memory near the quantized size (issue #6) needs every tensor the model keeps to own its memory:
a tensor backed by the safetensors memory map keeps the whole mapping, and every page of it ever
touched, alive for the model's lifetime (docs/benchmarks.md, "Loading memory").
"""

from __future__ import annotations

import json
import shutil
import struct
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from quantresolve.dispatch import QuantLinear
from quantresolve.errors import CheckpointError
from quantresolve.integrations.transformers import load_quantized
from quantresolve.integrations.transformers.shard_reader import TORCH_DTYPES, ShardReader
from quantresolve.integrations.transformers.targets import ParamTarget

from ..conftest import checkpoint_dir
from .loaded import logits, reference

pytestmark = pytest.mark.filterwarnings("ignore")


def _mapped_files(root: Path) -> list[str]:
    """Paths under ``root`` that this process has memory-mapped (``/proc/self/maps``)."""
    lines = Path("/proc/self/maps").read_text().splitlines()
    return sorted({line.split(maxsplit=5)[5] for line in lines
                   if len(line.split(maxsplit=5)) == 6 and line.split(maxsplit=5)[5].startswith(str(root))})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_no_checkpoint_mapping_after_load(tmp_path: Path) -> None:
    # A private copy: no other test in this process can have mapped these files.
    root = tmp_path / "ct-w4a16"
    shutil.copytree(checkpoint_dir("ct-w4a16"), root)
    model = load_quantized(root)
    assert _mapped_files(root) == []
    embedding = model.get_input_embeddings().weight
    assert embedding.untyped_storage().nbytes() == embedding.numel() * embedding.element_size()  # owns its bytes
    with safe_open(str(root / "model.safetensors"), "pt") as handle:
        assert torch.equal(embedding, handle.get_tensor("model.embed_tokens.weight"))
    with torch.no_grad():
        got = model(reference("ct-w4a16")["input_ids"]).logits.float()
    assert torch.equal(got, logits("ct-w4a16"))  # the same weights as the fixture loaded in place


@pytest.mark.parametrize("profile", [None, "llama"])
def test_quantized_layers_are_finalized_before_dense_tensors_are_read(profile: str | None,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # The repack's transient buffers must not coincide with the dense embedding and head.
    events: list[str] = []
    load, finalize = ParamTarget.load, QuantLinear.finalize
    monkeypatch.setattr(ParamTarget, "load", lambda self, *a: (events.append("dense"), load(self, *a))[1])
    monkeypatch.setattr(QuantLinear, "finalize", lambda self: (events.append("finalize"), finalize(self))[1])
    model = load_quantized(checkpoint_dir("ct-w4a16"), profile=profile)
    layers = [m for m in model.modules() if isinstance(m, QuantLinear)]
    assert events.count("finalize") == len(layers) == (14 if profile is None else 8)  # fused: qkv, gate_up
    assert "dense" in events and events.index("dense") > max(i for i, e in enumerate(events) if e == "finalize")
    with torch.no_grad():
        got = model(reference("ct-w4a16")["input_ids"]).logits.float()
    assert torch.allclose(got, logits("ct-w4a16"), atol=0.02)


def _raw_shard(path: Path, entries: dict[str, tuple[str, list[int], bytes]]) -> Path:
    header, data, offset = {}, b"", 0
    for name, (dtype, shape, payload) in entries.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(payload)]}
        data, offset = data + payload, offset + len(payload)
    head = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + data)
    return path


def test_reader_matches_safe_open_for_every_dtype(tmp_path: Path) -> None:
    shapes = {"BOOL": [3], "F4": [2, 4], "F32": [], "I64": [0, 3], "BF16": [2, 3], "U16": [5]}
    entries = {}
    for i, code in enumerate(sorted(TORCH_DTYPES)):
        shape = shapes.get(code, [2, 2])
        width = {"F4": 4, "BOOL": 8}.get(code, torch.empty(0, dtype=TORCH_DTYPES[code]).element_size() * 8)
        count = int(torch.tensor(shape).prod()) * width // 8
        payload = bytes((3 * i + j) % 2 if code == "BOOL" else (7 * i + j) % 251 for j in range(count))
        entries[f"t.{code}"] = (code, shape, payload)
    path = _raw_shard(tmp_path / "m.safetensors", entries)
    with ShardReader(path, "m.safetensors") as shard, safe_open(str(path), "pt") as handle:
        for name in entries:
            got, want = shard.read(name), handle.get_tensor(name)
            assert (got.dtype, got.shape) == (want.dtype, want.shape), name
            assert torch.equal(got.reshape(-1).view(torch.uint8), want.reshape(-1).view(torch.uint8)), name
            assert got.untyped_storage().nbytes() == len(entries[name][2]), name  # nothing shared


def test_reader_reads_what_save_file_wrote(tmp_path: Path) -> None:
    tensors = {"b": torch.arange(12, dtype=torch.bfloat16).reshape(3, 4), "a": torch.tensor([7, -1], dtype=torch.int32)}
    save_file(tensors, str(tmp_path / "m.safetensors"))
    with ShardReader(tmp_path / "m.safetensors", "m.safetensors") as shard:
        assert sorted(shard.names()) == ["a", "b"]
        assert shard.offset("b") != shard.offset("a")
        for name, tensor in tensors.items():
            assert torch.equal(shard.read(name), tensor)


def test_reader_errors_name_file_and_tensor(tmp_path: Path) -> None:
    path = _raw_shard(tmp_path / "m.safetensors", {"w": ("F6_E2M3", [4], bytes(3)), "v": ("F4", [2, 3], bytes(3))})
    with ShardReader(path, "m.safetensors") as shard:
        with pytest.raises(CheckpointError, match=r"m\.safetensors.*w.*F6_E2M3 has no torch"):
            shard.read("w")
        with pytest.raises(CheckpointError, match=r"v.*last dimension must be even"):
            shard.read("v")
        with pytest.raises(CheckpointError, match="no such tensor"):
            shard.read("missing")
    good = _raw_shard(tmp_path / "t.safetensors", {"w": ("F32", [4], bytes(16))})
    shard = ShardReader(good, "t.safetensors")
    good.write_bytes(good.read_bytes()[:-4])  # truncated after the header was read
    with pytest.raises(CheckpointError, match=r"t\.safetensors.*w.*truncated file: 4 bytes missing"):
        shard.read("w")
    shard.close()
