"""The HTML report's structure, read with the standard library's HTML parser (no browser needed).

What a browser does with the page is tested in ``test_html_chromium.py`` (skipped without
Chromium); here: self-contained (no external source, a Content-Security-Policy that forbids one),
accessible markup (header scope, ``aria-sort``, labelled controls), no colour-only cell, every state
in the legend, layers in numeric order, the embedded data decoding to every module in natural order,
and every finding's pattern expanding to exactly its members.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from quantresolve.audit.pattern import expand, natural_key

from .conftest import CHECKPOINTS

REPO = Path(__file__).resolve().parents[2]


class Element:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element] = []
        self.text: list[str] = []

    def all_text(self) -> str:
        return "".join(self.text) + "".join(c.all_text() for c in self.children)

    def iter(self, tag: str | None = None, cls: str | None = None):
        for c in self.children:
            if (tag is None or c.tag == tag) and (cls is None or cls in (c.attrs.get("class") or "").split()):
                yield c
            yield from c.iter(tag, cls)

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Element:
        return next(e for e in self.iter(tag, cls) if all(e.attrs.get(k) == v for k, v in attrs.items()))

    def ancestor(self, tag: str) -> Element | None:
        e = self.parent
        while e is not None and e.tag != tag:
            e = e.parent
        return e


VOID = {"meta", "link", "br", "hr", "img", "input", "col", "source", "wbr"}


class Tree(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.current = Element("#root", {}, None)
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs), self.current)
        self.current.children.append(element)
        if tag not in VOID:
            self.current = element

    def handle_endtag(self, tag: str) -> None:
        e = self.current
        while e is not None and e.tag != tag:
            e = e.parent
        if e is not None and e.parent is not None:
            self.current = e.parent

    def handle_data(self, data: str) -> None:
        self.current.text.append(data)


def _page(cli, ckpt: Path, *args: str) -> tuple[str, Tree, dict]:
    html = cli("audit", ckpt, "--format", "html", *args).out
    report = cli("audit", ckpt, "--format", "json", *args).json()
    return html, Tree(html), report


def _data(tree: Tree) -> dict:
    return json.loads(tree.root.find("script", id="qr-data").all_text())


def _names(data: dict) -> list[str]:
    names, prev = [], ""
    for p, s in zip(data["m"]["p"], data["m"]["s"], strict=True):
        prev = prev[:p] + s
        names.append(prev)
    return names


def test_self_contained(deepseek, cli):
    html, tree, _ = _page(cli, deepseek)
    csp = tree.root.find("meta", **{"http-equiv": "Content-Security-Policy"}).attrs["content"]
    assert "default-src 'none'" in csp and "connect-src" not in csp
    for e in tree.root.iter():
        assert e.tag not in ("link", "img", "iframe", "object", "embed")
        assert "src" not in e.attrs, e.tag
        href = e.attrs.get("href")
        assert href is None or href.startswith("#"), href
    assert not re.search(r"https?://|//cdn|@import|url\(", html)
    scripts = list(tree.root.iter("script"))
    assert [s.attrs.get("type") for s in scripts] == ["application/json", "application/json", None]


def test_embedded_data_is_every_module_in_natural_order(deepseek, cli):
    _, tree, report = _page(cli, deepseek)
    names = _names(_data(tree))
    assert names == sorted((m["name"] for m in report["modules"]), key=natural_key)
    assert names.index("model.layers.2.mlp.down_proj") < names.index("model.layers.10.mlp.gate")


def test_findings_grouped_and_patterns_expand_to_members(deepseek, cli):
    _, tree, report = _page(cli, deepseek)
    rows = list(tree.root.find("table", cls="findings").find("tbody").iter("tr"))
    assert len(rows) == len(report["findings"]) >= 1
    for i, (row, group) in enumerate(zip(rows, report["findings"], strict=True)):
        assert row.attrs["id"] == f"f-{i}"
        symbol = {"error": "\u2716", "warning": "\u25b2", "info": "\u2139"}[group["severity"]]
        assert f"{symbol} {group['severity']}" in row.all_text()  # a symbol and a word, not colour alone
        if group["pattern"] is not None:
            details = next(row.iter("details", cls="members"))
            assert expand(details.attrs["data-pattern"]) == group["members"]
    (router,) = [g for g in report["findings"] if g["code"] == "config-quantized-model-unquantized"]
    assert (router["severity"], router["pattern"], router["count"]) == ("info", "model.layers.{3..60}.mlp.gate", 58)
    groups = _data(tree)["g"]
    names = _names(_data(tree))
    assert [[names[r] for r in g["u"]] for g in groups] == [g["units"] for g in report["findings"]]


def test_accessible_tables_and_controls(deepseek, cli):
    _, tree, _ = _page(cli, deepseek)
    tables = list(tree.root.iter("table"))
    assert len(tables) >= 4  # findings, coverage, per-layer map, modules
    for table in tables:
        for th in table.find("thead").iter("th"):
            assert th.attrs.get("scope") == "col"
            if list(th.iter("button")):
                assert th.attrs.get("aria-sort") in ("none", "ascending", "descending")
    modules = tree.root.find("table", id="m-table")
    sortable = [th.attrs["data-col"] for th in modules.find("thead").iter("th") if th.attrs.get("aria-sort")]
    assert sortable == ["name", "kind", "scheme", "rule", "source", "format", "params", "bytes", "findings"]
    labels = {e.attrs.get("for") for e in tree.root.iter("label")}
    for control in [*tree.root.iter("input"), *tree.root.iter("select")]:
        assert control.attrs["id"] in labels  # every filter has its label
    assert tree.root.find("div", id="m-wrap").attrs["tabindex"] == "0"  # the scroll box takes the keyboard


def test_map_cells_carry_text_and_layers_are_numeric(deepseek, cli):
    _, tree, report = _page(cli, deepseek)
    table = tree.root.find("table", cls="map")
    layers = [int(th.all_text()) for tr in table.find("tbody").iter("tr") for th in tr.iter("th")]
    assert layers == list(range(62))
    cells = list(table.iter("td"))
    assert cells and all(c.all_text().strip() for c in cells)  # no colour-only cell: a label or "·"
    shown = {c.all_text() for c in table.iter("button", cls="cell")}
    legend = tree.root.find("ul", cls="legend").all_text()
    for label in {m["algo"] or "unquantized" for m in report["modules"]}:
        assert label in legend
    for short in shown:
        assert short in legend
    assert "absent" in legend and "\u00b7" in legend
    for severity in ("error", "warning", "info"):
        assert severity in legend


def test_small_fixture_page(cli):
    ckpt = CHECKPOINTS / "modelopt-mixed"
    if not (ckpt / "config.json").is_file():
        pytest.skip("fixture checkpoints not generated")
    html, tree, report = _page(cli, ckpt)
    assert "config, naming and tensors agree" in html and report["findings"] == []
    buttons = list(tree.root.find("table", cls="map").iter("button", cls="cell"))
    assert len(buttons) == 8
    first = next(b for b in buttons if b.attrs["data-q"] == "=model.layers.0.self_attn.qkv_proj")
    assert first.all_text() == "FP8" and first.attrs["title"] == "model.layers.0.self_attn.qkv_proj: FP8"


def test_hostile_names_are_escaped(tmp_path, cli):
    """A tensor name with markup stays text, in the table data and in the findings."""
    from .conftest import copy_fixture, edit_tensors

    ckpt = copy_fixture(tmp_path, "modelopt-fp8")
    edit_tensors(ckpt, lambda t: t.update({"model.<script>x</script>.weight": ["BF16", [2, 2], b"\x00" * 8]}))
    html = cli("audit", ckpt, "--format", "html").out
    assert "<script>x</script>" not in html
    tree = Tree(html)
    assert "model.<script>x</script>" in _names(_data(tree))
