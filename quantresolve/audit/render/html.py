"""The report as one self-contained HTML file: no scripts, no external resources.

A per-layer map (one coloured cell per layer × module type, colour by algo,
hover shows the module and its rule), a legend, the coverage table, the units
outside the layer stacks, and the findings. Every text is escaped.
"""

from __future__ import annotations

from html import escape

from quantresolve.audit.render import common
from quantresolve.audit.report import AuditReport

MAX_FINDINGS = 2000

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#212121;background:#fafafa}
h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:24px 0 8px}
.meta{color:#555;font-size:13px}.meta b{color:#212121}
table{border-collapse:collapse;font-size:13px;background:#fff}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}th{background:#f0f0f0}
td.num{text-align:right}
.map td.cell{width:18px;min-width:18px;height:14px;padding:0;border:1px solid #fff}
.map th.col{writing-mode:vertical-rl;transform:rotate(180deg);font-weight:normal;font-size:11px;padding:4px 2px}
.map td.idx{font-size:11px;color:#555;text-align:right;padding:0 6px}
.legend span{display:inline-block;margin:0 12px 4px 0;font-size:13px}
.legend i{display:inline-block;width:14px;height:14px;vertical-align:middle;margin-right:4px;border-radius:2px}
.sev{font-weight:bold}.ok{color:#2e7d32;font-weight:bold}
"""


def _swatch(label: str) -> str:
    return f'<i style="background:{common.algo_colour(label)}"></i>'


def _legend(labels: list[str]) -> str:
    return '<div class="legend">' + "".join(
        f"<span>{_swatch(lab)}{escape(lab)}</span>" for lab in labels) + "</div>"


def _layer_map(report: AuditReport) -> str:
    parts = []
    for stack, columns, rows in common.layer_tables(report, fold=False):
        head = "".join(f'<th class="col">{escape(c)}</th>' for c in columns)
        body = []
        for index, row_cells in rows:
            cells = []
            for c in columns:
                label = row_cells.get(c)
                if label is None:
                    cells.append('<td class="cell" style="background:#eee"></td>')
                else:
                    tip = f"{stack}.{index}.{c}: {label}"
                    cells.append(f'<td class="cell" style="background:{common.algo_colour(label)}" '
                                 f'title="{escape(tip)}"></td>')
            body.append(f'<tr><td class="idx">{index}</td>{"".join(cells)}</tr>')
        parts.append(f"<h2>Per-layer map: <code>{escape(stack)}.N</code></h2>"
                     f'<table class="map"><thead><tr><th>layer</th>{head}</tr></thead>'
                     f"<tbody>{''.join(body)}</tbody></table>")
    return "".join(parts)


def render_html(report: AuditReport) -> str:
    cov = report.coverage
    in_map = {label for stack in report.layer_map for row in stack["rows"] for label in row["cells"].values()}
    labels = sorted(set(cov["by_algo"]) | in_map)
    cov_rows = "".join(
        f"<tr><td>{_swatch(label)}{escape(label)}</td><td class=num>{modules}</td><td class=num>{params}</td>"
        f"<td class=num>{nbytes}</td><td>{escape(kinds)}</td></tr>"
        for label, modules, params, nbytes, kinds in common.coverage_rows(report))
    outside = common.outside_layers(report)
    outside_rows = "".join(
        f"<tr><td><code>{escape(m.name)}</code></td><td>{escape(m.kind)}</td>"
        f"<td>{_swatch(m.label)}{escape(m.label)}</td><td>{escape(m.rule or '')}</td>"
        f"<td>{escape(m.evidence['format'])}</td></tr>" for m in outside)
    counts = report.counts()
    finding_rows = "".join(
        f'<tr><td class="sev" style="color:{common.SEVERITY_COLOURS[f.severity]}">{f.severity}</td>'
        f"<td><code>{escape(f.code)}</code></td><td>{escape(f.message)}</td>"
        f"<td>{escape(common.finding_where(f))}</td></tr>"
        for f in report.findings[:MAX_FINDINGS])
    findings_html = (f"<table><thead><tr><th>severity</th><th>code</th><th>message</th><th>where</th></tr>"
                     f"</thead><tbody>{finding_rows}</tbody></table>" if report.findings
                     else '<p class="ok">config, naming and tensors agree</p>')
    meta = (f"<b>producer</b> {escape(report.producer or 'none: nothing quantized')} {escape(report.producer_version or '')} · "
            f"<b>algo</b> {escape(report.quant_algo or '-')} · <b>KV cache</b> {escape(report.kv_cache or '-')} · "
            f"<b>profile</b> {escape(report.profile)} · <b>evidence</b> {escape(report.evidence_level)} · "
            f"<b>shards</b> {report.shards} · <b>tensors</b> {report.tensors} · "
            f"<b>config</b> {escape(', '.join(report.config_sources))}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>quantresolve audit: {escape(report.checkpoint)}</title>
<style>{_CSS}</style></head>
<body>
<h1>quantresolve audit: <code>{escape(report.checkpoint)}</code></h1>
<p class="meta">{meta}</p>
<h2>Coverage</h2>
<table><thead><tr><th>algo</th><th>modules</th><th>params</th><th>bytes</th><th>kinds</th></tr></thead>
<tbody>{cov_rows}</tbody></table>
<p>Quantized linear parameters: <b>{common.percent(cov['quantized_linear_param_fraction'])}</b> ·
quantized linear modules: <b>{common.percent(cov['quantized_linear_module_fraction'])}</b></p>
{_legend(labels)}
{_layer_map(report)}
{f"<h2>Outside the layer stacks</h2><table><thead><tr><th>module</th><th>kind</th><th>algo</th><th>rule</th><th>tensors</th></tr></thead><tbody>{outside_rows}</tbody></table>" if outside else ""}
<h2>Findings</h2>
<p>{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info</p>
{findings_html}
</body></html>
"""
