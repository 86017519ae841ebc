"""Adherence metrics: true pairs above shuffled pairs on the synthetic set, golden values, invariances, bad inputs.

The synthetic items (bench/synthetic.py) are short (8 s) and few (6): pYIN costs about 0.6-2 s per item here. The
ordering of every metric against corrupted accompaniments is in tests/test_adherence_validation.py.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from bench.metrics import adherence as ad
from bench.metrics import rhythm as rh
from bench.synthetic import SAMPLE_RATE, item_meta, render_accompaniment, render_vocal

N_ITEMS = 6
DURATION_S = 8.0
RATE = ad.ANALYSIS_RATE


@pytest.fixture(scope="module")
def synthetic_set():
    """(metas, vocal audio, accompaniment audio, vocal features, accompaniment features) of N_ITEMS short items."""
    metas = [item_meta(i, DURATION_S) for i in range(N_ITEMS)]
    vocals = [render_vocal(m, i) for i, m in enumerate(metas)]
    accomps = [render_accompaniment(m, i) for i, m in enumerate(metas)]
    vf = [ad.vocal_features(v, SAMPLE_RATE) for v in vocals]
    af = [ad.accompaniment_features(a, SAMPLE_RATE) for a in accomps]
    return metas, vocals, accomps, vf, af


def _tone(midis: tuple[int, ...], seconds: float = 2.0, rate: int = RATE) -> np.ndarray:
    """Sum of sines (with a quieter octave) at MIDI pitches: a pad-like chord, or a single sung note."""
    t = np.arange(round(seconds * rate)) / rate
    hz = [440.0 * 2 ** ((m - 69) / 12) for m in midis]
    return 0.1 * sum(np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t) for f in hz)


def _vocal(pitch_class: list[int], weight: list[float], onsets: list[float], duration_s: float) -> ad.VocalFeatures:
    return ad.VocalFeatures(np.array(pitch_class), np.array(weight, dtype=float), np.array(onsets), duration_s,
                            np.zeros(len(pitch_class)))


def _accomp(chroma: np.ndarray, onsets: list[float], duration_s: float) -> ad.AccompanimentFeatures:
    chroma = np.asarray(chroma, dtype=float)
    return ad.AccompanimentFeatures(chroma, np.array(onsets), duration_s, np.zeros(chroma.shape[1]))


def _chance_corrected(share: float) -> float:
    """Chroma agreement of a sounding frame with chroma share ``share`` on the sung class: (share - 1/12)/(11/12)."""
    return (share - 1 / 12) / (11 / 12)


# ------------------------------------------------------------------------------ true pairs over shuffled pairs


@pytest.mark.parametrize("score", [ad.chroma_agreement, ad.key_agreement, ad.onset_alignment, ad.rhythm_agreement],
                         ids=["chroma", "key", "onset", "rhythm"])
def test_true_pairs_score_above_shuffled_pairs_on_the_synthetic_set(synthetic_set, score) -> None:
    *_, vf, af = synthetic_set
    for seed in (0, 1):
        anchors = ad.anchor_scores(score, vf, af, seed=seed)
        assert np.all(np.isfinite(anchors.true)) and np.all(np.isfinite(anchors.shuffled))
        assert anchors.true_mean > anchors.shuffled_mean + 0.05, anchors.to_dict()
        # per vocal: its own accompaniment beats another item's for most items
        assert np.sum(anchors.true > anchors.shuffled) >= N_ITEMS - 1, anchors.to_dict()
        # positions calibrate models scored apart from the anchors: a model that plays each item's own
        # accompaniment sits at 1 (a mispaired anchor would not), one that plays other deranged items' sits near
        # chance (0) on average, and one right on every other item about half way
        own = np.nanmean([score(v, a) for v, a in zip(vf, af, strict=True)])
        assert anchors.position(own) == pytest.approx(1.0)
        chance = [anchors.position(np.nanmean([score(vf[i], af[j]) for i, j in enumerate(ad.derangement(N_ITEMS, s))]))
                  for s in range(seed + 10, seed + 20)]
        assert np.mean(chance) < 0.35, chance
        half = np.nanmean([score(vf[i], af[i if i % 2 == 0 else anchors.permutation[i]]) for i in range(N_ITEMS)])
        assert 0.25 < anchors.position(half) < 0.75


def test_true_pair_levels_match_the_synthetic_design(synthetic_set) -> None:
    """Every score well above its chance level, 0: chroma (a share 1.5x flat's), key, onsets and rhythm."""
    *_, vf, af = synthetic_set
    scores = [ad.score_pair(v, a) for v, a in zip(vf, af, strict=True)]
    assert all(s.reasons == () for s in scores)
    assert np.mean([s.chroma_agreement for s in scores]) > _chance_corrected(1.5 / 12)
    assert np.mean([s.key_agreement for s in scores]) > 0.3
    assert np.mean([s.onset_alignment for s in scores]) > 0.5
    assert np.mean([s.rhythm_agreement for s in scores]) > 0.2


def test_accompaniment_key_estimate_recovers_the_known_scale(synthetic_set) -> None:
    # Krumhansl-Schmuckler may pick the relative major/minor (same pitch set), so compare diatonic sets
    metas, *_, af = synthetic_set
    for meta, a in zip(metas, af, strict=True):
        estimate = ad.estimate_key(ad.chroma_profile(a))
        assert estimate.scale == ad.KeyEstimate(meta.tonic, meta.mode, 1.0).scale, (meta.key_name, estimate)


# ------------------------------------------------------------------------------------------------ golden values


def test_sung_a4_agrees_with_an_a_major_chord_and_not_with_an_e_flat_chord() -> None:
    a4 = 0.3 * np.sin(2 * np.pi * 440.0 * np.arange(2 * RATE) / RATE)
    vocal = ad.vocal_features(a4, RATE)
    assert vocal.n_voiced > 0.8 * vocal.pitch_class.size and set(vocal.pitch_class[vocal.weight > 0]) == {9}
    a_major = ad.accompaniment_features(_tone((57, 61, 64)), RATE)  # A3 C#4 E4
    e_flat = ad.accompaniment_features(_tone((51, 55, 58)), RATE)  # Eb3 G3 Bb3
    assert ad.chroma_agreement(vocal, a_major) > _chance_corrected(0.25)  # a third of the triad's chroma, less leakage
    assert ad.chroma_agreement(vocal, e_flat) < _chance_corrected(0.02) < 0  # below chance: A is not in E-flat
    assert ad.key_agreement(vocal, a_major) > 0.3 > 0 > ad.key_agreement(vocal, e_flat)
    # white noise has flat chroma: chance, 0
    noise = ad.accompaniment_features(0.1 * np.random.default_rng(0).standard_normal(2 * RATE), RATE)
    assert ad.chroma_agreement(vocal, noise) == pytest.approx(0.0, abs=0.03)
    assert ad.key_agreement(vocal, noise) == pytest.approx(0.0, abs=0.1)


def test_chroma_agreement_by_hand() -> None:
    # frames: C (w 1), C (w 0.5), unvoiced, G (w 1); chroma mass at the sung class: 0.5, 0.2, -, 0.1
    chroma = np.full((12, 4), 0.0)
    chroma[0, 0], chroma[1, 0] = 0.5, 0.5
    chroma[0, 1], chroma[4, 1] = 0.2, 0.8
    chroma[:, 2] = 1 / 12
    chroma[7, 3], chroma[2, 3] = 0.1, 0.9
    vocal = _vocal([0, 0, -1, 7], [1.0, 0.5, 0.0, 1.0], [0.1], 1.0)
    accomp = _accomp(chroma, [0.1], 1.0)
    assert ad.chroma_agreement(vocal, accomp) == pytest.approx(_chance_corrected((0.5 + 0.5 * 0.2 + 0.1) / 2.5))
    # a silent frame (all-zero chroma) offers nothing to agree with: it counts as chance, not as a miss
    silent = chroma.copy()
    silent[:, 3] = 0.0
    assert ad.chroma_agreement(vocal, _accomp(silent, [0.1], 1.0)) == pytest.approx(
        (_chance_corrected(0.5) + 0.5 * _chance_corrected(0.2)) / 2.5)
    # the vocal histogram is C 0.6, G 0.4
    np.testing.assert_allclose(ad.pitch_class_profile(vocal)[[0, 7]], [0.6, 0.4])


def test_key_agreement_averages_to_zero_over_transpositions() -> None:
    # the rotations of a profile sum to a constant vector, so the mean Pearson r over 12 transpositions is 0
    rng = np.random.default_rng(3)
    chroma = rng.random((12, 20))
    chroma /= chroma.sum(axis=0)
    vocal = _vocal(list(rng.integers(0, 12, 20)), list(rng.random(20) + 0.1), [0.1], 1.0)
    rs = [ad.key_agreement(vocal, _accomp(np.roll(chroma, k, axis=0), [], 1.0)) for k in range(12)]
    assert np.mean(rs) == pytest.approx(0.0, abs=1e-12)
    assert ad.key_agreement(vocal, _accomp(np.zeros((12, 20)), [], 1.0)) == 0.0  # silence: no key, chance
    # by hand: the mean over frames of Pearson r(vocal profile, frame chroma), silent frames counting 0
    profile = ad.pitch_class_profile(vocal)
    half = chroma.copy()
    half[:, 10:] = 0.0
    expected = sum(np.corrcoef(profile, chroma[:, t])[0, 1] for t in range(10)) / 20
    assert ad.key_agreement(vocal, _accomp(half, [], 1.0)) == pytest.approx(expected, abs=1e-12)


def test_onset_alignment_by_hand() -> None:
    # accompaniment onsets 0.5, 1.0 s over 2 s, +-70 ms. Chance p is on the frame grid (hop 512 at 22.05 kHz,
    # 23.2 ms) between the edges (0.12 s, 1.88 s): frames 6..80, 75 of them; within 70 ms of 0.5 s are frames
    # 19..24 (0.441-0.557 s), of 1.0 s frames 41..46: p = 12/75. The vocal's onsets hit 1 of 2.
    frame_s = ad.HOP_LENGTH / ad.ANALYSIS_RATE
    assert (math.ceil(0.12 / frame_s), math.floor(1.88 / frame_s)) == (6, 80)
    assert (math.ceil(0.43 / frame_s), math.floor(0.57 / frame_s), math.ceil(0.93 / frame_s),
            math.floor(1.07 / frame_s)) == (19, 24, 41, 46)
    p = 12 / 75
    vocal = _vocal([0], [1.0], [0.52, 1.5], 2.0)
    accomp = _accomp(np.full((12, 1), 1 / 12), [0.5, 1.0], 2.0)
    assert ad.onset_alignment(vocal, accomp) == pytest.approx((0.5 - p) / (1 - p))
    assert ad.onset_alignment(_vocal([0], [1.0], [0.45, 1.03], 2.0), accomp) == pytest.approx(1.0)
    # onsets within 0.12 s of either end are the frame padding's: dropped on both sides
    edge = _accomp(np.full((12, 1), 1 / 12), [0.05, 0.5, 1.0], 2.0)
    assert ad.onset_alignment(_vocal([0], [1.0], [0.05, 0.52, 1.5], 2.0), edge) == pytest.approx((0.5 - p) / (1 - p))
    assert math.isnan(ad.onset_alignment(_vocal([0], [1.0], [0.05, 1.95], 2.0), edge))  # no vocal onset left
    assert ad.onset_alignment(vocal, _accomp(np.zeros((12, 1)), [], 2.0)) == 0.0  # nothing to align to: chance


def test_rhythm_parts_average_to_exactly_zero_over_every_circular_lag() -> None:
    """The chance level: lag-0 correlation of time-centred series, averaged over all T circular lags, is 0."""
    rng = np.random.default_rng(5)
    x, y = rng.random(50), rng.random(50)
    xs, ys = rng.random((12, 50)), rng.random((12, 50))
    for centre_pitch in (False, True):
        lagged = [rh.centred_correlation(xs, np.roll(ys, k, axis=1), centre_pitch) for k in range(50)]
        assert np.mean(lagged) == pytest.approx(0.0, abs=1e-12)
    assert np.mean([rh.centred_correlation(x, np.roll(y, k)) for k in range(50)]) == pytest.approx(0.0, abs=1e-12)
    assert rh.centred_correlation(x, x) == pytest.approx(1.0) and rh.centred_correlation(x, -x) == pytest.approx(-1)
    assert rh.centred_correlation(x, np.zeros(50)) == 0.0  # silence: no timing, chance
    # double centring drops what every pitch class shares at a frame (a drum hit on flat chroma)
    common = np.tile(rng.random(50), (12, 1))
    assert rh.centred_correlation(xs, xs + 5 * common, centre_pitch=True) == pytest.approx(1.0)


def test_rhythm_agreement_by_hand() -> None:
    """Pitch-class onsets: a note of pitch class k starting at frame t rises at t..t+1 (lag 2), spread +-1 frame."""
    activity = np.zeros((12, 10))
    activity[4, 3:7] = 0.8
    onsets = rh.pitch_class_onsets(activity)
    expected = np.zeros((12, 10))
    expected[4, 2:6] = 0.8  # rises at frames 3 and 4, max-filtered over +-1 frame
    np.testing.assert_allclose(onsets, expected)
    np.testing.assert_array_equal(rh.pitch_class_activity(np.array([4, -1, 0]), np.array([0.5, 0.0, 1.0])),
                                  np.eye(12)[:, [4, 0, 0]] * [0.5, 0.0, 1.0])
    # a vocal and an accompaniment with the same onsets and the same pitch classes at the same frames: 1
    pitch_class = np.array([-1, -1, 0, 0, 0, -1, 7, 7, 7, -1, 4, 4, 4, -1, -1, -1])
    weight = np.where(pitch_class >= 0, 1.0, 0.0)
    envelope = np.zeros(16)
    envelope[[2, 6, 10]] = 1.0
    chroma = rh.pitch_class_activity(pitch_class, weight)
    same = rh.rhythm_agreement(pitch_class, weight, envelope, chroma, envelope)
    assert (same.value, same.onset, same.pitch_onset) == pytest.approx((1.0, 1.0, 1.0))
    assert rh.rhythm_agreement(pitch_class, weight, envelope, np.zeros((12, 16)), np.zeros(16)).value == 0.0
    late = rh.rhythm_agreement(pitch_class, weight, envelope, np.roll(chroma, 2, axis=1), np.roll(envelope, 2))
    assert late.onset < 0 and late.pitch_onset < 0.5 and late.to_dict()["rhythm_agreement"] == late.value


# --------------------------------------------------------------------------------------------------- invariances


def test_scores_are_invariant_to_gain(synthetic_set) -> None:
    _, vocals, accomps, vf, af = synthetic_set
    reference = ad.score_pair(vf[0], af[0])
    scaled = ad.adherence(0.1 * vocals[0], SAMPLE_RATE, 3.0 * accomps[0], SAMPLE_RATE)
    assert scaled.chroma_agreement == pytest.approx(reference.chroma_agreement, abs=1e-6)
    assert scaled.key_agreement == pytest.approx(reference.key_agreement, abs=1e-6)
    assert scaled.onset_alignment == pytest.approx(reference.onset_alignment, abs=1e-6)
    assert scaled.rhythm_agreement == pytest.approx(reference.rhythm_agreement, abs=1e-6)


def test_rates_may_differ_and_channels_are_mixed(synthetic_set) -> None:
    import librosa

    _, _, accomps, vf, af = synthetic_set
    reference = ad.score_pair(vf[0], af[0])
    at_32k = librosa.resample(accomps[0].astype(np.float64), orig_sr=SAMPLE_RATE, target_sr=32_000)
    other = ad.score_pair(vf[0], ad.accompaniment_features(at_32k, 32_000))
    assert other.chroma_agreement == pytest.approx(reference.chroma_agreement, abs=0.01)
    assert other.key_agreement == pytest.approx(reference.key_agreement, abs=0.02)
    assert other.onset_alignment == pytest.approx(reference.onset_alignment, abs=0.1)
    assert other.rhythm_agreement == pytest.approx(reference.rhythm_agreement, abs=0.05)
    mono = ad.accompaniment_features(accomps[0].mean(axis=0), SAMPLE_RATE)
    np.testing.assert_allclose(mono.chroma, af[0].chroma, atol=1e-9)


def test_a_late_accompaniment_loses_in_lockstep(synthetic_set) -> None:
    """No alignment search: the same accompaniment a sixteenth late (off the eighth-note hi-hats) loses its onsets."""
    metas, _, accomps, vf, af = synthetic_set
    shift = round(0.25 * 60 / metas[0].bpm * SAMPLE_RATE)  # 135 ms at 111 BPM: outside +-70 ms of every eighth
    late = np.concatenate([np.zeros((2, shift), np.float32), accomps[0][:, :-shift]], axis=1)
    late_scores = ad.score_pair(vf[0], ad.accompaniment_features(late, SAMPLE_RATE))
    assert late_scores.onset_alignment < ad.onset_alignment(vf[0], af[0]) - 0.3
    assert late_scores.rhythm_agreement < ad.rhythm_agreement(vf[0], af[0]) - 0.2


# --------------------------------------------------------------------------------------------------- bad inputs


def test_silent_vocal_gives_nan_with_reasons_and_silent_accompaniment_scores_at_or_below_chance() -> None:
    chord = _tone((57, 61, 64))
    for silent in (np.zeros(2 * RATE), 1e-5 * np.random.default_rng(0).standard_normal(2 * RATE)):
        result = ad.adherence(silent, RATE, chord, RATE)
        assert math.isnan(result.chroma_agreement) and math.isnan(result.key_agreement)
        assert math.isnan(result.onset_alignment) and math.isnan(result.rhythm_agreement)
        assert any("no voiced" in r for r in result.reasons) and any("no vocal onset" in r for r in result.reasons)
        assert any("rhythm agreement undefined" in r for r in result.reasons)
    # a note entering at 0.5 s (an onset at the very start would be the frame padding's, EDGE_S) over silence
    note = 0.3 * np.sin(2 * np.pi * 440.0 * np.arange(2 * RATE) / RATE) * (np.arange(2 * RATE) >= RATE // 2)
    sung = ad.adherence(note, RATE, np.zeros(2 * RATE), RATE)
    assert (sung.chroma_agreement, sung.key_agreement, sung.onset_alignment, sung.rhythm_agreement,
            sung.reasons) == (0.0, 0.0, 0.0, 0.0, ())


@pytest.mark.parametrize(("audio", "rate", "message"), [
    (np.zeros(0), RATE, "empty"),
    (np.full(RATE, np.nan), RATE, "NaN"),
    (np.zeros((1, 1, RATE)), RATE, "3-D"),
    (np.zeros((RATE, 2)), RATE, "transpose"),
    (np.zeros(RATE), 0, "positive integer"),
    (np.zeros(RATE), 22050.5, "positive integer"),
    (np.zeros(100), RATE, "at least"),
])
def test_bad_audio_raises_naming_the_problem(audio, rate, message) -> None:
    with pytest.raises(ValueError, match=message):
        ad.accompaniment_features(audio, rate)
    with pytest.raises(ValueError, match=message):
        ad.vocal_features(audio, rate)


def test_durations_must_match_for_lockstep_unless_told_otherwise() -> None:
    vocal = _vocal([0] * 100, [1.0] * 100, [0.1], 2.3)
    accomp = _accomp(np.full((12, 40), 1 / 12), [0.1], 0.93)
    with pytest.raises(ValueError, match="max_mismatch_s"):
        ad.chroma_agreement(vocal, accomp)
    assert ad.chroma_agreement(vocal, accomp, max_mismatch_s=None) == pytest.approx(0.0)  # common 40 frames, flat
    with pytest.raises(ValueError, match="tolerance_s"):
        ad.onset_alignment(vocal, accomp, tolerance_s=0.0, max_mismatch_s=None)
    # the score pass: an item's own vocal in lockstep; another item's (the shuffled anchor) over the common span
    with pytest.raises(ValueError, match=r"vocal lasts 2\.30 s and accompaniment 0\.93 s"):
        ad.pair_scores(vocal, accomp)
    assert ad.pair_scores(vocal, accomp, same_item=False).chroma_agreement == pytest.approx(0.0)


# ------------------------------------------------------------------------------------------------------ anchors


def test_derangement_has_no_fixed_points_and_is_seeded() -> None:
    for n in (2, 3, 5, 17, 100):
        for seed in range(5):
            perm = ad.derangement(n, seed)
            assert sorted(perm.tolist()) == list(range(n)) and not np.any(perm == np.arange(n))
            np.testing.assert_array_equal(perm, ad.derangement(n, seed))
    assert ad.derangement(2, 0).tolist() == [1, 0]
    assert len({tuple(ad.derangement(10, s)) for s in range(10)}) > 5
    for n in (0, 1):
        with pytest.raises(ValueError, match="n >= 2"):
            ad.derangement(n, 0)


def test_anchor_scores_and_normalised_position() -> None:
    values = np.arange(5.0)
    anchors = ad.anchor_scores(lambda v, a: -abs(v - a), values, values, seed=0)
    np.testing.assert_array_equal(anchors.true, np.zeros(5))
    np.testing.assert_array_equal(anchors.shuffled, -np.abs(values - values[anchors.permutation]))
    assert anchors.shuffled_mean < 0 and anchors.to_dict()["n"] == 5
    assert ad.normalised_position(0.3, true=0.5, shuffled=0.1) == pytest.approx(0.5)
    assert ad.normalised_position(0.7, true=0.5, shuffled=0.1) == pytest.approx(1.5)  # not clipped
    assert math.isnan(ad.normalised_position(0.3, true=0.2, shuffled=0.2))  # anchors coincide
    assert math.isnan(ad.normalised_position(math.nan, true=0.5, shuffled=0.1))
    with pytest.raises(ValueError, match="3 vocals but 2"):
        ad.anchor_scores(lambda v, a: 0.0, [1, 2, 3], [1, 2], seed=0)
    # unequal items: the documented partial lets shuffled pairs compare their common span
    lenient = functools.partial(ad.chroma_agreement, max_mismatch_s=None)
    items = [_vocal([0] * n, [1.0] * n, [0.1], n * 0.0232) for n in (50, 100)]
    flats = [_accomp(np.full((12, n), 1 / 12), [0.1], n * 0.0232) for n in (50, 100)]
    assert ad.anchor_scores(lenient, items, flats, seed=0).shuffled == pytest.approx([0.0, 0.0])


# ---------------------------------------------------------------------------------------------------------- APA


def test_apa_golden_values_by_hand() -> None:
    assert ad.apa_from_distances(1.0, 4.0, 9.0) == pytest.approx(0.5 + 3 / 18)
    assert ad.apa_from_distances(0.0, 9.0, 9.0) == 1.0 and ad.apa_from_distances(9.0, 0.0, 9.0) == 0.0
    assert ad.apa_from_distances(20.0, 1.0, 9.0) == 0.0  # triangle inequality broken: clipped
    assert ad.apa_from_distances(-1e-13, 9.0, 9.0) == 1.0  # round-off below 0 counts as 0
    assert math.isnan(ad.apa_from_distances(1.0, 1.0, 0.0))
    # 1-D sets, var 2 each (ddof 1): squared Frechet = (mean gap)^2. R at 0, R' at 3, C at 1: 1, 4 and 9.
    reference, shuffled, candidate = np.array([[-1.0], [1.0]]), np.array([[2.0], [4.0]]), np.array([[0.0], [2.0]])
    result = ad.apa(candidate, reference, shuffled)
    assert (result.d_candidate_true, result.d_candidate_shuffled, result.d_true_shuffled) == pytest.approx((1, 4, 9))
    assert result.value == pytest.approx(2 / 3) and not result.clipped
    far = ad.apa(np.array([[9.0], [11.0]]), reference, shuffled)  # beyond R': 0.5 + (49 - 100) / 18 < 0
    assert far.value == 0.0 and far.clipped
    assert ad.apa(reference, reference, shuffled).value == pytest.approx(1.0)
    assert ad.apa(shuffled, reference, shuffled).value == pytest.approx(0.0)


def _planted_pairs(n: int, coupling: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Context c ~ N(0, I_4) and stem s = coupling * W c + noise, with Var(s_j) = 1 for every coupling."""
    rng = np.random.default_rng(seed)
    w = np.linalg.qr(np.random.default_rng(99).standard_normal((4, 4)))[0]  # one fixed rotation for all sets
    context = rng.standard_normal((n, 4))
    stem = coupling * context @ w.T + math.sqrt(1 - coupling**2) * rng.standard_normal((n, 4))
    return context, stem


def test_apa_orders_true_partial_and_shuffled_candidates_with_a_planted_dependence() -> None:
    ctx, stem = _planted_pairs(800, 0.9, seed=1)
    reference = ad.late_fusion_pairs(ctx, stem)
    shuffled_reference = ad.late_fusion_pairs(ctx, stem[ad.derangement(800, 0)])
    values = {}
    for name, coupling in (("true", 0.9), ("partial", 0.45), ("none", 0.0)):
        c, s = _planted_pairs(800, coupling, seed=2)
        values[name] = ad.apa(ad.late_fusion_pairs(c, s), reference, shuffled_reference).value
    c, s = _planted_pairs(800, 0.9, seed=3)
    values["shuffled"] = ad.apa(ad.late_fusion_pairs(c, s[ad.derangement(800, 1)]), reference,
                                shuffled_reference).value
    assert values["true"] > 0.9 and values["shuffled"] < 0.1 and values["none"] < 0.1, values
    assert values["true"] > values["partial"] > values["shuffled"], values
    # any distance works, e.g. the unbiased MMD^2 (KAD) with a fixed bandwidth
    from bench.metrics.kernel import mmd2_unbiased

    c, s = _planted_pairs(300, 0.9, seed=4)
    kad = ad.apa(ad.late_fusion_pairs(c, s), reference[:300], shuffled_reference[:300],
                 distance=lambda x, y: mmd2_unbiased(x, y, bandwidth=3.0))
    assert kad.value > 0.8


def test_apa_bad_inputs() -> None:
    ok = np.zeros((4, 3)) + np.arange(12).reshape(4, 3)
    with pytest.raises(ValueError, match="share D"):
        ad.apa(ok, ok, ok[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        ad.apa(np.full((4, 3), np.nan), ok, ok)
    with pytest.raises(ValueError, match="2-D"):
        ad.apa(np.zeros(4), ok, ok)
    with pytest.raises(ValueError, match="pairs are matched by row"):
        ad.late_fusion_pairs(np.zeros((4, 2)), np.zeros((3, 2)))
    for bad in (math.inf, math.nan):
        with pytest.raises(ValueError, match="finite"):
            ad.apa_from_distances(bad, 1.0, 1.0)
    assert math.isnan(ad.apa(ok, ok, ok).value)  # R = R': no adherence signal in this embedding
