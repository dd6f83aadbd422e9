"""Config entries that match no module ("dead entries"), with their original spelling.

An entry is alive when it matches any module the checkpoint has, by its own
matching semantics: an exact name (mapped into model space by the profile, or
as written in checkpoint space) naming a module or one of its ancestors, or —
for bitsandbytes skip lists — a contiguous run of components; a glob
(``fnmatchcase``) or ``re:`` regex (``re.match``) matching a checkpoint-space
name or ancestor; a class name matching the kind of any resolved unit. A checkpoint with
tied embeddings stores no ``lm_head`` tensor, yet the model still builds its head, so
``lm_head`` spellings stay alive when the checkpoint has no head of its own
(:data:`TIED_HEAD_NAMES`)::

    >>> from quantresolve.formats.normalized import NameEntry
    >>> from quantresolve.naming.mapper import WeightsMapper
    >>> names = ["model.layers.0.mlp.down_proj", "head"]
    >>> live = LiveNames(names, names, {"linear", "lm_head"})
    >>> e = lambda s: NameEntry.classify(s, file="c.json", field="ignore[0]", class_names=True)
    >>> [live.matches(e(s), WeightsMapper(), components=False)
    ...  for s in ("model.layers.0.mlp", "model.layers.1*", "re:.*down_proj", "Linear", "lm_head")]
    [True, False, True, True, False]
    >>> tied = LiveNames(names[:1], names[:1], {"linear"})
    >>> tied.matches(e("lm_head"), WeightsMapper(), components=False)
    True
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

import quantresolve.resolve.producers  # noqa: F401  (registers the built-in rules)
from quantresolve.formats.normalized import NameEntry, NormalizedConfig
from quantresolve.naming.mapper import WeightsMapper
from quantresolve.resolve.entries import KIND_CLASSES
from quantresolve.resolve.rules_registry import rules_for
from quantresolve.util.patterns import BoundedRegex

#: Names the model's LM head has even when the checkpoint stores none (tied embeddings).
TIED_HEAD_NAMES = ("lm_head", "language_model.lm_head", "model.language_model.lm_head")


def _with_ancestors(names: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for name in names:
        while name and name not in out:
            out.add(name)
            name = name.rpartition(".")[0]
    return out


class LiveNames:
    """The names entries are matched against (both namespaces, with ancestors) and the unit kinds."""

    def __init__(self, checkpoint_names: Iterable[str], model_names: Iterable[str], kinds: set[str]) -> None:
        tied = () if "lm_head" in kinds else TIED_HEAD_NAMES
        self.checkpoint = sorted(_with_ancestors([*checkpoint_names, *tied]))
        self.model = _with_ancestors([*model_names, *tied])
        self.all = self.model | set(self.checkpoint)
        self.kinds = kinds
        self._dotted: str | None = None

    def _component_run(self, entry: str) -> bool:
        if self._dotted is None:
            self._dotted = "\n".join(f".{n}." for n in sorted(self.all))
        return f".{entry}." in self._dotted

    def matches(self, entry: NameEntry, mapper: WeightsMapper, *, components: bool) -> bool:
        text = entry.original
        if entry.kind == "exact":
            mapped = mapper.map_name(text)
            if text in self.all or (mapped is not None and mapped in self.all):
                return True
            return components and self._component_run(text)
        if entry.kind == "glob":
            rx = re.compile(fnmatch.translate(text))
            return any(rx.match(n) for n in self.checkpoint)
        if entry.kind == "regex":  # untrusted: time-bounded (a catastrophic pattern is an error naming it)
            bounded = BoundedRegex(entry.regex_body(), file=entry.file, field=entry.field)
            return any(bounded.match(n) for n in self.checkpoint) or any(bounded.match(n) for n in self.model)
        return any(text in KIND_CLASSES.get(k, ()) for k in self.kinds)


def dead_entries(config: NormalizedConfig, live: LiveNames, mapper: WeightsMapper) -> list[tuple[str, NameEntry]]:
    """``(code, entry)`` for every exclude / per-layer / target entry that matches nothing, sorted."""
    components = rules_for(config.producer).EXCLUDE_MODES.components  # e.g. bitsandbytes skip lists
    out: list[tuple[str, NameEntry]] = []
    for entry in config.exclude:
        if not live.matches(entry, mapper, components=components):
            out.append(("dead-exclude", entry))
    for layer in config.layers:
        entry = NameEntry.classify(layer.name, file=layer.file, field=layer.field)
        if not live.matches(entry, mapper, components=False):
            out.append(("dead-layer", entry))
    for group in config.groups:
        for target in group.targets:
            if not live.matches(target, mapper, components=False):
                out.append(("dead-target", target))
    for entry in config.include:  # inclusion lists (GPTQ): an entry naming no module is a dead target too
        if not live.matches(entry, mapper, components=False):
            out.append(("dead-target", entry))
    return sorted(out, key=lambda t: (t[0], t[1].original, t[1].field))
