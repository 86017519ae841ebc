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
- KAD: the kernel block sums between and within clips (eval-eval, eval-reference, reference-reference) computed
  once; a resample is then a few quadratic forms in the clip multiplicities.

The interval. A resample repeats clips, which lowers the effective n, and FAD grows as n falls (its bias is about
b/n, see FAD-inf), so the bootstrap distribution of FAD sits above the full-set value, often entirely: a
percentile interval would then exclude the estimate itself. We therefore report the standard bootstrap interval
(Efron & Tibshirani 1993, section 13.3): the full-set value +- z * SE, with SE the standard deviation of the B
resampled values, and the bootstrap's own bias estimate, mean(resampled) - value, beside it. The small-n bias of
FAD itself is reported separately, by FAD-inf; KAD's estimator is unbiased.

All models at once, two-sample (issue 13): :func:`fad_resampled` and :func:`kad_resampled` take every model's
clips (the same items, in the same order), the reference and one :class:`bench.bootstrap.SetDraws`, and return
one :class:`bench.bootstrap.ResampledStatistic` per model. Eval rows are shared by every model (a paired design,
differences via :func:`bench.bootstrap.paired_set_difference`); the reference clips are resampled too, with their
own rows, because the reference is a sample as well: holding it fixed understates the SE (the coverage
simulation in :mod:`bench.metrics.simulate`). The loop runs over resamples outermost, so the reference's work per
resample (its covariance and its Cholesky factor) is shared by every model.

KAD here is a clip-level U-statistic (:func:`clip_kad`): within a set, the pairs of frames of one clip are left
out, because frames of one clip are dependent and their kernel values do not estimate E k(x, x') for independent
x, x' (with them the "unbiased" frame-pooled MMD^2 is biased upwards under the null). Frames of different clips
all count. With one frame per clip it is exactly the frame-level U-statistic of kadtk. (The single-model helpers
of issue 5, frame-pooled KAD and a reference held fixed, were removed: those are the statistics issue 13 found
biased and under-covering.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from bench.bootstrap import ResampledStatistic, SetDraws, SetEstimate, standard_interval
from bench.metrics.frechet import _check_stats, _clip_small, _frechet_from_root, _sqrt_psd, one_blas_thread
from bench.metrics.kernel import (
    BANDWIDTH_RULES,
    BLOCK_ELEMENTS,
    DEFAULT_MAX_POINTS,
    KAD_SCALE,
    KAD_SCALE_NAME,
    kadtk_bandwidth,
    median_bandwidth,
    rbf_blocks,
    rbf_gamma,
)

SUFFICIENT_STATS_BYTES = 1 << 29  # per-clip outer-product sums held at once (n * D^2 float64): 512 MiB


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


def per_song_fad(clips: Sequence[ArrayLike], mu_ref: ArrayLike, sigma_ref: ArrayLike) -> np.ndarray:
    """Each clip's own FAD: its frames alone against the reference statistics (fadtk's per-song FAD).

    A clip with fewer frames than dimensions has a rank-deficient covariance; the eigh route handles it, but such
    values measure distance from the reference mean more than spread, and are comparable only between clips of
    equal length. A clip with one frame gets NaN (no covariance).
    """
    data = _clip_list(clips, "clips")
    ref = FrechetToReference(mu_ref, sigma_ref)
    return np.array([ref.from_rows(a) if a.shape[0] >= 2 else math.nan for a in data])


def _is_statistics(reference: object) -> bool:
    return (isinstance(reference, tuple) and len(reference) == 2 and np.ndim(reference[0]) == 1
            and np.ndim(reference[1]) == 2)


def _model_sets(models: Mapping[str, Sequence[ArrayLike]], draws: SetDraws) -> dict[str, list[np.ndarray]]:
    if not models:
        raise ValueError("models: no model to score")
    out = {name: _clip_list(clips, f"models[{name!r}]") for name, clips in models.items()}
    n_eval = draws.eval_rows.shape[1]
    for name, clips in out.items():
        if len(clips) != n_eval:
            raise ValueError(f"models[{name!r}] has {len(clips)} clips but the draws resample {n_eval} items: every "
                             "model must be scored on the same items, in the same order")
    dims = {clips[0].shape[1] for clips in out.values()}
    if len(dims) != 1:
        raise ValueError(f"models differ in embedding dimension {sorted(dims)}")
    return out


def _multiplicities(rows: np.ndarray, n: int) -> np.ndarray:
    """(B, n) float64: how often each item appears in each resample."""
    b = rows.shape[0]
    flat = (rows + n * np.arange(b)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def _reference_weights(draws: SetDraws, m: int | None) -> np.ndarray | None:
    """(B, m) multiplicities of the reference clips, or None when the reference is held fixed."""
    if draws.reference_rows is None:
        return None
    if m is None:
        raise ValueError("the draws resample reference clips, but the reference is a statistics file: draw them "
                         "with set_draws(n_eval, None, ...)")
    if draws.reference_rows.shape != (draws.n_resamples, m):
        raise ValueError(f"reference_rows has shape {draws.reference_rows.shape}, expected "
                         f"({draws.n_resamples}, {m}) for {m} reference clips")
    return _multiplicities(draws.reference_rows, m)


class _Pooled:
    """One set's clips as pooled rows shifted by ``centre``, with per-clip frame counts and owners."""

    def __init__(self, clips: list[np.ndarray], centre: np.ndarray) -> None:
        self.rows = np.concatenate(clips) - centre  # (N, D)
        self.counts = np.array([a.shape[0] for a in clips], dtype=np.float64)  # (n,)
        self.owner = np.repeat(np.arange(len(clips)), self.counts.astype(np.int64))  # (N,)
        self.starts = np.concatenate([[0], np.cumsum(self.counts.astype(np.int64))[:-1]])  # (n,)
        self.sq_norms = np.einsum("ij,ij->i", self.rows, self.rows)  # (N,)
        self._sums = np.add.reduceat(self.rows, self.starts, axis=0)  # (n, D)
        self._outers: np.ndarray | None = None  # (n, D*D), made by the first call of moments() when it fits

    def _outer_sums(self) -> np.ndarray | None:
        n, d = len(self.counts), self.rows.shape[1]
        if self._outers is None and n * d * d * 8 <= SUFFICIENT_STATS_BYTES:
            self._outers = np.stack([a.T @ a for a in np.split(self.rows, self.starts[1:])]).reshape(n, -1)
        return self._outers

    def moments(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pooled size, mean and covariance (ddof 1) for clip multiplicities ``w`` (c, n): (c,), (c, D), (c, D, D).

        The covariance is symmetric up to round-off only; its consumers read one triangle or symmetrise."""
        d = self.rows.shape[1]
        size = w @ self.counts
        mean = (w @ self._sums) / size[:, None]
        outers = self._outer_sums()
        if outers is not None:
            cov = (w @ outers).reshape(-1, d, d)
        else:
            cov = np.einsum("cr,ri,rj->cij", w[:, self.owner], self.rows, self.rows)
        cov -= size[:, None, None] * mean[:, :, None] * mean[:, None, :]
        cov /= (size - 1.0)[:, None, None]
        return size, mean, cov

    def weighted_rows(self, w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, float]:
        """For one resample's clip multiplicities ``w`` (n,): size N, mean (D,), the kept rows centred and scaled
        by sqrt(multiplicity) (R, D), so that their cross product is (N - 1) S, and tr(S)."""
        wf = w[self.owner]
        keep = wf > 0
        x, ww = self.rows[keep], wf[keep]
        size = float(ww.sum())
        mean = ww @ x / size
        trace = (float(ww @ self.sq_norms[keep]) - size * float(mean @ mean)) / (size - 1.0)
        return size, mean, (x - mean) * np.sqrt(ww)[:, None], trace


def _sum_sqrt_eig(m: np.ndarray) -> np.ndarray:
    """sum_i sqrt(lambda_i) of symmetric PSD matrices (..., k, k), round-off eigenvalues dropped."""
    ev = np.linalg.eigvalsh((m + np.swapaxes(m, -1, -2)) / 2.0)
    top = ev.max(axis=-1, keepdims=True)
    ev = np.where(ev > ev.shape[-1] * np.finfo(np.float64).eps * np.maximum(top, 0.0), ev, 0.0)
    return np.sqrt(ev).sum(axis=-1)


def _psd_factor(cov: np.ndarray) -> np.ndarray:
    """L with L L^T = cov for a stack (c, D, D): Cholesky, or the symmetric root where a matrix is singular."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return np.stack([_sqrt_psd(c) for c in cov])


def fad_resampled(models: Mapping[str, Sequence[ArrayLike]],
                  reference: Sequence[ArrayLike] | tuple[ArrayLike, ArrayLike],
                  draws: SetDraws) -> dict[str, ResampledStatistic]:
    """Pooled FAD of every model on the full data and on every resample of ``draws`` (two-sample when the draws
    resample the reference).

    Resample b pools the frames of eval clips ``draws.eval_rows[b]`` (the same rows for every model) and, when
    ``draws.reference_rows`` is set, the reference clips ``draws.reference_rows[b]``; FAD = Frechet distance
    (Heusel et al. 2017, eq. 6) between the two pooled Gaussians. tr((S_e S_r)^{1/2}) comes from the smaller side:
    with D <= both frame counts, from the eigenvalues of L^T S_e L (S_r = L L^T, Cholesky; XY and YX share
    eigenvalues); otherwise from the nuclear norm of the centred cross product of the rows, the singular values of
    C = X_c Y_c^T / sqrt((N - 1)(M - 1)), as S_e S_r = X_c^T C Y_c / ... has the non-zero eigenvalues of C C^T.

    Args:
        models: model name -> n arrays of (frames_i, D), the items every model was scored on, same order.
        reference: m reference clips (frames_j, D), or fixed statistics as a tuple ``(mu (D,), sigma (D, D))``.
        draws: :func:`bench.bootstrap.set_draws` for n eval items and m reference clips (or None: the reference
            is then held fixed, computed once from all its clips).

    Returns:
        model name -> :class:`ResampledStatistic` (value: the full-data FAD; resampled: (B,)).
    """
    # small and mid-sized factorisations: BLAS threads only synchronise at these sizes (on a busy 2-core machine
    # a 512-d eigh took 1.2 s with two threads and 0.03 s with one)
    with one_blas_thread():
        return _fad_resampled(models, reference, draws)


def _fad_resampled(models: Mapping[str, Sequence[ArrayLike]],
                   reference: Sequence[ArrayLike] | tuple[ArrayLike, ArrayLike],
                   draws: SetDraws) -> dict[str, ResampledStatistic]:
    sets = _model_sets(models, draws)
    n = draws.eval_rows.shape[1]
    dim = next(iter(sets.values()))[0].shape[1]
    ref_clips = None if _is_statistics(reference) else _clip_list(reference, "reference")  # type: ignore[arg-type]
    if ref_clips is None:
        mu_ref, sigma_ref = _check_stats(reference[0], reference[1], "_ref")
    else:
        y = np.concatenate(ref_clips)
        if y.shape[0] < 2:
            raise ValueError("the reference needs at least two frames")
        mu_ref = y.mean(axis=0)
        sigma_ref = np.cov(y, rowvar=False, ddof=1).reshape(dim, dim)
    if mu_ref.shape[0] != dim:
        raise ValueError(f"models have D={dim} but the reference has D={mu_ref.shape[0]}")
    ref_w = _reference_weights(draws, None if ref_clips is None else len(ref_clips))
    fixed = FrechetToReference(mu_ref, sigma_ref)
    what = "FAD, frames pooled, " + ("two-sample bootstrap" if ref_w is not None else "reference held fixed")
    eval_w = _multiplicities(draws.eval_rows, n)
    pooled = {name: _Pooled(clips, mu_ref) for name, clips in sets.items()}
    values = {name: fixed.from_rows(p.rows + mu_ref) for name, p in pooled.items()}
    out = {name: np.empty(draws.n_resamples) for name in sets}
    ref = _Pooled(ref_clips, mu_ref) if ref_w is not None else None  # type: ignore[arg-type]
    rows_min = min([p.rows.shape[0] for p in pooled.values()] + ([ref.rows.shape[0]] if ref is not None else []))
    _fad_resamples(pooled, ref, ref_w, fixed, eval_w, dim, rows_min > dim, out)
    return {name: ResampledStatistic(values[name], out[name], n, what) for name in sets}


def _fad_resamples(pooled: dict[str, _Pooled], ref: _Pooled | None, ref_w: np.ndarray | None,
                   fixed: FrechetToReference, eval_w: np.ndarray, dim: int, by_dimension: bool,
                   out: dict[str, np.ndarray]) -> None:
    """Fill ``out[name][b]`` with resample b's FAD (the two routes of :func:`fad_resampled`)."""
    b_total = eval_w.shape[0]
    if by_dimension:
        chunk = max(1, (1 << 21) // (dim * dim))  # (chunk, D, D) float64 stacks of 16 MiB: cache-sized work
        for start in range(0, b_total, chunk):
            sl = slice(start, min(start + chunk, b_total))
            if ref is None:
                mean_r = np.zeros((1, dim))
                factor = fixed.root_ref[None]
                trace_r = np.array([fixed.trace_ref])
            else:
                _, mean_r, cov_r = ref.moments(ref_w[sl])  # type: ignore[index]
                factor = _psd_factor(cov_r)
                trace_r = np.trace(cov_r, axis1=1, axis2=2)
            for name, p in pooled.items():
                _, mean_e, cov_e = p.moments(eval_w[sl])
                cross = _sum_sqrt_eig(np.swapaxes(factor, 1, 2) @ cov_e @ factor)
                diff = mean_e - mean_r
                out[name][sl] = (np.einsum("cd,cd->c", diff, diff) + np.trace(cov_e, axis1=1, axis2=2) + trace_r
                                 - 2.0 * cross)
    else:
        # inner products of every eval row with every reference row, once (with the rows of A = S_ref^{1/2} when
        # the reference is fixed: A^T A = S_ref); a resample then centres and weights a block of them
        y = fixed.root_ref if ref is None else ref.rows
        cross_rows = {name: p.rows @ y.T for name, p in pooled.items()}  # (N_e, N_r or D)
        for b in range(b_total):
            if ref is None:
                keep_r, vf, mean_r, trace_r, scale_r = slice(None), None, np.zeros(dim), fixed.trace_ref, 1.0
            else:
                vf_all = ref_w[b][ref.owner]  # type: ignore[index]
                keep_r = vf_all > 0
                vf = vf_all[keep_r]
                size_r = float(vf.sum())
                mean_r = vf @ ref.rows[keep_r] / size_r
                trace_r = (float(vf @ ref.sq_norms[keep_r]) - size_r * float(mean_r @ mean_r)) / (size_r - 1.0)
                scale_r = size_r - 1.0
            for name, p in pooled.items():
                wf_all = eval_w[b][p.owner]
                keep = wf_all > 0
                wf = wf_all[keep]
                size_e = float(wf.sum())
                mean_e = wf @ p.rows[keep] / size_e
                trace_e = (float(wf @ p.sq_norms[keep]) - size_e * float(mean_e @ mean_e)) / (size_e - 1.0)
                g = cross_rows[name][keep][:, keep_r]  # x_i . y_j
                g = g - (wf @ g / size_e)[None, :]  # (x_i - m_e) . y_j
                if vf is not None:
                    g -= (g @ vf / size_r)[:, None]  # (x_i - m_e) . (y_j - m_r)
                    g *= np.sqrt(vf)[None, :]
                g *= np.sqrt(wf)[:, None] / math.sqrt((size_e - 1.0) * scale_r)
                gram = g @ g.T if g.shape[0] <= g.shape[1] else g.T @ g
                diff = mean_e - mean_r
                out[name][b] = float(diff @ diff) + trace_e + trace_r - 2.0 * float(_sum_sqrt_eig(gram))


def clip_kernel_sums(a: np.ndarray, a_starts: np.ndarray, b: np.ndarray, b_starts: np.ndarray, gamma: float,
                     block_elements: int = BLOCK_ELEMENTS) -> np.ndarray:
    """K[i, j] = sum over frames p of clip i of ``a`` and q of clip j of ``b`` of exp(-gamma ||a_p - b_q||^2).

    Args:
        a, b: (N_a, D), (N_b, D) pooled frames, each clip's frames contiguous; centre both by one vector first
            (distances are shift-invariant, and |a|^2 + |b|^2 - 2 a.b loses less to round-off near the origin).
        a_starts, b_starts: first row of each clip, increasing; (n_a,), (n_b,).
        gamma: kernel parameter. block_elements: kernel entries held at once.

    Returns:
        (n_a, n_b) block sums.
    """
    out = np.zeros((len(a_starts), len(b_starts)))
    owner = np.repeat(np.arange(len(a_starts)), np.diff(np.append(a_starts, a.shape[0])))
    for start, stop, block in rbf_blocks(a, b, gamma, block_elements):
        by_col = np.add.reduceat(block, b_starts, axis=1)  # (rows, n_b)
        who = owner[start:stop]
        first = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
        out[who[first]] += np.add.reduceat(by_col, first, axis=0)
    return out


class _KernelSet:
    """A set's within-set clip block sums with the same-clip blocks zeroed, and its frame counts."""

    def __init__(self, pooled: _Pooled, gamma: float) -> None:
        self.counts = pooled.counts
        self.within = clip_kernel_sums(pooled.rows, pooled.starts, pooled.rows, pooled.starts, gamma)
        np.fill_diagonal(self.within, 0.0)  # same-clip pairs out: the clip-level U-statistic

    def mean_within(self, w: np.ndarray) -> np.ndarray:
        """Mean kernel over frame pairs of different clips, for multiplicities ``w`` (B, n); copies of one clip
        in a resample are the same clip, so their pairs stay out too."""
        sums = np.sum((w @ self.within) * w, axis=1)
        wf = w * self.counts
        pairs = wf.sum(axis=1) ** 2 - np.einsum("bi,bi->b", wf, wf)
        with np.errstate(invalid="ignore", divide="ignore"):
            return sums / pairs


def _kad_from_parts(eval_set: _KernelSet, ref_set: _KernelSet, cross: np.ndarray, w: np.ndarray, v: np.ndarray,
                    scale: float) -> np.ndarray:
    size_e, size_r = w @ eval_set.counts, v @ ref_set.counts
    k_er = np.sum((w @ cross) * v, axis=1) / (size_e * size_r)
    return scale * (eval_set.mean_within(w) + ref_set.mean_within(v) - 2.0 * k_er)


def _kad_bandwidth(rule: str, bandwidth: float | None, eval_rows: np.ndarray, ref_rows: np.ndarray, seed: int,
                   max_points: int) -> tuple[float, str]:
    if bandwidth is not None:
        return float(bandwidth), "given"
    if rule == "reference":
        return median_bandwidth(ref_rows, max_points=max_points, seed=seed), rule
    if rule == "kadtk":
        return kadtk_bandwidth(eval_rows), rule
    raise ValueError(f"bandwidth_rule must be one of {sorted(BANDWIDTH_RULES)}, got {rule!r}")


def clip_kad(eval_clips: Sequence[ArrayLike], reference_clips: Sequence[ArrayLike], bandwidth: float | None = None,
             bandwidth_rule: str = "reference", scale: float = KAD_SCALE, seed: int = 0,
             max_points: int = DEFAULT_MAX_POINTS) -> tuple[float, float]:
    """Clip-level unbiased KAD of one set: ``scale`` * MMD^2 with same-clip pairs left out of both within-set sums.

        KAD = scale * [ sum_{i != j} K_ee[i, j] / sum_{i != j} f_i f_j + (the same for the reference)
                        - 2 sum_{i, j} K_er[i, j] / (F_e F_r) ],

    K the clip block sums of k(x, y) = exp(-gamma ||x - y||^2), gamma = 1 / (2 h^2 + 1e-8) (kadtk's), f_i the
    frame counts, F their totals. Each ratio is a weighted mean of kernel values of frames from independent clips,
    so E[KAD] = scale * MMD^2 of the frame marginals for any within-clip dependence (Gretton et al. 2012, eq. 3,
    with the clip as the sampling unit). With one frame per clip it is kadtk's ``calc_kernel_audio_distance``.

    Returns:
        ``(kad, h)``.
    """
    stats, h = kad_resampled({"eval": eval_clips}, reference_clips,
                             SetDraws(np.zeros((0, len(eval_clips)), dtype=np.int64), None, seed),
                             bandwidth_rule, scale, bandwidth, seed, max_points)
    return stats["eval"].value, h["eval"]


def kad_resampled(models: Mapping[str, Sequence[ArrayLike]], reference_clips: Sequence[ArrayLike], draws: SetDraws,
                  bandwidth_rule: str = "reference", scale: float = KAD_SCALE, bandwidth: float | None = None,
                  seed: int = 0, max_points: int = DEFAULT_MAX_POINTS,
                  ) -> tuple[dict[str, ResampledStatistic], dict[str, float]]:
    """Clip-level KAD (:func:`clip_kad`) of every model on the full data and on every resample of ``draws``.

    The kernel block sums between clips (eval-eval, eval-reference, reference-reference) are computed once; with
    clip multiplicities w (eval) and v (reference) a resample is then three quadratic forms, vectorised over the
    B resamples. The bandwidth stays fixed over resamples (the kernel must not change with the draw).

    Args:
        models: model name -> n arrays of (frames_i, D), the same items in the same order for every model.
        reference_clips: m arrays of (frames_j, D).
        draws: :func:`bench.bootstrap.set_draws` for n and m (``reference_rows`` None: the reference held fixed).
        bandwidth_rule: "reference" (median pairwise distance of the reference frames, ``max_points`` of them
            drawn with ``seed``; one h for every model) or "kadtk" (lower median pairwise distance of each
            model's own eval frames, as kadtk's code: h differs between models).
        scale: multiplies MMD^2; default 100, "KAD x100, kadtk's SCALE_FACTOR".
        bandwidth: a fixed h for every model; overrides the rule (recorded as "given").

    Returns:
        ``(statistics, bandwidths)``: model name -> :class:`ResampledStatistic`, model name -> h.
    """
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be finite and > 0, got {scale}")
    sets = _model_sets(models, draws)
    refs = _clip_list(reference_clips, "reference_clips")
    dim = next(iter(sets.values()))[0].shape[1]
    if refs[0].shape[1] != dim:
        raise ValueError(f"models have D={dim} but the reference clips have D={refs[0].shape[1]}")
    if sum(a.shape[0] for a in refs) < 2:
        raise ValueError("the reference needs at least two frames")
    ref_w = _reference_weights(draws, len(refs))
    n, m = draws.eval_rows.shape[1], len(refs)
    if n < 2 and draws.n_resamples:
        raise ValueError("a clip-level KAD needs at least two eval clips")
    ref_raw = np.concatenate(refs)
    centre = ref_raw.mean(axis=0)
    ref_pooled = _Pooled(refs, centre)
    eval_w = _multiplicities(draws.eval_rows, n)
    v = ref_w if ref_w is not None else np.ones((draws.n_resamples, m))
    ones_e, ones_r = np.ones((1, n)), np.ones((1, m))
    ref_sets: dict[float, _KernelSet] = {}
    stats, bandwidths = {}, {}
    for name, clips in sets.items():
        pooled = _Pooled(clips, centre)
        h, rule = _kad_bandwidth(bandwidth_rule, bandwidth, np.concatenate(clips), ref_raw, seed, max_points)
        gamma = rbf_gamma(h)
        if gamma not in ref_sets:
            ref_sets[gamma] = _KernelSet(ref_pooled, gamma)
        ref_set = ref_sets[gamma]
        eval_set = _KernelSet(pooled, gamma)
        cross = clip_kernel_sums(pooled.rows, pooled.starts, ref_pooled.rows, ref_pooled.starts, gamma)
        value = float(_kad_from_parts(eval_set, ref_set, cross, ones_e, ones_r, scale)[0])
        resampled = _kad_from_parts(eval_set, ref_set, cross, eval_w, v, scale)
        sampling = "two-sample bootstrap" if ref_w is not None else "reference held fixed"
        what = (f"{KAD_SCALE_NAME if scale == KAD_SCALE else f'KAD x{scale:g}'}, clip-level U-statistic, "
                f"bandwidth {rule} (h={h:.6g}), {sampling}")
        stats[name] = ResampledStatistic(value, resampled, n, what)
        bandwidths[name] = h
    return stats, bandwidths


__all__ = ["FrechetToReference", "SetEstimate", "clip_kad", "clip_kernel_sums", "fad_resampled", "kad_resampled",
           "per_song_fad", "pooled_fad", "standard_interval"]
