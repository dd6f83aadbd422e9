"""``quantresolve schema --output-dir DIR``: write the JSON Schemas."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schema", help="write the JSON Schemas of the input layouts and outputs")
    p.add_argument("--output-dir", type=Path, default=Path("schemas"), help="directory to write (default: schemas)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from quantresolve.cli.schema_catalog import write_schemas

    for path in write_schemas(args.output_dir):
        print(path)
    return 0
