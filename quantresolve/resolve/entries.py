"""Matching config entries against model-space prefixes, keeping both namespaces apart.

An :class:`EntryIndex` holds one list of entries (an exclude list, an ignore
list, one group's targets). Exact entries are mapped into model space **once**
(original spelling kept in :class:`ConfigRef`); globs and ``re:`` patterns are
never rewritten — they are matched against the checkpoint-space preimages of
the prefix (:meth:`Namespace.preimages`); class names match by the kind of the
module asked about.

Matching modes, each a pure rule:

- ``exact``: the mapped name equals the prefix;
- ``subtree``: the mapped name is a dotted ancestor of the prefix
  (``model.visual`` covers ``model.visual.blocks.0.qkv``; never
  ``model.layers.1`` over ``model.layers.12``);
- ``components`` (bitsandbytes): the entry's components occur as a contiguous
  run of the prefix's components (``ff_out`` covers ``...blocks.3.ff_out``;
  ``kv_proj`` never matches inside ``qkv_proj``);
- globs: ``fnmatchcase`` full match of the checkpoint name or of one of its
  dotted ancestors (ModelOpt export globs such as ``model.layers.61*``);
- regexes: ``re.match`` (anchored at the start only), as compressed-tensors does, bounded in time
  (:class:`~quantresolve.util.patterns.BoundedRegex`: a catastrophic pattern is an error naming it).

When several entries match, the first in sorted (original spelling) order is
reported — the answer never depends on the order of the file.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from quantresolve.formats.normalized import NameEntry
from quantresolve.resolve.namespace import Namespace
from quantresolve.resolve.resolution import ConfigRef
from quantresolve.util.patterns import BoundedRegex

#: compressed-tensors class names a module kind answers to (its MRO, in CT's own matching).
KIND_CLASSES: dict[str, frozenset[str]] = {
    "linear": frozenset({"Linear", "LinearBase", "ColumnParallelLinear", "RowParallelLinear",
                         "QKVParallelLinear", "MergedColumnParallelLinear", "ReplicatedLinear"}),
    "lm_head": frozenset({"Linear", "LinearBase", "ParallelLMHead"}),
    "embedding": frozenset({"Embedding", "VocabParallelEmbedding"}),
    "moe": frozenset({"FusedMoE"}),
    "attention": frozenset({"Attention"}),
}


def _glob_body(glob: str) -> str:
    """The regex body of ``fnmatch.translate(glob)`` without its ``(?s:...)\\Z`` wrapper."""
    translated = fnmatch.translate(glob)
    m = re.fullmatch(r"\(\?s:(.*)\)\\[Zz]", translated, flags=re.S)
    return m.group(1) if m else translated


def ref_of(entry: NameEntry, mapped: str | None) -> ConfigRef:
    return ConfigRef(original=entry.original, mapped=mapped, file=entry.file, field=entry.field)


def _ancestors(name: str) -> Iterable[str]:
    """``name`` and each dotted ancestor, nearest first."""
    yield name
    pos = name.rfind(".")
    while pos > 0:
        name = name[:pos]
        yield name
        pos = name.rfind(".")


@dataclass(frozen=True)
class MatchModes:
    subtree: bool = True
    components: bool = False
    glob_ancestors: bool = True


class EntryIndex:
    """A list of config entries, indexed for fast, order-independent matching."""

    def __init__(self, entries: Sequence[NameEntry], namespace: Namespace, modes: MatchModes = MatchModes()) -> None:
        self.namespace = namespace
        self.modes = modes
        self.entries = tuple(sorted(entries, key=lambda e: (e.original, e.field)))
        self.exact: dict[str, ConfigRef] = {}
        self.dropped: list[ConfigRef] = []
        self.components: list[tuple[tuple[str, ...], ConfigRef]] = []
        self.globs: list[tuple[re.Pattern[str], ConfigRef]] = []
        self.regexes: list[tuple[BoundedRegex, ConfigRef]] = []
        self.classes: dict[str, ConfigRef] = {}
        for e in self.entries:
            if e.kind == "exact":
                mapped = namespace.to_model(e.original)
                ref = ref_of(e, mapped)
                if mapped is None:
                    self.dropped.append(ref)
                    continue
                self.exact.setdefault(mapped, ref)
                self.components.append((tuple(mapped.split(".")), ref))
            elif e.kind == "glob":
                self.globs.append((re.compile(fnmatch.translate(e.original)), ref_of(e, None)))
            elif e.kind == "regex":  # untrusted: time-bounded matching (util.patterns)
                self.regexes.append((BoundedRegex(e.regex_body(), file=e.file, field=e.field), ref_of(e, None)))
            else:
                self.classes.setdefault(e.original, ref_of(e, None))
        # One combined automaton per pattern family answers "does any match?" cheaply; the
        # (rare) positive answer then finds the first entry in sorted order.
        bodies = "|".join(f"(?:{_glob_body(e.original)})" for e in self.entries if e.kind == "glob")
        self._any_glob = re.compile(f"(?s:{bodies})") if bodies else None
        self._any_glob_tree = re.compile(rf"(?s:(?:{bodies})(?:\..*)?)") if bodies else None
        # The literal text each glob starts with: a name (or ancestor) it matches starts with it too.
        self._glob_leads = tuple(re.split(r"[*?\[]", e.original, maxsplit=1)[0]
                                 for e in self.entries if e.kind == "glob")
        # The name matchers :meth:`match` tries after ``exact``, in precedence order, for these modes.
        self._name_matchers: tuple[tuple[str, Callable[[str], ConfigRef | None]], ...] = (
            *((("subtree", self.match_subtree),) if modes.subtree else ()),
            *((("components", self.match_components),) if modes.components and self.components else ()),
            ("glob", self.match_glob),
            ("regex", self.match_regex),
        )

    def __len__(self) -> int:
        return len(self.entries)

    # --- single-mode matchers -------------------------------------------------------------------

    def match_exact(self, prefix: str) -> ConfigRef | None:
        return self.exact.get(prefix)

    def match_subtree(self, prefix: str) -> ConfigRef | None:
        if not self.exact:
            return None
        for anc in _ancestors(prefix):
            ref = self.exact.get(anc)
            if ref is not None:
                return ref
        return None

    def match_components(self, prefix: str) -> ConfigRef | None:
        parts = prefix.split(".")
        n = len(parts)
        for comps, ref in self.components:
            k = len(comps)
            for i in range(n - k + 1):
                if tuple(parts[i:i + k]) == comps:
                    return ref
        return None

    def match_glob(self, prefix: str) -> ConfigRef | None:
        if self._any_glob is None:
            return None
        if not self.namespace.may_start_with(prefix, self._glob_leads):
            return None
        combined = self._any_glob_tree if self.modes.glob_ancestors else None
        for name in sorted(self.namespace.preimages(prefix)):
            hit = (combined or self._any_glob).fullmatch(name)
            if not hit:
                continue
            candidates = list(_ancestors(name)) if self.modes.glob_ancestors else [name]
            for rx, ref in self.globs:
                if any(rx.match(c) for c in candidates):
                    return ref
        return None

    def match_regex(self, prefix: str) -> ConfigRef | None:
        if not self.regexes:
            return None
        for name in sorted(self.namespace.preimages(prefix)):
            for rx, ref in self.regexes:
                if rx.match(name):
                    return ref
        return None

    def match_class(self, kind: str) -> ConfigRef | None:
        if not self.classes:
            return None
        for cls in sorted(KIND_CLASSES.get(kind, ())):
            ref = self.classes.get(cls)
            if ref is not None:
                return ref
        return None

    # --- combined -------------------------------------------------------------------------------

    def match(self, prefix: str, kind: str = "linear") -> tuple[ConfigRef, str] | None:
        """The entry matching ``prefix`` and how (``exact``/``subtree``/``components``/``glob``/``regex``/``class``)."""
        ref = self.exact.get(prefix)
        if ref is not None:
            return ref, "exact"
        for how, matcher in self._name_matchers:
            ref = matcher(prefix)
            if ref is not None:
                return ref, how
        ref = self.match_class(kind)
        if ref is not None:
            return ref, "class"
        return None
