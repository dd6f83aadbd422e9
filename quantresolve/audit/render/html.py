"""The report as one self-contained HTML page a person can work with.

Everything is inline (CSS, script, data; a Content-Security-Policy forbids any other source, so
the page makes no request). What is written as markup: the header, the findings (grouped, one row
per code and cause: severity with its symbol, how many modules, their compact pattern — expandable
to the full list — and why the severity), the coverage table, the legend and the per-layer map
(one cell per layer × module type with the scheme's colour *and* a short label; layers in numeric
order; a cell opens its module in the table). What the script renders from the embedded data
(:mod:`.html_data`): the module table, every module once, virtualised so only the rows in view
exist — which is what keeps a 180k-tensor checkpoint's page small and quick
(``benchmarks/html_report.py``) — with search, filters by kind / scheme / rule / finding, sortable
columns, sticky headers, and the view state in the URL hash (``#finding=g0``, ``#q=mlp.gate&sort=-params``).

Every text is escaped; no cell is colour only; tables have ``scope`` on their headers and
``aria-sort`` on the sortable ones; every control is a native, keyboard-usable element.
"""

from __future__ import annotations

import re
from html import escape
from importlib.resources import files

from quantresolve.audit.codes import CODES
from quantresolve.audit.render import common
from quantresolve.audit.render.common import evidence_text, location_text, producer_text
from quantresolve.audit.render.html_data import ordered_modules, page_data, script_json
from quantresolve.audit.report import AuditReport

MAX_FINDINGS = 2000  # finding rows written as markup; all of them are in the data either way
MAX_MAP_COLUMNS = 48  # more module types than this: numbered components fold (experts.*.down_proj)
SYMBOLS = {"error": "\u2716", "warning": "\u25b2", "info": "\u2139"}
SEVERITY_MEANING = {
    "error": "the checkpoint will load wrong or not at all",
    "warning": "likely a mistake a person should look at",
    "info": "by design, or how much was checked",
}
ABSENT = "absent"
MIXED = "mixed"
MIXED_COLOUR = "#ffffff"

_ASSETS = files("quantresolve.audit.render") / "assets"
_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
_NUMBER = re.compile(r"(?<=\.)\d+(?=\.|$)|^\d+(?=\.|$)")


def _asset(name: str) -> str:
    return (_ASSETS / name).read_text(encoding="utf-8")


def _sev(severity: str) -> str:
    return f'<span class="sev-{severity}">{SYMBOLS[severity]} {severity}</span>'


def _swatch(label: str) -> str:
    colour = MIXED_COLOUR if label == MIXED else common.algo_colour(label)
    return f'<i class="sw" style="background:{colour}"></i>'


def _th(label: str, *, sortable: bool = True, kind: str = "text", col: str | None = None, cls: str = "") -> str:
    attrs = f' class="{cls}"' if cls else ""
    if col is not None:
        attrs += f' data-col="{col}"'
    if not sortable:
        return f'<th scope="col"{attrs}>{escape(label)}</th>'
    return (f'<th scope="col"{attrs} data-type="{kind}" aria-sort="none">'
            f'<button type="button">{escape(label)}</button></th>')


def _header(report: AuditReport) -> str:
    counts = report.counts()
    where = location_text(report)
    evidence = (f'<a href="#legend" class="ev-{escape(report.evidence_level)}">{escape(evidence_text(report))}</a>'
                if report.evidence_level != "headers" else "headers")
    meta = (f"<b>producer</b> {escape(producer_text(report))} · "
            f"<b>algo</b> {escape(report.quant_algo or '-')} · <b>KV cache</b> {escape(report.kv_cache or '-')} · "
            f"<b>profile</b> {escape(report.profile)} · <b>evidence</b> {evidence} · "
            f"<b>shards</b> {report.shards} · <b>tensors</b> {report.tensors} · "
            f"<b>modules</b> {len(report.modules)} · <b>config</b> {escape(', '.join(report.config_sources))}"
            + (f" · <b>read from</b> {escape(where)}" if where is not None else ""))
    verdict = " · ".join(f"{_sev(s)}: {counts[s]}" for s in ("error", "warning", "info"))
    return (f"<h1>quantresolve audit: <code>{escape(report.checkpoint)}</code></h1>\n"
            f'<p class="meta">{meta}</p>\n<p>findings (grouped): {verdict} · exit code {report.exit_code()} '
            f"({report.exit_code(strict=True)} with <code>--strict</code>)</p>\n"
            '<nav class="toc" aria-label="sections"><a href="#findings">Findings</a><a href="#coverage">Coverage</a>'
            '<a href="#map">Per-layer map</a><a href="#modules">Modules</a></nav>')


def _findings(report: AuditReport) -> str:
    if not report.findings:
        return '<h2 id="findings">Findings</h2><p class="ok">\u2714 config, naming and tensors agree</p>'
    rows = []
    for i, g in enumerate(report.findings[:MAX_FINDINGS]):
        reason = CODES[g.code].reason if g.code in CODES else ""
        names = ""
        if g.pattern is not None:
            names = (f'<details class="members" data-pattern="{escape(g.pattern)}"><summary><code>'
                     f"{escape(g.pattern)}</code></summary><ol></ol></details>")
        action = (f'<button type="button" class="show-group" data-group="{i}">show {len(g.units)} in the table'
                  "</button>" if g.units else "")
        why = f'<div class="why">{escape(g.severity)}: {escape(reason)}</div>' if reason else ""
        rows.append(
            f'<tr id="f-{i}" tabindex="-1"><td data-v="{"ewi".index(g.severity[0])}">{_sev(g.severity)}</td>'
            f"<td><code>{escape(g.code)}</code></td><td class=\"num\" data-v=\"{g.count}\">{g.count}</td>"
            f"<td>{names}</td><td>{escape(g.cause)}{why}</td><td>{escape(common.finding_where(g))}</td>"
            f"<td>{action}</td></tr>")
    more = (f"<p>{len(report.findings) - MAX_FINDINGS} more finding groups: all are in the module table's "
            "finding filter and in <code>--format json</code>.</p>" if len(report.findings) > MAX_FINDINGS else "")
    head = "".join([_th("severity"), _th("code"), _th("modules", kind="num", cls="num"), _th("names"),
                    _th("cause"), _th("where"), _th("layers", sortable=False)])
    return (f'<h2 id="findings">Findings</h2>\n<p>One row per code and cause; a pattern such as '
            "<code>model.layers.{0..2,4}.mlp.gate</code> stands for every module it expands to (open it to list "
            "them); <i>show in the table</i> filters the module table to them.</p>\n"
            f'<table class="sortable findings" aria-label="findings"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>{more}")


def _coverage(report: AuditReport) -> str:
    cov = report.coverage
    rows = "".join(
        f'<tr><th scope="row">{_swatch(label)}{escape(label)}</th><td class="num" data-v="{e["modules"]}">'
        f'{e["modules"]}</td><td class="num" data-v="{e["params"] or 0}">{common.human_count(e["params"])}</td>'
        f'<td class="num" data-v="{e["bytes"]}">{common.human_bytes(e["bytes"]) if cov["params_known"] else "?"}'
        f"</td><td>{escape(', '.join(f'{k} {n}' for k, n in e['by_kind'].items()))}</td></tr>"
        for label, e in cov["by_algo"].items())
    head = "".join([_th("scheme"), _th("modules", kind="num", cls="num"), _th("params", kind="num", cls="num"),
                    _th("bytes", kind="num", cls="num"), _th("kinds")])
    return (f'<h2 id="coverage">Coverage</h2>\n<table class="sortable" aria-label="coverage"><thead><tr>{head}'
            f"</tr></thead><tbody>{rows}</tbody></table>\n"
            f"<p>Quantized linear parameters: <b>{common.percent(cov['quantized_linear_param_fraction'])}</b> · "
            f"quantized linear modules: <b>{common.percent(cov['quantized_linear_module_fraction'])}</b></p>")


def _fold(columns: list[str]) -> list[tuple[str, list[str]]]:
    """``(shown column, original columns)``; numbered components fold to ``*`` when there are too many."""
    if len(columns) <= MAX_MAP_COLUMNS:
        return [(c, [c]) for c in columns]
    folded: dict[str, list[str]] = {}
    for c in columns:
        folded.setdefault(_NUMBER.sub("*", c), []).append(c)
    return list(folded.items())


def _map_cell(stack: str, index: str, shown: str, labels: list[str], short: dict[str, str]) -> str:
    if not labels:
        return f'<td class="absent" title="{escape(f"{stack}.{index}.{shown}")}: absent"><span>\u00b7</span></td>'
    label = labels[0] if len(set(labels)) == 1 else MIXED
    module = f"{stack}.{index}.{shown.replace(' [kv]', '')}"
    query = module if "*" in shown else f"={module}"
    colour = MIXED_COLOUR if label == MIXED else common.algo_colour(label)
    return (f'<td><button type="button" class="cell" data-q="{escape(query)}" '
            f'style="background:{colour};color:{common.text_colour(colour)}" title="{escape(module)}: '
            f'{escape(label)}">{escape(short[label])}</button></td>')


def _layer_maps(report: AuditReport, short: dict[str, str]) -> str:
    parts = []
    for stack, columns, rows in common.layer_tables(report, fold=False):
        folded = _fold(columns)
        head = "".join(f'<th scope="col">{escape(c)}</th>' for c, _ in folded)
        body = []
        for index, cells in rows:
            tds = "".join(_map_cell(stack, index, shown, [cells[c] for c in originals if c in cells], short)
                          for shown, originals in folded)
            body.append(f'<tr><th scope="row">{index}</th>{tds}</tr>')
        parts.append(f"<h3>{escape(stack)}.N</h3><div class=\"mapwrap\"><table class=\"map\" "
                     f'aria-label="per-layer map of {escape(stack)}"><thead><tr><th scope="col" class="corner">'
                     f"layer</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")
    if not parts:
        return ""
    return ('<h2 id="map">Per-layer map</h2>\n<p>One row per layer (in numeric order), one column per module type; '
            "each cell shows its scheme as a colour and a short label (legend above). Click a cell to show its "
            "module in the table.</p>" + "".join(parts))


def _labels(report: AuditReport) -> list[str]:
    in_map = {label for stack in report.layer_map for row in stack["rows"] for label in row["cells"].values()}
    return sorted(set(report.coverage["by_algo"]) | in_map | {m.label for m in report.modules})


def _legend(labels: list[str], short: dict[str, str], folded: bool, evidence_level: str) -> str:
    items = []
    for label in labels:
        colour = common.algo_colour(label)
        items.append(f'<li><span class="cellkey" style="background:{colour};color:{common.text_colour(colour)}">'
                     f"{escape(short[label])}</span>{escape(label)}</li>")
    items.append('<li><span class="cellkey" style="background:#eee;color:#777">\u00b7</span>absent: the layer has '
                 "no such module</li>")
    if folded:
        items.append(f'<li><span class="cellkey" style="background:{MIXED_COLOUR};color:#000;border:1px solid #999">'
                     f"{escape(short[MIXED])}</span>mixed: the folded modules differ</li>")
    items += [f"<li>{_sev(s)}: {escape(SEVERITY_MEANING[s])}</li>" for s in ("error", "warning", "info")]
    for level, meaning in common.EVIDENCE_MEANING.items():
        this = level == evidence_level
        cls, note = ("ev current", " (this report)") if this else ("ev", "")
        items.append(f'<li class="{cls}"><b>evidence {escape(level)}</b>{note}: {escape(meaning)}</li>')
    return f'<h2 id="legend">Legend</h2><ul class="legend" aria-label="legend">{"".join(items)}</ul>'


def _module_table(report: AuditReport) -> str:
    cols = [("name", "module", "text", "28%"), ("kind", "kind", "text", "7%"), ("scheme", "scheme", "text", "11%"),
            ("rule", "rule", "text", "9%"), ("source", "config entry", "text", "14%"),
            ("format", "tensors", "text", "7%"), ("params", "params", "num", "6%"), ("bytes", "bytes", "num", "7%"),
            ("findings", "findings", "num", "11%")]
    colgroup = "".join(f'<col style="width:{w}">' for *_, w in cols)
    head = "".join(_th(label, kind=kind, col=col, cls="num" if kind == "num" else "") for col, label, kind, _ in cols)
    selects = "".join(
        f'<label for="f-{key}">{escape(text)}<select id="f-{key}"><option value="">all</option></select></label>'
        for key, text in (("kind", "kind"), ("scheme", "scheme"), ("rule", "rule"), ("finding", "finding")))
    return (f'<h2 id="modules">Modules</h2>\n<div class="filters" role="search">'
            '<label for="f-q">search module names<input id="f-q" type="search" autocomplete="off" '
            'placeholder="mlp.gate, =exact.name, layers.*.gate, re:^lm_head$" aria-describedby="f-hint"></label>'
            f'{selects}<button type="button" id="f-clear">clear filters</button></div>\n'
            '<p class="hint" id="f-hint">Text matches anywhere in the name; <code>=name</code> matches exactly; '
            "<code>*</code> and <code>?</code> are wildcards; <code>re:</code> starts a regular expression. Click "
            "a column header to sort (again to reverse); layers sort numerically.</p>\n"
            '<p id="m-status" role="status" aria-live="polite"></p>\n'
            '<div class="wrap" id="m-wrap" tabindex="0" role="region" aria-label="modules, scrollable">'
            f'<table id="m-table" aria-label="modules" aria-rowcount="{len(report.modules) + 1}">'
            f"<colgroup>{colgroup}</colgroup><thead><tr>{head}</tr></thead><tbody id=\"m-body\"></tbody></table>"
            "</div>\n<noscript><p>The module table, the filters and sorting need JavaScript; "
            "<code>--format json</code> carries the same data.</p></noscript>")


def render_html(report: AuditReport) -> str:
    modules = ordered_modules(report)
    labels = _labels(report)
    folded = any(len(_fold(cols)) < len(cols) for _, cols, _ in common.layer_tables(report, fold=False))
    short = common.short_labels([*labels, MIXED])
    colours = {label: [common.algo_colour(label), common.text_colour(common.algo_colour(label))] for label in labels}
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>quantresolve audit: {escape(report.checkpoint)}</title>
<style>{_asset("report.css")}</style></head>
<body>
{_header(report)}
<main>
{_findings(report)}
{_coverage(report)}
{_legend(labels, short, folded, report.evidence_level)}
{_layer_maps(report, short)}
{_module_table(report)}
</main>
<script type="application/json" id="qr-data">{script_json(page_data(report, modules))}</script>
<script type="application/json" id="qr-colours">{script_json(colours)}</script>
<script>{_asset("report.js")}</script>
</body></html>
"""
