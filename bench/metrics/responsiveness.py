"""Does a model hear its vocal? The responsiveness probe's math: arrays in, numbers and a verdict out. No I/O.

The probe (:mod:`bench.probe`) generates, for item i with vocal v_i and seed s_i: y_i (its own vocal), y'_i (the
vocal of item (i + 1) mod N, same seed and prompt: a cyclic derangement), y0_i (a silent vocal) and yB_i (its own
vocal, another seed). From those:

- **Output change** (:func:`log_spectral_distance`): D(y_i, y'_i), the distance a vocal swap makes, read against
  D(y_i, yB_i), the distance a seed change makes, and D(y_i, y0_i) for silence.

  D is a multi-resolution log-spectral distance in dB. Per resolution n (``RESOLUTIONS`` = 512, 1024, 2048
  samples at the outputs' own rate; Hann window, hop n/4, frames centred by n/2 zeros each side), with power
  spectrograms P and Q of the two mono mixdowns over their common length,

      LSD_n = (1/T) sum_t sqrt( (1/K) sum_k (10 log10((P_tk + e) / (Q_tk + e)))^2 ),

  the frame-wise RMS of the dB difference averaged over frames (the log-spectral distance of Gray and Markel
  1976, IEEE Trans. ASSP 24(5), used per frame as in speech enhancement), with a floor e = 1e-8 max(P, Q)
  (``FLOOR_DB`` = -80 dB below the louder spectrogram's peak) so that near-silent bins do not dominate.
  D = mean over the resolutions. D >= 0, symmetric, 0 for identical audio, about 20 log10(g) dB for a gain g.

- **Responsiveness** (:func:`responsiveness`): d_i = A(v_i, y_i) - A(v_i, y'_i) with A a per-clip adherence metric
  (the probe uses chroma agreement, :mod:`bench.metrics.adherence`): how much better an output fits the vocal it was
  made for than an output made for another vocal, with the seed and prompt held fixed. Mean over items with a
  Student-t 95% interval, mean(d) +- t_{0.975, n-1} s / sqrt(n) (exact for normal d_i; the percentile bootstrap
  of :mod:`bench.bootstrap` covers only about 90% at the probe's n = 10, so it would call "follows" too often).

- **Verdict** (:func:`verdict`), from the weights, whether every swapped output equals its true one, and the
  interval:

  ========================================  ===================================================================
  ``does not respond to its vocal``         every swapped output is identical to the true one (any weights), or
                                            pretrained weights and the interval includes 0
  ``follows its vocal``                     pretrained weights and the interval lies above 0
  ``responds against its vocal``            pretrained weights and the interval lies below 0: its outputs fit
                                            another item's vocal better than their own (misrouted or misaligned
                                            conditioning); a failure, like "does not respond"
  ``plumbing only``                         random weights and the outputs differ: the vocal reaches the output,
                                            which is all random weights can show
  ``not probed``                            fewer than 2 usable items, or weights of another kind (files)
  ========================================  ===================================================================

  The null the interval guards against is a model whose output does not depend on its vocal: then y_i and y'_i
  are exchangeable and d_i is symmetric about 0, where the t interval's one-sided rate of "follows" is 2.5% for
  normal d_i and at most that for heavier tails (tests/test_probe.py simulates normal, t(3), Laplace and two-point
  nulls at n = 10 and checks <= 5%). A skewed d_i with mean 0 is outside that null (the output does depend on the
  vocal); there the rate is not controlled: lognormal(0, 1) - e^0.5 at n = 10 gives 15% on the long tail's
  opposite side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps

from bench.metrics.arrays import mono_samples
from bench.stats import CONFIDENCE, Estimate

RESOLUTIONS = (512, 1024, 2048)  # STFT sizes in samples; hop n // 4
FLOOR_DB = -80.0  # spectral floor relative to the louder spectrogram's peak power

FOLLOWS = "follows its vocal"
NO_RESPONSE = "does not respond to its vocal"
AGAINST = "responds against its vocal"
PLUMBING = "plumbing only"
NOT_PROBED = "not probed"
VERDICTS = (FOLLOWS, NO_RESPONSE, AGAINST, PLUMBING, NOT_PROBED)
PASSING = (FOLLOWS, PLUMBING)  # the verdicts that are not a warning


# -- output change -----------------------------------------------------------------------------------------------


def _mono(audio: ArrayLike, name: str) -> np.ndarray:
    return mono_samples(audio, name)


def power_spectrogram(x: np.ndarray, n_fft: int) -> np.ndarray:
    """(T, n_fft/2 + 1) |STFT|^2 of mono ``x``: Hann window, hop n_fft/4, n_fft/2 zeros padded at each end."""
    if n_fft < 4:
        raise ValueError(f"n_fft must be >= 4, got {n_fft}")
    hop = n_fft // 4
    padded = np.pad(x, (n_fft // 2, n_fft // 2 + (-(x.size) % hop)))
    if padded.size < n_fft:
        padded = np.pad(padded, (0, n_fft - padded.size))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    return np.abs(np.fft.rfft(frames * np.hanning(n_fft + 1)[:-1], axis=1)) ** 2


def _lsd(p: np.ndarray, q: np.ndarray) -> float:
    peak = max(float(p.max()), float(q.max()))
    if peak <= 0.0:
        return 0.0  # both digitally silent
    floor = peak * 10 ** (FLOOR_DB / 10)
    db = 10.0 * np.log10((p + floor) / (q + floor))
    return float(np.mean(np.sqrt(np.mean(db**2, axis=1))))


def log_spectral_distance(a: ArrayLike, b: ArrayLike, resolutions: Sequence[int] = RESOLUTIONS) -> float:
    """Multi-resolution log-spectral distance in dB between two clips at one sample rate (module docstring).

    Args:
        a, b: (samples,) or (channels, samples); mixed to mono, compared over their common length.
        resolutions: STFT sizes in samples.

    Returns:
        D >= 0 (0 for identical audio).

    Raises:
        ValueError: empty, NaN or wrongly shaped input, or no resolution.
    """
    x, y = _mono(a, "a"), _mono(b, "b")
    if not resolutions:
        raise ValueError("no resolution given")
    n = min(x.size, y.size)
    x, y = x[:n], y[:n]
    return float(np.mean([_lsd(power_spectrogram(x, r), power_spectrogram(y, r)) for r in resolutions]))


# -- responsiveness ----------------------------------------------------------------------------------------------


def t_mean_ci(values: ArrayLike, confidence: float = CONFIDENCE) -> Estimate:
    """Mean of the finite ``values`` with a Student-t interval, mean +- t_{(1+c)/2, n-1} s / sqrt(n) (s with
    ddof = 1). NaN values are dropped (n counts the rest); n < 2 gives a NaN interval that says why."""
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    n = x.size
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, "no data")
    mean = float(x.mean())
    if n == 1:
        return Estimate(mean, math.nan, math.nan, 1, "Student t: n=1 is too few for an interval")
    half = float(sps.t.ppf((1 + confidence) / 2, n - 1)) * float(x.std(ddof=1)) / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n, f"Student t interval of the mean, {confidence:.0%}")


def responsiveness(own: ArrayLike, swapped: ArrayLike, confidence: float = CONFIDENCE) -> Estimate:
    """Mean of d_i = own_i - swapped_i, the paired adherence difference (module docstring), with a t interval.

    Args:
        own: A(v_i, y_i) per item.
        swapped: A(v_i, y'_i) per item, same order; a pair with a NaN on either side is dropped.
    """
    a = np.asarray(own, dtype=np.float64)
    b = np.asarray(swapped, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"own and swapped must be 1-D and of one length, got shapes {a.shape} and {b.shape}")
    est = t_mean_ci(a - b, confidence)
    return Estimate(est.value, est.low, est.high, est.n, f"paired d = own - swapped; {est.method}")


# -- the verdict ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    label: str  # one of VERDICTS
    reason: str  # one sentence: what decided it

    @property
    def passing(self) -> bool:
        return self.label in PASSING


def verdict(weights: str, identical: Sequence[bool], estimate: Estimate | None, min_items: int = 2) -> Verdict:
    """The probe's verdict (module docstring's table).

    Args:
        weights: the model's weights kind (pretrained | random | files | ...).
        identical: per probed item, whether the swapped output equals the true one (sample for sample, or no
            further from it than a rerun of the same request: :func:`bench.probe.unchanged`).
        estimate: :func:`responsiveness` (pretrained weights; None when not computed).
        min_items: fewer probed items than this give "not probed".
    """
    if weights not in ("pretrained", "random"):
        return Verdict(NOT_PROBED, f"weights of kind {weights!r}: nothing to generate with another vocal")
    if len(identical) < 1:
        return Verdict(NOT_PROBED, "no item could be probed")
    if all(identical):
        return Verdict(NO_RESPONSE, f"the outputs for another item's vocal are identical to the true ones "
                                    f"({len(identical)} of {len(identical)} items)")
    if weights == "random":
        differ = sum(1 for i in identical if not i)
        return Verdict(PLUMBING, f"random weights: the output changes with the vocal ({differ} of {len(identical)} "
                                 "items differ); whether it follows the vocal needs trained weights")
    if estimate is None or estimate.n < min_items or not (math.isfinite(estimate.low) and
                                                           math.isfinite(estimate.high)):
        n = 0 if estimate is None else estimate.n
        return Verdict(NOT_PROBED, f"responsiveness needs >= {min_items} items with an adherence score, got {n}")
    ci = f"mean d = {estimate.value:.4f}, 95% CI [{estimate.low:.4f}, {estimate.high:.4f}], n = {estimate.n}"
    if estimate.low > 0:
        return Verdict(FOLLOWS, f"its outputs fit their own vocal better than another item's ({ci})")
    if estimate.high < 0:
        return Verdict(AGAINST, f"its outputs fit another item's vocal better than their own ({ci}): "
                                "misrouted or misaligned conditioning?")
    return Verdict(NO_RESPONSE, f"no adherence difference between its own and another item's vocal ({ci})")
