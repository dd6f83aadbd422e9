"""Sorted checkpoint-space names, looked up by their model-space names without mapping them all.

A 1T-parameter MoE config lists ~70k per-expert keys that share a handful of
heads (``model.language_model.layers``). When the mapper rewrites a head the
same way whatever follows it (:meth:`WeightsMapper.map_head`), the keys under
one head form a **group**: one contiguous range of the sorted names, whose
model-space names are the mapped head plus each key's own tail. A lookup then
swaps the head back and bisects; nothing is mapped per key. Names outside any
group (short names such as ``lm_head``, heads whose rewriting depends on the
tail) are mapped one by one into a small dict.

Two keys that map onto one model name, and keys the mapper drops, are found at
construction: groups can only collide when one mapped head is a dotted prefix of
another (each checked where the ranges overlap), loose names by lookup. Any
such anomaly switches the whole set to per-key mapping, so callers report it
entry by entry exactly as before.

    >>> from quantresolve.naming.mapper import WeightsMapper
    >>> mapper = WeightsMapper(orig_to_new_prefix={"model.language_model.": "language_model.model."})
    >>> names = ["lm_head", *sorted(f"model.language_model.layers.{i}.mlp.experts.{e}.down_proj"
    ...                              for i in range(2) for e in range(3))]
    >>> mapped = MappedNames(names, mapper)
    >>> mapped.find("language_model.model.layers.1.mlp.experts.2.down_proj")
    6
    >>> [names[i] for r in mapped.under("language_model.model.layers.0.mlp.experts") for i in r]  # doctest: +NORMALIZE_WHITESPACE
    ['model.language_model.layers.0.mlp.experts.0.down_proj', 'model.language_model.layers.0.mlp.experts.1.down_proj',
     'model.language_model.layers.0.mlp.experts.2.down_proj']
    >>> mapped.find("lm_head"), mapped.anomalous
    (0, False)
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from quantresolve.naming.mapper import WeightsMapper


@dataclass(frozen=True)
class _Group:
    """Names ``orig_head + tail`` at positions ``[lo, hi)``; each maps to ``mapped_head + tail``."""

    orig_head: str
    mapped_head: str
    lo: int
    hi: int


class MappedNames:
    """Model-space lookups over a **sorted** sequence of checkpoint-space names."""

    def __init__(self, names: Sequence[str], mapper: WeightsMapper) -> None:
        self._names = names
        self._mapper = mapper
        self._groups: list[_Group] = []
        self._loose: dict[str, int] = {}  # mapped name → first position, for names outside any group
        self.anomalous = False  # a dropped name, or two names mapping onto one
        plan = mapper.head_plan()
        if plan is None or not self._group(plan[0]):
            self._map_all()
        self._by_head: dict[str, list[_Group]] = {}
        for g in self._groups:
            self._by_head.setdefault(g.mapped_head, []).append(g)
        self._head_dots = sorted({g.mapped_head.count(".") for g in self._groups})
        self._loose_sorted: list[tuple[str, int]] | None = None
        if self._groups and self._collides():
            self._map_all()

    # --- construction ---------------------------------------------------------------------------

    def _bisect(self, text: str, lo: int, hi: int) -> int:
        return bisect_left(self._names, text, lo, hi)

    def _group(self, depth: int) -> bool:
        """Split the names into head groups and loose names; False when an anomaly needs per-key mapping."""
        n, i = len(self._names), 0
        loose: list[int] = []
        while i < n:
            name = self._names[i]
            parts = name.split(".", depth)
            if len(parts) <= depth:
                loose.append(i)
                i += 1
                continue
            orig_head = name[: len(name) - len(parts[-1])]
            end = self._bisect(orig_head[:-1] + "/", i, n)  # "/" follows "." — every name under the head
            mapped_head = self._mapper.map_head(orig_head[:-1])
            if mapped_head is None:
                return False
            if mapped_head is False or not mapped_head.endswith("."):  # type: ignore[union-attr]
                loose.extend(range(i, end))  # tail-dependent, or a head glued onto its tail
            else:
                self._groups.append(_Group(orig_head, mapped_head, i, end))  # type: ignore[arg-type]
            i = end
        for i in loose:
            mapped = self._mapper.map_name(self._names[i])
            if mapped is None or mapped in self._loose:
                return False
            self._loose[mapped] = i
        return True

    def _map_all(self) -> None:
        """Per-key mapping of every name (mappers without a head plan, and anomalies)."""
        self._groups = []
        self._loose = {}
        self.anomalous = False
        for i, mapped in enumerate(self._mapper.map_many(self._names)):
            if mapped is None or mapped in self._loose:
                self.anomalous = True
                continue
            self._loose[mapped] = i
        self._by_head = {}
        self._head_dots = []
        self._loose_sorted = None

    def _collides(self) -> bool:
        """Whether two names map onto one model name (groups and loose names constructed cleanly)."""
        for loose in self._loose:
            if self._find_grouped(loose) is not None:
                return True
        for g2 in self._groups:
            head = g2.mapped_head
            pos = head.find(".")
            while pos >= 0:  # every dotted prefix of g2's mapped head, itself included
                for g1 in self._by_head.get(head[: pos + 1], ()):
                    if g1 is g2:
                        continue
                    inner = g1.orig_head + head[pos + 1:]  # g1's names that land under g2's mapped head
                    lo = self._bisect(inner, g1.lo, g1.hi)
                    hi = self._bisect(inner[:-1] + "/", lo, g1.hi) if inner.endswith(".") else g1.hi
                    for i in range(lo, hi):
                        name = self._names[i]
                        if not name.startswith(inner):
                            break
                        if self._in_group(g2, head[: pos + 1] + name[len(g1.orig_head):]) is not None:
                            return True
                pos = head.find(".", pos + 1)
        return False

    # --- lookups --------------------------------------------------------------------------------

    def _in_group(self, g: _Group, model_name: str) -> int | None:
        orig = g.orig_head + model_name[len(g.mapped_head):]
        i = self._bisect(orig, g.lo, g.hi)
        return i if i < g.hi and self._names[i] == orig else None

    def _find_grouped(self, model_name: str) -> int | None:
        best = None
        for dots in self._head_dots:
            parts = model_name.split(".", dots)
            if len(parts) <= dots:
                break
            for g in self._by_head.get(model_name[: len(model_name) - len(parts[-1])], ()):
                i = self._in_group(g, model_name)
                if i is not None and (best is None or i < best):
                    best = i
        return best

    def find(self, model_name: str) -> int | None:
        """Position of the (first, in sorted order) name that maps to ``model_name``."""
        i = self._loose.get(model_name)
        if self._groups:
            j = self._find_grouped(model_name)
            if j is not None and (i is None or j < i):
                i = j
        return i

    def mapped(self, i: int) -> str | None:
        """Model-space name of the name at position ``i``."""
        for g in self._groups:
            if g.lo <= i < g.hi:
                return g.mapped_head + self._names[i][len(g.orig_head):]
        return self._mapper.map_name(self._names[i])

    def under(self, model_prefix: str) -> list[range]:
        """Positions of the names mapped strictly under ``model_prefix`` (``model_prefix + "."…``), as ranges."""
        inner = model_prefix + "."
        out: list[range] = []
        for g in self._groups:
            if inner.startswith(g.mapped_head):
                orig = g.orig_head + inner[len(g.mapped_head):]
                lo = self._bisect(orig, g.lo, g.hi)
                hi = self._bisect(orig[:-1] + "/", lo, g.hi)
                if lo < hi:
                    out.append(range(lo, hi))
            elif g.mapped_head.startswith(inner):
                out.append(range(g.lo, g.hi))
        if self._loose:
            if self._loose_sorted is None:
                self._loose_sorted = sorted(self._loose.items())
            lo = bisect_left(self._loose_sorted, (inner,))
            hi = bisect_left(self._loose_sorted, (model_prefix + "/",))
            out.extend(range(i, i + 1) for _, i in self._loose_sorted[lo:hi])
        return out
