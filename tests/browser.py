"""A real-browser check of an HTML report: headless Chromium through Playwright (imported by tests as ``browser``).

    chromium = require_browser()            # skips the test module (or fails it under SAMUEL_REQUIRE_BROWSER=1)
    report = check_page(html, png, chromium=chromium)
    assert report.problems() == []

The page is opened from a ``file://`` URL with every non-``data:``/``file:`` request aborted (and recorded), so the
check is offline. What it reads back follows the report's HTML contract (reports/html.py): the figure keys declared
in ``<meta name="samuel-report-figures">``, each ``img.report-figure[data-figure]``, ``table#table1`` and
``table#table2``, and every ``<audio>``, waited on until its metadata loads.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_ENV = "SAMUEL_CHROMIUM"
REQUIRE_ENV = "SAMUEL_REQUIRE_BROWSER"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync")
TABLE_IDS = ("table1", "table2")
FIGURES_META = "samuel-report-figures"
LOAD_TIMEOUT_MS = 30_000
AUDIO_TIMEOUT_MS = 10_000
SCREENSHOT_TIMEOUT_MS = 30_000
OFFLINE_SCHEMES = ("data:", "file:", "about:", "blob:")


def find_chromium() -> str | None:
    """``$SAMUEL_CHROMIUM`` (a path or a name on PATH) when set, else chromium, chromium-browser or google-chrome on
    PATH; None when there is none (or the one named in the environment is not an executable)."""
    named = os.environ.get(CHROMIUM_ENV)
    if named:
        return shutil.which(named)
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    return None


def browser_unavailable() -> str | None:
    """Why the browser check cannot run here, or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as err:
        return f"the playwright Python package is not installed ({err}); pip install playwright"
    named = os.environ.get(CHROMIUM_ENV)
    if named and find_chromium() is None:
        return f"{CHROMIUM_ENV}={named} is not an executable Chromium"
    if find_chromium() is None:
        return (f"no Chromium found: none of {', '.join(CHROMIUM_NAMES)} is on PATH and {CHROMIUM_ENV} is not set "
                "(Debian: apt-get install chromium)")
    return None


def require_browser() -> str:
    """The Chromium path; when there is none (or no playwright), skip the calling test module with the reason, or
    fail it with the reason when ``SAMUEL_REQUIRE_BROWSER=1`` (CI sets it, so a missing browser is never silent)."""
    import pytest

    reason = browser_unavailable()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"browser check required ({REQUIRE_ENV}=1) but unavailable: {reason}", pytrace=False)
        pytest.skip(f"browser check skipped: {reason}", allow_module_level=True)
    chromium = find_chromium()
    assert chromium is not None
    return chromium


@dataclass
class Figure:
    key: str | None  # its data-figure attribute
    complete: bool
    natural_width: int


@dataclass
class Audio:
    src: str  # the first 40 characters of its src
    ready_state: int
    duration: float | str | None  # seconds; "NaN"/"Infinity" as text; None before metadata
    error: int | None  # MediaError code: 1 aborted, 2 network, 3 decode, 4 source not supported


@dataclass
class PageReport:
    url: str
    screenshot: Path
    title: str = ""
    console_errors: list[str] = field(default_factory=list)
    console_warnings: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    network_requests: list[str] = field(default_factory=list)  # non-data:/file: requests (all aborted)
    dialogs: list[str] = field(default_factory=list)  # "alert: 1" ...; any dialog means script ran
    figures_declared: list[str] | None = None  # None: no <meta name="samuel-report-figures">
    figures: list[Figure] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)  # any <img> (figure or not) that failed to decode
    tables: dict[str, int | None] = field(default_factory=dict)  # id -> data rows (rows with a <td>); None: absent
    audio: list[Audio] = field(default_factory=list)
    scripts: int = 0  # executable <script> elements (not data blocks such as type="application/json")
    event_handlers: int = 0  # elements with an on* attribute (onerror=, onload=, ...)
    csp: str | None = None  # the Content-Security-Policy meta's content

    def figure(self, key: str) -> Figure | None:
        return next((f for f in self.figures if f.key == key), None)

    def problems(self) -> list[str]:
        """Every failure, in plain words; [] for a page that meets the contract."""
        out = [f"console error: {m}" for m in self.console_errors]
        out += [f"uncaught page error: {m}" for m in self.page_errors]
        out += [f"network request (the report must be offline): {u}" for u in self.network_requests]
        out += [f"a dialog opened, so script ran in the page: {d}" for d in self.dialogs]
        if self.scripts:
            out.append(f"the page holds {self.scripts} executable <script> element(s); the report must have no "
                       "JavaScript")
        if self.event_handlers:
            out.append(f"{self.event_handlers} element(s) carry an inline event handler (on*=); the report must have "
                       "no JavaScript")
        if self.csp is None:
            out.append("no Content-Security-Policy <meta> in the page")
        if self.figures_declared is None:
            out.append(f'no <meta name="{FIGURES_META}"> declaring the figures')
        for key in self.figures_declared or []:
            shown = [f for f in self.figures if f.key == key]
            if not shown:
                out.append(f"declared figure {key!r} is missing (no img.report-figure[data-figure={key!r}])")
            for f in shown:
                if not (f.complete and f.natural_width > 0):
                    out.append(f"figure {key!r} did not decode (complete={f.complete}, "
                               f"naturalWidth={f.natural_width})")
        for f in self.figures:
            if f.key not in (self.figures_declared or []):
                out.append(f"figure {f.key!r} is shown but not declared in <meta name={FIGURES_META!r}>")
        out += [f"image did not decode: {src}" for src in self.broken_images]
        out += [f"table #{tid} is missing" for tid, rows in self.tables.items() if rows is None]
        for k, a in enumerate(self.audio):
            if a.error is not None:
                out.append(f"audio #{k} ({a.src}...) failed to load: MediaError code {a.error}")
            elif a.ready_state < 1:
                out.append(f"audio #{k} ({a.src}...) did not load its metadata within {AUDIO_TIMEOUT_MS / 1000:g} s")
            elif not isinstance(a.duration, float | int) or not a.duration > 0:
                out.append(f"audio #{k} ({a.src}...) has duration {a.duration}")
        return out


# Runs in the page after load: everything check_page reads back. Audio elements are waited on (bounded).
_INSPECT_JS = """
async ({figuresMeta, tableIds, audioTimeoutMs}) => {
  const meta = document.querySelector(`meta[name="${figuresMeta}"]`);
  const declared = meta === null ? null
    : (meta.getAttribute('content') || '').split(',').map(s => s.trim()).filter(s => s.length > 0);
  const csp = document.querySelector('meta[http-equiv="Content-Security-Policy" i]');
  const figures = Array.from(document.querySelectorAll('img.report-figure')).map(img => ({
    key: img.getAttribute('data-figure'), complete: img.complete, naturalWidth: img.naturalWidth}));
  const broken = Array.from(document.images).filter(img => img.complete && img.naturalWidth === 0)
    .map(img => (img.getAttribute('src') || '').slice(0, 60));
  const tables = {};
  for (const id of tableIds) {
    const t = document.getElementById(id);
    tables[id] = (t === null || t.tagName !== 'TABLE') ? null
      : Array.from(t.rows).filter(r => r.querySelector('td') !== null).length;
  }
  const state = a => ({
    src: (a.currentSrc || a.getAttribute('src') || '').slice(0, 40),
    readyState: a.readyState,
    duration: a.readyState < 1 ? null : (Number.isFinite(a.duration) ? a.duration : String(a.duration)),
    error: a.error ? a.error.code : null});
  const waitFor = a => new Promise(resolve => {
    if (a.readyState >= 1 || a.error) { resolve(state(a)); return; }
    const timer = setTimeout(() => resolve(state(a)), audioTimeoutMs);
    const done = () => { clearTimeout(timer); resolve(state(a)); };
    a.addEventListener('loadedmetadata', done, {once: true});
    a.addEventListener('error', done, {once: true});
  });
  // a <script> runs unless its type names a data block (HTML: any type that is not a JavaScript MIME type)
  const jsTypes = new Set(['', 'module', 'importmap', 'text/javascript', 'application/javascript',
    'text/ecmascript', 'application/ecmascript', 'application/x-javascript', 'application/x-ecmascript',
    'text/x-javascript', 'text/x-ecmascript', 'text/jscript', 'text/livescript', 'text/javascript1.0',
    'text/javascript1.1', 'text/javascript1.2', 'text/javascript1.3', 'text/javascript1.4', 'text/javascript1.5']);
  const scripts = Array.from(document.scripts)
    .filter(s => jsTypes.has((s.getAttribute('type') || '').trim().toLowerCase())).length;
  const handlers = Array.from(document.querySelectorAll('*'))
    .filter(el => Array.from(el.attributes).some(a => a.name.toLowerCase().startsWith('on'))).length;
  const audio = await Promise.all(Array.from(document.querySelectorAll('audio')).map(waitFor));
  return {title: document.title, declared, figures, broken, tables, audio,
          scripts, handlers, csp: csp === null ? null : csp.getAttribute('content')};
}
"""


def check_page(html_path: Path, screenshot: Path, *, chromium: str) -> PageReport:
    """Open ``html_path`` in headless Chromium (offline), read the page back, save a full-page PNG screenshot."""
    from playwright.sync_api import Dialog, Route, sync_playwright

    url = Path(html_path).resolve().as_uri()
    report = PageReport(url=url, screenshot=Path(screenshot))

    def on_route(route: Route) -> None:
        if route.request.url.startswith(OFFLINE_SCHEMES):
            route.continue_()
        else:
            route.abort("blockedbyclient")

    def on_request(request: Any) -> None:
        if not request.url.startswith(OFFLINE_SCHEMES) and request.url not in report.network_requests:
            report.network_requests.append(request.url)

    def on_console(msg: Any) -> None:
        text = msg.text
        loc = msg.location or {}
        if loc.get("url") and not loc["url"].startswith("data:"):
            text = f"{text} ({loc['url'][-60:]}:{loc.get('lineNumber', '?')})"
        if msg.type == "error":
            report.console_errors.append(text)
        elif msg.type == "warning":
            report.console_warnings.append(text)

    def on_dialog(dialog: Dialog) -> None:
        report.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=list(CHROMIUM_ARGS),
                                    timeout=LOAD_TIMEOUT_MS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
            context.set_default_timeout(LOAD_TIMEOUT_MS)
            context.route("**/*", on_route)
            page = context.new_page()
            page.on("request", on_request)
            page.on("console", on_console)
            page.on("pageerror", lambda err: report.page_errors.append(str(err)))
            page.on("dialog", on_dialog)
            page.goto(url, wait_until="load", timeout=LOAD_TIMEOUT_MS)
            found = page.evaluate(_INSPECT_JS, {"figuresMeta": FIGURES_META, "tableIds": list(TABLE_IDS),
                                                "audioTimeoutMs": AUDIO_TIMEOUT_MS})
            report.screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(report.screenshot), full_page=True, timeout=SCREENSHOT_TIMEOUT_MS)
        finally:
            browser.close()
    report.title = found["title"]
    report.figures_declared = found["declared"]
    report.figures = [Figure(f["key"], bool(f["complete"]), int(f["naturalWidth"])) for f in found["figures"]]
    report.broken_images = list(found["broken"])
    report.tables = dict(found["tables"])
    report.audio = [Audio(a["src"], int(a["readyState"]), a["duration"], a["error"]) for a in found["audio"]]
    report.scripts = int(found["scripts"])
    report.event_handlers = int(found["handlers"])
    report.csp = found["csp"]
    return report
