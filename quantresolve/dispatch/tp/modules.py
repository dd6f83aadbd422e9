"""Thin ``torch.distributed`` wrappers that make tensor-parallel :class:`QuantLinear` shards a layer.

- :class:`ColumnParallelLinear`: each rank computes its output columns; with
  ``gather_output`` an all-gather returns the full output in the full layer's
  order (fused shards re-ordered shard by shard).
- :class:`RowParallelLinear`: each rank multiplies its K slice (the input is
  already split, e.g. the output of a column-parallel layer, or is split here
  with ``input_is_parallel=False``); the partial sums are all-reduced in
  ``reduce_dtype`` (float32 by default, so TP adds no rounding of its own) and
  the bias is added once, after the reduction.

A world of one needs no process group (nothing to communicate):

    >>> import torch
    >>> from quantresolve.dispatch.linear import make_linear
    >>> from quantresolve.dispatch.slicing.split import TPSpec
    >>> layer = make_linear(None, 4, 2, bias=True, tp=TPSpec("row", 0, 1))
    >>> layer.load("weight", torch.eye(2, 4)); layer.load("bias", torch.tensor([1.0, 2.0])); layer.finalize()
    >>> RowParallelLinear(layer)(torch.ones(1, 4)).tolist()
    [[2.0, 3.0]]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch import nn

from quantresolve.dispatch.tp.merge import merge_column_parts
from quantresolve.errors import DispatchError

if TYPE_CHECKING:
    from quantresolve.dispatch.linear import QuantLinear

ProcessGroup = dist.ProcessGroup | None


def _checked_layer(layer: QuantLinear, mode: str, group: ProcessGroup) -> QuantLinear:
    """The layer, if it was built for ``mode`` and for this process's rank in ``group``."""
    plan = layer.tp_plan
    if plan is None or plan.spec.mode != mode:
        built = "without tp" if plan is None else f"for {plan.spec.mode}-parallel"
        raise DispatchError(f"a {mode}-parallel wrapper needs a layer built with tp=TPSpec({mode!r}, …); "
                            f"this one was built {built}", field="tp.mode")
    if plan.spec.world == 1:
        return layer
    if not (dist.is_available() and dist.is_initialized()):
        raise DispatchError(f"a world of {plan.spec.world} needs torch.distributed initialized "
                            "(init_process_group) before the wrapper is built", field="tp.world")
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    if (rank, world) != (plan.spec.rank, plan.spec.world):
        raise DispatchError(f"layer holds rank {plan.spec.rank} of {plan.spec.world}, but this process is "
                            f"rank {rank} of {world} in the process group", field="tp.rank")
    return layer


class _Parallel(nn.Module):
    layer: QuantLinear

    @property
    def backend(self) -> str:
        return self.layer.backend

    def dequantize(self) -> torch.Tensor:
        """This rank's dense part of the weight (``[N/W, K]`` column, ``[N, K/W]`` row)."""
        return self.layer.dequantize()


class ColumnParallelLinear(_Parallel):
    """Output features split over the ranks; ``gather_output`` all-gathers the full output."""

    def __init__(self, layer: QuantLinear, *, gather_output: bool = False, group: ProcessGroup = None) -> None:
        super().__init__()
        self.layer = _checked_layer(layer, "column", group)
        self.gather_output, self.group = gather_output, group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._output(self.layer(x))

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        """float32 reference of the layer (see :meth:`QuantLinear.reference`), gathered like ``forward``."""
        return self._output(self.layer.reference(x))

    def _output(self, y: torch.Tensor) -> torch.Tensor:
        plan = self.layer.tp_plan
        assert plan is not None
        if not self.gather_output or plan.spec.world == 1:
            return y
        parts = [torch.empty_like(y) for _ in range(plan.spec.world)]
        dist.all_gather(parts, y.contiguous(), group=self.group)
        return merge_column_parts(parts, plan.local_sizes)

    def extra_repr(self) -> str:
        plan = self.layer.tp_plan
        assert plan is not None
        return f"rank={plan.spec.rank}, world={plan.spec.world}, gather_output={self.gather_output}"


class RowParallelLinear(_Parallel):
    """Input features split over the ranks; partial sums all-reduced, bias added once afterwards."""

    def __init__(self, layer: QuantLinear, *, input_is_parallel: bool = True, group: ProcessGroup = None,
                 reduce_dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.layer = _checked_layer(layer, "row", group)
        self.input_is_parallel, self.group, self.reduce_dtype = input_is_parallel, group, reduce_dtype

    def _local_input(self, x: torch.Tensor) -> torch.Tensor:
        plan = self.layer.tp_plan
        assert plan is not None
        if self.input_is_parallel:
            return x
        start = plan.spec.rank * plan.local_k
        return x[..., start:start + plan.local_k]  # a strided view: every backend accepts one

    def _reduced(self, partial: torch.Tensor, dtype: torch.dtype, reduce_dtype: torch.dtype) -> torch.Tensor:
        plan = self.layer.tp_plan
        assert plan is not None
        total = partial.to(reduce_dtype)
        if plan.spec.world > 1:
            total = total.contiguous()
            dist.all_reduce(total, op=dist.ReduceOp.SUM, group=self.group)
        bias = self.layer.bias_after_reduce
        if bias is not None:
            total = total + bias.to(total.dtype)
        return total.to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._reduced(self.layer(self._local_input(x)), x.dtype, self.reduce_dtype)

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        """float32 reference: the ranks' :meth:`QuantLinear.reference` partial sums, reduced in float32."""
        partial = self.layer.reference(self._local_input(x))
        return self._reduced(partial, torch.float32, torch.float32)

    def extra_repr(self) -> str:
        plan = self.layer.tp_plan
        assert plan is not None
        note = ", activation scales per rank" if plan.local_activation_scales else ""
        return (f"rank={plan.spec.rank}, world={plan.spec.world}, input_is_parallel={self.input_is_parallel}, "
                f"reduce_dtype={self.reduce_dtype}{note}")
