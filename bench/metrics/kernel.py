"""Kernel audio distance (KAD): the unbiased MMD^2 between eval and reference embeddings, Gaussian RBF kernel.

Unbiased estimator (Gretton et al. 2012, JMLR, eq. 3; a U-statistic, so the i = j terms are left out):

    MMD_u^2 = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(n(n-1)) sum_{i != j} k(y_i, y_j)
              - 2/(mn) sum_{i, j} k(x_i, y_j),      k(x, y) = exp(-||x - y||^2 / (2 h^2)).

Its expectation is exactly MMD^2, which is 0 when both sets come from one distribution, so single values can be
negative; they are not clipped (a clipped or biased, V-statistic, version is positive even for a perfect model).
KAD (Chung et al. 2025) is this on audio embeddings, with the bandwidth h from the median heuristic on the
reference set only (:func:`median_bandwidth`), so that every model is scored with one and the same kernel. CMMD
(Jayasumana et al. 2024) multiplies the value by 1000 for display; kadtk by a constant SCALE_FACTOR (100 in the
version we read). ``scale`` does the same here, default 1: always record it with the number.

kadtk (``calc_kernel_audio_distance(x=baseline, y=eval)``, read from its source) differs from the functions here in
three details, which :mod:`bench.metrics.sets` offers as options: the result is times SCALE_FACTOR = 100
(:data:`KAD_SCALE`); gamma = 1 / (2 h^2 + 1e-8) (:func:`rbf_gamma`); and h is the lower median of the pairwise
distances of the EVAL set (:func:`kadtk_bandwidth`; its README says the reference set, its code takes ``y``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial.distance import pdist

from bench.metrics.arrays import as_embeddings

DEFAULT_MAX_POINTS = 1000  # reference points for the median: 499,500 distances, about 0.2 s at D = 1024
BLOCK_ELEMENTS = 1 << 22  # kernel entries per block: 4 Mi float64 = 32 MiB, whatever the set sizes
KAD_SCALE = 100.0  # "KAD x100, kadtk's SCALE_FACTOR": the default scale of the set-level KAD
KAD_SCALE_NAME = "KAD x100, kadtk's SCALE_FACTOR"
KADTK_GAMMA_EPS = 1e-8  # kadtk: gamma = 1 / (2 h^2 + eps)
BANDWIDTH_RULES = {
    "reference": "median pairwise distance of the reference frames (ours; kadtk's README)",
    "kadtk": "lower median pairwise distance of the eval frames (kadtk's code: torch.median(torch.pdist(eval)))",
}


@dataclass(frozen=True)
class KadResult:
    """A KAD value with the kernel that made it."""

    value: float  # scale * MMD_u^2
    bandwidth: float  # h in exp(-||x - y||^2 / (2 h^2))
    bandwidth_rule: str  # where h came from
    scale: float
    n_eval: int
    n_ref: int

    def to_dict(self) -> dict[str, float | int | str]:
        return {"value": self.value, "bandwidth": self.bandwidth, "bandwidth_rule": self.bandwidth_rule,
                "scale": self.scale, "n_eval": self.n_eval, "n_ref": self.n_ref,
                "method": "unbiased MMD^2 (U-statistic), Gaussian RBF kernel"}


def median_bandwidth(emb_ref: ArrayLike, max_points: int = DEFAULT_MAX_POINTS, seed: int = 0) -> float:
    """Median heuristic: the median Euclidean distance over all pairs i < j of reference embeddings.

    With more than ``max_points`` reference rows, the median is taken over ``max_points`` rows drawn without
    replacement by ``np.random.default_rng(seed)`` (cost O(M^2 D) instead of O(N^2 D)); the same arguments always
    give the same h, which is the h that :func:`kad` uses with them.

    Args:
        emb_ref: (N, D) reference embeddings, N >= 2.
        max_points: M, the most rows used.
        seed: for the subsample.

    Returns:
        h > 0.

    Raises:
        ValueError: when the median distance is 0 (over half the pairs are duplicates): no usable kernel.
    """
    y = _embeddings(emb_ref, "emb_ref")
    if max_points < 2:
        raise ValueError(f"max_points must be >= 2, got {max_points}")
    if y.shape[0] > max_points:
        y = y[np.random.default_rng(seed).choice(y.shape[0], size=max_points, replace=False)]
    h = float(np.median(pdist(y)))  # exact distances (no Gram-matrix cancellation)
    if not h > 0.0:
        raise ValueError("the median pairwise distance of the reference embeddings is 0 (most rows are "
                         "duplicates); pass a bandwidth")
    return h


def kadtk_bandwidth(emb_eval: ArrayLike) -> float:
    """kadtk's h: ``torch.median(torch.pdist(y))`` of the eval set y, i.e. the LOWER median of all N(N-1)/2
    pairwise distances (element (K - 1) // 2 of the sorted K distances), no subsample; here in float64."""
    y = _embeddings(emb_eval, "emb_eval")
    d = pdist(y)
    h = float(np.partition(d, (d.size - 1) // 2)[(d.size - 1) // 2])
    if not h > 0.0:
        raise ValueError("the median pairwise distance of the eval embeddings is 0; pass a bandwidth")
    return h


def rbf_gamma(bandwidth: float) -> float:
    """kadtk's gamma for exp(-gamma ||x - y||^2): 1 / (2 h^2 + 1e-8) (the eps moves gamma by 5e-9 / h^2, relative)."""
    if not (np.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"bandwidth must be finite and > 0, got {bandwidth}")
    return 1.0 / (2.0 * float(bandwidth) ** 2 + KADTK_GAMMA_EPS)


def mmd2_unbiased(x: ArrayLike, y: ArrayLike, bandwidth: float, block_elements: int = BLOCK_ELEMENTS) -> float:
    """Unbiased MMD^2 (Gretton et al. 2012, eq. 3) with the Gaussian RBF kernel of bandwidth h.

    Vectorised over blocks of rows; no block holds more than ``block_elements`` kernel entries, so memory stays
    bounded for any m, n. Float64 throughout.

    Args:
        x: (m, D), m >= 2.
        y: (n, D), n >= 2.
        bandwidth: h > 0.
        block_elements: kernel entries computed at once.

    Returns:
        MMD_u^2, which can be negative.
    """
    x = _embeddings(x, "x")
    y = _embeddings(y, "y")
    _check_dims(x, y)
    if not (np.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"bandwidth must be finite and > 0, got {bandwidth}")
    if block_elements < 1:
        raise ValueError(f"block_elements must be >= 1, got {block_elements}")
    centre = y.mean(axis=0)  # distances are translation-invariant; centring shrinks |x|^2 + |y|^2 - 2 x.y round-off
    x, y = x - centre, y - centre
    gamma = 1.0 / (2.0 * float(bandwidth) ** 2)
    m, n = x.shape[0], y.shape[0]
    k_xx = _kernel_sum(x, x, gamma, block_elements, same=True) / (m * (m - 1))
    k_yy = _kernel_sum(y, y, gamma, block_elements, same=True) / (n * (n - 1))
    k_xy = _kernel_sum(x, y, gamma, block_elements, same=False) / (m * n)
    return float(k_xx + k_yy - 2.0 * k_xy)


def kad_result(emb_eval: ArrayLike, emb_ref: ArrayLike, bandwidth: float | None = None, scale: float = 1.0,
               max_points: int = DEFAULT_MAX_POINTS, seed: int = 0, block_elements: int = BLOCK_ELEMENTS) -> KadResult:
    """KAD of an eval set against a reference set, with the bandwidth used.

    Args:
        emb_eval: (m, D) eval embeddings.
        emb_ref: (n, D) reference embeddings.
        bandwidth: h; None takes :func:`median_bandwidth` of ``emb_ref`` (``max_points``, ``seed``). Pass a fixed
            h when the reference set changes between calls (bootstrap resamples, subsets), so the kernel does not.
            Note that with h taken from the reference sample itself the estimator is unbiased only to O(1/n).
        scale: multiplies MMD_u^2 (1000 in CMMD, 100 in kadtk); default 1.
        max_points, seed: for the median heuristic.
        block_elements: memory bound of :func:`mmd2_unbiased`.

    Returns:
        :class:`KadResult`.
    """
    if bandwidth is None:
        h = median_bandwidth(emb_ref, max_points=max_points, seed=seed)
        n_used = min(np.shape(emb_ref)[0], max_points)
        rule = f"median pairwise distance of {n_used} reference embeddings (seed {seed})"
    else:
        h, rule = float(bandwidth), "given"
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be finite and > 0, got {scale}")
    value = float(scale) * mmd2_unbiased(emb_eval, emb_ref, h, block_elements)
    return KadResult(value, h, rule, float(scale), int(np.shape(emb_eval)[0]), int(np.shape(emb_ref)[0]))


def kad(emb_eval: ArrayLike, emb_ref: ArrayLike, bandwidth: float | None = None, scale: float = 1.0,
        max_points: int = DEFAULT_MAX_POINTS, seed: int = 0, block_elements: int = BLOCK_ELEMENTS) -> float:
    """KAD as a float; :func:`kad_result` takes the same arguments and also reports the bandwidth."""
    return kad_result(emb_eval, emb_ref, bandwidth, scale, max_points, seed, block_elements).value


# -- internals ----------------------------------------------------------------------------------------------------


def rbf_blocks(a: np.ndarray, b: np.ndarray, gamma: float, block_elements: int = BLOCK_ELEMENTS
               ) -> Iterator[tuple[int, int, np.ndarray]]:
    """(start, stop, K) over row blocks of ``a``: K[r, j] = exp(-gamma ||a_{start + r} - b_j||^2), never more than
    ``block_elements`` entries at once (|a|^2 + |b|^2 - 2 a.b, clipped at 0: centre both sets first)."""
    a_sq = np.einsum("ij,ij->i", a, a)  # (m,)
    b_sq = np.einsum("ij,ij->i", b, b)  # (n,)
    rows = max(1, block_elements // max(1, b.shape[0]))
    for start in range(0, a.shape[0], rows):
        stop = min(start + rows, a.shape[0])
        block = a_sq[start:stop, None] + b_sq[None, :] - 2.0 * (a[start:stop] @ b.T)  # (rows, n) squared distances
        np.maximum(block, 0.0, out=block)
        block *= -gamma
        np.exp(block, out=block)
        yield start, stop, block


def _kernel_sum(a: np.ndarray, b: np.ndarray, gamma: float, block_elements: int, same: bool) -> float:
    """sum_{i, j} exp(-gamma ||a_i - b_j||^2), leaving out i = j when ``same`` (a is b)."""
    total = 0.0
    for start, stop, block in rbf_blocks(a, b, gamma, block_elements):
        if same:
            r = np.arange(stop - start)
            block[r, start + r] = 0.0  # exact exclusion of k(x_i, x_i)
        total += float(block.sum())
    return total


def _embeddings(embeddings: ArrayLike, name: str) -> np.ndarray:
    return as_embeddings(embeddings, name, "the U-statistic leaves out i = j")


def _check_dims(x: np.ndarray, y: np.ndarray) -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"eval and reference embeddings differ in dimension: D={x.shape[1]} and D={y.shape[1]}")
