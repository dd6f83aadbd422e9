"""The resolution-rules registry: producer → the rules that answer for its configs.

This module imports no rules module. Each ``rules_<producer>`` module registers its class with
:func:`register_rules` when imported; :mod:`quantresolve.resolve.producers` imports them all (one
line per producer). A rules class is built once per resolver from the shared
:class:`~quantresolve.resolve.context.Context` and declares how its exclude list matches
(:attr:`Rules.EXCLUDE_MODES`), which the audit's dead-entry check reuses::

    >>> import quantresolve.resolve.producers  # registers the built-in rules
    >>> rules_for("bitsandbytes").__name__, rules_for("bitsandbytes").EXCLUDE_MODES.components
    ('BitsAndBytesRules', True)

Several producers may share one rules class (a format whose exclude semantics are another's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from quantresolve.resolve.context import Context
    from quantresolve.resolve.entries import MatchModes
    from quantresolve.resolve.resolution import Resolution


class Rules(Protocol):
    """One producer's resolution rules."""

    #: How the producer's exclude / ignore / skip entries match module names.
    EXCLUDE_MODES: ClassVar[MatchModes]

    def __init__(self, ctx: Context) -> None: ...

    def resolve(self, prefix: str, kind: str) -> Resolution: ...


_RULES: dict[str, type[Rules]] = {}


def register_rules(producer: str, rules: type[Rules]) -> type[Rules]:
    """Register ``rules`` as the resolution rules of ``producer``; returns it (usable as a decorator's body)."""
    if _RULES.get(producer, rules) is not rules:
        raise ValueError(f"resolution rules for {producer!r} are registered twice")
    _RULES[producer] = rules
    return rules


def rules_for(producer: str) -> type[Rules]:
    """The rules class registered for ``producer``."""
    try:
        return _RULES[producer]
    except KeyError:
        raise LookupError(f"no resolution rules are registered for producer {producer!r}; "
                          f"registered: {', '.join(sorted(_RULES))}") from None


__all__ = ["Rules", "register_rules", "rules_for"]
