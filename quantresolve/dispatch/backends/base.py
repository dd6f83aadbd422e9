"""The backend interface: what a backend can run (``guards``), what it builds at load, what it computes.

A backend turns one group of loaded shards (fused shards that share an input
transform, :class:`~quantresolve.dispatch.shards.ShardGroup`) into a state with
:meth:`Backend.prepare`, and computes ``y = x · Wᵀ`` for them with :meth:`Backend.apply`.
:meth:`Backend.supports` answers, before anything is loaded, whether it can run a scheme at a
shape on a device — with the reason when it cannot. A backend states that answer as data: its
``guards``, checks of one :class:`Ask` run in order, the first that objects deciding
(:mod:`.needs` holds the shared ones).

Place in the flow: the bottom of the backends package; it imports the shards, specs and schemes
only. Backends register with :mod:`.registry`; their preference order is :mod:`.catalog`'s.

    >>> from quantresolve.dispatch.specs import DeviceInfo, Shapes
    >>> class OnlyWide(Backend):
    ...     name = "only_wide"
    ...     guards = (lambda ask: None if ask.shapes.k >= 64 else Verdict.no(f"needs K ≥ 64 (K={ask.shapes.k})"),)
    >>> OnlyWide().supports(DeviceInfo(), None, Shapes(8, 32), None).reason
    'needs K ≥ 64 (K=32)'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from quantresolve.dispatch.shards import ShardGroup
from quantresolve.dispatch.specs import DeviceInfo, Shapes, Verdict
from quantresolve.formats.scheme import QuantArgs, QuantScheme


@dataclass(frozen=True)
class Ask:
    """One ``supports()`` question: which backend is asked, about which device (and its CUDA
    ``capability``), shapes and scheme (``None`` = a dense layer)."""

    backend: str
    device: DeviceInfo
    capability: tuple[int, int] | None
    shapes: Shapes
    scheme: QuantScheme | None

    @property
    def weights(self) -> QuantArgs | None:
        return self.scheme.weights if self.scheme is not None else None


#: One check of a backend: ``None`` when fine, else the verdict that declines (with its reason).
Guard = Callable[[Ask], Verdict | None]


class Backend:
    """Base of every backend. ``name`` is what users force or deny; ``guards`` decide ``supports()``."""

    name: str = ""
    description: str = ""
    #: Run in order by :meth:`supports`; the first that returns a verdict decides, else ok.
    guards: tuple[Guard, ...] = ()

    def supports(self, device: DeviceInfo, capability: tuple[int, int] | None, shapes: Shapes,
                 scheme: QuantScheme | None) -> Verdict:
        ask = Ask(self.name, device, capability, shapes, scheme)
        for guard in self.guards:
            verdict = guard(ask)
            if verdict is not None:
                return verdict
        return Verdict.yes()

    def prepare(self, group: ShardGroup) -> Any:
        raise NotImplementedError

    def apply(self, state: Any, x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
        """``x`` is ``[M, K]`` as given; the result ``[M, n]`` in any float dtype."""
        raise NotImplementedError

    def rebuild(self, state: Any, group: ShardGroup) -> Callable[[], torch.Tensor] | None:
        """A function giving ``group.dense()`` from ``state`` alone, bit for bit — then the layer
        releases the checkpoint tensors after ``finalize()`` instead of holding the weight twice —
        or ``None`` when the state cannot (the tensors are kept)."""
        return None
