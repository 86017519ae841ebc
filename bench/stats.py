"""Pure statistics for the harness: arrays in, numbers out. No I/O, no models.

- :func:`median_ci`: the median with a distribution-free 95% confidence interval from order statistics
  (the binomial method; Conover, *Practical Nonparametric Statistics*, section 3.2). Timing distributions are
  skewed (a first-call stall, a background job), so a median and an interval that assumes no shape fit them.
- :func:`extrapolate_steps`: scale a run that did k of N units (diffusion steps, autoregressive frames) up to N.
- :func:`within_range`: an interval intersected with a bounded metric's range (same coverage, never wider).
- :func:`robust_z`: median/MAD z-scores for flagging outlying clips (Iglewicz & Hoaglin 1993).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as sps

CONFIDENCE = 0.95
# what an estimate's method says when :func:`within_range` cut its interval (the report reads it back)
RANGE_CLIPPED = "interval clipped to the metric's range"


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval, n and the method that made the interval."""

    value: float
    low: float
    high: float
    n: int
    method: str
    coverage: float | None = None  # exact coverage of the interval when the method gives one

    def to_dict(self) -> dict[str, float | int | str | None]:
        return {"value": self.value, "ci_low": self.low, "ci_high": self.high, "n": self.n, "method": self.method,
                "coverage": self.coverage}


def within_range(est: Estimate, low: float | None, high: float | None) -> Estimate:
    """``est`` with its interval intersected with the parameter space [low, high] (None: unbounded on that side).

    A Student's t interval at small n can reach past a bounded metric's range (a key agreement of [0.847, 1.036]
    where 1 is the most there is). The true mean lies in the range, so the intersection contains it whenever the
    interval does: the coverage is the same and the interval never wider. The method says when it was clipped;
    a NaN interval (too few values) stays as it is."""
    if low is not None and high is not None and low > high:
        raise ValueError(f"the range's low end {low} is above its high end {high}")
    ci_low = est.low if low is None or not est.low < low else low
    ci_high = est.high if high is None or not est.high > high else high
    if (ci_low, ci_high) == (est.low, est.high):
        return est
    return replace(est, low=ci_low, high=ci_high,
                   method=f"{est.method}; {RANGE_CLIPPED} [{_bound(low)}, {_bound(high)}]")


def _bound(x: float | None) -> str:
    return "unbounded" if x is None else f"{x:g}"


def median_ci_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int, float] | None:
    """1-based ranks (r, s) of the narrowest symmetric order-statistic interval [x_(r), x_(s)] whose coverage of
    the population median is at least ``confidence``, with that exact coverage: P(r <= B < s), B ~ Bin(n, 1/2).

    None when even [x_(1), x_(n)] covers less (n <= 5 at 95%: 1 - 2 / 2**n < 0.95).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    best = None
    for r in range(1, n // 2 + 1):
        s = n + 1 - r
        coverage = float(sps.binom.cdf(s - 1, n, 0.5) - sps.binom.cdf(r - 1, n, 0.5))
        if coverage >= confidence:
            best = (r, s, coverage)
        else:
            break
    return best


def median_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """Median of ``values`` with a distribution-free CI; with too few values the interval is NaN and says why."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, "no data")
    med = float(np.median(x))
    ranks = median_ci_ranks(n, confidence)
    if ranks is None:
        return Estimate(med, math.nan, math.nan, n, f"order statistics: n={n} is too few for a "
                        f"{confidence:.0%} interval (needs n >= 6)")
    r, s, coverage = ranks
    return Estimate(med, float(x[r - 1]), float(x[s - 1]), n, f"order statistics x({r})..x({s})", coverage)


def extrapolate_steps(measured_s: float, step_times_s: Sequence[float], done: int, total: int) -> float:
    """The full time is the measured run (k units plus everything fixed: text encoding, the codec) plus (N - k)
    times the median unit time.

    Exact in expectation for diffusion steps, which all cost the same. For autoregressive frames it is a lower
    bound: attention over the growing cache makes later frames dearer, and the first k frames cannot measure that
    growth (a slope fitted to 20-odd noisy frame times and extrapolated 100x gave negative totals here).
    """
    _check_units(done, total)
    if done == total:
        return measured_s
    if len(step_times_s) == 0:
        raise ValueError("no step times to extrapolate from")
    return measured_s + (total - done) * float(np.median(step_times_s))


def extrapolate_growing_units(measured_s: float, unit_times_s: Sequence[float], done: int, total: int,
                              first_unit_s: float, last_unit_s: float) -> float:
    """Autoregressive frames whose cost grows with the cache: the measured run plus the N - k frames left, each
    the median measured frame plus the growth of one bare decoder step at its position,

        T = T_k + sum_{p=k}^{N-1} (m + g (p - 1)),   g = (d(N - 1) - d(1)) / (N - 2),

    with d(p) one decoder step timed with p positions already cached (attention over the cache is linear in p).
    The early frames fix the per-frame overhead (sampling, logits processors) that d leaves out; d fixes the growth
    that k early frames cannot see. :func:`extrapolate_steps` is the special case g = 0 (a lower bound here).
    Raises ValueError for d(N - 1) < d(1): timing noise, which a negative g would turn into any time at all."""
    _check_units(done, total)
    if done == total:
        return measured_s
    if len(unit_times_s) == 0:
        raise ValueError("no unit times to extrapolate from")
    if not last_unit_s >= first_unit_s:  # a negative g could make T negative: noise, never a shrinking cache
        raise ValueError(f"the last position's step ({last_unit_s} s) is faster than the first's ({first_unit_s} s)")
    growth = (last_unit_s - first_unit_s) / max(total - 2, 1)
    # sum over p = done .. total - 1 of (p - 1) = sum over q = done - 1 .. total - 2 of q
    positions = ((total - 2) * (total - 1) - (done - 2) * (done - 1)) / 2
    return measured_s + (total - done) * float(np.median(unit_times_s)) + growth * positions


def extrapolate_depth(seconds_at_depth: float, call_s: Mapping[int, float], calls_per_step: float, total: int,
                      layers: int, full_layers: int) -> tuple[float, float]:
    """Scale a whole-generation time measured with the denoiser cut to ``layers`` of its ``full_layers`` identical
    blocks up to full depth, as ``(seconds, seconds per block per call)``:

        T(L) = T(l) + N * c * (L - l) * s,   s = (f(l2) - f(l1)) / (l2 - l1)

    with N steps, c denoiser calls per step and f(d) one call's time with d blocks (``call_s``: two depths or
    more; s is the least-squares slope). Everything outside the block stack (the text and condition encoders, the
    codec, embeddings and the sampler) is in T(l) already, measured at its real size; a call's cost is linear in
    its block count because the blocks are identical. Raises ValueError when the slope is not positive (timing
    noise larger than a block's cost: time more repeats)."""
    if len(call_s) < 2:
        raise ValueError("need call times at two depths or more")
    if not 0 < layers <= full_layers or total < 1 or calls_per_step <= 0:
        raise ValueError(f"need 0 < layers <= full_layers, total >= 1, calls_per_step > 0; got {layers}, "
                         f"{full_layers}, {total}, {calls_per_step}")
    depths = np.array(sorted(call_s), dtype=float)
    times = np.array([call_s[int(d)] for d in depths], dtype=float)
    slope = float(np.polyfit(depths, times, 1)[0])
    # positive beyond the fit's rounding: equal call times fit a slope of +-1e-17 s, its sign set by the CPU's
    # floating-point path (positive on an AVX2-only EPYC, which scaled such a model up as if measured)
    if not slope * (depths[-1] - depths[0]) > 1e-9 * float(np.max(np.abs(times))):
        raise ValueError(f"one block's cost came out {slope:.3g} s (call times {dict(call_s)}): timing noise is "
                         "larger than a block's cost")
    return seconds_at_depth + total * calls_per_step * (full_layers - layers) * slope, slope


def _check_units(done: int, total: int) -> None:
    if not 0 < done <= total:
        raise ValueError(f"need 0 < done <= total, got done={done}, total={total}")


# Iglewicz & Hoaglin's recommended cut for the modified z-score: |z| > 3.5 marks a potential outlier.
OUTLIER_Z = 3.5
_MAD_TO_SD = 1.4826  # 1 / Phi^-1(3/4): makes the MAD estimate the SD of a normal sample
_MEAN_AD_TO_SD = 1.2533  # sqrt(pi / 2): the same for the mean absolute deviation


def robust_z(values: Sequence[float]) -> np.ndarray:
    """Robust ("modified") z-scores ``(x - median) / (1.4826 * MAD)``, MAD the median absolute deviation from the
    median (B. Iglewicz and D. C. Hoaglin, *How to Detect and Handle Outliers*, ASQC Quality Press, 1993). Unlike
    mean/SD z-scores, one wild clip cannot inflate the scale and hide itself; |z| > :data:`OUTLIER_Z` flags it.

    When more than half the values tie, MAD is 0; the scale then falls back to 1.2533 times the mean absolute
    deviation from the median, and if that is 0 too (all values equal) every z is 0. Non-finite inputs give NaN
    and take no part in the centre or scale.
    """
    x = np.asarray(values, dtype=np.float64)
    z = np.full(x.shape, np.nan)
    finite = np.isfinite(x)
    if not finite.any():
        return z
    deviation = np.abs(x[finite] - np.median(x[finite]))
    mad = float(np.median(deviation))
    if mad > 0:
        scale = _MAD_TO_SD * mad
    else:
        scale = _MEAN_AD_TO_SD * float(np.mean(deviation))
    z[finite] = 0.0 if scale == 0 else (x[finite] - np.median(x[finite])) / scale
    return z


def holm_adjust(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979, *Scand. J. Statist.* 6, 65-70), in the input's order.

    With the m finite p-values sorted ascending, p_(1) <= ... <= p_(m), the adjusted value of the k-th smallest is
    max_{j <= k} min(1, (m - j + 1) p_(j)). Rejecting every adjusted p <= alpha controls the family-wise error rate
    at alpha under any dependence between the tests. NaN entries (no test) stay NaN and do not count towards m.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D, got shape {p.shape}")
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    if finite.size == 0:
        return out
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    order = finite[np.argsort(p[finite], kind="stable")]
    m = order.size
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(stepped)
    return out


# -- our per-clip mean against a published mean of a few clips --------------------------------------------------------


def paper_difference_bound(sd: float | np.ndarray, n_ours: int, n_paper: int, confidence: float = CONFIDENCE
                           ) -> np.ndarray:
    """Half-width of the ``confidence`` interval of (our mean - the paper's mean) when both are means of clips from
    one population, with our per-clip SD standing in for the paper's (it printed none):

        bound = t_{(1 + confidence) / 2, n_ours - 1} * sd * sqrt(1 / n_ours + 1 / n_paper).

    Under that null, with normal clips, (ours - paper) / (sd * sqrt(1/n_ours + 1/n_paper)) is exactly Student's t
    with n_ours - 1 degrees of freedom: the difference is N(0, s^2 (1/n_ours + 1/n_paper)) and our sample variance,
    the only variance estimated, is independent of it with n_ours - 1 degrees of freedom (the pooled two-sample t
    test with the paper's variance term borrowed from ours; Welch's correction has nothing to correct, since the
    paper gives no variance of its own). The paper's own sampling error, sd^2 / n_paper, dominates at n_paper = 10.

    Args:
        sd: our per-clip sample SD (ddof=1); any shape.
        n_ours: clips behind our mean (>= 2).
        n_paper: clips behind the paper's mean (>= 1).
        confidence: two-sided, e.g. 0.95.

    Returns:
        the bound, shaped like ``sd``.
    """
    if n_ours < 2:
        raise ValueError(f"n_ours must be >= 2 for a per-clip SD, got {n_ours}")
    if n_paper < 1:
        raise ValueError(f"n_paper must be >= 1, got {n_paper}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    t = float(sps.t.ppf((1.0 + confidence) / 2.0, n_ours - 1))
    return t * np.asarray(sd, dtype=np.float64) * math.sqrt(1.0 / n_ours + 1.0 / n_paper)


def paper_differs(ours: float | np.ndarray, sd: float | np.ndarray, n_ours: int, paper: float | np.ndarray,
                  n_paper: int, confidence: float = CONFIDENCE) -> np.ndarray:
    """True where |ours - paper| exceeds :func:`paper_difference_bound`: the two means are unlikely to come from
    one population of clips (a two-sided test at level 1 - confidence). Shapes broadcast."""
    bound = paper_difference_bound(sd, n_ours, n_paper, confidence)
    return np.abs(np.asarray(ours, dtype=np.float64) - np.asarray(paper, dtype=np.float64)) > bound


@dataclass(frozen=True)
class PaperComparison:
    """Our mean against the paper's: the difference, the bound it is held to and the verdict, or why there is
    none (``bound`` NaN, ``flagged`` False)."""

    difference: float  # ours - paper
    bound: float
    flagged: bool
    n_paper: int | None
    method: str


def compare_with_paper(ours: float, sd: float | None, n_ours: int, paper: float, n_paper: int | None,
                       confidence: float = CONFIDENCE) -> PaperComparison:
    """:func:`paper_differs` for one cell, saying so instead of flagging when the paper gives no n, or our mean has
    no per-clip SD (fewer than 2 clips, or a scores.json from before the SD was stored)."""
    difference = float(ours) - float(paper)
    if n_paper is None:
        return PaperComparison(difference, math.nan, False, None, "not compared: the paper gives no n")
    if sd is None or not math.isfinite(sd) or n_ours < 2:
        return PaperComparison(difference, math.nan, False, n_paper,
                               "not compared: no per-clip SD of ours (needs >= 2 clips; rescore an older run)")
    bound = float(paper_difference_bound(sd, n_ours, n_paper, confidence))
    return PaperComparison(difference, bound, abs(difference) > bound, n_paper,
                           f"|ours - paper| > t(n_ours-1) * SD * sqrt(1/n_ours + 1/n_paper), "
                           f"n_ours={n_ours}, n_paper={n_paper}, {confidence:.0%}")
