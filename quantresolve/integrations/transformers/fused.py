"""Fused layers inside an unfused transformers model: one GEMM, several shard modules.

transformers' Llama attention calls ``q_proj(x)``, ``k_proj(x)``, ``v_proj(x)``
on the same ``x``. With a fused profile the fused :class:`QuantLinear` lives at
``self_attn.qkv_proj`` and each shard path holds a :class:`ShardView`: the first
view asked about an input runs the fused layer once, the others slice the same
output. Correctness never depends on the sharing — a view asked about a
different input, or twice about the same one, runs the fused layer again.

    >>> import torch
    >>> from quantresolve.dispatch import make_linear
    >>> fused = make_linear(None, 4, [2, 1], shard_names=["a", "b"])
    >>> fused.load("weight", torch.eye(2, 4), shard="a"); fused.load("weight", torch.ones(1, 4), shard="b")
    >>> fused.finalize()
    >>> shared = SharedOutput(fused)
    >>> a, b = ShardView(shared, "a"), ShardView(shared, "b")
    >>> x = torch.ones(1, 4, dtype=torch.bfloat16)
    >>> a(x).tolist(), b(x).tolist(), shared.calls
    ([[1.0, 1.0]], [[4.0]], 1)
    >>> b.dequantize().tolist(), b.backend
    ([[1.0, 1.0, 1.0, 1.0]], 'dense_dequant')
"""

from __future__ import annotations

import torch
from torch import nn

from quantresolve.dispatch import QuantLinear
from quantresolve.dispatch.linear import weight_stand_in


class SharedOutput:
    """Runs one fused layer per input and hands each shard its columns."""

    def __init__(self, layer: QuantLinear) -> None:
        self.layer = layer
        self.slices: dict[str, slice] = {}
        start = 0
        for name, size in zip(layer.shard_names, layer.shard_sizes, strict=True):
            self.slices[str(name)] = slice(start, start + size)
            start += size
        self._x: torch.Tensor | None = None
        self._y: torch.Tensor | None = None
        self._served: set[str] = set()
        self.calls = 0

    def output(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if self._x is not x or name in self._served:
            self._x, self._y, self._served = x, self.layer(x), set()
            self.calls += 1
        self._served.add(name)
        y = self._y
        assert y is not None
        if len(self._served) == len(self.slices):  # every shard served: drop the references
            self._x = self._y = None
        return y[..., self.slices[name]]


class ShardView(nn.Module):
    """One shard of a fused quantized linear, at the shard's own module path."""

    def __init__(self, shared: SharedOutput, shard: str) -> None:
        super().__init__()
        self.shard = shard
        # Plain attribute, not a registered submodule: the fused layer is registered once, at its
        # fused path, so it is not listed (or moved, or saved) three times.
        self.__dict__["_shared"] = shared
        rows = shared.slices[shard]
        self.in_features = shared.layer.in_features
        self.out_features = rows.stop - rows.start

    @property
    def fused(self) -> QuantLinear:
        return self.__dict__["_shared"].layer

    @property
    def backend(self) -> str:
        return self.fused.backend

    @property
    def scheme(self) -> object:
        return self.fused.scheme

    @property
    def weight(self) -> torch.Tensor:
        """This shard's weight shape, dtype and device — never data (as :attr:`QuantLinear.weight`)."""
        fused = self.fused
        return weight_stand_in(self.out_features, self.in_features, fused.dtype, fused.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.__dict__["_shared"].output(self.shard, x)

    def dequantize(self) -> torch.Tensor:
        """This shard's rows of the fused layer's dense weight."""
        return self.fused.dequantize()[self.__dict__["_shared"].slices[self.shard]]

    def extra_repr(self) -> str:
        return f"shard={self.shard}, out_features={self.out_features}, backend={self.backend}"
