"""What every human-readable renderer shares: colours, number formats, and the rows of each section.

The renderers (:mod:`.terminal`, :mod:`.markdown`, :mod:`.html`) differ only in markup; the text of
each cell comes from here (:func:`coverage_rows`, :func:`layer_tables`, :func:`outside_layers`,
:func:`finding_where`, and the header's :func:`producer_text`, :func:`evidence_text`,
:func:`location_text`).

    >>> human_bytes(390480), human_count(361088)
    ('381.3 KiB', '361.1k')
    >>> fold_rows([{"index": 0, "cells": {"a": "FP8"}}, {"index": 1, "cells": {"a": "NVFP4"}},
    ...            {"index": 2, "cells": {"a": "NVFP4"}}])
    [('0', {'a': 'FP8'}), ('1–2', {'a': 'NVFP4'})]
    >>> algo_colour("unquantized")
    '#9e9e9e'
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from quantresolve.audit.grouping import FindingGroup
from quantresolve.audit.layer_map import column_order, layer_position
from quantresolve.audit.report import AuditReport

#: Fixed colours for common labels (hex); others get a stable colour from their name.
ALGO_COLOURS: dict[str, str] = {
    "unquantized": "#9e9e9e",
    "unresolved": "#d32f2f",
    "NVFP4": "#2e7d32",
    "W4A16_NVFP4": "#66bb6a",
    "NVFP4A16": "#66bb6a",
    "FP8": "#1565c0",
    "FP8_DYNAMIC": "#42a5f5",
    "FP8_BLOCK": "#0d47a1",
    "FP8_PER_CHANNEL_PER_TOKEN": "#42a5f5",
    "MXFP4": "#6a1b9a",
    "MXFP4A16": "#ab47bc",
    "W4A16": "#ef6c00",
    "W4A16_ASYM": "#ffa726",
    "W4A16_AWQ": "#ef6c00",
    "W4A8_AWQ": "#f57c00",
    "W8A8": "#00838f",
    "W8A16": "#26a69a",
    "W8A8_SQ_PER_CHANNEL": "#00838f",
    "BNB_NF4": "#8d6e63",
    "BNB_FP4": "#a1887f",
    "BNB_INT8": "#5d4037",
}

SEVERITY_COLOURS = {"error": "#d32f2f", "warning": "#f9a825", "info": "#0288d1"}


def algo_colour(label: str) -> str:
    known = ALGO_COLOURS.get(label)
    if known is not None:
        return known
    digest = hashlib.sha256(label.encode()).digest()
    r, g, b = (64 + digest[i] % 160 for i in range(3))
    return f"#{r:02x}{g:02x}{b:02x}"


#: Short forms of common labels, for the per-layer map's cells (the legend spells each one out).
SHORT_LABELS: dict[str, str] = {
    "unquantized": "dense", "unresolved": "!err", "W4A16_NVFP4": "W4N", "NVFP4A16": "N4A16",
    "FP8_DYNAMIC": "F8dyn", "FP8_BLOCK": "F8blk", "FP8_PER_CHANNEL_PER_TOKEN": "F8pc", "FP8_PB_WO": "F8pb",
    "FP8_PB_REAL": "F8pb", "W4A16_ASYM": "W4asy", "W4A16_AWQ": "W4awq", "W4A8_AWQ": "W4A8a",
    "W8A8_SQ_PER_CHANNEL": "W8sq", "W4A8_NVFP4_FP8": "W4N8", "W4A8_MXFP4_FP8": "W4M8", "NVFP4_AWQ": "N4awq",
    "NVFP4_SVD": "N4svd", "MXFP4A16": "M4A16", "BNB_NF4": "nf4", "BNB_FP4": "fp4", "BNB_INT8": "int8",
}


def short_labels(labels: Sequence[str], width: int = 5) -> dict[str, str]:
    """A distinct short form (at most ``width`` characters) of every label, stable for a given set.

        >>> short_labels(["NVFP4", "unquantized", "W4A16", "W4A16_ASYM"])
        {'NVFP4': 'NVFP4', 'W4A16': 'W4A16', 'W4A16_ASYM': 'W4asy', 'unquantized': 'dense'}
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for label in sorted(set(labels)):
        short = SHORT_LABELS.get(label, label)[:width]
        n = 2
        while short in taken:  # two labels share a short form: number the later one
            short = f"{short[:width - len(str(n))]}{n}"
            n += 1
        out[label] = short
        taken.add(short)
    return out


def text_colour(background: str) -> str:
    """Black or white, whichever reads better on ``background`` (``#rrggbb``; WCAG relative luminance).

        >>> text_colour("#2e7d32"), text_colour("#9e9e9e")
        ('#fff', '#000')
    """
    def channel(i: int) -> float:
        c = int(background[i:i + 2], 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
    return "#000" if (luminance + 0.05) / 0.05 > 1.05 / (luminance + 0.05) else "#fff"


def human_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def human_count(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def percent(x: float | None) -> str:
    return "?" if x is None else f"{100 * x:.1f} %"


def fold_rows(rows: Sequence[dict[str, Any]]) -> list[tuple[str, dict[str, str]]]:
    """Merge consecutive layer rows with identical cells into ``"a–b"`` ranges."""
    out: list[tuple[str, dict[str, str]]] = []
    start = prev = None
    cells: dict[str, str] | None = None
    for row in rows:
        if cells is not None and row["cells"] == cells and prev is not None and row["index"] == prev + 1:
            prev = row["index"]
            continue
        if cells is not None:
            out.append((str(start) if start == prev else f"{start}–{prev}", cells))
        start = prev = row["index"]
        cells = row["cells"]
    if cells is not None:
        out.append((str(start) if start == prev else f"{start}–{prev}", cells))
    return out


def outside_layers(report: AuditReport) -> list[Any]:
    """Units outside numbered layers that the resolver answered for (embeddings, heads, ...)."""
    return [m for m in report.modules if m.kind != "other" and layer_position(m.name) is None]


def coverage_rows(report: AuditReport) -> list[tuple[str, str, str, str, str]]:
    """One row of display text per coverage label: ``(label, modules, params, bytes, kinds)``."""
    cov = report.coverage
    return [(label, str(e["modules"]), human_count(e["params"]),
             human_bytes(e["bytes"]) if cov["params_known"] else "?",
             ", ".join(f"{k} {n}" for k, n in e["by_kind"].items()))
            for label, e in cov["by_algo"].items()]


def layer_tables(report: AuditReport, *, fold: bool = True) -> list[tuple[str, list[str], list[tuple[str, dict[str, str]]]]]:
    """Per layer stack: ``(stack, columns in data-flow order, rows)``; a row is ``(layers, cells)``,
    identical consecutive layers folded into one ``"a–b"`` row when ``fold``."""
    out = []
    for stack in report.layer_map:
        rows = (fold_rows(stack["rows"]) if fold
                else [(str(row["index"]), row["cells"]) for row in stack["rows"]])
        out.append((stack["stack"], column_order(stack["columns"]), rows))
    return out


#: What each evidence level rests on (the legend and the headers spell it out).
EVIDENCE_MEANING: dict[str, str] = {
    "headers": "shard headers read: dtypes, shapes and tensor formats are checked",
    "names-only": "only the index's tensor names: formats inferred from names; dtypes and shapes not checked",
    "config-only": "only config.json: the modules of the model it describes (transformers on the meta device); "
                   "tensor formats not checked",
}
#: Where parameter counts and bytes came from (``report.shapes["source"]``).
SIZES_MEANING: dict[str | None, str] = {
    "headers": "sizes from the headers",
    "config": "params from config.json shapes, bytes estimated per scheme",
    None: "sizes unknown",
}
#: A report without quantization config (``producer`` null).
NO_PRODUCER = "none (no quantization config: nothing quantized)"


def producer_text(report: AuditReport) -> str:
    """The producer and its version, or what a missing quantization config means.

        >>> from types import SimpleNamespace
        >>> producer_text(SimpleNamespace(producer=None, producer_version=None))
        'none (no quantization config: nothing quantized)'
    """
    if report.producer is None:
        return NO_PRODUCER
    return f"{report.producer} {report.producer_version or ''}".rstrip()


def evidence_text(report: AuditReport) -> str:
    """The evidence level, and below headers where the sizes came from.

        >>> from types import SimpleNamespace
        >>> evidence_text(SimpleNamespace(evidence_level="config-only", shapes={"source": "config"}))
        'config-only (params from config.json shapes, bytes estimated per scheme)'
    """
    if report.evidence_level == "headers":
        return "headers"
    return f"{report.evidence_level} ({SIZES_MEANING.get(report.shapes.get('source'), SIZES_MEANING[None])})"


def location_text(report: AuditReport) -> str | None:
    """Where the checkpoint was read from, when not a plain local path (``None`` then).

        >>> from types import SimpleNamespace
        >>> location_text(SimpleNamespace(location={"kind": "hub", "repo_id": "org/name", "revision": None,
        ...     "commit": "0123456789abcdef0123", "endpoint": "https://huggingface.co", "path": None}))
        'hub https://huggingface.co, org/name@main, commit 0123456789ab (metadata files and shard headers only)'
    """
    loc = report.location or {}
    kind = loc.get("kind")
    commit = f", commit {loc['commit'][:12]}" if loc.get("commit") else ""
    if kind == "hf-cache":
        return f"Hugging Face cache, {loc.get('repo_id')}{commit} ({loc.get('path')})"
    if kind == "hub":
        return (f"hub {loc.get('endpoint')}, {loc.get('repo_id')}@{loc.get('revision') or 'main'}{commit} "
                "(metadata files and shard headers only)")
    return None


def tensor_format(module: Any) -> str:
    """A module's tensor format for display: ``not read`` when only config.json was (config-only)."""
    if module.evidence.get("confidence") == "config-only":
        return "not read"
    return str(module.evidence.get("format", ""))


def finding_where(finding: FindingGroup) -> str:
    """``file: field`` of a finding (either may be missing)."""
    return f"{finding.file or ''}{': ' + finding.field if finding.field else ''}"
