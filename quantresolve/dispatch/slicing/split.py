"""Which part of a layer a rank holds: :class:`TPSpec` (what the user asks) and :class:`Split` (per tensor).

Column parallelism splits the output features N of every (fused) shard; row
parallelism splits the input features K. Splits are even: rank ``r`` of ``W``
holds elements ``[r·T/W, (r+1)·T/W)`` of the split dimension of size ``T``.

    >>> spec = TPSpec("row", rank=1, world=2)
    >>> split = spec.split(n=128, k=256)
    >>> (split.axis, split.start, split.stop, split.boundaries)
    ('k', 128, 256, (128,))
    >>> TPSpec("column", rank=0, world=2).local_shape(256, [128, 64, 64])
    (256, [64, 32, 32])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from quantresolve.errors import DispatchError


def _column(k: int, sizes: list[int], world: int) -> tuple[int, list[int]]:
    return k, [n // world for n in sizes]


def _row(k: int, sizes: list[int], world: int) -> tuple[int, list[int]]:
    return k // world, list(sizes)


@dataclass(frozen=True)
class Mode:
    """A parallel mode: the weight dimension it splits (``n`` or ``k``) and the local shape rule."""

    name: str
    axis: str
    local: Callable[[int, list[int], int], tuple[int, list[int]]]


#: mode name → how it splits a layer.
MODES: dict[str, Mode] = {
    "column": Mode("column", "n", _column),
    "row": Mode("row", "k", _row),
}


@dataclass(frozen=True)
class Split:
    """The cut of one weight of full shape ``[n, k]`` along ``axis`` into ``world`` equal parts."""

    axis: str
    n: int
    k: int
    rank: int
    world: int

    @property
    def total(self) -> int:
        return self.n if self.axis == "n" else self.k

    @property
    def size(self) -> int:
        return self.total // self.world

    @property
    def start(self) -> int:
        return self.rank * self.size

    @property
    def stop(self) -> int:
        return self.start + self.size

    @property
    def local_nk(self) -> tuple[int, int]:
        """This rank's ``(n, k)``."""
        return (self.size, self.k) if self.axis == "n" else (self.n, self.size)

    @property
    def boundaries(self) -> tuple[int, ...]:
        """Every cut between two ranks (the same on all ranks, so all ranks refuse alike)."""
        return tuple(r * self.size for r in range(1, self.world))

    def text(self) -> str:
        name = {"n": "out_features", "k": "in_features"}[self.axis]
        return f"{name} {self.total} over {self.world} ranks ({self.size} each)"


@dataclass(frozen=True)
class TPSpec:
    """Rank ``rank`` of ``world`` holds its part of a ``mode`` ("column" | "row") parallel layer."""

    mode: str
    rank: int
    world: int

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise DispatchError(f"unknown tensor-parallel mode {self.mode!r}; known: {', '.join(MODES)}",
                                field="tp.mode")
        if self.world < 1 or not 0 <= self.rank < self.world:
            raise DispatchError(f"rank {self.rank} is not in a world of {self.world}", field="tp.rank")

    @property
    def axis(self) -> str:
        return MODES[self.mode].axis

    def split(self, n: int, k: int) -> Split:
        return Split(self.axis, n, k, self.rank, self.world)

    def local_shape(self, k: int, sizes: list[int]) -> tuple[int, list[int]]:
        """Local ``(in_features, shard sizes)``; a dimension the world does not divide is an error."""
        totals = sizes if self.axis == "n" else [k]
        what = "out_features of a shard" if self.axis == "n" else "in_features"
        for total in totals:
            if total % self.world:
                raise DispatchError(f"{what} {total} is not divisible by the tensor-parallel world size "
                                    f"{self.world}", field=f"tp.{self.mode}")
        return MODES[self.mode].local(k, sizes, self.world)
