"""The HTML report without a browser: tables as HTML (golden), escaping of every user string, self-containment,
the embedded figures and audio, random-weight labelling, `samuel-eval report DIR` re-rendering without
recomputing, the resumable time pass and the run's overall progress. The browser test is test_report_browser.py.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from reports.tables import Cell, Table, to_html

FAKE = "fake-noise"
HOSTILE = "<script>alert(1)</script>"
HOSTILE_FILE = "<img src=x onerror=alert(2)>.wav"  # a file name cannot hold the '/' of </script>
pytestmark = pytest.mark.filterwarnings("ignore:.*sample rate is 16000 Hz:UserWarning")


def test_to_html_golden() -> None:
    table = Table("T <1>", ["Model", "PQ"], notes=["a & b"])
    table.add([Cell("M"), Cell("7.00 [6.50, 7.50], n=10", 7.0, (6.5, 7.5), 10)])
    table.add([Cell("paper"), Cell("7.92†", 7.92, note='outside our "CI"', flagged=True)])
    assert to_html(table, "t1") == (
        '<table class="results" id="t1">\n'
        "<caption>T &lt;1&gt;</caption>\n"
        '<thead><tr><th scope="col">Model</th><th scope="col">PQ</th></tr></thead>\n'
        "<tbody>\n"
        '<tr><th scope="row">M</th><td data-value="7.0" data-ci-low="6.5" data-ci-high="7.5" data-n="10">'
        "7.00 [6.50, 7.50], n=10</td></tr>\n"
        '<tr><th scope="row">paper</th><td data-value="7.92" title="outside our &quot;CI&quot;" class="flagged">'
        "7.92†</td></tr>\n"
        "</tbody></table>\n"
        '<ol class="notes" id="t1-notes"><li>a &amp; b</li></ol>\n')


def test_to_html_escapes_every_cell_and_column() -> None:
    table = Table(HOSTILE, [HOSTILE], notes=[HOSTILE])
    table.add([Cell(HOSTILE, note=HOSTILE)])
    out = to_html(table, HOSTILE)
    assert "<script" not in out and out.count("&lt;script&gt;") == 7  # id twice, caption, column, title, cell, note


# -- a small run folder -----------------------------------------------------------------------------------------


def _sine(path: Path, seconds: float, freq: float, rate: int = 44_100) -> None:
    t = np.arange(int(seconds * rate)) / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two items (one vocal named like markup, one plain; the prompt is a script tag), a fake model and the
    reference, signal + adherence."""
    from fake_generators import NoiseGenerator

    from baselines import registry
    from reports.cli import main

    registry.register(FAKE, "fake_generators:NoiseGenerator")
    root = tmp_path_factory.mktemp("report-run")
    vocals, refs = root / "vocals", root / "references"
    for k, name in enumerate((HOSTILE_FILE, "plain.wav")):
        _sine(vocals / name, 3.0, 220.0 * (k + 2))
        _sine(refs / Path(name).name, 3.0, 110.0 * (k + 2))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(NoiseGenerator, "calls", 0)
        assert main(["--models", f"{FAKE},reference", "--vocals", str(vocals), "--references", str(refs),
                     "--prompt", HOSTILE, "--n", "2", "--duration", "3", "--metrics", "signal,adherence",
                     "--time-items", "2", "--resamples", "100", "--out", str(root / "run"), "--no-progress"]) == 0
    return root / "run"


def test_the_run_writes_a_self_contained_report(run_dir: Path) -> None:
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    assert 'http-equiv="Content-Security-Policy"' in text and 'content="default-src &#x27;none&#x27;' in text
    # nothing is fetched: every src is inline data
    srcs = re.findall(r'\bsrc="([^"]*)"', text)
    assert srcs and all(s.startswith("data:") for s in srcs)
    assert not re.search(r'\bhref="(?!#)', text)
    assert '<table class="results" id="table1">' in text and '<table class="results" id="table2">' in text


def test_user_strings_are_escaped(run_dir: Path) -> None:
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    assert HOSTILE not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # the prompt, as text
    assert "&lt;img src=x onerror=alert(2)&gt;.wav" in text  # the vocal player's file name, as text
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
    assert data is not None and "<" not in data.group(1)
    assert json.loads(data.group(1))["results"]["config"]["prompt"] == HOSTILE  # the raw JSON round-trips


def test_the_embedded_data_is_strict_json(run_dir: Path) -> None:
    """The block held NaN (two items: no timing CI; n = 2 intervals), which JSON.parse refuses."""
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    raw = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S).group(1)

    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    data = json.loads(raw, parse_constant=refuse)
    assert data["scores"] is not None and data["results"]["models"]


def test_finite_json_turns_non_finite_numbers_into_null() -> None:
    from reports.html import finite_json

    got = finite_json({"a": [1.0, float("nan"), {"b": float("-inf")}], "c": (float("inf"), "x", 2)})
    assert got == {"a": [1.0, None, {"b": None}], "c": [None, "x", 2]}


def test_figures_are_declared_and_embedded(run_dir: Path) -> None:
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    declared = re.search(r'<meta name="samuel-report-figures" content="([^"]*)">', text).group(1).split(",")
    assert "distributions" in declared
    assert "outliers" not in declared  # 2 clips per model: too few for robust z
    for key in declared:
        m = re.search(rf'data-figure="{key}"[^>]*src="data:image/png;base64,([^"]+)"', text)
        assert m is not None, key
        assert base64.b64decode(m.group(1))[:8] == b"\x89PNG\r\n\x1a\n"


def test_audio_players_hold_decodable_excerpts(run_dir: Path) -> None:
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    clips = re.findall(r'<audio controls preload="metadata" src="data:audio/mpeg;base64,([^"]+)"', text)
    assert len(clips) == 2 * 3  # two items: the vocal, the reference and the fake model
    # both items are among the worst clips too: that section links to their players instead of a second copy
    worst = re.search(r'<section id="worst">(.*?)</section>', text, re.S).group(1)
    assert "<audio" not in worst
    for target in re.findall(r'<a href="#(listen-[^"]+)">Listen</a>', worst):
        assert f'<h3 id="{target}">' in text
    assert len(re.findall(r'<a href="#listen-', worst)) == 2
    audio, rate = sf.read(io.BytesIO(base64.b64decode(clips[0])))
    assert rate in (16_000, 44_100) and 2.5 < len(audio) / rate < 3.5  # the whole 3 s item (shorter than 10 s)


def test_report_marks_random_rows(tmp_path: Path) -> None:
    from reports.html import RunData, render_report

    results = {"format": "samuel-bench-results/1", "models": {
        "samuel": {"describe": {"display_name": "SAMUeL"}, "status": "run",
                   "weights": {"kind": "random", "message": "samuel: RANDOM weights"}}}}
    scores = {"format": "samuel-bench-scores/2", "models": {"samuel": {"weights": "random", "per_clip": {
        "signal.loudness_lufs": {"value": -20.0, "ci_low": -21.0, "ci_high": -19.0, "n": 4}}}}}
    text = render_report(RunData.from_json(tmp_path, results, scores, []))  # an older (/1) results.json
    assert 'id="random-weights"' in text and "RANDOM WEIGHTS" in text
    assert 'id="table1-random"' in text and "SAMUeL (RANDOM)" in text
    # Table I itself never shows a random row
    table1 = text[text.index('id="table1"'):text.index("</table>", text.index('id="table1"'))]
    assert "SAMUeL" not in table1.split("</thead>")[1]


def test_errors_section_lists_unused_files_of_an_outputs_folder(tmp_path: Path) -> None:
    from reports.html import RunData, render_report

    generation = {"n_ok": 1, "n_error": 1, "errors": [{"item_id": "syn-001", "message": "no file for item 'syn-001'"}],
                  "record_problems": [], "sample_ids": {}, "unmatched_files": ["/elsewhere/syn_001 (1).wav"]}
    results = {"format": "samuel-bench-results/1", "models": {  # the fields this section reads
        "ac": {"describe": {"display_name": "ac"}, "status": "run", "generation": generation,
               "weights": {"kind": "files", "message": "ac: pre-generated files"}}}}
    text = render_report(RunData.from_json(tmp_path, results, None, []))
    errors = text[text.index('<table class="errors">'):]
    assert "no file for item &#x27;syn-001&#x27;" in errors
    assert "not used: /elsewhere/syn_001 (1).wav matches no item" in errors


def test_paired_differences_show_holm_p_per_family(tmp_path: Path) -> None:
    from reports.html import P_TESTS, RunData, paired_table, render_report

    results = {"format": "samuel-bench-results/1", "models": {
        m: {"describe": {"display_name": m.upper()}, "status": "run", "weights": {"kind": "pretrained"}}
        for m in ("samuel", "musicgen")}}
    diff = {"value": -0.25, "ci_low": -0.4, "ci_high": -0.1, "n": 20, "versus": "samuel"}
    scores = {"format": "samuel-bench-scores/2", "models": {
        "samuel": {"weights": "pretrained"},
        "musicgen": {"weights": "pretrained", "paired": {
            "aesthetics.PQ": {**diff, "p_value": 0.004, "p_holm": 0.032, "family": "per-clip", "family_size": 8},
            "aesthetics.CE": {**diff, "p_value": 0.2, "p_holm": 1.0, "family": "per-clip", "family_size": 8}},
            "sets": {"vggish": {"paired": {"fad": {"samuel": {**diff, "p_value": 0.01, "p_holm": 0.03,
                                                              "family": "set", "family_size": 3}}}}}}}}
    run = RunData.from_json(tmp_path, results, scores, [])
    table = paired_table(run)
    assert table is not None and table.columns[-2:] == ["p (two-sided)", "p (Holm, per family)"]
    # a scores.json from before the sign-flip test names no test: its per-clip p-values were bootstrap ones
    assert {r[4].note for r in table.rows} == {"bootstrap test", "set bootstrap test"}
    assert [n for n in table.notes if n.startswith("p (")][:2] == [
        f"p (bootstrap): {P_TESTS['bootstrap']}.", f"p (set bootstrap): {P_TESTS['set bootstrap']}."]
    rows = {r[2].display: (r[4].display, r[5].display, r[5].note) for r in table.rows}
    assert rows == {"aesthetics.CE": ("0.2", "1", "Holm-adjusted over the family 'per-clip'"),
                    "aesthetics.PQ": ("0.004", "0.032", "Holm-adjusted over the family 'per-clip'"),
                    "fad (vggish)": ("0.01", "0.03", "Holm-adjusted over the family 'set'")}
    holm = table.notes[-1]
    assert holm.startswith("p (Holm): p-values Holm-adjusted per family of comparisons")
    assert "'per-clip' = every per-clip paired comparison of the run" in holm and "m = 8 tests" in holm
    assert "'set' = every paired comparison of a set statistic" in holm and "m = 3 tests" in holm
    assert "p (Holm, per family)" in render_report(run)
    scores["models"]["musicgen"]["paired"]["aesthetics.PQ"]["method"] = (
        "expanded percentile bootstrap of the mean paired difference a - b, 1000 resamples, seed 0; p: sign-flip "
        "randomisation test over items, 9999 random sign vectors, seed 0")
    table = paired_table(RunData.from_json(tmp_path, results, scores, []))
    assert {r[2].display: r[4].note for r in table.rows}["aesthetics.PQ"] == "sign-flip test"
    assert f"p (sign-flip): {P_TESTS['sign-flip']}." in table.notes
    # five items: every sign vector enumerated, and no p below 2/32 -- the cell says so
    scores["models"]["musicgen"]["paired"]["aesthetics.PQ"]["method"] = (
        "Student's t interval of the mean paired difference a - b over 5 items: fewer than 10 units, where a "
        "bootstrap interval cannot be wider than the data; p: sign-flip randomisation test over items, all 32 "
        "sign vectors (exact)")
    table = paired_table(RunData.from_json(tmp_path, results, scores, []))
    assert {r[2].display: r[4].note for r in table.rows}["aesthetics.PQ"] == ("sign-flip test, all 32 sign "
                                                                             "vectors: p is at least 0.0625")
    assert table.notes[0].startswith("Difference: the mean paired difference with its 95% CI, an expanded "
                                     "percentile bootstrap (Student's t below 10 items or songs;")
    # a scores.json from before the adjustment: no Holm p, and the note says the raw p are uncorrected
    for d in scores["models"]["musicgen"]["paired"].values():
        del d["p_holm"], d["family"], d["family_size"]
    del scores["models"]["musicgen"]["sets"]
    table = paired_table(RunData.from_json(tmp_path, results, scores, []))
    assert [r[5].display for r in table.rows] == ["—", "—"] and "not corrected for multiplicity" in table.notes[-1]


def test_encode_excerpt_cuts_and_downmixes(tmp_path: Path) -> None:
    from reports.html import encode_excerpt

    path = tmp_path / "six.wav"
    sf.write(path, np.zeros((22_050 * 4, 6), dtype=np.float32), 22_050)
    audio, rate = sf.read(io.BytesIO(encode_excerpt(path, seconds=1.0)))
    assert rate == 22_050 and audio.ndim == 1 and abs(len(audio) / rate - 1.0) < 0.1
    (tmp_path / "bad.wav").write_bytes(b"RIFF not audio")
    with pytest.raises(sf.LibsndfileError):
        encode_excerpt(tmp_path / "bad.wav")


# -- samuel-eval report and resume ------------------------------------------------------------------------------


def _stamps(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")
            if p.is_file() and p.suffix not in (".html",) and "tables" not in p.parts}


def test_report_rerenders_without_recomputing(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reports.cli import main

    before = _stamps(run_dir)
    html = run_dir / "again.html"
    assert main(["report", str(run_dir), "--html", str(html)]) == 0
    assert _stamps(run_dir) == before  # no sample, timing, score or results file touched
    assert html.is_file() and "samuel-eval report" in html.read_text(encoding="utf-8")
    assert str(html) in capsys.readouterr().out


def test_report_on_a_folder_without_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reports.cli import main

    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "results.json") in err and "no results.json" in err


def test_a_resumed_run_reuses_samples_timing_and_scores(run_dir: Path, capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path) -> None:
    import shutil

    from fake_generators import NoiseGenerator

    from reports.cli import main

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    results = json.loads((copy / "results.json").read_text())
    argv = results["config"]
    timing = copy / "timing" / f"{FAKE}.rank0.json"
    before = timing.read_bytes()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(NoiseGenerator, "calls", 0)
        assert main(["--models", f"{FAKE},reference", "--vocals", argv["vocals"], "--references",
                     argv["references"], "--prompt", HOSTILE, "--n", "2", "--duration", "3", "--metrics",
                     "signal,adherence", "--time-items", "2", "--resamples", "100", "--out", str(copy),
                     "--no-progress"]) == 0
        assert NoiseGenerator.calls == 0  # nothing generated, nothing timed
    err = capsys.readouterr().err
    assert "reusing" in err and "2 already there" in err
    assert timing.read_bytes() == before
    assert "== stage 3/4: score" in err and "== done: 4/4 stages" in err


def test_stages_count_and_refuse_extra() -> None:
    from bench.progress import Stages, format_elapsed

    lines: list[str] = []
    clock = iter([0.0, 65.0, 3725.0, 3726.0]).__next__
    stages = Stages(2, lines.append, clock=clock)
    stages.start("a")
    stages.start("b")
    stages.finish()
    assert lines == ["== stage 1/2: a (0% done, 0:01:05 elapsed) ==",
                     "== stage 2/2: b (50% done, 1:02:05 elapsed) ==",
                     "== done: 2/2 stages in 1:02:06 =="]
    with pytest.raises(ValueError, match="beyond"):
        stages.start("c")
    assert format_elapsed(59.9) == "0:00:59"


def test_provenance_values_leave_out_empty_fields() -> None:
    # the scorers' provenance read "status=, error=audiobox-aesthetics: weights not found ..."
    from reports.html import _plain

    assert _plain({"status": None, "error": "weights not found", "n": 3, "x": float("nan")}) == (
        "error=weights not found, n=3, x=nan")


def test_the_provenance_gives_the_timing_budget_the_run_applied() -> None:
    """The report's provenance read "budget -1.0": the option's default, which means 150 s per model on a CPU and
    none on a GPU."""
    from bench.results import RunConfig
    from reports.html import _budget_text

    assert _budget_text(RunConfig.from_json({"time_budget_s": -1.0, "device": "cpu"})) == (
        "150 s per model (the default on a CPU)")
    assert _budget_text(RunConfig.from_json({"time_budget_s": -1.0, "device": "cuda:0"})) == (
        "none (the default on a GPU)")
    assert _budget_text(RunConfig.from_json({"time_budget_s": 60.0})) == "60 s per model (--time-budget)"


def test_provenance_names_the_score_pass_git_state_beside_the_runs(tmp_path: Path) -> None:
    """A run generated at one commit and scored at another (or from an edited checkout): the report showed only
    the generation's git state. The Scoring block now names the score pass's own commit and dirty flag."""
    from reports.html import RunData, render_report

    results = {"format": "samuel-bench-results/1", "provenance": {"git": {"commit": "aaaa111", "dirty": False}},
               "models": {"samuel": {"describe": {"display_name": "SAMUeL"}, "status": "run",
                                     "weights": {"kind": "pretrained"}}}}
    scores = {"format": "samuel-bench-scores/2", "provenance": {"git": {"commit": "bbbb222", "dirty": True},
                                                                "command": "samuel-eval score RUN"},
              "models": {"samuel": {"weights": "pretrained"}}}
    html = render_report(RunData.from_json(tmp_path, results, scores, []))
    scoring = html[html.index("<h3>Scoring</h3>"):]
    assert "<dt>git commit</dt><dd>bbbb222</dd><dt>git dirty</dt><dd>True</dd>" in scoring
    assert "<dt>git commit</dt><dd>aaaa111</dd><dt>git dirty</dt><dd>False</dd>" in html[:html.index("<h3>Scoring")]
