"""The data the HTML report's script renders: every module and finding group, once, compactly.

A 180k-tensor checkpoint audited without expert containers has ~45k modules; as ``<tr>`` elements
that is tens of megabytes and seconds of layout. The page instead embeds this JSON once and renders
only the rows in view. It is columnar and dictionary-encoded (a column of small integers into a
table of distinct strings), and the names — sorted in natural order (layer 2 before 10), which is
also the table's default order — are front-coded: each name is the previous one's first ``p[i]``
characters followed by ``s[i]``::

    >>> front_code(["model.layers.2.mlp.gate", "model.layers.2.mlp.up", "model.layers.10.x"])
    ([0, 19, 13], ['model.layers.2.mlp.gate', 'up', '10.x'])

Keys (short on purpose, they repeat in every page): ``m`` modules (``p``/``s`` names, ``k`` kind,
``a`` coverage label, ``r`` rule, ``c`` config entry, ``f`` tensor format, ``n`` params, ``b`` bytes,
``x`` scheme summary; ``n`` is ``null`` throughout when parameters are unknown), ``d`` the string
tables, ``g`` finding groups (``s`` severity, ``c`` code, ``n`` count, ``p`` pattern, ``u`` the rows of
the modules it names).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from quantresolve.audit.pattern import natural_key
from quantresolve.audit.render.common import tensor_format
from quantresolve.audit.report import AuditReport, ModuleReport


def front_code(names: Sequence[str]) -> tuple[list[int], list[str]]:
    """``(shared prefix lengths, suffixes)`` of consecutive ``names``."""
    prefixes: list[int] = []
    suffixes: list[str] = []
    prev = ""
    for name in names:
        n = 0
        limit = min(len(prev), len(name))
        while n < limit and prev[n] == name[n]:
            n += 1
        # JavaScript strings count UTF-16 units: a name outside the BMP shares its prefix in those units
        prefixes.append(n if prev.isascii() else len(prev[:n].encode("utf-16-le")) // 2)
        suffixes.append(name[n:])
        prev = name
    return prefixes, suffixes


class _Table:
    """Distinct strings in first-seen order, and each value's index."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def __call__(self, value: str) -> int:
        return self.index.setdefault(value, len(self.index))

    def values(self) -> list[str]:
        return list(self.index)


def ordered_modules(report: AuditReport) -> list[ModuleReport]:
    """The report's modules in natural name order (the table's rows, and their indices)."""
    return sorted(report.modules, key=lambda m: natural_key(m.name))


def page_data(report: AuditReport, modules: Sequence[ModuleReport]) -> dict[str, Any]:
    """The embedded data for ``modules`` (rows in this order) and the report's finding groups."""
    tables = {key: _Table() for key in ("kind", "label", "rule", "source", "format", "scheme")}
    columns: dict[str, list[Any]] = {key: [] for key in ("k", "a", "r", "c", "f", "n", "b", "x")}
    params_known = bool(report.coverage.get("params_known"))
    for m in modules:
        columns["k"].append(tables["kind"](m.kind))
        columns["a"].append(tables["label"](m.label))
        columns["r"].append(tables["rule"](m.rule or ""))
        columns["c"].append(tables["source"]((m.source or {}).get("original") or ""))
        columns["f"].append(tables["format"](tensor_format(m)))
        columns["n"].append(m.params if params_known else None)
        columns["b"].append(m.bytes if params_known else None)
        columns["x"].append(tables["scheme"](m.scheme or ""))
    prefixes, suffixes = front_code([m.name for m in modules])
    row_of = {m.name: i for i, m in enumerate(modules)}
    groups = [{"s": g.severity, "c": g.code, "n": g.count, "p": g.pattern,
               "u": sorted(row_of[u] for u in g.units if u in row_of)} for g in report.findings]
    return {"m": {"p": prefixes, "s": suffixes, **columns}, "d": {k: t.values() for k, t in tables.items()},
            "g": groups}


def script_json(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<`` survives, so no ``</script>``."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")
