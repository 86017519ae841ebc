"""Items cut from whole songs (issue 14, part 3): ``--window auto|start|SECONDS`` and ``--windows-per-song K``.

The songs are 3 and 4 minutes at 48 kHz with a 20 s instrumental intro (the vocal stem is silent or at -80 dBFS
there), then a sung-like line (a harmonic tone with vibrato moving through a scale); references are an octave-down
bass line plus a different intro pattern. They are written once per module. Each test names what it guards.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fake_generators import NoiseGenerator

from baselines import registry
from bench.evaluate import EvalConfig, EvalResult, evaluate
from bench.manifest import Manifest, folder_manifest
from bench.runfolder import RunFolder
from bench.windows import (
    ABSOLUTE_FLOOR_DBFS,
    FRAME_S,
    WindowRule,
    active_frames,
    choose_windows,
    frame_levels_db,
    most_active_starts,
    parse_window,
    vocal_levels_db,
    window_item_id,
)

FAKE = "fake-noise"
registry.register(FAKE, "fake_generators:NoiseGenerator")
RATE = 48_000
INTRO_S = 20.0
DURATION_S = 6.0
TILE_S = 20.0  # seconds of distinct melody, repeated (a whole number of 0.5 s notes and 10 s phrases)
SCALE_HZ = (220.0, 246.9, 277.2, 293.7, 329.6, 370.0, 415.3, 440.0)  # A major


def _sung(seconds: float, seed: int, rests: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A mono 'voice' of ``seconds``: three harmonics, 5.5 Hz vibrato, a new scale note every 0.5 s, phase
    continuous, and its notes; ``rests`` = (sing_s, rest_s) cuts it into phrases with digital silence between
    them."""
    n = round(seconds * RATE)
    t = np.arange(n, dtype=np.float64) / RATE
    notes = np.random.default_rng(seed).choice(SCALE_HZ, size=int(seconds / 0.5) + 1)
    f0 = notes[(t / 0.5).astype(int)] * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voice = 0.3 * (np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase))
    voice *= 0.75 + 0.25 * np.sin(2 * np.pi * 1.5 * t)  # syllables: never 30 dB down
    if rests is not None:
        sing, rest = rests
        voice[(t % (sing + rest)) >= sing] = 0.0
    return voice.astype(np.float32), notes


def _song(seconds: float, seed: int, rests: tuple[float, float] | None = None, intro_noise: float = 0.0
          ) -> tuple[np.ndarray, np.ndarray]:
    """(vocal (frames,), accompaniment (frames, 2)) of a song whose vocal enters at INTRO_S: a bass line an octave
    below the sung notes, a steady 110 Hz in the intro. A TILE_S stretch is synthesised and repeated (fast)."""
    intro, n = round(INTRO_S * RATE), round((seconds - INTRO_S) * RATE)
    voice, notes = _sung(TILE_S, seed, rests)
    t = np.arange(voice.size) / RATE
    bass_f = notes[(t / 0.5).astype(int)] / 2
    bass = 0.25 * np.sin(2 * np.pi * np.cumsum(bass_f) / RATE)
    reps = -(-n // voice.size)
    rng = np.random.default_rng(seed + 100)
    vocal = np.concatenate([(intro_noise * rng.standard_normal(intro)).astype(np.float32),
                            np.tile(voice, reps)[:n]])
    intro_bass = 0.25 * np.sin(2 * np.pi * 110.0 * np.arange(intro) / RATE)
    line = np.concatenate([intro_bass, np.tile(bass, reps)[:n]]).astype(np.float32)
    return vocal, np.stack([line, 0.9 * line], axis=1)


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """alpha: 3 min, mono WAV, sings without a break from 20 s, a -80 dBFS hiss before. beta: 4 min, stereo FLAC,
    8 s phrases with 2 s rests from 20 s, digital silence before. A bad file sorts between them."""
    root = tmp_path_factory.mktemp("songs")
    vocals, refs = root / "vocals", root / "refs"
    vocals.mkdir()
    refs.mkdir()
    vocal, acc = _song(180.0, 1, intro_noise=1e-4)
    sf.write(vocals / "alpha.wav", vocal, RATE)
    sf.write(refs / "alpha.wav", acc, RATE)
    vocal, acc = _song(240.0, 2, rests=(8.0, 2.0))
    sf.write(vocals / "beta.flac", np.stack([vocal, 0.8 * vocal], axis=1), RATE, subtype="PCM_16")
    sf.write(refs / "beta.flac", acc, RATE, subtype="PCM_16")
    (vocals / "alpha_broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    return vocals, refs


def _cut(path: Path, start_s: float, duration_s: float) -> np.ndarray:
    """The window read directly (soundfile seek), converted as every reader converts: (2, S) at 44.1 kHz."""
    from samuel.audio import to_stereo_44k

    with sf.SoundFile(str(path)) as f:
        f.seek(round(start_s * f.samplerate))
        data = f.read(round(duration_s * f.samplerate), dtype="float32", always_2d=True)
    return to_stereo_44k(data, RATE)


# -- the pure rule -------------------------------------------------------------------------------------------------


def test_frame_levels_are_rms_in_db_averaged_over_channels() -> None:
    t = np.arange(RATE) / RATE
    sine = 0.5 * np.sin(2 * np.pi * 1000 * t)
    levels = frame_levels_db(np.stack([sine, -sine], axis=1), 4800)  # out of phase: power, not the sum
    assert levels.shape == (10,)
    np.testing.assert_allclose(levels, 20 * np.log10(0.5 / np.sqrt(2)), atol=1e-6)  # -9.03 dB
    assert frame_levels_db(np.zeros(9600), 4800).tolist() == [-np.inf, -np.inf]
    assert frame_levels_db(np.ones(4799), 4800).size == 0  # a partial frame is dropped


def test_the_activity_gate_is_relative_to_the_peak_with_an_absolute_floor() -> None:
    levels = np.array([-5.0, -20.0, -34.9, -35.1, -np.inf])
    assert active_frames(levels).tolist() == [True, True, True, False, False]  # within 30 dB of -5
    quiet = np.array([-55.0, -59.0, -61.0])  # peak -55: the floor (-60 dBFS) decides, not peak - 30
    assert active_frames(quiet).tolist() == [True, True, False]
    assert ABSOLUTE_FLOOR_DBFS == -60.0 and not active_frames(np.full(4, -np.inf)).any()


def test_greedy_windows_take_the_most_active_earliest_and_never_overlap() -> None:
    active = np.zeros(40, dtype=bool)
    active[10:20] = True  # the best 5-frame windows: starts 10..15; the earliest wins
    active[30:33] = True
    assert most_active_starts(active, 5, 1) == [10]
    assert most_active_starts(active, 5, 2) == [10, 15]  # 15 overlaps nothing of [10, 15)
    three = most_active_starts(active, 5, 3)
    assert three == [10, 15, 28]  # 3 active frames: starts 28..30 tie; the earliest
    assert all(b - a >= 5 for a, b in itertools.pairwise(three))
    assert most_active_starts(active, 41, 1) == []  # no window fits
    # every start taken: K larger than what fits gives what fits, still disjoint
    many = most_active_starts(np.ones(23, dtype=bool), 5, 10)
    assert len(many) == 4 and all(b - a >= 5 for a, b in itertools.pairwise(many))


def test_choose_windows_per_rule_and_for_a_song_shorter_than_its_item() -> None:
    levels = np.concatenate([np.full(200, -80.0), np.full(400, -10.0)])  # 60 s: silent 20 s, then sung
    (w,) = choose_windows(WindowRule("auto"), 60.0, 6.0, levels)
    assert (w.start_s, w.activity, w.note) == (20.0, 1.0, "")
    two = choose_windows(WindowRule("auto", per_song=2), 60.0, 6.0, levels)
    assert [x.start_s for x in two] == [20.0, 26.0]
    fixed = choose_windows(WindowRule("fixed", 10.0, per_song=3), 60.0, 6.0)
    assert [x.start_s for x in fixed] == [10.0, 16.0, 22.0] and fixed[0].activity is None
    assert [x.start_s for x in choose_windows(WindowRule("start", per_song=20), 60.0, 6.0)] == [6.0 * k
                                                                                                for k in range(10)]
    assert choose_windows(WindowRule("fixed", 60.0), 60.0, 6.0) == []  # the caller rejects the file
    (short,) = choose_windows(WindowRule("auto", per_song=3), 4.0, 6.0, levels[:40])
    assert short.start_s == 0.0 and "shorter than the item's 6 s" in short.note
    (short_start,) = choose_windows(WindowRule("start"), 4.0, 6.0)
    assert short_start.start_s == 0.0 and "cut at its end" in short_start.note
    (silent,) = choose_windows(WindowRule("auto"), 60.0, 6.0, np.full(600, -np.inf))
    assert silent.start_s == 0.0 and "no vocal activity" in silent.note


def test_a_window_placed_by_start_or_seconds_says_how_much_the_vocal_sings_in_it() -> None:
    """'start' on whole songs cut every item from the intro: items of silence, accompaniment to nothing and no
    adherence value, with nothing said. The activity is the auto rule's A(s) over the frames the window covers."""
    levels = np.concatenate([np.full(200, -80.0), np.full(400, -10.0)])  # 60 s: silent 20 s, then sung
    (intro,) = choose_windows(WindowRule("start"), 60.0, 6.0, levels)
    assert intro.activity == 0.0 and intro.note.startswith("no vocal activity in the window")
    (half,) = choose_windows(WindowRule("fixed", 17.0), 60.0, 6.0, levels)  # frames 170-229: 30 of 60 active
    assert half.activity == 0.5 and half.note == ""
    (little,) = choose_windows(WindowRule("fixed", 16.5), 60.0, 6.0, levels)  # 25 of 60
    assert little.activity == pytest.approx(0.4167) and "active in only 42% of the window's 0.1 s frames" in little.note
    sung = choose_windows(WindowRule("fixed", 30.0, per_song=3), 60.0, 6.0, levels)
    assert [(w.activity, w.note) for w in sung] == [(1.0, "")] * 3
    (cut,) = choose_windows(WindowRule("fixed", 57.0), 60.0, 6.0, levels)  # 3 s left, all sung
    assert cut.activity == 1.0 and cut.note.startswith("the song lasts 60.00 s") and "active in only" not in cut.note


def test_a_run_from_the_start_of_whole_songs_says_the_windows_are_silent(songs: tuple[Path, Path],
                                                                          tmp_path: Path) -> None:
    from bench.evaluate import requested_manifest

    vocals, _ = songs
    logged: list[str] = []
    cfg = EvalConfig(out=tmp_path / "out", models=(FAKE,), vocals=vocals, n=None, duration_s=DURATION_S)
    manifest = requested_manifest(cfg, RunFolder(tmp_path / "out"), logged.append)
    assert [i.item_id for i in manifest.items] == ["alpha", "beta"]
    assert [manifest.request["windows"][i]["activity"] for i in ("alpha", "beta")] == [0.0, 0.0]  # the intro
    assert any(line.startswith("manifest: 2 of 2 items have the vocal active in under 50% of their window "
                               "(alpha, beta)") and "--window auto" in line for line in logged), logged


def test_a_stereo_vocal_whose_channels_cancel_in_mono_is_said_on_its_windows(tmp_path: Path) -> None:
    """A phase-inverted stereo vocal sings to a listener (and to the activity gate, which averages power) but is
    silence to the adherence metrics, which read the mono average: its adherence came out NaN with no cause given."""
    from bench.windows import song_windows, vocal_levels_and_mono_loss

    rng = np.random.default_rng(0)
    voice = (0.3 * rng.standard_normal(RATE * 12)).astype(np.float32)
    cases = {"same": np.stack([voice, voice], 1), "mono": voice[:, None],
             "unrelated": np.stack([voice, (0.3 * rng.standard_normal(voice.size)).astype(np.float32)], 1),
             "inverted": np.stack([voice, -voice], 1), "silent": np.zeros((RATE * 12, 2), np.float32)}
    loss = {}
    for name, audio in cases.items():
        sf.write(tmp_path / f"{name}.wav", audio, RATE, subtype="FLOAT")
        loss[name] = vocal_levels_and_mono_loss(tmp_path / f"{name}.wav")[2]
    assert loss["same"] == pytest.approx(0.0, abs=1e-9) and loss["mono"] == 0.0 and loss["silent"] == 0.0
    assert loss["unrelated"] == pytest.approx(10 * np.log10(2), abs=0.05)  # two unrelated channels: 3 dB
    assert loss["inverted"] == np.inf
    (inverted,) = song_windows(tmp_path / "inverted.wav", WindowRule("start"), 6.0)
    assert "its channels cancel in the mono average (all of its power lost; phase-inverted?)" in inverted.note
    (same,) = song_windows(tmp_path / "same.wav", WindowRule("start"), 6.0)
    assert same.note == "" and same.activity == 1.0


def test_window_option_values() -> None:
    assert [parse_window(x) for x in ("auto", "START", "0", "12.5")] == ["auto", "start", "start", "12.5"]
    for bad in ("soon", "-1", "nan", "inf", ""):
        with pytest.raises(ValueError, match="auto, start or a number"):
            parse_window(bad)
    assert WindowRule.from_option("12.5") == WindowRule("fixed", 12.5)
    assert WindowRule.from_option("start", 3.0) == WindowRule("fixed", 3.0)  # --start S is --window S
    with pytest.raises(ValueError, match="--start 3 and --window auto"):
        WindowRule.from_option("auto", 3.0)
    with pytest.raises(ValueError, match="windows per song"):
        WindowRule("auto", per_song=0)
    assert [window_item_id("song", k, 1) for k in range(1)] == ["song"]
    assert [window_item_id("song", k, 2) for k in range(2)] == ["song__w1", "song__w2"]


# -- the file I/O ----------------------------------------------------------------------------------------------------


def test_levels_read_in_blocks_equal_the_whole_file_read_at_once(songs: tuple[Path, Path]) -> None:
    path = songs[0] / "beta.flac"
    levels, song_s = vocal_levels_db(path)
    whole, rate = sf.read(str(path), dtype="float32", always_2d=True)
    assert song_s == pytest.approx(240.0) and levels.size == round(240.0 / FRAME_S)
    np.testing.assert_array_equal(levels, frame_levels_db(whole, round(FRAME_S * rate)))


def test_auto_skips_the_intro_and_the_manifest_records_each_window(songs: tuple[Path, Path]) -> None:
    vocals, refs = songs
    m = folder_manifest(vocals, None, references=refs, duration_s=DURATION_S,
                        window=WindowRule("auto", per_song=2))
    assert [r.path for r in m.rejected] == [str(vocals / "alpha_broken.wav")]
    assert [(i.item_id, i.start_s) for i in m.items] == [("alpha__w1", 20.0), ("alpha__w2", 26.0),
                                                         ("beta__w1", 20.0), ("beta__w2", 30.0)]
    for song in ("alpha", "beta"):
        starts = sorted(i.start_s for i in m.items if i.item_id.startswith(song))
        assert all(b - a >= DURATION_S for a, b in itertools.pairwise(starts))  # no overlap
    assert all(i.reference and Path(i.reference).stem == i.item_id.split("__")[0] for i in m.items)
    assert m.request["window"]["mode"] == "auto" and "dBFS" in m.request["window"]["rule"]
    assert m.request["windows"]["beta__w2"] == {"start_s": 30.0, "duration_s": DURATION_S, "activity": 1.0,
                                                "note": ""}
    back = Manifest.from_dict(json.loads(json.dumps(m.to_dict())))
    assert back.items == m.items and back.request["windows"] == m.request["windows"]
    # the window the items read is the seconds from 20 s on, not the intro
    np.testing.assert_array_equal(m.items[0].read_vocal(), _cut(vocals / "alpha.wav", 20.0, DURATION_S))
    np.testing.assert_array_equal(m.items[3].read_reference(), _cut(refs / "beta.flac", 30.0, DURATION_S))


def test_the_default_window_keeps_the_ids_of_runs_made_before_windows(songs: tuple[Path, Path]) -> None:
    vocals, _ = songs
    old = folder_manifest(vocals, None, duration_s=DURATION_S)  # as before: no window argument, from 0
    new = folder_manifest(vocals, None, duration_s=DURATION_S, window=WindowRule.from_option("start"))
    assert [i.item_id for i in old.items] == ["alpha", "beta"] and old.items == new.items
    assert all("start_s" not in i.key() for i in new.items)
    fixed = folder_manifest(vocals, None, duration_s=DURATION_S, window=WindowRule.from_option("42.5"))
    assert [i.start_s for i in fixed.items] == [42.5, 42.5] and fixed.items[0].key()["start_s"] == 42.5


def test_a_song_shorter_than_the_window_and_a_six_channel_song(tmp_path: Path) -> None:
    vocals = tmp_path / "v"
    vocals.mkdir()
    short, _ = _song(INTRO_S + 4.0, 3)
    sf.write(vocals / "a_short.wav", short[-round(4.0 * RATE):], RATE)  # 4 s, all sung
    six = np.repeat(_song(INTRO_S + 30.0, 4)[0][:, None], 6, axis=1) * np.linspace(1, 0.2, 6, dtype=np.float32)
    sf.write(vocals / "b_surround.wav", six, RATE)
    m = folder_manifest(vocals, None, duration_s=DURATION_S, window=WindowRule("auto", per_song=2))
    assert [i.item_id for i in m.items] == ["a_short__w1"] and m.items[0].start_s == 0.0
    assert "shorter than the item's 6 s" in m.request["windows"]["a_short__w1"]["note"]
    assert m.items[0].read_vocal().shape == (2, round(4.0 * 44_100))  # what the file has
    (rej,) = m.rejected
    assert rej.path.endswith("b_surround.wav") and "6 channels" in rej.problem and "--downmix" in rej.problem
    folded = folder_manifest(vocals, None, duration_s=DURATION_S, window=WindowRule("auto", per_song=2),
                             downmix=True)
    assert [(i.item_id, i.start_s) for i in folded.items] == [("a_short__w1", 0.0), ("b_surround__w1", 20.0),
                                                              ("b_surround__w2", 26.0)]
    assert folded.items[1].read_vocal().shape == (2, round(DURATION_S * 44_100))


# -- end to end ------------------------------------------------------------------------------------------------------


def _cfg(out: Path, vocals: Path, refs: Path, **kw: object) -> EvalConfig:
    base: dict[str, object] = {"out": out, "models": (FAKE, "reference"), "n": 10, "duration_s": DURATION_S,
                               "vocals": vocals, "references": refs, "window": "auto", "windows_per_song": 2,
                               "no_progress": True, "metrics": ("adherence",), "resamples": 100, "probe": 0,
                               "passes": ("generate", "score")}
    base.update(kw)
    return EvalConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def run(songs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, EvalResult, list[str]]:
    vocals, refs = songs
    out = tmp_path_factory.mktemp("run") / "out"
    log: list[str] = []
    return out, evaluate(_cfg(out, vocals, refs), log=log.append), log


@pytest.mark.slow
def test_a_run_on_whole_songs_scores_adherence_on_the_chosen_windows(songs: tuple[Path, Path],
                                                                     run: tuple[Path, EvalResult, list[str]]) -> None:
    from bench.metrics.adherence import adherence

    vocals, refs = songs
    out, res, log = run
    assert [(f.stage, Path(f.what).name) for f in res.failures] == [("prepare", "alpha_broken.wav")]
    assert any("auto: windows with the largest share" in line for line in log), log
    manifest = RunFolder(out).read_manifest()
    assert sorted(manifest.request["windows"]) == ["alpha__w1", "alpha__w2", "beta__w1", "beta__w2"]
    ref_clips = {c["item_id"]: c["values"] for c in res.scores["models"]["reference"]["clips"]}
    assert sorted(ref_clips) == sorted(manifest.request["windows"])
    assert res.scores["models"][FAKE]["per_clip"]["adherence.chroma_agreement"]["n"] == 4
    for item in manifest.items[1::2]:  # each song's second window (pYIN is slow; the first windows start at 20 s too)
        song = item.item_id.split("__")[0]
        vocal_file = next(vocals.glob(f"{song}.*"))
        ref_file = next(refs.glob(f"{song}.*"))
        direct = adherence(_cut(vocal_file, item.start_s, DURATION_S), 44_100,
                           _cut(ref_file, item.start_s, DURATION_S), 44_100)
        for key in ("chroma_agreement", "key_agreement", "rhythm_agreement"):
            got = ref_clips[item.item_id][f"adherence.{key}"]
            assert got == pytest.approx(getattr(direct, key), abs=2e-3), (item.item_id, key)
    assert all(v["adherence.chroma_agreement"] > 0.5 for v in ref_clips.values())  # the bass follows the notes
    # the test tells windows apart: the intro's window (where `--window start` would cut) scores nothing alike
    intro = adherence(_cut(vocals / "alpha.wav", 0.0, DURATION_S), 44_100, _cut(refs / "alpha.wav", 0.0, DURATION_S),
                      44_100)
    assert not intro.chroma_agreement > 0.5


@pytest.mark.slow
def test_a_rerun_into_the_same_folder_reuses_everything(songs: tuple[Path, Path],
                                                        run: tuple[Path, EvalResult, list[str]]) -> None:
    vocals, refs = songs
    out, first, _ = run
    calls = NoiseGenerator.calls
    log: list[str] = []
    again = evaluate(_cfg(out, vocals, refs), log=log.append)
    assert NoiseGenerator.calls == calls  # no sample generated anew
    assert any("manifest: reusing" in line for line in log), log
    assert any("4 already there" in line for line in log), log
    for model in (FAKE, "reference"):
        assert again.scores["models"][model]["per_clip"] == first.scores["models"][model]["per_clip"]


def test_bad_window_options_are_usage_errors_naming_the_flag(songs: tuple[Path, Path], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from reports.cli import main

    vocals, _ = songs
    common = ["--models", FAKE, "--out", str(tmp_path / "o"), "--no-progress", "--vocals", str(vocals)]
    for args, says in ((["--window", "soon"], "--window"), (["--windows-per-song", "0"], "--windows-per-song"),
                       (["--window", "auto", "--start", "3"], "--start 3 and --window auto")):
        assert main([*common, *args]) == 2
        assert says in capsys.readouterr().err
    assert main(["--models", FAKE, "--out", str(tmp_path / "p"), "--no-progress", "--window", "auto"]) == 2
    assert "cut --vocals songs" in capsys.readouterr().err
    assert not (tmp_path / "o" / "samples").exists()


# -- the report: worst clips per metric ------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_report_lists_the_worst_clips_per_metric_with_players(run: tuple[Path, EvalResult, list[str]]) -> None:
    from reports.html import load_run, players_for, render_report
    from reports.worst import worst_clips, worst_items_section

    out, res, _ = run
    data = load_run(out)
    clips = worst_clips(data.clip_rows, 2)
    chroma = [c for c in clips if c.metric == "adherence.chroma_agreement"]
    values = sorted(c["values"]["adherence.chroma_agreement"] for c in res.scores["models"][FAKE]["clips"])
    assert [c.value for c in chroma] == pytest.approx(values[:2])  # the lowest first: higher is better
    assert {c.model for c in clips} == {FAKE}  # the reference row is not ranked
    assert all(c.metric != "adherence.onset_alignment" for c in clips)  # a diagnostic has no direction
    encoded: list[tuple[str, float]] = []
    section = worst_items_section(data, 2, encode=lambda p, s, start: encoded.append((p.name, start)) or b"mp3")
    assert section.startswith('<section id="worst">') and "higher is better" in section
    starts = {i.item_id: i.start_s for i in data.manifest.items}
    for c in chroma:
        assert f'id="worst-{c.item_id}"' in section
        vocal_name = "alpha.wav" if c.item_id.startswith("alpha") else "beta.flac"
        assert (vocal_name, starts[c.item_id]) in encoded  # the vocal plays its window
    assert worst_items_section(data, 0) == ""
    for item, row in players_for(data):  # the report's matched-item players play the item's window too
        inputs = [p for p in row if p.path is not None and str(p.path) in (item.vocal, item.reference)]
        assert inputs and all(p.start_s == item.start_s for p in inputs)
        assert all(p.start_s == 0.0 for p in row if p not in inputs)  # samples hold the window already
    page = render_report(data, excerpt_s=1.0)
    assert page.count('<section id="worst">') == 1 and "data:audio/mpeg;base64," in page


class _Run:
    """The few RunData fields reports.worst reads."""

    def __init__(self, rows: list[dict[str, object]], mix: dict[str, object] | None = None) -> None:
        self.clip_rows, self.random_models, self.manifest = rows, {"samuel"}, None
        self.scores_json = {"mix": mix} if mix else {}
        self.folder = Path("/nonexistent")

    def display_name(self, model: str) -> str:
        return model.upper()


def _row(model: str, item: str, metric: str, value: float) -> dict[str, object]:
    return {"model": model, "item_id": item, "sample_id": f"{model}-{item}", "weights": "pretrained",
            "metric": metric, "value": value}


def test_worst_follows_each_metrics_direction_and_skips_the_reference_and_random_rows() -> None:
    from reports.worst import view_rows, worst_clips, worst_items_section

    rows = [_row("a", "i1", "signal.clipping_share", 0.2), _row("b", "i1", "signal.clipping_share", 0.5),
            _row("a", "i2", "signal.clipping_share", 0.5), _row("reference", "i3", "signal.clipping_share", 0.9),
            _row("samuel", "i3", "signal.clipping_share", 1.0),  # random weights: not ranked
            _row("a", "i1", "adherence.chroma_agreement", 0.7), _row("b", "i2", "adherence.chroma_agreement", 0.1),
            _row("a", "i1", "signal.lufs", -60.0), _row("a", "i1", "no.such_metric", 0.0)]
    got = [(c.metric, c.rank, c.model, c.item_id, c.value)
           for c in worst_clips(rows, 2, exclude={"samuel"})]
    assert got == [("signal.clipping_share", 1, "a", "i2", 0.5),  # lower is better: the highest first, ties by model
                   ("signal.clipping_share", 2, "b", "i1", 0.5),
                   ("adherence.chroma_agreement", 1, "b", "i2", 0.1)]  # higher is better: the lowest first
    # the best clip is never "worst" (0.7 above), and a metric on which every clip ties ranks nothing: clipping
    # share 0 everywhere listed arbitrary clips, whose players the report then showed
    tied = [_row(m, i, "signal.clipping_share", 0.0) for m in ("a", "b") for i in ("i1", "i2")]
    assert worst_clips(tied, 3) == []
    mix = {"models": {"a": {"clips": [{"item_id": "i9", "sample_id": "s9", "values": {"signal.clipping_share": 0.3}},
                                      {"item_id": "i8", "sample_id": "s8", "values": {"signal.clipping_share": 0.0}}]}}}
    run = _Run(rows, mix)
    assert [r["item_id"] for r in view_rows(run, "mix")] == ["i9", "i8"]
    section = worst_items_section(run, 1)  # no encoder: the table alone
    assert "<audio" not in section and section.count("<tr>") == 1 + 3  # header + 2 metrics + 1 mix row
    assert ">mix<" in section and "SAMUEL" not in section and "REFERENCE" not in section
    assert "No per-clip values" in worst_items_section(_Run([]), 3)


def test_when_greedy_leaves_gaps_the_best_set_of_windows_that_fit_is_taken() -> None:
    """A 24 s song, 10 s windows, two per song: greedy took the most active start (5.5 s), which left no room for a
    second window, and the note blamed the song ("1 of 2 non-overlapping windows found"); windows at 0 and 12 s fit
    and are nearly as active."""
    from bench.windows import most_active_set, most_active_starts

    active = np.ones(240)
    active[:55] = active[155:] = 0.0
    active[0:40:3] = active[160:240:4] = 1.0  # some activity on both sides
    greedy_first = most_active_starts(active, 100, 1)
    assert greedy_first == [55]
    starts = most_active_starts(active, 100, 2)
    assert len(starts) == 2 and starts[1] - starts[0] >= 100 and starts[1] + 100 <= 240
    rng = np.random.default_rng(4)
    for _ in range(40):  # against brute force: the largest total, earliest among equals
        n, w, m = int(rng.integers(6, 16)), int(rng.integers(2, 5)), int(rng.integers(1, 4))
        if m * w > n:
            continue
        a = (rng.random(n) > 0.5).astype(float)
        csum = np.concatenate([[0.0], np.cumsum(a)])
        score = csum[w:] - csum[: n - w + 1]
        combos = [c for c in itertools.combinations(range(n - w + 1), m)
                  if all(y - x >= w for x, y in itertools.pairwise(c))]
        best = max(score[list(c)].sum() for c in combos)
        got = most_active_set(score, w, m)
        assert score[got].sum() == best and all(y - x >= w for x, y in itertools.pairwise(got))
