"""``quantresolve resolve PATH PREFIX... [--kind K] [--profile NAME|FILE] [--json] [--explain]``.

One line per prefix (algo, rule, deciding entry), a JSON list with ``--json``,
or the full trail with ``--explain``. A prefix whose resolution fails
(conflicting shards or experts, empty prefix) gets an ``error`` object and the
exit code is 1; bad input (unreadable config, unknown profile) exits 2.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from quantresolve.errors import ResolutionError
from quantresolve.resolve.resolution import KINDS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("resolve", help="resolve layer prefixes (model namespace) against a checkpoint's config")
    p.add_argument("path", metavar="CHECKPOINT",
                   help="checkpoint directory, JSON config file, or repository id ORG/NAME[@REV] / "
                        "hf://ORG/NAME[@REV] (local Hugging Face cache first, else the hub's config files and index)")
    p.add_argument("prefixes", nargs="+", metavar="PREFIX", help="layer prefixes in the model's namespace")
    p.add_argument("--kind", choices=KINDS, default="linear", help="module kind (default: linear)")
    p.add_argument("--profile", help="built-in profile name or profile file (default: from config.json architectures)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--explain", action="store_true", help="print every step tried")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from quantresolve.checkpoint.locate import locate
    from quantresolve.formats.loader import metadata_files
    from quantresolve.naming.profiles import load_profile
    from quantresolve.resolve.resolver import Resolver

    profile = load_profile(args.profile) if args.profile else None
    with locate(args.path, files=metadata_files()) as where:
        resolver = Resolver.from_checkpoint(where.path, profile)
    results: list[dict[str, Any]] = []
    failed = False
    for prefix in args.prefixes:
        try:
            res = resolver.resolve(prefix, args.kind)
        except ResolutionError as err:
            failed = True
            results.append({"prefix": prefix, "kind": args.kind,
                            "error": {"type": type(err).__name__, "message": str(err)}})
            if not args.json:
                print(f"{prefix}\terror\t{type(err).__name__}: {err}")
            continue
        results.append(res.to_json())
        if args.json:
            continue
        if args.explain:
            print(res.explain())
        else:
            src = "-" if res.source is None else res.source.original
            print(f"{prefix}\t{res.algo or 'unquantized'}\t{res.rule}\t{src}")
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if failed else 0
