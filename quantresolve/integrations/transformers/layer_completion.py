"""Finalize each quantized layer as soon as its last tensor is loaded, reading quantized layers first.

Why: ``finalize()`` repacks a layer for its backend with transient buffers several times the
layer's quantized size (int32 codes and shifted copies: about 16 bytes per weight, 45 MB for
one 2816x1024 W4A16 layer on ``int4pack_cpu``), and the backend's state may be larger than the
checkpoint tensors it replaces. Finalizing only after every tensor is read stacks each transient
on the whole checkpoint, its dense embedding and head included: on the 271 M-parameter W4A16
Llama of ``benchmarks/load_memory.py`` the peak was the loaded model plus one transient, 1.35x
the quantized size. Reading the tensors routed to quantized layers first (shard by shard, in file
order) and finalizing each layer the moment its last routed tensor arrives puts the transients
before the dense tensors (embedding, ``lm_head``, norms) are read, so the peak is about the
loaded model itself (docs/benchmarks.md, "Loading memory").

A layer is finalized early only when every tensor routed to it has arrived and it misses no
required tensor; any other layer is left to the loader's final pass, after the missing-tensor
check has named what is absent. Only a :class:`~.targets.QuantTarget` feeds a quantized layer,
so the routes counted here are all it will receive.

    >>> class Layer:  # stands in for a QuantLinear
    ...     def __init__(self): self.loaded = 0
    ...     def missing_tensors(self): return [] if self.loaded == 2 else ["weight_scale"]
    >>> from quantresolve.integrations.transformers.targets import QuantTarget
    >>> from quantresolve.integrations.transformers.route import Route
    >>> layer = Layer()
    >>> routes = [Route("q.weight", "m", "q", "weight"), Route("q.weight_scale", "m", "q", "weight_scale"),
    ...           Route("norm.weight", "m", "norm", "weight")]
    >>> targets = {"q": QuantTarget(layer), "norm": object()}
    >>> first, rest = quantized_first(routes, targets)
    >>> [r.tensor for r in first], [r.tensor for r in rest]
    (['q.weight', 'q.weight_scale'], ['norm.weight'])
    >>> done = LayerCompletion(first, targets, {"q": layer})
    >>> layer.loaded = 1; done.arrived(first[0]) is None
    True
    >>> layer.loaded = 2; done.arrived(first[1])
    'q'
    >>> done.finalized.add("q"); done.finalized_target("q"), done.finalized_target("norm")
    (True, False)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from quantresolve.integrations.transformers.route import Route
from quantresolve.integrations.transformers.targets import QuantTarget


def quantized_first(routes: Iterable[Route], targets: Mapping[str, Any]) -> tuple[list[Route], list[Route]]:
    """``(routes to quantized layers, every other route)``, each in the order given."""
    first: list[Route] = []
    rest: list[Route] = []
    for route in routes:
        (first if isinstance(targets.get(route.module), QuantTarget) else rest).append(route)
    return first, rest


class LayerCompletion:
    """Counts down the tensors routed to each quantized layer; :meth:`arrived` names a layer once complete.

    ``layers`` maps each quantized layer's prefix to the layer (a fused layer once, under its fused
    prefix); ``targets`` maps module paths to load targets, shard paths of a fused layer included.
    """

    def __init__(self, routes: Iterable[Route], targets: Mapping[str, Any], layers: Mapping[str, Any]) -> None:
        prefix_of = {id(layer): prefix for prefix, layer in layers.items()}
        self._layer = {path: t.layer for path, t in targets.items() if isinstance(t, QuantTarget)}
        self._prefix = {path: prefix_of[id(layer)] for path, layer in self._layer.items()}
        self._pending = Counter(self._prefix[r.module] for r in routes if r.module in self._prefix)
        #: Prefixes of the layers the loader has finalized (it adds them after :meth:`arrived`).
        self.finalized: set[str] = set()

    def finalized_target(self, path: str) -> bool:
        """True when the target at ``path`` feeds a finalized layer: it misses nothing any more."""
        return self._prefix.get(path) in self.finalized

    def arrived(self, route: Route) -> str | None:
        """Note that ``route``'s tensor is loaded; the layer's prefix when it is now ready to finalize."""
        prefix = self._prefix.get(route.module)
        if prefix is None:
            return None
        self._pending[prefix] -= 1
        if self._pending[prefix] or self._layer[route.module].missing_tensors():
            return None
        return prefix
