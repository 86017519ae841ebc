"""Bootstrap confidence intervals and a paired randomisation test: arrays in, :class:`bench.stats.Estimate` out.

All intervals are percentile bootstrap intervals (Efron & Tibshirani 1993, *An Introduction to the Bootstrap*,
ch. 13): resample the n items with replacement B times, recompute the statistic, and take the alpha/2 and
1 - alpha/2 quantiles of the B values (``np.quantile``'s default linear interpolation). Plain, that is too narrow
at small n (it uses the 1/n variance and normal tails): a 95% interval of a mean covered 86% of the time at n = 6
normal values, 90% at 10, 93% at 30. Means and paired differences therefore use the *expanded* percentile
interval (Hesterberg 2015, "What teachers should know about the bootstrap", The American Statistician 69(4),
section 4.2): the quantiles are taken at alpha'/2 and 1 - alpha'/2 with

    alpha' = 2 Phi(-sqrt(n / (n - 1)) t_{n-1, 1 - alpha/2}),

so that for normal data the interval is as wide as Student's t interval (n: items, or songs for a cluster
bootstrap). Below :data:`MIN_BOOTSTRAP_UNITS` units the bootstrap cannot give that: its resampled means never leave
the data's range, so at 2-5 normal values a "95%" interval covered 50-90% (2-5 items or songs are what a small
MoisesDB or MUSDB run gives); there the interval is Student's t (:func:`t_interval`), as wide as the expansion
aims for and exact for normal data. The paired p-value is a sign-flip randomisation test
(:func:`sign_flip_p_value`), not a bootstrap one: Holm reads the smallest of ten p-values at 0.005, and there the
bootstrap's tail was still liberal at n = 20 (docs/benchmarks.md, fifteenth pass). Every resample comes from
``np.random.default_rng(seed)``; the same data and seed give the same interval.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm

from bench.stats import CONFIDENCE, Estimate

DEFAULT_RESAMPLES = 1000
# The fewest resamples a run accepts (--resamples): a 95% percentile interval's tails then hold >= 2.5 resamples each;
# with fewer an endpoint rests on one or two resampled means and can fall on the wrong side of the mean itself
# (B = 1-9 gave intervals that excluded their point estimate). The intervals are documented at the default.
MIN_RESAMPLES = 100
# Fewer independent units (items, or songs) than this: Student's t interval, not the bootstrap's. 1,000 normal samples
# per n: the expanded percentile interval covered 0.50 / 0.74 / 0.89 / 0.90 / 0.92 / 0.94 at n = 2 / 3 / 4 / 5 / 6 / 8
# and was 8-97% as wide as t's (which covered 0.95-0.96); from n = 10 the two agree (0.947 against 0.954, 98% as
# wide), and on skewed data t is no better (lognormal n = 10: 0.84 both). docs/benchmarks.md, fifteenth pass.
MIN_BOOTSTRAP_UNITS = 10
# Random sign vectors of the paired test when 2^units is larger: p's floor is 1 / (B + 1) = 1e-4, below what Holm
# asks of a family of 100 comparisons at the 5% level (5e-4).
DEFAULT_FLIPS = 9999
BLOCK_ELEMENTS = 1 << 22  # resampled indices held at once (int64: 32 MiB)
# How a paired estimate's method names its p-value's test ("...; p: sign-flip randomisation test over ..."): written
# here, read back by the report (:func:`sign_flip_floor`, :func:`names_sign_flip_test`)
SIGN_FLIP_TEST = "sign-flip randomisation test"
P_SIGN_FLIP = f"p: {SIGN_FLIP_TEST}"
# How an estimate's method names Student's t interval (:func:`t_interval`), read back by Table I's notes
T_INTERVAL = "Student's t interval"


def bootstrap_mean_ci(values: ArrayLike, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                      confidence: float = CONFIDENCE, clusters: Sequence[Hashable] | None = None,
                      expanded: bool = True) -> Estimate:
    """Mean of ``values`` with a percentile bootstrap CI (Student's t below :data:`MIN_BOOTSTRAP_UNITS` units when
    ``expanded``); vectorised over resamples.

    Args:
        values: 1-D, finite.
        n_resamples: B.
        seed: seeds ``np.random.default_rng``.
        confidence: e.g. 0.95.
        clusters: one label per value (the song each window was cut from); values that share a label are
            resampled together (:func:`_cluster_means`). None, or every label distinct: the item bootstrap.
        expanded: the expanded percentile interval (module docstring); False: the plain one.

    Returns:
        Estimate(mean, low, high, n, method); with n < 2 (or one cluster) the interval is NaN and the method says
        why.
    """
    x = _values(values, "values")
    _check_args(n_resamples, confidence)
    n = len(x)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, "no data")
    mean = float(x.mean())
    if n == 1:
        return Estimate(mean, math.nan, math.nan, 1, "percentile bootstrap: n=1 is too few for an interval")
    codes = _cluster_codes(clusters, n)
    if codes is not None and int(codes.max()) + 1 < 2:
        return Estimate(mean, math.nan, math.nan, n, "cluster bootstrap: one song is too few for an interval")
    low, high, method = _mean_interval(x, codes, n_resamples, seed, confidence, expanded, "mean")
    return Estimate(mean, low, high, n, method)


def paired_bootstrap_diff(a: ArrayLike, b: ArrayLike, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                          confidence: float = CONFIDENCE, clusters: Sequence[Hashable] | None = None,
                          expanded: bool = True, test: str = "sign-flip", n_flips: int = DEFAULT_FLIPS
                          ) -> tuple[Estimate, float]:
    """Mean paired difference mean(a - b) over matched items, its CI (as :func:`bootstrap_mean_ci` gives for d) and
    a two-sided p-value.

    Items are resampled as pairs: d_i = a_i - b_i, and the bootstrap resamples d (the interval). The p-value, by
    default (``test="sign-flip"``), is :func:`sign_flip_p_value`'s randomisation test; the estimate's method names
    it. ``test="bootstrap"`` keeps the bootstrap test this module used before (for comparison in simulations):
    H0: E[d] = 0 with the bootstrap distribution of the mean moved to satisfy H0 (Efron & Tibshirani 1993, section
    16.4), the deviations widened by the expansion factor at the 5% level, c = sqrt(n / (n - 1)) t_{n-1, 0.975} /
    z_{0.975}, and p = (1 + #{b : c |t*_b - t| >= |t|}) / (B + 1). Expanded, it holds 5% at n = 6-100 but not the
    far tail: Holm over ten true nulls at n = 20 rejected 8.0% of the time (the sign-flip test: within its level).

    Args:
        a, b: 1-D, finite, one value per matched item, same length.
        n_resamples: B of the interval (and of the bootstrap test).
        seed: seeds ``np.random.default_rng`` (the interval's resamples and the test's signs).
        confidence: of the interval.
        clusters: one label per item (its song): as in :func:`bootstrap_mean_ci`, the pairs of one song are
            resampled together, and their signs flipped together.
        test: ``sign-flip`` or ``bootstrap``.
        n_flips: random sign vectors of the sign-flip test (every one of the 2^units when that is no more).

    Returns:
        ``(estimate, p_value)``; with n < 2 (or one cluster) the interval and p are NaN.
    """
    if test not in ("sign-flip", "bootstrap"):
        raise ValueError(f"test must be 'sign-flip' or 'bootstrap', got {test!r}")
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
    codes = _cluster_codes(clusters, n)
    if codes is not None and int(codes.max()) + 1 < 2:
        return Estimate(observed, math.nan, math.nan, n, "cluster bootstrap: one song is too few"), math.nan
    low, high, method = _mean_interval(d, codes, n_resamples, seed, confidence, expanded,
                                       "mean paired difference a - b")
    if test == "sign-flip":
        p, how = sign_flip_p_value(d, n_flips=n_flips, seed=seed, clusters=clusters)
        method = f"{method}; p: {how}"  # how starts with SIGN_FLIP_TEST: the method holds P_SIGN_FLIP
    else:
        units = n if codes is None else int(codes.max()) + 1
        widen = expansion_factor(units) if expanded else 1.0
        means = _unit_means(d, codes, n_resamples, seed)  # the interval's resamples (the same seed)
        p = (1 + int(np.count_nonzero(widen * np.abs(means - observed) >= abs(observed)))) / (n_resamples + 1)
        method = f"{method}; p: bootstrap test (the resamples centred on H0{', widened' if expanded else ''})"
    return Estimate(observed, low, high, n, method), p


def _mean_interval(x: np.ndarray, codes: np.ndarray | None, n_resamples: int, seed: int, confidence: float,
                   expanded: bool, what: str) -> tuple[float, float, str]:
    """(low, high, method) of the mean of ``x`` (n >= 2; with ``codes``, >= 2 songs): Student's t below
    :data:`MIN_BOOTSTRAP_UNITS` units when ``expanded``, else the (expanded) percentile bootstrap over items or
    songs."""
    units = len(x) if codes is None else int(codes.max()) + 1
    if expanded and units < MIN_BOOTSTRAP_UNITS:
        small = t_interval(x, codes, confidence, what)
        return small.low, small.high, small.method
    level = expanded_confidence(confidence, units) if expanded else confidence
    low, high = _percentile_interval(_unit_means(x, codes, n_resamples, seed), level)
    method = (_method(what, n_resamples, seed, expanded) if codes is None
              else _cluster_method(what, units, n_resamples, seed, expanded))
    return low, high, method


def _unit_means(x: np.ndarray, codes: np.ndarray | None, n_resamples: int, seed: int) -> np.ndarray:
    """The B resampled means: over items, or over songs (:func:`_cluster_means`) when ``codes`` names them."""
    return _bootstrap_means(x, n_resamples, seed) if codes is None else _cluster_means(x, codes, n_resamples, seed)


def sign_flip_p_value(d: ArrayLike, n_flips: int = DEFAULT_FLIPS, seed: int = 0,
                      clusters: Sequence[Hashable] | None = None) -> tuple[float, str]:
    """Two-sided p-value of a sign-flip randomisation test of the mean paired difference, and its description.

    Fisher's test for paired samples (Fisher 1935, *The Design of Experiments*, section 21; Good 2005,
    *Permutation, Parametric and Bootstrap Tests of Hypotheses*, section 3.7.2). With units u = 1..U (items, or
    songs when ``clusters`` is given) and S_u the sum of d over unit u, the statistic is T(e) = sum_u e_u S_u for
    signs e in {-1, +1}^U (T(1) = n mean(d)), and

        p = #{e : |T(e)| >= |T(1)|} / 2^U                 over every sign vector, when 2^U <= n_flips + 1,
        p = (1 + #{b : |T(e_b)| >= |T(1)|}) / (B + 1)     over B = n_flips random ones otherwise.

    Under H0 that the two models' values are exchangeable within each unit (swapping a model's clip with the
    other's for one song's items changes nothing in distribution) every sign vector is equally likely and p is
    exact at every level, for any n and any distribution: what Holm's family-wise guarantee needs. It is also
    asymptotically valid for the weaker H0: E[d] = 0 (the flips' variance, sum S_u^2 / n^2, estimates the mean's),
    and studentising changes nothing: sum_u S_u^2 does not depend on e, so |t| is increasing in |T|. Its floor is
    2 / 2^U with every vector enumerated (U = 6 units cannot give p below 1/32: no test of exchangeability can).

    Returns:
        ``(p, how)``: NaN with fewer than 2 units.
    """
    x = _values(d, "d")
    codes = _cluster_codes(clusters, len(x))
    totals = x if codes is None else np.bincount(codes, weights=x, minlength=int(codes.max()) + 1)
    units = len(totals)
    by = "over items" if codes is None else f"over {units} songs (a song's items flipped together)"
    if units < 2:
        return math.nan, f"{SIGN_FLIP_TEST} {by}: too few units"
    if n_flips < 1:
        raise ValueError(f"n_flips must be >= 1, got {n_flips}")
    observed = abs(float(totals.sum()))
    # a flip that reproduces |T(1)| must count: sums in another order may differ by rounding
    tolerance = 1e-9 * float(np.abs(totals).sum())
    if units <= 30 and 2**units <= n_flips + 1:
        hits = total = 0
        for signs in _all_signs(units):
            hits += int(np.count_nonzero(np.abs(signs @ totals) >= observed - tolerance))
            total += len(signs)
        return hits / total, f"{SIGN_FLIP_TEST} {by}, all {total} sign vectors (exact)"
    rng = np.random.default_rng([seed, 0x5F11])  # a stream apart from the interval's resamples
    hits = 0
    rows = max(1, BLOCK_ELEMENTS // units)
    for start in range(0, n_flips, rows):
        signs = rng.integers(0, 2, size=(min(rows, n_flips - start), units), dtype=np.int8) * 2.0 - 1.0
        hits += int(np.count_nonzero(np.abs(signs @ totals) >= observed - tolerance))
    return (1 + hits) / (n_flips + 1), f"{SIGN_FLIP_TEST} {by}, {n_flips} random sign vectors, seed {seed}"


def names_sign_flip_test(method: object) -> bool:
    """Whether a stored paired estimate's ``method`` says its p came from :func:`sign_flip_p_value` (a scores.json
    from before that test names none: its p was the bootstrap test's)."""
    return isinstance(method, str) and P_SIGN_FLIP in method


def names_t_interval(method: object) -> bool:
    """Whether a stored estimate's ``method`` says its interval is :func:`t_interval`'s (else a bootstrap's)."""
    return isinstance(method, str) and method.startswith(T_INTERVAL)


def sign_flip_floor(method: object) -> float | None:
    """The smallest p an enumerated sign-flip test could give (2 / 2^U), read from a stored ``method``; None when
    the test drew random sign vectors (its floor 1 / (B + 1) is below any level in use) or is not named."""
    found = re.search(r"all (\d+) sign vectors \(exact\)", method) if names_sign_flip_test(method) else None
    return 2 / int(found.group(1)) if found else None


def _all_signs(units: int) -> Iterator[np.ndarray]:
    """Every vector in {-1, +1}^units, as blocks of rows (float64)."""
    rows = max(1, BLOCK_ELEMENTS // units)
    bits = np.arange(units, dtype=np.int64)
    for start in range(0, 2**units, rows):
        codes = np.arange(start, min(start + rows, 2**units), dtype=np.int64)
        yield ((codes[:, None] >> bits) & 1) * 2.0 - 1.0


def t_interval(x: np.ndarray, codes: np.ndarray | None, confidence: float, what: str) -> Estimate:
    """Student's t interval of the mean of ``x``: mean +- t_{U-1, 1-alpha/2} SE over U units.

    Items (``codes`` None): SE = s / sqrt(n). Songs (``codes``: each item's song, 0..G-1): the mean is the ratio
    sum(S_g) / sum(c_g) of the songs' sums S_g and counts c_g, and SE is its cluster-robust standard error
    (Cameron & Miller 2015, *J. Human Resources* 50(2), eq. 11 with one regressor, and the G / (G - 1) correction),
    SE^2 = G / (G - 1) * sum_g (S_g - mean c_g)^2 / (sum_g c_g)^2, which is s^2 / n when every song has one item.
    """
    from scipy.stats import t

    mean = float(x.mean())
    if codes is None:
        units, se = len(x), float(x.std(ddof=1)) / math.sqrt(len(x))
        over = f"{units} items"
    else:
        units = int(codes.max()) + 1
        sums = np.bincount(codes, weights=x, minlength=units)
        counts = np.bincount(codes, minlength=units).astype(np.float64)
        se = math.sqrt(units / (units - 1) * float(np.sum((sums - mean * counts) ** 2))) / float(counts.sum())
        over = f"{units} songs (cluster-robust SE; a song's windows one unit)"
    half = float(t.ppf(0.5 + confidence / 2.0, units - 1)) * se
    return Estimate(mean, mean - half, mean + half, len(x),
                    f"{T_INTERVAL} of the {what} over {over}: fewer than {MIN_BOOTSTRAP_UNITS} units, where a "
                    "bootstrap interval cannot be wider than the data")


def expanded_confidence(confidence: float, n: int) -> float:
    """1 - alpha' of the expanded percentile interval (module docstring) for ``n`` independent units (>= 2)."""
    from scipy.stats import t

    alpha = 1.0 - confidence
    return 1.0 - 2.0 * float(norm.cdf(-math.sqrt(n / (n - 1)) * t.ppf(1.0 - alpha / 2.0, n - 1)))


def expansion_factor(n: int, confidence: float = CONFIDENCE) -> float:
    """c = sqrt(n / (n - 1)) t_{n-1, 1-alpha/2} / z_{1-alpha/2}: how much wider the expanded interval's half-width
    is than the plain one's for normal data; it widens the paired test's deviations (:func:`paired_bootstrap_diff`)."""
    from scipy.stats import t

    alpha = 1.0 - confidence
    return math.sqrt(n / (n - 1)) * float(t.ppf(1.0 - alpha / 2.0, n - 1)) / float(norm.ppf(1.0 - alpha / 2.0))


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


def _cluster_codes(clusters: Sequence[Hashable] | None, n: int) -> np.ndarray | None:
    """0..G-1 per item for the clusters' labels; None when there are none or every label is distinct (then the
    cluster bootstrap is the item bootstrap, and the item bootstrap's own draws are kept)."""
    if clusters is None:
        return None
    labels = list(clusters)
    if len(labels) != n:
        raise ValueError(f"clusters must hold one label per value: {len(labels)} labels for {n} values")
    index: dict[Hashable, int] = {}
    codes = np.array([index.setdefault(label, len(index)) for label in labels], dtype=np.int64)
    return None if len(index) == n else codes


def _cluster_means(x: np.ndarray, codes: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """Means of B cluster-bootstrap resamples (Davison & Hinkley 1997, *Bootstrap Methods and their Application*,
    section 3.8, the first stage only): draw G of the G clusters with replacement and take the mean over every
    item of the drawn clusters, sum(S_g*) / sum(c_g*) with S_g a cluster's sum and c_g its count. Windows cut
    from one song are not independent draws; resampling them one by one makes the interval too narrow."""
    groups = int(codes.max()) + 1
    sums = np.bincount(codes, weights=x, minlength=groups)
    counts = np.bincount(codes, minlength=groups).astype(np.float64)
    rng = np.random.default_rng(seed)
    return np.concatenate([sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
                           for idx in _resample_indices(rng, groups, n_resamples)])


def _cluster_method(what: str, groups: int, n_resamples: int, seed: int, expanded: bool = False) -> str:
    kind = "expanded percentile cluster bootstrap" if expanded else "cluster bootstrap"
    return (f"{kind} of the {what} over {groups} songs (the windows of a song resampled together), "
            f"{n_resamples} resamples, seed {seed}")


def _percentile_interval(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    low, high = np.quantile(stats, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def _method(what: str, n_resamples: int, seed: int, expanded: bool = False) -> str:
    kind = "expanded percentile bootstrap" if expanded else "percentile bootstrap"
    return f"{kind} of the {what}, {n_resamples} resamples, seed {seed}"


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



@dataclass(frozen=True)
class SetDraws:
    """The resamples every set statistic of one score pass shares, so that differences between models are paired.

    ``eval_rows[b]`` are the indices of bootstrap resample b into the items every model was scored on (the same
    rows for every model: a paired design), ``reference_rows[b]`` those into the reference clips, drawn
    independently (a two-sample bootstrap: the reference is a sample too). ``reference_rows`` is None when the
    reference is held fixed (a published statistics file).
    """

    eval_rows: np.ndarray  # (B, n) int64
    reference_rows: np.ndarray | None  # (B, m) int64, or None: reference fixed
    seed: int
    songs: int | None = None  # eval items resampled by song (:func:`set_draws` ``clusters``): how many songs

    @property
    def n_resamples(self) -> int:
        return int(self.eval_rows.shape[0])

    @property
    def two_sample(self) -> bool:
        return self.reference_rows is not None

    def describe(self) -> str:
        ref = ("reference clips resampled independently (two-sample)" if self.two_sample
               else "reference held fixed (a statistics file has no clips to resample)")
        by = (f"by song ({self.songs} songs: a song's windows drawn together, each resample cut to the n items)"
              if self.songs is not None else "")
        return (f"bootstrap over clips, {self.n_resamples} resamples, seed {self.seed}; eval items resampled "
                f"{by + ' ' if by else ''}with the same rows for every model (paired); {ref}")


def set_draws(n_eval: int, n_reference: int | None, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
              clusters: Sequence[Hashable] | None = None) -> SetDraws:
    """Draw the shared resamples: eval rows from ``np.random.default_rng([seed, 0])``, reference rows from
    ``[seed, 1]`` (independent streams: adding a reference never changes the eval rows).

    ``clusters`` (one label per eval item: its song) draws songs instead of items: songs with replacement, all of
    each drawn song's items in turn, until n items are drawn; the last song drawn is cut to fit, so that every
    resample has the n rows a set statistic's bias depends on (a cluster bootstrap at fixed size). None, or every
    label distinct: the item draws."""
    if n_eval < 1 or (n_reference is not None and n_reference < 1):
        raise ValueError(f"need at least one eval item and reference clip, got {n_eval} and {n_reference}")
    _check_args(n_resamples, CONFIDENCE)
    codes = _cluster_codes(clusters, n_eval)
    rng = np.random.default_rng([seed, 0])
    if codes is None:
        eval_rows, songs = rng.integers(0, n_eval, size=(n_resamples, n_eval)), None
    else:
        songs = int(codes.max()) + 1
        members = [np.flatnonzero(codes == g) for g in range(songs)]
        eval_rows = np.empty((n_resamples, n_eval), dtype=np.int64)
        for b in range(n_resamples):
            drawn = rng.integers(0, songs, size=n_eval)  # n songs always hold at least n items
            eval_rows[b] = np.concatenate([members[g] for g in drawn])[:n_eval]
    reference_rows = (None if n_reference is None else
                      np.random.default_rng([seed, 1]).integers(0, n_reference, size=(n_resamples, n_reference)))
    return SetDraws(eval_rows, reference_rows, seed, songs)


@dataclass(frozen=True)
class SetEstimate:
    """A set-level statistic with its standard bootstrap interval, SE and the bootstrap's bias estimate."""

    value: float
    low: float
    high: float
    n: int  # clips
    se: float
    bootstrap_bias: float  # mean of the resampled values minus ``value``
    method: str

    def to_dict(self) -> dict[str, float | int | str]:
        return {"value": self.value, "ci_low": self.low, "ci_high": self.high, "n": self.n, "se": self.se,
                "bootstrap_bias": self.bootstrap_bias, "method": self.method}


def standard_interval(value: float, resampled: np.ndarray, n: int, what: str,
                      confidence: float = CONFIDENCE) -> SetEstimate:
    """value +- z * sd(resampled) (Efron & Tibshirani 1993, section 13.3), with the bootstrap bias beside it."""
    if n < 2 or len(resampled) < 2:
        return SetEstimate(value, math.nan, math.nan, n, math.nan, math.nan, f"{what}: n={n} is too few")
    undefined = int(np.count_nonzero(~np.isfinite(resampled)))
    if undefined:  # e.g. KAD's within-set U-statistic on a resample that drew one item n times: no SE to give
        return SetEstimate(float(value), math.nan, math.nan, n, math.nan, math.nan,
                           f"{what} (B={len(resampled)}); no interval: {undefined} of {len(resampled)} resamples "
                           f"undefined (a resample of {n} items drew too few distinct ones)")
    se = float(np.std(resampled, ddof=1))
    z = float(norm.ppf(0.5 + confidence / 2.0))
    value = float(value)
    return SetEstimate(value, value - z * se, value + z * se, n, se, float(np.mean(resampled)) - value,
                       f"{what} (B={len(resampled)}); interval: value +- {z:.2f} bootstrap SE")


@dataclass(frozen=True)
class ResampledStatistic:
    """A set statistic on the full data and on every resample of one :class:`SetDraws` (row b of the draws gives
    ``resampled[b]``), so two statistics over the same draws can be differenced resample by resample."""

    value: float
    resampled: np.ndarray  # (B,)
    n: int  # eval clips (items)
    what: str  # e.g. "FAD (vggish), frames pooled"

    def estimate(self, confidence: float = CONFIDENCE, method: str = "") -> SetEstimate:
        return standard_interval(self.value, self.resampled, self.n, method or self.what, confidence)


def paired_set_difference(a: ResampledStatistic, b: ResampledStatistic,
                          confidence: float = CONFIDENCE) -> tuple[SetEstimate, float]:
    """a - b for two set statistics over the same draws, with the standard interval and a two-sided p-value.

    d*_b = a*_b - b*_b on each shared resample; the interval is d +- z sd(d*) (Efron & Tibshirani 1993, 13.3) and
    p = (1 + #{|d*_b - d| >= |d|}) / (B + 1), the bootstrap distribution moved to H0: E[d] = 0 (as in
    :func:`paired_bootstrap_diff`). Sharing the rows is what pairs them: each resample's sampling noise, in the
    eval items and the reference alike, enters both statistics and cancels in the difference.
    """
    if a.resampled.shape != b.resampled.shape:
        raise ValueError(f"the two statistics were not resampled with the same draws: {a.resampled.shape} and "
                         f"{b.resampled.shape}")
    if a.n != b.n:
        raise ValueError(f"paired statistics must cover the same items, got n={a.n} and n={b.n}")
    d = a.value - b.value
    dstar = a.resampled - b.resampled
    est = standard_interval(d, dstar, a.n, f"paired difference ({a.what}) - ({b.what}) over shared resamples",
                            confidence)
    if a.n < 2 or dstar.size < 2 or not np.all(np.isfinite(dstar)):  # an undefined resample would count as a miss
        return est, math.nan
    p = (1 + int(np.count_nonzero(np.abs(dstar - d) >= abs(d)))) / (dstar.size + 1)
    return est, p
