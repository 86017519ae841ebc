"""The score pass (bench.scoring) over a run folder: per-clip groups, anchors checked against a direct computation,
resume, stale and torn records, bad clips, random samples, items windowed in long files (scorers, anchors, FAD and
APA embeddings), the FAD reference's real errors, clip rows of the current samples only, the metric registry, and
Table I (golden rendering from a fixed scores dict, snapshot).

Samples are written here from the items' own windows (the reference row) or another item's (a 'misplaced' model),
so the tests need no generator and no generate pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import soundfile as sf

from baselines.base import WeightsStatus
from baselines.weights import Resolved
from bench.embedders.base import Embedder
from bench.manifest import Item, Manifest, synthetic_manifest
from bench.runfolder import RunFolder
from bench.scoring import Sample, ScoreConfig, read_clip_values, score
from bench.scoring import registry as reg
from reports.table1 import table1
from reports.tables import to_markdown

HERE = Path(__file__).parent
N_ITEMS = 6
DURATION_S = 8.0
RATE = 44_100


def write_sample(run: RunFolder, model: str, item_id: str, audio: np.ndarray, weights: str = "pretrained") -> Sample:
    """``audio`` (2, S) as a FLAC sample of ``model`` for ``item_id``, under the run folder's sample path."""
    sid = hashlib.sha256(f"{model}/{item_id}".encode()).hexdigest()[:16]
    path = run.sample_paths(model, item_id, sid, weights == "random")[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.asarray(audio).T, RATE, format="FLAC", subtype="PCM_24")
    return Sample(model, item_id, sid, path, weights)


def reference_samples(run: RunFolder, manifest: Manifest, model: str = "reference", shift: int = 0,
                      weights: str = "files") -> list[Sample]:
    """Each item gets the reference window of the item ``shift`` places on (0: its own, the reference row)."""
    items = manifest.items
    return [write_sample(run, model, item.item_id, items[(k + shift) % len(items)].read_reference(), weights)
            for k, item in enumerate(items)]


def quiet(_: str) -> None:
    pass


def _score_cfg(**kw: object) -> ScoreConfig:
    base: dict[str, object] = {"groups": ("signal", "adherence"), "baseline": "reference", "resamples": 200}
    base.update(kw)
    return ScoreConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunFolder, Manifest, dict[str, list[Sample]]]:
    """reference + 'misplaced' (every item gets another item's true accompaniment), scored once."""
    root = tmp_path_factory.mktemp("score")
    run = RunFolder(root / "out")
    manifest = synthetic_manifest(root / "inputs", N_ITEMS, duration_s=DURATION_S)
    samples = {"reference": reference_samples(run, manifest),
               "misplaced": reference_samples(run, manifest, "misplaced", shift=3, weights="pretrained")}
    score(run, manifest, _score_cfg(), samples, log=quiet, progress=False)
    return run, manifest, samples


def test_every_sample_is_scored_with_cis(scored_run) -> None:
    run, _, _ = scored_run
    data = json.loads(run.scores_path.read_text())
    assert data["format"] == "samuel-bench-scores/2"
    assert set(data["models"]) == {"reference", "misplaced"}
    for entry in data["models"].values():
        assert entry["n_samples"] == N_ITEMS and entry["errors"] == []
        loud = entry["per_clip"]["signal.loudness_lufs"]
        assert loud["n"] == N_ITEMS and loud["ci_low"] <= loud["value"] <= loud["ci_high"]
        assert "bootstrap" in loud["method"]
        assert len(entry["clips"]) == N_ITEMS
    facts = data["metrics"]["adherence.chroma_agreement"]
    assert facts["higher_is_better"] is True and facts["chance"] == 0.0
    assert facts["range"] == [pytest.approx(-1 / 11), 1]
    assert not any(k.startswith("adherence_shuffled") for e in data["models"].values() for k in e["per_clip"])


def test_anchors_bracket_and_match_a_direct_computation(scored_run) -> None:
    """The upper anchor is the reference row's own pairs, the lower one each reference accompaniment with a
    deranged item's vocal; both are checked here against features computed from the items' windows directly."""
    from bench.metrics import adherence as ad

    run, manifest, samples = scored_run
    data = json.loads(run.scores_path.read_text())
    anchors = data["anchors"]
    for metric in ("chroma_agreement", "key_agreement"):
        true, shuffled = anchors["true_pairs"][metric]["value"], anchors["shuffled_pairs"][metric]["value"]
        assert true > shuffled, metric
        assert data["models"]["misplaced"]["per_clip"][f"adherence.{metric}"]["value"] < true
        assert anchors["shuffled_pairs"][metric]["n"] == N_ITEMS
    paired = data["models"]["misplaced"]["paired"]["adherence.chroma_agreement"]
    assert paired["versus"] == "reference" and paired["value"] < 0 and 0 < paired["p_value"] <= 1
    # Holm over the run's per-clip family: never below the raw p; m counts every model x metric comparison
    family = [d for e in data["models"].values() for d in e["paired"].values()]
    assert paired["family"] == "per-clip" and paired["family_size"] == len(family) > 1
    assert paired["p_value"] <= paired["p_holm"] <= 1
    chroma = [clip["values"]["adherence.chroma_agreement"] for clip in data["models"]["misplaced"]["clips"]]
    assert data["models"]["misplaced"]["per_clip"]["adherence.chroma_agreement"]["sd"] == pytest.approx(
        np.std(chroma, ddof=1))

    # item k with its own vocal (the reference row's value) and with the vocal the seeded derangement gives it
    items, k = manifest.items, 2
    perm = ad.derangement(N_ITEMS, 0)  # pairs (vocal_i, accompaniment_perm(i))
    partner = items[int(np.flatnonzero(perm == k)[0])]
    accompaniment = ad.accompaniment_features(items[k].read_reference(), RATE)
    own = ad.pair_scores(ad.vocal_features(items[k].read_vocal(), RATE), accompaniment)
    other = ad.pair_scores(ad.vocal_features(partner.read_vocal(), RATE), accompaniment, same_item=False)
    clip = next(c for c in data["models"]["reference"]["clips"] if c["item_id"] == items[k].item_id)
    assert clip["values"]["adherence.chroma_agreement"] == pytest.approx(own.chroma_agreement, rel=1e-9)
    sample = samples["reference"][k]
    record = json.loads(run.clip_record_path("reference", sample.item_id, sample.sample_id).read_text())
    stored = record["anchors"]["adherence"]
    assert stored["key"]["identity"]["vocal"]["item_id"] == partner.item_id
    assert stored["values"]["chroma_agreement"] == pytest.approx(other.chroma_agreement, rel=1e-9)


def test_rescoring_computes_nothing_and_a_changed_sample_is_rescored(scored_run, monkeypatch) -> None:
    import bench.metrics.signal as signal

    run, manifest, samples = scored_run
    calls: list[int] = []
    real = signal.signal_metrics
    monkeypatch.setattr(signal, "signal_metrics", lambda a, r, **kw: calls.append(1) or real(a, r, **kw))
    data = score(run, manifest, _score_cfg(), samples, log=quiet, progress=False)
    assert calls == [] and data["redone"] == []
    sample = samples["misplaced"][0]
    record_path = run.clip_record_path("misplaced", sample.item_id, sample.sample_id)
    before = json.loads(record_path.read_text())["groups"]["signal"]["values"]["loudness_lufs"]
    audio, rate = sf.read(sample.audio, always_2d=True)
    try:
        sf.write(sample.audio, audio * 0.5, rate, format="FLAC", subtype="PCM_24")  # same name, new content
        data = score(run, manifest, _score_cfg(), samples, log=quiet, progress=False)
        assert len(calls) == 1  # only the changed clip
        after = json.loads(record_path.read_text())["groups"]["signal"]["values"]["loudness_lufs"]
        assert after == pytest.approx(before - 6.02, abs=0.05)  # half the amplitude: -6.02 LU, not the old value
        assert any("rewritten" in r["reason"] for r in data["redone"])  # a stale entry is said to be redone
    finally:
        sf.write(sample.audio, audio, rate, format="FLAC", subtype="PCM_24")
        score(run, manifest, _score_cfg(), samples, log=quiet, progress=False)


def test_a_torn_record_is_redone_and_reported(scored_run) -> None:
    run, manifest, samples = scored_run
    sample = samples["reference"][1]
    path = run.clip_record_path("reference", sample.item_id, sample.sample_id)
    good = json.loads(path.read_text())
    path.write_text(path.read_text()[:50])  # an interrupted writer without atomic rename would leave this
    lines: list[str] = []
    data = score(run, manifest, _score_cfg(), samples, log=lines.append, progress=False)
    assert [Path(r["path"]) for r in data["redone"]] == [path] and "unreadable" in data["redone"][0]["reason"]
    assert any("recomputed" in n and path.name in n for n in data["notes"])
    assert any("recomputed" in line and path.name in line for line in lines)  # said in the log too
    again = json.loads(path.read_text())
    for section in ("groups", "anchors"):
        for name, entry in good[section].items():
            assert again[section][name]["values"] == pytest.approx(entry["values"], nan_ok=True), name


def test_a_hand_edited_record_is_redone_not_averaged_in(scored_run) -> None:
    """Still valid JSON, still a number: only the checksum beside the values shows the edit (an audit moved a
    model's mean loudness from -16.7 to -23.5 LUFS this way, unnoticed)."""
    run, manifest, samples = scored_run
    sample = samples["reference"][0]
    path = run.clip_record_path("reference", sample.item_id, sample.sample_id)
    record = json.loads(path.read_text())
    good = record["groups"]["signal"]["values"]["loudness_lufs"]
    record["groups"]["signal"]["values"]["loudness_lufs"] = -99.0
    path.write_text(json.dumps(record, indent=1))
    data = score(run, manifest, _score_cfg(), samples, log=quiet, progress=False)
    assert [Path(r["path"]) for r in data["redone"]] == [path]
    assert "changed after they were written" in data["redone"][0]["reason"]
    assert "groups.signal" in data["redone"][0]["reason"]
    clip = next(c for c in data["models"]["reference"]["clips"] if c["sample_id"] == sample.sample_id)
    assert clip["values"]["signal.loudness_lufs"] == pytest.approx(good, rel=1e-12)
    assert json.loads(path.read_text())["groups"]["signal"]["values"]["loudness_lufs"] == pytest.approx(good)


def test_clip_rows_are_the_current_samples_only(scored_run) -> None:
    run, _, samples = scored_run
    stale = run.clip_record_path("misplaced", "syn-000", "0123456789abcdef")  # left by an earlier run
    stale.write_text(json.dumps({"model": "misplaced", "item_id": "syn-000", "sample_id": "0123456789abcdef",
                                 "groups": {"signal": {"values": {"loudness_lufs": 99.0}}}}))
    rows = read_clip_values(run)
    assert {(r["model"], r["sample_id"]) for r in rows} == {(s.model, s.sample_id) for g in samples.values()
                                                           for s in g}
    assert all(r["value"] != 99.0 for r in rows)
    data = json.loads(run.scores_path.read_text())
    clip = data["models"]["misplaced"]["clips"][0]
    row = next(r for r in rows if r["sample_id"] == clip["sample_id"] and r["metric"] == "signal.loudness_lufs")
    assert row["value"] == clip["values"]["signal.loudness_lufs"] and row["weights"] == "pretrained"
    only = read_clip_values(run, current={("reference", samples["reference"][0].sample_id)})
    assert {r["sample_id"] for r in only} == {samples["reference"][0].sample_id}
    assert not any(r["metric"].startswith("adherence_shuffled") for r in rows)


def test_a_broken_sample_is_reported_and_the_rest_scored(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "out")
    manifest = synthetic_manifest(tmp_path / "inputs", 3, duration_s=3.0)
    samples = reference_samples(run, manifest)
    broken = samples[1]
    broken.audio.write_bytes(b"not audio at all")
    data = score(run, manifest, _score_cfg(groups=("signal",)), {"reference": samples}, log=quiet, progress=False)
    entry = data["models"]["reference"]
    assert [e["item_id"] for e in entry["errors"]] == [broken.item_id]
    assert broken.audio.name in entry["errors"][0]["message"]
    assert entry["per_clip"]["signal.true_peak_dbtp"]["n"] == 2


def test_random_weight_samples_are_scored_only_when_asked(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "out")
    manifest = synthetic_manifest(tmp_path / "inputs", 2, duration_s=2.0)
    samples = {"reference": reference_samples(run, manifest, weights="random")}
    data = score(run, manifest, _score_cfg(groups=("signal",)), samples, log=quiet, progress=False)
    assert data["models"] == {} and any("RANDOM" in n for n in data["notes"])
    data = score(run, manifest, _score_cfg(groups=("signal",), score_random=True), samples, log=quiet,
                 progress=False)
    assert data["models"]["reference"]["weights"] == "random" and "RANDOM" in data["models"]["reference"]["label"]
    assert "Not shown: reference ran with RANDOM weights" in to_markdown(table1(data))


def test_no_paired_differences_against_a_baseline_of_random_weights(tmp_path: Path) -> None:
    """With --score-random, every row was compared with a random-weight SAMUeL (18 p-values in the report) while the
    same report called its outputs plumbing only: a comparison with noise tests nothing about the other rows."""
    import dataclasses

    run = RunFolder(tmp_path / "out")
    manifest = synthetic_manifest(tmp_path / "inputs", 3, duration_s=2.0)
    real = reference_samples(run, manifest)
    noise = [dataclasses.replace(s, model="samuel", weights="random") for s in real]
    cfg = _score_cfg(groups=("signal",), score_random=True, baseline="samuel")
    data = score(run, manifest, cfg, {"reference": real, "samuel": noise}, log=quiet, progress=False)
    assert all(entry["paired"] == {} for entry in data["models"].values())
    assert any(n.startswith("No paired differences: the baseline samuel ran with RANDOM weights")
               for n in data["notes"])
    data = score(run, manifest, dataclasses.replace(cfg, baseline="reference"), {"reference": real, "samuel": noise},
                 log=quiet, progress=False)
    assert data["models"]["samuel"]["paired"]  # a baseline with real weights is compared as before


# -- items windowed in long files (issue 12, defect 1) ---------------------------------------------------------------

WINDOW_START_S, WINDOW_S, LONG_S = 4.0, 2.0, 20.0  # each vocal lasts 10x its item


class WindowProbe(Embedder):
    """Stands in for a FAD embedder: four statistics per 0.1 s frame at 8 kHz; records every waveform length."""

    name, sample_rate, dim = "window-probe", 8_000, 4
    lengths: ClassVar[list[int]] = []

    def resolve_weights(self) -> Resolved:
        return Resolved(Path("/fake"), WeightsStatus("pretrained", "/fake", "fake weights", "sha:probe"))

    def _load(self) -> None:
        pass

    def _embed(self, waveform: np.ndarray) -> np.ndarray:
        WindowProbe.lengths.append(len(waveform))
        frames = waveform[: len(waveform) // 800 * 800].reshape(-1, 800).astype(np.float64)
        return np.stack([frames.mean(1), frames.std(1), np.abs(frames).max(1), (frames**2).mean(1) * 10], axis=1)

    def preprocessing(self) -> str:
        return "0.1 s frames: mean, std, peak, power"


@pytest.fixture
def long_files(tmp_path: Path) -> tuple[RunFolder, Manifest]:
    """Three items whose vocal and reference files last 20 s; each item is the window [4 s, 6 s)."""
    from bench.synthetic import item_meta, render_accompaniment, render_vocal

    items = []
    for i in range(3):
        meta = item_meta(i, LONG_S)
        vocal, ref = tmp_path / "long" / f"v{i}.wav", tmp_path / "long" / f"r{i}.wav"
        vocal.parent.mkdir(exist_ok=True)
        sf.write(vocal, render_vocal(meta, i).T, RATE, subtype="FLOAT")
        sf.write(ref, render_accompaniment(meta, i).T, RATE, subtype="FLOAT")
        items.append(Item(f"long-{i}", str(vocal), "p", i, WINDOW_S, str(ref), start_s=WINDOW_START_S))
    return RunFolder(tmp_path / "out"), Manifest(tuple(items), "long files", 0)


def test_a_vocal_ten_times_longer_than_its_item_is_scored_on_the_items_window(long_files) -> None:
    from bench.metrics import adherence as ad
    from samuel.audio import load_window

    run, manifest = long_files
    item = manifest.items[0]
    assert sf.info(item.vocal).duration == pytest.approx(10 * item.duration_s)
    samples = {"reference": reference_samples(run, manifest), "model": reference_samples(run, manifest, "model")}
    data = score(run, manifest, _score_cfg(), samples, log=quiet, progress=False)
    for entry in data["models"].values():
        assert entry["errors"] == []  # was: "vocal lasts 20.00 s and accompaniment 2.00 s" for every clip
        assert entry["per_clip"]["adherence.chroma_agreement"]["n"] == 3
    assert data["anchors"]["shuffled_pairs"]["chroma_agreement"]["n"] == 3
    accompaniment = ad.accompaniment_features(item.read_reference(), RATE)
    window = ad.pair_scores(ad.vocal_features(item.read_vocal(), RATE), accompaniment)
    file_start = ad.pair_scores(ad.vocal_features(load_window(item.vocal, 0.0, WINDOW_S).samples, RATE), accompaniment)
    assert abs(window.key_agreement - file_start.key_agreement) > 0.5  # the window matters for this item
    clip = next(c for c in data["models"]["model"]["clips"] if c["item_id"] == item.item_id)
    assert clip["values"]["adherence.key_agreement"] == pytest.approx(window.key_agreement, abs=1e-6)  # 24-bit FLAC
    record = json.loads(run.clip_record_path("model", item.item_id, samples["model"][0].sample_id).read_text())
    assert record["groups"]["adherence"]["key"]["identity"]["vocal"]["start_s"] == WINDOW_START_S


def test_fad_and_apa_embed_the_items_windows(long_files, monkeypatch) -> None:
    from bench.embedders.registry import register_embedder

    register_embedder("window-probe", "test_score:WindowProbe")
    run, manifest = long_files
    samples = {"reference": reference_samples(run, manifest), "model": reference_samples(run, manifest, "model", 1)}
    WindowProbe.lengths.clear()
    data = score(run, manifest, _score_cfg(groups=("fad",), embedders=("window-probe",)), samples, log=quiet,
                 progress=False)
    # 3 references (the FAD set), 3 vocals (APA) and the samples (the 'model' clips hold the same audio as the
    # reference row's, so the content-addressed cache may serve them): all 2 s windows at 8 kHz, never 20 s files
    assert set(WindowProbe.lengths) == {round(WINDOW_S * 8_000)} and 9 <= len(WindowProbe.lengths) <= 12
    sets = data["models"]["model"]["sets"]["window-probe"]
    assert sets["n_equal"] == 3 and {"fad", "fad_inf_frames", "kad", "per_song_fad", "apa_late_fusion"} <= set(sets)
    assert data["models"]["reference"]["sets"]["window-probe"]["apa_late_fusion"]["value"] == pytest.approx(1.0)
    assert "each item's window" in data["scorers"]["embedder:window-probe"]["reference"]


def test_a_failed_fad_reference_names_the_files_and_their_errors(long_files) -> None:
    from bench.embedders.registry import register_embedder

    register_embedder("window-probe", "test_score:WindowProbe")
    run, manifest = long_files
    samples = {"model": reference_samples(run, manifest, "model")}
    for item in manifest.items:
        Path(item.reference).write_bytes(b"RIFF but not really a wav file")
    data = score(run, manifest, _score_cfg(groups=("fad",), embedders=("window-probe",)), samples, log=quiet,
                 progress=False)
    note = next(n for n in data["notes"] if n.startswith("FAD with window-probe not computed"))
    assert "fewer than two usable clips" in note and "3 could not be embedded" in note
    for item in manifest.items:
        assert f"{item.reference} [window 4 s + 2 s]: " in note
    assert "Error" in note.split("could not be embedded:", 1)[1]  # the decoder's own error, by class and message


def test_an_undecodable_file_in_a_fad_reference_folder_is_named_in_the_note(long_files, tmp_path) -> None:
    """A --fad-reference folder holding .m4a files gave statistics over the other files, and nothing said the set
    was smaller than the folder."""
    import shutil

    from bench.embedders.registry import register_embedder

    register_embedder("window-probe", "test_score:WindowProbe")
    run, manifest = long_files
    folder = tmp_path / "background"
    folder.mkdir()
    for item in manifest.items:
        shutil.copy(item.reference, folder / Path(item.reference).name)
    (folder / "song.m4a").write_bytes(b"")
    samples = {"model": reference_samples(run, manifest, "model")}
    data = score(run, manifest, _score_cfg(groups=("fad",), embedders=("window-probe",), fad_reference=folder),
                 samples, log=quiet, progress=False)
    assert "fad" in data["models"]["model"]["sets"]["window-probe"]  # the three readable files make the set
    note = next(n for n in data["notes"] if "1 file(s) could not be embedded" in n)
    assert f"{folder / 'song.m4a'}: is .m4a (AAC or ALAC in MP4), which libsndfile cannot decode" in note


# -- the metric registry ---------------------------------------------------------------------------------------------


def test_registry_names_every_metric_once_with_metadata() -> None:
    names = reg.group_names()
    assert names == ["signal", "adherence", "aesthetics", "fad", "apa"]
    for g in reg.GROUPS:
        targets = [g.compute] if g.compute else [m.compute for m in g.metrics]
        targets += list(g.features or ())
        for target in targets:
            assert callable(reg.resolve(target)), target
        for m in g.metrics:
            assert m.label and m.format(0.5)
            if m.low is not None and m.high is not None:
                assert m.low < m.high
            if m.chance is not None:
                assert (m.low is None or m.low <= m.chance) and (m.high is None or m.chance <= m.high)
    with pytest.raises(reg.UnknownMetricError, match="Did you mean 'signal'"):
        ScoreConfig(groups=("signl",))
    with pytest.raises(ValueError, match="appears twice"):
        reg.MetricGroup("x", reg.CLIP, "", (reg.Metric("a", "A"), reg.Metric("a", "A")), compute="m:f")
    assert reg.metric("adherence.onset_alignment")[1].chance == 0.0
    assert reg.metric("adherence_shuffled.chroma_agreement") is None


def brightness(audio: np.ndarray, rate: int) -> dict[str, float]:
    """A metric added by a test: the share of spectral energy above 2 kHz."""
    power = np.abs(np.fft.rfft(audio.mean(axis=0))) ** 2
    return {"high_share": float(power[np.fft.rfftfreq(audio.shape[1], 1 / rate) > 2000].sum() / power.sum())}


def test_a_new_metric_needs_its_function_and_one_registry_entry(tmp_path: Path, monkeypatch) -> None:
    group = reg.MetricGroup("brightness", reg.CLIP, "energy above 2 kHz", compute="test_score:brightness",
                            figure_rank=3, metrics=(reg.Metric("high_share", "High-band share", low=0.0, high=1.0),))
    monkeypatch.setattr(reg, "GROUPS", (*reg.GROUPS, group))
    monkeypatch.setattr(reg, "_BY_NAME", {**reg._BY_NAME, "brightness": group})
    run = RunFolder(tmp_path / "out")
    manifest = synthetic_manifest(tmp_path / "inputs", 2, duration_s=2.0)
    data = score(run, manifest, _score_cfg(groups=("brightness",)), {"reference": reference_samples(run, manifest)},
                 log=quiet, progress=False)
    est = data["models"]["reference"]["per_clip"]["brightness.high_share"]
    assert est["n"] == 2 and 0 < est["value"] < 1 and data["metrics"]["brightness.high_share"]["range"] == [0, 1]
    rows = read_clip_values(data)
    assert {r["metric"] for r in rows} == {"brightness.high_share"}
    from reports.figures import distributions_figure

    assert distributions_figure(rows, data, {}, set()) is not None  # the figures take it from the registry


# -- the summary: per-clip SD, Holm-adjusted p-values and their typed reads -------------------------------------------


def test_summarise_stores_the_sd_and_holm_adjusts_one_family() -> None:
    from bench.scoring.summary import summarise
    from bench.stats import holm_adjust

    rng = np.random.default_rng(0)
    items = [f"i{k}" for k in range(30)]

    def per_item(shift: float) -> dict:
        return {i: {"g": {"a": float(a), "b": float(b)}}
                for i, a, b in zip(items, rng.normal(shift, 1, 30), rng.normal(0, 1, 30), strict=True)}

    per = {"base": per_item(0.0), "m1": per_item(1.0), "m2": per_item(0.0), "one": {"i0": {"g": {"a": 1.0}}}}
    out = summarise(per, {m: 30 for m in per}, "base", 500, 0)
    entries = [d for m in ("m1", "m2") for d in out[m]["paired"].values()]
    assert len(entries) == 4 and out["base"]["paired"] == {} and out["one"]["paired"] == {}  # n < 2: no test
    np.testing.assert_allclose([d["p_holm"] for d in entries], holm_adjust([d["p_value"] for d in entries]))
    assert all(d["family"] == "per-clip" and d["family_size"] == 4 and d["p_value"] <= d["p_holm"] <= 1
               for d in entries)
    assert out["m1"]["paired"]["g.a"]["p_holm"] < 0.01  # a shift of 1 SD at n = 30 survives the adjustment
    a = [per["m1"][i]["g"]["a"] for i in items]
    assert out["m1"]["per_clip"]["g.a"]["sd"] == pytest.approx(np.std(a, ddof=1))
    assert out["one"]["per_clip"]["g.a"]["sd"] is None


def test_scores_reads_holm_p_and_set_level_paired_differences() -> None:
    from bench.scoring.records import Scores

    diff = {"value": -0.3, "ci_low": -0.5, "ci_high": -0.1, "n": 100, "p_value": 0.004, "p_holm": 0.02,
            "family": "set"}
    data = {"format": "samuel-bench-scores/2", "models": {
        "samuel": {"weights": "pretrained",
                   "paired": {"aesthetics.PQ": {"value": 1.0, "p_value": 0.01, "p_holm": 0.04, "family": "per-clip",
                                                "versus": "reference"}},
                   "sets": {"vggish": {"paired": {"fad": {"reference": diff}}},
                            "clap-laion-music": {"paired": {"kad": {**diff, "versus": "musicgen"}}}}},
        "old": {"weights": "pretrained", "paired": {"aesthetics.PQ": {"value": 1.0, "p_value": 0.01}}}}}
    scores = Scores.from_json(data)
    pq = scores.models["samuel"].paired["aesthetics.PQ"]
    assert (pq.p_value, pq.p_holm, pq.family, pq.versus) == (0.01, 0.04, "per-clip", "reference")
    old = scores.models["old"].paired["aesthetics.PQ"]
    assert (old.p_holm, old.family, scores.models["old"].set_paired) == (None, "", ())
    got = [(s.embedder, s.metric, s.difference.versus, s.difference.p_holm, s.difference.family)
           for s in scores.models["samuel"].set_paired]
    assert got == [("vggish", "fad", "reference", 0.02, "set"), ("clap-laion-music", "kad", "musicgen", 0.02, "set")]
    data["models"]["samuel"]["sets"]["vggish"]["paired"]["fad"]["reference"] = [1]
    with pytest.raises(ValueError, match=r"sets\['vggish'\]\.paired\['fad'\]\['reference'\]"):
        Scores.from_json(data)


# -- Table I ---------------------------------------------------------------------------------------------------------


KAD_MATCHES = "KAD x100 as kadtk computes it (bandwidth: median pairwise distance of the eval set)"
APA_MATCHES = "APA as published: stem and context mixed at -20 LUFS, CLAP-music, 5 s windows"


def _set_entry(fad: float, kad: float, apa: float | None, embedder: str) -> dict:
    """One model's set statistics for one embedder in the layout the set pass writes (``matches`` etc.)."""
    def est(v: float, half: float) -> dict:
        return {"value": v, "ci_low": v - half, "ci_high": v + half, "n": 100, "se": half / 1.96,
                "method": "two-sample percentile bootstrap (eval and reference clips)"}

    entry = {"fad": {**est(fad, 0.4), "bootstrap_bias": 0.6, "matches": f"fadtk's FAD on {embedder} frames"},
             "fad_inf": {"value": fad - 0.3, "slope": 30.0, "r2": 0.98, "points": 15, "variant": "clips",
                         "matches": "FAD-inf over clips (ours)"},
             "fad_inf_frames": {"value": fad - 0.1, "slope": 900.0, "r2": 0.99, "points": 15, "variant": "frames",
                                "matches": "fadtk's FAD-inf (frames)"},
             "kad": {**est(kad, 0.4), "scale": 100, "bandwidth": 12.5, "bandwidth_rule": "kadtk",
                     "estimator": "clip-level U-statistic", "matches": KAD_MATCHES},
             "apa_late_fusion": {**est(0.6, 0.05), "matches": "late fusion of per-stem frames (ours)"}}
    if apa is not None:
        entry["apa"] = {**est(apa, 0.05), "matches": APA_MATCHES}
    return entry


def _fixed_scores() -> dict:
    def est(v: float, lo: float, hi: float, n: int = 100, sd: float = 1.0) -> dict:
        return {"value": v, "ci_low": lo, "ci_high": hi, "n": n, "method": "percentile bootstrap", "sd": sd}

    aes = {f"aesthetics.{a}": est(v, v - 0.1, v + 0.1) for a, v in zip(("PQ", "PC", "CE", "CU"),
                                                                      (7.9, 6.3, 7.3, 7.6), strict=True)}
    adh = {"adherence.chroma_agreement": est(0.41, 0.39, 0.43), "adherence.key_agreement": est(0.62, 0.58, 0.66),
           "adherence.rhythm_agreement": est(0.35, 0.30, 0.40)}
    sets = {"vggish": _set_entry(2.5, 1.2, None, "vggish"),
            "clap-laion-music": _set_entry(0.4, 3.1, 0.71, "clap-laion-music")}
    return {
        "format": "samuel-bench-scores/2", "config": {"embedders": ["vggish", "clap-laion-music"], "resamples": 1000,
                                                                  "resampler": "torchaudio-default"},
        "notes": ["a note of the score pass"],
        "anchors": {"true_pairs": {k.split(".")[1]: est(0.5, 0.48, 0.52) for k in adh},
                    "shuffled_pairs": {k.split(".")[1]: est(0.1, 0.08, 0.12) for k in adh}},
        "models": {
            "reference": {"weights": "files", "per_clip": {**aes, **adh},
                          "sets": {"vggish": {"note": "this row is the FAD reference set itself"},
                                   "clap-laion-music": {"note": "this row is the FAD reference set itself",
                                                        "apa": {"value": 1.0, "n": 100, "matches": APA_MATCHES}}}},
            # samuel, SD 1 per clip, n = 100 against the paper's 10: bound t(99) * sqrt(1/100 + 1/10) = 0.658
            "samuel": {"weights": "pretrained", "per_clip": {**{k: est(v["value"] - 2, v["value"] - 2.1,
                                                                     v["value"] - 1.9) for k, v in aes.items()},
                                                           **adh}, "sets": sets},
            "musicgen-small": {"weights": "random", "per_clip": aes, "sets": {}},
        },
    }


def _late_fusion_scores() -> dict:
    """A scores.json from before the published APA and the per-clip SD: ``apa`` is late fusion, no method fields."""
    data = _fixed_scores()
    data["config"]["embedders"] = ["vggish"]
    for entry in data["models"].values():
        for est in entry["per_clip"].values():
            est.pop("sd", None)  # dicts are shared between rows
    data["models"]["samuel"]["sets"] = {"vggish": {"fad": {"value": 2.5, "ci_low": 2.1, "ci_high": 2.9, "n": 100},
                                                   "kad": {"value": 0.012, "ci_low": 0.008, "ci_high": 0.016,
                                                           "n": 100},
                                                   "apa": {"value": 0.71, "n_items": 100,
                                                           "fusion": "late, frame-aligned"}}}
    data["models"]["reference"]["sets"] = {"vggish": {"note": "this row is the FAD reference set itself",
                                                      "apa": {"value": 1.0, "n_items": 100,
                                                              "fusion": "late, frame-aligned"}}}
    return data


def test_table1_snapshot() -> None:
    text = to_markdown(table1(_fixed_scores()))
    snapshot = HERE / "snapshots" / "table1.md"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(text)
    assert text == snapshot.read_text()


def test_table1_names_the_interval_method_its_rows_used() -> None:
    """Note 1 named the bootstrap (B=1000) above rows whose intervals were all Student's t (under 10 items)."""
    from bench.bootstrap import T_INTERVAL

    data = _fixed_scores()
    t_method = f"{T_INTERVAL} of the mean over 5 items: fewer than 10 units"
    for entry in [*data["models"].values(), *data["anchors"].values()]:
        for key, est in list((entry.get("per_clip", entry)).items()):
            (entry.get("per_clip", entry))[key] = {**est, "method": t_method}
    note = table1(data).notes[0]
    assert "Student's t 95% CI" in note and "bootstrap 95% CI" not in note and "B=" not in note
    data["models"]["samuel"]["per_clip"]["adherence.key_agreement"]["method"] = "expanded percentile bootstrap"
    note = table1(data).notes[0]
    assert "Student's t 95% CI" in note and "else a seeded expanded percentile bootstrap 95% CI (B=1000" in note
    assert "expanded percentile bootstrap 95% CI (B=1000" in table1(_fixed_scores()).notes[0]


def test_table1_flags_paper_values_beyond_the_bound_and_hides_random_rows() -> None:
    table = table1(_fixed_scores())
    names = [r[0].display for r in table.rows]
    assert names == ["reference", "samuel", "Anchor: true pairs (upper)", "Anchor: shuffled pairs (lower)"]
    samuel = dict(zip(table.columns, table.rows[1], strict=True))
    # |5.90 - 5.73| = 0.17 < 0.658: outside our CI [5.80, 6.00], but within the paper's own sampling error
    assert samuel["PQ"].display == "5.90 [5.80, 6.00], n=100" and samuel["PQ (paper)"].display == "5.73"
    assert not samuel["PQ (paper)"].flagged and "bound +-0.66 (n_paper=10)" in samuel["PQ (paper)"].note
    assert samuel["CE (paper)"].display == "2.93†" and samuel["CE (paper)"].flagged  # 2.37 > 0.658
    assert samuel["PC (paper)"].display == "5.14†"  # 0.84 > 0.658
    assert samuel["CU (paper)"].display == "4.97"  # 0.63 < 0.658
    assert table.rows[0][3].display == "7.92"
    assert any(n.startswith("† ") and n.endswith("samuel PC, samuel CE.") for n in table.notes)
    assert any("musicgen-small ran with RANDOM weights" in n for n in table.notes)
    assert table.rows[0][table.columns.index("FAD (vggish)")].display == "— (the FAD reference set)"


def test_table1_names_the_clips_outside_n_and_why_adherence_can_be_undefined() -> None:
    """A row read "n=9" of 11 items with nothing saying which two were left out or why (a silent vocal gives no
    adherence value, which is not the model's fault); the note names them, per row, grouped by the same items."""
    data = _fixed_scores()
    nan = float("nan")
    data["models"]["samuel"]["clips"] = [
        {"item_id": "ok", "values": {"adherence.chroma_agreement": 0.1, "adherence.key_agreement": 0.2,
                                     "adherence.rhythm_agreement": 0.0, "aesthetics.PQ": 5.0}},
        {"item_id": "silent", "values": {"adherence.chroma_agreement": nan, "adherence.key_agreement": nan,
                                         "adherence.rhythm_agreement": nan, "aesthetics.PQ": 5.1}},
        {"item_id": "short", "values": {"adherence.chroma_agreement": 0.1, "adherence.key_agreement": 0.1,
                                        "adherence.rhythm_agreement": None, "aesthetics.PQ": 5.2}}]
    data["models"]["musicgen-small"]["clips"] = [{"item_id": "silent", "values": {"aesthetics.PQ": nan}}]  # random
    notes = table1(data).notes
    assert notes[0].startswith("Per-clip metrics:")
    assert notes[1].startswith("Clips without a finite value, outside n (scores.json holds each clip): "
                               "samuel (Chroma agreement, Key agreement): silent; "
                               "samuel (Rhythm agreement): silent, short. Adherence is undefined, not zero")
    assert "musicgen-small" not in notes[1]  # a row not shown is not explained
    assert not any(n.startswith("Clips without a finite value") for n in table1(_fixed_scores()).notes)


def test_table1_names_items_a_row_has_no_sample_of_and_clips_whose_scorer_failed() -> None:
    """Run with an outputs folder missing one file and a clip adherence failed on: its row read n=5 against the
    reference's n=6 and nothing said which items, or why."""
    data = _fixed_scores()
    ok = {"adherence.chroma_agreement": 0.1, "adherence.key_agreement": 0.2, "adherence.rhythm_agreement": 0.0}
    data["models"]["reference"]["clips"] = [{"item_id": i, "values": dict(ok)} for i in ("a", "b", "c")]
    data["models"]["samuel"]["clips"] = [{"item_id": "a", "values": dict(ok)}, {"item_id": "b", "values": {}}]
    data["models"]["samuel"]["errors"] = [{"item_id": "b", "group": "adherence", "message": "boom"}]
    note = next(n for n in table1(data).notes if n.startswith("Clips without a finite value"))
    assert ("samuel (Chroma agreement, Key agreement, Rhythm agreement): b; samuel (no sample: not generated, or its "
            "file missing or unreadable): c") in note
    assert "reference (" not in note


def test_table1_says_when_the_paper_value_is_not_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    """No per-clip SD (an older scores.json), or no n from the paper: the cell says so instead of a flag."""
    table = table1(_late_fusion_scores())
    samuel = dict(zip(table.columns, table.rows[1], strict=True))
    assert samuel["CE (paper)"].display == "2.93" and not samuel["CE (paper)"].flagged
    assert "no per-clip SD" in samuel["CE (paper)"].note
    assert any(n.startswith("Not compared with the paper") and "samuel CE" in n for n in table.notes)
    from reports import paper

    monkeypatch.setitem(paper.TABLE1_N, "samuel", paper.PaperN(None, None, ""))
    monkeypatch.setattr("reports.table1.TABLE1_N", paper.TABLE1_N)
    samuel = dict(zip(*(lambda t: (t.columns, t.rows[1]))(table1(_fixed_scores())), strict=True))
    assert samuel["CE (paper)"].display == "2.93" and samuel["CE (paper)"].note == "not compared: the paper gives no n"


def test_table1_notes_name_method_scale_and_variant_from_scores_json() -> None:
    table = table1(_fixed_scores())
    notes = "\n".join(table.notes)
    assert f"KAD: {KAD_MATCHES}; scale: x100; bandwidth: kadtk; estimator: clip-level U-statistic" in notes
    assert "FAD: fadtk's FAD on vggish frames [vggish]; fadtk's FAD on clap-laion-music frames [clap-laion-music]" \
        in notes
    assert ("FAD-inf (in scores.json, not in this table): clip variant: FAD-inf over clips (ours); frame variant "
            "(fadtk's): fadtk's FAD-inf (frames).") in notes
    assert "keeps the clip-level bias" in notes and "small-n bias is in" not in notes
    assert f"APA (Grachten & Nistal 2025): {APA_MATCHES}" in notes
    assert "as apa_late_fusion, not in this table): late fusion of per-stem frames (ours)" in notes
    # the published APA column only where it was computed; late fusion stays out of Table I
    assert [c for c in table.columns if c.startswith("APA")] == ["APA (clap-laion-music)"]
    samuel = dict(zip(table.columns, table.rows[1], strict=True))
    assert samuel["APA (clap-laion-music)"].display == "0.710 [0.660, 0.760], n=100"
    assert samuel["KAD x100 (vggish)"].display == "1.2 [0.8, 1.6], n=100"


def test_table1_falls_back_on_an_older_scores_json() -> None:
    """An older late-fusion 'apa' never passes for the published APA; KAD without a stored scale says it is
    unscaled; no method: said so."""
    scores = _late_fusion_scores()
    for entry in scores["models"].values():  # the older file's late-fusion APA under the published APA's embedder
        if "vggish" in entry.get("sets", {}):
            entry["sets"]["clap-laion-music"] = entry["sets"]["vggish"]
    table = table1(scores)
    samuel = dict(zip(table.columns, table.rows[1], strict=True))
    apa = samuel["APA (clap-laion-music)"]
    assert apa.value is None and apa.display == "— (this older scores.json holds only the late-fusion variant)"
    notes = "\n".join(table.notes)
    assert "KAD: scale: none stored (raw MMD^2; kadtk reports x100); which tool it matches is not" in notes
    assert "which tool it matches is not recorded" in notes


def test_table1_columns_come_from_the_registry() -> None:
    from reports.table1 import columns_for

    def embedders(g: reg.MetricGroup, chosen: list[str]) -> list[str | None]:
        return chosen if g.kind == reg.SET else [g.embedder] if g.kind == reg.MIX_SET else [None]

    registered = [m.table1.format(embedder=e) for g in reg.table1_groups() for e in embedders(g, ["vggish"])
                  for m in g.metrics if m.table1]
    assert [c.label for c in columns_for(["vggish"])] == registered
    assert "APA (clap-laion-music)" in registered  # the published APA's column names its own embedder
    columns = table1(_fixed_scores()).columns
    shown = [c for c in columns if "(paper)" not in c and c not in ("Model", "Weights")]
    assert shown == [m.table1.format(embedder=e) for g in reg.table1_groups()
                     for e in embedders(g, ["vggish", "clap-laion-music"]) for m in g.metrics if m.table1]


# -- through samuel-eval: the scorers with weights, tiny-budget checkpoints in the real formats -----------------------


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A random real-size VGGish in the torch port's layout and a random audiobox-aesthetics model in the
    package's checkpoint format (both architectures are fixed in size)."""
    import torch
    from audiobox_aesthetics.model.aes import AesMultiOutput

    from bench.embedders.vggish import CHECKPOINT_FILE, VGGishNet

    folder = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    (folder / "vggish").mkdir()
    torch.save(VGGishNet().state_dict(), folder / "vggish" / CHECKPOINT_FILE)
    cfg = {"proj_num_layer": 1, "proj_ln": False, "proj_act_fn": "gelu", "proj_dropout": 0, "nth_layer": 13,
           "use_weighted_layer_sum": True, "precision": "32", "normalize_embed": True, "output_dim": 1}
    transform = {a: {"mean": 5.0, "std": 1.0} for a in ("PQ", "PC", "CE", "CU")}
    model = AesMultiOutput(**cfg, target_transform=transform)
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "model_cfg": cfg,
                "target_transform": transform}, folder / "checkpoint.pt")
    return {"vggish": folder / "vggish", "aesthetics": folder / "checkpoint.pt"}


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
def test_samuel_eval_scores_aesthetics_and_the_fad_family(tmp_path: Path, checkpoints: dict[str, Path]) -> None:
    from reports.cli import main

    out = tmp_path / "out"
    base = ["--n", "4", "--duration", "3", "--out", str(out), "--passes", "generate,score", "--no-progress",
            "--resamples", "100"]
    assert main(["--models", "reference", *base, "--metrics", "signal"]) == 0
    manifest = Manifest.read(out / "manifest.json")
    misplaced = tmp_path / "misplaced"
    misplaced.mkdir()
    rng = np.random.default_rng(0)
    for k, item in enumerate(manifest.items):  # another item's accompaniment, with noise: a set unlike the reference
        audio, rate = sf.read(manifest.items[(k + 1) % 4].reference, always_2d=True)
        sf.write(misplaced / f"{item.item_id}.wav", 0.5 * audio + 0.05 * rng.standard_normal(audio.shape), rate)
    assert main(["--models", f"reference,outputs:misplaced={misplaced}", *base, "--metrics", "aesthetics,fad",
                 "--aesthetics-weights", str(checkpoints["aesthetics"]),
                 "--embedder-weights", f"vggish={checkpoints['vggish']}"]) == 0
    data = json.loads((out / "scores.json").read_text())
    for model in ("reference", "misplaced"):
        pq = data["models"][model]["per_clip"]["aesthetics.PQ"]
        assert pq["n"] == 4 and 1.0 < pq["value"] < 10.0
    sets = data["models"]["misplaced"]["sets"]["vggish"]
    assert sets["n_equal"] == 4 and sets["fad"]["value"] > 0 and sets["fad"]["se"] > 0
    assert {"fad_inf_frames", "kad", "per_song_fad", "apa_late_fusion"} <= set(sets)
    assert data["models"]["reference"]["sets"]["vggish"]["apa_late_fusion"]["value"] == pytest.approx(1.0)
    assert data["scorers"]["embedder:vggish"]["status"]["kind"] == "pretrained"
    assert "signal.loudness_lufs" not in data["models"]["reference"]["per_clip"]  # only the groups asked for
    assert {r["metric"].split(".")[0] for r in read_clip_values(out)} == {"aesthetics"}  # nor in the figures
    kept = json.loads(next((out / "scores" / "reference").glob("*.json")).read_text())["groups"]
    assert {"signal", "aesthetics"} <= set(kept)  # but an earlier group stays in the record, for a later run
    table = to_markdown(table1(data))
    assert "misplaced" in table and "— (the FAD reference set)" in table
    # a missing embedder checkpoint turns FAD off with the one message; everything else still runs
    assert main(["--models", "reference", *base, "--metrics", "signal,fad",
                 "--embedder-weights", f"vggish={tmp_path / 'nowhere'}"]) == 0
    data = json.loads((out / "scores.json").read_text())
    assert any("vggish not computed" in n and "weights not found" in n for n in data["notes"])
    assert data["models"]["reference"]["per_clip"]["signal.true_peak_dbtp"]["n"] == 4


# -- issue 13: the published APA and the paired set comparisons through the score pass ---------------------------


def test_published_apa_and_set_comparisons_are_paired_and_holm_adjusted(tmp_path: Path) -> None:
    """Through score(): the published APA (CLAP-music mixes) of a model that returns the true accompaniments is ~1,
    one that returns another item's is lower; FAD, KAD and APA of 'shifted' are paired against the baseline on
    shared resamples, and every set p-value is Holm-adjusted as one family."""
    from helpers import save_tiny_clap

    from bench.embedders.registry import register_embedder

    register_embedder("window-probe", "test_score:WindowProbe")
    run = RunFolder(tmp_path / "out")
    # two 5 s APA windows per item; 8 items, as with 4 some resample draws one item only and KAD is undefined there
    manifest = synthetic_manifest(tmp_path / "inputs", 8, duration_s=10.5)
    samples = {"reference": reference_samples(run, manifest), "copy": reference_samples(run, manifest, "copy"),
               "shifted": reference_samples(run, manifest, "shifted", shift=1)}
    cfg = _score_cfg(groups=("fad", "apa"), embedders=("window-probe",), baseline="copy",
                     embedder_weights={"clap-laion-music": str(save_tiny_clap(tmp_path / "clap"))})
    data = score(run, manifest, cfg, samples, log=quiet, progress=False)
    models = data["models"]
    copy, shifted = models["copy"]["sets"], models["shifted"]["sets"]
    assert copy["clap-laion-music"]["apa"]["value"] == pytest.approx(1.0, abs=1e-6)
    apa = shifted["clap-laion-music"]["apa"]
    assert apa["value"] < 0.5 and apa["n"] == 8 and apa["ci_low"] <= apa["value"] <= apa["ci_high"]
    assert "audio-metrics" in apa["matches"] and "apa" not in models["reference"]["sets"].get("clap-laion-music", {})
    kad = shifted["window-probe"]["kad"]
    assert kad["scale"] == 100 and kad["bandwidth_rule"] == "reference" and "kadtk" in kad["matches"]
    paired = {(emb, metric): d["copy"] for emb, entry in shifted.items()
              for metric, d in entry.get("paired", {}).items()}
    assert set(paired) == {("window-probe", "fad"), ("window-probe", "kad"), ("clap-laion-music", "apa")}
    for (emb, metric), d in paired.items():
        own, base = shifted[emb][metric]["value"], copy[emb][metric]["value"]
        assert d["value"] == pytest.approx(own - base) and d["family"] == "set" and d["family_size"] == 3
        assert d["p_value"] <= d["p_holm"] <= min(1.0, 3 * d["p_value"]) + 1e-12
    assert "paired" not in copy["window-probe"]  # the baseline is not compared with itself
    assert set(data["families"]) == {"per-clip", "set"}


def test_table1_shows_only_the_groups_that_ran_and_notes_only_what_was_computed() -> None:
    """A run with --metrics aesthetics,adherence: no FAD/KAD/APA column, and no note about a statistic not computed
    (a 'KAD: scale: none stored' note there would tell the reader something false)."""
    scores = _fixed_scores()
    scores["config"]["groups"] = ["aesthetics", "adherence"]
    for entry in scores["models"].values():
        entry["sets"] = {}
    table = table1(scores)
    assert not [c for c in table.columns if c.startswith(("FAD", "KAD", "APA"))]
    assert "Rhythm agreement" in table.columns and "PQ" in table.columns
    assert not [n for n in table.notes if n.startswith(("FAD", "KAD", "APA"))]
    assert table.title.startswith("Table I: quality (audiobox-aesthetics 1-10, vocal-accompaniment adherence);")
    scores["config"]["groups"] = ["adherence"]  # no column with a paper value: no paper notes
    only = table1(scores)
    assert only.title.startswith("Table I: quality (vocal-accompaniment adherence);")
    assert not [n for n in only.notes if n.startswith(("Paper values", "† "))]


def test_a_caveat_on_a_rows_weights_is_in_its_cell_and_a_note() -> None:
    """A checkpoint run with another VAE than its own (``--option samuel.codec_mismatch=allow``) read "pretrained"
    in both tables; only the samples' sidecars said so. The row's weights status carries it into results.json, and
    Table I shows it beside the row and in its first note."""
    from bench.results import RunResults

    caveat = "VAE MISMATCH: the checkpoint was trained on latents of /data/vae (weights sha256 eeee...)"
    results = RunResults.from_json({
        "format": "samuel-bench-results/2", "config": {}, "manifest": {"rejected": []},
        "provenance": {"device": {"cpu": "x86_64", "torch_threads": 2}},
        "models": {"samuel": {"spec": "samuel", "status": "run", "describe": {"display_name": "SAMUeL"},
                              "weights": {"kind": "pretrained", "source": "/m.safetensors", "caveat": caveat}}}},
        source="fixture")
    assert RunResults.from_json(results.to_json(), source="again").models["samuel"].weights.caveat == caveat
    table = table1(_fixed_scores(), results)
    row = dict(zip(table.columns, next(r for r in table.rows if r[0].display == "SAMUeL"), strict=True))
    assert row["Weights"].display == "pretrained, VAE MISMATCH" and row["Weights"].note == caveat
    assert table.notes[0] == f"Weights with a caveat (the row runs; its samples' records say it too): SAMUeL: {caveat}."
    assert table.notes[1].startswith("Per-clip metrics:")
    assert not any("caveat" in n for n in table1(_fixed_scores()).notes)


def test_a_torn_scores_json_is_named_by_path(tmp_path: Path) -> None:
    """A scores.json cut short (an interrupted copy, a full disk) stopped `samuel-eval report` with only the JSON
    parser's message; the file is now named, as results.json is."""
    from bench.scoring.records import read_scores

    path = tmp_path / "scores.json"
    path.write_text('{"format": "samuel-bench-scores/2", "models": {"a": {')
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: unreadable \(JSONDecodeError: .*score the run"):
        read_scores(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"not a samuel-bench scores file \(format None\)"):
        read_scores(path)
