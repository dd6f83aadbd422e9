"""What a layer holds once loaded: its shards' checkpoint tensors, grouped by input transform.

Place in the flow: above :mod:`.codecs`, :mod:`.activations` and :mod:`.chunked`, below
:mod:`.backends` — a backend's ``prepare()`` turns one :class:`ShardGroup` into its state, and
:meth:`ShardGroup.dense` is the dequantized weight every backend's result is checked against.

    >>> import torch
    >>> from quantresolve.dispatch.activations import InputTransform
    >>> from quantresolve.dispatch.codecs import DenseCodec
    >>> shards = [Shard("q", 2, {"weight": torch.ones(2, 4)}), Shard("k", 1, {"weight": torch.zeros(1, 4)})]
    >>> group = ShardGroup(shards, 4, DenseCodec(), InputTransform(), torch.bfloat16, torch.device("cpu"))
    >>> group.n, group.dense().tolist()
    (3, [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from quantresolve.dispatch.activations import InputTransform
from quantresolve.dispatch.chunked import chunk_count, dequantize_into
from quantresolve.dispatch.codecs.base import Tensors, WeightCodec


@dataclass
class Shard:
    """One loaded shard: its name, its output rows, and its checkpoint tensors."""

    name: str | None
    n: int
    tensors: Tensors


@dataclass
class ShardGroup:
    """Consecutive shards run together (one input transform); ``k`` = in_features."""

    shards: list[Shard]
    k: int
    codec: WeightCodec
    transform: InputTransform
    dtype: torch.dtype
    device: torch.device
    extra: dict[str, Any] = field(default_factory=dict)
    #: Set at ``finalize()`` when the backend's prepared state rebuilds :meth:`dense` bit for bit and
    #: the checkpoint tensors were released (see :meth:`~quantresolve.dispatch.backends.base.Backend.rebuild`).
    rebuild: Callable[[], torch.Tensor] | None = None

    @property
    def n(self) -> int:
        return sum(s.n for s in self.shards)

    def dense(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The group's dequantized ``[n, k]`` weight in ``dtype`` (default: the compute dtype).

        Large weights are dequantized in row chunks straight into the result (:mod:`.chunked`),
        so the peak is the result plus one chunk's float32 intermediates.
        """
        dtype = dtype or self.dtype
        # Always row-major: a matmul's rounding sees the layout (on AVX2 machines a column-major
        # weight takes another GEMM path), so chunked, rebuilt and whole weights must agree on it.
        if self.rebuild is not None:
            return self.rebuild().to(dtype).contiguous()
        if len(self.shards) == 1 and chunk_count(self.codec, self.n, self.k) == 1:
            shard = self.shards[0]
            return self.codec.dequantize(shard.tensors, shard.n, self.k).to(dtype).contiguous()
        out = torch.empty(self.n, self.k, dtype=dtype, device=self.device)
        row = 0
        for shard in self.shards:
            dequantize_into(self.codec, shard.tensors, shard.n, self.k, out[row:row + shard.n])
            row += shard.n
        return out


def share_rows(group: ShardGroup, stacked: torch.Tensor, suffix: str = "weight") -> None:
    """Point each shard's ``suffix`` tensor at its rows of ``stacked`` when they hold the same values
    (a backend that keeps the checkpoint's int8 / FP8 matrix as it is, concatenated along N): the
    layer then holds the matrix once, and ``dequantize()`` reads the same numbers."""
    row = 0
    for shard in group.shards:
        rows = stacked[row:row + shard.n]
        row += shard.n
        raw = shard.tensors.get(suffix)
        if raw is not None and raw.dtype == rows.dtype and raw.shape == rows.shape and torch.equal(raw, rows):
            shard.tensors[suffix] = rows
