"""Backends whose kernel holds a layer's integer codes: the group's integer view, and the frame that
rebuilds the dense weight from the kernel's codes.

A codec that overrides :meth:`~quantresolve.dispatch.codecs.base.WeightCodec.int_weights` gives
``W = (q − zero) · repeat(scale, group)`` with signed int8 codes; the CPU integer kernels repack that
view (:class:`IntegerKernelBackend`), and gemlite and the Triton GEMV read it. Fused shards are
concatenated along N. Which schemes have a view: :func:`~.needs.integer_weights`.

    >>> import torch
    >>> from quantresolve.dispatch.codecs import IntWeights
    >>> view = IntWeights(q=torch.ones(2, 4, dtype=torch.int8), scale=torch.ones(2, 1), zero=None, group=4, bits=8)
    >>> scales_only(view).q.numel(), scales_only(view).scale.shape
    (0, torch.Size([2, 1]))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from quantresolve.dispatch.backends.base import Backend
from quantresolve.dispatch.chunked import row_parts
from quantresolve.dispatch.codecs.base import IntWeights
from quantresolve.dispatch.shards import ShardGroup, share_rows
from quantresolve.errors import DispatchError


def group_int_view(group: ShardGroup) -> IntWeights:
    """The integer view of all shards of a group, concatenated along N (missing zero points = 0).

    Built in row chunks (:func:`~quantresolve.dispatch.chunked.row_parts`) into one preallocated
    int8 matrix, so unpacking a large weight never holds more than one chunk's intermediates. The
    matrix is always a fresh buffer: a checkpoint tensor may sit at any offset of a memory-mapped
    file, and ``torch._weight_int8pack_mm`` crashes on such an unaligned matrix.
    """
    q = torch.empty(group.n, group.k, dtype=torch.int8, device=group.device)
    scales: list[torch.Tensor] = []
    zeros: list[torch.Tensor | None] = []
    first: IntWeights | None = None
    uniform, row = True, 0
    for shard in group.shards:
        for rows, part in row_parts(group.codec, shard.tensors, shard.n, group.k):
            view = group.codec.int_weights(part, rows, group.k)
            if view is None:
                raise DispatchError(f"{group.codec.scheme.algo}: no integer view of the weight", field="backend")
            first = first or view
            _check_order(view, group)
            uniform = uniform and view.dtype == first.dtype
            q[row:row + rows].copy_(view.q)
            scales.append(view.scale)
            zeros.append(view.zero)
            row += rows
    assert first is not None
    # A rebuild from the codes needs one arithmetic dtype for the whole group (see rebuild_from_codes).
    group.extra["int_dtype_uniform"] = uniform
    zero = None
    if any(z is not None for z in zeros):
        zero = torch.cat([z if z is not None else torch.zeros_like(s) for z, s in zip(zeros, scales, strict=True)])
    return IntWeights(q=q, scale=torch.cat(scales), zero=zero, group=first.group, bits=first.bits, dtype=first.dtype,
                      k_order=group.transform.k_order)


def _check_order(view: IntWeights, group: ShardGroup) -> None:
    """A view's input order (GPTQ act-order) is the one the group's kernels feed ``x`` in: the codec
    states both from the same ``g_idx``, and shards with different orders never share a group."""
    mine, theirs = view.k_order, group.transform.k_order
    if (mine is None) != (theirs is None) or (mine is not None and not torch.equal(mine, theirs)):  # type: ignore[arg-type]
        raise DispatchError(f"{group.codec.scheme.algo}: the integer view's input order differs from the "
                            "layer's input transform", field="backend")


def scales_only(view: IntWeights) -> IntWeights:
    """``view`` without its codes — what a backend whose kernel holds the codes keeps for a rebuild."""
    return replace(view, q=torch.empty(0, dtype=torch.int8))


def rebuild_from_codes(group: ShardGroup, view: IntWeights,
                       codes: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor] | None:
    """``group.dense()`` from the kernel's codes (``codes()`` gives the signed int8 ``[N, K]``) and the
    view's float32 scales and zero points — bit for bit when the codec's own dequantization *is* its
    integer view (``dense_is_int_view``); ``None`` otherwise (the checkpoint tensors are kept)."""
    if not group.codec.dense_is_int_view() or not group.extra.get("int_dtype_uniform", False):
        return None
    frame = scales_only(view)  # the codes live in the backend's state
    return lambda: replace(frame, q=codes()).dense(group.k)


class IntegerKernelBackend(Backend):
    """A backend whose kernel holds the group's integer codes, repacked at ``prepare()``.

    Subclasses give :meth:`pack` (the integer view → the kernel's state, a tuple whose first item is
    the packed codes) and :meth:`codes` (that state → the signed int8 codes ``[N, K]`` again); the
    layer's state is the kernel's tuple followed by the view's scales (:func:`scales_only`), from which
    :meth:`rebuild` gives ``group.dense()`` bit for bit.
    """

    def pack(self, view: IntWeights, group: ShardGroup) -> tuple[Any, ...]:
        raise NotImplementedError

    def codes(self, packed: tuple[Any, ...], group: ShardGroup) -> torch.Tensor:
        raise NotImplementedError

    def unpacks(self) -> bool:
        """False when :meth:`codes` cannot read the packed layout here (the tensors are then kept)."""
        return True

    def prepare(self, group: ShardGroup) -> Any:
        view = group_int_view(group)
        return (*self.pack(view, group), scales_only(view))

    def rebuild(self, state: Any, group: ShardGroup) -> Callable[[], torch.Tensor] | None:
        if not self.unpacks():
            return None
        return rebuild_from_codes(group, state[-1], lambda: self.codes(state[:-1], group))


class Int8MatrixBackend(IntegerKernelBackend):
    """A kernel that multiplies the int8 codes as they are, ``[N, K]`` row-major: the checkpoint's own
    int8 matrix (LLM.int8, W8A8) is then held once (:func:`~quantresolve.dispatch.shards.share_rows`).
    Subclasses give the layout of the per-channel scale their kernel takes (:meth:`scale`)."""

    def scale(self, view: IntWeights) -> torch.Tensor:
        raise NotImplementedError

    def pack(self, view: IntWeights, group: ShardGroup) -> tuple[Any, ...]:
        wq = view.q.contiguous()
        share_rows(group, wq)
        return wq, self.scale(view)

    def codes(self, packed: tuple[Any, ...], group: ShardGroup) -> torch.Tensor:
        return packed[0]
