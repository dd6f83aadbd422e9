"""Parse and validate one safetensors header without touching tensor data.

Why not ``safetensors.safe_open``? It memory-maps the whole file and returns
only a generic error for a bad file; the audit needs (a) a hard cap on the
header length checked *before* anything is allocated, (b) errors that name the
shard and the exact tensor/field, (c) the raw byte spans to verify coverage,
and (d) no data access at all, so that a 400 GB checkpoint is catalogued in a
second. The format is small enough to check fully here: an 8-byte little-endian
header length ``n``, ``n`` bytes of UTF-8 JSON, then the data buffer. Each
entry is ``{"dtype", "shape", "data_offsets": [begin, end]}`` relative to the
buffer; spans must tile the buffer exactly (no gaps, no overlap, nothing
beyond the file). ``__metadata__`` is an optional string→string map.
(The tests cross-check this parser against ``safe_open`` on real files.)

    >>> import tempfile, json, struct
    >>> d = Path(tempfile.mkdtemp())
    >>> head = json.dumps({"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}}).encode()
    >>> _ = (d / "m.safetensors").write_bytes(struct.pack("<Q", len(head)) + head + bytes(8))
    >>> read_shard_header(d / "m.safetensors", "m.safetensors").tensors["w"].shape
    (2, 2)
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError
from .catalog import TensorInfo
from .dtypes import DTYPE_BITS
from .jsonutil import strict_loads

#: The safetensors format's own ceiling on header size (the Rust crate refuses more).
MAX_HEADER_BYTES = 100_000_000
_ENTRY_KEYS = frozenset({"dtype", "shape", "data_offsets"})
_TENSOR_INFO_FACTORY = (
    object.__new__,
    *(TensorInfo.__dict__[slot].__set__ for slot in ("name", "dtype", "shape", "file", "nbytes")),
)


@dataclass(frozen=True, slots=True)
class ShardHeader:
    """The validated content of one shard's header."""

    file: str
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    data_bytes: int
    #: ``(begin, end, name)`` of every tensor, relative to :attr:`data_start`, in file order.
    spans: list[tuple[int, int, str]]
    #: Byte offset of the data buffer in the file (``8 + header length``).
    data_start: int


def _entry_error(file: str, name: str, detail: str) -> CheckpointError:
    return CheckpointError(detail, file=file, field=f"[{json.dumps(name)}]")


def _validate_entry(file: str, name: str, entry: object) -> tuple[str, tuple[int, ...], int, int]:
    """Slow path: find out *what* is wrong with an entry (only called once one is wrong)."""
    if not isinstance(entry, dict):
        raise _entry_error(
            file, name, f"tensor entry must be a JSON object, got {type(entry).__name__}"
        )
    missing = _ENTRY_KEYS - entry.keys()
    if missing:
        raise _entry_error(file, name, f"tensor entry lacks {sorted(missing)}")
    extra = entry.keys() - _ENTRY_KEYS
    if extra:
        raise _entry_error(file, name, f"tensor entry has unexpected keys {sorted(extra)}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise _entry_error(file, name, f"unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise _entry_error(
            file, name, f"shape must be a list of non-negative integers, got {shape!r}"
        )
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(type(o) is int and o >= 0 for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise _entry_error(
            file, name, f"data_offsets must be [begin, end] with 0 <= begin <= end, got {offsets!r}"
        )
    bits = DTYPE_BITS[dtype] * math.prod(shape)
    if bits % 8 or bits // 8 != offsets[1] - offsets[0]:
        raise _entry_error(
            file,
            name,
            f"data_offsets span {offsets[1] - offsets[0]} bytes but {dtype}{shape} needs {bits / 8:g}",
        )
    return dtype, tuple(shape), offsets[0], offsets[1]


def _parse_entries(file: str, header: dict, data_bytes: int,
                   exact: bool) -> tuple[dict[str, TensorInfo], list[tuple[int, int, str]]]:
    """Validate every entry and the byte tiling; ``exact`` forces the slow per-field checks.
    Returns the tensors and their byte spans in file order.

    The fast path relies on two facts established by :func:`read_shard_header`:
    the JSON held no floats/NaN (refused while decoding) and, unless ``exact``,
    no ``true``/``false`` literals. Then ``math.prod(shape)`` is an ``int`` only
    if every dimension is an int (a string or list dimension turns the running
    product into a string or list; ``None`` raises), and ``min(shape) >= 0``
    rules out negative dimensions.
    """
    tensors: dict[str, TensorInfo] = {}
    spans: list[tuple[int, int, str]] = []
    bits_of = DTYPE_BITS.get
    prod = math.prod
    new, set_name, set_dtype, set_shape, set_file, set_nbytes = _TENSOR_INFO_FACTORY
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = entry["dtype"]
            shape = entry["shape"]
            begin, end = entry["data_offsets"]
            numel = prod(shape)
            bits = bits_of(dtype)
            ok = (
                not exact
                and bits is not None
                and type(numel) is int
                and type(shape) is list
                and type(begin) is int
                and type(end) is int
                and 0 <= begin <= end
                and len(entry) == 3
                and (not shape or min(shape) >= 0)
                and bits * numel == 8 * (end - begin)
            )
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            dtype, shp, begin, end = _validate_entry(file, name, entry)
            shape = list(shp)
        if not name:
            raise _entry_error(file, name, "empty tensor name")
        # Equivalent to TensorInfo(name, dtype, tuple(shape), file, end - begin) at half the cost:
        # the frozen dataclass __init__ goes through object.__setattr__ five times.
        info = new(TensorInfo)
        set_name(info, name)
        set_dtype(info, dtype)
        set_shape(info, tuple(shape))
        set_file(info, file)
        set_nbytes(info, end - begin)
        tensors[name] = info
        spans.append((begin, end, name))
    spans.sort()
    position, previous = 0, None
    for begin, end, name in spans:
        if begin < position:
            raise _entry_error(
                file, name, f"data_offsets [{begin}, {end}] overlap tensor {previous!r}"
            )
        if begin > position:
            raise _entry_error(
                file, name, f"data_offsets [{begin}, {end}] leave a gap after byte {position}"
            )
        position, previous = end, name
    if position > data_bytes:
        raise CheckpointError(
            f"tensor {previous!r} ends at data byte {position} but the file holds only {data_bytes} "
            "data bytes (truncated file or lying offsets)",
            file=file,
        )
    if position < data_bytes:
        raise CheckpointError(
            f"tensors cover {position} data bytes but the file holds {data_bytes} (trailing bytes)",
            file=file,
        )
    return tensors, spans


def _check_metadata(file: str, metadata: object) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(
            "__metadata__ must be an object of strings", file=file, field="__metadata__"
        )
    return metadata


def header_length(prefix: bytes, file: str, size: int) -> int:
    """The header length ``n`` announced by a shard's first 8 bytes, checked against the cap and ``size``.

    ``size`` is the whole file's size in bytes (a local ``stat``, or a server's ``Content-Range``).

        >>> header_length((16).to_bytes(8, "little"), "m.safetensors", 24)
        16
        >>> header_length((99).to_bytes(8, "little"), "m.safetensors", 24)
        Traceback (most recent call last):
        ...
        quantresolve.errors.CheckpointError: m.safetensors: header length 99 is larger than the file (24 bytes): truncated or lying header
    """
    if len(prefix) < 8:
        raise CheckpointError(
            f"truncated file: {size} bytes, shorter than the 8-byte header length", file=file
        )
    length = int.from_bytes(prefix[:8], "little")
    if length > MAX_HEADER_BYTES:
        raise CheckpointError(
            f"header length {length} exceeds the {MAX_HEADER_BYTES}-byte safetensors limit",
            file=file,
        )
    if 8 + length > size:
        raise CheckpointError(
            f"header length {length} is larger than the file ({size} bytes): truncated or lying header",
            file=file,
        )
    return length


def parse_shard_header(raw: bytes, file: str, size: int) -> ShardHeader:
    """Validate the ``n`` header bytes that follow the length prefix of a ``size``-byte shard.

    The one validator of every header, wherever its bytes come from: a local file
    (:func:`read_shard_header`) or HTTP range reads of a remote repository
    (:mod:`.remote`), so both get exactly the same checks.
    """
    header = strict_loads(raw, file=file, what="safetensors header", integers_only=True)
    if not isinstance(header, dict):
        raise CheckpointError(
            f"safetensors header must be a JSON object, got {type(header).__name__}", file=file
        )
    metadata = _check_metadata(file, header.get("__metadata__"))
    data_bytes = size - 8 - len(raw)
    exact = b"true" in raw or b"false" in raw  # booleans pass as ints: check every field then
    tensors, spans = _parse_entries(file, header, data_bytes, exact)
    return ShardHeader(file, tensors, metadata, data_bytes, spans, 8 + len(raw))


def read_shard_header(path: Path, file: str) -> ShardHeader:
    """Read and validate the header of the safetensors file at ``path`` (named ``file`` in errors).

    ``path`` must already be contained (:meth:`~quantresolve.util.containment.Confinement.locate`). Reads ``8 + n`` bytes, no more.
    """
    try:
        size = os.stat(path).st_size
        with open(path, "rb") as handle:
            length = header_length(handle.read(8), file, size)
            raw = handle.read(length)
    except OSError as err:
        raise CheckpointError(f"cannot read file: {err.strerror}", file=file) from None
    if len(raw) < length:
        raise CheckpointError(
            f"truncated file: header needs {length} bytes, got {len(raw)}", file=file
        )
    return parse_shard_header(raw, file, size)
