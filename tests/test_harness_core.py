"""The harness core on real-shaped input (issue 12): whole songs as vocals, a bad file among good ones, a failed
model load, a rerun into an old folder, damaged files, a second run into a locked folder, CLI edges and exit codes.

Each test names the defect it guards. Models are the fake noise generator (tests/fake_generators.py), the
reference row and folders of pre-generated files, so every run here takes seconds.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fake_generators import NoiseGenerator

from baselines import registry
from bench.cache import values_checksum
from bench.evaluate import EvalConfig, EvalResult, evaluate, prepare, requested_manifest, stale_files
from bench.manifest import folder_manifest
from bench.runfolder import RunFolder, RunFolderError, RunFolderLocked
from reports.cli import main

FAKE = "fake-noise"
registry.register(FAKE, "fake_generators:NoiseGenerator")
RATE = 44_100


class UnpicklableGenerator(NoiseGenerator):
    """A model whose checkpoint cannot be loaded (as a refused or corrupt pickle is)."""

    name = "fake-unpicklable"

    def _load(self) -> None:
        raise pickle.UnpicklingError("Weights only load failed: unsupported global os.system")


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NoiseGenerator, "calls", 0)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def unpicklable(monkeypatch: pytest.MonkeyPatch) -> str:
    """'fake-unpicklable' registered for one test only (other tests list the registry's names)."""
    monkeypatch.setitem(registry._GENERATORS._targets, "fake-unpicklable", "test_harness_core:UnpicklableGenerator")
    return "fake-unpicklable"


def _tone(seconds: float, rate: int = RATE, channels: int = 1, freq: float = 220.0, gain: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    mono = gain * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
    return np.repeat(mono[:, None], channels, axis=1).astype(np.float32)


def _songs(root: Path, n: int = 3, seconds: float = 20.0) -> tuple[Path, Path]:
    """n whole 'songs' (vocal and accompaniment), 10x longer than the 2 s items the tests ask for."""
    vocals, refs = root / "vocals", root / "refs"
    vocals.mkdir(parents=True)
    refs.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        # a voice has harmonics: swift-f0 (the default pitch tracker) calls a pure 200-280 Hz sine unvoiced
        voice = sum(_tone(seconds, 48_000, freq=k * 220 * (1 + i / 4), gain=0.3 / k) for k in (1, 2, 3))
        sf.write(vocals / f"song{i}.wav", voice, 48_000)
        noise = (0.05 * rng.standard_normal((round(seconds * 22_050), 2))).astype(np.float32)
        sf.write(refs / f"song{i}.flac", noise + _tone(seconds, 22_050, 2, 110 * (1 + i / 4)), 22_050)
    return vocals, refs


def _cfg(out: Path, **kw: object) -> EvalConfig:
    base: dict[str, object] = {"out": out, "models": (FAKE,), "n": 3, "duration_s": 2.0, "time_items": 2,
                               "no_progress": True, "metrics": ("signal",), "resamples": 200,
                               "passes": ("params", "generate", "time", "score")}
    base.update(kw)
    return EvalConfig(**base)  # type: ignore[arg-type]


def _eval(cfg: EvalConfig) -> EvalResult:
    return evaluate(cfg, log=lambda s: None)


# -- defect 1: a vocal longer than its item -----------------------------------------------------------------------


def test_a_vocal_ten_times_longer_than_its_item_gets_adherence_for_every_model(tmp_path: Path) -> None:
    vocals, refs = _songs(tmp_path)
    res = _eval(_cfg(tmp_path / "out", models=(FAKE, "reference"), vocals=vocals, references=refs,
                     metrics=("signal", "adherence")))
    assert res.failures == []
    for model in (FAKE, "reference"):
        entry = res.scores["models"][model]
        assert entry["errors"] == [] and entry["n_samples"] == 3
        assert entry["per_clip"]["adherence.chroma_agreement"]["n"] == 3
    # every sample lasts the item's 2 s, the reference row included (its window of the 20 s file)
    for path in RunFolder(tmp_path / "out").sample_files():
        if path.suffix == ".flac":
            assert sf.info(path).duration == pytest.approx(2.0, abs=0.01)


# -- defect 2: one bad item or one failed model never ends the run --------------------------------------------------


def test_bad_vocal_files_are_rejected_at_the_manifest_and_the_run_goes_on(tmp_path: Path) -> None:
    vocals, _ = _songs(tmp_path, n=3, seconds=3.0)
    (vocals / "empty.wav").write_bytes(b"")
    (vocals / "garbage.wav").write_bytes(b"not audio at all" * 100)
    sf.write(vocals / "song1.flac", _tone(3.0), RATE)  # song1.wav is there too: the same item id
    sf.write(vocals / "surround.wav", _tone(3.0, channels=6), RATE)
    res = _eval(_cfg(tmp_path / "out", vocals=vocals, n=10))
    rejected = {Path(r["path"]).name: r["problem"] for r in res.results["manifest"]["rejected"]}
    assert set(rejected) == {"empty.wav", "garbage.wav", "song1.wav", "surround.wav"}
    assert "empty" in rejected["empty.wav"] and "not a readable audio file" in rejected["garbage.wav"]
    assert "song1.flac" in rejected["song1.wav"] and "--downmix" in rejected["surround.wav"]
    assert res.results["models"][FAKE]["generation"]["n_ok"] == 3  # song0, song1 (.flac), song2
    assert res.scores["models"][FAKE]["n_samples"] == 3
    assert res.exit_code == 1 and {f.stage for f in res.failures} == {"prepare"}
    # with --downmix the 6-channel vocal becomes an item
    m = folder_manifest(vocals, None, duration_s=2.0, downmix=True)
    assert "surround" in {i.item_id for i in m.items}


def test_items_that_fail_are_not_timed_and_a_model_that_cannot_load_is_reported(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                                 unpicklable: str) -> None:
    monkeypatch.setattr(NoiseGenerator, "fail_items", frozenset({"syn-000"}))
    res = _eval(_cfg(tmp_path / "out", models=(unpicklable, FAKE, "reference"), n=4, time_items=2))
    models = res.results["models"]
    assert models["fake-unpicklable"]["status"] == "failed"
    assert "UnpicklingError" in models["fake-unpicklable"]["reason"]
    fake = models[FAKE]
    assert fake["generation"]["n_ok"] == 3 and fake["timing"]["status"] == "measured"
    assert "syn-000" not in {i["item_id"] for i in fake["timing"]["items"]}  # the failed item is not timed
    assert res.scores is not None and res.scores["models"]["reference"]["n_samples"] == 4
    stages = sorted((f.stage, f.what) for f in res.failures)
    assert stages == [("generate", f"{FAKE}/syn-000"), ("model", "fake-unpicklable")] and res.exit_code == 1


def test_timing_skips_an_item_that_fails_and_times_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NoiseGenerator, "fail_items", frozenset({"syn-000", "syn-001"}))
    res = _eval(_cfg(tmp_path / "out", n=5, time_items=2, passes=("time",)))
    timing = res.results["models"][FAKE]["timing"]
    assert timing["status"] == "measured" and [i["item_id"] for i in timing["items"]] == ["syn-002", "syn-003"]
    assert {s["item_id"] for s in timing["setup"]["skipped_items"]} == {"syn-000", "syn-001"}


# -- defect 3: a rerun into an old folder never mixes runs -----------------------------------------------------------


def _outputs(folder: Path, gain: float) -> Path:
    folder.mkdir(parents=True)
    for i in range(4):
        sf.write(folder / f"syn-{i:03d}.wav", _tone(2.0, gain=gain * (1 + i / 10)), RATE)
    return folder


def test_a_rerun_with_another_model_spec_scores_only_the_current_samples(tmp_path: Path) -> None:
    a, b = _outputs(tmp_path / "A", 0.05), _outputs(tmp_path / "B", 0.5)
    out = tmp_path / "out"
    first = _eval(_cfg(out, models=(f"outputs:sys={a}",), n=4))
    second = _eval(_cfg(out, models=(f"outputs:sys={b}",), n=4))
    alone = _eval(_cfg(tmp_path / "alone", models=(f"outputs:sys={b}",), n=4))
    loud = "signal.loudness_lufs"
    got, want = second.scores["models"]["sys"], alone.scores["models"]["sys"]
    assert got["n_samples"] == 4 and got["per_clip"][loud] == want["per_clip"][loud]
    assert first.scores["models"]["sys"]["per_clip"][loud]["value"] < want["per_clip"][loud]["value"] - 10
    # A's samples are stale: listed, never scored; clean removes exactly them
    run = RunFolder(out)
    stale = stale_files(run)
    assert len([p for p in stale if p.suffix == ".flac"]) == 4 and all("samples" in p.parts or "scores" in p.parts
                                                                       for p in stale)
    assert main(["clean", str(out)]) == 0
    assert stale_files(run) == [] and all(p.exists() for p in run.sample_files())
    assert len(run.sample_files()) == 8  # B's 4 samples and sidecars


def test_another_n_keeps_the_common_items_and_drops_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _eval(_cfg(out, n=4, passes=("generate",)))
    calls = NoiseGenerator.calls
    res = _eval(_cfg(out, n=2, passes=("generate", "score")))
    assert NoiseGenerator.calls == calls  # the two kept items were not regenerated
    assert res.scores["models"][FAKE]["n_samples"] == 2
    assert len([p for p in stale_files(RunFolder(out)) if p.suffix == ".flac"]) == 2


# -- defect 4: damaged files are redone or named ----------------------------------------------------------------------


def _finished(out: Path) -> EvalResult:
    return _eval(_cfg(out, models=(FAKE, "reference"), n=4))


def _flac_and_sidecar(out: Path, item: str = "syn-001") -> tuple[Path, Path]:
    audio = next((out / "samples" / FAKE).glob(f"{item}__*.flac"))
    return audio, audio.with_suffix(".json")


@pytest.mark.parametrize("damage", ["torn sidecar", "truncated flac", "garbled flac", "old sidecar format",
                                    "audio without sidecar"])
def test_a_damaged_sample_is_redone_and_said(tmp_path: Path, damage: str) -> None:
    out = tmp_path / "out"
    before = _finished(out)
    audio, sidecar = _flac_and_sidecar(out)
    original = audio.read_bytes()
    if damage == "torn sidecar":
        sidecar.write_text(sidecar.read_text()[:40])
    elif damage == "truncated flac":
        audio.write_bytes(original[: len(original) // 2])
    elif damage == "garbled flac":
        audio.write_bytes(original[:100] + bytes(len(original) - 100))
    elif damage == "old sidecar format":
        sidecar.write_text(json.dumps({"model": FAKE, "item_id": "syn-001", "path": audio.name}))
    else:
        sidecar.unlink()
    log: list[str] = []
    after = evaluate(_cfg(out, models=(FAKE, "reference"), n=4), log=log.append)
    assert any("redo fake-noise syn-001" in line for line in log), log
    redone = after.results["models"][FAKE]["generation"]["redone"]
    assert [r["item_id"] for r in redone] == ["syn-001"] and audio.name.split("__")[0] in str(redone)
    if damage == "torn sidecar":  # and the report says so
        from reports.html import write_report

        assert "redone: " in write_report(out).read_text()
    assert audio.read_bytes() == original  # regenerated: the same bytes (seeded)
    assert after.scores["models"][FAKE]["n_samples"] == 4
    assert after.scores["models"][FAKE]["per_clip"] == before.scores["models"][FAKE]["per_clip"]


def test_records_lines_without_item_id_or_torn_are_skipped_and_named(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _finished(out)
    run = RunFolder(out)
    path = run.records_path(FAKE, 0)
    with path.open("a") as f:
        f.write('{"status": "ok"}\n{"model": "fake-noise", "item_id": "syn-0')  # no item_id; a torn last line
    run.append_record(FAKE, 0, {"model": FAKE, "item_id": "syn-003", "status": "skipped", "sample_id": "x"})
    records, problems = run.read_records(FAKE)
    assert records[-1]["item_id"] == "syn-003"  # the torn line did not swallow the next record
    assert len(problems) == 2 and all(str(path) in p for p in problems)
    res = _finished(out)  # and a rerun does not crash on them
    assert res.results["models"][FAKE]["generation"]["n_ok"] == 4
    assert len(res.results["models"][FAKE]["generation"]["record_problems"]) == 2


def test_ctrl_c_ends_the_cli_with_one_line_and_130_and_the_same_command_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # defect: Ctrl-C printed a 40-line traceback from deep inside torch, and said nothing of what was kept
    out = tmp_path / "out"
    argv = ["--models", FAKE, "--n", "3", "--duration", "1", "--out", str(out), "--no-progress",
            "--passes", "generate"]
    monkeypatch.setattr(NoiseGenerator, "interrupt_at", 3)  # Ctrl-C while the third sample is made
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "samuel-eval: interrupted" in err and "rerun the same command to resume" in err
    assert len(list((out / "samples").rglob("*.flac"))) == 2  # what was finished is on disk
    monkeypatch.setattr(NoiseGenerator, "interrupt_at", None)
    calls = NoiseGenerator.calls
    assert main(argv) == 0
    assert NoiseGenerator.calls == calls + 1  # the same command made only the missing sample
    assert len(list((out / "samples").rglob("*.flac"))) == 3


def test_a_moved_run_folder_keeps_its_items_samples_and_timing_and_says_so(tmp_path: Path) -> None:
    # defect: the stored manifest names its inputs by absolute path, so a copied or moved folder said "0 items kept,
    # 3 new or changed (their samples are now stale)" though every sample, timing and score was still valid
    import shutil

    before = tmp_path / "before"
    _eval(_cfg(before))
    after = tmp_path / "elsewhere" / "after"
    shutil.copytree(before, after)
    calls, logged = NoiseGenerator.calls, []
    res = evaluate(_cfg(after), log=logged.append)
    line = next(x for x in logged if x.startswith("manifest: the request differs"))
    assert "3 items kept (3 of them with their files at another path" in line and "0 changed, 0 new" in line
    assert "stale" not in line.split("valid)")[-1]
    assert NoiseGenerator.calls == calls  # nothing generated or timed again
    assert any("time: reusing" in x for x in logged)
    assert res.exit_code == 0
    assert all(str(after) in i["vocal"] for i in json.loads((after / "manifest.json").read_text())["items"])


def test_a_stored_timing_with_a_time_no_run_can_take_is_redone(tmp_path: Path) -> None:
    # defect: a timing stored by an older extrapolation (negative times from a busy machine) was reused as it was,
    # and Table II showed 1602.71 s [-823.02, 7375.59]
    out = tmp_path / "out"
    _eval(_cfg(out))
    path = out / "timing" / f"{FAKE}.rank0.json"
    stored = json.loads(path.read_text())
    stored["value"]["items"][0]["seconds"] = -659.3
    stored["value_sha256"] = values_checksum(stored["value"])  # as that older run wrote it: its checksum matches
    path.write_text(json.dumps(stored))
    logged: list[str] = []
    res = evaluate(_cfg(out), log=logged.append)
    assert any(f"the stored {path.name} was not usable" in x and "-659.3 s, which no run can take" in x
               and "re-timed" in x for x in logged), logged
    assert all(i["seconds"] > 0 for i in res.results["models"][FAKE]["timing"]["items"])
    # a plausible time edited by hand, its checksum left as written: named and re-timed, not shown
    stored = json.loads(path.read_text())
    stored["value"]["items"][0]["seconds"] = 0.5
    path.write_text(json.dumps(stored))
    logged.clear()
    res = evaluate(_cfg(out), log=logged.append)
    assert any(f"the stored {path.name} was not usable" in x and "changed after they were written" in x
               for x in logged), logged
    assert all(i["seconds"] != 0.5 for i in res.results["models"][FAKE]["timing"]["items"])


def test_a_stored_timing_that_counted_units_it_never_made_is_redone(tmp_path: Path) -> None:
    # defect: SAMUeL counted a song-cut vocal window by the item's duration ("measured on 200 of 475 steps" for a
    # run that made all 200); a rerun would have reused that record as it was
    out = tmp_path / "out"
    _eval(_cfg(out))
    path = out / "timing" / f"{FAKE}.rank0.json"
    stored = json.loads(path.read_text())
    item = stored["value"]["items"][0]
    assert item["units_done"] == item["units_total"] and not item["fit"]  # measured in full, as stored
    item["units_total"] = item["units_done"] + 5
    stored["value_sha256"] = values_checksum(stored["value"])  # as that older run wrote it: its checksum matches
    path.write_text(json.dumps(stored))
    logged: list[str] = []
    res = evaluate(_cfg(out), log=logged.append)
    assert any(f"the stored {path.name} was not usable" in x and "yet was not extrapolated" in x for x in logged), \
        logged
    assert all(i["units_done"] == i["units_total"] for i in res.results["models"][FAKE]["timing"]["items"])


def test_a_reference_is_matched_by_relative_path_then_by_a_unique_stem_and_never_by_sort_order(tmp_path: Path
                                                                                            ) -> None:
    # defect: references were matched by stem only, and of two files with one stem the one that sorted last won,
    # silently (old/song0.flac beside song0.flac); an item with no reference was not mentioned at all
    import shutil

    vocals, refs = _songs(tmp_path, n=3)
    (refs / "old").mkdir()
    shutil.copy(refs / "song1.flac", refs / "old" / "song0.flac")  # a stale copy under a subfolder
    (refs / "a").mkdir()
    (refs / "b").mkdir()
    shutil.move(refs / "song1.flac", refs / "a" / "song1.flac")  # two candidates for song1, neither at its path
    shutil.copy(refs / "song2.flac", refs / "b" / "song1.flac")
    (refs / "song2.flac").unlink()  # none for song2
    logged: list[str] = []
    manifest = requested_manifest(_cfg(tmp_path / "out", vocals=vocals, references=refs, n=3),
                                  RunFolder(tmp_path / "out"), logged.append)
    by_id = {i.item_id: i for i in manifest.items}
    assert by_id["song0"].reference == str(refs / "song0.flac")  # the file at the vocal's own relative path
    assert "song1" not in by_id
    (rejected,) = manifest.rejected
    assert rejected.path == str(vocals / "song1.wav") and "its reference is ambiguous" in rejected.problem
    assert "a/song1.flac, b/song1.flac" in rejected.problem
    assert by_id["song2"].reference is None
    assert any("1 of 2 items have no reference" in x and "song2" in x for x in logged), logged
    assert any("3 items asked for (--n);" in x and "gives 2 (1 file(s) rejected" in x for x in logged), logged


def test_vocals_and_references_in_symlinked_folders_are_read_and_a_loop_is_named(tmp_path: Path) -> None:
    # defect: Python 3.11's rglob never enters a symlinked folder, so a song kept under vocals/linked -> elsewhere
    # was no item and its reference under refs/linked -> elsewhere was never found
    vocals, refs = _songs(tmp_path, n=2)
    for folder, name in ((vocals, "song1.wav"), (refs, "song1.flac")):
        elsewhere = tmp_path / f"{folder.name}-elsewhere"
        elsewhere.mkdir()
        (folder / name).rename(elsewhere / name)
        (folder / "linked").symlink_to(elsewhere, target_is_directory=True)
    (vocals / "linked" / "loop").symlink_to(vocals, target_is_directory=True)
    manifest = folder_manifest(vocals, None, references=refs, duration_s=2.0)
    by_id = {i.item_id: i for i in manifest.items}
    assert set(by_id) == {"song0", "linked__song1"}
    assert by_id["linked__song1"].reference == str(refs / "linked" / "song1.flac")
    assert [(r.path, r.problem) for r in manifest.rejected] == [
        (str(vocals / "linked" / "loop"), f"a symbolic link back to {vocals} (a loop): not followed")]


def test_n_reached_before_the_folder_ends_says_what_was_left_out(tmp_path: Path) -> None:
    # defect: --n 3 on 3 songs with 2 windows each logged only "3 items cut"; the third song's second window and
    # the files after it (a broken one among them) were never mentioned
    vocals, refs = _songs(tmp_path, n=3, seconds=6.0)
    (vocals / "z_broken.wav").write_bytes(b"RIFF")
    logged: list[str] = []
    manifest = requested_manifest(_cfg(tmp_path / "out", vocals=vocals, references=refs, n=3, windows_per_song=2),
                                  RunFolder(tmp_path / "out"), logged.append)
    assert [i.item_id for i in manifest.items] == ["song0__w1", "song0__w2", "song1__w1"]
    assert any(x.startswith("manifest: --n 3 reached: 2 input(s) in path order not read and 1 window(s) of the "
                            "last song read left out") for x in logged), logged
    logged.clear()
    requested_manifest(_cfg(tmp_path / "out2", vocals=vocals, references=refs, n=None, windows_per_song=2),
                       RunFolder(tmp_path / "out2"), logged.append)
    assert not any("--n" in x and "reached" in x for x in logged), logged


def test_a_reference_that_matches_the_vocals_name_in_case_wins_over_one_that_matches_only_ignoring_case(
        tmp_path: Path) -> None:
    # defect: Song.wav and song.wav (two songs on a case-sensitive file system) each had its own reference at its
    # own relative path, yet both vocals were rejected as ambiguous: the match ignored case at every step
    from bench.manifest import ReferenceIndex

    refs = tmp_path / "refs"
    for name in ("Song.wav", "song.wav", "Other.FLAC", "x/Y.wav", "y.wav", "Twice.wav", "Twice.flac"):
        (refs / name).parent.mkdir(parents=True, exist_ok=True)
        (refs / name).write_bytes(b"")  # matching goes by name only
    index = ReferenceIndex.of(refs)
    assert index.reference_for(Path("Song.wav")) == (refs / "Song.wav", None)
    assert index.reference_for(Path("song.wav")) == (refs / "song.wav", None)
    assert index.reference_for(Path("other.wav")) == (refs / "Other.FLAC", None)  # one file: case does not matter
    assert index.reference_for(Path("sub/y.wav")) == (refs / "y.wav", None)  # by stem: y.wav, not x/Y.wav
    for vocal, names in (("SONG.wav", "Song.wav, song.wav"), ("twice.wav", "Twice.flac, Twice.wav"),
                         ("Twice.wav", "Twice.flac, Twice.wav")):
        found, why = index.reference_for(Path(vocal))
        assert found is None and why is not None and f"({names})" in why


def test_audio_libsndfile_cannot_decode_is_named_among_the_vocals_and_the_references(tmp_path: Path) -> None:
    # defect: a vocal or a reference in .m4a was passed over in silence (only AUDIO_EXTENSIONS were listed): the
    # vocal was simply absent from the run, and its reference was reported as "no file with their stem"
    from bench.manifest import ManifestError

    vocals, refs = _songs(tmp_path, n=3)
    (vocals / "song0.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A ")  # sorts before song0.wav: takes no id
    (vocals / "phone.aac").write_bytes(b"\xff\xf1")
    (refs / "song1.flac").rename(refs / "song1.m4a")
    logged: list[str] = []
    manifest = requested_manifest(_cfg(tmp_path / "out", vocals=vocals, references=refs, n=3),
                                  RunFolder(tmp_path / "out"), logged.append)
    assert [i.item_id for i in manifest.items] == ["song0", "song1", "song2"]
    assert manifest.items[0].vocal == str(vocals / "song0.wav") and manifest.items[1].reference is None
    problems = {Path(r.path).name: r.problem for r in manifest.rejected}
    assert set(problems) == {"song0.m4a", "phone.aac"}
    assert problems["song0.m4a"].startswith("is .m4a (AAC or ALAC in MP4), which libsndfile cannot decode")
    assert "ffmpeg -i 'phone.aac' 'phone.flac'" in problems["phone.aac"]
    assert any("1 file(s) in" in x and "libsndfile cannot decode" in x and "song1.m4a" in x for x in logged), logged
    assert any("1 of 3 items have no reference" in x and "no decodable file with their stem" in x for x in logged)
    only = tmp_path / "only_m4a"
    only.mkdir()
    (only / "a.m4a").write_bytes(b"")
    with pytest.raises(ManifestError, match=r"no usable vocal file \(a\.m4a: is \.m4a"):
        folder_manifest(only, 3)


def test_a_tree_of_song_stem_folders_gives_one_item_per_song_with_its_accompaniment(tmp_path: Path) -> None:
    from bench.manifest import ManifestError

    # defect: --vocals and --references at a MUSDB18-HQ or Demucs tree made an item of every stem (drums.wav,
    # mixture.wav, ...), each the "vocal" of its item, and each item's reference was the very same file
    tone = np.zeros((48_000 * 3, 2), np.float32)
    tree = tmp_path / "separated"
    for song, stems in (("Song A", ("vocals", "no_vocals")), ("Song B", ("vocals", "instrumental", "mixture")),
                        ("MUSDB C", ("mixture", "drums", "bass", "other", "vocals"))):
        for stem in stems:
            (tree / song).mkdir(parents=True, exist_ok=True)
            sf.write(tree / song / f"{stem}.wav", tone, 48_000)
    logged: list[str] = []
    cfg = _cfg(tmp_path / "out", vocals=tree, references=tree, n=None)
    manifest = requested_manifest(cfg, RunFolder(tmp_path / "out"), logged.append)
    by_id = {i.item_id: i for i in manifest.items}
    assert sorted(by_id) == ["MUSDB_C__vocals", "Song_A__vocals", "Song_B__vocals"]
    assert by_id["Song_A__vocals"].reference == str(tree / "Song A" / "no_vocals.wav")
    assert by_id["Song_B__vocals"].reference == str(tree / "Song B" / "instrumental.wav")
    assert Path(str(by_id["MUSDB_C__vocals"].reference)).parent.name == "part-sums"  # drums + bass + other
    assert all(i.vocal != i.reference for i in manifest.items)
    assert any("7 file(s) named as a song's other stems" in x for x in logged), logged
    assert any("1 item(s) take as reference the sum of their song's parts (MUSDB's drums" in x for x in logged), logged
    flat = tmp_path / "flat"  # --references given the vocals folder: each vocal would be its own reference
    flat.mkdir()
    sf.write(flat / "x.wav", tone, 48_000)
    with pytest.raises(ManifestError, match=r"x\.wav: its reference would be the vocal file itself"):
        folder_manifest(flat, 3, references=flat)
    (tree / "Song A" / "accompaniment.flac").write_bytes((tree / "Song A" / "no_vocals.wav").read_bytes())
    twice = requested_manifest(cfg, RunFolder(tmp_path / "out"), logged.append)
    (rejected,) = twice.rejected
    assert rejected.path.endswith("Song A/vocals.wav")
    assert "2 accompaniment files in its song folder" in rejected.problem


def test_a_musdb_song_with_only_parts_gets_their_sum_as_its_reference(tmp_path: Path) -> None:
    # MUSDB18-HQ has no accompaniment file: the item's reference is drums + bass + other, written once into the run
    # folder over the seconds the items read, reused while valid, rewritten when a part changes or the file is torn
    from samuel.audio import load_window

    tree, rng = tmp_path / "musdb" / "test", np.random.default_rng(3)
    song = tree / "Song C"
    song.mkdir(parents=True)
    for stem in ("mixture", "vocals", "drums", "bass", "other"):
        sf.write(song / f"{stem}.wav", (0.2 * rng.standard_normal((44_100 * 9, 2))).astype(np.float32), 44_100,
                 subtype="FLOAT")
    out = tmp_path / "out"
    logged: list[str] = []
    cfg = _cfg(out, vocals=tree, references=tree, n=None, duration_s=2.0, windows_per_song=2)
    (first, second) = requested_manifest(cfg, RunFolder(out), logged.append).items
    assert first.reference == second.reference and Path(first.reference).parent == out / "inputs" / "part-sums"
    parts = sum(load_window(song / f"{p}.wav", second.start_s, 2.0).samples for p in ("drums", "bass", "other"))
    np.testing.assert_allclose(load_window(second.reference, second.start_s, 2.0).samples, parts, atol=1e-6)
    assert Path(first.reference).suffix == ".wav"  # three parts of 0.2 RMS noise exceed full scale: float, unclipped
    assert any("(0 reused from an earlier run)" in x for x in logged)
    requested_manifest(cfg, RunFolder(out), logged.append)
    assert any("(1 reused from an earlier run)" in x for x in logged[-3:])
    Path(first.reference).write_bytes(Path(first.reference).read_bytes()[:1000])  # torn
    again = requested_manifest(cfg, RunFolder(out), logged.append).items[1]
    assert any("(0 reused from an earlier run)" in x for x in logged[-3:])
    np.testing.assert_allclose(load_window(again.reference, again.start_s, 2.0).samples, parts, atol=1e-6)


def test_an_edited_reference_or_output_file_is_read_again_and_rescored(tmp_path: Path) -> None:
    # defect: a reference file scaled by 0.25 between two runs kept its old sample and scores ("6 already there");
    # a files row's samples are keyed by the item, and nothing compared the file they were read from
    import json

    from samuel.audio import load_window

    vocals, refs = _songs(tmp_path, n=2)
    outs = tmp_path / "outs"
    outs.mkdir()
    for i in range(2):
        sf.write(outs / f"song{i}.wav", _tone(2.0, 44_100, 2, 330), 44_100)
    out = tmp_path / "out"
    logged: list[str] = []
    cfg = _cfg(out, models=("reference", f"outputs:mine={outs}"), vocals=vocals, references=refs, n=2,
               passes=("generate", "score"))
    assert evaluate(cfg, log=logged.append).exit_code == 0

    def loudness(model: str, item: str) -> float:
        clips = json.loads((out / "scores.json").read_text())["models"][model]["clips"]
        return next(c["values"]["signal.loudness_lufs"] for c in clips if c["item_id"] == item)

    before = loudness("reference", "song1"), loudness("mine", "song0")
    data, rate = sf.read(refs / "song1.flac")
    sf.write(refs / "song1.flac", 0.25 * data, rate)
    data, rate = sf.read(outs / "song0.wav")
    sf.write(outs / "song0.wav", 0.25 * data, rate)
    logged.clear()
    assert evaluate(cfg, log=logged.append).exit_code == 0
    assert any(x.startswith(f"  redo reference song1: its source file {refs / 'song1.flac'} changed since the "
                            "sample was made (sha256 ") for x in logged), logged
    assert any(x.startswith("  redo mine song0: its source file") for x in logged), logged
    assert sum("1 written, 1 already there, 1 redone" in x for x in logged) == 2, logged
    assert loudness("reference", "song1") == pytest.approx(before[0] - 12.04, abs=0.1)  # 20 log10(0.25)
    assert loudness("mine", "song0") == pytest.approx(before[1] - 12.04, abs=0.1)
    assert loudness("reference", "song0") == loudness("reference", "song0")  # the others are kept
    sample = next((out / "samples" / "reference").glob("song1__*.flac"))
    np.testing.assert_allclose(load_window(sample).samples, load_window(refs / "song1.flac", 0.0, 2.0).samples,
                               atol=1e-5)
    logged.clear()
    assert evaluate(cfg, log=logged.append).exit_code == 0
    assert not any("  redo " in x for x in logged), [x for x in logged if "redo" in x]
    assert sum("0 written, 2 already there" in x for x in logged) == 2


def test_samples_of_files_from_an_earlier_version_are_read_again_in_one_line(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.evaluate

    vocals, refs = _songs(tmp_path, n=3)
    cfg = _cfg(tmp_path / "out", models=("reference",), vocals=vocals, references=refs, passes=("generate",))
    with monkeypatch.context() as m:  # as an earlier version wrote them: no source sha256 in the sidecar
        m.setattr(bench.evaluate, "_with_source", lambda adapter, item, sha: bench.evaluate.generate_new(adapter, item))
        assert evaluate(cfg, log=lambda s: None).exit_code == 0
    logged: list[str] = []
    assert evaluate(cfg, log=logged.append).exit_code == 0
    assert [x for x in logged if x.startswith("  redo")] == [
        "  redo reference: 3 sample(s) made by an earlier version record no sha256 of their source files, so whether "
        "the files changed cannot be told: read again"]
    assert any("3 written, 0 already there, 3 redone" in x for x in logged), logged


def test_part_sums_of_songs_whose_names_differ_after_a_dot_are_two_files(tmp_path: Path) -> None:
    # defect: the sum's file name came from Path.with_suffix, so "Mr. A" and "Mr. B" both became "Mr.flac" (and
    # "Mr.json"): the second song's items took the first song's accompaniment, its sidecar calling it valid
    from samuel.hashing import file_sha256

    tree, rng = tmp_path / "musdb", np.random.default_rng(7)
    for song in ("Mr. A", "Mr. B"):
        for stem in ("vocals", "drums", "bass", "other"):
            (tree / song).mkdir(parents=True, exist_ok=True)
            sf.write(tree / song / f"{stem}.wav", (0.1 * rng.standard_normal((44_100 * 3, 2))).astype(np.float32),
                     44_100, subtype="FLOAT")
    out = tmp_path / "out"
    a, b = requested_manifest(_cfg(out, vocals=tree, references=tree, n=None), RunFolder(out), lambda s: None).items
    assert {Path(a.reference).name, Path(b.reference).name} == {"Mr._A.flac", "Mr._B.flac"}
    assert file_sha256(a.reference) != file_sha256(b.reference)
    import shutil

    # train/X and test/X are two songs: named by their path under --vocals, not by the folder's name alone
    shutil.copytree(tree / "Mr. A", tmp_path / "split" / "train" / "X")
    shutil.copytree(tree / "Mr. B", tmp_path / "split" / "test" / "X")
    split, out2 = tmp_path / "split", tmp_path / "out2"
    x1, x2 = requested_manifest(_cfg(out2, vocals=split, references=split, n=None), RunFolder(out2),
                                lambda s: None).items
    assert {Path(x1.reference).name, Path(x2.reference).name} == {"test_X.flac", "train_X.flac"}
    assert file_sha256(x1.reference) != file_sha256(x2.reference)


def test_a_moisesdb_tree_gives_one_item_per_song_with_summed_vocal_tracks_and_instrument_tracks(
        tmp_path: Path) -> None:
    # defect: --vocals moisesdb made an item of every track (song/drums/<id>.wav, song/vocals/<id>.wav, ...), each
    # refused as "its reference would be the vocal file itself", and the run ended with "no usable vocal file"
    from bench.manifest import ManifestError
    from samuel.audio import load_window

    tree, rng = tmp_path / "moisesdb", np.random.default_rng(5)

    def track(path: Path, seconds: float = 6.0) -> np.ndarray:
        path.parent.mkdir(parents=True, exist_ok=True)
        x = (0.1 * rng.standard_normal((int(44_100 * seconds), 2))).astype(np.float32)
        sf.write(path, x, 44_100, subtype="FLOAT")
        return x

    two = tree / "1f-uuid"  # lead + backing vocals, three instrument folders and a mixture folder
    lead, backing = track(two / "vocals" / "a1.wav"), track(two / "vocals" / "b2.wav")
    others = [track(two / "drums" / "k.wav"), track(two / "guitar" / "g1.wav"), track(two / "guitar" / "g2.wav")]
    track(two / "mixture" / "m.wav")
    one = tree / "2e-uuid"  # one vocal track: read as it is, nothing written
    track(one / "vocals" / "lead.wav")
    track(one / "bass" / "b.wav")
    out = tmp_path / "out"
    logged: list[str] = []
    cfg = _cfg(out, vocals=tree, references=tree, n=None, duration_s=2.0)
    manifest = requested_manifest(cfg, RunFolder(out), logged.append)
    by_id = {i.item_id: i for i in manifest.items}
    assert sorted(by_id) == ["1f-uuid__vocals", "2e-uuid__vocals"] and not manifest.rejected
    summed, single = by_id["1f-uuid__vocals"], by_id["2e-uuid__vocals"]
    assert single.vocal == str(one / "vocals" / "lead.wav")
    assert Path(summed.vocal) == out / "inputs" / "part-sums" / "1f-uuid__vocals.flac"
    np.testing.assert_allclose(load_window(summed.vocal).samples, (lead + backing).T, atol=1e-6)  # 24-bit FLAC
    assert Path(summed.reference).parent == out / "inputs" / "part-sums"  # drums + guitar tracks, not the mixture
    np.testing.assert_allclose(load_window(summed.reference, 0.0, 2.0).samples,
                               sum(others)[: 2 * 44_100].T, atol=1e-6)
    assert any("2 song(s) keep their stems in folders of tracks (MoisesDB layout)" in x
               and "the 4 track(s) of their other folders are not vocals" in x for x in logged), logged
    # a rerun reuses both sums; a torn vocal sum is written again to the same bytes, so the item stays the same
    Path(summed.vocal).write_bytes(Path(summed.vocal).read_bytes()[:500])
    again = {i.item_id: i for i in requested_manifest(cfg, RunFolder(out), logged.append).items}
    assert again == by_id
    assert any("(1 sum(s) in" in x and "0 reused from an earlier run)" in x for x in logged[-6:]), logged
    with pytest.raises(ManifestError, match=r"1f-uuid: its vocal tracks cannot be summed \(2 vocal tracks"):
        folder_manifest(two, 3)  # the song folder itself, outside a run: nothing to write the sum into
    assert folder_manifest(one, 3).items[0].item_id == "2e-uuid__vocals"


def test_a_run_folder_inside_the_vocals_or_references_is_refused_before_any_work(tmp_path: Path) -> None:
    # defect: --out inside --vocals worked once; the rerun read the run's own samples as two more vocals
    # ("2 items kept, 0 changed, 2 new") and generated accompaniments for the model's outputs
    from bench.manifest import ManifestError

    vocals, refs = _songs(tmp_path, n=2)
    for flag, out in (("--vocals", vocals / "run"), ("--references", refs / "deep" / "run"), ("--vocals", vocals)):
        with pytest.raises(ManifestError, match=f"--out {out} lies inside {flag}"):
            requested_manifest(_cfg(out, vocals=vocals, references=refs, n=2), RunFolder(out), lambda s: None)
    assert not (vocals / "run").exists()
    background = tmp_path / "background"
    background.mkdir()
    with pytest.raises(ManifestError, match="lies inside --fad-reference"):  # models' samples as the FAD reference
        requested_manifest(_cfg(background / "run", vocals=vocals, n=2, fad_reference=background),
                           RunFolder(background / "run"), lambda s: None)


# -- defect 5: one run per folder -----------------------------------------------------------------------------------


def test_a_second_run_into_a_locked_folder_is_refused_at_once(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    run = RunFolder(out)
    with run.lock():
        with pytest.raises(RunFolderLocked, match=f"pid {os.getpid()}"):
            _eval(_cfg(out))
        assert main(["--models", FAKE, "--n", "2", "--duration", "1", "--out", str(out), "--no-progress"]) == 2
        assert "another samuel-eval is running in this folder" in capsys.readouterr().err
        assert not (out / "manifest.json").exists()  # nothing was done
    assert _eval(_cfg(out, passes=("generate",))).exit_code == 0  # released with the holder


# -- defect 6: CLI edges -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--duration", "0"], "--duration: must be a number of seconds > 0"),
    (["--duration", "-3"], "--duration: must be a number of seconds > 0"),
    (["--duration", "nan"], "--duration: must be a finite number"),
    (["--n", "0"], "--n/-n/--items: must be a whole number >= 1"),
    (["--n", "-1"], "--n/-n/--items: must be a whole number >= 1"),
    (["--time-items", "0"], "--time-items: must be a whole number >= 1"),
    (["--passes", "generate,bogus"], "unknown pass(es) bogus"),
    (["--metrics", "signal,bogus"], "bogus"),
    (["--weights-path", "samuel"], "takes NAME=VALUE"),
    (["--option", "samuel=1"], "takes MODEL.KEY=VALUE"),
    (["--device", "gpu"], "'gpu' is not a device (cpu, cuda, cuda:N, mps)"),
    (["--device", "cuda:99"], "cuda:99: "),  # no build or machine here has 100 GPUs
    # 1-9 resamples gave percentile intervals that excluded their mean, and the report's figure then crashed
    (["--resamples", "9"], "--resamples: must be >= 100, got '9'"),
    (["--probe", "1"], "--probe: must be 0 (off) or >= 2, got '1'"),
    (["--resamples", "99"], "--resamples: must be >= 100"),
])
def test_bad_values_are_usage_errors_not_silent_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        args: list[str], message: str) -> None:
    out = tmp_path / "out"
    assert main(["--models", FAKE, "--out", str(out), "--no-progress", *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_an_out_that_is_a_file_or_not_writable_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "results.txt"
    a_file.write_text("mine")
    assert main(["--models", FAKE, "--n", "2", "--out", str(a_file), "--no-progress"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err and a_file.read_text() == "mine"
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    real_access = os.access
    if os.geteuid() == 0:  # root writes anywhere: make the check see what any other user would
        monkeypatch.setattr(os, "access", lambda p, m: False if Path(p) == locked else real_access(p, m))
    with pytest.raises(RunFolderError, match="not writable"):
        RunFolder(locked).ensure_writable()
    assert main(["--models", FAKE, "--n", "2", "--out", str(locked), "--no-progress"]) == 2
    assert "not writable" in capsys.readouterr().err


def test_exit_codes_say_what_happened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    common = ["--n", "2", "--duration", "1", "--no-progress", "--metrics", "signal", "--resamples", "100"]
    assert main(["--models", FAKE, "--out", str(tmp_path / "ok"), *common]) == 0
    monkeypatch.setattr(NoiseGenerator, "fail_items", frozenset({"syn-001"}))
    assert main(["--models", FAKE, "--out", str(tmp_path / "some"), *common]) == 1
    assert main(["--models", "no-such-model", "--out", str(tmp_path / "bad"), *common]) == 2


def test_a_rejected_vocal_names_a_flag_samuel_eval_has(tmp_path: Path) -> None:
    vocals = tmp_path / "v"
    vocals.mkdir()
    sf.write(vocals / "six.wav", _tone(2.0, channels=6), RATE)
    sf.write(vocals / "two.wav", _tone(2.0, channels=2), RATE)
    m = folder_manifest(vocals, None, duration_s=1.0)
    assert [i.item_id for i in m.items] == ["two"] and "--downmix" in m.rejected[0].problem
    from reports.cli import build_parser

    assert "--downmix" in build_parser()._subparsers._group_actions[0].choices["run"].format_help()


# -- the request decides the manifest -----------------------------------------------------------------------------


def test_an_item_window_past_a_files_end_rejects_that_file(tmp_path: Path) -> None:
    vocals = tmp_path / "v"
    vocals.mkdir()
    sf.write(vocals / "short.wav", _tone(1.0), RATE)
    sf.write(vocals / "long.wav", _tone(6.0), RATE)
    m = folder_manifest(vocals, None, duration_s=2.0, start_s=3.0)
    assert [i.item_id for i in m.items] == ["long"] and m.items[0].start_s == 3.0
    assert "window" in m.rejected[0].problem
    window = m.items[0].read_vocal()
    assert window.shape == (2, 2 * RATE)
    whole, _ = sf.read(vocals / "long.wav", dtype="float32")
    np.testing.assert_allclose(window[0], whole[3 * RATE: 5 * RATE], atol=1e-6)


def test_a_sidecar_from_before_checksums_is_upgraded_when_its_audio_decodes_whole(tmp_path: Path) -> None:
    """Runs made before issue 12 keep their (costly) samples: a v1 sidecar naming this very sample, beside audio
    that decodes whole, is rewritten with the audio's sha256; one beside a truncated FLAC is redone."""
    out = tmp_path / "out"
    _finished(out)
    for item, truncate in (("syn-001", False), ("syn-002", True)):
        audio, sidecar = _flac_and_sidecar(out, item)
        v2 = json.loads(sidecar.read_text())
        v1 = {k: v2[k] for k in ("model", "item_id", "sample_id", "weights", "model_key", "seconds", "label")}
        sidecar.write_text(json.dumps({**v1, "path": audio.name, "sample_rate": v2["sample_rate"]}))
        if truncate:
            audio.write_bytes(audio.read_bytes()[:-2000])
    calls = NoiseGenerator.calls
    log: list[str] = []
    evaluate(_cfg(out, models=(FAKE, "reference"), n=4), log=log.append)
    assert NoiseGenerator.calls == calls + 1  # syn-002 only
    kept = json.loads(_flac_and_sidecar(out, "syn-001")[1].read_text())
    assert kept["format"] == "samuel-bench-sample/2" and "sidecar_upgraded_from" in kept["info"]
    assert any("redo fake-noise syn-002" in line and "older sidecar" in line for line in log), log


# -- a full disk ------------------------------------------------------------------------------------------------------


def test_a_full_disk_stops_the_run_with_one_line_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # defect: on a full disk every sample failed alone as "LibsndfileError: System error.", the run went on through
    # timing, scoring and the report, and nothing said the disk was full
    import errno

    import samuel.audio
    from samuel.atomic import DiskFull

    real_write = samuel.audio.write_audio

    def full_under_samples(path, *args, **kwargs):  # the inputs fit; the first sample does not
        if "samples" in Path(path).parts:
            raise DiskFull(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(samuel.audio, "write_audio", full_under_samples)
    out = tmp_path / "out"
    calls = NoiseGenerator.calls
    code = main(["--models", FAKE, "--n", "3", "--duration", "1", "--out", str(out), "--no-progress",
                 "--metrics", "signal"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"samuel-eval: no space left on the device writing {out / 'samples' / FAKE}" in err
    assert "free some space and rerun the same command to resume" in err
    assert NoiseGenerator.calls == calls + 1  # stopped at the first sample, not one failure per item
    assert not (out / "scores.json").exists()  # nor went on to score and report


def test_a_changed_request_counts_new_changed_and_dropped_items_apart(tmp_path: Path) -> None:
    # "1 new or changed (the samples of those are now stale)" for an item just added, which has no samples
    out = tmp_path / "out"
    _eval(_cfg(out, n=2, passes=("params",)))
    logged: list[str] = []
    evaluate(_cfg(out, n=3, passes=("params",)), log=logged.append)
    line = next(x for x in logged if x.startswith("manifest: the request differs"))
    assert line.endswith("2 items kept, 0 changed, 1 new, 0 dropped")
    logged.clear()
    evaluate(_cfg(out, n=2, passes=("params",)), log=logged.append)
    line = next(x for x in logged if x.startswith("manifest: the request differs"))
    assert ("2 items kept, 0 changed, 0 new, 1 dropped (the samples of the changed and dropped ones are now stale"
            in line)


def test_a_rerun_that_adds_references_says_so_rather_than_calling_the_items_moved(tmp_path: Path) -> None:
    # defect: a stem tree run first without --references, then with them, logged "3 items kept (3 of them with
    # their files at another path, e.g. a moved run folder: same content...)": nothing had moved
    vocals, refs = _songs(tmp_path)
    run = RunFolder(tmp_path / "out")
    prepare(_cfg(tmp_path / "out", vocals=vocals), run, lambda s: None)
    logged: list[str] = []
    prepare(_cfg(tmp_path / "out", vocals=vocals, references=refs), run, logged.append)
    line = next(x for x in logged if x.startswith("manifest: the request differs"))
    assert "3 items kept (3 of them now with a reference accompaniment), 0 changed, 0 new, 0 dropped" in line
    logged.clear()
    prepare(_cfg(tmp_path / "out", vocals=vocals), run, logged.append)
    assert "(3 of them now without a reference accompaniment)" in next(
        x for x in logged if x.startswith("manifest: the request differs"))
