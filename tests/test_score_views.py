"""The score pass's common crop and its views (issue 14): systems made elsewhere at 24 kHz mono and 10 s beside
20 s items are scored with every other model on the common 10 s (vocal and reference windows too, for every
metric), the crop is in every cache key, and ``--score-on mix|both`` scores the loudness-matched vocal +
accompaniment mix, checked against a direct computation and against APA's published mix rule.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.manifest import Item, Manifest
from bench.metrics.apa import loudness_matched_mix, peak_limit
from bench.metrics.mix import linked_peak_limit, stereo_loudness, vocal_accompaniment_mix
from bench.runfolder import RunFolder
from bench.scoring import Sample, ScoreConfig, score
from reports.table1 import table1

RATE, SHORT_RATE = 44_100, 24_000
ITEM_S, SHORT_S, N_ITEMS = 20.0, 10.0, 2  # two items: the fewest a derangement (anchor) needs


def quiet(_: str) -> None:
    pass


def _cfg(**kw: object) -> ScoreConfig:
    base: dict[str, object] = {"groups": ("signal", "adherence"), "baseline": "reference", "resamples": 100}
    base.update(kw)
    return ScoreConfig(**base)  # type: ignore[arg-type]


def _sample(run: RunFolder, model: str, item_id: str, audio: np.ndarray, rate: int) -> Sample:
    """(C, S) ``audio`` at ``rate`` as a 24-bit FLAC sample of ``model`` (a file source: weights 'files')."""
    sid = hashlib.sha256(f"{model}/{item_id}".encode()).hexdigest()[:16]
    path = run.sample_paths(model, item_id, sid, False)[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.asarray(audio).T, rate, format="FLAC", subtype="PCM_24")
    return Sample(model, item_id, sid, path, "files")


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    """Two 20 s items (synthetic vocal and true accompaniment, 44.1 kHz stereo)."""
    from bench.synthetic import item_meta, render_accompaniment, render_vocal

    root = tmp_path_factory.mktemp("views")
    found = []
    for i in range(N_ITEMS):
        meta = item_meta(i, ITEM_S)
        vocal, ref = root / "in" / f"v{i}.wav", root / "in" / f"r{i}.wav"
        vocal.parent.mkdir(exist_ok=True)
        sf.write(vocal, render_vocal(meta, i).T, RATE, subtype="FLOAT")
        sf.write(ref, render_accompaniment(meta, i).T, RATE, subtype="FLOAT")
        found.append(Item(f"it-{i}", str(vocal), "p", i, ITEM_S, str(ref)))
    return root, Manifest(tuple(found), "views", 0)


def _samples(run: RunFolder, manifest: Manifest, short: bool = True) -> dict[str, list[Sample]]:
    """The reference row (each item's 20 s true accompaniment) and, with ``short``, a system made elsewhere:
    24 kHz mono, 10 s, the next item's accompaniment (so it differs from the reference row)."""
    import soxr

    out = {"reference": [_sample(run, "reference", i.item_id, i.read_reference(), RATE) for i in manifest.items]}
    if short:
        out["elsewhere"] = []
        for k, item in enumerate(manifest.items):
            other = manifest.items[(k + 1) % N_ITEMS].read_reference().mean(axis=0)
            mono = soxr.resample(other, RATE, SHORT_RATE)[: int(SHORT_S * SHORT_RATE)]
            out["elsewhere"].append(_sample(run, "elsewhere", item.item_id, mono[None, :], SHORT_RATE))
    return out


def _record(run: RunFolder, sample: Sample, view: str = "accompaniment") -> dict:
    path = run.clip_record_path(sample.model, sample.item_id, sample.sample_id)
    return json.loads((path if view == "accompaniment" else path.parent / view / path.name).read_text())


def _clip_values(data: dict, model: str, item_id: str) -> dict[str, float]:
    return next(c["values"] for c in data["models"][model]["clips"] if c["item_id"] == item_id)


# -- the common crop ------------------------------------------------------------------------------------------------


@pytest.mark.slow  # pYIN on two 10 s vocals and the anchors: ~15 s on a busy 2-core CPU
def test_every_model_is_scored_on_the_common_window(tmp_path: Path, items) -> None:
    from bench.metrics import adherence as ad
    from bench.metrics.signal import signal_metrics
    from samuel.audio import load_audio, load_window

    _, manifest = items
    run = RunFolder(tmp_path / "out")
    samples = _samples(run, manifest)
    data = score(run, manifest, _cfg(), samples, log=quiet, progress=False)
    for entry in data["models"].values():
        assert entry["errors"] == [] and entry["per_clip"]["adherence.chroma_agreement"]["n"] == N_ITEMS
    crop = data["crop"]
    assert crop["summary"] == {"n_items": N_ITEMS, "n_cropped": N_ITEMS, "min_s": SHORT_S, "median_s": SHORT_S,
                               "max_s": SHORT_S, "cropped_min_s": SHORT_S, "set_by": ["elsewhere"]}
    assert crop["per_item"]["it-0"] == {"crop_s": SHORT_S, "item_s": ITEM_S, "set_by": ["elsewhere"]}
    assert set(crop["models"]) == {"reference", "elsewhere"}
    assert any(n.startswith("Common crop:") and "set by elsewhere" in n for n in data["notes"])
    assert any(n.startswith("Common crop:") for n in table1(data).notes)

    # the reference row's adherence is its 10 s vocal window against its 10 s reference window, not 20 s
    item = manifest.items[0]
    vocal = load_window(item.vocal, 0.0, SHORT_S).samples
    reference = load_window(item.reference, 0.0, SHORT_S).samples
    assert vocal.shape[1] == reference.shape[1] == int(SHORT_S * RATE)
    direct = ad.pair_scores(ad.vocal_features(vocal, RATE), ad.accompaniment_features(reference, RATE))
    got = _clip_values(data, "reference", item.item_id)
    for metric in ("chroma_agreement", "key_agreement", "rhythm_agreement"):
        assert got[f"adherence.{metric}"] == pytest.approx(getattr(direct, metric), abs=1e-6)  # 24-bit FLAC
    # the reference row's signal group read only 10 s; the 10 s file is read whole
    assert got["signal.loudness_lufs"] == pytest.approx(signal_metrics(reference, RATE).loudness_lufs, abs=1e-3)
    short = samples["elsewhere"][0]
    assert _clip_values(data, "elsewhere", item.item_id)["signal.loudness_lufs"] == pytest.approx(
        signal_metrics(load_audio(short.audio).samples, RATE).loudness_lufs, rel=1e-9)

    # the keys name the crop: the reference sample's window, and the 10 s vocal window of both rows
    ref_record = _record(run, samples["reference"][0])
    assert ref_record["groups"]["signal"]["key"]["identity"]["sample_window"] == {"start_s": 0.0,
                                                                                   "duration_s": SHORT_S}
    assert ref_record["groups"]["adherence"]["key"]["identity"]["vocal"]["duration_s"] == SHORT_S
    assert ref_record["anchors"]["adherence"]["key"]["identity"]["vocal"]["duration_s"] == SHORT_S
    short_record = _record(run, short)
    assert "sample_window" not in short_record["groups"]["signal"]["key"]["identity"]  # not cut: read whole
    assert short_record["groups"]["adherence"]["key"]["identity"]["vocal"]["duration_s"] == SHORT_S

    # another set of models, another crop: the reference row is recomputed on its 20 s, nothing stale is served
    # (signal only: pYIN on 20 s vocals would double the test's time; the adherence keys name the window above)
    alone = score(run, manifest, _cfg(groups=("signal",)), {"reference": samples["reference"]}, log=quiet,
                  progress=False)
    assert alone["crop"]["summary"]["n_cropped"] == 0 and alone["crop"]["per_item"]["it-0"]["crop_s"] == ITEM_S
    assert not any(n.startswith("Common crop:") for n in alone["notes"])
    # the signal entry of every reference clip was made for the 10 s crop: redone, and said so
    assert len(alone["redone"]) == N_ITEMS and all("signal" in e["reason"] and "stale" in e["reason"]
                                                   for e in alone["redone"])
    full = _clip_values(alone, "reference", item.item_id)
    assert full["signal.loudness_lufs"] == pytest.approx(
        signal_metrics(item.read_reference(), RATE).loudness_lufs, abs=1e-3)
    assert full["signal.loudness_lufs"] != pytest.approx(got["signal.loudness_lufs"], abs=1e-3)
    assert "sample_window" not in _record(run, samples["reference"][0])["groups"]["signal"]["key"]["identity"]


def test_a_broken_short_sample_does_not_crop_every_model(tmp_path: Path, items) -> None:
    from bench.scoring.inputs import CommonCrop

    _, manifest = items
    lengths = {"a.flac": 0.05, "b.flac": 12.5, "c.flac": ITEM_S + 0.0005}
    samples = {"a": [Sample("a", "it-0", "s", Path("a.flac"), "files")],
               "b": [Sample("b", "it-1", "s", Path("b.flac"), "files")],
               "c": [Sample("c", "it-1", "s", Path("c.flac"), "files")]}
    crop = CommonCrop.of(manifest.items, samples, seconds=lambda p: lengths[Path(p).name])
    assert crop.per_item == {"it-0": ITEM_S, "it-1": 12.5}
    assert not crop.cropped("it-0") and "0.050 s" in crop.ignored[0]
    assert crop.sample_window(samples["b"][0]) is None  # the shortest is read whole
    c = Sample("c", "it-1", "s", Path("c.flac"), "files")
    assert crop.sample_window(c) == 12.5
    # half a millisecond over the item is frame rounding, not a longer sample: it would be read whole
    assert CommonCrop.of(manifest.items, {"c": samples["c"]}, seconds=lambda p: lengths[Path(p).name]
                         ).sample_window(c) is None


def test_the_crop_note_quotes_the_cropped_items_not_a_short_uncropped_one() -> None:
    """'1 of 4 cropped (from 0.50 s)' quoted the shortest window of every item, an uncropped 0.5 s one."""
    from types import SimpleNamespace

    from bench.scoring.inputs import CommonCrop

    items = [SimpleNamespace(item_id=f"i{k}", duration_s=d) for k, d in enumerate((0.5, 4.0, 4.0, 4.0))]
    samples = {"m": [Sample("m", f"i{k}", "s", Path(f"{k}.flac"), "files") for k in range(4)]}
    lengths = {"0.flac": 0.5, "1.flac": 3.0, "2.flac": 4.0, "3.flac": 4.0}
    crop = CommonCrop.of(items, samples, seconds=lambda p: lengths[Path(p).name])
    summary = crop.summary()
    assert (summary["n_cropped"], summary["min_s"], summary["cropped_min_s"]) == (1, 0.5, 3.0)
    assert "1 of 4 items cropped, the shortest to 3.00 s; every item's window: min 0.50 s" in crop.note()


def test_fad_embeddings_read_the_common_window(tmp_path: Path, items) -> None:
    from test_score import WindowProbe

    from bench.embedders.registry import register_embedder

    register_embedder("window-probe", "test_score:WindowProbe")
    _, manifest = items
    run = RunFolder(tmp_path / "out")
    WindowProbe.lengths.clear()
    data = score(run, manifest, _cfg(groups=("fad",), embedders=("window-probe",)), _samples(run, manifest),
                 log=quiet, progress=False)
    # references, vocals (late-fusion APA) and both models' clips: all the 10 s common window at 8 kHz
    assert set(WindowProbe.lengths) == {int(SHORT_S * 8_000)}
    assert data["models"]["elsewhere"]["sets"]["window-probe"]["n_equal"] == N_ITEMS


# -- the mix view ---------------------------------------------------------------------------------------------------


def test_the_stereo_mix_follows_apas_published_rule() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(3 * 48_000) / 48_000
    vocal = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
    acc = 0.05 * rng.standard_normal(t.size)
    # identical channels: BS.1770 adds 3.01 dB for the second channel on both sides of every gain, so the stereo
    # mix is APA's mono mix at -3.01 dB per channel (no limiting at these levels)
    mono = loudness_matched_mix(vocal, acc)
    stereo = vocal_accompaniment_mix(np.stack([vocal, vocal]), np.stack([acc, acc]), 48_000)
    assert stereo.dtype == np.float32 and stereo.shape == (2, t.size)
    np.testing.assert_allclose(stereo[0], mono / np.sqrt(2), rtol=1e-5, atol=1e-6)
    assert stereo_loudness(stereo, 48_000) == pytest.approx(-20.0, abs=1e-3)
    # the accompaniment enters at the vocal's loudness: scaling it beforehand changes nothing
    again = vocal_accompaniment_mix(np.stack([vocal, vocal]), 10 * np.stack([acc, acc]), 48_000)
    np.testing.assert_allclose(again, stereo, rtol=1e-4, atol=1e-6)
    # a silent accompaniment leaves the vocal alone, at -20 LUFS
    alone = vocal_accompaniment_mix(np.stack([vocal, vocal]), np.zeros((2, t.size)), 48_000)
    np.testing.assert_allclose(alone[0] / alone[0].max(), vocal / vocal.max(), atol=1e-6)
    # the limiter is APA's, linked: identical channels get APA's mono result; a silent channel does not lower the
    # other's gain below what its own peaks ask for
    loud = 2.0 * np.sin(2 * np.pi * 3 * t) * np.sin(2 * np.pi * 110 * t)
    np.testing.assert_allclose(linked_peak_limit(np.stack([loud, loud])), np.stack([peak_limit(loud)] * 2),
                               rtol=1e-12, atol=1e-12)
    one = linked_peak_limit(np.stack([loud, np.zeros_like(loud)]))
    np.testing.assert_allclose(one[0], peak_limit(loud), rtol=1e-12, atol=1e-12)
    assert not one[1].any() and np.max(np.abs(one[0])) < np.max(np.abs(loud))
    with pytest.raises(ValueError, match="one shape"):
        vocal_accompaniment_mix(np.zeros((2, 10)), np.zeros((1, 10)), 48_000)


def test_score_on_both_scores_the_mix_apart(tmp_path: Path, items) -> None:
    from test_score import WindowProbe

    from bench.embedders.registry import register_embedder
    from bench.metrics.signal import signal_metrics
    from samuel.audio import load_audio, load_window

    register_embedder("window-probe", "test_score:WindowProbe")
    _, manifest = items
    run = RunFolder(tmp_path / "out")
    samples = _samples(run, manifest)
    data = score(run, manifest, _cfg(groups=("signal", "fad"), embedders=("window-probe",), score_on="both"),
                 samples, log=quiet, progress=False)
    assert data["score_on"] == ["accompaniment", "mix"] and data["config"]["score_on"] == "both"
    mix = data["mix"]
    assert mix["view"] == "mix" and "-20 LUFS" in mix["rule"] and mix["groups"] == ["signal", "fad"]
    item, short = manifest.items[0], samples["elsewhere"][0]

    # one clip by hand: its 10 s vocal window + the 24 kHz mono sample, loudness-matched, then the signal group
    vocal = load_window(item.vocal, 0.0, SHORT_S).samples
    accompaniment = load_audio(short.audio).samples
    n = min(vocal.shape[1], accompaniment.shape[1])
    direct = vocal_accompaniment_mix(vocal[:, :n], accompaniment[:, :n], RATE)
    mixed = next(c["values"] for c in mix["models"]["elsewhere"]["clips"] if c["item_id"] == item.item_id)
    expected = signal_metrics(direct, RATE).to_dict()
    for key in ("loudness_lufs", "true_peak_dbtp"):
        assert mixed[f"signal.{key}"] == pytest.approx(expected[key], rel=1e-9, abs=1e-12)
    # the sample's 24 kHz leaves part of the flatness band empty, in the mix too: not comparable, so no value
    assert np.isnan(mixed["signal.spectral_flatness"])
    assert mixed["signal.loudness_lufs"] == pytest.approx(-20.0, abs=0.05)  # the mix rule's target
    plain = _clip_values(data, "elsewhere", item.item_id)
    assert abs(plain["signal.loudness_lufs"] - mixed["signal.loudness_lufs"]) > 1.0
    assert mix["models"]["elsewhere"]["per_clip"]["signal.loudness_lufs"]["n"] == N_ITEMS
    key = _record(run, short, "mix")["groups"]["signal"]["key"]["identity"]
    assert key["view"] == "mix" and key["mixed_with"]["duration_s"] == SHORT_S and "rule" in key["mix"]
    paired = mix["models"]["elsewhere"]["paired"]["signal.loudness_lufs"]
    assert paired["family"] == "per-clip (mix)" and paired["versus"] == "reference"
    assert data["models"]["elsewhere"]["paired"]["signal.loudness_lufs"]["family"] == "per-clip"

    # FAD on mixes: the reference row is the mixed reference set; the set statistics differ from the plain view's
    sets, plain_sets = mix["models"]["elsewhere"]["sets"]["window-probe"], \
        data["models"]["elsewhere"]["sets"]["window-probe"]
    assert sets["n_equal"] == N_ITEMS and sets["fad"]["value"] != pytest.approx(plain_sets["fad"]["value"])
    assert "apa_late_fusion" not in sets and "apa_late_fusion" in plain_sets
    assert mix["models"]["reference"]["sets"]["window-probe"] == {
        "note": "this row is the FAD reference set itself"}
    assert "mixed with its vocal" in data["scorers"]["embedder:window-probe"]["reference (mix)"]
    # 3 x 3 mixes: both rows' clips and the reference set (the reference row's clip is a FLAC copy, another file);
    # the cached mix embedding of that clip is the embedder's output on the mix computed above
    cached = [np.load(p) for p in (run.embeddings_dir / "view-mix" / "window-probe").rglob("*.npy")]
    want = WindowProbe().embed(direct, RATE)
    assert len(cached) == 3 * N_ITEMS and any(c.shape == want.shape and np.allclose(c, want, atol=1e-5)
                                              for c in cached)

    # Table I: one '(mix)' row per model after the plain rows, and a note on the rule
    table = table1(data)
    names = [row[0].display for row in table.rows]
    assert names[:2] == ["reference", "elsewhere"] and {"reference (mix)", "elsewhere (mix)"} <= set(names)
    assert any(n.startswith("Rows '(mix)'") for n in table.notes)


@pytest.mark.slow  # adherence and its anchors on two 10 s items: ~10 s on a busy 2-core CPU
def test_score_on_mix_alone_keeps_adherence_on_the_accompaniment(tmp_path: Path, items) -> None:
    _, manifest = items
    run = RunFolder(tmp_path / "out")
    data = score(run, manifest, _cfg(score_on="mix"), _samples(run, manifest), log=quiet, progress=False)
    assert data["score_on"] == ["mix"]
    assert {k.split(".")[0] for k in data["models"]["reference"]["per_clip"]} == {"adherence"}
    assert {k.split(".")[0] for k in data["mix"]["models"]["reference"]["per_clip"]} == {"signal"}
    assert data["anchors"]["true_pairs"]  # the adherence anchors still come from the accompaniment


def test_the_default_view_is_the_accompaniment_and_a_bad_value_is_refused(capsys) -> None:
    from bench.evaluate import EvalConfig
    from reports.cli import main

    assert ScoreConfig().score_on == "accompaniment" and ScoreConfig().views == ("accompaniment",)
    assert ScoreConfig(score_on="both").views == ("accompaniment", "mix")
    with pytest.raises(ValueError, match="score_on must be one of"):
        ScoreConfig(score_on="vocals")
    assert EvalConfig(score_on="both").score_config().views == ("accompaniment", "mix")
    assert EvalConfig().score_config().score_on == "accompaniment"
    assert main(["run", "--score-on", "vocals"]) == 2
    err = capsys.readouterr().err
    assert "--score-on" in err and "invalid choice: 'vocals'" in err
