"""The harness: statistics (golden numbers), manifest and sample ids, registry, matched generation with resume and
bad items, the timing protocol, Table II (snapshot), `samuel-eval` commands and torchrun sharding."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fake_generators import NoiseGenerator

from baselines import registry
from baselines.base import ItemError, ParamCount, WeightsChoice
from bench import stats
from bench.evaluate import EvalConfig, evaluate
from bench.manifest import Item, Manifest, folder_manifest, sample_id, synthetic_manifest
from bench.results import RunResults
from bench.runfolder import RunFolder
from bench.synthetic import item_meta, render_accompaniment, render_vocal
from bench.timing import time_model

HERE = Path(__file__).parent
FAKE = "fake-noise"
registry.register(FAKE, "fake_generators:NoiseGenerator")


@pytest.fixture(autouse=True)
def _fresh_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NoiseGenerator, "calls", 0)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# -- statistics: golden numbers ---------------------------------------------------------------------------------


def test_median_ci_ranks_golden() -> None:
    assert stats.median_ci_ranks(5) is None  # 1 - 2/32 = 0.9375 < 0.95
    r, s, cov = stats.median_ci_ranks(6)
    assert (r, s) == (1, 6) and cov == pytest.approx(1 - 2 / 64)
    r, s, cov = stats.median_ci_ranks(10)
    assert (r, s) == (2, 9) and cov == pytest.approx(1 - 2 * 11 / 1024)  # P(B <= 1) = 11/1024
    r, s, cov = stats.median_ci_ranks(100)
    assert (r, s) == (40, 61) and cov == pytest.approx(0.96480, abs=1e-5)  # (41, 60) would cover only 0.9431


def test_median_ci_values_and_small_n() -> None:
    est = stats.median_ci([5.0, 1.0, 4.0, 2.0, 3.0, 6.0])
    assert (est.value, est.low, est.high, est.n) == (3.5, 1.0, 6.0, 6)
    small = stats.median_ci([1.0, 2.0, 3.0])
    assert small.value == 2.0 and math.isnan(small.low) and "n >= 6" in small.method


def test_median_ci_coverage_when_item_times_drift() -> None:
    """Table II's note: the order-statistic interval assumes independent items. Item times as a stationary AR(1)
    series (lag-one correlation rho; its median 0 is the truth), 6 items, 20,000 series each: coverage 96.9% at
    rho = 0 (exactly 1 - 2/64), 92.1% at 0.3, 79.1% at 0.6."""
    rng = np.random.default_rng(5)
    r, s, exact = stats.median_ci_ranks(6)
    covered = {}
    for rho in (0.0, 0.3, 0.6):
        e = rng.standard_normal((20_000, 6))
        x = np.empty_like(e)
        x[:, 0] = e[:, 0]
        for t in range(1, 6):
            x[:, t] = rho * x[:, t - 1] + math.sqrt(1 - rho**2) * e[:, t]
        ordered = np.sort(x, axis=1)
        covered[rho] = float(np.mean((ordered[:, r - 1] <= 0) & (ordered[:, s - 1] >= 0)))
    assert covered[0.0] == pytest.approx(exact, abs=0.005)
    assert 0.90 <= covered[0.3] <= 0.94 and 0.76 <= covered[0.6] <= 0.82, covered


def test_median_ci_coverage_on_skewed_data() -> None:
    """On lognormal samples (skewed like timings) the interval covers the true median >= 95% of the time."""
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        e = stats.median_ci(rng.lognormal(0.0, 1.0, 15))  # true median exp(0) = 1
        hits += e.low <= 1.0 <= e.high
    assert 0.95 <= hits / 2000 <= 0.99  # exact coverage for n = 15 is 0.9648


def test_extrapolate_growing_units_golden_and_against_a_known_total() -> None:
    # growth (1.5 - 0.5) / (6 - 2) = 0.25 per position; positions 3..5 add (p - 1) = 2 + 3 + 4 = 9
    assert stats.extrapolate_growing_units(10.0, [1.0, 1.0, 1.0], 3, 6, 0.5, 1.5) == pytest.approx(15.25)
    assert stats.extrapolate_growing_units(4.0, [0.5, 0.5], 3, 25, 0.2, 0.2) == stats.extrapolate_steps(
        4.0, [0.5, 0.5], 3, 25)
    # frames costing 0.05 s of overhead plus a decoder step growing linearly from 0.07 s to 0.22 s (bf16
    # MusicGen-Small on a Zen 4: 68 ms to 218 ms over 2,380 frames): 12 frames measured, the rest extrapolated
    total, k, setup = 2380, 12, 3.0
    step = np.linspace(0.07, 0.22, total - 1)  # bare step at positions 1..N-1
    frame = 0.05 + np.concatenate([[step[0]], step])  # frame p (1-based) at cache position max(p - 1, 1)
    measured = setup + frame[:k].sum()
    true = setup + frame.sum()
    got = stats.extrapolate_growing_units(measured, list(frame[1:k]), k, total, step[0], step[-1])
    assert got == pytest.approx(true, rel=0.005)
    assert stats.extrapolate_steps(measured, list(frame[1:k]), k, total) < 0.7 * true  # the old lower bound
    with pytest.raises(ValueError, match="faster than the first"):  # noise: a negative g could make T negative
        stats.extrapolate_growing_units(10.0, [1.0, 1.0, 1.0], 3, 2380, 0.5, 0.1)


def test_extrapolate_steps_golden() -> None:
    # 3 of 25 steps took 0.5 s each inside a 4 s run: 4 + 22 * 0.5
    assert stats.extrapolate_steps(4.0, [0.5, 0.5], 3, 25) == pytest.approx(15.0)
    assert stats.extrapolate_steps(4.0, [], 25, 25) == 4.0


# -- manifest, sample ids, the synthetic set --------------------------------------------------------------------


def _item(vocal_sha: str = "aa", seed: int = 1) -> Item:
    return Item("x", "/v/x.wav", "p", seed, 47.55, None, vocal_sha)


def test_sample_id_depends_on_content_model_and_seed_not_on_paths() -> None:
    key = {"name": "m", "weights": "pretrained"}
    base = sample_id(_item(), key)
    assert sample_id(_item(), key) == base and len(base) == 16
    assert sample_id(Item("x", "/moved/x.wav", "p", 1, 47.55, None, "aa"), key) == base
    assert sample_id(_item(vocal_sha="bb"), key) != base  # a changed vocal file never reuses an old output
    assert sample_id(_item(seed=2), key) != base
    assert sample_id(_item(), {**key, "weights": "random"}) != base


def test_rank_device_gives_each_torchrun_rank_its_own_gpu() -> None:
    from samuel.dist import rank_device

    assert rank_device("cuda", {"WORLD_SIZE": "4", "LOCAL_RANK": "3"}) == "cuda:3"
    assert rank_device("cuda", {}) == "cuda"  # one process: torch's current device
    assert rank_device("cuda:1", {"WORLD_SIZE": "4", "LOCAL_RANK": "3"}) == "cuda:1"  # explicit: kept
    assert rank_device("cpu", {"WORLD_SIZE": "4", "LOCAL_RANK": "3"}) == "cpu"


def test_shards_are_disjoint_and_cover_the_manifest() -> None:
    m = Manifest(tuple(_item(seed=i) for i in range(7)), "t", 0)
    shards = [m.shard(r, 3) for r in range(3)]
    seeds = sorted(i.seed for s in shards for i in s)
    assert seeds == list(range(7))


def test_synthetic_set_is_deterministic_and_matches_its_metadata(tmp_path: Path) -> None:
    meta = item_meta(3, 6.0)
    assert meta == item_meta(3, 6.0)
    np.testing.assert_array_equal(render_vocal(meta, 3), render_vocal(item_meta(3, 6.0), 3))
    acc = render_accompaniment(meta, 3)
    assert acc.shape == (2, round(6.0 * 44_100)) and np.abs(acc).max() <= 0.8 + 1e-6
    # every strong-beat sung note is a tone of the bar's chord (the known ground truth)
    beat = 60.0 / meta.bpm
    for onset, _len, midi in meta.melody:
        b = round(onset / beat)
        if b % 2 == 0:
            assert midi % 12 in meta.chords[(b // 4) % 4]
    m1 = synthetic_manifest(tmp_path / "a", 2, duration_s=3.0)
    m2 = synthetic_manifest(tmp_path / "b", 2, duration_s=3.0)
    assert [i.vocal_sha256 for i in m1.items] == [i.vocal_sha256 for i in m2.items]  # same bytes on disk
    assert m1.items[0].prompt.startswith("pop accompaniment in ")


def test_synthetic_set_written_by_worker_processes_is_the_same_bytes_and_resumes(tmp_path: Path) -> None:
    from bench.synthetic import write_synthetic_set

    write_synthetic_set(tmp_path / "one", 5, duration_s=1.0, workers=1)
    write_synthetic_set(tmp_path / "two", 5, duration_s=1.0, workers=2)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert len(files) == 15
    for rel in files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes(), rel
    # a torn file is found by its checksum and rewritten; the intact items are kept as they are
    torn = tmp_path / "two" / "vocals" / "syn-002.flac"
    torn.write_bytes(torn.read_bytes()[:100])
    kept = (tmp_path / "two" / "meta" / "syn-000.json").stat().st_mtime_ns
    write_synthetic_set(tmp_path / "two", 5, duration_s=1.0, workers=2)
    assert torn.read_bytes() == (tmp_path / "one" / "vocals" / "syn-002.flac").read_bytes()
    assert (tmp_path / "two" / "meta" / "syn-000.json").stat().st_mtime_ns == kept


def test_folder_manifest_matches_references_and_reports_bad_folders(tmp_path: Path) -> None:
    (tmp_path / "v").mkdir()
    (tmp_path / "r").mkdir()
    for name in ("b_song", "a_song"):
        sf.write(tmp_path / "v" / f"{name}.wav", np.zeros(44100, np.float32), 44100)
    sf.write(tmp_path / "r" / "a_song.flac", np.zeros(44100, np.float32), 44100)
    m = folder_manifest(tmp_path / "v", None, references=tmp_path / "r")
    assert [i.item_id for i in m.items] == ["a_song", "b_song"]
    assert m.items[0].reference and m.items[0].reference.endswith("a_song.flac") and m.items[1].reference is None
    from bench.manifest import ManifestError

    with pytest.raises(ManifestError, match="no such folder"):
        folder_manifest(tmp_path / "nope", None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match="no audio files"):
        folder_manifest(tmp_path / "empty", None)


def test_a_folder_items_seed_follows_its_id_not_its_position(tmp_path: Path) -> None:
    """Fixing a bad file (or adding one) that sorts first must not move every later item's seed: that would make
    every later sample of every generative model stale on the rerun, and a run incomparable with the last one."""
    from bench.manifest import item_seed_for_id

    (tmp_path / "v").mkdir()
    for name in ("b_song", "c_song"):
        sf.write(tmp_path / "v" / f"{name}.wav", np.zeros(44100, np.float32), 44100)
    (tmp_path / "v" / "a_song.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio")  # rejected: sorts first
    before = folder_manifest(tmp_path / "v", None, duration_s=1.0, base_seed=7)
    assert [i.item_id for i in before.items] == ["b_song", "c_song"] and len(before.rejected) == 1
    sf.write(tmp_path / "v" / "a_song.wav", np.zeros(44100, np.float32), 44100)  # fixed
    after = folder_manifest(tmp_path / "v", None, duration_s=1.0, base_seed=7)
    seeds = {i.item_id: i.seed for i in after.items}
    assert [i.item_id for i in after.items] == ["a_song", "b_song", "c_song"]
    assert {i.item_id: i.seed for i in before.items} == {k: seeds[k] for k in ("b_song", "c_song")}
    assert before.items == after.items[1:]  # the same items, so their samples are reused
    assert seeds["b_song"] == item_seed_for_id(7, "b_song") != item_seed_for_id(8, "b_song")
    assert len(set(seeds.values())) == 3


# -- registry -------------------------------------------------------------------------------------------------


def test_registry_all_unknown_and_outputs_specs() -> None:
    assert registry.expand("all")[:9] == ["samuel", "musicgen-small", "musicgen-medium", "musicgen-large",
                                          "musicgen-melody", "stable-audio-open", "ace-step", "jukebox", "reference"]
    with pytest.raises(registry.UnknownModelError, match="Did you mean 'musicgen-small'"):
        registry.expand("musicgen-smal")
    assert registry.expand("samuel,outputs:ac=/x,samuel") == ["samuel", "outputs:ac=/x"]
    with pytest.raises(registry.UnknownModelError, match="outputs:NAME=DIR"):
        registry.expand("outputs:nodir")
    with pytest.raises(ValueError, match="already registered"):
        registry.register("samuel", "elsewhere:Other")


def test_registry_imports_nothing_heavy_until_a_model_is_chosen() -> None:
    code = ("import sys; import baselines.registry as r; r.expand('all'); "
            "print(sorted(m for m in ('transformers', 'diffusers', 'jukebox_infer', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- matched generation ---------------------------------------------------------------------------------------


def _cfg(tmp_path: Path, models: tuple[str, ...] = (FAKE,), **kw: object) -> EvalConfig:
    base: dict[str, object] = {"out": tmp_path / "out", "models": models, "n": 4, "duration_s": 2.0,
                               "time_items": 2, "no_progress": True}
    base.update(kw)
    return EvalConfig(**base)  # type: ignore[arg-type]


def run(cfg: EvalConfig, log: object = None) -> dict[str, object]:
    """results.json of one evaluate() call, quietly."""
    return evaluate(cfg, log=lambda s: None).results


def read_records(out: Path, model: str = FAKE) -> list[dict[str, object]]:
    records, problems = RunFolder(out).read_records(model)
    assert problems == []
    return records


def _samples(out: Path, model: str = FAKE) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "samples" / model).glob("*.flac"))}


def test_generate_pass_writes_matched_samples_and_skips_them_on_rerun(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, passes=("params", "generate"))
    res = run(cfg, log=lambda s: None)
    gen = res["models"][FAKE]["generation"]
    assert gen["n_ok"] == 4 and gen["n_error"] == 0 and gen["not_attempted"] == []
    first = _samples(cfg.out)
    assert len(first) == 4
    sidecar = json.loads(next((cfg.out / "samples" / FAKE).glob("*.json")).read_text())
    assert sidecar["weights"] == "pretrained" and sidecar["label"] is None and sidecar["sample_rate"] == 16_000
    assert res["models"][FAKE]["params"] == {"params_total": 15, "params_by_component": {"net": 15}}
    calls = NoiseGenerator.calls
    run(cfg, log=lambda s: None)
    assert NoiseGenerator.calls == calls  # nothing regenerated
    assert _samples(cfg.out) == first
    recs = read_records(cfg.out)
    assert [r["status"] for r in recs].count("skipped") == 4


def test_interrupted_run_resumes_to_the_same_files_with_nothing_lost_or_doubled(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch
                                                                                ) -> None:
    whole = _cfg(tmp_path / "whole", passes=("generate",))
    run(whole, log=lambda s: None)
    cut = _cfg(tmp_path / "cut", passes=("generate",))
    monkeypatch.setattr(NoiseGenerator, "calls", 0)
    monkeypatch.setattr(NoiseGenerator, "interrupt_at", 3)  # killed while making the third sample
    with pytest.raises(KeyboardInterrupt):
        run(cut, log=lambda s: None)
    assert len(_samples(cut.out)) == 2
    monkeypatch.setattr(NoiseGenerator, "interrupt_at", None)
    res = run(cut, log=lambda s: None)
    assert _samples(cut.out) == _samples(whole.out)  # same names (ids) and the same bytes
    gen = res["models"][FAKE]["generation"]
    assert gen["n_ok"] == 4 and len(gen["samples"]) == 4
    assert not list((cut.out / "samples").rglob("*.tmp*"))  # atomic writes leave no partial file


def test_bad_items_are_reported_and_the_run_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NoiseGenerator, "fail_items", frozenset({"syn-001"}))
    res = run(_cfg(tmp_path, passes=("generate",)), log=lambda s: None)
    gen = res["models"][FAKE]["generation"]
    assert gen["n_ok"] == 3 and gen["n_error"] == 1
    assert gen["errors"][0]["item_id"] == "syn-001" and "syn-001" in gen["errors"][0]["message"]


def test_a_model_crash_inside_one_item_is_reported_and_the_run_goes_on(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NoiseGenerator, "crash_items", frozenset({"syn-002"}))
    res = run(_cfg(tmp_path, passes=("generate",)), log=lambda s: None)
    gen = res["models"][FAKE]["generation"]
    assert gen["n_ok"] == 3 and [e["item_id"] for e in gen["errors"]] == ["syn-002"]
    assert gen["errors"][0]["message"] == "RuntimeError: fake out of memory on item syn-002"


def test_unmatched_files_follow_the_matching_rule(tmp_path: Path) -> None:
    """A file named after the song is used by a single-window item (its vocal's stem) but by no window of a song
    cut into several ("<stem>__w<k>" items match by item id only), so it is listed there as unused."""
    from baselines.base import GenerationRequest
    from baselines.files import FileIndex

    for name in ("song.wav", "song__w2.wav", "other.wav"):
        sf.write(tmp_path / name, np.zeros(4410, np.float32), 44100)
    index = FileIndex(tmp_path)
    single = [GenerationRequest("song_1", 0, 1.0, vocal_path=tmp_path / "vocals" / "song.wav")]
    assert index.match(single[0]).name == "song.wav"
    assert [p.name for p in index.extra(single)] == ["other.wav", "song__w2.wav"]
    windows = [GenerationRequest(f"song__w{k}", 0, 1.0, vocal_path=tmp_path / "vocals" / "song.wav")
               for k in (1, 2)]
    assert index.match(windows[1]).name == "song__w2.wav"
    with pytest.raises(ItemError, match="no file for item 'song__w1'"):
        index.match(windows[0])
    assert [p.name for p in index.extra(windows)] == ["other.wav", "song.wav"]


def test_outputs_of_stem_folder_songs_match_by_song_name_or_a_mirrored_folder(tmp_path: Path) -> None:
    """Items of a MUSDB18/Demucs tree have vocals named vocals.wav, one per song folder: their outputs are named
    after the song (Song A.wav), or kept in a tree that mirrors the vocals' (Song B/accompaniment.wav). The first
    matched no item ("looked for 'song_a__vocals.<ext>' or 'vocals.<ext>'"); the second collided on 'accompaniment'."""
    from baselines.base import GenerationRequest
    from baselines.files import FileIndex

    vocals, outs = tmp_path / "musdb", tmp_path / "outs"
    for name in ("Song A.wav", "Song B/accompaniment.wav", "Song C/accompaniment.wav", "Song C/stems.wav",
                 "unrelated.wav"):
        (outs / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(outs / name, np.zeros(4410, np.float32), 44100)

    def request(song: str, item_id: str | None = None) -> GenerationRequest:
        return GenerationRequest(item_id or f"{song.replace(' ', '_')}__vocals", 0, 1.0,
                                 vocal_path=vocals / song / "vocals.wav")

    index = FileIndex(outs)
    assert index.match(request("Song A")) == outs / "Song A.wav"
    generated = tmp_path / "generated"  # `samuel generate` names the output of x.wav x.accompaniment.wav
    generated.mkdir()
    sf.write(generated / "x.accompaniment.wav", np.zeros(441, np.float32), 44100)
    assert FileIndex(generated).match(GenerationRequest("x", 0, 1.0, vocal_path=vocals / "x.wav")).name == (
        "x.accompaniment.wav")
    assert index.match(request("Song B")) == outs / "Song B" / "accompaniment.wav"
    assert index.match(request("Song C")) == outs / "Song C" / "accompaniment.wav"  # the one named as such
    with pytest.raises(ItemError, match="no file for item 'Song_B__vocals__w1'"):  # a window needs its own file
        index.match(request("Song B", "Song_B__vocals__w1"))
    requests = [request(s) for s in ("Song A", "Song B", "Song C")]
    assert [p.relative_to(outs).as_posix() for p in index.extra(requests)] == ["Song C/stems.wav", "unrelated.wav"]


def test_outputs_of_moisesdb_songs_match_by_song_name(tmp_path: Path) -> None:
    """A MoisesDB song's item (bench.manifest: ``<song>__vocals``) reads its one vocal track (``<song>/vocals/<id>
    .wav``) or the written sum of several (``part-sums/<song>__vocals.flac``): neither file's name is the song's,
    so outputs named after the song matched no item, and a one-track song matched a file named like its track."""
    from baselines.base import GenerationRequest
    from baselines.files import FileIndex

    outs = tmp_path / "outs"
    for name in ("1f-uuid.wav", "2e-uuid/accompaniment.wav", "lead.wav"):
        (outs / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(outs / name, np.zeros(4410, np.float32), 44100)
    index = FileIndex(outs)
    summed = GenerationRequest("1f-uuid__vocals", 0, 1.0, vocal_path=tmp_path / "part-sums" / "1f-uuid__vocals.flac")
    one_track = GenerationRequest("2e-uuid__vocals", 0, 1.0, vocal_path=tmp_path / "db" / "2e-uuid" / "vocals" /
                                  "lead.wav")
    assert index.match(summed) == outs / "1f-uuid.wav"
    assert index.match(one_track) == outs / "2e-uuid" / "accompaniment.wav"
    assert index.extra([summed, one_track]) == [outs / "lead.wav"]


def test_an_output_libsndfile_cannot_decode_is_named_for_its_item(tmp_path: Path) -> None:
    """An outputs folder holding song.m4a said "no file for item 'song'"; it now names the file and the way out."""
    from baselines.base import GenerationRequest
    from baselines.files import FileIndex

    (tmp_path / "song.m4a").write_bytes(b"")
    sf.write(tmp_path / "other.wav", np.zeros(4410, np.float32), 44100)
    index = FileIndex(tmp_path)
    with pytest.raises(ItemError, match=r"song\.m4a: the file for item 'song' is \.m4a .*ffmpeg -i 'song\.m4a'"):
        index.match(GenerationRequest("song", 0, 1.0))
    with pytest.raises(ItemError, match="no file for item 'third'"):
        index.match(GenerationRequest("third", 0, 1.0))
    assert index.match(GenerationRequest("other", 0, 1.0)).name == "other.wav"


def test_a_file_whose_stem_matches_in_case_wins(tmp_path: Path) -> None:
    """Items Song and song (vocals Song.wav and song.wav, two songs on a case-sensitive file system) each get their
    own output; before, both were refused as "2 files match". A name matched only ignoring case still works alone,
    and two files of which neither matches in case stay ambiguous."""
    from baselines.base import GenerationRequest
    from baselines.files import FileIndex

    for name in ("Song.wav", "song.wav", "Other.wav", "TWICE.wav", "twice.flac"):
        sf.write(tmp_path / name, np.zeros(4410, np.float32), 44100)
    index = FileIndex(tmp_path)
    for item in ("Song", "song"):
        request = GenerationRequest(item, 0, 1.0, vocal_path=tmp_path / "vocals" / f"{item}.wav")
        assert index.match(request).name == f"{item}.wav"
    assert index.match(GenerationRequest("other", 0, 1.0)).name == "Other.wav"
    with pytest.raises(ItemError, match="2 files match item 'Twice'"):
        index.match(GenerationRequest("Twice", 0, 1.0))


def test_outputs_folder_with_missing_and_extra_files(tmp_path: Path) -> None:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    sf.write(folder / "syn-000.wav", np.zeros(44100 * 2, np.float32), 44100)
    sf.write(folder / "SYN-002.ogg", np.zeros(32000 * 2, np.float32), 32000, format="OGG", subtype="VORBIS")
    sf.write(folder / "unrelated.flac", np.zeros(44100, np.float32), 44100)
    lines: list[str] = []
    res = evaluate(_cfg(tmp_path, models=(f"outputs:ac={folder}",), passes=("params", "generate", "time")),
                   log=lines.append).results
    entry = res["models"]["ac"]
    assert entry["weights"]["kind"] == "files" and entry["params"] is None
    gen = entry["generation"]
    assert gen["n_ok"] == 2 and sorted(e["item_id"] for e in gen["errors"]) == ["syn-001", "syn-003"]
    assert all("no file for item" in e["message"] for e in gen["errors"])
    assert entry["timing"]["status"] == "not measured"
    # the file that matches no item is named in the log and kept in results.json (a misnamed sample shows there)
    assert gen["unmatched_files"] == [str(folder / "unrelated.flac")]
    assert "  ac: 1 file(s) match no item and are not used: unrelated.flac" in lines
    stored = json.loads((tmp_path / "out" / "results.json").read_text())["models"]["ac"]["generation"]
    assert stored["unmatched_files"] == [str(folder / "unrelated.flac")]
    from baselines.files import FileIndex

    requests = [i.request() for i in Manifest.read(tmp_path / "out" / "manifest.json").items]
    assert [p.name for p in FileIndex(folder).extra(requests)] == ["unrelated.flac"]
    # listed on every run, not only one that generates: results.json's generation is rebuilt from the folder
    res = run(_cfg(tmp_path, models=(f"outputs:ac={folder}",), passes=("time",)), log=lambda s: None)
    assert res["models"]["ac"]["generation"]["unmatched_files"] == [str(folder / "unrelated.flac")]
    # a folder without extra files writes no such key (older results.json files stay as they were)
    (folder / "unrelated.flac").unlink()
    res = run(_cfg(tmp_path, models=(f"outputs:ac={folder}",), passes=("generate",)), log=lambda s: None)
    assert "unmatched_files" not in res["models"]["ac"]["generation"]


def test_reference_row_serves_the_true_accompaniments(tmp_path: Path) -> None:
    res = run(_cfg(tmp_path, models=("reference",), passes=("generate",)), log=lambda s: None)
    assert res["models"]["reference"]["generation"]["n_ok"] == 4
    manifest = Manifest.read(tmp_path / "out" / "manifest.json")
    written = sorted((tmp_path / "out" / "samples" / "reference").glob("syn-000__*.flac"))[0]
    ref, _ = sf.read(manifest.items[0].reference, always_2d=True)
    got, rate = sf.read(written, always_2d=True)
    assert rate == 44_100 and got.shape[0] == ref.shape[0]
    assert np.max(np.abs(got[:, 0] - ref[:, 0])) < 1e-3  # 16-bit source through 24-bit FLAC


# -- timing ---------------------------------------------------------------------------------------------------


def test_timing_protocol_full_and_extrapolated(tmp_path: Path) -> None:
    m = synthetic_manifest(tmp_path, 6, duration_s=1.0)
    requests = [i.request() for i in m.items]
    full = time_model(NoiseGenerator(WeightsChoice()), requests, mode="full", log=lambda s: None)
    assert full.status == "measured" and full.load_s is not None and full.warmup_s is not None
    assert full.seconds is not None and full.seconds.n == 6 and not math.isnan(full.seconds.low)
    assert all(i.units_done is None or i.units_done == 10 for i in full.items)
    assert full.items[0].label == "measured in full"
    assert all(i.rtf == pytest.approx(i.seconds / 1.0) for i in full.items)
    ext = time_model(NoiseGenerator(WeightsChoice()), requests, mode="extrapolate", k=3, log=lambda s: None)
    item = ext.items[0]
    assert item.units_done == 3 and item.units_total == 10 and item.label == "measured on 3 of 10 steps"
    assert item.seconds > item.measured_s  # 7 more steps of ~2 ms each were added
    assert item.seconds == pytest.approx(item.measured_s + 7 * item.fit["median_step_s"], rel=1e-6)
    frames = NoiseGenerator(WeightsChoice())
    frames.timing_unit = "frames"
    item = time_model(frames, requests[:2], mode="extrapolate", k=4, log=lambda s: None).items[0]
    assert item.label == "measured on 4 of 10 frames (lower bound: cache growth not extrapolated)"
    assert item.seconds > item.measured_s > 0
    # a bare step timed faster at the last cache position than at the first (a busy machine: MusicGen-Small's
    # items came out at -659 s with the growth subtracted): the growth is left out and named, never a negative time
    frames.unit_growth_seconds = lambda total: (0.5, 0.1)
    lines: list[str] = []
    noisy = time_model(frames, requests[:2], mode="extrapolate", k=4, log=lines.append)
    assert all(i.seconds > i.measured_s > 0 and "lower bound" in i.label for i in noisy.items)
    assert "faster than with 1" in noisy.setup["unit_growth_s"]["not_used"]
    assert any("timing noise larger than the cache's growth" in line for line in lines)
    frames.unit_growth_seconds = lambda total: (0.01, 0.02)
    grown = time_model(frames, requests[:2], mode="extrapolate", k=4, log=lambda s: None)
    assert "lower bound" not in grown.items[0].label and "not_used" not in grown.setup["unit_growth_s"]
    assert grown.items[0].fit["bare_step_last_s"] == 0.02


def test_timing_budget_stops_after_at_least_two_items_and_says_so(tmp_path: Path) -> None:
    m = synthetic_manifest(tmp_path, 6, duration_s=1.0)
    res = time_model(NoiseGenerator(WeightsChoice()), [i.request() for i in m.items], mode="full", budget_s=1e-6,
                     log=lambda s: None)
    assert res.status == "measured" and len(res.items) == 2 and res.seconds is not None and res.seconds.n == 2
    assert "timed 2 of 6 items" in res.setup["stopped_early"] and math.isnan(res.seconds.low)


def test_the_budget_stretches_to_a_ci_only_when_the_pace_allows() -> None:
    from bench.timing import CI_GRACE, CI_MIN_ITEMS, budget_reaches_ci

    assert CI_MIN_ITEMS == 6  # the fewest items whose median has a 95% order-statistic interval
    assert budget_reaches_ci(5, 6, 150.0, 150.0)  # 30 s items: 6 take 180 s <= 225 s
    assert budget_reaches_ci(5, 6, 187.5, 150.0)  # exactly CI_GRACE x the budget at this pace
    assert not budget_reaches_ci(5, 6, 188.0, 150.0)
    assert not budget_reaches_ci(3, 6, 150.0, 150.0)  # 50 s items: 6 would take 300 s
    assert not budget_reaches_ci(5, 5, 150.0, 150.0)  # 5 asked for: no interval to reach
    assert not budget_reaches_ci(6, 8, 150.0, 150.0)  # already has one
    assert CI_GRACE == 1.5


@pytest.mark.parametrize(("item_s", "timed"), [(28.0, 6), (50.0, 3)])
def test_timing_goes_on_to_six_items_when_the_budget_would_cut_the_ci(tmp_path: Path, monkeypatch, item_s: float,
                                                                     timed: int) -> None:
    import bench.timing as timing

    def fixed(adapter, request, mode, k, growth):  # every item "took" item_s: the rule, not the clock, is tested
        return timing.ItemTiming(request.item_id, item_s, item_s, 1.0, item_s)

    monkeypatch.setattr(timing, "time_one", fixed)
    m = synthetic_manifest(tmp_path, 8, duration_s=1.0)
    logged: list[str] = []
    res = time_model(NoiseGenerator(WeightsChoice()), [i.request() for i in m.items], mode="full", n_items=6,
                     budget_s=150.0, log=logged.append)
    assert len(res.items) == timed and res.seconds.n == timed
    if timed == 6:  # 5 items spent 140 s < 150: the 6th runs anyway; the rule only matters past the budget
        assert "stopped_early" not in res.setup and math.isfinite(res.seconds.low)
    else:
        assert "timed 3 of 6 items" in res.setup["stopped_early"] and math.isnan(res.seconds.low)
        assert "budget_stretched" not in res.setup


def test_a_spent_budget_is_stretched_to_six_items_and_says_so(tmp_path: Path, monkeypatch) -> None:
    import bench.timing as timing

    monkeypatch.setattr(timing, "time_one",
                        lambda adapter, request, mode, k, growth: timing.ItemTiming(request.item_id, 31.0, 31.0, 1.0,
                                                                                    31.0))
    m = synthetic_manifest(tmp_path, 8, duration_s=1.0)
    res = time_model(NoiseGenerator(WeightsChoice()), [i.request() for i in m.items], mode="full", n_items=6,
                     budget_s=150.0, log=lambda s: None)
    # 5 items took 155 s > 150; at 31 s each, 6 take 186 s <= 1.5 x 150: the 6th is timed and the CI exists
    assert len(res.items) == 6 and math.isfinite(res.seconds.low) and "stopped_early" not in res.setup
    assert "spent after 5 items" in res.setup["budget_stretched"]
    # with 8 asked for, the stretch ends at 6: it buys the interval, not the whole list
    res = time_model(NoiseGenerator(WeightsChoice()), [i.request() for i in m.items], mode="full", n_items=8,
                     budget_s=150.0, log=lambda s: None)
    assert len(res.items) == 6 and "timed 6 of 8 items" in res.setup["stopped_early"]


def test_the_timing_pass_plans_the_fp32_comparison_and_keeps_it_out_of_the_load_time(tmp_path: Path) -> None:
    import time as clock

    planned: list[str] = []

    class Planned(NoiseGenerator):
        def _load(self) -> None:
            super()._load()
            if self._distance_request is not None:  # what MusicGen does: the fp32 side runs before the cast
                planned.append(self._distance_request.item_id)
                t0 = clock.perf_counter()
                clock.sleep(0.3)
                self.fp32_reference_s = clock.perf_counter() - t0

    m = synthetic_manifest(tmp_path, 3, duration_s=1.0)
    res = time_model(Planned(WeightsChoice()), [i.request() for i in m.items], mode="full", log=lambda s: None)
    assert planned == [m.items[0].item_id]  # the first candidate, which the distance is taken on
    assert res.setup["fp32_reference_at_load_s"] >= 0.3 and res.load_s is not None and 0 <= res.load_s < 0.3


def test_the_fp32_comparison_plan_is_cleared_when_no_item_could_be_timed(tmp_path: Path) -> None:
    m = synthetic_manifest(tmp_path, 2, duration_s=1.0)

    class Failing(NoiseGenerator):
        fail_items = frozenset(i.item_id for i in m.items)

    gen = Failing(WeightsChoice())
    res = time_model(gen, [i.request() for i in m.items], mode="full", log=lambda s: None)
    assert res.status == "not measured" and "no item could be generated" in res.reason
    assert gen.loaded and gen._distance_request is None  # a later load does not run the fp32 side again


def test_parameter_counts_are_built_once_per_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    builds = []
    original = NoiseGenerator._count_parameters
    monkeypatch.setattr(NoiseGenerator, "_count_parameters", lambda self: builds.append(1) or original(self))
    gen = NoiseGenerator(WeightsChoice())
    assert gen.parameter_counts() == gen.parameter_counts() and gen.memory_estimate_bytes() == 1000
    assert len(builds) == 1


def test_an_adapters_timing_note_reaches_every_label(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NoiseGenerator, "timing_note", "decoder not timed")
    m = synthetic_manifest(tmp_path, 2, duration_s=1.0)
    requests = [i.request() for i in m.items]
    full = time_model(NoiseGenerator(WeightsChoice()), requests, mode="full", log=lambda s: None)
    assert full.items[0].label == "measured in full; decoder not timed"
    ext = time_model(NoiseGenerator(WeightsChoice()), requests, mode="extrapolate", k=3, log=lambda s: None)
    assert ext.items[0].label == "measured on 3 of 10 steps; decoder not timed"


def test_a_model_too_big_for_memory_is_reported_not_crashed(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NoiseGenerator, "memory_bytes", 10**15)
    m = synthetic_manifest(tmp_path, 1, duration_s=1.0)
    res = time_model(NoiseGenerator(WeightsChoice()), [m.items[0].request()], mode="full", log=lambda s: None)
    assert res.status == "not measured" and "does not fit: needs about" in res.reason and "GiB" in res.reason
    assert NoiseGenerator.calls == 0  # never loaded, never run


# -- Table II -------------------------------------------------------------------------------------------------


def _fixed_results() -> RunResults:
    est = {"value": 12.5, "ci_low": 11.0, "ci_high": 14.25, "n": 6, "method": "order statistics x(1)..x(6)"}
    data = {
        "format": "samuel-bench-results/2", "config": {}, "manifest": {"rejected": []},
        "provenance": {"device": {"cpu": "x86_64", "torch_threads": 2}},
        "models": {
            "samuel": {"spec": "samuel", "describe": {"display_name": "SAMUeL", "conditioning": "Vocal melody"},
                       "weights": {"kind": "random"}, "status": "run",
                       "params": ParamCount(171507074, {"codec": 156112514, "vocal_encoder": 2624064,
                                                         "unet": 12770496}).to_dict(),
                       "timing": {"status": "measured", "seconds": est, "label": "measured in full",
                                  "rtf": {**est, "value": 0.26, "ci_low": 0.23, "ci_high": 0.3},
                                  "setup": {"device": "cpu", "dtype": "bf16 (U-Net in bf16, VAE in bfloat16)",
                                            "fp32_distance": "vs fp32, SNR: VAE encode 38.5 dB, U-Net (guided) 41.0 "
                                                             "dB, VAE decode 44.2 dB (2.97 s of item '0001')"}}},
            "musicgen-large": {"spec": "musicgen-large",
                               "describe": {"display_name": "MusicGen - Large", "conditioning": "Text description"},
                               "weights": {"kind": "random"}, "status": "run",
                               "params": {"params_total": 3423470146, "params_by_component": {}},
                               "timing": {"status": "measured",
                                          "label": "measured on 24 of 2380 frames (lower bound: cache growth "
                                                   "not extrapolated)",
                                          "seconds": {**est, "value": 1500.0, "ci_low": None, "ci_high": None,
                                                      "n": 3},
                                          "rtf": {**est, "value": 31.5, "ci_low": None, "ci_high": None, "n": 3},
                                          "setup": {"dtype": "fp32"}}},
            "jukebox": {"spec": "jukebox",
                        "describe": {"display_name": "OpenAI Jukebox", "conditioning": "Lyrics + Genre"},
                        "weights": {"kind": "random"}, "status": "run",
                        "params": {"params_total": 7604588915, "params_by_component": {}},
                        "timing": {"status": "not measured",
                                   "reason": "does not fit: needs about 44.2 GiB (32-bit weights + 25%)"}},
            "reference": {"spec": "reference",
                          "describe": {"display_name": "Reference (ground truth)", "conditioning": "n/a"},
                          "weights": {"kind": "files"}, "status": "run", "params": None,
                          "timing": {"status": "not measured", "reason": "audio files made elsewhere"}},
        },
    }
    return RunResults.from_json(data, source="the Table II fixture")


def test_table2_markdown_snapshot() -> None:
    from reports.table2 import table2
    from reports.tables import to_markdown

    got = to_markdown(table2(_fixed_results()))
    snapshot = HERE / "snapshots" / "table2.md"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        snapshot.write_text(got)
    assert got == snapshot.read_text()


def test_table2_latex_and_csv_keep_numbers_and_escape() -> None:
    from reports.table2 import table2
    from reports.tables import to_csv, to_latex

    table = table2(_fixed_results())
    tex = to_latex(table)
    assert r"\begin{tabular}" in tex and "44.2 GiB (32-bit weights + 25\\%)" in tex
    rows = to_csv(table).splitlines()
    assert "Inference time per item ci_low" in rows[0]
    assert "12.5,11.0,14.25,6" in rows[1]


# -- the command line -----------------------------------------------------------------------------------------


def test_samuel_eval_params_json() -> None:
    out = subprocess.run([sys.executable, "-c", "from reports.cli import main; main(['params', '--models', "
                          "'samuel,reference', '--json'])"], capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)
    assert [r["model"] for r in rows] == ["samuel", "reference"]
    assert set(rows[0]) == {"model", "params_total", "params_by_component", "weights", "source", "component_sources",
                            "method"}
    assert set(rows[0]["component_sources"]) == set(rows[0]["params_by_component"])
    assert rows[0]["weights"] == "random" and rows[0]["source"].startswith("SAMUeLConfig() (preset 'paper'")
    assert rows[1]["source"] == "no model to count: audio files made elsewhere"
    assert rows[0]["params_total"] == sum(rows[0]["params_by_component"].values())
    assert rows[0]["params_by_component"]["vocal_encoder"] + rows[0]["params_by_component"]["unet"] == 15_394_560
    assert rows[1]["params_total"] is None
    from reports.cli import main

    assert main(["params", "--models", "musicgen-smal"]) == 2  # a clear message, not a traceback


@pytest.mark.slow
def test_samuel_eval_params_all_models_json() -> None:
    """The issue's command: every registered model, exact totals (golden values from the adapters' own tests)."""
    out = subprocess.run([sys.executable, "-m", "reports.cli", "params", "--models", "all", "--json"],
                         capture_output=True, text=True, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                         timeout=300)
    rows = {r["model"]: r for r in json.loads(out.stdout)}
    # fakes other tests registered in this process (test_probe's, under xdist in any order) are not in the child's
    assert list(rows) == [n for n in registry.names() if not n.startswith("fake")]
    golden = {"samuel": 171_507_074, "musicgen-small": 586_884_674, "musicgen-medium": 2_005_251_138,
              "musicgen-large": 3_423_470_146, "musicgen-melody": 1_552_138_818,
              "stable-audio-open": 1_323_076_738, "jukebox": 7_604_588_915, "ace-step": 5_751_782_664}
    for name, total in golden.items():
        assert rows[name]["params_total"] == total, name
        assert sum(rows[name]["params_by_component"].values()) == total
        assert rows[name]["weights"] == "random" and rows[name]["method"].startswith("exact")
    for name, module in (("musicgen-small", "musicgen"), ("stable-audio-open", "stable_audio"),
                         ("jukebox", "jukebox")):
        assert f"embedded published configuration in baselines.{module} " in rows[name]["source"]
    # ACE-Step names its repository, and every config value's source is stated in its module
    assert rows["ace-step"]["source"].startswith("embedded published configs of ACE-Step/acestep-v15-xl-base")
    assert set(rows["ace-step"]["params_by_component"]) == {"dit", "condition_encoder", "text_encoder",
                                                            "audio_tokenizer", "audio_detokenizer", "vae"}
    sources = rows["ace-step"]["component_sources"]
    assert set(sources) == set(rows["ace-step"]["params_by_component"])
    assert sources["audio_tokenizer"].startswith("NOT FOUND for the XL") and "Qwen3-Embedding-0.6B" in sources[
        "text_encoder"]
    # one Stable Audio Open VAE, counted the same inside SAMUeL and Stable Audio Open
    assert rows["samuel"]["params_by_component"]["codec"] == rows["stable-audio-open"]["params_by_component"]["codec"]
    assert rows["reference"]["params_total"] is None


def test_samuel_eval_run_and_report_rerender(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reports.cli import main

    out = tmp_path / "ev"
    env_models = f"{FAKE},reference"
    assert main(["--models", env_models, "--n", "6", "--duration", "1", "--out", str(out), "--no-progress"]) == 0
    table = (out / "tables" / "table2.md").read_text()
    assert "Fake noise" in table and "n=6" in table
    results = json.loads((out / "results.json").read_text())
    prov = results["provenance"]
    assert prov["command"].startswith("samuel-eval") and "torch" in prov["versions"] and "commit" in prov["git"]
    (out / "tables" / "table2.md").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "tables" / "table2.md").read_text() == table  # re-rendered from results.json alone
    assert main(["--models", "musicgen-smal", "--out", str(out)]) == 2
    assert "Did you mean 'musicgen-small'" in capsys.readouterr().err


@pytest.mark.slow
def test_samuel_tiny_end_to_end_with_a_bad_vocal(tmp_path: Path) -> None:
    """The real SAMUeL adapter (tiny preset, random weights) through the harness; a non-audio vocal fails alone."""
    vocals = tmp_path / "vocals"
    vocals.mkdir()
    sf.write(vocals / "good.wav", 0.1 * np.sin(np.linspace(0, 2000, 44100 * 2)).astype(np.float32), 44100)
    (vocals / "bad.wav").write_bytes(b"this is not audio")
    cfg = _cfg(tmp_path, models=("samuel",), vocals=vocals, n=2, passes=("params", "generate"),
               generate_random=True, model_options={"samuel": {"preset": "tiny", "steps": 2}})
    res = run(cfg, log=lambda s: None)
    entry = res["models"]["samuel"]
    assert entry["weights"]["kind"] == "random"
    gen = entry["generation"]
    # the non-audio vocal never becomes an item: the manifest rejects it, names it, and the run goes on
    rejected = res["manifest"]["rejected"]
    assert gen["n_ok"] == 1 and gen["errors"] == [] and len(rejected) == 1
    assert rejected[0]["path"].endswith("bad.wav") and "not a readable audio file" in rejected[0]["problem"]
    sample = Path(gen["samples"][0])
    # random weights are marked in the file name; a random model's output may exceed full scale: float WAV then
    assert sample.name.endswith((".random.flac", ".random.wav"))
    info = sf.info(sample)
    assert info.samplerate == 44_100 and info.channels == 2 and info.frames == 2 * 44_100
    sidecar = sample.with_suffix(".json")
    assert json.loads(sidecar.read_text())["label"].startswith("RANDOM")


@pytest.mark.slow
def test_torchrun_two_ranks_split_the_items_and_rank0_merges(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "SAMUEL_EVAL_GENERATORS": f"{FAKE}=fake_generators:NoiseGenerator"}
    out = tmp_path / "ddp"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
                           "reports.cli", "--models", FAKE, "--items", "6", "--duration", "1", "--time-items", "3",
                           "--out", str(out), "--no-progress"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = sorted(p.name for p in (out / "records").glob("*.jsonl"))
    assert records == [f"{FAKE}.rank0.jsonl", f"{FAKE}.rank1.jsonl"]
    by_rank = [{r["item_id"] for r in RunFolder(out).read_records(FAKE)[0] if r["status"] == "ok" and r["rank"] == k}
               for k in (0, 1)]
    assert by_rank[0].isdisjoint(by_rank[1]) and len(by_rank[0] | by_rank[1]) == 6
    results = json.loads((out / "results.json").read_text())
    entry = results["models"][FAKE]
    assert entry["generation"]["n_ok"] == 6
    assert entry["timing"]["ranks"] == 2 and entry["timing"]["seconds"]["n"] == 6  # 3 items timed per rank


def test_merge_timing_names_a_rank_that_could_not_measure(tmp_path: Path) -> None:
    from bench.cache import JsonStore, Key
    from bench.evaluate import merge_timing

    run, store, key = RunFolder(tmp_path), JsonStore(), {"name": "m", "weights": "pretrained"}
    item = {"seconds": 2.0, "rtf": 0.1, "peak_memory_bytes": 10}
    measured = {"status": "measured", "items": [item, item], "load_s": 1.0}
    store.write(run.timing_path("m", 0), Key("timing", "a", {"model": key}), measured)
    store.write(run.timing_path("m", 1), Key("timing", "b", {"model": key}),
                {"status": "not measured", "items": [], "reason": "needs 41 GiB"})
    store.write(run.timing_path("m", 2), Key("timing", "c", {"model": key}), measured)  # a rank of an older run
    merged = merge_timing(run, "m", key, world=2)
    assert merged["seconds"]["n"] == 2 and merged["ranks"] == 2
    assert merged["unmeasured_ranks"] == [{"file": "m.rank1.json", "reason": "needs 41 GiB"}]
    # a timing of another model spec (other weights) is never pooled, nor is a torn file
    store.write(run.timing_path("m", 1), Key("timing", "b", {"model": {**key, "weights": "random"}}), measured)
    assert merge_timing(run, "m", key, world=2)["ranks"] == 1
    run.timing_path("m", 1).write_text('{"format": "samuel-bench-cache/1", "key": ')
    assert merge_timing(run, "m", key, world=2)["ranks"] == 1


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")])
def test_running_out_of_memory_is_a_reason_and_any_other_error_is_raised(tmp_path: Path, error) -> None:
    from baselines.base import is_out_of_memory

    requests = [i.request() for i in synthetic_manifest(tmp_path, 2, duration_s=1.0).items]
    gen = NoiseGenerator(WeightsChoice())

    def fails(*args, **kwargs):
        raise error

    gen.generate = fails
    res = time_model(gen, requests, mode="full", log=lambda s: None)
    assert is_out_of_memory(error) and res.status == "not measured" and res.reason.startswith("ran out of memory")
    gen.generate = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        time_model(gen, requests, mode="full", log=lambda s: None)


def test_an_extrapolated_real_time_factor_divides_by_the_output_the_model_makes() -> None:
    """A model whose output lasts as long as the vocal window (SAMUeL: Generator.output_seconds) is extrapolated
    to that length's audio, not the item's: a 20 s window in a 47.55 s item gave an RTF 2.4x too small."""
    from baselines.base import GenerationRequest
    from bench.timing import time_one

    class HalfLength(NoiseGenerator):
        def output_seconds(self, request: GenerationRequest) -> float:
            return request.duration_s / 2

    request = GenerationRequest("cut", 0, 2.0)
    for adapter, audio_s in ((NoiseGenerator(), 2.0), (HalfLength(), 1.0)):
        item = time_one(adapter, request, "extrapolate", 3)
        assert (item.units_done, item.units_total) == (3, NoiseGenerator.STEPS) and item.fit
        assert item.audio_s == audio_s and item.rtf == pytest.approx(item.seconds / audio_s)


def test_table2_shows_a_weights_caveat_and_does_not_flag_a_row_that_did_not_run() -> None:
    """A row whose weights carry a caveat (a checkpoint run with another VAE) says so in its Weights cell and a
    note; a row that never ran has no conditioning of ours, so its paper conditioning is not flagged as differing."""
    from reports.table2 import table2

    data = _fixed_results().to_json()
    caveat = "VAE MISMATCH: the checkpoint was trained on latents of /data/vae"
    data["models"]["samuel"]["weights"] = {"kind": "pretrained", "caveat": caveat}
    data["models"]["musicgen-large"] = {"spec": "musicgen-large", "status": "not run", "reason": "no memory"}
    table = table2(RunResults.from_json(data, source="fixture"))
    rows = {r[0].display: dict(zip(table.columns, r, strict=True)) for r in table.rows}
    assert rows["SAMUeL"]["Weights"].display == "pretrained, VAE MISMATCH"
    assert f"Weights with a caveat (the row runs; its samples' records say it too): SAMUeL: {caveat}." in table.notes
    assert "†" not in rows["musicgen-large"]["Conditioning (paper)"].display  # a row not run: nothing to compare
    assert not any("musicgen-large conditioning" in n for n in table.notes)
