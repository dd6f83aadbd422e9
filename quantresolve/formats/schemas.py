"""JSON Schemas of the input layouts and of quantresolve's own outputs.

``quantresolve schema --output-dir schemas`` writes them; a test fails when the
committed files are stale. Each entry of :data:`SCHEMAS` names a file and a
function returning the schema dict, so adding an output (the audit report) is
one line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def _pydantic(model: type[BaseModel], title: str) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        schema = model.model_json_schema(by_alias=True)
        schema["title"] = title
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        return schema
    return build


def _hf_quant() -> dict[str, Any]:
    from quantresolve.formats.modelopt import HfQuantConfigFile
    return _pydantic(HfQuantConfigFile, "ModelOpt hf_quant_config.json")()


def _flat() -> dict[str, Any]:
    from quantresolve.formats.modelopt import ModelOptFlatConfig
    return _pydantic(ModelOptFlatConfig, "ModelOpt config.json quantization_config")()


def _bnb() -> dict[str, Any]:
    from quantresolve.formats.bitsandbytes import BnbConfig
    return _pydantic(BnbConfig, "bitsandbytes quantization_config")()


def _ct() -> dict[str, Any]:
    # compressed-tensors' own model: its schema is the library's (imports torch).
    from compressed_tensors.quantization import QuantizationConfig
    return _pydantic(QuantizationConfig, "compressed-tensors quantization_config")()


def _normalized() -> dict[str, Any]:
    from quantresolve.formats.normalized import NormalizedConfig
    return _pydantic(NormalizedConfig, "quantresolve normalized config")()


def _audit() -> dict[str, Any]:
    from quantresolve.audit.schema import audit_report_schema
    return audit_report_schema()


#: file name → schema builder.
SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "modelopt-hf-quant-config.schema.json": _hf_quant,
    "modelopt-flat-config.schema.json": _flat,
    "compressed-tensors-config.schema.json": _ct,
    "bitsandbytes-config.schema.json": _bnb,
    "normalized-config.schema.json": _normalized,
    "audit-report.schema.json": _audit,
}


def render(builder: Callable[[], dict[str, Any]]) -> str:
    """Stable text of a schema: sorted keys, two-space indent, trailing newline."""
    return json.dumps(builder(), indent=2, sort_keys=True) + "\n"


def write_schemas(output_dir: Path) -> list[Path]:
    """Write every schema into ``output_dir``; return the paths written."""
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted(SCHEMAS):
        path = output_dir / name
        path.write_text(render(SCHEMAS[name]), encoding="utf-8")
        written.append(path)
    return written
