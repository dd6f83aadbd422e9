"""What a checkpoint holds, read from headers only: :class:`TensorInfo` and :class:`CheckpointCatalog`.

A catalog is the reader's whole result. Tensor data is never loaded; only the
safetensors headers (or, for index-only directories, the index's names)::

    >>> t = TensorInfo("model.layers.0.mlp.down_proj.weight", "U8", (7168, 1024),
    ...                "model-00001-of-00002.safetensors", 7340032)
    >>> t.numel
    7340032
    >>> TensorInfo("lm_head.weight", None, None, "model-00002-of-00002.safetensors", None).numel is None
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One tensor as its safetensors header describes it.

    ``dtype`` is the safetensors code (``"BF16"``, ``"F8_E4M3"``, ``"U8"``, ``"I32"``...),
    ``shape`` the stored shape, ``file`` the shard name relative to the checkpoint root,
    ``nbytes`` the size of its data. For an index-only catalog (no shard headers
    available) ``dtype``, ``shape`` and ``nbytes`` are ``None``.
    """

    name: str
    dtype: str | None
    shape: tuple[int, ...] | None
    file: str
    nbytes: int | None

    @property
    def numel(self) -> int | None:
        """Number of stored elements, or ``None`` when the header is unknown."""
        return None if self.shape is None else math.prod(self.shape)


@dataclass(frozen=True, slots=True)
class CheckpointCatalog:
    """Every tensor of a checkpoint directory, sorted by name.

    ``has_headers`` is False when only ``model.safetensors.index.json`` was present
    (names and shard files known, dtypes and shapes not: reduced evidence).
    ``shards`` lists the shard names (relative to ``root``) in sorted order;
    ``index_metadata`` is the index's ``metadata`` object (empty without an index);
    ``total_bytes`` sums tensor sizes from headers (for index-only catalogs: the
    index's ``metadata.total_size`` when it is an integer, else ``None``).
    ``warnings`` holds oddities that are not errors (tensors missing from the index).
    """

    root: Path
    tensors: Mapping[str, TensorInfo]
    has_headers: bool
    shards: tuple[str, ...]
    index_metadata: Mapping[str, Any] = field(default_factory=dict)
    total_bytes: int | None = None
    warnings: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.tensors)
