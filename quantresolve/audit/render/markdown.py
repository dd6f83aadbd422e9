"""The report as GitHub-flavoured Markdown (for PR comments and CI summaries).

Table cells are escaped (``|`` and backticks); layer rows are folded into ranges; findings are
grouped (one row per code and cause, the modules as one pattern, ``--format json`` lists them all).
"""

from __future__ import annotations

from quantresolve.audit.render.common import (
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

MAX_FINDINGS = 200


def _esc(text: object) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(_esc(h) for h in header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_esc(c) for c in row) + " |" for row in rows]
    return out


def render_markdown(report: AuditReport) -> str:
    cov = report.coverage
    lines = [f"# quantresolve audit: {_esc(report.checkpoint)}", ""]
    where = location_text(report)
    lines += [f"- **producer**: {_esc(producer_text(report))}",
              f"- **algo**: {_esc(report.quant_algo or '-')}; **KV cache**: {_esc(report.kv_cache or '-')}",
              f"- **profile**: {_esc(report.profile)}; **evidence**: {_esc(evidence_text(report))}; "
              f"**shards**: {report.shards}; **tensors**: {report.tensors}",
              f"- **config files**: {_esc(', '.join(report.config_sources))}",
              *([f"- **read from**: {_esc(where)}"] if where is not None else []), ""]
    lines += ["## Coverage", ""]
    lines += _table(["algo", "modules", "params", "bytes", "kinds"], [list(row) for row in coverage_rows(report)])
    lines += ["", f"Quantized linear parameters: **{percent(cov['quantized_linear_param_fraction'])}**; "
                  f"quantized linear modules: **{percent(cov['quantized_linear_module_fraction'])}**.", ""]
    for stack, columns, rows in layer_tables(report):
        lines += [f"## Per-layer map: `{stack}.N`", ""]
        lines += _table(["layers", *columns], [[span, *(cells.get(c, "·") for c in columns)] for span, cells in rows])
        lines.append("")
    outside = outside_layers(report)
    if outside:
        lines += ["## Outside the layer stacks", ""]
        lines += _table(["module", "kind", "algo", "rule", "tensors"],
                        [[m.name, m.kind, m.label, m.rule or "", tensor_format(m)] for m in outside])
        lines.append("")
    counts = report.counts()
    lines += ["## Findings", "",
              f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info.", ""]
    if report.findings:
        shown = report.findings[:MAX_FINDINGS]
        lines += _table(["severity", "code", "count", "names", "cause", "where"],
                        [[f.severity, f.code, str(f.count), f.pattern or "", f.cause, finding_where(f)]
                         for f in shown])
        if len(report.findings) > MAX_FINDINGS:
            lines += ["", f"… {len(report.findings) - MAX_FINDINGS} more: see `--format json`."]
    return "\n".join(lines) + "\n"
