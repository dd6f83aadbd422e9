"""The per-layer map: numbered layer stacks × module types, columns in data-flow order.

Owned by the report's data (``layer_map`` in the JSON contract), read by every renderer::

    >>> layer_position("model.layers.12.mlp.experts")
    ('model.layers', 12, 'mlp.experts')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from quantresolve.audit.report import ModuleReport

_LAYER = re.compile(r"^(?P<stack>.+?)\.(?P<index>\d+)\.(?P<rest>.+)$")


def layer_position(name: str) -> tuple[str, int, str] | None:
    """``(stack, index, column)`` of a name inside a numbered layer stack, else ``None``."""
    m = _LAYER.match(name)
    if m is None:
        return None
    return m["stack"], int(m["index"]), m["rest"]


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


def layer_map(modules: Sequence[ModuleReport]) -> list[dict[str, Any]]:
    """Per stack of numbered layers (columns in :func:`column_order`): columns (module types) and one row per layer index.

    Cells are coverage labels (algo / ``unquantized`` / ``unresolved``); KV-cache owners get
    a ``<name> [kv]`` column. ``other`` units (norms) are left out.
    """
    stacks: dict[str, dict[int, dict[str, str]]] = {}
    columns: dict[str, dict[str, None]] = {}
    for m in modules:
        if m.kind == "other":
            continue
        pos = layer_position(m.name)
        if pos is None:
            continue
        stack, index, column = pos
        if m.kind == "attention":
            column += " [kv]"
        stacks.setdefault(stack, {}).setdefault(index, {})[column] = m.label
        columns.setdefault(stack, {})[column] = None
    out = []
    for stack in sorted(stacks):
        rows = stacks[stack]
        out.append({"stack": stack, "columns": column_order(list(columns[stack])),
                    "rows": [{"index": i, "cells": dict(sorted(rows[i].items()))} for i in sorted(rows)]})
    return out
