"""Set-level FAD/KAD over clips: every fast path equals the brute-force definition on the same resamples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.bootstrap import paired_set_difference, set_draws
from bench.metrics import sets
from bench.metrics.frechet import fad_inf, fad_inf_clips, fadtk_fad_inf_ns, frechet_distance, gaussian_stats
from bench.metrics.kernel import KAD_SCALE, kadtk_bandwidth, median_bandwidth


def _clips(rng: np.random.Generator, n: int, dim: int, frames: tuple[int, int], shift: float = 0.2) -> list[np.ndarray]:
    return [rng.normal(size=(int(rng.integers(*frames)), dim)) + shift for _ in range(n)]


def test_pooled_fad_gram_route_when_frames_fewer_than_dim() -> None:
    rng = np.random.default_rng(4)
    clips = [rng.normal(size=(1, 64)) for _ in range(20)]  # 20 rows < 64 dims: rank-deficient covariance
    mu, sigma = gaussian_stats(rng.normal(size=(200, 64)))
    assert sets.pooled_fad(clips, mu, sigma) == pytest.approx(
        frechet_distance(*gaussian_stats(np.concatenate(clips)), mu, sigma), rel=1e-10)


def test_identical_sets_give_fad_near_zero() -> None:
    rng = np.random.default_rng(5)
    clips = _clips(rng, 30, 4, (5, 10))
    mu, sigma = gaussian_stats(np.concatenate(clips))
    assert abs(sets.pooled_fad(clips, mu, sigma)) < 1e-10


def test_per_song_fad_is_each_clip_alone() -> None:
    rng = np.random.default_rng(6)
    clips = [*_clips(rng, 5, 3, (4, 7)), rng.normal(size=(1, 3))]
    mu, sigma = gaussian_stats(rng.normal(size=(50, 3)))
    values = sets.per_song_fad(clips, mu, sigma)
    for clip, v in zip(clips[:-1], values[:-1], strict=True):
        assert v == pytest.approx(frechet_distance(*gaussian_stats(clip), mu, sigma), rel=1e-10)
    assert math.isnan(values[-1])  # one frame: no covariance


def test_kad_bandwidth_is_the_reference_median_and_fixed() -> None:
    rng = np.random.default_rng(8)
    clips = _clips(rng, 6, 2, (3, 5))
    ref = rng.normal(size=(30, 2))
    refs = [ref[i:i + 5] for i in range(0, 30, 5)]
    _, h1 = sets.kad_resampled({"a": clips}, refs, set_draws(6, 6, 5))
    _, h2 = sets.kad_resampled({"a": clips[:3]}, refs, set_draws(3, 6, 5))
    assert h1["a"] == h2["a"] > 0  # the reference's, whatever the eval set
    _, h3 = sets.kad_resampled({"a": clips}, refs, set_draws(6, 6, 5), bandwidth=2.5)
    assert h3["a"] == 2.5


@pytest.mark.parametrize(("clips", "match"), [
    ([], "no clips"),
    ([np.zeros((2, 3)), np.zeros((2, 4))], "differ in embedding dimension"),
    ([np.array([[np.nan, 0.0, 0.0]])], "NaN"),
    ([np.zeros((2, 3, 1))], "expected"),
])
def test_bad_clips_are_named(clips: list[np.ndarray], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sets.pooled_fad(clips, np.zeros(3), np.eye(3))


def test_reference_dimension_mismatch() -> None:
    with pytest.raises(ValueError, match="D=3 but the reference has D=2"):
        sets.fad_resampled({"a": [np.zeros((4, 3)), np.ones((4, 3))]}, (np.zeros(2), np.eye(2)), set_draws(2, None, 2))


def test_one_clip_has_no_interval() -> None:
    stat = sets.fad_resampled({"a": [np.random.default_rng(0).normal(size=(10, 2))]}, (np.zeros(2), np.eye(2)),
                              set_draws(1, None, 20))["a"]
    est = stat.estimate()
    assert math.isnan(est.low) and est.n == 1 and math.isfinite(est.value)


# -- issue 13: all models at once, two-sample bootstrap, clip-level KAD, kadtk and fadtk parity ---------------------



def _kadtk_reference(baseline: np.ndarray, evaluation: np.ndarray, bandwidth: float | None = None) -> float:
    """kadtk's calc_kernel_audio_distance(x=baseline, y=eval), re-derived from its source in numpy float64: h the
    lower median of torch.pdist(eval) unless given, gamma = 1/(2 h^2 + 1e-8), diagonals of k_xx and k_yy removed,
    U-statistic means, times SCALE_FACTOR = 100."""
    x, y = baseline, evaluation
    if bandwidth is None:
        i, j = np.triu_indices(len(y), k=1)
        dists = np.sort(np.sqrt(np.sum((y[i] - y[j]) ** 2, axis=1)))
        bandwidth = float(dists[(len(dists) - 1) // 2])  # torch.median: the lower of the two middle values
    gamma = 1.0 / (2.0 * bandwidth ** 2 + 1e-8)
    m, n = len(x), len(y)

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a_sq, b_sq = np.sum(a * a, axis=1), np.sum(b * b, axis=1)
        return np.exp(-gamma * (a_sq[:, None] + b_sq[None, :] - 2.0 * a @ b.T))

    k_xx, k_yy = kernel(x, x), kernel(y, y)
    k_xx_mean = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    k_yy_mean = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float((k_xx_mean + k_yy_mean - 2.0 * kernel(x, y).mean()) * 100)


@pytest.mark.parametrize("rule", ["reference", "kadtk"])
def test_clip_kad_matches_kadtk_on_iid_frames(rule: str) -> None:
    """One frame per clip: the clip-level U-statistic is kadtk's frame-level one; x100 and kadtk's gamma."""
    rng = np.random.default_rng(21)
    evals = rng.normal(size=(60, 8)) + 0.3  # 60 frames: 1770 distances, an odd count; 61 below is even
    ref = rng.normal(size=(61, 8))
    value, h = sets.clip_kad(list(evals[:, None, :]), list(ref[:, None, :]), bandwidth_rule=rule)
    if rule == "kadtk":
        assert h == kadtk_bandwidth(evals)
        assert value == pytest.approx(_kadtk_reference(ref, evals), abs=1e-9)
        value_even, _ = sets.clip_kad(list(ref[:, None, :]), list(evals[:, None, :]), bandwidth_rule=rule)
        assert value_even == pytest.approx(_kadtk_reference(evals, ref), abs=1e-9)  # 1830 distances: even
    else:
        assert h == median_bandwidth(ref)
        assert value == pytest.approx(_kadtk_reference(ref, evals, bandwidth=h), abs=1e-9)


def test_kadtk_bandwidth_is_the_lower_median() -> None:
    y = np.array([[0.0], [1.0], [3.0], [7.0]])  # distances 1, 3, 7, 2, 6, 4: sorted 1 2 3 4 6 7
    assert kadtk_bandwidth(y) == 3.0  # the lower middle value, not the mean 3.5 of np.median
    assert median_bandwidth(y) == 3.5


def _brute_clip_kad(e_clips: list[np.ndarray], r_clips: list[np.ndarray], e_idx: np.ndarray, r_idx: np.ndarray,
                    h: float) -> float:
    """The definition: within a set, every frame pair of two resampled clips that are not the same original
    clip; across sets, every frame pair."""
    gamma = 1.0 / (2.0 * h * h + 1e-8)

    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.exp(-gamma * np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=2))

    def within(clips: list[np.ndarray], idx: np.ndarray) -> float:
        total, pairs = 0.0, 0
        for p in idx:
            for q in idx:
                if p != q:
                    block = k(clips[p], clips[q])
                    total, pairs = total + block.sum(), pairs + block.size
        return total / pairs

    x = np.concatenate([e_clips[i] for i in e_idx])
    y = np.concatenate([r_clips[i] for i in r_idx])
    return 100.0 * (within(e_clips, e_idx) + within(r_clips, r_idx) - 2.0 * k(x, y).mean())


@pytest.mark.parametrize("two_sample", [True, False], ids=["two-sample", "reference-fixed"])
def test_kad_resampled_equals_the_definition_on_every_resample(two_sample: bool) -> None:
    rng = np.random.default_rng(22)
    models = {"a": _clips(rng, 9, 3, (1, 5), 0.4), "b": _clips(rng, 9, 3, (1, 5), 0.0)}
    ref = _clips(rng, 7, 3, (1, 4), 0.0)
    draws = set_draws(9, 7 if two_sample else None, 12, seed=4)
    stats, bandwidths = sets.kad_resampled(models, ref, draws)
    h = median_bandwidth(np.concatenate(ref))
    assert bandwidths == {"a": h, "b": h}
    for name, clips in models.items():
        st = stats[name]
        assert st.n == 9 and st.resampled.shape == (12,)
        assert st.value == pytest.approx(_brute_clip_kad(clips, ref, np.arange(9), np.arange(7), h), abs=1e-11)
        for b in range(12):
            r_idx = draws.reference_rows[b] if two_sample else np.arange(7)
            assert st.resampled[b] == pytest.approx(_brute_clip_kad(clips, ref, draws.eval_rows[b], r_idx, h),
                                                    abs=1e-11)
        assert ("two-sample" in st.what) == two_sample and "KAD x100" in st.what


def _brute_fad(x_clips: list[np.ndarray], idx: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> float:
    return frechet_distance(*gaussian_stats(np.concatenate([x_clips[i] for i in idx])), mu, sigma)


@pytest.mark.parametrize(("dim", "frames"), [(5, (3, 7)), (30, (1, 3))], ids=["by-dimension", "by-gram"])
@pytest.mark.parametrize("reference", ["clips", "fixed-clips", "statistics"])
def test_fad_resampled_equals_the_definition_on_every_resample(dim: int, frames: tuple[int, int],
                                                               reference: str) -> None:
    rng = np.random.default_rng(23)
    models = {"a": _clips(rng, 10, dim, frames, 0.3), "b": _clips(rng, 10, dim, frames, 0.0)}
    ref = _clips(rng, 8, dim, frames, 0.0)
    mu_all, sigma_all = gaussian_stats(np.concatenate(ref))
    if reference == "statistics":
        mu_fixed, sigma_fixed = gaussian_stats(rng.normal(size=(200, dim)))
        stats = sets.fad_resampled(models, (mu_fixed, sigma_fixed), set_draws(10, None, 10, seed=5))
    else:
        draws = set_draws(10, 8 if reference == "clips" else None, 10, seed=5)
        stats = sets.fad_resampled(models, ref, draws)
    draws = set_draws(10, 8, 10, seed=5)  # the same eval rows whatever the reference
    for name, clips in models.items():
        for b in range(10):
            if reference == "clips":
                mu, sigma = gaussian_stats(np.concatenate([ref[i] for i in draws.reference_rows[b]]))
            elif reference == "fixed-clips":
                mu, sigma = mu_all, sigma_all
            else:
                mu, sigma = mu_fixed, sigma_fixed
            assert stats[name].resampled[b] == pytest.approx(_brute_fad(clips, draws.eval_rows[b], mu, sigma),
                                                             rel=1e-9, abs=1e-11)
        full = (mu_fixed, sigma_fixed) if reference == "statistics" else (mu_all, sigma_all)
        assert stats[name].value == pytest.approx(_brute_fad(clips, np.arange(10), *full), rel=1e-10)


def test_paired_differences_share_the_draws() -> None:
    rng = np.random.default_rng(24)
    models = {"a": _clips(rng, 30, 4, (2, 5), 1.0), "b": _clips(rng, 30, 4, (2, 5), 0.0)}
    models["a_again"] = [c.copy() for c in models["a"]]
    ref = _clips(rng, 30, 4, (2, 5), 0.0)
    draws = set_draws(30, 30, 200, seed=6)
    for stats in (sets.fad_resampled(models, ref, draws), sets.kad_resampled(models, ref, draws)[0]):
        same, p_same = paired_set_difference(stats["a"], stats["a_again"])
        assert same.value == 0.0 and same.se == 0.0 and p_same == 1.0
        diff, p = paired_set_difference(stats["a"], stats["b"])
        assert diff.value == pytest.approx(stats["a"].value - stats["b"].value)
        assert diff.low > 0 and p < 0.05  # a is shifted by 1 per axis: clearly further from the reference
        # pairing removes the shared noise: the paired SE is below the SE of either statistic alone
        assert diff.se < max(stats["a"].estimate().se, stats["b"].estimate().se)


def test_resampled_validation() -> None:
    rng = np.random.default_rng(25)
    models = {"a": _clips(rng, 5, 3, (2, 3))}
    ref = _clips(rng, 4, 3, (2, 3))
    with pytest.raises(ValueError, match="statistics file"):
        sets.fad_resampled(models, (np.zeros(3), np.eye(3)), set_draws(5, 4, 3))
    with pytest.raises(ValueError, match="same items"):
        sets.fad_resampled(models, ref, set_draws(6, 4, 3))
    with pytest.raises(ValueError, match="reference_rows has shape"):
        sets.kad_resampled(models, ref, set_draws(5, 3, 3))
    with pytest.raises(ValueError, match="bandwidth_rule"):
        sets.kad_resampled(models, ref, set_draws(5, 4, 3), bandwidth_rule="eval")
    with pytest.raises(ValueError, match="D=3 but the reference has D=2"):
        sets.fad_resampled(models, (np.zeros(2), np.eye(2)), set_draws(5, None, 3))


def test_kad_scale_and_kadtk_rule_per_model() -> None:
    rng = np.random.default_rng(26)
    models = {"a": _clips(rng, 8, 3, (1, 4), 1.0), "b": _clips(rng, 8, 3, (1, 4), 0.0)}
    ref = _clips(rng, 8, 3, (1, 4), 0.0)
    draws = set_draws(8, 8, 5)
    x100, _ = sets.kad_resampled(models, ref, draws)
    raw, _ = sets.kad_resampled(models, ref, draws, scale=1.0)
    assert x100["a"].value == pytest.approx(KAD_SCALE * raw["a"].value, rel=1e-12)
    _, hs = sets.kad_resampled(models, ref, draws, bandwidth_rule="kadtk")
    for name, clips in models.items():
        assert hs[name] == kadtk_bandwidth(np.concatenate(clips))


def test_fad_inf_frame_variant_is_fadtks_procedure() -> None:
    """fadtk's score_inf, re-derived from its source: sizes int(linspace(min_n, N, steps)), one draw of n frames
    WITH replacement per size, FAD of each, np.polyfit(1/n, FAD, 1); intercept, slope and R^2. Same index draws."""
    rng = np.random.default_rng(27)
    rows = rng.normal(size=(300, 4)) + 0.2
    mu, sigma = gaussian_stats(rng.normal(size=(500, 4)))
    ns = fadtk_fad_inf_ns(300, min_n=60, steps=25)
    ours = fad_inf(rows, mu, sigma, ns=ns, seed=3, replace=True)
    draw = np.random.default_rng(3)
    points = [frechet_distance(*gaussian_stats(rows[draw.choice(300, size=n, replace=True)]), mu, sigma) for n in ns]
    xs, ys = 1.0 / np.array(ns), np.array(points)
    slope, intercept = np.polyfit(xs, ys, 1)
    r2 = 1 - np.sum((ys - (slope * xs + intercept)) ** 2) / np.sum((ys - ys.mean()) ** 2)
    assert [p[1] for p in ours.points] == pytest.approx(points, rel=1e-10)
    assert (ours.value, ours.slope, ours.r2) == pytest.approx((intercept, slope, r2), rel=1e-8)
    assert ours.to_dict()["variant"] == "frames" and ours.to_dict()["replace"] is True
    assert ns == tuple(int(n) for n in np.linspace(60, 300, 25))


def test_fad_inf_clips_draws_whole_clips() -> None:
    rng = np.random.default_rng(28)
    clips = _clips(rng, 16, 3, (2, 6))
    mu, sigma = np.zeros(3), np.eye(3)
    result = fad_inf_clips(clips, mu, sigma, ns=[4, 8, 16], n_repeats=2, seed=1)
    assert [p[0] for p in result.points] == [4, 4, 8, 8, 16]  # all 16 clips: drawn once, it is the whole set
    assert result.points[-1][1] == pytest.approx(sets.pooled_fad(clips, mu, sigma), rel=1e-10)
    draw = np.random.default_rng(1)
    first = np.concatenate([clips[i] for i in draw.choice(16, size=4, replace=False)])
    assert result.points[0][1] == pytest.approx(frechet_distance(*gaussian_stats(first), mu, sigma), rel=1e-10)
    assert result.to_dict()["variant"] == "clips" and "n_clips" in result.to_dict()["method"]
    with pytest.raises(ValueError, match="clip counts"):
        fad_inf_clips(clips, mu, sigma, ns=[4, 17])


def test_fad_inf_clips_gram_route_when_frames_fewer_than_dim() -> None:
    rng = np.random.default_rng(29)
    clips = [rng.normal(size=(1, 24)) + 0.1 for _ in range(16)]  # subsets of 4-16 rows, all below D = 24
    mu, sigma = gaussian_stats(rng.normal(size=(100, 24)))
    result = fad_inf_clips(clips, mu, sigma, ns=[4, 8, 16], n_repeats=2, seed=2)
    draw = np.random.default_rng(2)
    for n, value in result.points[:2]:
        rows = np.concatenate([clips[i] for i in draw.choice(16, size=n, replace=False)])
        assert value == pytest.approx(frechet_distance(*gaussian_stats(rows), mu, sigma), rel=1e-9)


def test_paired_set_test_holds_its_level_under_a_true_null_and_still_detects_a_shift() -> None:
    """The set statistics' paired p-value (bench.bootstrap.paired_set_difference) against a known truth: two models
    drawn from one distribution (8-d frames, 2-5 per clip, 20 items, reference 40 clips resampled too, B = 200),
    300 repetitions. The 5% test fired 0.3% of the time for FAD and 1.3% for KAD: conservative (the resampled
    differences spread wider than the difference itself varies). With one model shifted by 0.15 per axis it fired
    32% (FAD) and 48% (KAD); a test that swaps the two models' clips item by item (the reference's statistics
    held fixed) fired 47% for FAD at its exact level (4.0% under the null), so the bootstrap test costs power, not
    validity (docs/benchmarks.md, fifteenth pass)."""
    def clips(rng: np.random.Generator, n: int, shift: float) -> list[np.ndarray]:
        return [rng.normal(size=(int(rng.integers(2, 6)), 8)) + shift for _ in range(n)]

    for shift, bound in ((0.2, "level"), (0.35, "power")):
        rng = np.random.default_rng(20)
        fired = {"fad": 0, "kad": 0}
        for r in range(300):
            models = {"a": clips(rng, 20, shift), "b": clips(rng, 20, 0.2)}
            ref = clips(rng, 40, 0.0)
            draws = set_draws(20, 40, 200, seed=r)
            for name, stats in (("fad", sets.fad_resampled(models, ref, draws)),
                                ("kad", sets.kad_resampled(models, ref, draws)[0])):
                fired[name] += paired_set_difference(stats["a"], stats["b"])[1] < 0.05
        rates = {k: v / 300 for k, v in fired.items()}
        if bound == "level":
            assert max(rates.values()) <= 0.05, rates
        else:
            assert min(rates.values()) >= 0.2, rates


def test_a_set_statistic_with_undefined_resamples_gives_no_interval_and_no_p() -> None:
    """KAD's within-set U-statistic needs two distinct clips: a resample of 4 items that draws one item four times
    is undefined (NaN). The interval's SE came out NaN with no reason given, and the paired p counted those
    resamples as misses, which made p too small. Both now say why and give no number."""
    rng = np.random.default_rng(31)
    models = {"a": _clips(rng, 4, 3, (2, 4), 0.5), "b": _clips(rng, 4, 3, (2, 4), 0.0)}
    ref = _clips(rng, 12, 3, (2, 4), 0.0)
    draws = set_draws(4, 12, 300, seed=1)
    assert np.any(np.all(draws.eval_rows == draws.eval_rows[:, :1], axis=1))  # some resample drew one item only
    stats = sets.kad_resampled(models, ref, draws)[0]
    assert np.isnan(stats["a"].resampled).any()
    est = stats["a"].estimate()
    assert np.isnan(est.low) and np.isfinite(est.value)
    assert "no interval: " in est.method and "resamples undefined (a resample of 4 items drew too few" in est.method
    diff, p = paired_set_difference(stats["a"], stats["b"])
    assert np.isnan(p) and np.isnan(diff.low)


def test_fad_intervals_stop_at_zero() -> None:
    """A Frechet distance is >= 0: FAD's normal interval (value +- z SE) and per-song FAD's bootstrap interval are
    cut at 0, said in the method, where they reach below; a model far from the reference keeps its interval."""
    from bench.scoring.sets import ModelSet, ReferenceSet, SetParams, Sets, fad_equal_n, per_song
    from bench.stats import RANGE_CLIPPED

    rng = np.random.default_rng(0)
    reference = [rng.normal(size=(40, 1)) for _ in range(50)]
    mu, sigma = gaussian_stats(np.concatenate(reference))
    items = [f"item{i}" for i in range(4)]
    near = {i: rng.normal(size=(5, 1)) for i in items}  # drawn from the reference's own distribution
    far = {i: rng.normal(size=(40, 1)) + 5.0 for i in items}
    data = Sets(models={"near": ModelSet(near), "far": ModelSet(far)}, contenders=["near", "far"], common=items,
                reference=ReferenceSet(mu, sigma, "reference clips", clips=reference),
                draws=set_draws(len(items), len(reference), n_resamples=200, seed=0))
    params = SetParams(resamples=200, seed=0)

    for outcomes, key in ((fad_equal_n(data, params), "fad"), (per_song(data, params), "per_song_fad")):
        near_fad, far_fad = outcomes["near"].entry[key], outcomes["far"].entry[key]
        assert near_fad["ci_low"] == 0.0 and near_fad["value"] >= 0.0
        assert RANGE_CLIPPED in near_fad["method"]
        assert far_fad["ci_low"] > 0.0 and RANGE_CLIPPED not in far_fad["method"]
    # the near model's normal interval did reach below 0 before the cut (else this test shows nothing)
    stats = sets.fad_resampled({"near": data.clips("near")}, data.reference.clips, data.draws)
    assert stats["near"].estimate().low < 0.0
