"""The browser harness (tests/browser.py) is not vacuous: a hand-written page that meets the report's HTML contract
gives no problems, and each kind of bad page is caught, by name, in a real headless Chromium."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from browser import browser_unavailable, check_page, find_chromium, require_browser

CHROMIUM = require_browser()

CSP = "default-src 'none'; img-src data:; media-src data:; style-src 'unsafe-inline'"


def _png_1x1() -> str:
    """A valid 1x1 RGB PNG (signature, IHDR, IDAT, IEND), as a data URI."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\x00\x20\x60\xc0")) + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _ogg_sine() -> str:
    """0.5 s of a 440 Hz sine as OGG Vorbis, as a data URI."""
    rate = 22_050
    t = np.arange(rate // 2) / rate
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate, format="OGG", subtype="VORBIS")
    return "data:audio/ogg;base64," + base64.b64encode(buf.getvalue()).decode()


PNG = _png_1x1()
OGG = _ogg_sine()
BROKEN_PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n this is not a PNG").decode()

TABLE1 = '<table class="results" id="table1"><thead><tr><th>Model</th><th>FAD</th></tr></thead><tbody></tbody></table>'
TABLE2 = ('<table class="results" id="table2"><thead><tr><th>Model</th><th>Params</th></tr></thead><tbody>'
          "<tr><td>a</td><td>1</td></tr><tr><td>b</td><td>2</td></tr></tbody></table>")


def page(*, csp: str | None = CSP, declared: str = "distributions",
         figures: str = f'<img class="report-figure" data-figure="distributions" src="{PNG}" alt="d">',
         tables: str = TABLE1 + TABLE2, audio: str = f'<audio controls preload="metadata" src="{OGG}"></audio>',
         extra: str = "") -> str:
    head = f'<meta http-equiv="Content-Security-Policy" content="{csp}">' if csp is not None else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">{head}'
            f'<meta name="samuel-report-figures" content="{declared}"><title>t</title></head>'
            f"<body><h1>Report</h1>{tables}{figures}{audio}{extra}</body></html>")


def _check(tmp_path: Path, html: str):
    path = tmp_path / "page.html"
    path.write_text(html, encoding="utf-8")
    return check_page(path, tmp_path / "page.png", chromium=CHROMIUM)


def test_a_page_that_meets_the_contract_has_no_problems(tmp_path: Path) -> None:
    report = _check(tmp_path, page())
    assert report.problems() == []
    assert report.figures_declared == ["distributions"]
    fig = report.figure("distributions")
    assert fig is not None and fig.complete and fig.natural_width == 1
    assert report.tables == {"table1": 0, "table2": 2}  # header rows are not data rows
    assert len(report.audio) == 1 and report.audio[0].duration == pytest.approx(0.5, abs=0.05)
    assert report.network_requests == [] and report.dialogs == [] and report.scripts == report.event_handlers == 0
    assert report.screenshot.stat().st_size > 1000


# each bad page, and words that must appear among its problems (one phrase per expected problem)
BAD_PAGES = {
    "console.error": (page(csp=None, extra="<script>console.error('boom from the page')</script>"),
                      ["console error: boom from the page", "<script>"]),
    "thrown error": (page(csp=None, extra="<script>throw new Error('kaboom')</script>"),
                     ["uncaught page error: kaboom"]),
    "alert": (page(csp=None, extra="<script>alert(1)</script>"),
              ["a dialog opened, so script ran in the page: alert: 1"]),
    "alert from an attribute": (page(csp=None, extra='<img src="data:," onerror="alert(2)">'),
                                ["alert: 2", "image did not decode: data:,", "inline event handler"]),
    "network image": (page(csp=None, extra='<img src="https://example.invalid/x.png" alt="x">'),
                      ["network request (the report must be offline): https://example.invalid/x.png",
                       "image did not decode: https://example.invalid/x.png"]),
    "declared figure missing": (page(declared="distributions,outliers"), ["declared figure 'outliers' is missing"]),
    "broken PNG": (page(figures=f'<img class="report-figure" data-figure="distributions" src="{BROKEN_PNG}">'),
                   ["figure 'distributions' did not decode", "image did not decode: data:image/png"]),
    "missing table2": (page(tables=TABLE1), ["table #table2 is missing"]),
    "broken audio": (page(audio='<audio controls preload="metadata" src="data:audio/ogg;base64,AAAA"></audio>'),
                     ["audio #0 (data:audio/ogg;base64,AAAA...) failed to load"]),
    "no CSP": (page(csp=None), ["no Content-Security-Policy"]),
    "a JSON data block is not script": (page(extra='<script type="application/json">{"a": "<b>"}</script>'), []),
}


@pytest.mark.parametrize("name", list(BAD_PAGES))
def test_each_bad_page_is_caught(tmp_path: Path, name: str) -> None:
    html, expected = BAD_PAGES[name]
    problems = _check(tmp_path, html).problems()
    for phrase in expected:
        assert any(phrase in p for p in problems), (phrase, problems)
    # nothing unrelated is reported: each problem is one the page was built to have (a script also counts)
    unexpected = [p for p in problems if not any(phrase in p for phrase in expected) and "<script>" not in p
                  and "no Content-Security-Policy" not in p and "Failed to load resource" not in p]
    assert unexpected == []


def test_chromium_is_found_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMUEL_CHROMIUM", CHROMIUM)
    assert find_chromium() == CHROMIUM and browser_unavailable() is None
    monkeypatch.setenv("SAMUEL_CHROMIUM", "/nonexistent/chromium")
    assert find_chromium() is None
    assert "SAMUEL_CHROMIUM=/nonexistent/chromium" in (browser_unavailable() or "")
