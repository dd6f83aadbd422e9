"""Every JSON Schema quantresolve commits under ``schemas/``: the input layouts and the outputs.

Put together here, above the layers that own them — the input layouts and the normalized config
(:func:`quantresolve.formats.schemas.input_schemas`) and the audit report
(:func:`quantresolve.audit.schema.audit_report_schema`) — so that neither imports the other.
``quantresolve schema --output-dir schemas`` writes them; a test fails when the committed files
are stale.

    >>> "audit-report.schema.json" in SCHEMAS and "normalized-config.schema.json" in SCHEMAS
    True
"""

from __future__ import annotations

import json
from pathlib import Path

from quantresolve.audit.schema import audit_report_schema
from quantresolve.formats.schemas import SchemaBuilder, input_schemas

#: file name → schema builder.
SCHEMAS: dict[str, SchemaBuilder] = {**input_schemas(), "audit-report.schema.json": audit_report_schema}


def render(builder: SchemaBuilder) -> str:
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


__all__ = ["SCHEMAS", "render", "write_schemas"]
