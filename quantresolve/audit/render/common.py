"""What every human-readable renderer shares: colours, number formats, layer-row folding.

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


#: Usual data-flow order of projection names inside a block (lower first); others sort after.
PROJECTION_RANK: dict[str, int] = {
    "q_proj": 0, "qkv_proj": 0, "fused_qkv_a_proj": 0, "q_a_proj": 0, "q_b_proj": 1, "k_proj": 1,
    "kv_a_proj_with_mqa": 1, "v_proj": 2, "kv_b_proj": 2, "o_proj": 3, "gate": 4, "gate_proj": 5,
    "gate_up_proj": 5, "up_proj": 6, "down_proj": 7, "experts": 8,
}


def column_order(columns: Sequence[str]) -> list[str]:
    """Attention-like columns first, then the rest; inside each, data-flow order, then alphabetical.

        >>> column_order(["mlp.down_proj", "self_attn.o_proj", "mlp.gate_up_proj", "self_attn.qkv_proj"])
        ['self_attn.qkv_proj', 'self_attn.o_proj', 'mlp.gate_up_proj', 'mlp.down_proj']
    """
    def key(col: str) -> tuple[int, str, int, str]:
        head, _, last = col.replace(" [kv]", "").rpartition(".")
        attn = 0 if any(k in col for k in ("attn", "attention", "mixer")) else 1
        return (attn, head, PROJECTION_RANK.get(last, 50), col)
    return sorted(columns, key=key)


def outside_layers(report: Any) -> list[Any]:
    """Units outside numbered layers that the resolver answered for (embeddings, heads, ...)."""
    from quantresolve.audit.coverage import layer_position

    return [m for m in report.modules if m.kind != "other" and layer_position(m.name) is None]
