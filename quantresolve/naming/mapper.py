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

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from quantresolve.errors import ProfileError

RuleTable = Mapping[str, "str | None"]

_FAMILIES = ("orig_to_new_regex", "orig_to_new_substr", "orig_to_new_prefix", "orig_to_new_suffix")


def _extends(key: str, target: str, how: str) -> bool:
    """True when applying ``key → target`` to a name that already has ``target`` would fire again."""
    if how == "prefix":
        return target.startswith(key) and target != key
    if how == "suffix":
        return target.endswith(key) and target != key
    return key in target and target != key


@dataclass(frozen=True)
class WeightsMapper:
    """Checkpoint → model renaming rules (see the module docstring for the order and semantics)."""

    orig_to_new_regex: Mapping[str, str | None] = field(default_factory=dict)
    orig_to_new_substr: Mapping[str, str | None] = field(default_factory=dict)
    orig_to_new_prefix: Mapping[str, str | None] = field(default_factory=dict)
    orig_to_new_suffix: Mapping[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        compiled = []
        for pattern, target in self.orig_to_new_regex.items():
            try:
                compiled.append((re.compile(pattern), target))
            except re.error as err:
                raise ProfileError(f"invalid regex {pattern!r}: {err}", field="mapper.orig_to_new_regex") from None
        object.__setattr__(self, "_regex", tuple(compiled))
        object.__setattr__(self, "_cache", {})

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
        return cls(**tables)

    def to_dict(self) -> dict[str, dict[str, str | None]]:
        return {fam: dict(getattr(self, fam)) for fam in _FAMILIES if getattr(self, fam)}

    @property
    def is_identity(self) -> bool:
        return not any(getattr(self, fam) for fam in _FAMILIES)

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
        text: str | None = name + "."
        for pattern, target in self._regex:  # type: ignore[attr-defined]
            if text is None:
                return None
            if pattern.search(text):
                if target is None:
                    return None
                text = pattern.sub(target, text)
        for key, target in self.orig_to_new_substr.items():
            if text is not None and key in text:
                if target is None:
                    return None
                if _extends(key, target, "substr") and target in text:
                    continue
                text = text.replace(key, target)
        for key, target in self.orig_to_new_prefix.items():
            if text is not None and text.startswith(key):
                if target is None:
                    return None
                if _extends(key, target, "prefix") and text.startswith(target):
                    continue
                text = target + text[len(key):]
        for key, target in self.orig_to_new_suffix.items():
            if text is not None and text.endswith(key):
                if target is None:
                    return None
                if _extends(key, target, "suffix") and text.endswith(target):
                    continue
                text = text[: len(text) - len(key)] + target
        if text is None:
            return None
        return text[:-1] if text.endswith(".") else text

    def map_names(self, names: Iterable[str]) -> dict[str, str | None]:
        return {n: self.map_name(n) for n in names}

    # --- inverse --------------------------------------------------------------------------------

    def preimages(self, name: str) -> frozenset[str]:
        """Checkpoint-space names that map to ``name`` (verified forward), found by inverting rules.

        Regex rules are not inverted (a regex has no general inverse): a name
        reachable only through a regex rule is found when the checkpoint's own
        module list is known (see :class:`quantresolve.resolve.namespace.Namespace`).
        """
        if self.is_identity:
            return frozenset((name,))
        text = name + "."
        candidates = {text}
        for fam, how in (("orig_to_new_suffix", "suffix"), ("orig_to_new_prefix", "prefix"),
                         ("orig_to_new_substr", "substr")):
            for key, target in getattr(self, fam).items():
                if target is None:
                    continue
                for cand in list(candidates):
                    if how == "prefix" and cand.startswith(target):
                        candidates.add(key + cand[len(target):])
                    elif how == "suffix" and cand.endswith(target):
                        candidates.add(cand[: len(cand) - len(target)] + key)
                    elif how == "substr" and target and target in cand:
                        candidates.add(cand.replace(target, key))
        out = set()
        for cand in candidates:
            plain = cand[:-1] if cand.endswith(".") else cand
            if plain and self.map_name(plain) == name:
                out.add(plain)
        return frozenset(out)
