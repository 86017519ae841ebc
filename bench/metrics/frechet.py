"""Frechet distance between Gaussians fitted to embeddings (FAD), and its extrapolation to infinite n (FAD-inf).

FAD (Kilgour et al. 2019) is the FID formula (Heusel et al. 2017, eq. 6) applied to audio embeddings:

    d^2 = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2}).

The trace term uses symmetric eigendecompositions only, never ``scipy.linalg.sqrtm``. With S1 = U diag(l) U^T and
A = S1^{1/2} = U diag(sqrt(max(l, 0))) U^T, the products S1 S2 = A (A S2) and A S2 A = (A S2) A have the same
eigenvalues (XY and YX always do), and A S2 A is symmetric positive semi-definite, so

    tr((S1 S2)^{1/2}) = sum_i sqrt(max(eigvalsh(A S2 A)_i, 0))

is real by construction and stays right when N < D makes the covariances singular, where ``sqrtm`` of the
non-symmetric S1 S2 warns, returns complex parts or fails. Everything is float64.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from bench.metrics.arrays import as_embeddings

SYMMETRY_RTOL = 1e-6  # |S - S^T| allowed, relative to max|S|: round-off passes, a non-covariance does not


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run many small and mid-sized factorisations on one BLAS thread: at D <= 512 the threads mostly synchronise
    (on the busy 2-core test machine FAD-inf over 100 clips took 2.3 s with two threads and 0.23 s with one).
    threadpoolctl is a dependency; without it nothing changes."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def gaussian_stats(embeddings: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a set of embeddings, in float64.

    The covariance is the unbiased sample covariance (ddof=1, divide by N - 1), as ``np.cov`` and fadtk use.

    Args:
        embeddings: (N, D) array, N >= 2, all finite.

    Returns:
        ``(mu, sigma)``: mu (D,), sigma (D, D), exactly symmetric.
    """
    x = _embeddings(embeddings, "embeddings")
    return _stats(x)


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Squared Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    Heusel et al. 2017, eq. 6; FAD when the statistics come from audio embeddings (Kilgour et al. 2019). The trace
    term comes from the eigh route in the module docstring; eigenvalues below ``D * eps * max`` are treated as zero
    (below that they are round-off, and the square root would turn 1e-16 into 1e-8).

    Args:
        mu1, mu2: (D,) means.
        sigma1, sigma2: (D, D) symmetric positive semi-definite covariances (rank-deficient allowed).

    Returns:
        The distance, a Python float. Not clipped at zero: for equal inputs it is 0 up to round-off
        (|d| ~ 1e-13 * tr(S)), and clipping would bias averages and fits of many distances (FAD-inf, bootstrap).
    """
    mu1, sigma1, mu2, sigma2 = _check_pair(mu1, sigma1, mu2, sigma2)
    return _frechet_from_root(mu1, _sqrt_psd(sigma1), float(np.trace(sigma1)), mu2, sigma2)


def frechet_distance_eigvals(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Cross-check of :func:`frechet_distance` through the general eigensolver, for tests.

    tr((S1 S2)^{1/2}) = sum_i sqrt(max(Re lambda_i(S1 @ S2), 0)) with ``np.linalg.eigvals``; the product is not
    symmetric, so its computed eigenvalues can carry small imaginary parts (dropped) and are less accurate.
    """
    mu1, sigma1, mu2, sigma2 = _check_pair(mu1, sigma1, mu2, sigma2)
    eigenvalues = np.linalg.eigvals(sigma1 @ sigma2)
    tr_covmean = float(np.sum(np.sqrt(np.clip(eigenvalues.real, 0.0, None))))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


# -- FAD-inf ------------------------------------------------------------------------------------------------------


FAD_INF_VARIANTS = {
    "clips": ("subsets of clips drawn without replacement, FAD of their pooled frames, fit FAD = a + b/n_clips; "
              "matches no tool (ours): removes the bias of a finite number of clips, frames within a clip "
              "dependent or not"),
    "frames": ("subsets of pooled frames, fit FAD = a + b/n_frames: fadtk's score_inf procedure; removes the "
               "small-sample bias only when frames are independent, so with several dependent frames per clip "
               "its intercept keeps most of the bias of the finite clip set"),
}


@dataclass(frozen=True)
class FadInf:
    """FAD extrapolated to an infinite eval set: the intercept of the least-squares fit FAD(n) = a + b / n.

    ``variant`` says what n counts (:data:`FAD_INF_VARIANTS`): "clips" (ours) or "frames" (fadtk's).
    """

    value: float  # a: FAD-inf
    slope: float  # b: how fast FAD falls with n (the finite-sample bias is about b / n)
    r2: float  # of the fit over every (n, FAD) point; NaN when all FADs are equal
    ns: tuple[int, ...]  # the subset sizes, each drawn n_repeats times
    points: tuple[tuple[int, float], ...]  # every (n, FAD), in the order drawn
    n_repeats: int
    seed: int
    variant: str = "frames"  # what n counts: "frames" or "clips"
    replace: bool = False  # subsets drawn with replacement (fadtk's score_inf) or without (default)

    def to_dict(self) -> dict[str, object]:
        unit = "n_clips" if self.variant == "clips" else "n_frames"
        draw = "with" if self.replace else "without"
        return {"value": self.value, "slope": self.slope, "r2": self.r2, "ns": list(self.ns),
                "points": [list(p) for p in self.points], "n_repeats": self.n_repeats, "seed": self.seed,
                "variant": self.variant, "replace": self.replace, "removes": FAD_INF_VARIANTS[self.variant],
                "method": f"FAD({unit}) = a + b/{unit}, least squares over subsets drawn {draw} replacement"}


def default_fad_inf_ns(n_total: int, steps: int = 10) -> tuple[int, ...]:
    """``steps`` subset sizes evenly spaced from ceil(n_total / 4) to n_total (fadtk spaces 25 from 500 to N)."""
    if n_total < 8:
        raise ValueError(f"FAD-inf needs at least 8 eval embeddings for its default sizes, got {n_total}")
    low = max(2, -(-n_total // 4))
    return tuple(int(n) for n in np.unique(np.linspace(low, n_total, steps).round().astype(np.int64)))


def fadtk_fad_inf_ns(n_total: int, min_n: int = 500, steps: int = 25) -> tuple[int, ...]:
    """fadtk's ``score_inf`` sizes: ``int(n)`` for n in ``np.linspace(min_n, n_total, steps)`` (repeats kept)."""
    if not 2 <= min_n <= n_total:
        raise ValueError(f"min_n must be in [2, {n_total}], got {min_n}")
    return tuple(int(n) for n in np.linspace(min_n, n_total, steps))


def fit_inverse_n(ns: Sequence[int], values: Sequence[float]) -> tuple[float, float, float]:
    """Ordinary least squares of values = a + b / n.

    Args:
        ns: subset sizes (at least two distinct).
        values: one value per entry of ``ns``.

    Returns:
        ``(a, b, r2)``; r2 = 1 - SS_res / SS_tot, NaN when the values do not vary.
    """
    n = np.asarray(ns, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if n.ndim != 1 or n.shape != y.shape:
        raise ValueError(f"ns and values must be 1-D of one length, got shapes {n.shape} and {y.shape}")
    if not (np.all(np.isfinite(y)) and np.all(n > 0)):
        raise ValueError("values must be finite and ns positive")
    if len(np.unique(n)) < 2:
        raise ValueError("need at least two distinct n to fit a + b/n")
    design = np.stack([np.ones_like(n), 1.0 / n], axis=1)  # (P, 2)
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    ss_res = float(np.sum((y - design @ np.array([a, b])) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan
    return float(a), float(b), r2


def fad_inf(emb_eval: ArrayLike, mu_ref: ArrayLike, sigma_ref: ArrayLike, ns: Sequence[int] | None = None,
            n_repeats: int = 1, seed: int = 0, replace: bool = False) -> FadInf:
    """FAD-inf, frame variant: FAD on random subsets of n frames, extrapolated to n -> infinity (fadtk's procedure).

    This is fadtk's ``score_inf`` (read from its source): sizes ``fadtk_fad_inf_ns`` and one draw per size with
    replacement reproduce it exactly given the same index draws (``replace=True``). With several frames per clip
    the frames are not independent, and the fit removes only the part of the bias that shrinks with the frame
    count; :func:`fad_inf_clips` removes the bias of the finite clip set.

    The FID-inf idea of Chong & Forsyth 2020 (FID is biased upwards by about b/n), as fadtk applies it to FAD
    (Gui et al. 2024). Unlike fadtk, subsets are drawn without replacement, from a seeded generator: then
    E[FAD(n)] ~ FAD_true + b/n holds down to the full set, whereas duplicates (with replacement) add about b/N to
    every point and so to the intercept.

    Args:
        emb_eval: (N, D) eval embeddings.
        mu_ref, sigma_ref: (D,) and (D, D) reference statistics (used whole; only the eval set is subsampled).
        ns: subset sizes, each in [2, N] (any size with ``replace``), at least two distinct; default
            :func:`default_fad_inf_ns`.
        n_repeats: subsets drawn per size; every draw is one point of the fit.
        seed: seeds ``np.random.default_rng``; the same inputs and seed give the same result.
        replace: draw each subset with replacement, as fadtk does (duplicates bias every point by about b/N).

    Returns:
        :class:`FadInf` (variant "frames") with the intercept, slope, R^2, sizes, points and seed.
    """
    x = _embeddings(emb_eval, "emb_eval")
    mu_ref, sigma_ref = _check_stats(mu_ref, sigma_ref, "ref")
    if mu_ref.shape[0] != x.shape[1]:
        raise ValueError(f"emb_eval has D={x.shape[1]} but the reference statistics have D={mu_ref.shape[0]}")
    n_total = x.shape[0]
    sizes = default_fad_inf_ns(n_total) if ns is None else tuple(int(n) for n in ns)
    top = math.inf if replace else n_total
    if any(not 2 <= n <= top for n in sizes) or len(set(sizes)) < 2:
        raise ValueError(f"ns must hold at least two distinct sizes in [2, {n_total}], got {sizes}")
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be >= 1, got {n_repeats}")
    rng = np.random.default_rng(seed)
    points = _subset_fads(mu_ref, sigma_ref, [(n, n_repeats) for n in sizes],
                          lambda n: x[rng.choice(n_total, size=n, replace=replace)])
    a, b, r2 = fit_inverse_n([p[0] for p in points], [p[1] for p in points])
    return FadInf(a, b, r2, sizes, tuple(points), n_repeats, seed, "frames", replace)


def fad_inf_clips(clips: Sequence[ArrayLike], mu_ref: ArrayLike, sigma_ref: ArrayLike,
                  ns: Sequence[int] | None = None, n_repeats: int = 5, seed: int = 0) -> FadInf:
    """FAD-inf, clip variant: FAD of the pooled frames of random subsets of n clips, extrapolated to n -> infinity.

    A subset of n clips drawn without replacement from n_total i.i.d. clips is itself an i.i.d. sample of n clips,
    so E[FAD(n)] is the expected FAD of n clips, whose bias is about b / n_clips (Chong & Forsyth 2020 for FID,
    with the clip as the independent unit) whether or not the frames of a clip are dependent. The intercept
    estimates the FAD of the frame marginal of the clip population against the reference statistics (the
    reference's own sampling error is not removed: pass population statistics or a large reference).

    Args:
        clips: n_total arrays of (frames_i, D) embeddings, one per clip; n_total >= 8 for the default sizes.
        mu_ref, sigma_ref: (D,) and (D, D) reference statistics.
        ns: clip-subset sizes in [2, n_total], at least two distinct; default :func:`default_fad_inf_ns`.
        n_repeats: subsets per size (a subset of all n_total clips is drawn once: it is always the whole set).
        seed: seeds ``np.random.default_rng``.

    Returns:
        :class:`FadInf` (variant "clips"); ``ns`` and ``points`` count clips.
    """
    data = [np.asarray(c, dtype=np.float64).reshape(-1, np.shape(c)[-1]) for c in clips]
    mu_ref, sigma_ref = _check_stats(mu_ref, sigma_ref, "ref")
    if not data or any(a.shape[1] != mu_ref.shape[0] or not np.all(np.isfinite(a)) for a in data):
        raise ValueError(f"clips must be finite (frames, D={mu_ref.shape[0]}) arrays, at least one")
    n_total = len(data)
    sizes = default_fad_inf_ns(n_total) if ns is None else tuple(int(n) for n in ns)
    if any(not 2 <= n <= n_total for n in sizes) or len(set(sizes)) < 2:
        raise ValueError(f"ns must hold at least two distinct clip counts in [2, {n_total}], got {sizes}")
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be >= 1, got {n_repeats}")
    rng = np.random.default_rng(seed)
    points = _subset_fads(mu_ref, sigma_ref, [(n, 1 if n == n_total else n_repeats) for n in sizes],
                          lambda n: np.concatenate([data[i] for i in rng.choice(n_total, size=n, replace=False)]))
    a, b, r2 = fit_inverse_n([p[0] for p in points], [p[1] for p in points])
    return FadInf(a, b, r2, sizes, tuple(points), n_repeats, seed, "clips", False)


# -- internals ----------------------------------------------------------------------------------------------------


def _subset_fads(mu_ref: np.ndarray, sigma_ref: np.ndarray, draws: Sequence[tuple[int, int]],
                 rows_of: Callable[[int], np.ndarray]) -> list[tuple[int, float]]:
    """(n, FAD of ``rows_of(n)``) for each (n, repeats) in ``draws``, in order: FAD-inf's points. The reference's
    root is computed once for all of them, on one BLAS thread."""
    points = []
    with one_blas_thread():
        root_ref = _sqrt_psd(sigma_ref)
        tr_ref = float(np.trace(sigma_ref))
        for n, repeats in draws:
            for _ in range(repeats):
                rows = rows_of(n)
                if rows.shape[0] < 2:
                    raise ValueError(f"a subset of size {n} holds fewer than two frames: no covariance")
                points.append((n, _frechet_of_rows(mu_ref, root_ref, tr_ref, rows)))
    return points


def _frechet_from_root(mu1: np.ndarray, root1: np.ndarray, tr1: float, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """d^2 given A = S1^{1/2} and tr(S1); inputs already checked."""
    m = root1 @ sigma2 @ root1
    eigenvalues = np.linalg.eigvalsh((m + m.T) / 2.0)
    tr_covmean = float(np.sum(np.sqrt(_clip_small(eigenvalues))))
    diff = mu1 - mu2
    return float(diff @ diff + tr1 + np.trace(sigma2) - 2.0 * tr_covmean)


def _frechet_of_rows(mu_ref: np.ndarray, root_ref: np.ndarray, tr_ref: float, rows: np.ndarray) -> float:
    """d^2 of the rows' Gaussian to the reference; with N < D rows the trace term comes from the N x N Gram matrix
    of the centred rows times A = S_ref^{1/2} (XY and YX share their non-zero eigenvalues)."""
    n, d = rows.shape
    if n >= d:
        return _frechet_from_root(mu_ref, root_ref, tr_ref, *_stats(rows))
    mu = rows.mean(axis=0)
    xc = rows - mu
    y = xc @ root_ref / math.sqrt(n - 1)  # (N, D): A S A = y^T y
    tr_covmean = float(np.sum(np.sqrt(_clip_small(np.linalg.eigvalsh(y @ y.T)))))
    diff = mu - mu_ref
    return float(diff @ diff + float(np.sum(xc * xc)) / (n - 1) + tr_ref - 2.0 * tr_covmean)


def _sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    """Symmetric PSD square root U diag(sqrt(l)) U^T, with round-off-sized and negative l set to 0."""
    eigenvalues, eigenvectors = np.linalg.eigh(sigma)
    return (eigenvectors * np.sqrt(_clip_small(eigenvalues))) @ eigenvectors.T


def _clip_small(eigenvalues: np.ndarray) -> np.ndarray:
    """Eigenvalues of a PSD matrix with those below D * eps * max (round-off, or negative) set to 0."""
    top = float(eigenvalues.max(initial=0.0))
    tol = eigenvalues.shape[0] * np.finfo(np.float64).eps * top
    return np.where(eigenvalues > tol, eigenvalues, 0.0)


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = x.mean(axis=0)
    xc = x - mu  # (N, D)
    sigma = xc.T @ xc / (x.shape[0] - 1)
    return mu, (sigma + sigma.T) / 2.0


def _embeddings(embeddings: ArrayLike, name: str) -> np.ndarray:
    return as_embeddings(embeddings, name, "covariance with ddof=1")


def _check_stats(mu: ArrayLike, sigma: ArrayLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or mu.shape[0] < 1:
        raise ValueError(f"mu{name} must be 1-D (D,) with D >= 1, got shape {mu.shape}")
    d = mu.shape[0]
    if sigma.shape != (d, d):
        raise ValueError(f"sigma{name} must be (D, D) = ({d}, {d}) to match mu{name}, got shape {sigma.shape}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise ValueError(f"mu{name} or sigma{name} holds NaN or infinite values")
    asymmetry = float(np.max(np.abs(sigma - sigma.T)))
    if asymmetry > SYMMETRY_RTOL * float(np.max(np.abs(sigma))):
        raise ValueError(f"sigma{name} is not symmetric (max |S - S^T| = {asymmetry:.3g}); is it a covariance?")
    return mu, (sigma + sigma.T) / 2.0


def _check_pair(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike,
                sigma2: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    mu1, sigma1 = _check_stats(mu1, sigma1, "1")
    mu2, sigma2 = _check_stats(mu2, sigma2, "2")
    if mu1.shape != mu2.shape:
        raise ValueError(f"the two Gaussians differ in dimension: D={mu1.shape[0]} and D={mu2.shape[0]}")
    return mu1, sigma1, mu2, sigma2
