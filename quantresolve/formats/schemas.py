"""JSON Schemas of the input layouts: every registered producer's files and the normalized config.

Each producer lists its file layouts in its :class:`~quantresolve.formats.registry.ProducerFormat`
(``schemas``); :func:`input_schemas` gathers them with the normalized config's own schema. The
complete set quantresolve commits under ``schemas/`` (these plus the audit report's) is put
together above both layers, in :mod:`quantresolve.cli.schema_catalog`.

    >>> sorted(input_schemas())[:2]
    ['bitsandbytes-config.schema.json', 'compressed-tensors-config.schema.json']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

import quantresolve.formats.producers  # noqa: F401  (registers the built-in producers)
from quantresolve.formats.normalized import NormalizedConfig
from quantresolve.formats.registry import registered_formats

SchemaBuilder = Callable[[], dict[str, Any]]


def pydantic_schema(model: Callable[[], type[BaseModel]], title: str) -> SchemaBuilder:
    """A builder of the JSON Schema of ``model()`` (resolved only when called), titled ``title``."""
    def build() -> dict[str, Any]:
        schema = model().model_json_schema(by_alias=True)
        schema["title"] = title
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        return schema
    return build


def input_schemas() -> dict[str, SchemaBuilder]:
    """File name → schema builder, for the normalized config and every registered producer's layouts."""
    out = {"normalized-config.schema.json": pydantic_schema(lambda: NormalizedConfig,
                                                            "quantresolve normalized config")}
    for fmt in registered_formats():
        for layout in fmt.schemas:
            out[layout.file] = pydantic_schema(layout.model, layout.title)
    return out


__all__ = ["SchemaBuilder", "input_schemas", "pydantic_schema"]
