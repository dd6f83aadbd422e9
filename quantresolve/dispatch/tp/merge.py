"""Put the ranks' column-parallel parts of a (fused) layer back in the full layer's order.

Rank ``r`` of a fused q/k/v layer holds ``[q_r, k_r, v_r]``; the full layer is
``[q_0, q_1, …, k_0, k_1, …, v_0, v_1, …]``. A plain concatenation of the ranks'
outputs would interleave the shards wrongly.

    >>> import torch
    >>> r0, r1 = torch.tensor([[1, 10, 100]]), torch.tensor([[2, 20, 200]])   # q, k, v of 1 row each
    >>> merge_column_parts([r0, r1], [1, 1, 1]).tolist()
    [[1, 2, 10, 20, 100, 200]]
"""

from __future__ import annotations

import torch


def merge_column_parts(parts: list[torch.Tensor], local_sizes: list[int], dim: int = -1) -> torch.Tensor:
    """Concatenate the ranks' ``parts`` (in rank order) shard by shard along ``dim``."""
    per_rank = [p.split(local_sizes, dim=dim) for p in parts]
    return torch.cat([chunk for shard in zip(*per_rank, strict=True) for chunk in shard], dim=dim)
