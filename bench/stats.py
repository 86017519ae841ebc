"""Pure statistics for the harness: arrays in, numbers out. No I/O, no models.

- :func:`median_ci`: the median with a distribution-free 95% confidence interval from order statistics
  (the binomial method; Conover, *Practical Nonparametric Statistics*, section 3.2). Timing distributions are
  skewed (a first-call stall, a background job), so a median and an interval that assumes no shape fit them.
- :func:`extrapolate_steps`: scale a run that did k of N units (diffusion steps, autoregressive frames) up to N.
- :func:`robust_z`: median/MAD z-scores for flagging outlying clips (Iglewicz & Hoaglin 1993).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

CONFIDENCE = 0.95


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
