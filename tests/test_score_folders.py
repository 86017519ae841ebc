"""`samuel-eval score EVAL_DIR --reference REF_DIR` (bench.score_folders, issue 14 part 4) and the `outputs:NAME=DIR`
recipe for systems that do not install here (issue 14 part 1).

Folders of a few 3-4 s files in mixed formats, rates and channel counts; only the weight-free groups (signal,
adherence) run, so every test takes seconds. Each test names what it guards.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.evaluate import EvalConfig, evaluate
from bench.options import UsageError
from bench.score_folders import ScoreFolders, ScoreFoldersResult, folder_items, score_folders, summary_lines
from reports.cli import main


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _tone(seconds: float, rate: int, channels: int = 1, freq: float = 220.0, seed: int = 0) -> np.ndarray:
    """A two-partial tone with a 2 Hz swell and a little noise: pitched, with onsets, never silent."""
    t = np.arange(round(seconds * rate)) / rate
    noise = np.random.default_rng(seed).standard_normal(t.size)
    mono = (0.3 * np.sin(2 * np.pi * freq * t) + 0.15 * np.sin(2 * np.pi * 1.5 * freq * t) + 0.01 * noise) * (
        0.6 + 0.4 * np.sin(2 * np.pi * 2 * t) ** 2)
    return np.stack([mono, 0.8 * mono], axis=1) if channels == 2 else mono


def _write(path: Path, audio: np.ndarray, rate: int, **kwargs: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, rate, **kwargs)
    return path


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path, Path]:
    """EVAL_DIR: wav 48 kHz stereo 3 s, flac 22.05 kHz mono 3.5 s, ogg 44.1 kHz stereo 4 s. REF_DIR: the same stems
    (one upper-case, one longer than its eval file) as flac, 16 kHz wav and mp3. Vocals: mono wavs."""
    ev, ref, voc = tmp_path / "system-x", tmp_path / "refs", tmp_path / "vocals"
    _write(ev / "a.wav", _tone(3.0, 48_000, 2, 220, 1), 48_000)
    _write(ev / "b.flac", _tone(3.5, 22_050, 1, 247, 2), 22_050)
    _write(ev / "c.ogg", _tone(4.0, 44_100, 2, 262, 3), 44_100, format="OGG", subtype="VORBIS")
    _write(ref / "a.flac", _tone(5.0, 44_100, 2, 220, 4), 44_100)
    _write(ref / "B.wav", _tone(3.5, 16_000, 1, 247, 5), 16_000)
    _write(ref / "c.mp3", _tone(4.0, 44_100, 2, 262, 6), 44_100, format="MP3")
    for stem, freq in (("a", 440), ("b", 494), ("c", 523)):
        _write(voc / f"{stem}.wav", _tone(4.0, 44_100, 1, freq, 7), 44_100)
    return ev, ref, voc


def _score(*args: str) -> int:
    return main(["score", *map(str, args), "--no-progress", "--resamples", "200"])


def _run(ev: Path, ref: Path, out: Path, *, vocals: Path | None = None, metrics: tuple[str, ...] = ("signal",),
         log: list[str] | None = None) -> ScoreFoldersResult:
    """The command's work without its report pass (the CLI test renders one; here it would only cost seconds)."""
    cfg = ScoreFolders(ev, reference=ref, vocals=vocals, out=out, metrics=metrics, resamples=200, no_progress=True)
    return score_folders(cfg, log=(log.append if log is not None else lambda s: None))


def _scores(out: Path) -> dict:
    return json.loads((out / "scores.json").read_text())


@pytest.mark.slow  # the report's figures and players take most of it
def test_two_folders_of_mixed_formats_score_like_a_direct_computation(folders, tmp_path, capsys) -> None:
    """The one-liner: items by stem, each as long as its eval file; scores.json, Table I and the report written;
    every per-clip number equals the metric computed straight on the file (resampled to 44.1 kHz)."""
    from bench.metrics.signal import signal_metrics
    from samuel.audio import load_audio

    ev, ref, _ = folders
    out = tmp_path / "out"
    assert _score(ev, "--reference", ref, "--metrics", "signal", "--out", out) == 0
    scores = _scores(out)
    assert set(scores["models"]) == {"reference", "system-x"}
    manifest = json.loads((out / "manifest.json").read_text())
    durations = {i["item_id"]: i["duration_s"] for i in manifest["items"]}
    assert durations == pytest.approx({"a": 3.0, "b": 3.5, "c": 4.0})
    assert Path(manifest["items"][1]["reference"]).name == "B.wav"  # stems match whatever their case
    assert (out / "tables" / "table1.md").is_file() and (out / "report.html").is_file()
    report = (out / "report.html").read_text()
    assert "Vocal (input)" not in report  # no vocals given: no empty player

    clips = {c["item_id"]: c["values"] for c in scores["models"]["system-x"]["clips"]}
    for item, name in (("a", "a.wav"), ("b", "b.flac"), ("c", "c.ogg")):
        loaded = load_audio(ev / name, min_seconds=0.0)
        direct = dataclasses.asdict(signal_metrics(loaded.samples, 44_100, source_rate=loaded.source_rate))
        assert {f"signal.{k}" for k in direct} == set(clips[item])
        for key, value in direct.items():  # the stored sample is 24-bit FLAC of the same 44.1 kHz audio
            assert clips[item][f"signal.{key}"] == pytest.approx(value, rel=1e-4, abs=1e-5, nan_ok=True), (item, key)
    assert np.isnan(clips["b"]["signal.spectral_flatness"])  # a 22.05 kHz file has nothing in part of the band
    per_clip = scores["models"]["system-x"]["per_clip"]["signal.loudness_lufs"]
    assert per_clip["n"] == 3 and per_clip["ci_low"] <= per_clip["value"] <= per_clip["ci_high"]
    # the longer reference is read over the eval file's 3 s, from 0
    ref_sample = next((out / "samples" / "reference").glob("a__*.flac"))
    assert sf.info(str(ref_sample)).frames == 3 * 44_100
    printed = capsys.readouterr().out
    assert "system-x  signal.loudness_lufs" in printed  # the summary lists metrics Table I has no column for


@pytest.mark.slow
def test_adherence_with_vocals_and_a_note_without(folders, tmp_path) -> None:
    """--vocals gives adherence for every clip and its anchors; without them, asked for by name it is refused, and in
    the default --metrics (every group) it is switched off with a note that names --vocals, and nothing fails."""
    ev, ref, voc = folders
    out = tmp_path / "with"
    assert _run(ev, ref, out, vocals=voc, metrics=("signal", "adherence")).exit_code == 0
    scores = _scores(out)
    chroma = scores["models"]["system-x"]["per_clip"]["adherence.chroma_agreement"]
    assert chroma["n"] == 3 and np.isfinite(chroma["value"])
    assert scores["anchors"], "the reference row gives the adherence anchors"

    out2 = tmp_path / "without"
    with pytest.raises(UsageError, match="adherence needs --vocals DIR"):
        _run(ev, ref, out2, metrics=("signal", "adherence"))
    # the run the default --metrics makes, with only the weight-free groups left in (aesthetics and FAD need weights)
    cfg = ScoreFolders(ev, reference=ref, out=out2, metrics=("signal", "adherence"), resamples=200, no_progress=True)
    manifest, _ = folder_items(ev, ref)
    assert evaluate(cfg.eval_config(len(manifest.items)), log=lambda s: None, manifest=manifest).exit_code == 0
    scores = _scores(out2)
    assert not any(k.startswith("adherence.") for k in scores["models"]["system-x"]["per_clip"])
    assert any("adherence not scored" in n and "--vocals" in n for n in scores["notes"])
    assert scores["models"]["system-x"]["errors"] == []


def test_the_shuffled_anchor_pairs_only_items_with_a_vocal_and_a_reference(folders, tmp_path) -> None:
    """An eval file with neither a reference nor a vocal (``--vocals``) was drawn into the shuffled-pairs anchor:
    a reference accompaniment was paired with its missing vocal, the anchor lost a clip and the run failed."""
    ev, ref, voc = folders
    _write(ev / "zz_unmatched.wav", _tone(3.0, 44_100), 44_100)
    out = tmp_path / "out"
    result = _run(ev, ref, out, vocals=voc, metrics=("signal", "adherence"))
    assert not [f for f in result.run.failures if "anchor" in f"{f.what} {f.message}"], result.run.failures
    anchor = _scores(out)["anchors"]["shuffled_pairs"]["chroma_agreement"]
    assert anchor["n"] == 3 and anchor["n_nonfinite"] == 0


def test_unmatched_duplicate_and_bad_files_are_named_and_the_rest_scored(folders, tmp_path) -> None:
    """A bad eval file, x.wav beside x.flac, an eval file with no reference and a reference no eval file asks for
    are each named; the other files are scored; exit code 1. A stem with a space still matches (item my_song)."""
    ev, ref, _ = folders
    (ev / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all")
    _write(ev / "x.wav", _tone(3.0, 44_100), 44_100)
    _write(ev / "x.flac", _tone(3.0, 44_100), 44_100)
    _write(ev / "d.wav", _tone(3.0, 44_100), 44_100)  # no reference
    _write(ev / "my song.wav", _tone(3.0, 44_100), 44_100)
    _write(ref / "my song.flac", _tone(3.0, 44_100, seed=9), 44_100)
    _write(ref / "z.wav", _tone(3.0, 44_100), 44_100)  # no eval file
    out = tmp_path / "out"
    log: list[str] = []
    result = _run(ev, ref, out, log=log)
    assert result.exit_code == 1
    said = "\n".join(log)
    for name in ("bad.wav", "x.wav", "x.flac", "d.wav", "z.wav"):
        assert name in said, name
    failed = {f.what for f in result.run.failures}
    assert {str(ev / "bad.wav"), str(ev / "x.wav"), str(ev / "x.flac"), "reference/d"} <= failed
    scored = {c["item_id"] for c in _scores(out)["models"]["system-x"]["clips"]}
    assert scored == {"a", "b", "c", "d", "my_song"}
    assert {c["item_id"] for c in _scores(out)["models"]["reference"]["clips"]} == {"a", "b", "c", "my_song"}
    results = json.loads((out / "results.json").read_text())
    assert {Path(r["path"]).name for r in results["manifest"]["rejected"]} >= {"bad.wav", "x.wav", "x.flac"}
    # files already rejected by name are not listed again as unused files of the folder
    assert "unmatched_files" not in results["models"]["system-x"]["generation"]
    assert not any("match no item" in line for line in log)


def test_files_libsndfile_cannot_decode_are_named_in_each_folder(folders, tmp_path) -> None:
    """An .m4a eval file, reference or vocal was passed over in silence: the eval file was simply not scored."""
    ev, ref, voc = folders
    (ev / "m.m4a").write_bytes(b"")
    (ref / "r.aac").write_bytes(b"")
    (voc / "v.wma").write_bytes(b"")
    manifest, _ = folder_items(ev, ref, voc)
    problems = {Path(r.path).name: r.problem for r in manifest.rejected}
    assert set(problems) == {"m.m4a", "r.aac", "v.wma"}
    assert all("which libsndfile cannot decode" in p and "ffmpeg -i" in p for p in problems.values())
    assert {i.item_id for i in manifest.items} == {"a", "b", "c"}


def test_a_rerun_reuses_everything_and_rescores_a_changed_file(folders, tmp_path) -> None:
    ev, ref, _ = folders
    out = tmp_path / "out"
    assert _run(ev, ref, out).exit_code == 0
    first = _scores(out)
    records = sorted((out / "scores").rglob("*.json"))
    stamps = {p: p.stat().st_mtime_ns for p in records}
    log: list[str] = []
    assert _run(ev, ref, out, log=log).exit_code == 0
    assert sum("generate: 0 written, 3 already there" in line for line in log) == 2
    assert {p: p.stat().st_mtime_ns for p in records} == stamps  # no clip was scored again
    assert _scores(out)["models"]["system-x"]["per_clip"] == first["models"]["system-x"]["per_clip"]

    _write(ev / "a.wav", 0.5 * _tone(3.0, 48_000, 2, 220, 1), 48_000)  # same name, new content: about -6 dB
    log.clear()
    assert _run(ev, ref, out, log=log).exit_code == 0
    # the item's sample ids name both files' bytes: both rows read item a anew, nothing else
    assert sum("generate: 1 written, 2 already there" in line for line in log) == 2
    clip = {c["item_id"]: c["values"] for c in _scores(out)["models"]["system-x"]["clips"]}["a"]
    old = {c["item_id"]: c["values"] for c in first["models"]["system-x"]["clips"]}["a"]
    assert clip["signal.loudness_lufs"] == pytest.approx(old["signal.loudness_lufs"] - 6.02, abs=0.05)


def test_bad_usage_exits_2_before_any_work(folders, tmp_path, capsys) -> None:
    ev, ref, _ = folders
    assert _score(ev, "--metrics", "signal", "--out", tmp_path / "o1") == 2
    assert "--reference REF_DIR is required" in capsys.readouterr().err
    assert _score(ev, "--reference", ref, "--out", ev / "scores") == 2  # would read its own samples back
    assert "lies inside EVAL_DIR" in capsys.readouterr().err
    assert _score(tmp_path / "nowhere", "--reference", ref) == 2
    other = tmp_path / "other"
    _write(other / "q.wav", _tone(3.0, 44_100), 44_100)
    assert _score(ev, "--reference", other, "--out", tmp_path / "o2") == 2
    assert "matched by name" in capsys.readouterr().err
    assert _score(ev, "--reference", ref, "--metrics", "nonsense") == 2
    assert _score(ev, "--reference", ref, "--score-on", "mix", "--out", tmp_path / "o1") == 2
    assert "needs --vocals" in capsys.readouterr().err
    assert _score(ev, "--reference", ref, "--fad-reference", tmp_path, "--out", tmp_path / "o3") == 2
    assert "lies inside --fad-reference" in capsys.readouterr().err  # the rows' clips would join the FAD set
    assert not any((tmp_path / o).exists() for o in ("o1", "o2", "o3")) and not (ev / "scores").exists()


def test_row_names_default_out_and_manifest_rules(folders, tmp_path) -> None:
    """The row is named after EVAL_DIR, never shadowing a registered model; the default run folder sits in the
    current folder, not in the user's; items keep their vocal when matched and carry no vocal otherwise."""
    ev, ref, voc = folders
    assert ScoreFolders(ev).row_name == "system-x"
    assert ScoreFolders(tmp_path / "reference").row_name == "reference-files"
    assert ScoreFolders(ev, name="my run").row_name == "my_run"
    assert ScoreFolders(ev).out_dir == Path("samuel-eval-scores") / "system-x"
    (voc / "c.wav").unlink()
    manifest, unmatched = folder_items(ev, ref, voc)
    vocals = {i.item_id: i.vocal for i in manifest.items}
    assert vocals["a"] is not None and vocals["c"] is None
    assert [Path(p).name for p in unmatched.without_vocal] == ["c.ogg"]
    assert all(i.sources_sha256 for i in manifest.items)
    # items go in stem order, as when they were matched by stem: a run folder made then keeps its manifest as it is
    _write(ev / "sub" / "0.wav", _tone(3.0, 44_100), 44_100)
    assert [i.item_id for i in folder_items(ev, ref, voc)[0].items] == ["0", "a", "b", "c"]


def test_the_summary_prints_every_number_with_its_ci_and_n() -> None:
    """Per-clip means, set statistics, the mix view and the crop, each with its 95% CI and n; entries that are not
    estimates (a set's 'matches' text) are skipped."""
    loud = {"value": -11.84, "ci_low": -12.01, "ci_high": -11.49, "n": 3}
    scores = {"models": {"x": {"per_clip": {"signal.loudness_lufs": loud},
                               "sets": {"vggish": {"fad": {"value": 1.254, "ci_low": 1.0, "ci_high": 1.5, "n": 3},
                                                   "note": "text"}}}},
              "mix": {"models": {"x": {"label": "RANDOM", "per_clip": {"signal.loudness_lufs": loud}}}},
              "crop": {"summary": {"n_cropped": 1, "n_items": 3, "min_s": 10.0}}, "notes": ["n1"]}
    assert summary_lines(scores) == [
        "x  signal.loudness_lufs  -11.8 [-12.0, -11.5], n=3",
        "x  fad (vggish)  1.25 [1, 1.5], n=3",
        "x (RANDOM) [mix]  signal.loudness_lufs  -11.8 [-12.0, -11.5], n=3",
        "crop: 1 of 3 item(s) scored on a shorter common window (the shortest 10.00 s; scores.json 'crop' says which "
        "and why)",
        "note: n1"]


def test_the_summary_says_no_ci_where_the_tables_do_and_the_shortest_crop_of_the_cropped_items() -> None:
    """At n = 1 the console printed '[nan, nan]' where Table I says '(no CI)'; its crop line quoted the shortest
    window of every item (an uncropped 0.5 s one) as where the cropped items were cut."""
    one = {"value": -11.84, "ci_low": float("nan"), "ci_high": float("nan"), "n": 1}
    scores = {"models": {"x": {"per_clip": {"signal.loudness_lufs": one}}},
              "crop": {"summary": {"n_cropped": 1, "n_items": 4, "min_s": 0.5, "cropped_min_s": 3.0}}}
    assert summary_lines(scores) == [
        "x  signal.loudness_lufs  -11.8 (no CI), n=1",
        "crop: 1 of 4 item(s) scored on a shorter common window (the shortest 3.00 s; scores.json 'crop' says which "
        "and why)"]


def test_samuel_generates_outputs_match_their_references_and_vocals(folders, tmp_path) -> None:
    """`samuel generate VOCALS -o OUT` writes a.accompaniment.wav for a.wav; `samuel-eval score OUT` matched none
    of them ("no file of REF_DIR has the stem of a file of OUT")."""
    ev, ref, voc = folders
    generated = tmp_path / "generated"
    for path in sorted(ev.iterdir()):
        _write(generated / f"{path.stem}.accompaniment.wav", _tone(3.0, 44_100, 2, 220, 8), 44_100)
    manifest, unmatched = folder_items(generated, ref, voc)
    assert sorted(i.item_id for i in manifest.items) == ["a", "b", "c"]
    assert all(i.reference and i.vocal for i in manifest.items) and not unmatched.without_reference


def test_a_moisesdb_tree_is_refused_with_the_run_that_scores_it(tmp_path) -> None:
    """A MoisesDB tree as REF_DIR or --vocals holds no file per song (each stem is a folder of tracks): read as
    files, every track was a stem of its own and nothing matched ("no file of ... has the stem of ..."). It is
    refused before any work, naming the samuel-eval run that sums the tracks."""
    from bench.manifest import ManifestError

    ev, tree = tmp_path / "out", tmp_path / "moisesdb"
    _write(ev / "1f-uuid.wav", _tone(3.0, 44_100, 2, 220, 0), 44_100)
    for stem, track in (("vocals", "lead"), ("vocals", "backing"), ("drums", "kit"), ("guitar", "g")):
        _write(tree / "1f-uuid" / stem / f"{track}.wav", _tone(3.0, 44_100, 2, 330, 1), 44_100)
    demucs = tmp_path / "separated"
    _write(demucs / "1f-uuid" / "no_vocals.wav", _tone(3.0, 44_100, 2, 220, 2), 44_100)
    for ref, vocals, flag in ((tree, None, "--reference"), (demucs, tree, "--vocals")):
        with pytest.raises(ManifestError, match=rf"{flag} {tree} keeps 1 song\(s\) as folders of stem tracks "
                                                rf"\(MoisesDB layout, e.g. 1f-uuid\).*samuel-eval --vocals {tree} "
                                                rf"--references {tree} --models reference,outputs:NAME={ev}"):
            folder_items(ev, ref, vocals)


def test_trees_of_song_stem_folders_match_by_song_folder(tmp_path) -> None:
    """Outputs kept as OUT/<song>/accompaniment.wav against a Demucs tree (REF/<song>/no_vocals.wav, vocals.wav):
    every file shared the stem 'accompaniment' (or 'vocals') and all were refused as doubled."""
    ev, ref, voc = tmp_path / "out", tmp_path / "separated", tmp_path / "separated"
    for k, song in enumerate(("Song A", "Song B")):
        _write(ev / song / "accompaniment.wav", _tone(3.0, 44_100, 2, 220, k), 44_100)
        _write(ref / song / "no_vocals.wav", _tone(3.0, 44_100, 2, 220, k + 5), 44_100)
        _write(ref / song / "vocals.wav", _tone(3.0, 44_100, 1, 440, k + 9), 44_100)
    _write(ref / "Song B" / "mixture.wav", _tone(3.0, 44_100, 2, 330, 3), 44_100)  # neither reference nor vocal
    manifest, unmatched = folder_items(ev, ref, voc)
    assert not manifest.rejected and not unmatched.without_reference and not unmatched.without_vocal
    assert [(i.item_id, Path(i.reference).relative_to(ref).as_posix(), Path(i.vocal).relative_to(voc).as_posix())
            for i in sorted(manifest.items, key=lambda i: i.item_id)] == [
        ("Song_A", "Song A/no_vocals.wav", "Song A/vocals.wav"),
        ("Song_B", "Song B/no_vocals.wav", "Song B/vocals.wav")]


def test_vocals_silent_over_the_seconds_the_eval_files_cover_are_named(folders, tmp_path) -> None:
    from bench.score_folders import quiet_vocals_line

    ev, ref, voc = folders
    _write(voc / "a.wav", np.zeros(4 * 44_100, np.float32), 44_100)  # silent where a.wav's 3 s lie
    manifest, _ = folder_items(ev, ref, voc)
    line = quiet_vocals_line(manifest)
    assert line is not None and line.startswith("score: 1 of 3 vocal(s) are active in under 50% of the seconds "
                                                "their eval file covers, from 0 s (a 0%)")
    _write(voc / "a.wav", _tone(4.0, 44_100, 1, 440, 7), 44_100)
    assert quiet_vocals_line(folder_items(ev, ref, voc)[0]) is None


def test_the_summary_says_when_a_metric_has_no_finite_value_on_any_clip() -> None:
    """Eval clips of 30 s against whole-song vocals that start singing at 40 s: adherence is NaN on every clip, the
    metric has no estimate, and the one-liner's summary left it out without a word."""
    nan = float("nan")
    clips = [{"item_id": f"s{k}", "values": {"signal.loudness_lufs": -14.0, "adherence.chroma_agreement": nan}}
             for k in range(4)]
    loud = {"value": -14.0, "ci_low": -14.0, "ci_high": -14.0, "n": 4}
    lines = summary_lines({"models": {"ev": {"per_clip": {"signal.loudness_lufs": loud}, "clips": clips}}})
    assert lines == ["ev  signal.loudness_lufs  -14.0 [-14.0, -14.0], n=4",
                     "ev  adherence.chroma_agreement  no finite value on any of 4 clips (undefined where the vocal "
                     "window has no voiced frame or onset, e.g. a silent vocal)"]


def test_a_silent_clip_is_outside_the_true_peak_mean_and_named(folders, tmp_path) -> None:
    """One silent eval file: its true peak counted as -240 dBTP in the mean (loudness's -inf was left out of n); now
    both leave it out, the count says so and the summary names the clip and why."""
    ev, ref, _ = folders
    _write(ev / "a.wav", np.zeros((3 * 48_000, 2)), 48_000)
    out = tmp_path / "out"
    assert _run(ev, ref, out).exit_code == 0
    scores = _scores(out)
    entry = scores["models"]["system-x"]
    peaks = {c["item_id"]: c["values"]["signal.true_peak_dbtp"] for c in entry["clips"]}
    assert peaks["a"] == -math.inf
    for key in ("signal.true_peak_dbtp", "signal.loudness_lufs"):
        est = entry["per_clip"][key]
        assert est["n"] == 2 and est["n_nonfinite"] == 1, key
    assert entry["per_clip"]["signal.true_peak_dbtp"]["value"] == pytest.approx(np.mean([peaks["b"], peaks["c"]]))
    line = next(x for x in summary_lines(scores) if x.startswith("system-x  signal.true_peak_dbtp"))
    assert line.endswith(", n=2; outside n: a (-inf for digital silence)")


def test_float_outputs_beyond_full_scale_are_scored_as_made_and_said(folders, tmp_path) -> None:
    """A float WAV peaking at about +8 dBFS was stored as 24-bit FLAC, clipped to [-1, 1], and scored so (1.4 LUFS
    and +3.8 dBTP for files that measure +5.9 LUFS and +11.7 dBTP). It is stored as float WAV now, scored as the
    file is, and Table I's notes say which row exceeds full scale; a sample within full scale stays FLAC."""
    from bench.metrics.signal import signal_metrics
    from bench.results import RunResults
    from reports.table1 import table1
    from samuel.audio import load_audio

    ev, ref, _ = folders
    loud = _write(ev / "a.wav", (4 * _tone(3.0, 44_100, 2, 220, 1)).astype(np.float32), 44_100, subtype="FLOAT")
    out = tmp_path / "out"
    assert _run(ev, ref, out).exit_code == 0
    stored = sorted(p.name for p in (out / "samples" / "system-x").iterdir() if p.suffix != ".json")
    assert [Path(n).suffix for n in stored] == [".wav", ".flac", ".flac"]  # a, then b and c within full scale
    direct = signal_metrics(load_audio(loud).samples, 44_100)
    values = next(c["values"] for c in _scores(out)["models"]["system-x"]["clips"] if c["item_id"] == "a")
    assert direct.true_peak_dbtp > 5 and values["signal.true_peak_dbtp"] == pytest.approx(direct.true_peak_dbtp)
    assert values["signal.loudness_lufs"] == pytest.approx(direct.loudness_lufs)
    results = RunResults.read(out / "results.json")
    peaks = results.models["system-x"].generation.beyond_full_scale
    assert list(peaks) == ["a"] and peaks["a"] == pytest.approx(float(np.abs(sf.read(loud)[0]).max()))
    notes = table1(_scores(out), results).notes
    assert any(n.startswith("Outputs beyond full scale, scored as the model made them") and "system-x: 1 of 3 "
               "outputs (peak up to +" in n for n in notes)


def test_a_sample_an_earlier_version_clipped_into_flac_is_made_again(folders, tmp_path) -> None:
    """A run folder of an earlier version holds every sample as 24-bit FLAC: one whose output exceeded full scale
    (its sidecar's peak_abs > 1) was clipped by that storage, so it is redone as float WAV, never mixed in; one
    within full scale is the same file this version writes, and is reused."""
    import json as json_

    from samuel.hashing import file_sha256

    ev, ref, _ = folders
    _write(ev / "a.wav", (4 * _tone(3.0, 44_100, 2, 220, 1)).astype(np.float32), 44_100, subtype="FLOAT")
    out = tmp_path / "out"
    assert _run(ev, ref, out).exit_code == 0
    folder = out / "samples" / "system-x"
    wav = next(folder.glob("a__*.wav"))
    flac, sidecar = wav.with_suffix(".flac"), wav.with_suffix(".json")
    sf.write(flac, np.clip(sf.read(wav)[0], -1, 1), 44_100, subtype="PCM_24")  # what the earlier version stored
    wav.unlink()
    record = json_.loads(sidecar.read_text())
    record.update(audio=flac.name, audio_sha256=file_sha256(flac), audio_bytes=flac.stat().st_size)
    record["clipped_share_before_write"] = record.pop("beyond_full_scale_share")
    sidecar.write_text(json_.dumps(record))
    kept = {p: p.stat().st_mtime_ns for p in folder.glob("[bc]__*.flac")}
    log: list[str] = []
    assert _run(ev, ref, out, log=log).exit_code == 0
    assert any("clipped to full scale by an earlier version; made again" in line for line in log)
    assert wav.is_file() and not flac.exists()
    assert {p: p.stat().st_mtime_ns for p in folder.glob("[bc]__*.flac")} == kept  # reused as they are


# -- the outputs:NAME=DIR recipe for systems that do not install here ---------------------------------------------


def _system_made_elsewhere(root: Path, item_s: float, out_s: float, long_s: float) -> tuple[Path, Path, Path]:
    """Whole songs (vocals, references) and a system's outputs at 24 kHz mono: one named by the vocal's stem, one
    by the item id (its vocal sits in a sub-folder), one longer than the item."""
    vocals, refs, outs = root / "vocals", root / "refs", root / "anyaccomp"
    song_s = item_s + 2.0
    _write(vocals / "song_a.wav", _tone(song_s, 44_100, 1, 440, 1), 44_100)
    _write(vocals / "set1" / "song_b.flac", _tone(song_s, 48_000, 2, 494, 2), 48_000)
    _write(vocals / "song_c.wav", _tone(song_s, 44_100, 1, 523, 3), 44_100)
    for stem, freq in (("song_a", 220), ("song_b", 247), ("song_c", 262)):
        _write(refs / f"{stem}.flac", _tone(song_s, 44_100, 2, freq, 4), 44_100)
    _write(outs / "song_a.wav", _tone(out_s, 24_000, 1, 220, 5), 24_000)  # by the vocal's stem
    _write(outs / "set1__song_b.flac", _tone(out_s, 24_000, 1, 247, 6), 24_000)  # by the item id
    _write(outs / "song_c.wav", _tone(long_s, 24_000, 1, 262, 7), 24_000)  # longer than the item: cut
    return vocals, refs, outs


def test_outputs_of_a_system_made_elsewhere_24k_mono_10s_are_read_resampled_noted_and_scored(tmp_path) -> None:
    """AnyAccomp / FastSAG / SingSong-style outputs (24 kHz mono, 10 s) beside 12 s items: each is found by the
    file-name rule, read at 44.1 kHz stereo, its length said (kept when shorter, cut when longer) and scored."""
    vocals, refs, outs = _system_made_elsewhere(tmp_path, 12.0, 10.0, 14.0)
    cfg = EvalConfig(models=("reference", f"outputs:anyaccomp={outs}"), n=3, out=tmp_path / "run", vocals=vocals,
                     references=refs, duration_s=12.0, passes=("generate", "score"), metrics=("signal",),
                     resamples=200, no_progress=True)
    result = evaluate(cfg, log=lambda s: None)
    assert result.exit_code == 0, result.failures
    samples = tmp_path / "run" / "samples" / "anyaccomp"
    infos = {json.loads(p.read_text())["item_id"]: (p, json.loads(p.read_text())["info"])
             for p in samples.glob("*.json")}
    assert set(infos) == {"song_a", "set1__song_b", "song_c"}
    for item_id, (sidecar, info) in infos.items():
        assert info["source_rate"] == 24_000
        meta = sf.info(str(sidecar.with_suffix(".flac")))
        assert (meta.samplerate, meta.channels) == (44_100, 2)
        if item_id == "song_c":
            assert info["source_duration_s"] == pytest.approx(14.0)
            assert "cut to the item's 12.00 s" in info["duration_note"] and meta.frames == 12 * 44_100
        else:
            assert "lasts 10.00 s; the item asks for 12.00 s" in info["duration_note"] and meta.frames == 10 * 44_100
    entry = result.scores["models"]["anyaccomp"]
    assert entry["per_clip"]["signal.loudness_lufs"]["n"] == 3 and entry["errors"] == []


@pytest.mark.slow
def test_adherence_of_a_shorter_output_is_scored_on_the_common_window(tmp_path) -> None:
    """A 2.5 s output of a 4 s item is compared with the vocal over its own 2.5 s (the common crop), not failed for
    being 1.5 s short; the longer one is cut to the item."""
    vocals, refs, outs = _system_made_elsewhere(tmp_path, 4.0, 2.5, 5.0)
    cfg = EvalConfig(models=(f"outputs:anyaccomp={outs}",), n=3, out=tmp_path / "run", vocals=vocals,
                     references=refs, duration_s=4.0, passes=("generate", "score"), metrics=("adherence",),
                     resamples=200, no_progress=True)
    result = evaluate(cfg, log=lambda s: None)
    assert result.exit_code == 0, result.failures
    assert result.scores["models"]["anyaccomp"]["per_clip"]["adherence.chroma_agreement"]["n"] == 3


def test_a_vocal_that_ends_early_cuts_its_item_and_adherence_is_scored(folders, tmp_path) -> None:
    """A 1.5 s vocal for a 3 s eval file failed that item's adherence with the metric's internal lockstep message:
    the item is now the 1.5 s all its files have (every row scored over them), said before the run."""
    ev, ref, voc = folders
    _write(voc / "a.wav", _tone(1.5, 44_100, 1, 440, 7), 44_100)  # a.wav's eval file lasts 3 s
    log: list[str] = []
    result = _run(ev, ref, tmp_path / "out", vocals=voc, metrics=("signal", "adherence"), log=log)
    assert result.exit_code == 0
    manifest, unmatched = folder_items(ev, ref, voc)
    assert [Path(p).name for p in unmatched.vocal_shorter] == ["a.wav"]
    assert {i.item_id: round(i.duration_s, 3) for i in manifest.items}["a"] == 1.5
    assert any(line.startswith("cut: 1 eval file(s) whose vocal ends") and "a.wav" in line for line in log)
    scores = _scores(tmp_path / "out")
    assert scores["models"]["system-x"]["errors"] == []
    chroma = scores["models"]["system-x"]["per_clip"]["adherence.chroma_agreement"]
    assert chroma["n"] == 3 and np.isfinite(chroma["value"])


def test_symlinked_folders_are_followed_and_a_loop_is_named(folders, tmp_path) -> None:
    """Python 3.11's rglob never enters a symlinked folder: eval/linked -> elsewhere/ holding c.ogg was neither
    scored nor named. It is followed by both rows; a link back up the tree is named once, not followed forever."""
    ev, ref, _ = folders
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (ev / "c.ogg").rename(elsewhere / "c.ogg")
    (ev / "linked").symlink_to(elsewhere, target_is_directory=True)
    (ev / "linked" / "up").symlink_to(ev, target_is_directory=True)  # a loop: eval/linked/up/linked/up/...
    out = tmp_path / "out"
    result = _run(ev, ref, out)
    assert {i.item_id for i in result.manifest.items} == {"a", "b", "c"}
    assert [(r.path, r.problem) for r in result.manifest.rejected] == [
        (str(ev / "linked" / "up"), f"a symbolic link back to {ev} (a loop): not followed")]
    assert {c["item_id"] for c in _scores(out)["models"]["system-x"]["clips"]} == {"a", "b", "c"}


def test_a_link_from_eval_dir_into_the_references_never_makes_them_outputs(folders, tmp_path) -> None:
    """eval/groundtruth -> refs passed the folder check (only the top folders were compared) and put every true
    accompaniment into the eval row's means; a dangling link (a drive not mounted) was dropped in silence."""
    ev, ref, voc = folders
    (ev / "groundtruth").symlink_to(ref)
    (ev / "d.wav").symlink_to(tmp_path / "nowhere" / "d.wav")
    log: list[str] = []
    result = _run(ev, ref, tmp_path / "out", vocals=voc, metrics=("signal",), log=log)
    assert result.exit_code == 1  # the rejected files are named; the rest is scored
    manifest, _ = folder_items(ev, ref, voc)
    assert sorted(i.item_id for i in manifest.items) == ["a", "b", "c"]
    why = {Path(r.path).name: r.problem for r in manifest.rejected}
    assert all("a symbolic link leads it into the --reference folder" in why[n] for n in ("a.flac", "B.wav", "c.mp3"))
    assert "which does not exist" in why["d.wav"]
    loudness = _scores(tmp_path / "out")["models"]["system-x"]["per_clip"]["signal.loudness_lufs"]
    assert loudness["n"] == 3


def test_a_name_saved_decomposed_matches_its_composed_twin(folders, tmp_path) -> None:
    """café.wav saved decomposed (NFD: e + U+0301, as macOS writes names) beside a reference café.flac saved
    composed (NFC) was 'no reference: café.wav' and 'unused reference: café.flac'. Names compare composed."""
    import unicodedata

    ev, ref, voc = folders
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    _write(ev / f"{nfd}.wav", _tone(3.0, 44_100, 2, 294, 8), 44_100)
    _write(ref / f"{nfc}.flac", _tone(3.0, 44_100, 2, 294, 9), 44_100)
    _write(voc / f"{nfd}.wav", _tone(3.0, 44_100, 1, 588, 10), 44_100)
    out = tmp_path / "out"
    result = _run(ev, ref, out, vocals=voc)
    assert result.exit_code == 0 and result.unmatched == type(result.unmatched)()
    item = {i.item_id: i for i in result.manifest.items}[nfc]  # the id is composed, whatever the file's form
    assert item.reference == str(ref / f"{nfc}.flac") and item.vocal == str(voc / f"{nfd}.wav")
    for row in ("system-x", "reference"):
        assert nfc in {c["item_id"] for c in _scores(out)["models"][row]["clips"]}, row


def test_a_mirrored_tree_matches_by_relative_path_and_a_stem_only_where_unambiguous(tmp_path) -> None:
    """eval/artist{1,2}/track01.wav against a matching ref/ tree exited 2 ("2 files share the stem ... keep one"):
    files are matched by relative path first, by stem only where one file of each folder has it; files doubled in
    one folder (x.wav beside x.flac) are still refused by name. Ids: the stem where no other file has it (a flat
    folder's ids as before), else the relative path."""
    ev, ref, voc = tmp_path / "eval", tmp_path / "ref", tmp_path / "voc"
    for k, artist in enumerate(("artist1", "artist2")):
        _write(ev / artist / "track01.wav", _tone(3.0, 44_100, 2, 220 + 30 * k, k), 44_100)
        _write(ref / artist / "track01.flac", _tone(3.0, 44_100, 2, 220 + 30 * k, k + 5), 44_100)
        _write(voc / artist / "track01.wav", _tone(3.0, 44_100, 1, 440 + 60 * k, k + 9), 44_100)
    _write(ev / "solo.wav", _tone(3.0, 44_100), 44_100)  # its reference lies in a sub-folder: the one 'solo'
    _write(ref / "extra" / "solo.flac", _tone(3.0, 44_100, seed=3), 44_100)
    _write(ev / "live" / "t.wav", _tone(3.0, 44_100), 44_100)  # two references named t, neither at live/t
    _write(ref / "r1" / "t.flac", _tone(3.0, 44_100), 44_100)
    _write(ref / "r2" / "t.flac", _tone(3.0, 44_100), 44_100)
    _write(ev / "x.wav", _tone(3.0, 44_100), 44_100)  # doubled in one folder
    _write(ev / "x.flac", _tone(3.0, 44_100), 44_100)
    out = tmp_path / "out"
    log: list[str] = []
    result = _run(ev, ref, out, vocals=voc, log=log)
    refs = {i.item_id: i.reference and Path(i.reference).relative_to(ref).as_posix() for i in result.manifest.items}
    assert refs == {"artist1__track01": "artist1/track01.flac", "artist2__track01": "artist2/track01.flac",
                    "solo": "extra/solo.flac", "t": None}
    vocal = {i.item_id: i.vocal for i in result.manifest.items}["artist2__track01"]
    assert vocal == str(voc / "artist2" / "track01.wav")
    assert {Path(r.path).name for r in result.manifest.rejected} == {"x.wav", "x.flac"}
    assert any("live/t.wav: 2 references share its name and none lies at its relative path (r1/t.flac, r2/t.flac)"
               in line for line in log), log
    assert any(line.endswith("(not used): r1/t.flac, r2/t.flac") for line in log), log
    for row, ids in (("eval", set(refs)), ("reference", {"artist1__track01", "artist2__track01", "solo"})):
        assert {c["item_id"] for c in _scores(out)["models"][row]["clips"]} == ids, row
    # each row read its own file: artist2's clip is not artist1's
    clips = {c["item_id"]: c["values"] for c in _scores(out)["models"]["eval"]["clips"]}
    assert clips["artist1__track01"] != clips["artist2__track01"]


def test_eval_files_are_never_their_own_reference_or_vocal(folders, tmp_path, capsys) -> None:
    """`score X --reference X --vocals X` scored each file against itself (key agreement 0.94, differences 0) with
    no warning. A reference or vocals folder that is EVAL_DIR, lies inside it or holds it is refused (exit 2); a
    file paired with itself through a symlink is not used as its own partner, named."""
    ev, ref, voc = folders
    for args, said in (((ev, "--reference", ev, "--vocals", ev), f"--reference {ev} is EVAL_DIR {ev}"),
                       ((ev, "--reference", ref, "--vocals", ev), f"--vocals {ev} is EVAL_DIR {ev}"),
                       ((ev, "--reference", tmp_path), f"--reference {tmp_path} holds EVAL_DIR {ev}"),
                       ((tmp_path, "--reference", ref), f"--reference {ref} lies inside EVAL_DIR {tmp_path}")):
        assert _score(*args, "--metrics", "signal", "--out", tmp_path / "never") == 2
        err = capsys.readouterr().err
        assert said in err and "would be scored as their own" in err, err
    assert not (tmp_path / "never").exists()
    (ev / "b.flac").unlink()
    (ev / "b.flac").symlink_to(ref / "B.wav")  # b's eval file is its reference
    (voc / "a.wav").unlink()
    (voc / "a.wav").symlink_to(ev / "a.wav")  # a's vocal is its eval file
    manifest, _ = folder_items(ev, ref, voc)
    by_id = {i.item_id: i for i in manifest.items}
    # each link leads out of its own folder into another input folder: left out there, named
    assert "b" not in by_id and by_id["a"].vocal is None and by_id["c"].reference and by_id["c"].vocal
    assert {(Path(r.path).name, r.problem.split(":")[0]) for r in manifest.rejected} == {
        ("b.flac", f"in EVAL_DIR, but a symbolic link leads it into the --reference folder {ref}"),
        ("a.wav", f"in --vocals, but a symbolic link leads it into the EVAL_DIR folder {ev}")}


def test_metrics_that_read_a_vocal_asked_for_without_vocals_exit_2_before_any_work(folders, tmp_path, capsys) -> None:
    """`--metrics adherence` without --vocals exited 0 having scored nothing. Asked for by name (alone or with
    others), a group that reads the vocal is refused; the default (every group) switches them off with a note."""
    ev, ref, _ = folders
    for metrics in ("adherence", "signal,adherence", "apa"):
        assert _score(ev, "--reference", ref, "--metrics", metrics, "--out", tmp_path / "o") == 2
        err = capsys.readouterr().err
        assert f"--metrics {metrics}: {metrics.split(',')[-1]} needs --vocals DIR" in err, err
    assert not (tmp_path / "o").exists()
    assert ScoreFolders(ev, reference=ref).vocal_groups_asked() == []


def test_another_seed_reuses_every_sample_and_clip_score(folders, tmp_path) -> None:
    """--seed 7 after --seed 0 marked every item changed and read and scored every file anew, though a file's audio
    depends on no seed. Only what the seed drives (the bootstrap, recorded with it) is computed again."""
    ev, ref, _ = folders
    out = tmp_path / "out"
    assert _run(ev, ref, out).exit_code == 0
    records = sorted((out / "scores").rglob("*.json"))
    stamps = {p: p.stat().st_mtime_ns for p in records}
    log: list[str] = []
    cfg = ScoreFolders(ev, reference=ref, out=out, metrics=("signal",), resamples=200, seed=7, no_progress=True)
    assert score_folders(cfg, log=log.append).exit_code == 0
    assert sum("generate: 0 written, 3 already there" in line for line in log) == 2, log
    assert not any("changed" in line for line in log if line.startswith("manifest:")), log
    assert {p: p.stat().st_mtime_ns for p in records} == stamps  # no clip was scored again
    assert _scores(out)["config"]["seed"] == 7  # the seed the summary's resamples were drawn with


def test_two_eval_folders_with_one_name_never_share_a_run_folder(folders, tmp_path, monkeypatch, capsys) -> None:
    """runs/a/samples then runs/b/samples both went to samuel-eval-scores/samples: b's run replaced a's scores with
    only "0 kept, 4 new, 3 dropped" said. The default now moves aside (samples-<hash of the path>) and says where;
    an explicit --out holding another folder's results is refused, both folders named."""
    import shutil

    ev, ref, _ = folders
    a, b = tmp_path / "runs" / "a" / "samples", tmp_path / "runs" / "b" / "samples"
    shutil.copytree(ev, a)
    shutil.copytree(ev, b)
    _write(b / "a.wav", 0.5 * _tone(3.0, 48_000, 2, 220, 1), 48_000)
    monkeypatch.chdir(tmp_path)
    plain = Path("samuel-eval-scores") / "samples"
    log: list[str] = []

    def run(folder: Path) -> ScoreFoldersResult:
        cfg = ScoreFolders(folder, reference=ref, metrics=("signal",), resamples=200, no_progress=True)
        return score_folders(cfg, log=log.append)

    assert run(a).exit_code == 0
    first = _scores(plain)
    assert run(b).exit_code == 0
    (moved,) = [p for p in Path("samuel-eval-scores").iterdir() if p != plain]
    assert moved.name.startswith("samples-") and ScoreFolders(b).out_dir == moved
    assert f"score: {plain} holds the results of {a}; these go to {moved}" in log
    assert _scores(plain) == first  # a's results untouched
    log.clear()
    assert run(a).exit_code == 0  # a's rerun finds its own folder, everything kept
    assert sum("generate: 0 written, 3 already there" in line for line in log) == 2, log
    assert _score(b, "--reference", ref, "--metrics", "signal", "--out", plain) == 2
    err = capsys.readouterr().err
    assert f"--out {plain} holds the results of {a}; scoring {b} there would replace them" in err, err
