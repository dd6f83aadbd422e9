"""How one checkpoint tensor follows a split: cut along an axis, cut a flat buffer, or replicate.

A tensor dimension indexes the weight in *units*: ``indices`` consecutive
tensor indices cover ``elements`` consecutive weight elements along N or K
(a compressed-tensors int4 word covers 8 input columns; a ModelOpt INT4 AWQ
byte covers 2 output rows; a group scale covers ``group`` columns). A cut may
only fall on a unit boundary — anything else would split a packed word, a
group or a block between two ranks.

    >>> import torch
    >>> from quantresolve.dispatch.slicing.split import TPSpec
    >>> packed = AxisSlicer(n=Axis(0), k=Axis(1, elements=8, boundary="an int32 word of 8 int4 values"))
    >>> t = torch.arange(8).reshape(2, 4)               # [N=2, K=32] packed 8 per word
    >>> packed.slice(t, TPSpec("row", 1, 2).split(2, 32), "weight_packed").tolist()
    [[2, 3], [6, 7]]
    >>> packed.violation(TPSpec("row", 0, 8).split(2, 32))
    'a cut at input column 4 falls inside an int32 word of 8 int4 values (8 input columns)'
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from quantresolve.dispatch.slicing.split import Split

_WHAT = {"n": "output row", "k": "input column"}


class Slicer:
    """Base: a tensor's rule under a split. Subclasses answer :meth:`violation` and :meth:`slice`."""

    def violation(self, split: Split) -> str | None:
        """Why this tensor cannot follow ``split`` (``None`` when it can)."""
        raise NotImplementedError

    def slice(self, tensor: torch.Tensor, split: Split, where: str) -> torch.Tensor:
        """This rank's part of the full ``tensor``; a part is a copy, so the full tensor can be freed."""
        raise NotImplementedError


class Replicated(Slicer):
    """Per-tensor scalars and tensors independent of the split dimension: every rank keeps all of it."""

    def violation(self, split: Split) -> str | None:
        return None

    def slice(self, tensor: torch.Tensor, split: Split, where: str) -> torch.Tensor:
        return tensor


REPLICATED = Replicated()


@dataclass(frozen=True)
class Axis:
    """Tensor dimension ``dim`` holds the split dimension, ``indices`` indices per ``elements`` elements.

    ``boundary`` names the unit with its article, for messages ("a group of 128 input columns").
    """

    dim: int
    elements: int = 1
    indices: int = 1
    boundary: str = "an element"

    def violation(self, split: Split) -> str | None:
        for cut in split.boundaries:
            if cut % self.elements:
                unit = f"{self.elements} {_WHAT[split.axis]}s"
                return f"a cut at {_WHAT[split.axis]} {cut} falls inside {self.boundary} ({unit})"
        return None

    def take(self, tensor: torch.Tensor, split: Split) -> torch.Tensor:
        begin = split.start // self.elements * self.indices
        # The last rank takes the tail, which may hold a partial word, group or block.
        end = tensor.shape[self.dim] if split.stop == split.total else split.stop // self.elements * self.indices
        return tensor.narrow(self.dim, begin, end - begin)


@dataclass(frozen=True)
class AxisSlicer(Slicer):
    """A tensor with (at most) one dimension along N and one along K; ``None`` = not along it (replicate)."""

    n: Axis | None = None
    k: Axis | None = None

    def _axis(self, split: Split) -> Axis | None:
        return self.n if split.axis == "n" else self.k

    def violation(self, split: Split) -> str | None:
        axis = self._axis(split)
        return axis.violation(split) if axis is not None else None

    def slice(self, tensor: torch.Tensor, split: Split, where: str) -> torch.Tensor:
        axis = self._axis(split)
        return axis.take(tensor, split).clone() if axis is not None else tensor


@dataclass(frozen=True)
class FlatSlicer(Slicer):
    """A flat buffer over the row-major ``[N, K]`` weight, ``elements`` weight elements per index
    (bitsandbytes' packed bytes and blockwise absmax).

    Column cuts are contiguous ranges of whole rows; row cuts take the same
    column range of every row, so rows themselves must start on a unit.
    """

    elements: int
    boundary: str

    def violation(self, split: Split) -> str | None:
        unit = f"{self.elements} weights"
        if split.axis == "k" and split.world > 1 and split.k % self.elements:
            return f"rows of {split.k} weights do not start on {self.boundary} ({unit}) of the flat buffer"
        per_index = split.k if split.axis == "n" else 1
        for cut in split.boundaries:
            if cut * per_index % self.elements:
                return (f"a cut at {_WHAT[split.axis]} {cut} (flat weight {cut * per_index}) "
                        f"falls inside {self.boundary} ({unit})")
        return None

    def slice(self, tensor: torch.Tensor, split: Split, where: str) -> torch.Tensor:
        trailing = tensor.shape[1:]
        flat = tensor.reshape(-1)
        if split.axis == "n":
            begin = split.start * split.k // self.elements
            end = flat.numel() if split.stop == split.total else split.stop * split.k // self.elements
            part = flat[begin:end]
        else:
            rows = flat.reshape(split.n, split.k // self.elements)
            part = rows[:, split.start // self.elements: split.stop // self.elements].reshape(-1)
        return part.reshape(-1, *trailing).clone()
