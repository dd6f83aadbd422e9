"""Raw safetensors writers shared by the checkpoint tests (header bytes written by hand)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

_BYTES = {"BF16": 2, "F16": 2, "F32": 4, "U8": 1, "I8": 1, "F8_E4M3": 1, "I32": 4, "I64": 8}


def entries_header(entries: dict[str, tuple[str, list[int]]]) -> tuple[dict, int]:
    """A well-formed header dict (contiguous offsets) and its data size."""
    header: dict = {}
    offset = 0
    for name, (dtype, shape) in entries.items():
        size = _BYTES[dtype]
        for d in shape:
            size *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    return header, offset


def write_raw(path: Path, header_bytes: bytes, data_size: int, length: int | None = None) -> Path:
    """Write ``length`` (default: the true one) + header bytes + zeroed data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(header_bytes) if length is None else length))
        handle.write(header_bytes)
        handle.write(bytes(data_size))
    return path


def write_shard(path: Path, entries: dict[str, tuple[str, list[int]]]) -> Path:
    header, size = entries_header(entries)
    return write_raw(path, json.dumps(header).encode(), size)


def write_index(root: Path, weight_map: dict[str, str], metadata: dict | None = None) -> Path:
    path = root / "model.safetensors.index.json"
    path.write_text(json.dumps({"metadata": metadata or {}, "weight_map": weight_map}))
    return path
