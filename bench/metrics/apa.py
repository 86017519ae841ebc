"""APA as published: loudness-matched mixes, 5 s windows, a shuffle of windows, and a bootstrap over items.

Accompaniment Prompt Adherence (Grachten and Nistal 2025, ICASSP, arXiv 2503.06346; their package
SonyCSLParis/audio-metrics) compares three sets of embeddings of *mixes* (early fusion):

- X, the true pairs: each context (here the vocal) mixed with its own stem (the true accompaniment);
- X', mismatched pairs: each context window mixed with the stem window of another, shuffled, window;
- Y, the candidate: each context mixed with a system's stem (a model's clip).

    APA = 1/2 + (d(Y, X') - d(Y, X)) / (2 d(X, X'))      (clipped to [0, 1])

with d the squared Frechet distance between Gaussians fitted to the window embeddings (FAD's formula). The
package's pipeline, re-derived here (arrays in, arrays out; no files, no models):

1. every track mono at the embedder's rate, 48 kHz for LAION-CLAP (the package resamples with soxr ``HQ``);
2. context and stem cut into 5 s windows together, the partial last window dropped (``audio_slicer``);
3. each window pair mixed by ``mix_tracks_loudness`` with its defaults (the package's mix ``"L0"``): the stem
   scaled to the context's integrated loudness (ITU-R BS.1770-4, pyloudnorm's meter; stem offset 0 dB), the sum
   scaled to -20 LUFS, and a peak limiter (attack 0.99, release 0.99, 527-sample look-ahead, threshold 0.5) only
   when a peak then exceeds full scale (:func:`loudness_matched_mix`, :func:`peak_limit`);
4. each 5 s mix embedded once by LAION-CLAP music (repeat-padded to the model's 10 s input; the package's
   ``LaionCLAP`` with the ``music_audioset_epoch_15_esc_90.14`` checkpoint; no quantisation, no PCA by default):
   that is :mod:`bench.scoring.apa`'s job;
5. X' pairs each context window with the stem of a shuffled window (:func:`mismatch_permutation`).

Where we differ, deliberately (docs say so too): the package's shuffle of the X' windows is a plain random
permutation when the set holds at most 1000 windows (a streaming shuffle beyond), so a window can keep its own stem
(a true pair in X') or take another window of its own song (same key and tempo); ours is seeded and never pairs a
context with a stem window of its own item. The package returns APA = 0 when d(X, X') = 0; we return NaN (the
embedding cannot tell the pairs apart; :func:`bench.metrics.adherence.apa_from_distances`).

Bootstrap over items (:func:`apa_resampled`): a resample draws n items with replacement (the shared
:class:`bench.bootstrap.SetDraws`, the same rows for every model, so differences are paired); each set keeps the
windows of the drawn items, each as many times as its item was drawn; the X' shuffle stays fixed (a mismatched
window belongs to the item of its context). All three sets, and so d(X, X'), are recomputed on every resample:
the true pairs are a sample of items too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from bench.bootstrap import ResampledStatistic, SetDraws
from bench.metrics.adherence import apa_from_distances
from bench.metrics.frechet import one_blas_thread

EMBED_RATE = 48_000  # LAION-CLAP's input rate: the package resamples to it before windowing and mixing
WINDOW_S = 5.0  # the package's win_dur
TARGET_LUFS = -20.0  # mix_tracks_loudness out_db
STEM_GAIN_DB = 0.0  # stem loudness relative to the context's: mix "L0" (L1: -3, L2: -6)
SILENT_PEAK = 1e-5  # a channel whose peak is below this is silent (mix_tracks_loudness's eps)
LIMITER_ATTACK = 0.99  # one-pole smoothing of the gain, per sample
LIMITER_RELEASE = 0.99  # per-sample decay of the peak envelope
LIMITER_DELAY = 527  # look-ahead, samples
LIMITER_THRESHOLD = 0.5  # the envelope level above which the gain falls
BLOCK_RESAMPLES = 50  # resamples batched through one eigensolver call
WHAT = "APA (Grachten & Nistal 2025), mixes at -20 LUFS, 5 s windows, squared Frechet"
_TINY_RATIO = np.finfo(np.float64).eps  # eigenvalues below D * eps * max are round-off


@dataclass(frozen=True)
class MixParams:
    """Everything between two mono tracks and the mix windows the embedder sees (part of every cache key)."""

    rate: int = EMBED_RATE
    window_s: float = WINDOW_S
    target_lufs: float = TARGET_LUFS
    stem_gain_db: float = STEM_GAIN_DB
    limiter: tuple[float, float, int, float] = (LIMITER_ATTACK, LIMITER_RELEASE, LIMITER_DELAY, LIMITER_THRESHOLD)

    @property
    def window_samples(self) -> int:
        return int(self.rate * self.window_s)  # int(), as the package's audio_slicer

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "limiter": list(self.limiter),
                "method": "audio-metrics mix_tracks_loudness (L0) re-derived; pyloudnorm BS.1770-4 meter"}


DEFAULT_MIX = MixParams()

# ---------------------------------------------------------------------------------------------------- mixing


@lru_cache(maxsize=8)
def _meter(rate: int) -> Any:
    import pyloudnorm

    return pyloudnorm.Meter(rate)  # K-weighting, 400 ms blocks, 75% overlap


def integrated_loudness(x: np.ndarray, rate: int) -> float:
    """Integrated gated loudness of a mono signal in LUFS (ITU-R BS.1770-4); -inf when every block is gated out."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log10(0) of silent blocks: gated out, as the standard says
        return float(_meter(rate).integrated_loudness(np.asarray(x, dtype=np.float64)))


def _gain_to(x: np.ndarray, measured: float, target: float) -> np.ndarray:
    """``x`` scaled from ``measured`` to ``target`` LUFS (a gain of 10^((target - measured) / 20))."""
    return x * 10.0 ** ((target - measured) / 20.0)


def peak_limit(x: ArrayLike, attack: float = LIMITER_ATTACK, release: float = LIMITER_RELEASE,
               delay: int = LIMITER_DELAY, threshold: float = LIMITER_THRESHOLD) -> np.ndarray:
    """The look-ahead peak limiter the package applies to a mix that exceeds full scale (numpy_audio_limiter).

    Per input sample i (the signal followed by ``delay`` zeros), with envelope e and gain g starting at 0 and 1:

        e_i = max(release * e_{i-1}, |x_i|),   t_i = threshold / e_i if e_i > threshold else 1,
        g_i = attack * g_{i-1} + (1 - attack) * t_i,   y_{i - delay} = x_{i - delay} * g_i.

    Re-derived in closed form rather than a sample loop: e_i = release^i * max_{j <= i} |x_j| release^{-j} (a running
    maximum, taken in the log domain so release^{-j} cannot overflow), and g is a one-pole filter of t.

    Returns:
        (S,) float64, the same length as ``x``.
    """
    from scipy.signal import lfilter

    x = np.asarray(x, dtype=np.float64)
    magnitude = np.abs(np.concatenate([x, np.zeros(delay)]))
    steps = np.arange(magnitude.size) * math.log(release)
    with np.errstate(divide="ignore"):
        log_envelope = steps + np.maximum.accumulate(np.log(magnitude) - steps)
    envelope = np.exp(log_envelope)
    target = np.where(envelope > threshold, threshold / np.where(envelope > 0, envelope, 1.0), 1.0)
    gain, _ = lfilter([1.0 - attack], [1.0, -attack], target, zi=[attack * 1.0])  # g_{-1} = 1
    return x * gain[delay:delay + x.size]


def loudness_matched_mix(context: ArrayLike, stem: ArrayLike, params: MixParams = DEFAULT_MIX) -> np.ndarray:
    """One window's mix as the package's ``mix_tracks_loudness`` (mix "L0") makes it.

    The stem is set to the context's integrated loudness plus ``stem_gain_db``, the two are summed, and the sum is
    set to ``target_lufs``; a mix whose peak then exceeds 1 goes through :func:`peak_limit`. A silent channel
    (peak below 1e-5) is left out: with one silent, the other alone is normalised; with both silent the context is
    returned as it is. A loudness of -inf (every 400 ms block below -70 LUFS) skips that gain step.

    Args:
        context, stem: (S,) mono float at ``params.rate``, the same length.

    Returns:
        (S,) float64.
    """
    c = np.asarray(context, dtype=np.float64)
    s = np.asarray(stem, dtype=np.float64)
    if c.ndim != 1 or c.shape != s.shape:
        raise ValueError(f"context and stem must be 1-D of one length, got shapes {c.shape} and {s.shape}")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(s))):
        raise ValueError("context or stem holds NaN or infinite samples")
    silent_c, silent_s = np.max(np.abs(c)) < SILENT_PEAK, np.max(np.abs(s)) < SILENT_PEAK
    if silent_c and silent_s:
        return c.copy()
    if silent_c or silent_s:
        mix = s if silent_c else c
    else:
        l_context, l_stem = integrated_loudness(c, params.rate), integrated_loudness(s, params.rate)
        target = l_context + params.stem_gain_db
        if math.isfinite(l_stem) and math.isfinite(target):
            s = _gain_to(s, l_stem, target)
        mix = c + s
    l_mix = integrated_loudness(mix, params.rate)
    if math.isfinite(l_mix) and math.isfinite(params.target_lufs):
        mix = _gain_to(mix, l_mix, params.target_lufs)
    if np.max(np.abs(mix)) > 1.0:
        attack, release, delay, threshold = params.limiter
        mix = peak_limit(mix, attack, release, int(delay), threshold)
    return np.array(mix, dtype=np.float64)


# ------------------------------------------------------------------------------------------------- windowing


def window_count(n_samples: int, params: MixParams = DEFAULT_MIX) -> int:
    """Whole windows in ``n_samples``: the partial last one is dropped (the package's ``drop_last=True``)."""
    return max(0, int(n_samples) // params.window_samples)


def cut_windows(x: ArrayLike, params: MixParams = DEFAULT_MIX) -> np.ndarray:
    """(S,) -> (window_count, window_samples): consecutive, non-overlapping windows from sample 0."""
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"cut_windows takes a mono (S,) track, got shape {x.shape}")
    n, w = window_count(x.size, params), params.window_samples
    return x[:n * w].reshape(n, w)


def mixed_windows(context: ArrayLike, stem: ArrayLike, params: MixParams = DEFAULT_MIX) -> np.ndarray:
    """Cut both tracks (mono, ``params.rate``) into windows over their common length and mix each pair.

    Returns:
        (windows, window_samples) float64; zero rows when the common length is shorter than one window.
    """
    c, s = np.asarray(context), np.asarray(stem)
    n = min(c.size, s.size)
    cw, sw = cut_windows(c[:n], params), cut_windows(s[:n], params)
    if cw.shape[0] == 0:
        return np.zeros((0, params.window_samples))
    return np.stack([loudness_matched_mix(a, b, params) for a, b in zip(cw, sw, strict=True)])


# ----------------------------------------------------------------------------------------- mismatched pairs


def mismatch_permutation(window_items: ArrayLike, seed: int, max_draws: int = 1000) -> np.ndarray:
    """For every true-pair window w, the window perm[w] whose stem goes with w's context in X'.

    A seeded permutation with no window paired with a window of its own item (so no true pair, and no pair from
    one song, enters X'). Rejection sampling of ``np.random.default_rng(seed).permutation`` (uniform over the
    valid permutations; with 2 windows per item about e^-2, so ~7 draws); past ``max_draws`` the last draw's
    conflicts are repaired by swaps, each of which fixes one conflict and creates none.

    Args:
        window_items: (W,) the item (any integer label) of each window.
        seed: seeds the generator.

    Raises:
        ValueError: when an item holds more than half the windows (no such permutation exists).
    """
    g = np.asarray(window_items)
    if g.ndim != 1 or g.size < 2:
        raise ValueError(f"need at least two windows, got shape {g.shape}")
    _, counts = np.unique(g, return_counts=True)
    if 2 * counts.max() > g.size:
        raise ValueError(f"one item holds {counts.max()} of {g.size} windows: more than half, so some of its "
                         "contexts would have to take its own stems")
    rng = np.random.default_rng(seed)
    for _ in range(max(1, max_draws)):
        perm = rng.permutation(g.size)
        if not np.any(g[perm] == g):
            return perm
    for p in np.flatnonzero(g[perm] == g):
        if g[perm[p]] != g[p]:
            continue
        ok = np.flatnonzero((g[perm] != g[p]) & (g != g[perm[p]]))
        q = int(rng.choice(ok))
        perm[p], perm[q] = perm[q], perm[p]
    return perm


# ------------------------------------------------------------------------------------ APA and its bootstrap


def _per_item(per_item: Sequence[ArrayLike], name: str) -> tuple[np.ndarray | None, np.ndarray]:
    """One set's windows stacked, (W, D) or None when it has none, and the item of each window (W,)."""
    arrays, items = [], []
    for i, e in enumerate(per_item):
        a = np.asarray(e, dtype=np.float64)
        if a.size == 0:
            continue  # a missing clip or an item too short for one window
        if a.ndim != 2:
            raise ValueError(f"{name}[{i}] must be (windows, D), got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name}[{i}] holds NaN or infinite values")
        arrays.append(a)
        items.append(np.full(a.shape[0], i))
    if not arrays:
        return None, np.zeros(0, dtype=np.int64)
    return np.concatenate(arrays), np.concatenate(items)


@dataclass(frozen=True)
class _Drawn:
    """One set on a block of resamples: for resample b, the windows drawn (padded to one length with weight 0)."""

    set_index: int
    local: np.ndarray  # (nb, L) window indices within the set
    scale: np.ndarray  # (nb, L) sqrt(k / (N - 1)) (0 on padding)
    mu: np.ndarray  # (nb, D) the weighted mean
    mu2: np.ndarray  # (nb,) |mu|^2
    trace: np.ndarray  # (nb,) tr S
    valid: np.ndarray  # (nb,) N >= 2


class _SetGrams:
    """Window embeddings of every set and their Gram blocks, computed once per pair of sets that meet.

    Everything is centred on the true pairs' mean first: no distance changes, and the inner products of nearby
    L2-normalised embeddings lose nothing to cancellation.
    """

    def __init__(self, named_sets: Sequence[tuple[str, Sequence[ArrayLike]]], centre_on: int) -> None:
        stacked = [_per_item(per_item, name) for name, per_item in named_sets]
        dims = {x.shape[1] for x, _ in stacked if x is not None}
        if len(dims) > 1:
            raise ValueError(f"every set must share D, got {sorted(dims)} ({[n for n, _ in named_sets]})")
        if not dims:
            raise ValueError("no windows in any set")
        dim = dims.pop()
        anchor = stacked[centre_on][0]
        centre = anchor.mean(axis=0) if anchor is not None else np.zeros(dim)
        self.x = [np.zeros((0, dim)) if x is None else x - centre for x, _ in stacked]
        self.items = [items for _, items in stacked]
        self.sq_norms = [np.einsum("wd,wd->w", x, x) for x in self.x]
        self._blocks: dict[tuple[int, int], np.ndarray] = {}

    def block(self, a: int, b: int) -> np.ndarray:
        if (a, b) not in self._blocks:
            self._blocks[(a, b)] = self.x[a] @ self.x[b].T
        return self._blocks[(a, b)]

    def drawn(self, s: int, counts: np.ndarray) -> _Drawn | None:
        """Set ``s`` on the resamples ``counts`` (nb, items): window w repeated counts[b, item(w)] times; None when
        the set has no windows at all."""
        if self.items[s].size == 0:
            return None
        k_all = counts[:, self.items[s]].astype(np.float64)  # (nb, W)
        total = k_all.sum(axis=1)
        valid = total >= 2
        safe = np.where(valid, total, 2.0)
        mu = (k_all @ self.x[s]) / safe[:, None]  # (nb, D)
        mu2 = np.einsum("bd,bd->b", mu, mu)
        trace = (k_all @ self.sq_norms[s] - safe * mu2) / (safe - 1.0)  # tr S, ddof=1 over the repeated rows
        width = max(1, int((k_all > 0).sum(axis=1).max()))
        local = np.argsort(k_all == 0, axis=1, kind="stable")[:, :width]  # the drawn windows first, then padding
        k = np.take_along_axis(k_all, local, axis=1)  # 0 on padding
        return _Drawn(s, local, np.sqrt(k / (safe - 1.0)[:, None]), mu, mu2, trace, valid)

    def frechet(self, fx: _Drawn | None, fy: _Drawn | None, nb: int) -> np.ndarray:
        """(nb,) squared Frechet distances (Heusel et al. 2017, eq. 6) from Gram blocks, on the windows' side.

        With A_x = diag(sqrt(k / (N - 1))) (X - 1 mu^T), so that S_x = A_x^T A_x (likewise A_y), S_x S_y and
        K K^T with K = A_x A_y^T share their non-zero eigenvalues, so tr((S_x S_y)^{1/2}) is the nuclear norm of
        K, the sum of the square roots of the eigenvalues of K K^T: a W' x W' problem (W' windows drawn, ~126
        for 100 items x 2 windows) instead of D x D. K needs only the Gram block G_xy:
        (X - 1 mu_x^T)(Y - 1 mu_y^T)^T = G_xy - (X mu_y) 1^T - 1 (Y mu_x)^T + <mu_x, mu_y> 1 1^T.
        """
        if fx is None or fy is None:
            return np.full(nb, np.nan)
        k = self.block(fx.set_index, fy.set_index)[fx.local[:, :, None], fy.local[:, None, :]]  # (nb, Lx, Ly) copy
        x_mu_y = np.take_along_axis(fy.mu @ self.x[fx.set_index].T, fx.local, axis=1)  # <x_w, mu_y>, (nb, Lx)
        mu_x_y = np.take_along_axis(fx.mu @ self.x[fy.set_index].T, fy.local, axis=1)  # <mu_x, y_v>, (nb, Ly)
        cross = np.einsum("bd,bd->b", fx.mu, fy.mu)  # <mu_x, mu_y>
        k -= x_mu_y[:, :, None]  # in place: these blocks are the big arrays here
        k -= mu_x_y[:, None, :]
        k += cross[:, None, None]
        k *= fx.scale[:, :, None]
        k *= fy.scale[:, None, :]
        kt = np.swapaxes(k, 1, 2)
        square = k @ kt if k.shape[1] <= k.shape[2] else kt @ k
        eigenvalues = np.linalg.eigvalsh(square)  # (nb, L), ascending
        top = eigenvalues[:, -1:]
        eigenvalues = np.where(eigenvalues > eigenvalues.shape[1] * _TINY_RATIO * top, eigenvalues, 0.0)
        trace_root = np.sqrt(eigenvalues).sum(axis=1)
        d = fx.mu2 + fy.mu2 - 2.0 * cross + fx.trace + fy.trace - 2.0 * trace_root
        return np.where(fx.valid & fy.valid, d, np.nan)


def _apa_block(grams: _SetGrams, n_candidates: int, counts: np.ndarray) -> np.ndarray:
    """(nb, models) APA with item i of resample b weighted by counts[b, i]; sets: candidates, true, mismatched."""
    true, mismatched = n_candidates, n_candidates + 1
    fr, frp = grams.drawn(true, counts), grams.drawn(mismatched, counts)
    d_rrp = grams.frechet(fr, frp, counts.shape[0])
    out = np.full((counts.shape[0], n_candidates), np.nan)
    for c in range(n_candidates):
        fc = grams.drawn(c, counts)
        d_cr, d_crp = grams.frechet(fc, fr, counts.shape[0]), grams.frechet(fc, frp, counts.shape[0])
        for b in np.flatnonzero(np.isfinite(d_cr) & np.isfinite(d_crp) & np.isfinite(d_rrp)):
            out[b, c] = apa_from_distances(d_cr[b], d_crp[b], d_rrp[b])
    return out


def _check_lists(candidates: Mapping[str, Sequence[ArrayLike]], true_pairs: Sequence[ArrayLike],
                 mismatched_pairs: Sequence[ArrayLike]) -> int:
    n = len(true_pairs)
    if len(mismatched_pairs) != n or any(len(v) != n for v in candidates.values()):
        raise ValueError(f"every list must index the same {n} items: mismatched {len(mismatched_pairs)}, "
                         f"candidates {({m: len(v) for m, v in candidates.items()})}")
    return n


def apa_value(candidate: Sequence[ArrayLike], true_pairs: Sequence[ArrayLike],
              mismatched_pairs: Sequence[ArrayLike]) -> float:
    """APA of one candidate from per-item window embeddings (lists index the items; entries (windows_i, D))."""
    n = _check_lists({"candidate": candidate}, true_pairs, mismatched_pairs)
    grams = _SetGrams([("candidate", candidate), ("true_pairs", true_pairs), ("mismatched_pairs", mismatched_pairs)],
                      centre_on=1)
    return float(_apa_block(grams, 1, np.ones((1, n), dtype=np.int64))[0, 0])


def apa_resampled(candidates: Mapping[str, Sequence[ArrayLike]], true_pairs: Sequence[ArrayLike],
                  mismatched_pairs: Sequence[ArrayLike], draws: SetDraws, workers: int | None = None,
                  ) -> dict[str, ResampledStatistic]:
    """APA of every model on the full set and on each resample of ``draws`` (a bootstrap over items).

    Resample b weights item i by how often it appears in ``draws.eval_rows[b]``; the candidate, true and
    mismatched sets all keep the windows of the drawn items (the X' shuffle stays as built: a mismatched window
    belongs to the item of its context). Every model sees the same rows, so
    :func:`bench.bootstrap.paired_set_difference` of two results is a paired comparison (and of a model with
    itself exactly 0). ``draws.reference_rows`` is not used: APA's reference pairs are the items' own, resampled
    with them. A resample whose candidate, true or mismatched set has fewer than two windows gives NaN there.

    Cost: one Gram matrix of all windows, then per resample 1 + 2 x models eigenvalue problems of the size of the
    windows drawn (see :meth:`_PooledGram.frechet`).

    Args:
        candidates: model -> per item (windows_i, D) mix embeddings; an empty entry (0 windows) for an item the
            model has no usable clip for.
        true_pairs: per item (windows_i, D): the vocal mixed with its true accompaniment.
        mismatched_pairs: per item (windows_i, D): the vocal's windows mixed with the shuffled stems.
        draws: the shared resamples; ``eval_rows`` index these lists.
        workers: threads over blocks of resamples; default min(2, CPUs). The result does not depend on it.

    Returns:
        model -> :class:`ResampledStatistic` (value, resampled (B,), n = items, what).
    """
    n = _check_lists(candidates, true_pairs, mismatched_pairs)
    if draws.eval_rows.ndim != 2 or draws.eval_rows.shape[1] != n:
        raise ValueError(f"draws resample {draws.eval_rows.shape[1]} items, the lists hold {n}")
    models = list(candidates)
    grams = _SetGrams([*((f"candidates[{m!r}]", candidates[m]) for m in models), ("true_pairs", true_pairs),
                       ("mismatched_pairs", mismatched_pairs)], centre_on=len(models))
    values = _apa_block(grams, len(models), np.ones((1, n), dtype=np.int64))[0]
    counts = np.stack([np.bincount(rows, minlength=n) for rows in draws.eval_rows])  # (B, n)
    # resamples of similar size side by side, so that padding each block to its largest draw costs little
    order = np.argsort((counts > 0).sum(axis=1), kind="stable")
    blocks = [order[start:start + BLOCK_RESAMPLES] for start in range(0, order.size, BLOCK_RESAMPLES)]
    true, mismatched = len(models), len(models) + 1
    for pair in [(true, true), (true, mismatched), (mismatched, mismatched),  # the blocks the threads will read
                 *((c, other) for c in range(len(models)) for other in (c, true, mismatched))]:
        grams.block(*pair)
    resampled = np.empty((draws.n_resamples, len(models)))
    # threads over blocks (the eigensolver and matmul release the GIL), each with a one-thread BLAS
    with one_blas_thread(), ThreadPoolExecutor(max_workers=workers or min(2, os.cpu_count() or 1)) as pool:
        for chosen, block in zip(blocks, pool.map(lambda c: _apa_block(grams, len(models), counts[c]), blocks),
                                 strict=True):
            resampled[chosen] = block
    return {m: ResampledStatistic(float(values[j]), resampled[:, j], n, WHAT) for j, m in enumerate(models)}
