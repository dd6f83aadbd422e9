"""The audit report: its data model and its JSON form (the versioned contract).

JSON layout (``schema_version`` 2; ``schemas/audit-report.schema.json``)::

    {"schema_version": 2, "tool": "quantresolve 0.1.0", "checkpoint": "...",
     "location": {"kind": "local" | "hf-cache" | "hub", "path", "repo_id", "revision", "commit", "endpoint"},
     "producer": "modelopt" | null (no quantization config: nothing quantized),
     "producer_version": "0.47.0", "quant_algo": "MIXED_PRECISION", "kv_cache": null,
     "profile": "llama", "evidence_level": "headers" | "names-only" | "config-only",
     "shapes": {"source": "headers" | "config" | null, "detail": "what built the shapes, or why there are none"},
     "shards": 1, "tensors": 201, "config_sources": ["hf_quant_config.json", "config.json"],
     "modules": [{"name", "kind", "algo", "rule", "source", "evidence", "grouping", "parts",
                  "checkpoint_names", "missing_shards", "scheme", "params", "bytes"}, ...],
     "coverage": {"by_algo": {"NVFP4": {"modules", "params", "bytes", "by_kind"}, "unquantized": {...}},
                  "quantized_linear_param_fraction", "quantized_linear_module_fraction",
                  "params_known", "total_params", "total_bytes", "kv_cache": {...}},
     "layer_map": [{"stack": "model.layers", "columns": [...], "rows": [{"index": 0, "cells": {...}}]}],
     "findings": [{"code", "severity", "message", "cause", "count", "pattern", "members", "units",
                   "file", "field"}, ...],
     "summary": {"error": 0, "warning": 0, "info": 0}}

``findings`` are grouped (:mod:`.grouping`): one entry per code and cause, ``members`` every module
(or config entry) it names, ``pattern`` the same set written compactly, ``count`` how many raw
findings were merged; ``summary`` counts these groups per severity.

``location`` says where the checkpoint was read from (a local folder, a Hugging Face cache snapshot,
the hub's headers); ``shapes`` where parameter counts and bytes came from (the shard headers, the
model ``config.json`` describes built on the meta device, or nowhere, with the reason); each module's
``evidence.shapes`` the same per module.

Compatibility promise: within a schema version keys are only ever added and keep their meaning;
version 2 (grouped findings: ``subject`` gave way to ``members`` / ``pattern``; ``location``,
``shapes``, evidence level ``config-only`` and a null ``producer`` for a dense model) is the one
break so far.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quantresolve.audit.grouping import SEVERITY_ORDER, FindingGroup

SCHEMA_VERSION = 2
__all__ = ["SCHEMA_VERSION", "SEVERITY_ORDER", "AuditReport", "ModuleReport"]


@dataclass(frozen=True, slots=True)
class ModuleReport:
    """One unit of the model: what the resolver says, what the tensors say."""

    name: str
    kind: str
    grouping: str
    algo: str | None
    rule: str | None
    source: dict[str, Any] | None
    evidence: dict[str, Any]
    parts: int
    checkpoint_names: tuple[str, ...]
    missing_shards: tuple[str, ...] = ()
    scheme: str | None = None
    params: int = 0
    bytes: int = 0
    error: str | None = None

    @property
    def label(self) -> str:
        """The coverage label: the algo, ``unquantized``, or ``unresolved`` when the resolver refused."""
        if self.error is not None:
            return "unresolved"
        return self.algo or "unquantized"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "algo": self.algo, "rule": self.rule,
                "source": self.source, "evidence": self.evidence, "grouping": self.grouping,
                "parts": self.parts, "checkpoint_names": list(self.checkpoint_names),
                "missing_shards": list(self.missing_shards), "scheme": self.scheme,
                "params": self.params, "bytes": self.bytes, "error": self.error}


@dataclass(slots=True)
class AuditReport:
    """Everything the audit found; :meth:`to_json` is the documented contract."""

    checkpoint: str
    producer: str | None
    producer_version: str | None
    quant_algo: str | None
    kv_cache: str | None
    profile: str
    evidence_level: str
    shards: int
    tensors: int
    config_sources: tuple[str, ...]
    modules: list[ModuleReport]
    coverage: dict[str, Any]
    layer_map: list[dict[str, Any]]
    findings: list[FindingGroup] = field(default_factory=list)
    #: Where the checkpoint was read from (:meth:`quantresolve.checkpoint.Location.to_json`).
    location: dict[str, Any] = field(default_factory=dict)
    #: Where parameter counts and bytes came from: ``{"source": "headers" | "config" | None, "detail"}``.
    shapes: dict[str, Any] = field(default_factory=lambda: {"source": "headers", "detail": None})

    def counts(self) -> dict[str, int]:
        """Grouped findings per severity."""
        out = {"error": 0, "warning": 0, "info": 0}
        for f in self.findings:
            out[f.severity] += 1
        return out

    def exit_code(self, strict: bool = False) -> int:
        """0 clean, 1 error findings (``strict``: warnings too)."""
        counts = self.counts()
        return 1 if counts["error"] or (strict and counts["warning"]) else 0

    def to_json(self) -> dict[str, Any]:
        from quantresolve.util.version import __version__

        return {
            "schema_version": SCHEMA_VERSION,
            "tool": f"quantresolve {__version__}",
            "checkpoint": self.checkpoint,
            "location": self.location,
            "producer": self.producer,
            "producer_version": self.producer_version,
            "quant_algo": self.quant_algo,
            "kv_cache": self.kv_cache,
            "profile": self.profile,
            "evidence_level": self.evidence_level,
            "shapes": self.shapes,
            "shards": self.shards,
            "tensors": self.tensors,
            "config_sources": list(self.config_sources),
            "modules": [m.to_json() for m in self.modules],
            "coverage": self.coverage,
            "layer_map": self.layer_map,
            "findings": [f.to_json() for f in self.findings],
            "summary": self.counts(),
        }
