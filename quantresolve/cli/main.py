"""The ``quantresolve`` command line: one sub-command per module in this package.

Each sub-command module exposes ``register(subparsers)`` that adds its parser
and sets ``handler=`` to a function ``(args) -> int`` returning the exit code.
Any :class:`~quantresolve.errors.QuantResolveError` becomes one line on stderr
and exit code 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from quantresolve.errors import QuantResolveError

#: Sub-command modules under ``quantresolve.cli``, in help order.
COMMANDS: tuple[str, ...] = ("inspect", "resolve", "audit", "kernels", "run", "schema")

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line (its default) and never prints a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="quantresolve", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"quantresolve.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except QuantResolveError as err:
        print(f"quantresolve {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (OSError, ValueError) as err:  # last resort: still one line, still exit 2
        print(f"quantresolve {args.command}: error: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
