"""`quantresolve resolve` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("resolve", help="(not yet available)")
    p.set_defaults(handler=lambda args: 2)
