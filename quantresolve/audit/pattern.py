"""Compact patterns for sets of dotted names: ``model.layers.{0..60}.mlp.gate``.

A grouped finding names every module it is about; :func:`compact` writes that set as one
pattern a person can read, :func:`expand` gives the exact set back (the round trip is tested
with hypothesis). The HTML report carries a port of :func:`expand` in JavaScript.

Grammar (``\\`` escapes ``\\ { } ,`` and ``.`` in literal text)::

    pattern := ( literal-char | "{" item ( "," item )* "}" )*
    item    := INT ".." INT          a range of canonical integers, both ends included
             | pattern               any sub-pattern (an alternative)

A pattern expands to the cartesian product of its parts; a group to the union of its
items. Names are split on ``.``; a component that is a canonical integer (``0``, ``17``, not
``07``) is a number, anything else is text. :func:`compact` factors the names coordinate by
coordinate, left to right: at each position it groups the values whose remaining names are the
same set, so every term is a product and no name appears twice. Numbers are written as ranges
(three or more consecutive values) and come before text; the result depends only on the set of
names, never on their order::

    >>> compact(["model.layers.10.mlp.gate", "model.layers.2.mlp.gate", "model.layers.3.mlp.gate",
    ...          "model.layers.4.mlp.gate"])
    'model.layers.{2..4,10}.mlp.gate'
    >>> compact([f"model.layers.{i}.mlp.experts.{e}.down_proj" for i in (0, 1, 2, 4) for e in range(256)])
    'model.layers.{0..2,4}.mlp.experts.{0..255}.down_proj'
    >>> compact(["lm_head", "model.layers.0.self_attn.q_a_proj", "model.layers.0.self_attn.kv_b_proj"])
    '{lm_head,model.layers.0.self_attn.{kv_b_proj,q_a_proj}}'
    >>> expand('model.layers.{2..4,10}.mlp.gate')[:2]
    ['model.layers.2.mlp.gate', 'model.layers.3.mlp.gate']
    >>> compact(["a{b}.1", "a,b.2"]), expand(compact(["a{b}.1", "a,b.2"]))
    ('{a\\\\,b.2,a\\\\{b\\\\}.1}', ['a,b.2', 'a{b}.1'])
"""

from __future__ import annotations

import re
from collections.abc import Iterable

Value = int | str

_RANGE_ITEM = re.compile(r"[0-9]+\.\.[0-9]+")
_RANGE_AT = re.compile(r"(0|[1-9][0-9]*)\.\.(0|[1-9][0-9]*)(?=[,}])")
_ESCAPES = str.maketrans({c: "\\" + c for c in "\\{},."})
MIN_RUN = 3  # consecutive numbers written as a range from this length on


def _value(component: str) -> Value:
    """A canonical decimal of at most 18 digits is a number (``07`` and longer runs stay text: exact round trip)."""
    if component.isdigit() and component.isascii() and len(component) <= 18 and (
            component[0] != "0" or component == "0"):
        return int(component)
    return component


def _value_key(v: Value) -> tuple[bool, int | str]:
    """Numbers before text; a number never meets a string in a comparison (the flag differs first)."""
    return (isinstance(v, str), v)


def natural_key(name: str) -> tuple[tuple[bool, int | str], ...]:
    """Sort key: numbers compare as numbers (layer 2 before 10), text as text, numbers first.

        >>> sorted(["l.10", "l.2", "l.x"], key=natural_key)
        ['l.2', 'l.10', 'l.x']
    """
    return tuple(_value_key(_value(c)) for c in name.split("."))


class _Memo(dict):  # type: ignore[type-arg]
    """component → f(component), computed once per distinct component (names repeat them a lot)."""

    def __init__(self, f) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.f = f

    def __missing__(self, component: str):  # type: ignore[no-untyped-def]
        value = self[component] = self.f(component)
        return value


def natural_sorted(names: Iterable[str]) -> list[str]:
    """``sorted(names, key=natural_key)``, faster on many names sharing components."""
    keys = _Memo(lambda c: _value_key(_value(c)))
    return sorted(names, key=lambda name: tuple(map(keys.__getitem__, name.split("."))))


def _escape(text: str) -> str:
    return text.translate(_ESCAPES)


def _item(text: str) -> str:
    """An alternative inside braces; one that would read as a range gets its first dot escaped."""
    return text.replace(".", "\\.", 1) if _RANGE_ITEM.fullmatch(text) else text


def _value_set(values: list[Value]) -> str:
    """``values`` (sorted, distinct) as one literal or a ``{...}`` group with integer ranges."""
    if len(values) == 1:
        v = values[0]
        return str(v) if isinstance(v, int) else _escape(v)
    items: list[str] = []
    ints = [v for v in values if isinstance(v, int)]
    start = 0
    while start < len(ints):
        end = start
        while end + 1 < len(ints) and ints[end + 1] == ints[end] + 1:
            end += 1
        if end - start + 1 >= MIN_RUN:
            items.append(f"{ints[start]}..{ints[end]}")
        else:
            items.extend(str(i) for i in ints[start:end + 1])
        start = end + 1
    items.extend(_escape(v) for v in values if isinstance(v, str))
    return "{" + ",".join(items) + "}"


def _join(terms: list[str]) -> str:
    return terms[0] if len(terms) == 1 else "{" + ",".join(_item(t) for t in terms) + "}"


def _terms(tuples: list[tuple[Value, ...]], memo: dict[frozenset[tuple[Value, ...]], str]) -> list[str]:
    """Product terms covering exactly ``tuples`` (distinct, all of one length >= 1), in natural order.

    ``memo`` holds the pattern of every rest-set already written (15k experts share one ``{down,gate,up}``)."""
    if len(tuples[0]) == 1:
        return [_value_set(sorted({t[0] for t in tuples}, key=_value_key))]
    rests: dict[Value, list[tuple[Value, ...]]] = {}
    for t in tuples:
        rests.setdefault(t[0], []).append(t[1:])
    by_rest: dict[str, list[Value]] = {}
    for value in sorted(rests, key=_value_key):
        key = frozenset(rests[value])
        rest = memo.get(key)
        if rest is None:
            rest = memo[key] = _join(_terms(rests[value], memo))
        by_rest.setdefault(rest, []).append(value)
    return [f"{_value_set(values)}.{rest}" for rest, values in by_rest.items()]


def compact(names: Iterable[str]) -> str | None:
    """One pattern whose expansion is exactly the set of ``names``; ``None`` for no names."""
    by_length: dict[int, set[tuple[Value, ...]]] = {}
    values = _Memo(_value)
    for name in names:
        parts = tuple(map(values.__getitem__, name.split(".")))
        by_length.setdefault(len(parts), set()).add(parts)
    if not by_length:
        return None
    if len(by_length) == 1:
        return _join(_terms(list(next(iter(by_length.values()))), {}))
    terms: list[tuple[tuple[tuple[bool, int | str], ...], str]] = []
    for tuples in by_length.values():
        first = min(tuple(map(_value_key, t)) for t in tuples)
        terms.extend((first, term) for term in _terms(list(tuples), {}))
    return _join([term for _, term in sorted(terms, key=lambda kt: kt[0])])


class _Parser:
    """Recursive descent over the grammar in the module docstring."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, why: str) -> ValueError:
        return ValueError(f"pattern {self.text!r}, position {self.pos}: {why}")

    def sequence(self, stops: str) -> list[str]:
        out = [""]
        literal: list[str] = []
        text = self.text
        while self.pos < len(text) and text[self.pos] not in stops:
            c = text[self.pos]
            if c == "\\":
                if self.pos + 1 >= len(text):
                    raise self.error("dangling escape")
                literal.append(text[self.pos + 1])
                self.pos += 2
            elif c == "{":
                head = "".join(literal)
                literal = []
                self.pos += 1
                group = self.group()
                out = [o + head + g for o in out for g in group]
            elif c in "},":
                raise self.error(f"unexpected {c!r}")
            else:
                literal.append(c)
                self.pos += 1
        tail = "".join(literal)
        return [o + tail for o in out]

    def group(self) -> list[str]:
        out: list[str] = []
        while True:
            m = _RANGE_AT.match(self.text, self.pos)
            if m is not None:
                lo, hi = int(m[1]), int(m[2])
                if lo > hi:
                    raise self.error(f"empty range {m[0]}")
                out.extend(str(i) for i in range(lo, hi + 1))
                self.pos = m.end()
            else:
                out.extend(self.sequence(",}"))
            if self.pos >= len(self.text):
                raise self.error("unclosed '{'")
            closing = self.text[self.pos] == "}"
            self.pos += 1
            if closing:
                return out


def expand(pattern: str) -> list[str]:
    """Every name ``pattern`` stands for, in natural order (see :func:`natural_key`).

    Raises ``ValueError`` on a malformed pattern.
    """
    parser = _Parser(pattern)
    names = parser.sequence("")
    return natural_sorted(set(names))


def expand_raw(pattern: str) -> list[str]:
    """The expansion in pattern order, duplicates kept (a compacted pattern has none)."""
    return _Parser(pattern).sequence("")
