"""Coverage: how much of the model each algorithm covers (the per-layer map is :mod:`.layer_map`).

``by_algo`` counts every weight-bearing unit (KV-cache owners are counted in
``kv_cache`` instead, so a KV algo never inflates a weight algo); the bytes of
all units sum to the checkpoint's tensor bytes. ``quantized_linear_param_fraction``
is over linear-like units (``linear``, ``moe``, ``lm_head``); it is ``null``
when parameter counts are unknown (index-only checkpoints)::

    >>> from quantresolve.audit.report import ModuleReport
    >>> m = lambda n, k, a, p: ModuleReport(n, k, "single", a, "r", None, {}, 1, (n,), params=p, bytes=p)
    >>> cov = coverage([m("model.layers.0.mlp.down_proj", "linear", "NVFP4", 300),
    ...                 m("lm_head", "lm_head", None, 100)], params_known=True)
    >>> cov["quantized_linear_param_fraction"], sorted(cov["by_algo"])
    (0.75, ['NVFP4', 'unquantized'])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from quantresolve.audit.report import ModuleReport

LINEAR_KINDS = frozenset({"linear", "moe", "lm_head"})


def coverage(modules: Sequence[ModuleReport], *, params_known: bool) -> dict[str, Any]:
    by_algo: dict[str, dict[str, Any]] = {}
    kv: dict[str, int] = {}
    linear_total = linear_quant = 0
    linear_units = linear_quant_units = 0
    for m in modules:
        if m.kind == "attention":
            kv[m.label] = kv.get(m.label, 0) + 1
            # Its bytes (the KV scales) still count toward the checkpoint total.
            entry = by_algo.setdefault("unquantized", {"modules": 0, "params": 0, "bytes": 0, "by_kind": {}})
            entry["bytes"] += m.bytes
            continue
        entry = by_algo.setdefault(m.label, {"modules": 0, "params": 0, "bytes": 0, "by_kind": {}})
        entry["modules"] += 1
        entry["params"] += m.params
        entry["bytes"] += m.bytes
        entry["by_kind"][m.kind] = entry["by_kind"].get(m.kind, 0) + 1
        if m.kind in LINEAR_KINDS:
            linear_total += m.params
            linear_units += 1
            if m.algo is not None and m.error is None:
                linear_quant += m.params
                linear_quant_units += 1
    for entry in by_algo.values():
        entry["by_kind"] = dict(sorted(entry["by_kind"].items()))
        if not params_known:
            entry["params"] = None
    return {
        "by_algo": dict(sorted(by_algo.items())),
        "quantized_linear_param_fraction": (round(linear_quant / linear_total, 6)
                                            if params_known and linear_total else None),
        "quantized_linear_module_fraction": (round(linear_quant_units / linear_units, 6)
                                             if linear_units else None),
        "params_known": params_known,
        "total_params": sum(m.params for m in modules) if params_known else None,
        "total_bytes": sum(m.bytes for m in modules) if params_known else None,
        "kv_cache": {"attention_modules": sum(kv.values()), "by_algo": dict(sorted(kv.items()))},
    }
