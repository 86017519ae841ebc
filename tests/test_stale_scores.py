"""The report never shows scores of other samples than the run's: scores.json is compared with results.json's
current samples (items, sample ids, audio sha256) before any table, figure or list reads it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.scoring.records import RANDOM_NOT_SCORED, notes_of_run, stale_scores
from reports.table1 import rescore_command


def _scores(models: dict, score_random: bool = False) -> dict:
    return {"config": {"score_random": score_random},
            "models": {m: {"weights": "files", "clips": [{"item_id": i, "sample_id": s, "sha256": h}
                                                         for i, (s, h) in clips.items()], "errors": []}
                       for m, clips in models.items()}}


def test_scores_of_the_current_samples_are_current() -> None:
    now = {"a": {"x": ("s1", "h1"), "y": ("s2", "h2")}}
    assert stale_scores(_scores(now), now) == []
    # a sidecar that could not be read (sha None) compares by sample id alone
    assert stale_scores(_scores(now), {"a": {"x": ("s1", None), "y": ("s2", "h2")}}) == []


def test_every_way_scores_go_stale_is_named() -> None:
    scored = _scores({"a": {"x": ("s1", "h1"), "y": ("s2", "h2"), "z": ("s3", "h3")}, "gone": {"x": ("g", "g")}})
    now = {"a": {"x": ("s1", "h1"), "y": ("s2", "NEW"), "w": ("s4", "h4")}, "new": {"x": ("n", "n")}}
    reasons = stale_scores(scored, now)
    assert reasons == [
        "a: scored 3 item(s), the run has 3 sample(s); items no longer in the run: z; samples never scored: w; "
        "samples made anew since: y",
        "gone: scored, but not a model of this run",
        "new: 1 sample(s), none scored"]


def test_random_samples_count_only_when_the_score_pass_scored_them() -> None:
    now = {"a": {"x": ("s1", "h1")}, "r": {"x": ("r1", "h")}}
    scored = _scores({"a": {"x": ("s1", "h1")}})
    assert stale_scores(scored, now, random_models={"r"}) == []
    assert stale_scores({**scored, "config": {"score_random": True}}, now, random_models={"r"}) == [
        "r: 1 sample(s), none scored"]


def test_an_older_results_or_scores_file_is_not_compared() -> None:
    assert stale_scores(_scores({"a": {"x": ("s1", "h1")}}), {"a": None}) == []  # results.json without sample ids
    assert stale_scores({"models": {"a": {"weights": "files"}}}, {"a": {"y": ("s", "h")}}) == []  # scores /1


def test_random_weights_notes_come_from_the_models_of_this_run() -> None:
    notes = ["crop", f"samuel: {RANDOM_NOT_SCORED}", f"other: {RANDOM_NOT_SCORED}"]
    now = {"samuel": {"x": ("s", "h")}, "other": {}}  # other: random, no sample now
    assert notes_of_run(notes, now, {"samuel", "other"}) == ["crop", f"samuel: {RANDOM_NOT_SCORED}"]
    assert notes_of_run(notes, {}, set()) == ["crop"]  # samuel dropped from --models


def test_the_rescore_command_keeps_the_run_and_scores_it() -> None:
    assert rescore_command("samuel-eval run --n 2 --passes generate,report --out M") == (
        "samuel-eval run --n 2 --out M --passes score,report")
    assert rescore_command("samuel-eval --passes=generate --out M") == "samuel-eval --out M --passes score,report"
    assert rescore_command("samuel-eval score EV --reference R") == "samuel-eval score EV --reference R"


def _songs(root: Path, n: int) -> None:
    rate = 16_000
    for d in ("voc", "ref", "eval"):
        (root / d).mkdir(parents=True, exist_ok=True)
    t = np.arange(2 * rate) / rate
    for i in range(n):
        sf.write(root / "voc" / f"s{i}.wav", 0.2 * np.sin(2 * np.pi * 220 * (i + 1) * t), rate)
        sf.write(root / "ref" / f"s{i}.wav", 0.2 * np.sin(2 * np.pi * 110 * (i + 1) * t), rate)
        sf.write(root / "eval" / f"s{i}.wav", 0.1 * np.sin(2 * np.pi * 165 * (i + 1) * t), rate)


def test_the_report_after_the_items_change_shows_no_old_scores(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The audit's case: 3 items scored, then --n 2 --passes generate,report: Table I, report.html and samuel-eval
    report showed the 3-item scores beside a results.json of 2."""
    from reports.cli import main

    _songs(tmp_path, 3)
    out = tmp_path / "M"
    base = ["--models", f"reference,outputs:ev={tmp_path / 'eval'}", "--vocals", str(tmp_path / "voc"),
            "--references", str(tmp_path / "ref"), "--duration", "2", "--metrics", "signal", "--resamples", "100",
            "--out", str(out), "--no-progress"]
    assert main([*base, "--n", "3", "--passes", "generate,score,report"]) == 0
    assert "| ev | files |" in (out / "tables" / "table1.md").read_text()
    assert main([*base, "--n", "2", "--passes", "generate,report"]) == 0
    for argv in (None, ["report", str(out)]):
        if argv is not None:
            assert main(argv) == 0
        table = (out / "tables" / "table1.md").read_text()
        assert "| ev |" not in table and "| Reference" not in table
        assert "ev: scored 3 item(s), the run has 2 sample(s); items no longer in the run: s2" in table
        rescore = re.search(r"finished per-clip scores are reused\): (.*)", table).group(1)
        html = (out / "report.html").read_text(encoding="utf-8")
        assert "scores.json is stale" in html and "data-n=" not in html
        data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S).group(1)
        assert json.loads(data)["scores"] is None
    assert "Table I not shown" in capsys.readouterr().err
    assert rescore.endswith("--passes score,report") and "generate" not in rescore
    assert main(rescore.split()[1:]) == 0  # the note's command scores the current samples
    table = (out / "tables" / "table1.md").read_text()
    assert "| ev | files |" in table and "stale" not in table


def test_a_model_with_no_scored_clip_is_named_in_table1(tmp_path: Path) -> None:
    """A model whose every item failed (no reference accompaniment; unreadable files) left Table I without a word."""
    from reports.cli import main

    _songs(tmp_path, 2)
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(2):
        (bad / f"s{i}.wav").write_text("not audio")
    out = tmp_path / "E"
    assert main(["--models", f"reference,outputs:ev={tmp_path / 'eval'},outputs:bad={bad}", "--vocals",
                 str(tmp_path / "voc"), "--n", "2", "--duration", "2", "--metrics", "signal", "--resamples", "100",
                 "--passes", "generate,score,report", "--out", str(out), "--no-progress"]) == 1
    table = (out / "tables" / "table1.md").read_text()
    assert "| ev | files |" in table
    assert ("Models of this run without scores: Reference (ground truth): no row, no sample: every item failed (2), "
            "e.g. s0: item 's0': the manifest names no reference accompaniment (pass --references DIR") in table
    assert "bad: no row, no sample: every item failed (2), e.g. s0: output for item 's0'" in table
