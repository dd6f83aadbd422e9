"""The HTML report renders in headless Chromium (skipped when Chromium is absent).

Debian: ``apt-get install -y chromium chromium-driver``. The screenshot is checked
for the layer map's colours: the FP8 and NVFP4 cells must appear as pixels.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from quantresolve.audit.render.common import algo_colour

from .conftest import CHECKPOINTS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


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


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
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
         "--hide-scrollbars", "--window-size=1100,900", f"--screenshot={shot}", page.as_uri()],
        check=True, capture_output=True, timeout=60)
    colours = _png_pixels(shot.read_bytes())
    for label in ("FP8", "NVFP4", "unquantized"):
        assert _rgb(algo_colour(label)) in colours, label
