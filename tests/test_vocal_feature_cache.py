"""The vocal feature cache (bench.scoring.features): content-addressed by the samples, shared by runs, validated on
read, written atomically; through the score pass, a second run computes no vocal features and a changed vocal or
a changed setting misses.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_score import quiet, reference_samples

from bench.cache import Key
from bench.manifest import synthetic_manifest
from bench.metrics import adherence as ad
from bench.metrics.pitch import PYIN, SWIFT_F0
from bench.runfolder import RunFolder
from bench.scoring import ScoreConfig, score
from bench.scoring.features import VocalFeatureCache, arrays_checksum, features_key, samples_sha256

RATE = 44_100


@pytest.fixture(scope="module")
def vocal() -> np.ndarray:
    t = np.arange(2 * RATE) / RATE
    note = 0.2 * np.sin(2 * np.pi * 220 * t) * (t > 0.5)
    return np.stack([note, note]).astype(np.float32)


class Counting:
    """``vocal_features`` that counts its calls."""

    def __init__(self, tracker: str = SWIFT_F0) -> None:
        self.tracker, self.calls = tracker, 0

    def __call__(self, audio: np.ndarray, rate: int) -> ad.VocalFeatures:
        self.calls += 1
        return ad.vocal_features(audio, rate, tracker=self.tracker)


def _get(cache: VocalFeatureCache, audio: np.ndarray, compute: Counting) -> ad.VocalFeatures:
    return cache.get(audio, RATE, ad.vocal_features_identity(compute.tracker), lambda: compute(audio, RATE))


def _same(a: ad.VocalFeatures, b: ad.VocalFeatures) -> None:
    for name, array in a.to_arrays().items():
        np.testing.assert_array_equal(array, b.to_arrays()[name], err_msg=name)


def test_a_second_cache_over_the_folder_computes_nothing(tmp_path, vocal) -> None:
    compute = Counting()
    first = _get(VocalFeatureCache(tmp_path), vocal, compute)
    again = VocalFeatureCache(tmp_path)  # another run, the same folder
    second = _get(again, vocal, compute)
    assert compute.calls == 1 and again.computed == 0 and [e.outcome for e in again.events] == ["reused"]
    _same(first, second)
    assert first.n_voiced > 0


def test_a_changed_vocal_or_setting_misses(tmp_path, vocal) -> None:
    compute, cache = Counting(), VocalFeatureCache(tmp_path)
    _get(cache, vocal, compute)
    changed = vocal.copy()
    changed[0, 1000] += 1e-3  # one sample
    _get(cache, changed, compute)
    _get(cache, vocal[:, : RATE], compute)  # another window of it
    _get(cache, vocal, Counting(PYIN))  # another tracker
    assert compute.calls == 3 and cache.computed == 4
    identity = ad.vocal_features_identity(SWIFT_F0)
    other = json.loads(json.dumps(identity))
    other["analysis"]["hop"] = 256  # any analysis setting
    assert features_key(vocal, RATE, identity).digest != features_key(vocal, RATE, other).digest
    assert features_key(vocal, RATE, identity).digest != features_key(vocal, 48_000, identity).digest
    assert samples_sha256(vocal, RATE) != samples_sha256(vocal.astype(np.float64), RATE)  # dtype counts too


def _entry(cache: VocalFeatureCache, audio: np.ndarray, tracker: str = SWIFT_F0) -> Path:
    return cache.path_for(features_key(audio, RATE, ad.vocal_features_identity(tracker)))


@pytest.mark.parametrize("damage", ["torn", "garbage", "stale", "edited", "malformed", "unchecked"])
def test_a_damaged_entry_is_recomputed_and_named_never_used(tmp_path, vocal, damage) -> None:
    compute, cache = Counting(), VocalFeatureCache(tmp_path)
    good = _get(cache, vocal, compute)
    path = _entry(cache, vocal)
    if damage == "torn":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not an npz")
    elif damage == "stale":  # a valid entry made for another key, put at this key's path
        _get(cache, vocal, Counting(PYIN))
        path.write_bytes(_entry(cache, vocal, PYIN).read_bytes())
    else:
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        if damage == "edited":  # plausible values, changed after the write
            arrays["weight"] = arrays["weight"] * 0.5
        elif damage == "malformed":  # a weight outside [0, 1], with a checksum that matches it
            arrays["weight"] = arrays["weight"] + 2.0
            values = {k: v for k, v in arrays.items() if k not in ("key", "values_sha256")}
            arrays["values_sha256"] = np.asarray(arrays_checksum(values))
        else:  # as an older samuel-bench wrote it: no checksum
            del arrays["values_sha256"]
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
    again = VocalFeatureCache(tmp_path)
    recomputed = _get(again, vocal, compute)
    _same(good, recomputed)
    redone = again.redone()
    assert len(redone) == 1 and redone[0].path == path
    expected = {"torn": "unreadable", "garbage": "unreadable", "stale": "another key", "malformed": "weight",
                "edited": "changed after they were written", "unchecked": "no checksum"}[damage]
    assert expected in redone[0].reason
    # and it was rewritten whole: a third run reads it
    third = VocalFeatureCache(tmp_path)
    _get(third, vocal, compute)
    assert third.computed == 0


def test_features_round_trip_and_refuse_bad_arrays(vocal) -> None:
    features = ad.vocal_features(vocal, RATE)
    _same(features, ad.VocalFeatures.from_arrays(features.to_arrays()))
    arrays = features.to_arrays()
    for name, bad, message in [("pitch_class", arrays["pitch_class"][:-1], "pitch_class must be"),
                               ("pitch_class", np.full_like(arrays["pitch_class"], 12), "outside"),
                               ("onset_times_s", np.array([1.0, 0.5]), "increasing"),
                               ("duration_s", np.array(-1.0), "duration_s"),
                               ("onset_envelope", np.full_like(arrays["onset_envelope"], np.nan), "finite")]:
        with pytest.raises(ValueError, match=message):
            ad.VocalFeatures.from_arrays({**arrays, name: bad})
    with pytest.raises(ValueError, match="missing"):
        ad.VocalFeatures.from_arrays({k: v for k, v in arrays.items() if k != "weight"})


def test_a_stored_entry_carries_its_key(tmp_path, vocal) -> None:
    cache = VocalFeatureCache(tmp_path)
    _get(cache, vocal, Counting())
    key = features_key(vocal, RATE, ad.vocal_features_identity())
    with np.load(_entry(cache, vocal)) as data:
        assert json.loads(str(data["key"])) == key.to_json()
    assert isinstance(key, Key) and key.content == samples_sha256(vocal, RATE)
    assert not list(tmp_path.rglob("*.tmp"))  # atomic: no temp file left behind


# -- through the score pass -------------------------------------------------------------------------------------


def _cfg(cache: Path, **kw: object) -> ScoreConfig:
    return ScoreConfig(groups=("adherence",), baseline="reference", resamples=50, feature_cache=cache,
                       score_workers=1, **kw)  # type: ignore[arg-type]


def test_a_second_run_computes_no_vocal_features(tmp_path, monkeypatch) -> None:
    """Two run folders sharing --feature-cache: the second one runs no pitch tracker (the features' function is
    never called), and its adherence values equal the first run's; another tracker misses."""
    manifest = synthetic_manifest(tmp_path / "inputs", 3, duration_s=3.0)
    shared = tmp_path / "vocal-features"
    first_run, second_run = RunFolder(tmp_path / "one"), RunFolder(tmp_path / "two")
    first = score(first_run, manifest, _cfg(shared), {"reference": reference_samples(first_run, manifest)},
                  log=quiet, progress=False)
    assert len(list(shared.rglob("*.npz"))) == 3

    calls: list[int] = []
    real = ad.vocal_features

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ad, "vocal_features", counted)
    second = score(second_run, manifest, _cfg(shared), {"reference": reference_samples(second_run, manifest)},
                   log=quiet, progress=False)
    assert calls == []
    assert [c["values"] for c in second["models"]["reference"]["clips"]] == [
        c["values"] for c in first["models"]["reference"]["clips"]]
    assert second["anchors"] == first["anchors"]

    third_run = RunFolder(tmp_path / "three")
    third = score(third_run, manifest, _cfg(shared, pitch_tracker=PYIN),
                  {"reference": reference_samples(third_run, manifest)}, log=quiet, progress=False)
    assert len(calls) == 3 and len(list(shared.rglob("*.npz"))) == 6
    assert third["scorers"]["adherence"]["vocal_features"]["pitch_tracker"]["name"] == "pyin"
    assert second["scorers"]["adherence"]["vocal_features"]["pitch_tracker"]["name"] == "swift-f0"
    assert second["config"]["pitch_tracker"] == "swift-f0" and "swift-f0" in second["provenance"]["versions"]
