"""Read safetensors tensors into memory the process owns: plain reads, no memory map.

Why not ``safetensors.safe_open``: it maps the whole shard and hands out tensors that are
views of that one mapping. A tensor the model keeps as stored — the embedding, ``lm_head``,
norms, a backend's unchanged codes — keeps the whole mapping alive, so every page the load
ever touched stays resident in the process (file-backed) next to the backend's own copies,
and checkpoint tensors a backend releases after ``finalize()`` do not free anything. On the
271 M-parameter compressed-tensors W4A16 Llama of ``benchmarks/load_memory.py`` that held
the whole 226 MB checkpoint mapped on top of 116 MB of repacked linears: 1.56x the quantized
size (docs/benchmarks.md, "Loading memory"). Here each tensor is read with ``readinto``
into a buffer of exactly its size, so every tensor owns its bytes, a released one is gone,
and no mapping outlives the read. The file's pages still pass through the OS page cache,
which is shared and reclaimable, not the process's. Cost: one copy per byte from the page
cache, as the mapping's page faults did.

The header is validated by :func:`quantresolve.checkpoint.header.read_shard_header` (errors
name the shard and the tensor); dtypes map as safetensors maps them to torch (``F4``: pairs
packed as ``float4_e2m1fn_x2``, last dimension halved). The bytes are used as stored:
safetensors data is little-endian, as are the hosts torch runs on.

    >>> import tempfile, torch
    >>> from safetensors.torch import save_file
    >>> d = Path(tempfile.mkdtemp()); save_file({"w": torch.arange(6.).reshape(2, 3)}, str(d / "m.safetensors"))
    >>> with ShardReader(d / "m.safetensors", "m.safetensors") as shard:
    ...     shard.read("w").tolist(), sorted(shard.names())
    ([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], ['w'])
"""

from __future__ import annotations

import io
from pathlib import Path
from types import TracebackType

import torch

from quantresolve.checkpoint.header import read_shard_header
from quantresolve.errors import CheckpointError

#: The torch dtype of each safetensors code that torch can hold (``F6_*`` it cannot).
TORCH_DTYPES: dict[str, torch.dtype] = {
    "BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8, "U16": torch.uint16, "I16": torch.int16,
    "U32": torch.uint32, "I32": torch.int32, "U64": torch.uint64, "I64": torch.int64,
    "F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64,
    "C64": torch.complex64, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
    "F8_E4M3FNUZ": torch.float8_e4m3fnuz, "F8_E5M2FNUZ": torch.float8_e5m2fnuz,
    "F8_E8M0": torch.float8_e8m0fnu, "F4": torch.float4_e2m1fn_x2,
}

#: Codes whose torch dtype packs two stored elements per byte (the last dimension halves).
PAIR_PACKED = frozenset({"F4"})


class ShardReader:
    """One open safetensors shard; :meth:`read` returns a tensor in freshly allocated CPU memory.

    ``file`` is the shard's name in error messages (relative to the checkpoint root).
    """

    def __init__(self, path: Path, file: str) -> None:
        self.file = file
        self._header = read_shard_header(path, file)  # every span checked there
        start = self._header.data_start
        self._offsets = {name: start + begin for begin, _, name in self._header.spans}
        try:
            self._handle = io.FileIO(path, "r")
        except OSError as err:
            raise CheckpointError(f"cannot open file: {err.strerror}", file=file) from None

    def names(self) -> list[str]:
        return list(self._header.tensors)

    def offset(self, name: str) -> int:
        """Byte offset of ``name``'s data in the file (reading in this order is sequential)."""
        return self._offsets.get(name, -1)

    def read(self, name: str) -> torch.Tensor:
        """The tensor ``name`` as stored, in memory that nothing else references."""
        info = self._header.tensors.get(name)
        if info is None or info.dtype is None or info.shape is None or info.nbytes is None:
            raise CheckpointError("no such tensor in this shard", file=self.file, field=name)
        dtype = TORCH_DTYPES.get(info.dtype)
        if dtype is None:
            raise CheckpointError(f"dtype {info.dtype} has no torch equivalent", file=self.file, field=name)
        shape = list(info.shape)
        if info.dtype in PAIR_PACKED:
            if not shape or shape[-1] % 2:
                raise CheckpointError(f"{info.dtype} tensor of shape {list(info.shape)}: the last dimension "
                                      "must be even to pack pairs", file=self.file, field=name)
            shape[-1] //= 2
        buffer = torch.empty(info.nbytes, dtype=torch.uint8)
        self._fill(buffer, self._offsets[name], name)
        return buffer.view(dtype).reshape(shape)

    def _fill(self, buffer: torch.Tensor, offset: int, name: str) -> None:
        view = memoryview(buffer.numpy())
        done = 0
        try:
            self._handle.seek(offset)
            while done < len(view):  # one read() returns at most ~2 GiB on Linux
                got = self._handle.readinto(view[done:])
                if not got:
                    raise CheckpointError(f"truncated file: {len(view) - done} bytes missing",
                                          file=self.file, field=name)
                done += got
        except OSError as err:
            raise CheckpointError(f"cannot read tensor data: {err.strerror}", file=self.file,
                                  field=name) from None

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> ShardReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
