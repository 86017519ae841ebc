"""The HTML report in a real headless Chromium: no console or page errors, no network request, no dialog, both
tables, every declared figure decoded, every audio player loads; a full-page screenshot is saved.

With ``SAMUEL_REPORT_HTML`` set (CI: ``nox -s ci_report`` sets it to reports/ci/report.html) that file is checked;
otherwise a report is built here from a tiny `samuel-eval` run (a fake model and the reference, 2 s items, signal
metrics) whose inputs have HTML in their names, so escaping is exercised in the browser. ``SAMUEL_SCREENSHOT``
says where the screenshot goes (default: the test's tmp_path).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from browser import PageReport, check_page, require_browser

CHROMIUM = require_browser()
# the fake model writes 16 kHz clips, which the signal metrics upsample (and say so)
pytestmark = pytest.mark.filterwarnings("ignore:.*sample rate is 16000 Hz:UserWarning")

FAKE = "fake-noise"
# Input names that would run script (or add an element) if the report pasted them unescaped. A file name cannot
# hold '/', so the first is a folder "<script>alert(1)<" holding "script>.wav": its path inside --vocals reads
# "<script>alert(1)</script>.wav". The third is not audio and the fake model fails on it, so its path appears in
# an error message.
SCRIPT_VOCAL = "<script>alert(1)</script>.wav"
IMG_VOCAL = "<img src=x onerror=alert(2)>.wav"
BAD_VOCAL = "<svg onload=alert(3)>.wav"


def _sine(path: Path, seconds: float, freq: float, rate: int = 44_100) -> None:
    t = np.arange(int(seconds * rate)) / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)


def _build_report(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from fake_generators import NoiseGenerator

    from baselines import registry
    from bench.manifest import safe_name
    from reports.cli import main
    from reports.html import write_report

    registry.register(FAKE, "fake_generators:NoiseGenerator")  # idempotent: tests/test_bench.py does the same
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(NoiseGenerator, "calls", 0)
    bad_id = safe_name(Path(BAD_VOCAL).stem)
    monkeypatch.setattr(NoiseGenerator, "fail_items", frozenset({bad_id}))
    vocals, refs = root / "vocals", root / "references"
    for k, name in enumerate((SCRIPT_VOCAL, IMG_VOCAL)):
        _sine(vocals / name, 2.0, 220.0 * (k + 2))
        _sine(refs / Path(name).name, 2.0, 110.0 * (k + 2))  # references match by stem: "script>", "<img ...>"
    (vocals / BAD_VOCAL).write_bytes(b"RIFF this is not audio")
    out = root / "run"
    assert main(["--models", f"{FAKE},reference", "--vocals", str(vocals), "--references", str(refs),
                 "--n", "3", "--duration", "2", "--metrics", "signal", "--time-items", "2", "--resamples", "100",
                 "--out", str(out), "--no-progress"]) == 1  # 1: the non-audio vocal is rejected, named in the report
    return write_report(out, root / "report.html")


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("SAMUEL_REPORT_HTML")
    if given:
        path = Path(given)
        if not path.is_file():
            pytest.fail(f"SAMUEL_REPORT_HTML={given}: no such file (the CI report was not written)", pytrace=False)
        return path
    with pytest.MonkeyPatch.context() as monkeypatch:
        return _build_report(tmp_path_factory.mktemp("report"), monkeypatch)


@pytest.fixture(scope="module")
def page(report_html: Path, tmp_path_factory: pytest.TempPathFactory) -> PageReport:
    shot = os.environ.get("SAMUEL_SCREENSHOT")
    screenshot = Path(shot) if shot else tmp_path_factory.mktemp("screenshot") / "report.png"
    return check_page(report_html, screenshot, chromium=CHROMIUM)


def test_the_report_has_no_problems_in_a_real_browser(page: PageReport) -> None:
    assert page.problems() == []
    assert page.dialogs == [] and page.network_requests == []


def test_both_tables_and_every_declared_figure(page: PageReport) -> None:
    assert page.tables["table1"] is not None  # Table I may be empty, but it is there
    assert page.tables["table2"] is not None and page.tables["table2"] >= 1
    assert page.figures_declared is not None
    for key in page.figures_declared:
        fig = page.figure(key)
        assert fig is not None, f"declared figure {key!r} missing"
        assert fig.complete and fig.natural_width > 0, f"figure {key!r} did not decode"


def test_the_screenshot_is_a_real_png(page: PageReport) -> None:
    data = page.screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000, f"{page.screenshot}: only {len(data)} bytes"


def test_names_with_html_are_escaped(report_html: Path, page: PageReport) -> None:
    """Only for the report built here: the input names reach the page as text, never as markup."""
    if os.environ.get("SAMUEL_REPORT_HTML"):
        pytest.skip("the CI report's inputs hold no HTML in their names")
    text = report_html.read_text(encoding="utf-8")
    for raw in (SCRIPT_VOCAL, IMG_VOCAL, BAD_VOCAL, "<script>alert", "<img src=x", "<svg onload"):
        assert raw not in text, raw
    assert "&lt;img src=x onerror=alert(2)&gt;.wav" in text  # the player's file name, escaped
    assert "&lt;svg onload=alert(3)&gt;.wav" in text  # the failed item's error message, escaped
    assert len(page.audio) >= 2 and page.scripts == 0 and page.event_handlers == 0

