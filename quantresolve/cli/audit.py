"""``quantresolve audit PATH|ORG/NAME[@REV]``: which modules are quantized with what, how much that
covers, and where the config, the model's naming and the tensors disagree — from headers only.

The argument is a local checkpoint, or a repository id found in the local Hugging Face cache or
else read from the hub without downloading weights (shard headers by HTTP range requests;
``HF_HUB_OFFLINE=1`` forbids that): :mod:`quantresolve.checkpoint.locate`.

Exit codes (for CI gates): 0 clean; 1 findings of error severity (``--strict``:
warnings too); 2 bad input or usage (one line on stderr).

    quantresolve audit fixtures/checkpoints/modelopt-mixed
    quantresolve audit nvidia/DeepSeek-V3.1-NVFP4            # cached snapshot, else the hub
    quantresolve audit CKPT --format json --output report.json
    quantresolve audit CKPT --format html --output report.html
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

FORMATS = ("text", "json", "markdown", "html")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="audit a quantized checkpoint: coverage, per-layer map, findings",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("path", metavar="CHECKPOINT",
                   help="checkpoint directory, a single .safetensors file next to its config, a Hugging Face "
                        "cache snapshot, or a repository id ORG/NAME[@REV] / hf://ORG/NAME[@REV] (local cache "
                        "first, else the hub, headers only; an existing local path of the same spelling wins)")
    p.add_argument("--profile", metavar="NAME|FILE",
                   help="naming profile (built-in name or JSON/YAML file); default: from config.json "
                        "architectures, else unfused transformers naming")
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="report format: text (default, rich terminal), json (schemas/audit-report.schema.json), "
                        "markdown, html (one self-contained file)")
    p.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout")
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    p.set_defaults(handler=run)


def _progress(enabled: bool) -> tuple[Callable[[int, int, str], None] | None, Callable[[], None]]:
    """A stderr progress bar for multi-shard reads; silent (no callback) when stderr is not a TTY."""
    if not enabled:
        return None, lambda: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("reading headers"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=Console(stderr=True), transient=True)
    state: dict[str, Any] = {}

    def on_shard(done: int, total: int, _name: str) -> None:
        if total < 2:
            return
        if "task" not in state:
            progress.start()
            state["task"] = progress.add_task("read", total=total)
        progress.update(state["task"], completed=done)

    def stop() -> None:
        if "task" in state:
            progress.stop()

    return on_shard, stop


def transformers_shapes(root: Path) -> Any:
    """The shape provider the CLI gives the audit where no shard header sizes the modules: the model
    ``config.json`` describes, built by transformers on the meta device (needs the ``run`` extra)."""
    from quantresolve.checkpoint.shapes import ShapesUnavailable
    from quantresolve.cli.extras import missing_extra_message

    try:
        import transformers

        from quantresolve.integrations.transformers.shapes import model_shapes
    except ImportError as err:
        raise ShapesUnavailable(f"shapes {missing_extra_message((err.name or '?').split('.')[0])}") from None
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # its deprecation chatter is not the report
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model_shapes(root)
    finally:
        transformers.logging.set_verbosity(verbosity)


def run(args: argparse.Namespace) -> int:
    from quantresolve.audit import audit_checkpoint
    from quantresolve.audit.render import RENDERERS
    from quantresolve.checkpoint.locate import locate
    from quantresolve.formats.loader import metadata_files

    on_shard, stop = _progress(sys.stderr.isatty())
    try:
        with locate(args.path, files=metadata_files()) as where:
            report = audit_checkpoint(where, args.profile, on_shard=on_shard, shapes=transformers_shapes)
    finally:
        stop()
    to_terminal = args.output is None and sys.stdout.isatty()
    text = RENDERERS[args.format](report, color=to_terminal)
    if args.output is not None:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return report.exit_code(strict=args.strict)
