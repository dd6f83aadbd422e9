"""Grouped findings: one per (code, cause), with every module it names as a compact pattern.

The audit raises one :class:`~quantresolve.formats.normalized.Finding` per module (or config
entry) and cause; a real checkpoint repeats the same cause on every layer (58 DeepSeek routers,
75 GLM-5 routers). :func:`group_findings` merges the findings that share ``code``, ``cause``
(the message without its subject) and ``file`` into one :class:`FindingGroup` whose ``members``
are all their subjects, kept in full, and whose ``pattern`` writes them compactly
(:mod:`.pattern`). ``units`` are the report's modules the members belong to (an expert
projection belongs to its MoE container, a shard to its fused layer), for linking.

Order: severity (error, warning, info), then how many modules a group touches (most first),
then code, pattern and cause — deterministic for a given set of findings::

    >>> from quantresolve.audit.codes import finding
    >>> raw = [finding("config-quantized-model-unquantized", "config says NVFP4", subject=f"model.layers.{i}.mlp.gate")
    ...        for i in (3, 10, 4, 5)] + [finding("dead-exclude", "exclude entry matches no module", subject="x*")]
    >>> [(g.code, g.severity, g.count, g.pattern) for g in group_findings(raw)]
    [('dead-exclude', 'warning', 1, 'x*'), ('config-quantized-model-unquantized', 'info', 4, 'model.layers.{3..5,10}.mlp.gate')]
    >>> group_findings(raw)[1].message
    'model.layers.{3..5,10}.mlp.gate: config says NVFP4'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from quantresolve.audit.codes import CODES
from quantresolve.audit.pattern import compact, natural_sorted
from quantresolve.formats.normalized import Finding, Severity

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True)
class FindingGroup:
    """Findings of one code and cause; ``count`` raw findings about ``members`` (their subjects)."""

    code: str
    severity: Severity
    cause: str
    count: int
    members: tuple[str, ...]
    units: tuple[str, ...] = ()
    file: str | None = None
    field: str | None = None
    pattern: str | None = None

    @property
    def message(self) -> str:
        """One line: ``pattern: cause`` (just the cause when the findings name no subject)."""
        return f"{self.pattern}: {self.cause}" if self.pattern is not None else self.cause

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "message": self.message, "cause": self.cause,
                "count": self.count, "pattern": self.pattern, "members": list(self.members),
                "units": list(self.units), "file": self.file, "field": self.field}


def cause_of(f: Finding) -> str:
    """The message without its leading ``subject: `` (findings are written ``subject: cause``)."""
    if f.subject is not None and f.message.startswith(f"{f.subject}: "):
        return f.message[len(f.subject) + 2:]
    return f.message


def _common_field(fields: list[str | None]) -> str | None:
    """The field all findings share; else the list they all index (``exclude_modules[3]`` → ``exclude_modules``)."""
    distinct = set(fields)
    if len(distinct) == 1:
        return fields[0]
    if None in distinct:
        return None
    heads = {f.rpartition("[")[0] if f.endswith("]") else f for f in distinct}  # type: ignore[union-attr]
    return heads.pop() if len(heads) == 1 and "" not in heads else None


def group_findings(findings: Iterable[Finding], part_units: Mapping[str, str] | None = None) -> list[FindingGroup]:
    """Merge ``findings`` (duplicates dropped) into sorted :class:`FindingGroup` s.

    ``part_units`` maps a member that is not itself a report module (an expert projection, a
    fused layer's shard) to the unit it belongs to; a member mapped to itself is a unit.
    """
    part_units = part_units or {}
    buckets: dict[tuple[str, str, str, str | None], dict[tuple[str | None, str | None], None]] = {}
    for f in findings:
        severity = CODES[f.code].severity if f.code in CODES else f.severity
        key = (f.code, severity, cause_of(f), f.file)
        buckets.setdefault(key, {})[(f.subject, f.field)] = None
    groups = []
    for (code, severity, cause, file), entries in buckets.items():
        subjects = natural_sorted({s for s, _ in entries if s is not None})
        units = natural_sorted({u for s in subjects if (u := part_units.get(s)) is not None})
        groups.append(FindingGroup(
            code=code, severity=severity, cause=cause, count=len(entries), members=tuple(subjects),  # type: ignore[arg-type]
            units=tuple(units), file=file, field=_common_field([f for _, f in entries]),
            pattern=compact(subjects)))
    groups.sort(key=lambda g: (SEVERITY_ORDER[g.severity], -g.count, g.code, g.pattern or "", g.cause, g.file or ""))
    return groups
