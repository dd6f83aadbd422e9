"""ModelOpt ``quantized_layers`` keys in model space, built for configs with ~70k keys.

Every key is mapped into model space once (:meth:`WeightsMapper.map_many`,
rules run once per shared head) and indexed by its mapped name; the config
entry behind an answer (:class:`ConfigRef`, original and mapped spelling) is
built only when a lookup hits it. MoE roll-ups read the keys under one container
from a sorted view (a dotted subtree is a contiguous range), so a config with
384 experts × 61 layers costs one sort, not one regex per key.

    >>> from quantresolve import load_config
    >>> from quantresolve.naming.mapper import WeightsMapper
    >>> from quantresolve.resolve.namespace import Namespace
    >>> cfg = load_config({"quant_method": "modelopt", "quant_algo": "MIXED_PRECISION", "quantized_layers": {
    ...     "model.language_model.layers.1.mlp.experts.0.down_proj": {"quant_algo": "NVFP4", "group_size": 16},
    ...     "model.language_model.layers.1.mlp.experts.1.down_proj": {"quant_algo": "NVFP4", "group_size": 16}}})
    >>> mapper = WeightsMapper(orig_to_new_prefix={"model.language_model.": "language_model.model."})
    >>> index = LayerIndex(cfg.layers, Namespace(mapper), [])
    >>> scheme, ref = index.get("language_model.model.layers.1.mlp.experts.0.down_proj")
    >>> scheme.algo, ref.original
    ('NVFP4', 'model.language_model.layers.1.mlp.experts.0.down_proj')
    >>> [(s.algo, count) for s, count, _ in index.experts("language_model.model.layers.1.mlp.experts")]
    [('NVFP4', 2)]
"""

from __future__ import annotations

import operator
from bisect import bisect_left
from collections.abc import Sequence
from operator import attrgetter

from quantresolve.errors import MappingError
from quantresolve.formats.normalized import Finding, LayerEntry
from quantresolve.formats.scheme import QuantScheme
from quantresolve.resolve.namespace import Namespace
from quantresolve.resolve.resolution import ConfigRef


class LayerIndex:
    """Model-space name → (scheme, config entry) for one config's per-layer entries."""

    def __init__(self, layers: Sequence[LayerEntry], namespace: Namespace, findings: list[Finding]) -> None:
        self._entries = layers
        self._mapped = namespace.mapper.map_many(list(map(attrgetter("name"), layers)))
        # Sorted entries: the first in sorted order wins, so build from the end.
        count = len(self._mapped)
        index = dict(zip(reversed(self._mapped), range(count - 1, -1, -1), strict=True))
        anomalies = None in index or len(index) != count
        index.pop(None, None)  # type: ignore[call-overload]
        self._index: dict[str, int] = index  # type: ignore[assignment]
        if anomalies:  # dropped names or collisions: rare, reported entry by entry in sorted order
            self._report_anomalies(findings)
        self._refs: dict[int, ConfigRef] = {}
        self._sorted: tuple[Sequence[str], Sequence[int], list[QuantScheme]] | None = None

    def __len__(self) -> int:
        return len(self._index)

    def __bool__(self) -> bool:
        return bool(self._index)

    def _report_anomalies(self, findings: list[Finding]) -> None:
        seen: dict[str, int] = {}
        for i, (entry, mapped) in enumerate(zip(self._entries, self._mapped, strict=True)):
            if mapped is None:
                findings.append(Finding(code="entry-dropped-by-mapper", severity="warning", subject=entry.name,
                                        file=entry.file, field=entry.field,
                                        message=f"{entry.name}: the profile's mapper drops this name"))
                continue
            first = seen.setdefault(mapped, i)
            if first == i:
                continue
            previous = self._entries[first]
            if previous.scheme != entry.scheme:
                raise MappingError(
                    f"config keys {previous.name!r} ({previous.scheme.algo}) and {entry.name!r} "
                    f"({entry.scheme.algo}) both map to {mapped!r}", file=entry.file, field=entry.field)
            findings.append(Finding(
                code="duplicate-after-mapping", severity="info", subject=mapped, file=entry.file, field=entry.field,
                message=f"config keys {previous.name!r} and {entry.name!r} both map to {mapped!r} (same scheme)"))

    def _ref(self, i: int) -> ConfigRef:
        ref = self._refs.get(i)
        if ref is None:
            entry = self._entries[i]
            ref = self._refs[i] = ConfigRef(original=entry.name, mapped=self._mapped[i], file=entry.file,
                                            field=entry.field)
        return ref

    def get(self, name: str) -> tuple[QuantScheme, ConfigRef] | None:
        """The entry whose mapped name is ``name``."""
        i = self._index.get(name)
        return None if i is None else (self._entries[i].scheme, self._ref(i))

    def _view(self) -> tuple[Sequence[str], Sequence[int], list[QuantScheme]]:
        """Mapped names in sorted order, their entry positions and schemes (built on first use)."""
        if self._sorted is None:
            mapped = self._mapped
            if len(self._index) == len(mapped) and all(map(operator.le, mapped, mapped[1:])):
                order: Sequence[int] = range(len(mapped))  # the usual case: mapping kept the sorted order
                names: Sequence[str] = mapped  # type: ignore[assignment]
                schemes = list(map(attrgetter("scheme"), self._entries))
            else:
                order = sorted(self._index.values(), key=mapped.__getitem__)
                names = [mapped[i] for i in order]  # type: ignore[misc]
                schemes = list(map(attrgetter("scheme"), (self._entries[i] for i in order)))
            self._sorted = (names, order, schemes)
        return self._sorted

    def experts(self, container: str) -> list[tuple[QuantScheme, int, ConfigRef]]:
        """The keys under ``container`` (its experts' projections) grouped by scheme:
        ``(scheme, count, first key's entry)`` — a dotted subtree is one contiguous range of the
        sorted names, so a 1,152-expert-key container costs two bisections and one set."""
        if not self._index:
            return []
        names, order, schemes = self._view()
        lo, hi = bisect_left(names, container + "."), bisect_left(names, container + "/")  # "/" follows "."
        if lo == hi:
            return []
        span = schemes[lo:hi]
        if len(set(map(id, span))) == 1:
            return [(span[0], hi - lo, self._ref(order[lo]))]
        merged: dict[QuantScheme, list[int]] = {}  # equal schemes built separately count as one
        for k, scheme in enumerate(span, start=lo):
            slot = merged.setdefault(scheme, [0, order[k]])
            slot[0] += 1
        return [(scheme, n, self._ref(i)) for scheme, (n, i) in merged.items()]
