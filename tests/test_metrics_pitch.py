"""Pitch trackers of the adherence metrics (bench.metrics.pitch): swift-f0 agrees with pYIN on >= 95% of voiced
frames' pitch classes (issue 15), pYIN gives exactly what librosa.pyin gives, golden pitches, the agreement counts
by hand, the sung-vowel synthesis, bad inputs.

The agreement set here is small (3 synthetic items x 8 s, one 6 s sung-vowel clip per voice range); the full
figure (20 items x 47.55 s, 16 sung-vowel clips) is ``python -m bench.metrics.pitch_agreement``, in
docs/benchmarks.md.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.metrics import adherence as ad
from bench.metrics import pitch
from bench.metrics import pitch_agreement as pa

RATE = ad.ANALYSIS_RATE


@pytest.fixture(scope="module")
def small_set() -> dict[str, pa.Agreement]:
    return pa.set_agreement(n_items=3, duration_s=8.0, vowel_clips_per_voice=1, vowel_duration_s=6.0)


@pytest.mark.parametrize("name", ["synthetic set", "sung vowels"])
def test_swift_f0_names_the_pitch_class_pyin_names_on_95_percent_of_voiced_frames(small_set, name) -> None:
    result = small_set[name]
    assert result.clips >= 3 and result.voiced_both > 500
    assert result.pitch_class_agreement >= pa.MIN_PITCH_CLASS_AGREEMENT, pa.render_markdown(small_set)
    # where the truth is known (steady notes, away from glides) both are right: the few disagreements are glides
    assert result.truth_accuracy_a >= 0.99 and result.truth_accuracy_b >= 0.99
    # and they mostly agree on what is voiced at all (pYIN voices more of each note's release)
    assert result.voicing_agreement >= 0.85 and result.voiced_overlap >= 0.8


def test_every_voice_range_is_in_the_small_set(small_set) -> None:
    for voice in pa.VOICES:
        assert small_set[f"sung vowels, {voice}"].clips == 1
        assert small_set[f"sung vowels, {voice}"].truth_accuracy_a >= 0.95, voice


def test_pyin_features_are_librosa_pyin_exactly() -> None:
    """Parity with the reference implementation: the pYIN option is librosa.pyin with the metrics' settings, its
    voiced flag gated by loudness, its voiced probability the weight (what feature version 1 computed)."""
    import librosa

    meta_vocal = pa.synthetic_clip(1, 4.0)[0]
    features = ad.vocal_features(meta_vocal, 44_100, tracker=pitch.PYIN)
    x = librosa.resample(meta_vocal.astype(np.float64), orig_sr=44_100, target_sr=RATE, res_type="soxr_hq")
    f0, voiced, probability = librosa.pyin(x, fmin=ad.FMIN_HZ, fmax=ad.FMAX_HZ, sr=RATE,
                                           frame_length=ad.PYIN_FRAME_LENGTH, hop_length=ad.HOP_LENGTH)
    rms = librosa.feature.rms(y=x, frame_length=ad.PYIN_FRAME_LENGTH, hop_length=ad.HOP_LENGTH)[0]
    voiced = voiced & (rms > rms.max() * 10 ** (-ad.SILENCE_GATE_DB / 20)) & np.isfinite(f0)
    expected = np.where(voiced, np.round(librosa.hz_to_midi(np.where(voiced, f0, 440.0))).astype(int) % 12, -1)
    np.testing.assert_array_equal(features.pitch_class, expected)
    np.testing.assert_array_equal(features.weight, np.where(voiced, np.nan_to_num(probability), 0.0))


@pytest.mark.parametrize("tracker", pitch.PITCH_TRACKERS)
@pytest.mark.parametrize(("midi", "gain"), [(45, 0.3), (57, 0.001), (69, 0.3), (81, 3.0)])
def test_a_held_note_is_its_pitch_class_at_any_gain(tracker, midi, gain) -> None:
    """A2, A3, A4 and A5 (harmonic tones), quiet or loud: pitch class 9 (A) on every voiced frame, most frames
    voiced."""
    t = np.arange(2 * RATE) / RATE
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    tone = gain * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
    features = ad.vocal_features(tone, RATE, tracker=tracker)
    voiced = features.pitch_class >= 0
    assert voiced.mean() > 0.9
    assert set(features.pitch_class[voiced]) == {9}


def test_tracks_land_on_the_grid_and_silence_is_unvoiced() -> None:
    x = np.zeros(RATE)
    for tracker in pitch.PITCH_TRACKERS:
        track = pitch.track_pitch(x, RATE, ad.HOP_LENGTH, 44, ad.FMIN_HZ, ad.FMAX_HZ, tracker)
        assert track.f0_hz.shape == track.voiced.shape == track.weight.shape == (44,)
        assert not track.voiced.any() and np.all(np.isnan(track.f0_hz))


def test_tracker_identity_names_versions_and_weights() -> None:
    import librosa

    swift = pitch.tracker_identity(pitch.SWIFT_F0)
    assert swift["name"] == "swift-f0" and len(swift["weights_sha256"]) == 64 and swift["swift-f0"] != "not installed"
    assert pitch.tracker_identity(pitch.PYIN)["librosa"] == librosa.__version__
    swift["name"] = "changed"  # a caller's copy: the next caller still gets the real one
    assert pitch.tracker_identity(pitch.SWIFT_F0)["name"] == "swift-f0"
    assert ad.vocal_features_identity(pitch.PYIN) != ad.vocal_features_identity(pitch.SWIFT_F0)


def test_unknown_tracker_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="swift-f0"):
        ad.vocal_features(np.zeros(RATE), RATE, tracker="crepe")
    with pytest.raises(ValueError, match="pyin"):
        pitch.tracker_identity("yin")


def test_agreement_counts_by_hand() -> None:
    def vf(pc: list[int]) -> ad.VocalFeatures:
        pcs = np.array(pc)
        return ad.VocalFeatures(pcs, (pcs >= 0).astype(float), np.zeros(0), 0.1, np.zeros(len(pc)))

    a, b = vf([0, 0, 2, -1, 5, -1]), vf([0, 1, 2, 4, -1, -1])
    truth = np.array([0, 0, -1, 4, 5, -1])
    r = pa.agreement(a, b, truth)
    assert (r.frames, r.voiced_a, r.voiced_b, r.voiced_both, r.same_pitch_class) == (6, 4, 4, 3, 2)
    assert r.pitch_class_agreement == pytest.approx(2 / 3)
    assert r.voicing_agreement == pytest.approx(4 / 6)  # frames 3 and 4 differ
    assert r.voiced_overlap == pytest.approx(3 / 5)
    assert (r.truth_frames_a, r.truth_hits_a, r.truth_frames_b, r.truth_hits_b) == (3, 3, 3, 2)
    pooled = r + r
    assert pooled.voiced_both == 6 and pooled.clips == 2 and pooled.pitch_class_agreement == pytest.approx(2 / 3)
    assert math.isnan(pa.Agreement().pitch_class_agreement)
    with pytest.raises(ValueError, match="frame counts differ"):
        pa.agreement(a, vf([0]))


def test_sung_vowels_sing_in_their_range_and_are_deterministic() -> None:
    for voice, (low, high) in pa.VOICES.items():
        audio, contour = pa.sung_vowels(voice, seed=2, duration_s=4.0)
        assert audio.dtype == np.float32 and audio.shape == (4 * pa.SUNG_RATE,)
        assert np.max(np.abs(audio)) == pytest.approx(0.3, rel=1e-3)
        sung = contour[np.isfinite(contour)]
        assert sung.size > pa.SUNG_RATE  # over a second of steady notes
        assert low - 1 <= sung.min() and sung.max() <= high + 1  # vibrato and drift stay within a semitone
        np.testing.assert_array_equal(audio, pa.sung_vowels(voice, seed=2, duration_s=4.0)[0])
    with pytest.raises(ValueError, match="voice"):
        pa.sung_vowels("countertenor", 0)


def test_contour_truth_leaves_out_glides_rests_and_boundaries() -> None:
    rate = 1000
    contour = np.full(3 * rate, np.nan)
    contour[: rate] = 60.0  # C4 for a second
    contour[rate + 500: 2 * rate] = 61.45  # too close to the C#/D boundary: no class
    contour[2 * rate:] = 62.2  # D
    n = 1 + round(3.0 * ad.ANALYSIS_RATE) // ad.HOP_LENGTH
    truth = pa.contour_truth(contour, rate, n)
    times = np.arange(n) * ad.HOP_LENGTH / ad.ANALYSIS_RATE
    assert set(truth[(times > 0.1) & (times < 0.9)]) == {0}
    assert set(truth[(times > 1.0) & (times < 2.0)]) == {-1}
    assert set(truth[(times > 2.1) & (times < 2.9)]) == {2}
    assert truth[np.argmin(np.abs(times - 1.0))] == -1  # the guard around a rest
