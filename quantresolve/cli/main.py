"""The ``quantresolve`` command line: one sub-command per module in this package.

Each sub-command module exposes ``register(subparsers)`` that adds its parser
and sets ``handler=`` to a function ``(args) -> int`` returning the exit code.
Any :class:`~quantresolve.errors.QuantResolveError` becomes one line on stderr
and exit code 2 — never a traceback; so does a command run without the extra it needs
(:mod:`.extras`: "install the 'run' extra").
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from quantresolve.cli.extras import missing_extra_message, missing_for
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


def _fail(command: str, message: str) -> int:
    print(f"quantresolve {command}: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    missing = missing_for(args.command)
    if missing is not None:
        return _fail(args.command, missing)
    try:
        return int(args.handler(args))
    except QuantResolveError as err:
        return _fail(args.command, str(err))
    except ModuleNotFoundError as err:  # an optional library the command reached for
        return _fail(args.command, missing_extra_message((err.name or "?").split(".")[0]))
    except (OSError, ValueError) as err:  # last resort: still one line, still exit 2
        return _fail(args.command, f"{type(err).__name__}: {err}")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
