"""The HTML report in a real headless Chromium (skipped when Chromium is absent).

Debian: ``apt-get install -y chromium``. The page is driven through the DevTools protocol
(``tests/browser.py``): search, sort, filter by finding, click a finding or a map cell, expand a
finding's members, type and press keys — and every network request is recorded (there must be
none but the page itself). The screenshot test checks the map's colours appear as pixels.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from quantresolve.audit import RENDERERS, audit_checkpoint
from quantresolve.audit.pattern import compact, expand, natural_key
from quantresolve.audit.render.common import algo_colour

from ..browser import Chromium, find_chromium
from .conftest import CHECKPOINTS

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")


def _png_pixels(data: bytes) -> set[tuple[int, int, int]]:
    """Distinct RGB colours of an 8-bit RGB/RGBA non-interlaced PNG (Chromium's screenshots)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    channels = 4
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, _height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            channels = 4 if colour == 6 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    colours: set[tuple[int, int, int]] = set()
    previous = bytearray(stride)
    i = 0
    while i < len(raw):
        filt, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = previous[x]
            c = previous[x - channels] if x >= channels else 0
            if filt == 1:
                line[x] = (line[x] + a) & 255
            elif filt == 2:
                line[x] = (line[x] + b) & 255
            elif filt == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        colours.update(tuple(line[x:x + 3]) for x in range(0, stride, channels))
        previous = line
    return colours


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def test_html_report_renders_layer_map(tmp_path: Path, cli) -> None:
    ckpt = CHECKPOINTS / "modelopt-mixed"
    if not (ckpt / "config.json").is_file():
        pytest.skip("fixture checkpoints not generated")
    page = tmp_path / "report.html"
    assert cli("audit", ckpt, "--format", "html", "--output", page).rc == 0
    shot = tmp_path / "shot.png"
    profile = tmp_path / "chromium-profile"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--hide-scrollbars", "--window-size=1100,1600", f"--screenshot={shot}", page.as_uri()],
        check=True, capture_output=True, timeout=60)
    colours = _png_pixels(shot.read_bytes())
    for label in ("FP8", "NVFP4", "unquantized"):
        assert _rgb(algo_colour(label)) in colours, label
    shutil.rmtree(profile, ignore_errors=True)


# --- driving the page -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def page(deepseek, tmp_path_factory) -> tuple[Path, dict]:
    """The DeepSeek-layout report as HTML, and as JSON for the expectations."""
    report = audit_checkpoint(deepseek)
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(RENDERERS["html"](report), encoding="utf-8")
    return path, report.to_json()


@pytest.fixture(scope="module")
def browser():
    with Chromium(CHROMIUM) as b:  # type: ignore[arg-type]
        yield b


def _open(browser: Chromium, path: Path, fragment: str = "") -> None:
    browser.open(path.as_uri() + fragment)
    browser.wait_for("document.body.dataset.ready === '1'")


def _view(browser: Chromium) -> list[str]:
    return browser.evaluate("quantresolveReport.view()")


def _status(browser: Chromium) -> str:
    return browser.evaluate("document.getElementById('m-status').textContent")


def _click(browser: Chromium, selector: str) -> None:
    browser.evaluate(f"document.querySelector({json.dumps(selector)}).click()")


def test_loads_without_requests_or_errors(browser, page):
    path, report = page
    _open(browser, path)
    assert browser.requests() == [path.as_uri()]  # the page itself, nothing else
    assert not [e for e in browser.events if e["method"] in ("Runtime.exceptionThrown", "Network.loadingFailed")]
    n = len(report["modules"])
    assert _status(browser) == f"showing {n} of {n} modules"
    rows = browser.evaluate("document.querySelectorAll('#m-body tr:not(.spacer)').length")
    assert 0 < rows < n  # virtualised: only the rows in view exist
    view = _view(browser)
    assert view == sorted(view, key=natural_key)  # layer 2 before layer 10
    assert view.index("model.layers.2.mlp.gate_up_proj") < view.index("model.layers.10.mlp.gate")


def test_search_filters_rows_as_typed(browser, page):
    path, report = page
    _open(browser, path)
    browser.evaluate("document.getElementById('f-q').focus()")
    browser.type("MLP.gate")
    expected = sorted((m["name"] for m in report["modules"] if "mlp.gate" in m["name"]), key=natural_key)
    browser.wait_for(f"document.getElementById('m-status').textContent.startsWith('showing {len(expected)} ')")
    assert _view(browser) == expected
    shown = browser.evaluate("[...document.querySelectorAll('#m-body tr:not(.spacer) th')].map(t => t.textContent)")
    assert shown and all("mlp.gate" in s for s in shown)
    assert "q=MLP.gate" in browser.evaluate("location.hash")
    browser.evaluate("document.getElementById('f-q').value = '=model.layers.3.mlp.gate';"
                     "document.getElementById('f-q').dispatchEvent(new Event('input'))")
    browser.wait_for("quantresolveReport.view().length === 1")
    browser.evaluate("document.getElementById('f-q').value = 're:^model\\\\.layers\\\\.(4|10)\\\\.mlp\\\\.gate$';"
                     "document.getElementById('f-q').dispatchEvent(new Event('input'))")
    browser.wait_for("quantresolveReport.view().length === 2")
    assert _view(browser) == ["model.layers.4.mlp.gate", "model.layers.10.mlp.gate"]
    browser.evaluate("document.getElementById('f-q').value = 'model.layers.1?.mlp.gate';"
                     "document.getElementById('f-q').dispatchEvent(new Event('input'))")
    browser.wait_for("quantresolveReport.view().length === 10")


def test_sort_by_a_column_is_numeric_and_reversible(browser, page):
    path, report = page
    params = {m["name"]: m["params"] for m in report["modules"]}
    _open(browser, path)
    _click(browser, "#m-table th[data-col=params] button")
    assert browser.evaluate("document.querySelector('#m-table th[data-col=params]').getAttribute('aria-sort')") \
        == "ascending"
    values = [params[n] for n in _view(browser)]
    assert values == sorted(values)
    browser.evaluate("document.querySelector('#m-table th[data-col=params] button').focus()")
    browser.key("Enter", 13, "\r")  # the keyboard reverses it
    browser.wait_for("document.querySelector('#m-table th[data-col=params]').getAttribute('aria-sort') "
                     "=== 'descending'")
    values = [params[n] for n in _view(browser)]
    assert values == sorted(values, reverse=True) and values[0] > values[-1]
    assert browser.evaluate("document.querySelector('#m-table th[data-col=name]').getAttribute('aria-sort')") \
        == "none"


def test_clicking_a_finding_filters_to_its_layers(browser, page):
    path, report = page
    (i, group), = [(i, g) for i, g in enumerate(report["findings"])
                   if g["code"] == "config-quantized-model-unquantized"]
    _open(browser, path)
    _click(browser, f'button.show-group[data-group="{i}"]')
    assert _view(browser) == group["units"] and len(group["units"]) == 58
    assert browser.evaluate("document.getElementById('f-finding').value") == f"g{i}"
    assert browser.evaluate("document.activeElement.id") == "m-wrap"
    assert f"finding=g{i}" in browser.evaluate("location.hash")
    # a module row's findings link back to the finding
    _click(browser, "#m-body button.row-findings")
    assert browser.evaluate("document.activeElement.id") == f"f-{i}"


def test_finding_members_expand_from_the_pattern(browser, page):
    path, report = page
    (i, group), = [(i, g) for i, g in enumerate(report["findings"])
                   if g["code"] == "config-quantized-model-unquantized"]
    _open(browser, path)
    browser.evaluate(f"document.querySelector('#f-{i} details.members').open = true")
    browser.wait_for(f"document.querySelectorAll('#f-{i} details.members li').length > 0")
    items = browser.evaluate(f"[...document.querySelectorAll('#f-{i} details.members li')].map(l => l.textContent)")
    assert items == group["members"]


def test_javascript_expansion_matches_python(browser, page):
    path, _ = page
    _open(browser, path)
    cases = [[f"model.layers.{i}.mlp.experts.{e}.down_proj" for i in (0, 1, 2, 4, 17) for e in range(40)],
             ["lm_head", "a{b}.1", "a,b.2", "x\\y", "3..5", "3.4", "", "model..x", "07.a", "7.a"],
             [f"l.{i}.{p}" for i in range(12) for p in ("q", "k")] + ["l.3.v"]]
    for names in cases:
        pattern = compact(names)
        got = browser.evaluate(f"quantresolveReport.expand({json.dumps(pattern)})")
        assert sorted(got, key=natural_key) == expand(pattern) == sorted(set(names), key=natural_key)
        assert len(got) == len(set(got))


def test_map_cell_and_deep_link(browser, page):
    path, report = page
    _open(browser, path)
    _click(browser, 'button.cell[data-q="=model.layers.3.mlp.gate"]')
    assert _view(browser) == ["model.layers.3.mlp.gate"]
    assert browser.evaluate("document.getElementById('f-q').value") == "=model.layers.3.mlp.gate"
    nbytes = {m["name"]: m["bytes"] for m in report["modules"]}
    _open(browser, path, "#kind=moe&sort=-bytes")
    view = _view(browser)
    assert view and all(n.endswith("mlp.experts") for n in view)
    assert [nbytes[n] for n in view] == sorted((nbytes[n] for n in view), reverse=True)
    assert browser.evaluate("document.getElementById('f-kind').value") == "moe"
    _click(browser, "#f-clear")
    assert len(_view(browser)) == len(report["modules"])


def test_legend_and_static_tables(browser, page):
    path, report = page
    _open(browser, path)
    legend = browser.evaluate("document.querySelector('ul.legend').textContent")
    for text in ("NVFP4", "unquantized", "absent", "error", "warning", "info"):
        assert text in legend
    _click(browser, "table.findings th:nth-child(3) button")  # sort the findings by module count
    assert browser.evaluate("document.querySelector('table.findings th:nth-child(3)').getAttribute('aria-sort')") \
        in ("ascending", "descending")
    coverage = browser.evaluate("[...document.querySelectorAll('#coverage + table tbody th')].map(t => t.textContent)")
    assert set(coverage) == set(report["coverage"]["by_algo"])
