"""Set-level FAD/KAD over clips: every fast path equals the brute-force definition on the same resamples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from bench.metrics import sets
from bench.metrics.frechet import frechet_distance, gaussian_stats
from bench.metrics.kernel import mmd2_unbiased


def _clips(rng: np.random.Generator, n: int, dim: int, frames: tuple[int, int], shift: float = 0.2) -> list[np.ndarray]:
    return [rng.normal(size=(int(rng.integers(*frames)), dim)) + shift for _ in range(n)]


def _brute_force_resamples(clips: list[np.ndarray], mu: np.ndarray, sigma: np.ndarray, n_resamples: int,
                           seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_resamples):
        picked = rng.integers(0, len(clips), size=len(clips))
        out.append(frechet_distance(*gaussian_stats(np.concatenate([clips[i] for i in picked])), mu, sigma))
    return np.array(out)


@pytest.mark.parametrize(("dim", "frames"), [(6, (3, 9)), (40, (1, 3))], ids=["moments", "gram"])
def test_clip_bootstrap_fad_equals_brute_force(dim: int, frames: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    clips = _clips(rng, 15, dim, frames)
    mu, sigma = gaussian_stats(rng.normal(size=(300, dim)))
    est = sets.clip_bootstrap_fad(clips, mu, sigma, n_resamples=60, seed=3)
    brute = _brute_force_resamples(clips, mu, sigma, 60, 3)
    assert est.value == pytest.approx(frechet_distance(*gaussian_stats(np.concatenate(clips)), mu, sigma), rel=1e-10)
    assert est.se == pytest.approx(float(np.std(brute, ddof=1)), rel=1e-8)
    assert est.bootstrap_bias == pytest.approx(float(brute.mean()) - est.value, rel=1e-8, abs=1e-10)
    z = norm.ppf(0.975)
    assert (est.low, est.high) == pytest.approx((est.value - z * est.se, est.value + z * est.se))
    assert est.n == 15


def test_fallback_path_without_sufficient_statistics_gives_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    clips = _clips(rng, 10, 5, (4, 8))
    mu, sigma = gaussian_stats(rng.normal(size=(100, 5)))
    fast = sets.clip_bootstrap_fad(clips, mu, sigma, n_resamples=40, seed=0)
    monkeypatch.setattr(sets, "SUFFICIENT_STATS_BYTES", 0)
    slow = sets.clip_bootstrap_fad(clips, mu, sigma, n_resamples=40, seed=0)
    assert slow.se == pytest.approx(fast.se, rel=1e-9)


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


def test_clip_bootstrap_kad_equals_brute_force() -> None:
    rng = np.random.default_rng(7)
    clips = _clips(rng, 8, 3, (2, 6))
    ref = rng.normal(size=(40, 3))
    est, h = sets.clip_bootstrap_kad(clips, ref, n_resamples=30, seed=9)
    assert est.value == pytest.approx(mmd2_unbiased(np.concatenate(clips), ref, h), rel=1e-9, abs=1e-12)
    draws = np.random.default_rng(9)
    brute = [mmd2_unbiased(np.concatenate([clips[i] for i in draws.integers(0, 8, size=8)]), ref, h)
             for _ in range(30)]
    assert est.se == pytest.approx(float(np.std(brute, ddof=1)), rel=1e-7)


def test_kad_bandwidth_is_the_reference_median_and_fixed() -> None:
    rng = np.random.default_rng(8)
    clips = _clips(rng, 6, 2, (3, 5))
    ref = rng.normal(size=(30, 2))
    _, h1 = sets.clip_bootstrap_kad(clips, ref, n_resamples=5)
    _, h2 = sets.clip_bootstrap_kad(clips[:3], ref, n_resamples=5)
    assert h1 == h2 > 0
    _, h3 = sets.clip_bootstrap_kad(clips, ref, bandwidth=2.5, n_resamples=5)
    assert h3 == 2.5


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
    with pytest.raises(ValueError, match="D=3 but the reference statistics have D=2"):
        sets.clip_bootstrap_fad([np.zeros((4, 3)), np.ones((4, 3))], np.zeros(2), np.eye(2), n_resamples=2)


def test_one_clip_has_no_interval() -> None:
    est = sets.clip_bootstrap_fad([np.random.default_rng(0).normal(size=(10, 2))], np.zeros(2), np.eye(2))
    assert math.isnan(est.low) and est.n == 1 and math.isfinite(est.value)
