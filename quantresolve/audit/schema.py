"""JSON Schema of the audit report (``schemas/audit-report.schema.json``).

Written by hand so it documents the contract, not an implementation detail;
``tests/audit`` validates real reports against it, and
``tests/formats/test_cli_and_schemas.py`` checks the committed file is fresh.

    >>> audit_report_schema()["properties"]["schema_version"]["const"]
    2
"""

from __future__ import annotations

from typing import Any, get_args

from quantresolve.audit.codes import CODES, SEVERITIES
from quantresolve.audit.report import SCHEMA_VERSION
from quantresolve.formats.algos import Producer
from quantresolve.resolve.resolution import KINDS, RULES

_STR_OR_NULL = {"type": ["string", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"], "minimum": 0}


def _obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or list(properties), **extra}


def audit_report_schema() -> dict[str, Any]:
    names = {"type": "array", "items": {"type": "string"}}
    finding = _obj({
        "code": {"type": "string", "description": "stable code; registered codes: " + ", ".join(sorted(CODES))
                 + "; other config-loader and resolver codes pass through"},
        "severity": {"enum": list(SEVERITIES), "description": "error: the checkpoint will load wrong or not "
                     "at all; warning: likely a mistake a person should look at; info: by design"},
        "message": {"type": "string", "description": "one line: '<pattern>: <cause>' (the cause alone when "
                    "the findings name nothing)"},
        "cause": {"type": "string", "description": "what is wrong, without the modules it is wrong for"},
        "count": {"type": "integer", "minimum": 1, "description": "how many findings this group merges"},
        "pattern": {**_STR_OR_NULL, "description": "the members as one compact pattern "
                    "(model.layers.{0..2,4}.mlp.experts.{0..255}.down_proj); expands to exactly the members"},
        "members": {**names, "description": "every module (model namespace), config entry or file the "
                    "findings name, in natural order"},
        "units": {**names, "description": "the report's modules the members belong to (an expert "
                  "projection's MoE container, a shard's fused layer)"},
        "file": _STR_OR_NULL,
        "field": {**_STR_OR_NULL, "description": "the field all members share, or the list they all index"},
    }, ["code", "severity", "message", "cause", "count", "pattern", "members", "units"])
    source = {"oneOf": [{"type": "null"}, _obj({
        "original": {"type": "string", "description": "the entry as the config spells it (checkpoint namespace)"},
        "mapped": _STR_OR_NULL, "file": {"type": "string"}, "field": {"type": "string"}},
        ["original", "mapped", "file", "field"])]}
    evidence = _obj({
        "format": {"type": "string", "description": "evidence kind of the tensors (dense, fp8, nvfp4, mxfp4, "
                   "mxfp8, int4-packed, int8, int4-awq, bnb-4bit, bnb-int8, no-weight, unknown) or 'mixed'"},
        "by_format": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
        "confidence": {"enum": ["headers", "names-only", "config-only"],
                       "description": "what the evidence rests on: shard headers, index names, or config.json alone "
                                      "(the dense model's names and shapes; no format claim)"},
        "weight_dtype": _STR_OR_NULL,
        "logical_shape": {"oneOf": [{"type": "null"}, {"type": "array", "items": {"type": "integer"},
                                                       "minItems": 2, "maxItems": 2}]},
        "group_size": _INT_OR_NULL,
        "scale_params": {"type": "array", "items": {"type": "string"}},
        "input_scale": {"type": "boolean"},
        "kv_scales": {"type": "boolean"},
        "shapes": {"enum": ["headers", "config", None],
                   "description": "where params and bytes come from: the headers, config.json shapes (bytes "
                                  "estimated from the scheme), or unknown (null)"},
    }, ["format", "by_format", "confidence"])
    module = _obj({
        "name": {"type": "string", "description": "model namespace (after the profile's mapper and grouping)"},
        "kind": {"enum": [*KINDS, "other"]},
        "algo": {**_STR_OR_NULL, "description": "canonical label, null when unquantized or unresolved"},
        "rule": {**_STR_OR_NULL, "description": "the resolver rule that decided (" + ", ".join(RULES)
                 + "), 'unresolved' when the resolver refused, null for 'other' (not resolved)"},
        "source": source,
        "evidence": evidence,
        "grouping": {"enum": ["single", "fused", "experts"]},
        "parts": {"type": "integer", "minimum": 1},
        "checkpoint_names": {"type": "array", "items": {"type": "string"},
                             "description": "checkpoint-space modules (empty for expert containers)"},
        "missing_shards": {"type": "array", "items": {"type": "string"}},
        "scheme": _STR_OR_NULL,
        "params": {"type": "integer", "minimum": 0},
        "bytes": {"type": "integer", "minimum": 0},
        "error": _STR_OR_NULL,
    }, ["name", "kind", "algo", "rule", "source", "evidence"])
    algo_entry = _obj({"modules": {"type": "integer", "minimum": 0}, "params": _INT_OR_NULL,
                       "bytes": {"type": "integer", "minimum": 0},
                       "by_kind": {"type": "object", "additionalProperties": {"type": "integer"}}},
                      ["modules", "params", "bytes"])
    fraction = {"oneOf": [{"type": "null"}, {"type": "number", "minimum": 0, "maximum": 1}]}
    coverage = _obj({
        "by_algo": {"type": "object", "additionalProperties": algo_entry,
                    "description": "key: canonical label, 'unquantized', or 'unresolved'"},
        "quantized_linear_param_fraction": fraction,
        "quantized_linear_module_fraction": fraction,
        "params_known": {"type": "boolean"},
        "total_params": _INT_OR_NULL,
        "total_bytes": _INT_OR_NULL,
        "kv_cache": _obj({"attention_modules": {"type": "integer"},
                          "by_algo": {"type": "object", "additionalProperties": {"type": "integer"}}}),
    }, ["by_algo", "quantized_linear_param_fraction"])
    location = _obj({
        "kind": {"enum": ["local", "hf-cache", "hub"],
                 "description": "a local path; a snapshot of the local Hugging Face cache; a hub repository read "
                                "remotely (metadata files and shard headers only)"},
        "path": {**_STR_OR_NULL, "description": "the local path read (null for the hub)"},
        "repo_id": _STR_OR_NULL,
        "revision": {**_STR_OR_NULL, "description": "the revision asked for (null: main)"},
        "commit": {**_STR_OR_NULL, "description": "the commit it resolved to"},
        "endpoint": {**_STR_OR_NULL, "description": "the hub endpoint (HF_ENDPOINT) for kind hub"},
    })
    stack = _obj({"stack": {"type": "string"}, "columns": {"type": "array", "items": {"type": "string"}},
                  "rows": {"type": "array", "items": _obj({
                      "index": {"type": "integer", "minimum": 0},
                      "cells": {"type": "object", "additionalProperties": {"type": "string"}}})}})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://quantresolve.invalid/schemas/audit-report.schema.json",
        "title": "quantresolve audit report",
        "description": "Output of `quantresolve audit PATH --format json`. Compatible changes only add keys; "
                       "schema_version changes when a key changes meaning (2: findings are grouped; "
                       "location, shapes, config-only evidence, null producer).",
        **_obj({
            "schema_version": {"const": SCHEMA_VERSION},
            "tool": {"type": "string"},
            "checkpoint": {"type": "string", "description": "the path, or org/name@revision"},
            "location": location,
            "producer": {"enum": [*get_args(Producer), None],
                         "description": "null: the checkpoint has no quantization config (nothing quantized)"},
            "producer_version": _STR_OR_NULL,
            "quant_algo": _STR_OR_NULL,
            "kv_cache": _STR_OR_NULL,
            "profile": {"type": "string"},
            "evidence_level": {"enum": ["headers", "names-only", "config-only"],
                               "description": "shard headers read; only the index's names; only config.json"},
            "shapes": _obj({"source": {"enum": ["headers", "config", None]},
                            "detail": {**_STR_OR_NULL, "description": "what built the shapes, or why there are none"}}),
            "shards": {"type": "integer", "minimum": 0},
            "tensors": {"type": "integer", "minimum": 0},
            "config_sources": {"type": "array", "items": {"type": "string"}},
            "modules": {"type": "array", "items": module},
            "coverage": coverage,
            "layer_map": {"type": "array", "items": stack},
            "findings": {"type": "array", "items": finding},
            "summary": _obj({"error": {"type": "integer"}, "warning": {"type": "integer"},
                             "info": {"type": "integer"}}, description="grouped findings per severity"),
        }, ["schema_version", "producer", "modules", "coverage", "findings"]),
    }
