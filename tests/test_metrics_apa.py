"""APA as published (issue 13, item 5): the mix, the windows, the X' shuffle, APA from window embeddings, its
bootstrap over items, and the I/O path through a tiny random LAION-CLAP checkpoint saved in the real format."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.bootstrap import paired_set_difference, set_draws
from bench.metrics.adherence import apa as apa_late_fusion_form
from bench.metrics.apa import (
    DEFAULT_MIX,
    MixParams,
    apa_resampled,
    apa_value,
    cut_windows,
    integrated_loudness,
    loudness_matched_mix,
    mismatch_permutation,
    mixed_windows,
    peak_limit,
    window_count,
)

RATE = 48_000


def tone_burst(seconds: float, freq: float, level: float, seed: int) -> np.ndarray:
    """A tone plus a little noise, mono at 48 kHz (music-like enough for a loudness meter)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    return level * (np.sin(2 * np.pi * freq * t) + 0.1 * rng.normal(size=t.size))


# -- the mix -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("context_level", "stem_level"), [(0.05, 0.5), (0.3, 0.01), (0.001, 0.2)])
def test_mix_is_at_minus_20_lufs_whatever_the_input_levels(context_level, stem_level):
    mix = loudness_matched_mix(tone_burst(5, 220, context_level, 0), tone_burst(5, 330, stem_level, 1))
    assert integrated_loudness(mix, RATE) == pytest.approx(-20.0, abs=0.1)


def test_stem_is_matched_to_the_context_loudness_before_the_sum():
    """With stem_gain_db = 0 both parts enter the mix at one loudness: scaling either input changes nothing."""
    context, stem = tone_burst(5, 220, 0.1, 0), tone_burst(5, 550, 0.1, 1)
    base = loudness_matched_mix(context, stem)
    np.testing.assert_allclose(loudness_matched_mix(context, 7.0 * stem), base, atol=1e-9)
    np.testing.assert_allclose(loudness_matched_mix(0.2 * context, stem), base, atol=1e-9)
    quieter = loudness_matched_mix(context, stem, MixParams(stem_gain_db=-6.0))  # the package's mix "L2"
    assert not np.allclose(quieter, base)


def test_silent_channels_as_the_package_treats_them():
    sound, silence = tone_burst(5, 220, 0.1, 0), np.zeros(5 * RATE)
    alone = loudness_matched_mix(sound, silence)
    assert integrated_loudness(alone, RATE) == pytest.approx(-20.0, abs=0.1)
    np.testing.assert_allclose(alone / np.max(np.abs(alone)), sound / np.max(np.abs(sound)), atol=1e-12)
    np.testing.assert_array_equal(loudness_matched_mix(silence, silence), silence)


def _limiter_loop(x, attack, release, delay, threshold):
    """The limiter sample by sample, as its description reads (the reference for the closed form)."""
    line, envelope, gain, out = np.zeros(delay), 0.0, 1.0, np.zeros_like(x)
    for i in range(x.size + delay):
        current = x[i] if i < x.size else 0.0
        delayed = line[i % delay]
        envelope = max(envelope * release, abs(current))
        gain = gain * attack + (threshold / envelope if envelope > threshold else 1.0) * (1 - attack)
        if i >= delay:
            out[i - delay] = delayed * gain
        line[i % delay] = current
    return out


def test_peak_limiter_closed_form_equals_the_sample_loop():
    rng = np.random.default_rng(3)
    x = rng.normal(size=3000) * np.linspace(0.2, 3.0, 3000)
    np.testing.assert_allclose(peak_limit(x, 0.99, 0.99, 37, 0.5), _limiter_loop(x, 0.99, 0.99, 37, 0.5),
                               rtol=1e-9, atol=1e-12)


def test_a_mix_above_full_scale_goes_through_the_limiter_and_a_normal_one_does_not():
    clicks = np.zeros(5 * RATE)
    clicks[::RATE] = 1.0  # five clicks: at -20 LUFS their peaks sit far above full scale
    unlimited = 2.0 * clicks * 10 ** ((-20.0 - integrated_loudness(2.0 * clicks, RATE)) / 20.0)
    assert np.max(unlimited) > 1.0
    mix = loudness_matched_mix(clicks, 0.5 * clicks)
    np.testing.assert_allclose(mix, peak_limit(unlimited), rtol=1e-9)
    # the package's limiter acts on the delayed signal with the gain of 527 samples later: an isolated click
    # has mostly left the envelope by then, so it is reduced only a little (as there)
    assert 1.0 < np.max(mix) < np.max(unlimited)
    normal = loudness_matched_mix(tone_burst(5, 220, 0.1, 0), tone_burst(5, 330, 0.1, 1))
    assert np.max(np.abs(normal)) < 1.0  # never went through the limiter: exactly -20 LUFS
    assert integrated_loudness(normal, RATE) == pytest.approx(-20.0, abs=1e-6)


def test_mix_refuses_mismatched_or_broken_input():
    with pytest.raises(ValueError, match="one length"):
        loudness_matched_mix(np.zeros(10), np.zeros(11))
    with pytest.raises(ValueError, match="NaN"):
        loudness_matched_mix(np.full(RATE, np.nan), np.zeros(RATE))


# -- windows -----------------------------------------------------------------------------------------------------


def test_five_second_windows_drop_the_partial_last_one():
    assert DEFAULT_MIX.window_samples == 240_000
    assert [window_count(int(s * RATE)) for s in (4.99, 5.0, 12.3, 47.55)] == [0, 1, 2, 9]
    x = np.arange(int(12.3 * RATE), dtype=np.float64)
    windows = cut_windows(x)
    assert windows.shape == (2, 240_000)
    np.testing.assert_array_equal(windows[1], x[240_000:480_000])


def test_mixed_windows_cover_the_shorter_track_and_mix_each_window_alone():
    context, stem = tone_burst(11, 220, 0.1, 0), tone_burst(10.5, 330, 0.1, 1)
    mixes = mixed_windows(context, stem)
    assert mixes.shape == (2, 240_000)
    np.testing.assert_allclose(mixes[1], loudness_matched_mix(context[240_000:480_000], stem[240_000:480_000]))
    assert mixed_windows(context[:RATE], stem).shape == (0, 240_000)


# -- the X' shuffle -----------------------------------------------------------------------------------------------


def test_mismatch_permutation_never_pairs_an_item_with_itself():
    owners = np.repeat(np.arange(12), 2)
    perm = mismatch_permutation(owners, seed=5)
    assert sorted(perm) == list(range(owners.size))
    assert not np.any(owners[perm] == owners)
    np.testing.assert_array_equal(perm, mismatch_permutation(owners, seed=5))
    assert not np.array_equal(perm, mismatch_permutation(owners, seed=6))


def test_mismatch_permutation_repairs_when_rejection_gives_up():
    owners = np.repeat(np.arange(3), 10)  # a uniform permutation is almost never valid here
    for seed in range(5):
        perm = mismatch_permutation(owners, seed, max_draws=1)
        assert sorted(perm) == list(range(30)) and not np.any(owners[perm] == owners)


def test_mismatch_permutation_refuses_an_impossible_set():
    with pytest.raises(ValueError, match="more than half"):
        mismatch_permutation(np.array([0, 0, 0, 1]), seed=0)


# -- APA from window embeddings -----------------------------------------------------------------------------------


def gaussian_items(n: int, windows: int, dim: int, shift: float, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(windows, dim)) + shift for _ in range(n)]


@pytest.fixture(scope="module")
def sets() -> dict[str, list[np.ndarray]]:
    """True pairs near 0, mismatched pairs shifted by 1 in every dimension, candidates in between."""
    true = gaussian_items(40, 2, 6, 0.0, 0)
    return {"true": true, "mismatched": gaussian_items(40, 2, 6, 1.0, 1),
            "good": gaussian_items(40, 2, 6, 0.2, 2), "poor": gaussian_items(40, 2, 6, 0.7, 3)}


def test_apa_anchors(sets):
    # exact in real arithmetic; the two distances go through BLAS separately, whose summation order may differ by
    # thread count and CPU (0.9999999999999998 on CI's machine)
    assert apa_value(sets["true"], sets["true"], sets["mismatched"]) == pytest.approx(1.0, abs=1e-12)
    assert apa_value(sets["mismatched"], sets["true"], sets["mismatched"]) == pytest.approx(0.0, abs=1e-12)
    good, poor = (apa_value(sets[m], sets["true"], sets["mismatched"]) for m in ("good", "poor"))
    assert 1.0 > good > 0.5 > poor > 0.0


def test_apa_equals_the_frechet_form_on_pooled_windows(sets):
    """Our Gram route against the D x D eigh route of bench.metrics.adherence on the same pooled windows."""
    pooled = [np.concatenate(sets[s]) for s in ("good", "true", "mismatched")]
    assert apa_value(sets["good"], sets["true"], sets["mismatched"]) == pytest.approx(
        apa_late_fusion_form(*pooled).value, abs=1e-10)


def _package_apa(candidate: np.ndarray, reference: np.ndarray, anti_reference: np.ndarray) -> float:
    """audio-metrics' APA re-derived from its source: Frechet distance as mu/cov (torch.cov, ddof=1) and
    eigvals(S_x @ S_y).sqrt().real; the three distances clamped at 0; the denominator raised to |numerator|
    when smaller; 0 when it is 0."""
    def stats(x):
        return x.mean(axis=0), np.cov(x.T)

    def frechet(x, y):
        (mx, sx), (my, sy) = stats(x), stats(y)
        root = np.sqrt(np.linalg.eigvals(sx @ sy).astype(complex)).real.sum()
        return float(((mx - my) ** 2).sum() + np.trace(sx) + np.trace(sy) - 2 * root)

    d_y_x, d_y_xp, d_x_xp = (max(0.0, d) for d in (frechet(candidate, reference), frechet(candidate, anti_reference),
                                                   frechet(reference, anti_reference)))
    numerator, denominator = d_y_xp - d_y_x, d_x_xp
    if abs(numerator) > denominator:
        denominator = abs(numerator)
    return 0.0 if denominator <= 0 else 0.5 + numerator / (2 * denominator)


@pytest.mark.parametrize("model", ["good", "poor", "true", "mismatched"])
def test_parity_with_the_package_formula(sets, model):
    pooled = [np.concatenate(sets[s]) for s in (model, "true", "mismatched")]
    assert apa_value(sets[model], sets["true"], sets["mismatched"]) == pytest.approx(_package_apa(*pooled), abs=1e-8)


def test_parity_where_the_triangle_inequality_fails(sets):
    """A candidate beyond the true pairs (further from X' than X is): both clip to 1."""
    beyond = gaussian_items(40, 2, 6, -1.5, 9)
    pooled = [np.concatenate(s) for s in (beyond, sets["true"], sets["mismatched"])]
    assert apa_value(beyond, sets["true"], sets["mismatched"]) == _package_apa(*pooled) == 1.0


def test_apa_with_more_windows_than_dimensions_and_the_reverse():
    """Both sides of the Gram route (windows < D and windows > D) against the D x D route."""
    for n, windows, dim in [(10, 2, 32), (30, 3, 8)]:
        true, mis = gaussian_items(n, windows, dim, 0.0, 0), gaussian_items(n, windows, dim, 0.5, 1)
        cand = gaussian_items(n, windows, dim, 0.2, 2)
        pooled = [np.concatenate(s) for s in (cand, true, mis)]
        assert apa_value(cand, true, mis) == pytest.approx(apa_late_fusion_form(*pooled).value, abs=1e-9)


# -- the bootstrap over items ---------------------------------------------------------------------------------------


def test_each_resample_equals_apa_on_the_repeated_items(sets):
    """Batch = single: resample b is APA on the drawn items' windows, each item as often as drawn."""
    draws = set_draws(40, None, n_resamples=12, seed=3)
    out = apa_resampled({"good": sets["good"], "poor": sets["poor"]}, sets["true"], sets["mismatched"], draws)
    for model in ("good", "poor"):
        assert out[model].value == apa_value(sets[model], sets["true"], sets["mismatched"])
        assert out[model].n == 40 and out[model].resampled.shape == (12,)
        for b in (0, 5, 11):
            rows = draws.eval_rows[b]
            direct = apa_value([sets[model][i] for i in rows], [sets["true"][i] for i in rows],
                               [sets["mismatched"][i] for i in rows])
            assert out[model].resampled[b] == pytest.approx(direct, abs=1e-9)


def test_paired_difference_of_a_model_with_itself_is_exactly_zero(sets):
    draws = set_draws(40, None, n_resamples=200, seed=0)
    out = apa_resampled({"a": sets["good"], "b": sets["good"], "c": sets["poor"]}, sets["true"], sets["mismatched"],
                        draws)
    np.testing.assert_array_equal(out["a"].resampled, out["b"].resampled)
    est, _ = paired_set_difference(out["a"], out["b"])
    assert est.value == 0.0 and est.se == 0.0
    diff, p = paired_set_difference(out["a"], out["c"])
    assert diff.value > 0 and diff.low > 0 and p < 0.05  # good beats poor, paired over the same resamples
    assert diff.se < math.hypot(out["a"].estimate().se, out["c"].estimate().se)  # pairing removes shared noise


def test_threads_and_other_models_change_nothing(sets):
    draws = set_draws(40, None, n_resamples=120, seed=1)
    one = apa_resampled({"good": sets["good"]}, sets["true"], sets["mismatched"], draws, workers=1)
    two = apa_resampled({"poor": sets["poor"], "good": sets["good"]}, sets["true"], sets["mismatched"], draws,
                        workers=2)
    np.testing.assert_array_equal(one["good"].resampled, two["good"].resampled)


def test_missing_clips_are_empty_entries(sets):
    holes = [np.zeros((0, 6)) if i % 5 == 0 else e for i, e in enumerate(sets["good"])]
    draws = set_draws(40, None, n_resamples=20, seed=2)
    out = apa_resampled({"holes": holes}, sets["true"], sets["mismatched"], draws)
    pooled = [np.concatenate(s) for s in (holes, sets["true"], sets["mismatched"])]  # (32 x 2, 6), (80, 6), (80, 6)
    assert out["holes"].value == pytest.approx(apa_late_fusion_form(*pooled).value, abs=1e-10)
    assert np.all(np.isfinite(out["holes"].resampled))


def test_bootstrap_refuses_lists_of_other_lengths(sets):
    draws = set_draws(40, None, n_resamples=5)
    with pytest.raises(ValueError, match="same 40 items"):
        apa_resampled({"good": sets["good"][:-1]}, sets["true"], sets["mismatched"], draws)
    with pytest.raises(ValueError, match="draws resample 39"):
        apa_resampled({"good": sets["good"]}, sets["true"], sets["mismatched"], set_draws(39, None, 5))


def test_bootstrap_interval_covers_the_population_value():
    """Seeded simulation with a known truth: candidates drawn from the true-pair distribution shifted by a fixed
    vector; the population APA is that of the three population Gaussians. The 95% standard interval must cover it
    in most of 40 replications (a loose check of calibration: 30 or more)."""
    dim, shift_c, shift_m = 4, 0.3, 1.0
    # population distances between N(0, I), N(c 1, I) and N(m 1, I): only the means differ
    d_cr, d_cm, d_rm = dim * shift_c**2, dim * (shift_m - shift_c) ** 2, dim * shift_m**2
    truth = 0.5 + (d_cm - d_cr) / (2 * d_rm)
    covered = 0
    for rep in range(40):
        true = gaussian_items(30, 2, dim, 0.0, 100 + rep)
        mis = gaussian_items(30, 2, dim, shift_m, 200 + rep)
        cand = gaussian_items(30, 2, dim, shift_c, 300 + rep)
        est = apa_resampled({"c": cand}, true, mis, set_draws(30, None, 120, rep))["c"].estimate()
        covered += est.low <= truth <= est.high
    assert covered >= 30


# -- the I/O path, end to end ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_clap(tmp_path_factory: pytest.TempPathFactory):
    from helpers import save_tiny_clap

    from baselines.base import WeightsChoice
    from bench.embedders.registry import get_embedder

    folder = save_tiny_clap(tmp_path_factory.mktemp("tiny-clap"))
    return get_embedder("clap-laion-music", WeightsChoice("pretrained", str(folder)))


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory, tiny_clap):
    """Three synthetic 11 s items (two 5 s windows each); model "copy" returns the true accompaniments (whole
    files), model "noise" white noise, with one unreadable clip among its good ones."""
    import bench.scoring.apa as io
    from bench.manifest import synthetic_manifest
    from bench.scoring.records import Sample

    root = tmp_path_factory.mktemp("apa-io")
    items = list(synthetic_manifest(root / "set", 3, duration_s=11.0).items)
    noise_clips = []
    for k, item in enumerate(items):
        path = root / "noise" / f"{item.item_id}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        if k == 1:
            path.write_bytes(b"not audio at all")
        else:
            sf.write(path, np.random.default_rng(k).normal(scale=0.1, size=((11 * 44_100), 2)), 44_100)
        noise_clips.append(Sample("noise", item.item_id, f"n{k}", path, "random"))
    copies = [Sample("copy", i.item_id, f"c{k}", Path(i.reference), "files") for k, i in enumerate(items)]
    calls = []
    real = io.embed_mix_windows

    def counting(embedder, windows):
        calls.append(len(windows))
        return real(embedder, windows)

    io.embed_mix_windows = counting
    try:
        first = io.apa_inputs(items, {"copy": copies, "noise": noise_clips}, tiny_clap, root / "cache", seed=0)
        computed = sum(calls)
        second = io.apa_inputs(items, {"copy": copies, "noise": noise_clips}, tiny_clap, root / "cache", seed=0)
    finally:
        io.embed_mix_windows = real
    return {"items": items, "first": first, "second": second, "computed": computed, "recomputed": sum(calls) - computed,
            "bad": str(root / "noise" / f"{items[1].item_id}.wav")}


def test_io_builds_every_set_with_two_windows_per_item(scored):
    inputs = scored["first"]
    assert inputs.item_ids == [i.item_id for i in scored["items"]]
    assert [e.shape for e in inputs.true_pairs] == [(2, 16)] * 3
    assert [e.shape for e in inputs.mismatched_pairs] == [(2, 16)] * 3
    assert [e.shape for e in inputs.candidates["copy"]] == [(2, 16)] * 3
    assert all(ctx != stem for ctx, _, stem, _ in inputs.mismatch) and len(inputs.mismatch) == 6
    np.testing.assert_allclose(np.linalg.norm(np.concatenate(inputs.true_pairs), axis=1), 1.0, rtol=1e-5)


def test_io_unreadable_clip_is_named_and_skipped(scored):
    inputs = scored["first"]
    assert [e.shape[0] for e in inputs.candidates["noise"]] == [2, 0, 2]
    assert len(inputs.errors) == 1 and scored["bad"] in inputs.errors[0] and "noise clip" in inputs.errors[0]


def test_io_copy_of_the_truth_scores_one_and_the_cache_serves_the_rerun(scored):
    inputs = scored["first"]
    for a, b in zip(inputs.candidates["copy"], inputs.true_pairs, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)  # the same audio: the same mixes and embeddings
    assert apa_value(inputs.candidates["copy"], inputs.true_pairs, inputs.mismatched_pairs) == pytest.approx(1.0,
                                                                                                           abs=1e-4)
    noise = apa_value(inputs.candidates["noise"], inputs.true_pairs, inputs.mismatched_pairs)
    assert 0.0 <= noise <= 1.0
    # true 6, mismatched 6, copy 6 (a whole file is another window of it than the item's: its own entries), noise 4
    assert scored["computed"] == 22
    assert scored["recomputed"] == 0
    again = scored["second"]
    assert again.mismatch == inputs.mismatch and again.errors == inputs.errors
    for a, b in zip(again.mismatched_pairs, inputs.mismatched_pairs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_io_mix_window_embedding_is_one_clap_input_per_window(tiny_clap):
    """A 5 s window is embedded once, repeat-padded: the same as the window tiled to 10 s and embedded alone."""
    from bench.scoring.apa import embed_mix_windows

    window = tone_burst(5, 220, 0.1, 0)
    one = embed_mix_windows(tiny_clap, window[None, :])
    tiled = embed_mix_windows(tiny_clap, np.tile(window, 2)[None, :])
    assert one.shape == (1, 16)
    np.testing.assert_allclose(one, tiled, atol=1e-6)
