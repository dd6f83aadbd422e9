"""The default terminal report (rich): header, coverage, per-layer map, outside-layer units, findings.

Findings are grouped (one line per code and cause, ``×N`` modules written as one pattern such as
``model.layers.{3..60}.mlp.gate``); long lists are cut at :data:`MAX_FINDINGS` groups per severity
with a pointer to ``--format json``; identical layer rows are folded into ranges (``3–60``).
"""

from __future__ import annotations

import io

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from quantresolve.audit.render.common import (
    SEVERITY_COLOURS,
    algo_colour,
    coverage_rows,
    evidence_text,
    finding_where,
    layer_tables,
    location_text,
    outside_layers,
    percent,
    producer_text,
    tensor_format,
)
from quantresolve.audit.report import AuditReport

MAX_FINDINGS = 25


def _cell(label: str | None) -> Text:
    if label is None:
        return Text("·", style="dim")
    return Text(label, style=f"bold {algo_colour(label)}")


def _header(report: AuditReport) -> Panel:
    lines = Text()
    lines.append("producer ", style="bold").append(f"{producer_text(report)}  ")
    lines.append("algo ", style="bold").append(f"{report.quant_algo or '-'}  ")
    lines.append("KV cache ", style="bold").append(f"{report.kv_cache or '-'}\n")
    lines.append("profile ", style="bold").append(f"{report.profile}  ")
    lines.append("evidence ", style="bold").append(
        evidence_text(report), style="yellow" if report.evidence_level != "headers" else "")
    lines.append("  ")
    lines.append("shards ", style="bold").append(f"{report.shards}  ")
    lines.append("tensors ", style="bold").append(f"{report.tensors}  ")
    lines.append("config ", style="bold").append(", ".join(report.config_sources))
    where = location_text(report)
    if where is not None:
        lines.append("\nread from ", style="bold").append(where)
    return Panel(lines, title=Text(f"quantresolve audit · {report.checkpoint}"), title_align="left")


def _coverage(report: AuditReport) -> Table:
    cov = report.coverage
    table = Table(title="coverage", title_justify="left", expand=False)
    for col, justify in (("algo", "left"), ("modules", "right"), ("params", "right"), ("bytes", "right"),
                         ("kinds", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for label, *cells in coverage_rows(report):
        table.add_row(_cell(label), *cells)
    table.caption = (f"quantized linear params: {percent(cov['quantized_linear_param_fraction'])}"
                     f" · quantized linear modules: {percent(cov['quantized_linear_module_fraction'])}")
    if cov["kv_cache"]["attention_modules"]:
        table.caption += " · KV cache: " + ", ".join(
            f"{a} ×{n}" for a, n in cov["kv_cache"]["by_algo"].items())
    table.caption_justify = "left"
    return table


def _layer_maps(report: AuditReport) -> list[Table]:
    """One table per stack: layer ranges × module types, transposed when that is narrower
    (a DeepSeek-V3 map folds to 3 layer ranges but has 14 module types)."""
    tables = []
    for stack, columns, folded in layer_tables(report):
        title = Text(f"per-layer map · {stack}.N", style="italic")
        if len(folded) < len(columns):
            table = Table(title=title, title_justify="left")
            table.add_column("module \\ layers", style="bold")
            for span, _ in folded:
                table.add_column(span)
            for col in columns:
                table.add_row(Text(col), *(_cell(cells.get(col)) for _, cells in folded))
        else:
            table = Table(title=title, title_justify="left")
            table.add_column("layers", justify="right", style="bold")
            for col in columns:
                table.add_column(Text(col))
            for span, cells in folded:
                table.add_row(span, *(_cell(cells.get(c)) for c in columns))
        tables.append(table)
    return tables


def _outside(report: AuditReport) -> Table | None:
    units = outside_layers(report)
    if not units:
        return None
    table = Table(title="outside the layer stacks", title_justify="left")
    for col in ("module", "kind", "algo", "rule", "tensors"):
        table.add_column(col)
    for m in units:
        table.add_row(Text(m.name), m.kind, _cell(m.label), Text(m.rule or ""), tensor_format(m))
    return table


def _findings(report: AuditReport) -> Group:
    items: list[Text] = []
    counts = report.counts()
    shown: dict[str, int] = {}
    for f in report.findings:
        shown[f.severity] = shown.get(f.severity, 0) + 1
        if shown[f.severity] > MAX_FINDINGS:
            continue
        line = Text()
        line.append(f"{f.severity:<7}", style=f"bold {SEVERITY_COLOURS[f.severity]}")
        line.append(f" {f.code}", style="bold")
        if f.count > 1:
            line.append(f" ×{f.count}", style="bold")
        line.append(f"  {f.message}")  # Text: no markup parsing
        if f.file:
            line.append(f"  ({finding_where(f)})", style="dim")
        items.append(line)
    for severity, n in shown.items():
        if n > MAX_FINDINGS:
            items.append(Text(f"… {n - MAX_FINDINGS} more {severity} finding(s): see --format json",
                              style="dim"))
    verdict = Text()
    verdict.append("findings: ", style="bold")
    verdict.append(f"{counts['error']} error(s)", style=f"bold {SEVERITY_COLOURS['error']}" if counts["error"] else "")
    verdict.append(", ")
    verdict.append(f"{counts['warning']} warning(s)",
                   style=f"bold {SEVERITY_COLOURS['warning']}" if counts["warning"] else "")
    verdict.append(f", {counts['info']} info")
    if not report.findings:
        verdict.append(" — config, naming and tensors agree", style="green")
    return Group(*items, verdict)


def render_text(report: AuditReport, *, color: bool = False, width: int | None = None) -> str:
    """The report as terminal text (ANSI colours when ``color``)."""
    buffer = io.StringIO()
    if width is None and color:  # a real terminal: use its width
        import shutil

        width = max(shutil.get_terminal_size((120, 40)).columns, 80)
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width or 120,
                      highlight=False, soft_wrap=False)
    console.print(_header(report))
    console.print(_coverage(report))
    for table in _layer_maps(report):
        console.print(table)
    outside = _outside(report)
    if outside is not None:
        console.print(outside)
    console.print(_findings(report))
    return buffer.getvalue()
