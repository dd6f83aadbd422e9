"""``WeightsMapper``: checkpoint-space module names → the model's own names.

Four rule families, applied in one documented order — **regex → substring →
prefix → suffix** (the order vLLM uses) — each family rule by rule in key
order, every rule seeing the name the previous one produced. A target of
``None`` drops the name (the module does not exist in the model).

Names here are *module paths*, not weight names: a rule key ending in ``.``
(``"model.visual."``) also matches the bare module ``model.visual``, because the
name is matched as ``name + "."`` and the dot is removed again afterwards. That
is what makes the same profile serve weight-name mappers and dot-less config
entries (the failure of vLLM PR 51910).

**Idempotent on names already in model space.** A prefix / substring / suffix
rule whose target *extends* its key (``"" → "model."``, ``"model." →
"model.language_model."``) does not fire on a name that already carries the
target — so mapping twice never double-rewrites (vllm-omni PR 5687)::

    >>> m = WeightsMapper(orig_to_new_prefix={"model.language_model.": "language_model.model.",
    ...                                       "lm_head.": "language_model.lm_head."})
    >>> m.map_name("model.language_model.layers.0.mlp")
    'language_model.model.layers.0.mlp'
    >>> m.map_name("lm_head"), m.map_name(m.map_name("lm_head"))
    ('language_model.lm_head', 'language_model.lm_head')

:meth:`preimages` inverts prefix / substring / suffix rules (every candidate is
verified by mapping it forward), which is how glob and ``re:`` patterns written
in checkpoint space are matched against model-space prefixes without ever
rewriting the pattern::

    >>> sorted(m.preimages("language_model.model.layers.0.mlp"))
    ['language_model.model.layers.0.mlp', 'model.language_model.layers.0.mlp']
"""

from __future__ import annotations

import operator
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from quantresolve.errors import ProfileError
from quantresolve.util.patterns import BoundedRegex

RuleTable = Mapping[str, "str | None"]

_FAMILIES = ("orig_to_new_regex", "orig_to_new_substr", "orig_to_new_prefix", "orig_to_new_suffix")


@dataclass(frozen=True, slots=True)
class _Family:
    """How one family of plain-text rules (substring, prefix, suffix) tests and rewrites a name.

    ``fires(text, key)``: the rule applies to ``text``; ``rewrite(text, key, target)``: the result.
    """

    field: str
    fires: Callable[[str, str], bool]
    rewrite: Callable[[str, str, str], str]

    def extends(self, key: str, target: str) -> bool:
        """True when applying ``key → target`` to a name that already has ``target`` would fire again."""
        return self.fires(target, key) and target != key


#: The plain-text families in the order they apply (after the regex rules).
_TEXT_FAMILIES = (
    _Family("orig_to_new_substr", lambda text, key: key in text, lambda text, key, target: text.replace(key, target)),
    _Family("orig_to_new_prefix", str.startswith, lambda text, key, target: target + text[len(key):]),
    _Family("orig_to_new_suffix", str.endswith, lambda text, key, target: text[: len(text) - len(key)] + target),
)
_PREFIX = _TEXT_FAMILIES[1]


def _starts(text: str, key: str) -> bool | None:
    """Whether every ``text + tail`` starts with ``key``: True, False, or ``None`` (depends on the tail)."""
    if len(key) <= len(text):
        return text.startswith(key)
    return None if key.startswith(text) else False


_REGEX_META = set(".^$*+?{}[]\\|()")


def _anchored_literal(pattern: str) -> str | None:
    """The literal a ``^``-anchored regex requires at the start of the name (``None``: not anchored)."""
    if not pattern.startswith("^") or "|" in pattern:  # an alternation may escape the anchor
        return None
    out = []
    i = 1
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and not pattern[i + 1].isalnum():
            out.append(pattern[i + 1])
            i += 2
            continue
        if ch in _REGEX_META:
            break
        out.append(ch)
        i += 1
    # a quantifier after the last literal character makes that character optional
    if i < len(pattern) and pattern[i] in "*?{" and out:
        out.pop()
    return "".join(out)


@dataclass(frozen=True)
class WeightsMapper:
    """Checkpoint → model renaming rules (see the module docstring for the order and semantics)."""

    orig_to_new_regex: Mapping[str, str | None] = field(default_factory=dict)
    orig_to_new_substr: Mapping[str, str | None] = field(default_factory=dict)
    orig_to_new_prefix: Mapping[str, str | None] = field(default_factory=dict)
    orig_to_new_suffix: Mapping[str, str | None] = field(default_factory=dict)
    #: The profile file the rules came from (named by errors; not part of equality).
    source_file: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # Regex rules may come from a user's profile file: every match and substitution is time-bounded.
        compiled = tuple((BoundedRegex(pattern, file=self.source_file, field=f"mapper.orig_to_new_regex[{pattern!r}]",
                                       error=ProfileError), target)
                         for pattern, target in self.orig_to_new_regex.items())
        object.__setattr__(self, "_regex", compiled)
        # (family, key, target, target extends key) of every plain-text rule, in application order
        object.__setattr__(self, "_text_rules", tuple(
            (fam, key, target, target is not None and fam.extends(key, target))
            for fam in _TEXT_FAMILIES for key, target in getattr(self, fam.field).items()))
        object.__setattr__(self, "_cache", {})
        # (how, key, target) of every invertible rule, in the order preimages() undoes them
        inverse = [(how, key, target) for fam, how in (("orig_to_new_suffix", "suffix"), ("orig_to_new_prefix", "prefix"),
                                                       ("orig_to_new_substr", "substr"))
                   for key, target in getattr(self, fam).items() if target is not None]
        object.__setattr__(self, "_inverse", tuple(inverse))
        object.__setattr__(self, "_identity", not any(getattr(self, fam) for fam in _FAMILIES))
        object.__setattr__(self, "_plan", None)
        object.__setattr__(self, "_head_preimages", {})

    # --- construction ---------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, file: str | None = None) -> WeightsMapper:
        """Build from the profile-file layout ``{"orig_to_new_prefix": {...}, ...}``."""
        data = data or {}
        unknown = sorted(set(data) - set(_FAMILIES))
        if unknown:
            raise ProfileError(f"unknown mapper keys {unknown}; known: {list(_FAMILIES)}", file=file, field="mapper")
        tables = {}
        for fam in _FAMILIES:
            table = data.get(fam) or {}
            if not isinstance(table, Mapping) or not all(
                    isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in table.items()):
                raise ProfileError("expected an object of string → string or null", file=file, field=f"mapper.{fam}")
            tables[fam] = dict(table)
        return cls(**tables, source_file=file)

    def to_dict(self) -> dict[str, dict[str, str | None]]:
        return {fam: dict(getattr(self, fam)) for fam in _FAMILIES if getattr(self, fam)}

    @property
    def is_identity(self) -> bool:
        return self._identity  # type: ignore[attr-defined,no-any-return]

    # --- forward --------------------------------------------------------------------------------

    def map_name(self, name: str) -> str | None:
        """The model-space name of a checkpoint-space module name, or ``None`` when dropped."""
        cache: dict[str, str | None] = self._cache  # type: ignore[attr-defined]
        if name in cache:
            return cache[name]
        result = self._map(name)
        if len(cache) < 1_000_000:
            cache[name] = result
        return result

    def _map(self, name: str) -> str | None:
        text = name + "."
        for pattern, target in self._regex:  # type: ignore[attr-defined]
            if pattern.search(text):
                if target is None:
                    return None
                text = pattern.sub(target, text)
        for family, key, target, extends in self._text_rules:  # type: ignore[attr-defined]
            if not family.fires(text, key):
                continue
            if target is None:
                return None
            if extends and family.fires(text, target):
                continue  # already in model space: idempotent
            text = family.rewrite(text, key, target)
        return text[:-1] if text.endswith(".") else text

    def map_names(self, names: Iterable[str]) -> dict[str, str | None]:
        return {n: self.map_name(n) for n in names}

    def head_plan(self) -> tuple[int, tuple[str, ...]] | None:
        """How names split into a *head* whose rewriting does not depend on the rest, or ``None``.

        Returns ``(depth, literals)``: a head is a name's first ``depth`` dotted
        components, and ``literals`` are the texts the mapper's anchored regex
        rules require at the start of a name. Only mappers made of prefix rules
        (plus regex rules anchored on a literal) have a plan; substring and
        suffix rules can fire anywhere in a name. Whether one particular head's
        outcome is tail-independent is still decided per head
        (:meth:`map_head` answers ``False`` when it is not).

            >>> WeightsMapper(orig_to_new_prefix={"model.language_model.": "language_model.model."}).head_plan()
            (3, ())
        """
        plan: tuple[int, tuple[str, ...]] | bool | None = self._plan  # type: ignore[attr-defined]
        if plan is False:
            return None
        if plan is None:
            literals = [_anchored_literal(p.pattern) for p, _ in self._regex]  # type: ignore[attr-defined]
            if self.orig_to_new_substr or self.orig_to_new_suffix or any(lit is None for lit in literals):
                object.__setattr__(self, "_plan", False)
                return None
            rule_texts = [*self.orig_to_new_prefix, *(v for v in self.orig_to_new_prefix.values() if v)]
            depth = 1 + max((t.count(".") for t in rule_texts), default=0)
            plan = (depth, tuple(lit for lit in literals if lit is not None))
            object.__setattr__(self, "_plan", plan)
        return plan  # type: ignore[return-value]

    def map_many(self, names: Sequence[str]) -> list[str | None]:
        """``[map_name(n) for n in names]``, fast for large sorted key lists (the same answers).

        Config keys share long heads (``model.language_model.layers``): when the
        mapper has a :meth:`head_plan`, every name under one head is rewritten the
        same way, so the rules run once per head and the tail is appended. A head
        whose outcome would depend on its tail, and any other rule family, falls
        back to :meth:`map_name` per name — the result is always identical.

            >>> m = WeightsMapper(orig_to_new_prefix={"model.language_model.": "language_model.model."})
            >>> m.map_many(["lm_head", "model.language_model.layers.0.mlp", "model.language_model.norm"])
            ['lm_head', 'language_model.model.layers.0.mlp', 'language_model.model.norm']
        """
        names = list(names)
        plan = self.head_plan()
        if plan is None or len(names) < 64:
            return [self.map_name(n) for n in names]
        if not all(map(operator.le, names, names[1:])):  # bisect needs sorted input
            order = sorted(range(len(names)), key=names.__getitem__)
            mapped = self.map_many([names[i] for i in order])
            out: list[str | None] = [None] * len(names)
            for slot, value in zip(order, mapped, strict=True):
                out[slot] = value
            return out
        depth = plan[0]
        out = [None] * len(names)
        i, n = 0, len(names)
        while i < n:
            parts = names[i].split(".", depth)
            if len(parts) <= depth:  # a short name is its own head
                out[i] = self.map_name(names[i])
                i += 1
                continue
            head = ".".join(parts[:depth])
            end = bisect_left(names, head + "/", i)  # "/" follows "." — every name starting "head."
            text = self.map_head(head)
            if text is False:
                out[i:end] = [self.map_name(m) for m in names[i:end]]
            elif text is not None:
                cut = len(head) + 1
                out[i:end] = [text + m[cut:] for m in names[i:end]]  # type: ignore[operator]
            i = end
        return out

    def map_head(self, head: str) -> str | bool | None:
        """Rewritten ``head + "."`` for every name ``head.<tail>``; ``None`` when dropped; ``False``
        when the outcome depends on the tail (a rule or guard longer than the head), or when the
        mapper has no :meth:`head_plan`.

            >>> m = WeightsMapper(orig_to_new_prefix={"model.language_model.": "language_model.model."})
            >>> m.map_head("model.language_model.layers"), m.map_head("model")
            ('language_model.model.layers.', False)
        """
        plan = self.head_plan()
        if plan is None:
            return False
        text = head + "."
        for lit in plan[1]:  # an anchored regex rule can only fire on names starting with its literal
            if _starts(text, lit) is not False:
                return False
        for key, target in self.orig_to_new_prefix.items():
            fires = _starts(text, key)
            if fires is None:
                return False
            if not fires:
                continue
            if target is None:
                return None
            if _PREFIX.extends(key, target):
                guarded = _starts(text, target)
                if guarded is None:
                    return False
                if guarded:
                    continue
            text = target + text[len(key):]
        return text

    # --- inverse --------------------------------------------------------------------------------

    def preimages(self, name: str) -> frozenset[str]:
        """Checkpoint-space names that map to ``name`` (verified forward), found by inverting rules.

        Regex rules are not inverted (a regex has no general inverse): a name
        reachable only through a regex rule is found when the checkpoint's own
        module list is known (see :class:`quantresolve.resolve.namespace.Namespace`).
        """
        if self._identity:  # type: ignore[attr-defined]
            return frozenset((name,))
        split = self.preimage_parts(name)
        if split is not None:  # prefix rules: undone once per head, the rest appended
            heads, rest = split
            return frozenset(h + rest for h in heads)
        candidates = self._undo_rules(name + ".")
        assert candidates is not None  # only a head can be undecided
        out = set()
        for cand in candidates:
            plain = cand[:-1] if cand.endswith(".") else cand
            if plain and self.map_name(plain) == name:
                out.add(plain)
        return frozenset(out)

    def preimage_parts(self, name: str) -> tuple[frozenset[str], str] | None:
        """``(heads, rest)`` with ``preimages(name) == {h + rest for h in heads}``, or ``None`` when the
        mapper has no :meth:`head_plan`, the name is no longer than a head, or the head's inversion
        depends on the rest. Heads are inverted once and cached.

            >>> m = WeightsMapper(orig_to_new_prefix={"model.language_model.": "language_model.model."})
            >>> heads, rest = m.preimage_parts("language_model.model.layers.0.mlp")
            >>> sorted(heads), rest
            (['language_model.model.layers.', 'model.language_model.layers.'], '0.mlp')
        """
        if self._identity:  # type: ignore[attr-defined]
            return None
        plan = self.head_plan()
        if plan is None:
            return None
        parts = name.split(".", plan[0])
        if len(parts) <= plan[0]:
            return None
        rest = parts[-1]
        head = name[: len(name) - len(rest)]
        cache: dict[str, frozenset[str] | None] = self._head_preimages  # type: ignore[attr-defined]
        if head in cache:
            heads = cache[head]
        else:
            heads = self._preimage_heads(head)
            if len(cache) < 100_000:
                cache[head] = heads
        return None if heads is None else (heads, rest)

    def _preimage_heads(self, text: str) -> frozenset[str] | None:
        """Checkpoint-space heads ``h`` (ending in ``.``) with ``map_name(h + rest) == text + rest`` for
        every non-empty ``rest``: :meth:`preimages`' inversion run on the head alone. ``None`` when some
        rule test would need the rest (``_starts`` cannot decide), so the caller inverts the whole name.
        Only called for mappers with a :meth:`head_plan` (prefix rules and anchored regexes)."""
        candidates = self._undo_rules(text, head=True)
        if candidates is None:
            return None
        out = set()
        for cand in candidates:
            if not cand.endswith(".") or cand == ".":
                return None
            mapped = self.map_head(cand[:-1])
            if mapped is False:
                return None
            if mapped == text:
                out.add(cand)
        return frozenset(out)

    def _undo_rules(self, text: str, *, head: bool = False) -> set[str] | None:
        """``text`` and every spelling reached by undoing invertible rules, chains included (any order).

        ``head=True``: ``text`` is a head whose rest is unknown; a prefix test the head alone cannot
        decide (``_starts`` → ``None``) makes the answer ``None``.
        """
        candidates = {text}
        frontier = candidates
        for _ in range(len(self._inverse) + 1):  # type: ignore[attr-defined]
            found = set()
            for how, key, target in self._inverse:  # type: ignore[attr-defined]
                for cand in frontier:
                    if how == "prefix":
                        fires = _starts(cand, target) if head else cand.startswith(target)
                        if fires is None:
                            return None
                        if fires:
                            found.add(key + cand[len(target):])
                    elif how == "suffix":
                        if cand.endswith(target):
                            found.add(cand[: len(cand) - len(target)] + key)
                    elif target and target in cand:
                        found.add(cand.replace(target, key))
            frontier = found - candidates
            if not frontier:
                break
            candidates |= frontier
        return candidates
