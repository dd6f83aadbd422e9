"""Shape helpers every producer's activation arithmetic shares: blocks along K, and the dynamic amax.

Pure tensor functions; the rounding itself is each producer's (the modules beside this one).

    >>> import torch
    >>> b, k = split_blocks(torch.arange(5.0).reshape(1, 5), 2)
    >>> b.tolist(), k, join_blocks(b, k).tolist()
    ([[[0.0, 1.0], [2.0, 3.0], [4.0, 0.0]]], 5, [[0.0, 1.0, 2.0, 3.0, 4.0]])
"""

from __future__ import annotations

import torch

from quantresolve.dispatch.activations.quant import ActQuant

Tensor = torch.Tensor


def split_blocks(x: Tensor, group: int) -> tuple[Tensor, int]:
    """``x`` ``[..., K]`` → ``[..., K'/group, group]`` (zero-padded to whole blocks) and K."""
    k = x.shape[-1]
    pad = (-k) % group
    xp = torch.nn.functional.pad(x, (0, pad)) if pad else x
    return xp.unflatten(-1, (-1, group)), k


def join_blocks(b: Tensor, k: int) -> Tensor:
    """The inverse of :func:`split_blocks`: ``[..., K'/group, group]`` → ``[..., K]``."""
    return b.flatten(-2)[..., :k]


def row_amax(act: ActQuant, x: Tensor) -> Tensor:
    """Dynamic amax over the tensor or each row (in ``x``'s dtype: a max is exact in any dtype)."""
    return x.abs().amax() if act.granularity == "tensor" else x.abs().amax(dim=-1, keepdim=True)
