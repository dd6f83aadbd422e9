"""The HTML audit report of a 180k-tensor checkpoint: file size and time to render in a real browser.

Writes the synthetic 163-shard DeepSeek-V3-scale checkpoint (:mod:`audit_scale_data`), audits it
once per profile — ``deepseek-v3`` (vLLM's naming: experts grouped into one container per layer,
~800 modules) and ``transformers`` (every expert projection its own module, ~46k rows: the worst
case for the page) — writes each page, and opens it ``--repeats`` times in headless Chromium
(``tests/browser.py``: the DevTools protocol over a pipe). Per page it prints the size, the time to
write it (Python), and the median of, from navigation start: the end of the page's script (the
first view rendered: ``render``), the next frame (``paint``) and the load event (``load``); and how
many requests the page made (must be 1: itself). The targets (issue 16): < 5 MB, < 2 s. Last lines::

    html_report: profile=deepseek-v3 modules=N bytes=B write_s=W render_ms=R paint_ms=P load_ms=L requests=1

Usage::

    python benchmarks/html_report.py [--dir DIR] [--repeats 5] [--keep]

Needs Chromium (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from audit_scale_data import write_synthetic_deepseek_checkpoint  # noqa: E402

from tests.browser import Chromium, find_chromium  # noqa: E402

PROFILES = ("deepseek-v3", "transformers")


def measure(page: Path, repeats: int) -> dict[str, float]:
    """Median milliseconds from navigation start to script end, next frame and load event."""
    samples: dict[str, list[float]] = {"render_ms": [], "paint_ms": [], "load_ms": []}
    requests = 0
    for _ in range(repeats):
        with Chromium(find_chromium(), width=1400, height=1000) as browser:  # type: ignore[arg-type]
            browser.open(page.as_uri())
            browser.wait_for("document.body.dataset.paintMs")
            samples["render_ms"].append(float(browser.evaluate("document.body.dataset.renderMs")))
            samples["paint_ms"].append(float(browser.evaluate("document.body.dataset.paintMs")))
            samples["load_ms"].append(float(browser.evaluate(
                "performance.getEntriesByType('navigation')[0].loadEventEnd")))
            requests = len(browser.requests())
    return {**{k: statistics.median(v) for k, v in samples.items()}, "requests": requests}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, help="checkpoint directory (default: a temp dir)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the pages next to the checkpoint")
    args = parser.parse_args(argv)
    if find_chromium() is None:
        print("html_report: chromium not found (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    from quantresolve.audit import RENDERERS, audit_checkpoint

    with tempfile.TemporaryDirectory(prefix="html-report-") as tmp:
        directory = args.dir or Path(tmp) / "ckpt"
        if not (directory / "model.safetensors.index.json").is_file():
            count = write_synthetic_deepseek_checkpoint(directory)
            print(f"wrote {count} tensors to {directory}", file=sys.stderr)
        pages = Path(tmp) if not args.keep else directory
        for profile in PROFILES:
            report = audit_checkpoint(directory, profile=profile)
            t0 = time.perf_counter()
            html = RENDERERS["html"](report)
            write_s = time.perf_counter() - t0
            page = pages / f"report-{profile}.html"
            page.write_text(html, encoding="utf-8")
            timing = measure(page, args.repeats)
            print(f"html_report: profile={profile} modules={len(report.modules)} tensors={report.tensors} "
                  f"bytes={page.stat().st_size} write_s={write_s:.2f} render_ms={timing['render_ms']:.0f} "
                  f"paint_ms={timing['paint_ms']:.0f} load_ms={timing['load_ms']:.0f} "
                  f"requests={timing['requests']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
