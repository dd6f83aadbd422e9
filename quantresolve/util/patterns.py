"""Regular expressions from untrusted files, matched within a time bound.

A compressed-tensors ``ignore`` or ``targets`` entry ``re:(a+)+$`` backtracks exponentially on a
module name of a few dozen ``a``s; with Python's :mod:`re` that is a hang no one can interrupt
from inside. Patterns read from configs and profiles are compiled here with the :mod:`regex`
module (its default ``VERSION0`` syntax is :mod:`re`'s, so ``re.match`` semantics are kept) and
every match runs with a ``timeout``: at most :data:`MATCH_TIMEOUT_S` for one name and
:data:`BUDGET_S` for all the names one pattern is ever asked about — seconds of the process's CPU
time, which is what the regex module's ``timeout`` counts (on a loaded machine the wall time is a
few times longer). Past either bound the match
raises the caller's error class naming the file, the field and the pattern — never a hang.
(RE2 would make the bound structural, but it refuses back-references and look-arounds that
real ``re:`` entries may use.)

    >>> rx = BoundedRegex(".*visual.*", file="config.json", field="quantization_config.ignore[0]")
    >>> bool(rx.match("model.visual.blocks.0.attn")), bool(rx.match("lm_head"))
    (True, False)
    >>> BoundedRegex("(", file="config.json", field="ignore[1]")
    Traceback (most recent call last):
    ...
    quantresolve.errors.ConfigError: config.json: ignore[1]: invalid regular expression '(': missing ) at position 1
"""

from __future__ import annotations

import time

import regex

from quantresolve.errors import ConfigError, QuantResolveError

#: CPU seconds one match may take (a real module name matches in microseconds: 10^5 times less).
MATCH_TIMEOUT_S = 0.25
#: CPU seconds all matches of one pattern may take together.
BUDGET_S = 5.0


class BoundedRegex:
    """One untrusted pattern, compiled once; :meth:`match` / :meth:`search` / :meth:`fullmatch` / :meth:`sub`
    are time-bounded."""

    __slots__ = ("_error", "_rx", "_spent", "field", "file", "pattern")

    def __init__(self, pattern: str, *, file: str | None, field: str | None,
                 error: type[QuantResolveError] = ConfigError) -> None:
        self.pattern, self.file, self.field, self._error = pattern, file, field, error
        self._spent = 0.0
        try:
            self._rx = regex.compile(pattern)
        except (regex.error, TypeError, ValueError, OverflowError, RecursionError) as err:
            raise error(f"invalid regular expression {pattern!r}: {err}", file=file, field=field) from None

    @property
    def groupindex(self) -> dict[str, int]:
        return dict(self._rx.groupindex)

    def match(self, name: str) -> regex.Match[str] | None:
        """``re.match`` (anchored at the start) of ``name``, bounded in time."""
        return self._run(self._rx.match, name)

    def search(self, name: str) -> regex.Match[str] | None:
        """``re.search`` of ``name``, bounded in time."""
        return self._run(self._rx.search, name)

    def fullmatch(self, name: str) -> regex.Match[str] | None:
        """``re.fullmatch`` of ``name``, bounded in time."""
        return self._run(self._rx.fullmatch, name)

    def sub(self, repl: str, name: str) -> str:
        """``re.sub`` of ``repl`` for every match in ``name``, bounded in time."""
        return self._run(lambda text, timeout: self._rx.sub(repl, text, timeout=timeout), name)

    def _run(self, method, name: str):  # type: ignore[no-untyped-def]
        left = BUDGET_S - self._spent
        start = time.process_time()
        try:
            return method(name, timeout=min(MATCH_TIMEOUT_S, max(left, 0.001)))
        except TimeoutError:
            raise self._error(f"regular expression {self.pattern!r} is too slow to match (over "
                              f"{MATCH_TIMEOUT_S:g} s of CPU for one name, or {BUDGET_S:g} s in all; catastrophic "
                              f"backtracking?), e.g. on {name[:80]!r}: write it without nested repetition",
                              file=self.file, field=self.field) from None
        finally:
            self._spent += time.process_time() - start


__all__ = ["BUDGET_S", "MATCH_TIMEOUT_S", "BoundedRegex"]
