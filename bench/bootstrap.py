"""Bootstrap confidence intervals and a paired bootstrap test: arrays in, :class:`bench.stats.Estimate` out.

All intervals are percentile bootstrap intervals (Efron & Tibshirani 1993, *An Introduction to the Bootstrap*,
ch. 13): resample the n items with replacement B times, recompute the statistic, and take the alpha/2 and
1 - alpha/2 quantiles of the B values (``np.quantile``'s default linear interpolation). Nominal, not exact: for a
mean of n = 30 normal values a 95% interval covers about 93% of the time (it uses the 1/n variance and normal
tails). Every resample comes from ``np.random.default_rng(seed)``; the same data and seed give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
from numpy.typing import ArrayLike

from bench.stats import CONFIDENCE, Estimate

DEFAULT_RESAMPLES = 1000
BLOCK_ELEMENTS = 1 << 22  # resampled indices held at once (int64: 32 MiB)


def bootstrap_mean_ci(values: ArrayLike, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                      confidence: float = CONFIDENCE) -> Estimate:
    """Mean of ``values`` with a percentile bootstrap CI; vectorised over resamples.

    Args:
        values: 1-D, finite.
        n_resamples: B.
        seed: seeds ``np.random.default_rng``.
        confidence: e.g. 0.95.

    Returns:
        Estimate(mean, low, high, n, method); with n < 2 the interval is NaN and the method says why.
    """
    x = _values(values, "values")
    _check_args(n_resamples, confidence)
    n = len(x)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, "no data")
    mean = float(x.mean())
    if n == 1:
        return Estimate(mean, math.nan, math.nan, 1, "percentile bootstrap: n=1 is too few for an interval")
    low, high = _percentile_interval(_bootstrap_means(x, n_resamples, seed), confidence)
    return Estimate(mean, low, high, n, _method("mean", n_resamples, seed))


def paired_bootstrap_diff(a: ArrayLike, b: ArrayLike, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                          confidence: float = CONFIDENCE) -> tuple[Estimate, float]:
    """Mean paired difference mean(a - b) over matched items, its percentile CI and a two-sided p-value.

    Items are resampled as pairs: d_i = a_i - b_i, and the bootstrap resamples d. The p-value tests H0: E[d] = 0
    with the bootstrap distribution of the mean moved to satisfy H0 (Efron & Tibshirani 1993, section 16.4: the
    same as resampling d - mean(d)): with observed mean t and resampled means t*_1..t*_B (the same resamples as the
    interval),

        p = (1 + #{b : |t*_b - t| >= |t|}) / (B + 1).

    The +1 counts the observed sample among the resamples, so p is never 0 (its floor is 1/(B + 1)) and the test
    does not reject more often than its level because of the Monte Carlo error. Like the interval it is a
    large-sample test: at n = 30 normal values it rejects a true H0 at the 5% level about 5.5% of the time.

    Args:
        a, b: 1-D, finite, one value per matched item, same length.
        n_resamples: B.
        seed: seeds ``np.random.default_rng``.
        confidence: of the interval.

    Returns:
        ``(estimate, p_value)``; with n < 2 the interval and p are NaN.
    """
    x = _values(a, "a")
    y = _values(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"a and b must hold one value per matched item: lengths {len(x)} and {len(y)}")
    _check_args(n_resamples, confidence)
    d = x - y
    n = len(d)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, "no data"), math.nan
    observed = float(d.mean())
    if n == 1:
        return Estimate(observed, math.nan, math.nan, 1, "paired bootstrap: n=1 is too few"), math.nan
    means = _bootstrap_means(d, n_resamples, seed)
    low, high = _percentile_interval(means, confidence)
    p = (1 + int(np.count_nonzero(np.abs(means - observed) >= abs(observed)))) / (n_resamples + 1)
    return Estimate(observed, low, high, n, _method("mean paired difference a - b", n_resamples, seed)), p


def bootstrap_statistic_ci(stat_fn: Callable[..., float], *arrays: ArrayLike, n_resamples: int = DEFAULT_RESAMPLES,
                           seed: int = 0, confidence: float = CONFIDENCE) -> Estimate:
    """Percentile bootstrap CI of a set-level statistic (FAD, KAD, ...) at the set's own size n.

    Each resample draws n row indices with replacement and indexes every array with the same indices, so rows
    that belong together (an item's eval and reference embeddings) stay together. ``stat_fn`` runs once per
    resample (B calls); keep anything that must not vary, such as the KAD bandwidth, fixed outside it.

    Caveat for set statistics: a resample repeats some rows (on average 36.8% of the items are missing and
    replaced by repeats). FAD's upward bias grows as its effective n shrinks, and KAD counts a repeated eval row
    as a pair at distance 0, so their bootstrap distributions sit above the full-set value; the interval then
    shows the spread honestly but can lie partly or wholly above the point estimate.

    Args:
        stat_fn: ``stat_fn(*arrays) -> float``.
        *arrays: one or more arrays with the same length n along axis 0.
        n_resamples: B.
        seed: seeds ``np.random.default_rng``; with the same seed the rows drawn are the same as in
            :func:`bootstrap_mean_ci`.
        confidence: of the interval.

    Returns:
        Estimate(stat_fn(*arrays), low, high, n, method); with n < 2 the interval is NaN.

    Raises:
        ValueError: on mismatched lengths, or when stat_fn gives a non-finite value.
    """
    if not arrays:
        raise ValueError("pass at least one array to resample")
    data = [np.asarray(a) for a in arrays]
    if any(a.ndim == 0 for a in data):
        raise ValueError("every array needs an item axis (axis 0)")
    n = data[0].shape[0]
    if any(a.shape[0] != n for a in data):
        raise ValueError(f"arrays must share their item count along axis 0, got {[a.shape[0] for a in data]}")
    _check_args(n_resamples, confidence)
    value = float(stat_fn(*data))
    if not math.isfinite(value):
        raise ValueError(f"stat_fn on the full data is not finite: {value}")
    if n < 2:
        return Estimate(value, math.nan, math.nan, n, f"percentile bootstrap: n={n} is too few for an interval")
    rng = np.random.default_rng(seed)
    stats = np.empty(n_resamples)
    i = 0
    for block in _resample_indices(rng, n, n_resamples):
        for idx in block:
            stats[i] = stat_fn(*(a[idx] for a in data))
            i += 1
    bad = int(np.count_nonzero(~np.isfinite(stats)))
    if bad:
        raise ValueError(f"stat_fn gave a non-finite value on {bad} of {n_resamples} resamples")
    low, high = _percentile_interval(stats, confidence)
    return Estimate(value, low, high, n, _method("statistic", n_resamples, seed))


# -- internals ----------------------------------------------------------------------------------------------------


def _resample_indices(rng: np.random.Generator, n: int, n_resamples: int) -> Iterator[np.ndarray]:
    """Blocks of resampled row indices, (rows, n) each, n_resamples rows in all; at most BLOCK_ELEMENTS at once."""
    rows = max(1, BLOCK_ELEMENTS // n)
    for start in range(0, n_resamples, rows):
        yield rng.integers(0, n, size=(min(rows, n_resamples - start), n))


def _bootstrap_means(x: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([x[idx].mean(axis=1) for idx in _resample_indices(rng, len(x), n_resamples)])


def _percentile_interval(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    low, high = np.quantile(stats, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def _method(what: str, n_resamples: int, seed: int) -> str:
    return f"percentile bootstrap of the {what}, {n_resamples} resamples, seed {seed}"


def _values(values: ArrayLike, name: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds {int(np.sum(~np.isfinite(x)))} NaN or infinite values")
    return x


def _check_args(n_resamples: int, confidence: float) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")

