"""The HTML report: one self-contained file (tables, figures, audio excerpts, data) that opens offline.

    write_report(DIR, DIR / "report.html")      # what `samuel-eval` and `samuel-eval report DIR` call

Everything comes from files the passes already wrote (results.json, scores.json, DIR/scores/, the samples and
the manifest's inputs); nothing is recomputed but the figures and the compressed excerpts. Every string that
can come from a user (file names, prompts, model names, commands, error messages) goes through ``html.escape``;
a Content-Security-Policy forbids scripts and every network request, and the page has no JavaScript: the tables,
figures (PNG), audio (MP3, which every current browser plays) and the raw JSON are all inline.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.bootstrap import MIN_BOOTSTRAP_UNITS, names_sign_flip_test, sign_flip_floor
from bench.results import ModelResult, RunResults
from bench.runfolder import RunFolder
from bench.scoring.records import ScoreError, Scores
from bench.scoring.registry import metric as registered_metric
from bench.scoring.summary import PER_CLIP_FAMILY, PER_CLIP_FAMILY_MEANS
from reports.figures import ReportFigure, outliers, report_figures
from reports.probe import load_probe, probe_section
from reports.table1 import estimate_cell, rescore_command, stale_table1, table1
from reports.table2 import table2
from reports.tables import Cell, Table, to_html
from reports.worst import worst_items_section

CSP = ("default-src 'none'; img-src data:; media-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
       "form-action 'none'")
AUDIO_ITEMS = 3  # matched items with players
EXCERPT_S = 10.0  # seconds of each clip embedded; the file stays small (about 80-200 kB per clip as MP3)
MP3_QUALITY = 0.6  # libsndfile's compression level for VBR MP3 (0 = best, 1 = smallest)
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 48px;
color:#1d1d1f}
h1{font-size:24px;margin:24px 0 4px}h2{font-size:19px;margin-top:36px;border-bottom:1px solid #ddd}
nav a{margin-right:12px}
.banner{background:#fff4e5;border:1px solid #f0a04b;padding:8px 12px;margin:12px 0}
.banner strong{color:#9a4d00}
table{border-collapse:collapse;margin:8px 0;font-size:12.5px}
table.results{display:block;overflow-x:auto;max-width:100%}
caption{text-align:left;font-weight:600;padding:4px 0}
th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}
thead th{background:#f3f3f3}
td.flagged{background:#ffe9e9}
tr.random th,tr.random td{color:#666;background:#f6f6f6}
ol.notes{font-size:12px;color:#444}
figure{margin:16px 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:12px;color:#444}
.players{display:flex;flex-wrap:wrap;gap:8px}
.player{border:1px solid #ddd;padding:6px;width:232px;font-size:12.5px;overflow-wrap:anywhere}audio{width:220px}
dl.prov{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;font-size:12.5px}
dl.prov dt{font-weight:600}dl.prov dd{margin:0;font-family:ui-monospace,monospace;word-break:break-all}
code{font-family:ui-monospace,monospace}
"""


STALE_SHOWN = 20  # stale files named in the report; the rest are counted


def esc(value: Any) -> str:
    """Text for HTML content or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


@dataclass(frozen=True)
class RunData:
    """What the report reads: results.json and scores.json as typed objects (bench.results, bench.scoring.records),
    the per-clip rows, the manifest and the stale files."""

    folder: Path
    results: RunResults
    scores: Scores | None
    clip_rows: list[dict[str, Any]]
    manifest: Any = None  # bench.manifest.Manifest, when readable
    stale: tuple[Path, ...] = ()  # files of earlier runs that no table uses (samuel-eval clean removes them)
    sweeps: tuple[dict[str, Any], ...] = ()  # DIR/sweep/*.json as read and checked (bench.sweep)
    sweep_problems: tuple[str, ...] = ()  # one line per sweep record that could not be used
    stale_scores: tuple[str, ...] = ()  # why scores.json, left out (scores None), describes other samples

    @classmethod
    def from_json(cls, folder: Path, results: Any, scores: Any | None, clip_rows: list[dict[str, Any]],
                  manifest: Any = None, stale: tuple[Path, ...] = ()) -> RunData:
        """From the two documents as read (ValueError naming the file and the field when one does not fit)."""
        scores_view = Scores.from_json(scores, source=folder / "scores.json") if scores is not None else None
        return cls(folder, RunResults.from_json(results, source=folder / "results.json"), scores_view, clip_rows,
                   manifest, stale)

    @property
    def models(self) -> Mapping[str, ModelResult]:
        return self.results.models

    @property
    def scores_json(self) -> dict[str, Any]:
        """scores.json as read ({} before the score pass), for Table I and the figures, which read it whole."""
        return dict(self.scores.data) if self.scores is not None else {}

    def display_name(self, model: str) -> str:
        return self.models[model].display_name if model in self.models else model

    def weights_kind(self, model: str) -> str:
        kind = self.models[model].weights_kind if model in self.models else None
        if kind is None and self.scores is not None and model in self.scores.models:
            kind = self.scores.models[model].weights
        return kind or "unknown"

    @property
    def random_models(self) -> set[str]:
        return {m for m in self.models if self.weights_kind(m) == "random"}


def load_run(folder: Path) -> RunData:
    """Read what the passes wrote; raises ValueError naming the file when results.json is missing or foreign."""
    from bench.evaluate import stale_files
    from bench.manifest import ManifestError
    from bench.scoring.records import read_clip_values, read_current_scores
    from bench.sweep import read_sweeps

    run = RunFolder(folder)
    try:
        results = RunResults.read(run.results_path)
    except FileNotFoundError as err:
        raise ValueError(f"{run.results_path}: no results.json here (run samuel-eval --out {folder} first)") from err
    try:
        manifest = run.read_manifest()
    except ManifestError:
        manifest = None
    try:
        stale = stale_files(run)
    except (ValueError, OSError):
        stale = []
    scores, stale_scores = read_current_scores(run, results)
    if stale_scores:  # no table, figure or list may show numbers of other samples under this run's name
        scores = None
    view = Scores.from_json(scores, source=run.scores_path) if scores is not None else None
    sweeps, sweep_problems = read_sweeps(folder / "sweep")
    return RunData(folder, results, view, read_clip_values(scores) if scores else [], manifest, tuple(stale),
                   tuple(sweeps), tuple(sweep_problems), tuple(stale_scores))


# -- sections ---------------------------------------------------------------------------------------------------


def _section(section_id: str, title: str, body: Iterable[str]) -> str:
    return f'<section id="{esc(section_id)}">\n<h2>{esc(title)}</h2>\n' + "\n".join(body) + "\n</section>"


def _random_banner(run: RunData) -> str:
    random = sorted(run.random_models)
    if not random:
        return ""
    items = "".join(f"<li>{esc(run.display_name(m))}: {esc(_weights_message(run, m))}</li>" for m in random)
    return ('<div class="banner" id="random-weights"><strong>RANDOM WEIGHTS.</strong> These models ran with '
            "randomly initialised weights of the real architecture. Their parameter counts and times are valid "
            "efficiency measurements; anything they generated or scored is plumbing only, never a quality result, "
            f"and never appears in Table I.<ul>{items}</ul></div>")


def _weights_message(run: RunData, model: str) -> str:
    weights = run.models[model].weights if model in run.models else None
    return weights.message if weights is not None and weights.message is not None else "random weights"


def _table1_section(run: RunData) -> str:
    if run.stale_scores:
        stale = stale_table1(list(run.stale_scores), rescore_command(run.results.provenance.command))
        return _section("quality", "Table I: quality", [to_html(stale, "table1")])
    body = []
    if run.scores is None:
        body.append("<p>Not scored yet: run the score pass (<code>samuel-eval ... --passes score</code>).</p>")
    body.append(to_html(table1(run.scores_json, run.results), "table1"))
    random_table = random_scores_table(run)
    if random_table is not None:
        body.append(to_html(random_table, "table1-random"))
    return _section("quality", "Table I: quality", body)


def random_scores_table(run: RunData) -> Table | None:
    """Per-clip means of random-weight models scored with --score-random, apart from Table I and labelled."""
    if run.scores is None:
        return None
    entries = {m: e for m, e in run.scores.models.items() if e.is_random}
    metrics = sorted({k for e in entries.values() for k in e.per_clip if registered_metric(k)})
    if not entries or not metrics:
        return None
    table = Table("Scored with RANDOM weights: plumbing check only, not a quality result; mean [95% CI], n",
                  ["Model", *metrics])
    for model, entry in entries.items():
        table.add([Cell(f"{run.display_name(model)} (RANDOM)")]
                  + [estimate_cell(entry.per_clip.get(k), lambda x: f"{x:.3g}") for k in metrics])
    table.notes.append("These rows check that generation and scoring run end to end; the numbers describe "
                       "untrained networks.")
    return table


def paired_table(run: RunData) -> Table | None:
    """Paired differences from scores.json: per-clip metrics (model minus the baseline, on the items both have) and
    set statistics (one model minus another on the same resamples), each with its raw and Holm-adjusted p."""
    if run.scores is None:
        return None
    table = Table("Paired differences: model minus baseline on matched items; mean [95% CI], n, p",
                  ["Model", "Versus", "Metric", "Difference", "p (two-sided)", "p (Holm, per family)"])
    families: dict[str, int] = {}
    tests: set[str] = set()
    for model, entry in run.scores.models.items():
        label = run.display_name(model) + (" (RANDOM)" if entry.is_random else "")
        rows = [(metric, d) for metric, d in sorted(entry.paired.items())
                if registered_metric(metric)]  # not e.g. the shuffled-pairs anchor of a scores.json before v2
        rows = [(metric, d, _per_clip_test(d)) for metric, d in rows]
        rows += [(f"{s.metric} ({s.embedder})", s.difference, SET_TEST) for s in entry.set_paired]
        for metric, d, test in rows:
            versus_label = run.display_name(d.versus) + (" (RANDOM)" if d.versus in run.random_models else "")
            p = _p_cell(d.p_value)
            if p.value is not None:
                p = Cell(p.display, p.value, note=_p_note(test, d))
                tests.add(test)
            table.add([Cell(label), Cell(versus_label), Cell(metric), estimate_cell(d.estimate, lambda x: f"{x:+.3g}"),
                       p, _p_cell(d.p_holm, d.family)])
            if d.family:
                families[d.family] = max(families.get(d.family, 0), _family_size(d))
    if not table.rows:
        return None
    table.notes.append("Difference: the mean paired difference with its 95% CI, an expanded percentile bootstrap "
                       f"(Student's t below {MIN_BOOTSTRAP_UNITS} items or songs; a song's windows resampled "
                       "together; each row's method is in scores.json); a model and its baseline are compared only "
                       "on items both have. Set statistics are compared on the same resamples of the items.")
    table.notes.extend(f"p ({test}): {P_TESTS[test]}." for test in sorted(tests))
    table.notes.append(_holm_note(families))
    return table


SIGN_FLIP_TEST, BOOTSTRAP_TEST, SET_TEST = "sign-flip", "bootstrap", "set bootstrap"
P_TESTS = {
    SIGN_FLIP_TEST: "per-clip differences: Fisher's sign-flip randomisation test of the mean difference (when "
                    "items are windows of songs, a song's windows are flipped together), exact when the two "
                    "models' values are exchangeable on each item; with a mean difference of 0 but a skewed "
                    "distribution of differences it fires more often than its level. With U items (or songs) p "
                    "cannot fall below 2 / 2^U (U = 5: 0.0625), so at a few items a CI that excludes 0 can sit "
                    "beside p above 0.05; each p cell says its floor",
    BOOTSTRAP_TEST: "per-clip differences scored before the sign-flip test: the bootstrap test (resamples centred "
                    "on H0), liberal in the far tail at small n",
    SET_TEST: "set statistics: the bootstrap test on the shared resamples (their differences centred on H0); "
              "conservative in simulations (0.3-1.3% at the 5% level)",
}


def _p_note(test: str, d: Any) -> str:
    """A p cell's note: its test, and for an enumerated sign-flip test the smallest p it can give."""
    floor = sign_flip_floor(d.estimate.get("method")) if test == SIGN_FLIP_TEST else None
    if floor is not None:
        return f"sign-flip test, all {round(2 / floor)} sign vectors: p is at least {floor:.3g}"
    return f"{test} test"


def _per_clip_test(d: Any) -> str:
    """The test behind a per-clip difference's p, from its stored method (scores.json before the sign-flip test
    named none: they were bootstrap tests)."""
    return SIGN_FLIP_TEST if names_sign_flip_test(d.estimate.get("method")) else BOOTSTRAP_TEST


FAMILY_MEANS = {PER_CLIP_FAMILY: PER_CLIP_FAMILY_MEANS,
                "set": "every paired comparison of a set statistic (FAD, KAD, APA) across models and embedders"}


def _p_cell(p: float | None, family: str = "") -> Cell:
    if p is None or not math.isfinite(p):
        return Cell("—")
    return Cell(f"{p:.3g}", p, note=f"Holm-adjusted over the family {family!r}" if family else "")


def _family_size(d: Any) -> int:
    size = d.estimate.get("family_size")
    return int(size) if isinstance(size, int) and not isinstance(size, bool) else 0


def _holm_note(families: Mapping[str, int]) -> str:
    """Which p-values are Holm-adjusted, over which family (and its size m when stored)."""
    if not families:
        return ("p (Holm): not in this scores.json (scored before the adjustment); the raw p-values are not "
                "corrected for multiplicity.")
    parts = [f"'{name}' = {FAMILY_MEANS.get(name, name)}" + (f", m = {m} tests" if m else "")
             for name, m in sorted(families.items())]
    return ("p (Holm): p-values Holm-adjusted per family of comparisons (Holm 1979; family-wise error rate under "
            "any dependence); families: " + "; ".join(parts) + ".")


def _figures_section(figures: list[ReportFigure], problems: Iterable[str] = ()) -> str:
    unused = [f"<p class=\"warning\">Sweep record not used: {esc(p)}</p>" for p in problems]
    if not figures:
        return _section("figures", "Figures", ["<p>No figures: nothing measured or scored yet.</p>", *unused])
    body = unused
    for fig in figures:
        data = base64.b64encode(fig.png).decode("ascii")
        body.append(f'<figure id="figure-{esc(fig.key)}"><img class="report-figure" data-figure="{esc(fig.key)}" '
                    f'alt="{esc(fig.alt)}" src="data:image/png;base64,{data}">'
                    f"<figcaption><strong>{esc(fig.title)}.</strong> {esc(fig.caption)}</figcaption></figure>")
    return _section("figures", "Figures", body)


def outliers_table(run: RunData, limit: int = 25) -> Table | None:
    found = outliers(run.clip_rows)
    if not found:
        return None
    table = Table("Per-clip outliers: |robust z| > 3.5 within a model and metric (median/MAD; models with at least "
                  "5 clips)",
                  ["Model", "Item", "Sample", "Metric", "Value", "Robust z"])
    for o in found[:limit]:
        random = " (RANDOM)" if o["model"] in run.random_models else ""
        table.add([Cell(run.display_name(o["model"]) + random), Cell(o["item_id"]), Cell(o["sample_id"]),
                   Cell(o["metric"]), Cell(f"{o['value']:.4g}", o["value"]), Cell(f"{o['z']:+.2f}", o["z"])])
    if len(found) > limit:
        table.notes.append(f"{len(found) - limit} more not shown; every value is in DIR/scores/.")
    return table


# -- audio ------------------------------------------------------------------------------------------------------


def encode_excerpt(path: Path, seconds: float = EXCERPT_S, start_s: float = 0.0) -> bytes:
    """``seconds`` of an audio file from ``start_s`` as VBR MP3 bytes (mono or stereo; other layouts are
    averaged)."""
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        rate = f.samplerate
        if start_s:
            f.seek(min(round(start_s * rate), f.frames))
        data = f.read(frames=round(seconds * rate), dtype="float32", always_2d=True)
    if data.shape[0] == 0:
        raise ValueError(f"{path}: no audio frames")
    if data.shape[1] > 2:
        data = data.mean(axis=1, keepdims=True)
    if rate not in MP3_RATES:
        import soxr

        data, rate = soxr.resample(data, rate, 44100), 44100
    data = np.clip(np.nan_to_num(data), -1.0, 1.0)
    buf = io.BytesIO()
    sf.write(buf, data, rate, format="MP3", subtype="MPEG_LAYER_III", compression_level=MP3_QUALITY,
             bitrate_mode="VARIABLE")
    return buf.getvalue()


@dataclass(frozen=True)
class Player:
    label: str
    path: Path | None
    note: str = ""
    start_s: float = 0.0  # where the excerpt starts: the item's window for vocals and references


def players_for(run: RunData, items: int = AUDIO_ITEMS) -> list[tuple[Any, list[Player]]]:
    """A few matched items (the ones most models have samples for, in manifest order): the vocal and the
    reference (their item windows: the seconds the models were given) and every model's current sample."""
    if run.manifest is None:
        return []
    by_item: dict[str, dict[str, Path]] = {}
    for model, entry in run.models.items():
        sample_ids = entry.generation.sample_ids if entry.generation is not None else {}
        for item_id, sid in sample_ids.items():
            path = RunFolder(run.folder).sample_audio(model, item_id, sid, entry.is_random)
            if path.is_file():
                by_item.setdefault(item_id, {})[model] = path
    order = [i for i in run.manifest.items if i.item_id in by_item]
    order.sort(key=lambda i: -len(by_item[i.item_id]))  # stable: manifest order among equals
    out = []
    for item in order[:items]:
        got = by_item[item.item_id]
        # a score-only item (samuel-eval score without --vocals) has no vocal: no player rather than "not found"
        row = [Player("Vocal (input)", _existing(item.vocal), start_s=item.start_s)] if item.vocal else []
        if item.reference and "reference" not in got:
            row.append(Player("Reference (true accompaniment)", _existing(item.reference), start_s=item.start_s))
        # the reference first, then the models in run order
        for model in sorted(run.models, key=lambda m: m != "reference"):
            sample = got.get(model)
            random = model in run.random_models
            label = run.display_name(model) + (" [RANDOM weights: not a quality result]" if random else "")
            row.append(Player(label, sample, "" if sample else _why_no_sample(run, model)))
        out.append((item, row))
    return out


def _why_no_sample(run: RunData, model: str) -> str:
    entry = run.models[model]
    if entry.status == "not run":
        return f"not run: {entry.reason}"
    return entry.generation_note or "no sample for this item"


def _existing(path: str | None) -> Path | None:
    return Path(path) if path and Path(path).is_file() else None


def _audio_section(players: list[tuple[Any, list[Player]]], excerpt_s: float) -> str:
    blocks = []
    for item, row in players:
        cells = []
        for player in row:
            if player.path is None:
                cells.append(f'<div class="player"><div>{esc(player.label)}</div>'
                             f"<em>{esc(player.note or 'file not found')}</em></div>")
                continue
            try:
                data = base64.b64encode(encode_excerpt(player.path, excerpt_s, player.start_s)).decode("ascii")
            except Exception as err:  # one unreadable file costs one player, never the report
                cells.append(f'<div class="player"><div>{esc(player.label)}</div><em>{esc(player.path.name)}: '
                             f"{esc(type(err).__name__)}: {esc(err)}</em></div>")
                continue
            cells.append(f'<div class="player"><div>{esc(player.label)}</div><audio controls preload="metadata" '
                         f'src="data:audio/mpeg;base64,{data}"></audio><div><code>{esc(player.path.name)}</code>'
                         "</div></div>")
        prompt = f" — prompt: {esc(item.prompt)}" if item.prompt else ""
        blocks.append(f'<h3 id="listen-{esc(item.item_id)}">Item <code>{esc(item.item_id)}</code>{prompt}</h3>'
                      f'<div class="players">{"".join(cells)}</div>')
    if not blocks:
        blocks.append("<p>No generated samples in this folder.</p>")
    else:
        blocks.insert(0, f"<p>The first {excerpt_s:g} s of each clip, as VBR MP3 (the files under "
                         "<code>samples/</code> are the lossless originals that were scored).</p>")
    return _section("listening", "Listen: matched items", blocks)


# -- errors and provenance --------------------------------------------------------------------------------------


def _errors_section(run: RunData) -> str:
    rows = []
    for r in run.results.manifest.rejected:
        rows.append(("—", "manifest", r.path, f"rejected: {r.problem}"))
    for model, entry in run.models.items():
        if entry.generation is not None:
            for g in entry.generation.errors:
                rows.append((run.display_name(model), "generate", g.item_id, str(g.message)))
            for problem in entry.generation.record_problems:
                rows.append((run.display_name(model), "records", "", problem))
            for r in entry.generation.redone:  # damaged on disk, generated anew: the numbers use the new file
                rows.append((run.display_name(model), "generate", r.item_id, f"redone: {r.message}"))
            for path in entry.generation.unmatched_files:  # often a misnamed sample beside a "no file" error
                rows.append((run.display_name(model), "generate", "", f"not used: {path} matches no item"))
        if entry.status in ("not run", "failed"):
            rows.append((run.display_name(model), "run", "", f"{entry.status}: {entry.reason}"))
    if run.scores is not None:
        for model, scored in run.scores.models.items():
            for e in scored.errors:
                rows.append((run.display_name(model), "score", *_error_parts(e)))
        for note in run.scores.notes:
            rows.append(("—", "score", "", note))
    body = ["<p>None.</p>"] if not rows else [
        '<table class="errors"><thead><tr><th>Model</th><th>Pass</th><th>Item</th><th>What happened</th>'
        "</tr></thead><tbody>",
        *(f"<tr><td>{esc(a)}</td><td>{esc(b)}</td><td>{esc(c)}</td><td>{esc(d)}</td></tr>" for a, b, c, d in rows),
        "</tbody></table>"]
    if run.stale:
        shown = "".join(f"<li><code>{esc(p.relative_to(run.folder) if p.is_relative_to(run.folder) else p)}</code>"
                        "</li>" for p in run.stale[:STALE_SHOWN])
        more = f"<li>… and {len(run.stale) - STALE_SHOWN} more</li>" if len(run.stale) > STALE_SHOWN else ""
        body.append(f'<h3 id="stale">Files of earlier runs ({len(run.stale)})</h3><p>These files belong to other '
                    "model specs, items or --metrics than this run's; no number above uses them. "
                    f"<code>samuel-eval clean {esc(run.folder)}</code> removes them.</p><ul>{shown}{more}</ul>")
    return _section("errors", "Errors and skipped work", body)


def _error_parts(e: ScoreError) -> tuple[str, str]:
    """(item, message) of a score error; the group it failed in leads the message."""
    return e.item_id, (f"{e.group}: " if e.group else "") + e.message


def _dl(pairs: Iterable[tuple[str, Any]]) -> str:
    return ('<dl class="prov">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(_plain(v))}</dd>" for k, v in pairs)
            + "</dl>")


def _plain(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}={_plain(x)}" for k, x in v.items() if x is not None)  # not "status=, error=..."
    if isinstance(v, (list, tuple)):
        return ", ".join(_plain(x) for x in v)
    if isinstance(v, float) and not math.isfinite(v):
        return "nan"
    return "" if v is None else str(v)


def _budget_text(cfg: Any) -> str:
    """The timing budget as the run applied it: -1 (the option's default) is 150 s per model on a CPU, none on a
    GPU (bench.evaluate.time_budget)."""
    from bench.evaluate import CPU_TIME_BUDGET_S

    budget = cfg.time_budget_s
    if isinstance(budget, (int, float)) and budget >= 0:
        return f"{budget:g} s per model (--time-budget)"
    if str(cfg.extra.get("device") or "cpu").startswith("cuda"):
        return "none (the default on a GPU)"
    return f"{CPU_TIME_BUDGET_S:g} s per model (the default on a CPU)"


def _provenance_section(run: RunData, report_command: str | None) -> str:
    prov, cfg, manifest = run.results.provenance, run.results.config, run.results.manifest
    body = [_dl([
        ("command", prov.command),
        ("report rendered by", report_command or "reports.html.write_report"),
        ("started", prov.started),
        ("git commit", prov.git.commit),
        ("git dirty", prov.git.dirty),
        ("device", prov.device.to_json() if prov.device is not None else None),
        ("platform", prov.platform),
        ("seed", prov.seed),
        ("items", f"{manifest.n} from {manifest.source} (base seed {manifest.base_seed})"),
        ("timing", f"{cfg.timing}, {cfg.time_items} items per model, budget {_budget_text(cfg)}"),
        ("versions (run)", prov.versions),
    ])]
    body.append("<h3>Weights</h3>")
    body.append('<table class="weights"><thead><tr><th>Model</th><th>Weights</th><th>Source</th><th>sha256</th>'
                "<th>Options</th></tr></thead><tbody>")
    for model, entry in run.models.items():
        w = entry.weights
        options = entry.describe.options if entry.describe is not None else {}
        kind = f"{w.kind}; {w.caveat}" if w is not None and w.caveat else (w.kind if w else None)
        body.append(f"<tr><td>{esc(run.display_name(model))}</td><td>{esc(kind)}</td>"
                    f"<td>{esc(w.source if w else None)}</td><td><code>{esc((w.sha256 if w else None) or '—')}</code>"
                    f"</td><td><code>{esc(_plain(options))}</code></td></tr>")
    body.append("</tbody></table>")
    if run.scores is not None:
        sprov = run.scores.provenance
        body.append("<h3>Scoring</h3>")
        body.append(_dl([("command", sprov.command), ("started", sprov.started), ("git commit", sprov.git.commit),
                         ("git dirty", sprov.git.dirty), ("config", run.scores.config),
                         ("versions (score)", sprov.versions),
                         *((f"scorer {name}", s) for name, s in run.scores.scorers.items())]))
    return _section("provenance", "Provenance", body)


def finite_json(value: Any) -> Any:
    """``value`` with every NaN or infinite float as None, so that ``json.dumps`` writes strict JSON (null), which
    JSON.parse and other strict readers accept; the files on disk keep their NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def _data_block(run: RunData) -> str:
    """results.json and scores.json inline, for readers who want the raw numbers, as strict JSON (a NaN or infinite
    number is null: JSON.parse refuses NaN); '<' and '>' are escaped as JSON unicode so no string can close the
    element. Stale scores (other samples than the run's) are left out, and the reason is given instead."""
    data = {"results": run.results.to_json(), "scores": run.scores.data if run.scores is not None else None}
    if run.stale_scores:
        data["scores_not_shown"] = list(run.stale_scores)
    text = json.dumps(finite_json(data), default=str, allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="report-data">{text}</script>'


# -- the page ---------------------------------------------------------------------------------------------------


def render_report(run: RunData, *, excerpt_s: float = EXCERPT_S, report_command: str | None = None) -> str:
    figures = report_figures(run.results, run.scores_json, run.clip_rows, run.sweeps)
    title = f"SAMUeL bench report: {run.folder.name}"
    sections = [
        _table1_section(run),
        _section("efficiency", "Table II: efficiency",
                 [to_html(table2(run.results, load_probe(run.folder)[0]), "table2")]),
        probe_section(run),
    ]
    paired = paired_table(run)
    if paired is not None:
        sections.append(_section("paired", "Paired differences", [to_html(paired, "paired")]))
    sections.append(_figures_section(figures, run.sweep_problems))
    outlier_table = outliers_table(run)
    outlier_body = (to_html(outlier_table, "outliers") if outlier_table else
                    "<p>No clip beyond |z| = 3.5 (robust z needs at least 5 clips per model and metric).</p>")
    sections.append(_section("outliers", "Per-clip outliers", [outlier_body]))
    players = players_for(run)
    listened = {item.item_id: {p.path.resolve() for p in row if p.path is not None} for item, row in players}
    sections.append(worst_items_section(run, encode=encode_excerpt, excerpt_s=excerpt_s,  # reports.worst
                                        listened=listened))
    sections += [_audio_section(players, excerpt_s), _errors_section(run), _provenance_section(run, report_command)]
    nav = " ".join(f'<a href="#{key}">{label}</a>' for key, label in (
        ("quality", "Table I"), ("efficiency", "Table II"), ("figures", "Figures"), ("outliers", "Outliers"),
        ("worst", "Worst clips"), ("listening", "Listen"), ("errors", "Errors"), ("provenance", "Provenance")))
    prov = run.results.provenance
    return "\n".join([
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="samuel-report-figures" content="{esc(",".join(f.key for f in figures))}">',
        f"<title>{esc(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<header><h1>{esc(title)}</h1><p>Run started {esc(prov.started)}; command "
        f"<code>{esc(prov.command)}</code></p>",
        _random_banner(run),
        f"<nav>{nav}</nav></header>",
        *sections,
        _data_block(run),
        "</body></html>",
        "",
    ])


def write_report(folder: Path, out: Path | None = None, *, excerpt_s: float = EXCERPT_S,
                 report_command: str | None = None) -> Path:
    """Render DIR's report to ``out`` (default DIR/report.html), atomically."""
    from samuel.atomic import atomic_write

    run = load_run(folder)
    text = render_report(run, excerpt_s=excerpt_s, report_command=report_command)
    out = out or folder / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
