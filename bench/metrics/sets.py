"""FAD and KAD of a set of clips against a reference, with a bootstrap over clips: arrays in, estimates out.

An embedder turns each clip into several frame embeddings (VGGish: one per 0.96 s; CLAP: one per 10 s window).
FAD pools every frame of every clip into one Gaussian (Kilgour et al. 2019), so the unit that varies between
datasets, and the unit the bootstrap must resample, is the clip, not the frame: frames of one clip are strongly
correlated, and resampling them as if independent would make the interval far too narrow.

Resampling clips B = 1000 times is made cheap by per-clip sufficient statistics:

- FAD: per clip the frame count f_i, the frame sum s_i and the sum of outer products Q_i. A resample with clip
  multiplicities w has N = sum w_i f_i frames, mean mu = sum w_i s_i / N and covariance
  (sum w_i Q_i - N mu mu^T) / (N - 1), exactly what pooling the frames would give. When the pooled frames are
  fewer than the dimension (e.g. 100 clip-level 512-d CLAP embeddings), the trace term is taken from the small
  N x N Gram matrix instead: with centred rows X and A = S_ref^{1/2}, the non-zero eigenvalues of
  A S A = (XA)^T (XA) / (N-1) are those of (XA)(XA)^T / (N-1).
- KAD: the kernel sums between and within clips, K_ee[i, j] = sum_{a in i, b in j} k(x_a, x_b) and
  K_er[i] = sum_{a in i} sum_b k(x_a, y_b), computed once; a resample is then two quadratic forms in w.
  A clip drawn twice contributes pairs of identical frames (k = 1) to the within-set term, which is the
  documented upward bias of any with-replacement bootstrap of a set statistic (see bench.bootstrap).

The interval. A resample repeats clips, which lowers the effective n, and FAD grows as n falls (its bias is about
b/n, see FAD-inf), so the bootstrap distribution of FAD sits above the full-set value, often entirely: a
percentile interval would then exclude the estimate itself. We therefore report the standard bootstrap interval
(Efron & Tibshirani 1993, section 13.3): the full-set value +- z * SE, with SE the standard deviation of the B
resampled values, and the bootstrap's own bias estimate, mean(resampled) - value, beside it. The small-n bias of
FAD itself is reported separately, by FAD-inf; KAD's estimator is unbiased.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm

from bench.bootstrap import DEFAULT_RESAMPLES
from bench.metrics.frechet import _check_stats, _clip_small, _frechet_from_root, _sqrt_psd
from bench.metrics.kernel import BLOCK_ELEMENTS, median_bandwidth
from bench.stats import CONFIDENCE

SUFFICIENT_STATS_BYTES = 1 << 29  # per-clip outer-product sums held at once (n * D^2 float64): 512 MiB


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
    se = float(np.std(resampled, ddof=1))
    z = float(norm.ppf(0.5 + confidence / 2.0))
    value = float(value)
    return SetEstimate(value, value - z * se, value + z * se, n, se, float(np.mean(resampled)) - value,
                       f"{what} (B={len(resampled)}); interval: value +- {z:.2f} bootstrap SE")


def _clip_list(clips: Sequence[ArrayLike], name: str) -> list[np.ndarray]:
    out = []
    for i, c in enumerate(clips):
        a = np.asarray(c, dtype=np.float64)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2 or a.shape[0] < 1:
            raise ValueError(f"{name}[{i}]: expected (frames, D) embeddings, got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name}[{i}]: embeddings hold NaN or infinite values")
        out.append(a)
    if not out:
        raise ValueError(f"{name}: no clips")
    dims = {a.shape[1] for a in out}
    if len(dims) != 1:
        raise ValueError(f"{name}: clips differ in embedding dimension {sorted(dims)}")
    return out


class FrechetToReference:
    """The Frechet distance of many eval sets to one fixed reference Gaussian (Heusel et al. 2017, eq. 6).

    S_ref^{1/2} and tr(S_ref) are computed once; each eval set then costs one symmetric eigendecomposition of
    size min(N, D).
    """

    def __init__(self, mu_ref: ArrayLike, sigma_ref: ArrayLike) -> None:
        self.mu_ref, sigma = _check_stats(mu_ref, sigma_ref, "_ref")
        self.root_ref = _sqrt_psd(sigma)
        self.trace_ref = float(np.trace(sigma))
        self.dim = self.mu_ref.shape[0]

    def from_moments(self, n: float, total: np.ndarray, outer: np.ndarray) -> float:
        """FAD of a pooled set given its size N, frame sum and sum of outer products (sufficient statistics)."""
        mu = total / n
        sigma = (outer - n * np.outer(mu, mu)) / (n - 1)
        return _frechet_from_root(self.mu_ref, self.root_ref, self.trace_ref, mu, (sigma + sigma.T) / 2.0)

    def from_rows(self, x: np.ndarray) -> float:
        """FAD of the rows of ``x`` (N, D); the N x N Gram route when N < D."""
        n = x.shape[0]
        if n >= self.dim:
            return self.from_moments(n, x.sum(axis=0), x.T @ x)
        mu = x.mean(axis=0)
        xc = x - mu
        y = xc @ self.root_ref / math.sqrt(n - 1)  # (N, D): A S A = y^T y
        gram = y @ y.T
        tr_covmean = float(np.sum(np.sqrt(_clip_small(np.linalg.eigvalsh((gram + gram.T) / 2.0)))))
        diff = mu - self.mu_ref
        return float(diff @ diff + float(np.sum(xc * xc)) / (n - 1) + self.trace_ref - 2.0 * tr_covmean)


def pooled_fad(clips: Sequence[ArrayLike], mu_ref: ArrayLike, sigma_ref: ArrayLike) -> float:
    """FAD of every frame of every clip, pooled, against the reference statistics."""
    x = np.concatenate(_clip_list(clips, "clips"))
    if x.shape[0] < 2:
        raise ValueError("FAD needs at least two frame embeddings in all")
    return FrechetToReference(mu_ref, sigma_ref).from_rows(x)


def clip_bootstrap_fad(clips: Sequence[ArrayLike], mu_ref: ArrayLike, sigma_ref: ArrayLike,
                       n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                       confidence: float = CONFIDENCE) -> SetEstimate:
    """Pooled FAD with a bootstrap over clips at the set's own size n (module docstring: the interval).

    Args:
        clips: n arrays of (frames_i, D) embeddings, one per clip.
        mu_ref, sigma_ref: reference statistics (D,), (D, D).
        n_resamples: B; seed: seeds ``np.random.default_rng``; confidence: of the interval.

    Returns:
        :class:`SetEstimate` of the full set's FAD.
    """
    data = _clip_list(clips, "clips")
    ref = FrechetToReference(mu_ref, sigma_ref)
    if data[0].shape[1] != ref.dim:
        raise ValueError(f"clips have D={data[0].shape[1]} but the reference statistics have D={ref.dim}")
    n, d = len(data), ref.dim
    x = np.concatenate(data)
    value = ref.from_rows(x)
    if n < 2:
        return standard_interval(value, np.empty(0), n, "clip bootstrap")
    rng = np.random.default_rng(seed)
    counts = np.array([a.shape[0] for a in data], dtype=np.int64)
    stats = np.empty(n_resamples)
    if x.shape[0] < d:
        # few frames: everything from two Gram matrices of the rows, computed once
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        z = (x - ref.mu_ref) @ ref.root_ref  # (R, D); centring by any constant leaves A S A unchanged
        gram_z, gram_x = z @ z.T, (x - ref.mu_ref) @ (x - ref.mu_ref).T
        for b in range(n_resamples):
            rows = np.concatenate([np.arange(starts[i], starts[i] + counts[i]) for i in rng.integers(0, n, size=n)])
            stats[b] = _fad_from_grams(gram_x[np.ix_(rows, rows)], gram_z[np.ix_(rows, rows)], ref.trace_ref)
    elif n * d * d * 8 <= SUFFICIENT_STATS_BYTES:
        sums = np.stack([a.sum(axis=0) for a in data])  # (n, D)
        outers = np.stack([a.T @ a for a in data])  # (n, D, D)
        countf = counts.astype(np.float64)
        for b in range(n_resamples):
            w = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)  # the same draws
            stats[b] = ref.from_moments(float(w @ countf), w @ sums, np.tensordot(w, outers, axes=1))
    else:
        for b in range(n_resamples):
            picked = rng.integers(0, n, size=n)
            stats[b] = ref.from_rows(np.concatenate([data[i] for i in picked]))
    return standard_interval(value, stats, n, f"bootstrap over clips, frames pooled, seed {seed}", confidence)


def _fad_from_grams(gram_x: np.ndarray, gram_z: np.ndarray, trace_ref: float) -> float:
    """FAD from the Gram matrices of reference-centred rows x - mu_ref and z = (x - mu_ref) A, A = S_ref^{1/2}.

    With m = mean row of x - mu_ref and H the centring matrix: ||m||^2 = sum(G_x) / R^2, tr(S) = tr(H G_x H)/(R-1)
    and the non-zero eigenvalues of A S A are those of H G_z H / (R-1).
    """
    r = gram_x.shape[0]
    mean_sq = float(gram_x.sum()) / (r * r)
    trace_s = (float(np.trace(gram_x)) - r * mean_sq) / (r - 1)
    row_z = gram_z.mean(axis=0)
    centred = gram_z - row_z[:, None] - row_z[None, :] + row_z.mean()
    tr_covmean = float(np.sum(np.sqrt(_clip_small(np.linalg.eigvalsh((centred + centred.T) / (2.0 * (r - 1)))))))
    return mean_sq + trace_s + trace_ref - 2.0 * tr_covmean


def per_song_fad(clips: Sequence[ArrayLike], mu_ref: ArrayLike, sigma_ref: ArrayLike) -> np.ndarray:
    """Each clip's own FAD: its frames alone against the reference statistics (fadtk's per-song FAD).

    A clip with fewer frames than dimensions has a rank-deficient covariance; the eigh route handles it, but such
    values measure distance from the reference mean more than spread, and are comparable only between clips of
    equal length. A clip with one frame gets NaN (no covariance).
    """
    data = _clip_list(clips, "clips")
    ref = FrechetToReference(mu_ref, sigma_ref)
    return np.array([ref.from_rows(a) if a.shape[0] >= 2 else math.nan for a in data])


def _rbf_block_sums(x: np.ndarray, x_owner: np.ndarray, n_x: int, y: np.ndarray, y_owner: np.ndarray | None,
                    n_y: int, gamma: float) -> np.ndarray:
    """sum of k(x_a, y_b) over frames, grouped by owning clip: (n_x, n_y); y_owner None groups y as one."""
    out = np.zeros((n_x, n_y if y_owner is not None else 1))
    y_sq = np.sum(y * y, axis=1)
    rows = max(1, BLOCK_ELEMENTS // max(1, y.shape[0]))
    onehot_y = (np.eye(n_y)[y_owner] if y_owner is not None else np.ones((y.shape[0], 1)))  # (frames_y, n_y)
    for start in range(0, x.shape[0], rows):
        xb = x[start:start + rows]
        d2 = np.maximum(np.sum(xb * xb, axis=1)[:, None] + y_sq[None, :] - 2.0 * xb @ y.T, 0.0)
        k = np.exp(-gamma * d2) @ onehot_y  # (rows, n_y)
        np.add.at(out, x_owner[start:start + rows], k)
    return out


def clip_bootstrap_kad(clips: Sequence[ArrayLike], emb_ref: ArrayLike, bandwidth: float | None = None,
                       n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, scale: float = 1.0,
                       confidence: float = CONFIDENCE) -> tuple[SetEstimate, float]:
    """Unbiased KAD (Gretton et al. 2012, eq. 3) of the pooled frames, with a bootstrap CI over clips.

    Args:
        clips: n arrays of (frames_i, D) eval embeddings.
        emb_ref: (M, D) reference frame embeddings.
        bandwidth: h; None takes the median heuristic on the reference set (bench.metrics.kernel), fixed for
            every resample so the kernel never changes.
        n_resamples, seed, confidence: of the bootstrap.
        scale: multiplies MMD_u^2, as in bench.metrics.kernel.

    Returns:
        ``(estimate, bandwidth)``.
    """
    data = _clip_list(clips, "clips")
    y = np.asarray(emb_ref, dtype=np.float64)
    if y.ndim != 2 or y.shape[0] < 2 or y.shape[1] != data[0].shape[1]:
        raise ValueError(f"emb_ref must be (M >= 2, {data[0].shape[1]}), got shape {y.shape}")
    h = median_bandwidth(y, seed=seed) if bandwidth is None else float(bandwidth)
    gamma = 1.0 / (2.0 * h * h)
    n = len(data)
    x = np.concatenate(data)
    counts = np.array([a.shape[0] for a in data], dtype=np.float64)
    owner = np.repeat(np.arange(n), counts.astype(np.int64))
    centre = y.mean(axis=0)  # distances are shift-invariant; centring keeps |x|^2 + |y|^2 - 2xy accurate
    x, y = x - centre, y - centre
    k_ee = _rbf_block_sums(x, owner, n, x, owner, n, gamma)  # (n, n), diagonal blocks include a == b
    k_er = _rbf_block_sums(x, owner, n, y, None, 1, gamma)[:, 0]  # (n,)
    m_ref = y.shape[0]
    k_rr = (_rbf_block_sums(y, np.zeros(m_ref, dtype=np.int64), 1, y, None, 1, gamma)[0, 0] - m_ref) / (
        m_ref * (m_ref - 1))

    def mmd(w: np.ndarray) -> float:
        m = float(w @ counts)
        within = float(w @ k_ee @ w) - m  # drop the a == b terms (k = 1 each)
        return scale * (within / (m * (m - 1)) + k_rr - 2.0 * float(w @ k_er) / (m * m_ref))

    value = mmd(np.ones(n))
    if n < 2:
        return standard_interval(value, np.empty(0), n, "clip bootstrap"), h
    rng = np.random.default_rng(seed)
    stats = np.array([mmd(np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64))
                      for _ in range(n_resamples)])
    return standard_interval(value, stats, n, f"bootstrap over clips, frames pooled, seed {seed}", confidence), h


__all__ = ["FrechetToReference", "SetEstimate", "clip_bootstrap_fad", "clip_bootstrap_kad", "per_song_fad",
           "pooled_fad", "standard_interval"]
