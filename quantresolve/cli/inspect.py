"""``quantresolve inspect PATH [--json]``: what a checkpoint says about its own quantization."""

from __future__ import annotations

import argparse
import json
from collections import Counter

from quantresolve.formats.normalized import NormalizedConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="show the normalized quantization config of a checkpoint or JSON file")
    p.add_argument("path", metavar="CHECKPOINT",
                   help="checkpoint directory, JSON file, or repository id ORG/NAME[@REV] / hf://ORG/NAME[@REV] "
                        "(local Hugging Face cache first, else the hub's config files)")
    p.add_argument("--json", action="store_true", help="print the normalized view as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from quantresolve.checkpoint.locate import locate
    from quantresolve.formats.loader import load_config, metadata_files

    with locate(args.path, files=metadata_files(), index=False) as where:
        cfg = load_config(where.path)
    if args.json:
        print(json.dumps(cfg.model_dump(mode="json"), indent=2))
    else:
        render(cfg)
    return 0


def render(cfg: NormalizedConfig) -> None:
    """A readable summary with rich."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]producer[/] {cfg.producer} {cfg.producer_version or ''}  [bold]format[/] {cfg.format}  "
                  f"[bold]algo[/] {cfg.quant_algo or '-'}  [bold]files[/] {', '.join(cfg.sources)}")
    if cfg.default_scheme is not None:
        console.print(f"[bold]default scheme[/] {cfg.default_scheme.summary()}")
    if cfg.kv_cache is not None:
        console.print(f"[bold]KV cache[/] {cfg.kv_cache.algo}")
    if cfg.groups:
        table = Table(title="config groups")
        for col in ("group", "scheme", "format", "targets"):
            table.add_column(col)
        for g in cfg.groups:
            targets = ", ".join(t.original for t in g.targets[:4]) + (" ..." if len(g.targets) > 4 else "")
            table.add_row(g.name, g.scheme.summary(), g.scheme.format, f"{targets} ({len(g.targets)})")
        console.print(table)
    if cfg.layers:
        counts = Counter(e.scheme.algo for e in cfg.layers)
        console.print(f"[bold]per-layer entries[/] {len(cfg.layers)}: "
                      + ", ".join(f"{algo} x{n}" for algo, n in sorted(counts.items())))
    kinds = Counter(e.kind for e in cfg.exclude)
    console.print(f"[bold]excluded entries[/] {len(cfg.exclude)}"
                  + (f" ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})" if kinds else ""))
    for e in cfg.exclude[:8]:
        console.print(f"  {e.original}  [dim]{e.kind}, {e.field}[/]", highlight=False)
    if len(cfg.exclude) > 8:
        console.print(f"  [dim]... {len(cfg.exclude) - 8} more[/]")
    for f in cfg.findings:
        colour = {"error": "red", "warning": "yellow", "info": "cyan"}[f.severity]
        console.print(f"[{colour}]{f.severity}[/] [{f.code}] {f.message}", highlight=False)
