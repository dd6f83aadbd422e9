"""Report renderers: one module per output format, chosen through :data:`RENDERERS`.

Each renderer takes an :class:`~quantresolve.audit.report.AuditReport` and returns
text (``text`` also takes a ``color`` flag for terminals)::

    >>> sorted(RENDERERS)
    ['html', 'json', 'markdown', 'text']
"""

from __future__ import annotations

import json
from collections.abc import Callable

from quantresolve.audit.report import AuditReport


def render_json(report: AuditReport, *, color: bool = False, width: int | None = None) -> str:
    return json.dumps(report.to_json(), indent=2) + "\n"


def _text(report: AuditReport, *, color: bool = False, width: int | None = None) -> str:
    from quantresolve.audit.render.terminal import render_text

    return render_text(report, color=color, width=width)


def _markdown(report: AuditReport, *, color: bool = False, width: int | None = None) -> str:
    from quantresolve.audit.render.markdown import render_markdown

    return render_markdown(report)


def _html(report: AuditReport, *, color: bool = False, width: int | None = None) -> str:
    from quantresolve.audit.render.html import render_html

    return render_html(report)


#: format name → renderer.
RENDERERS: dict[str, Callable[..., str]] = {
    "text": _text,
    "json": render_json,
    "markdown": _markdown,
    "html": _html,
}
