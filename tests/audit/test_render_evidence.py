"""Every renderer says what the audit rests on: the evidence level (config-only, names-only) with where
the sizes came from, where the checkpoint was read from (a cached or hub repository), and a dense
model's missing quantization config — in the text, Markdown and HTML reports (header, legend, table)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hf_cache import make_hf_cache

from .test_every_model import _tiny_dense
from .test_html_report import Tree, _data


def _reports(cli, ckpt: Path) -> dict[str, str]:
    return {fmt: cli("audit", ckpt, "--format", fmt).out for fmt in ("text", "markdown", "html")}


def test_config_only_dense_model_in_every_format(tmp_path: Path, cli) -> None:
    reports = _reports(cli, _tiny_dense(tmp_path / "config", with_tensors=False))
    for fmt, text in reports.items():
        assert "none (no quantization config: nothing quantized)" in text, fmt
        assert "config-only (params from config.json shapes, bytes estimated per scheme)" in text, fmt
    tree = Tree(reports["html"])
    legend = tree.root.find("ul", cls="legend")
    (current,) = legend.iter("li", cls="current")
    assert current.find("b").all_text() == "evidence config-only" and "(this report)" in current.all_text()
    assert [li.find("b").all_text() for li in legend.iter("li", cls="ev")] == [
        "evidence headers", "evidence names-only", "evidence config-only"]
    assert set(_data(tree)["d"]["format"]) <= {"not read", "no-weight"}  # the tensors column: nothing was read


def test_names_only_without_shapes_says_so(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from .test_every_model import _index_only

    ckpt = _index_only(_tiny_dense(tmp_path / "dense"))
    monkeypatch.setitem(sys.modules, "transformers", None)
    for fmt, text in _reports(cli, ckpt).items():
        assert "names-only (sizes unknown)" in text, fmt


def test_a_cached_repository_names_where_it_was_read(tmp_path: Path, cli) -> None:
    cache = make_hf_cache(tmp_path, "modelopt-mixed", "org/tiny")
    report = json.loads(cli("audit", cache.snapshot, "--format", "json").out)
    assert report["location"]["kind"] == "hf-cache"
    where = f"Hugging Face cache, org/tiny, commit {cache.commit[:12]}"
    for fmt, text in _reports(cli, cache.snapshot).items():
        assert where in text.replace("\n", " "), fmt


def test_a_local_checkpoint_adds_no_location_line(cli) -> None:
    from tests.conftest import checkpoint_dir

    for fmt, text in _reports(cli, checkpoint_dir("modelopt-mixed")).items():
        assert "read from" not in text and "modelopt 0.47.0" in text.replace("<b>producer</b> ", ""), fmt
