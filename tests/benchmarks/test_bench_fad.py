"""FAD and KAD with bootstrap CIs over clips (issue 5): the set-level statistics the harness runs per model.

The issue's target: FAD plus a 1000-resample bootstrap CI for 100 vs 100 clips of 512-d embeddings (one
embedding per clip, as CLAP gives for a 10 s clip) in <= 5 s on the 2-core CPU. Also the frame-pooled case the
VGGish default produces for 47.55 s clips (about 49 frames of 128-d per clip). Random embeddings: the cost of the
statistics does not depend on what the embeddings mean.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from bench.metrics.frechet import gaussian_stats
from bench.metrics.sets import clip_bootstrap_fad, clip_bootstrap_kad


def _set(seed: int, clips: int, frames: int, dim: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(frames, dim)) for _ in range(clips)]


@pytest.mark.parametrize(("frames", "dim"), [(1, 512), (49, 128)], ids=["100x1x512", "100x49x128"])
def test_fad_with_1000_resample_bootstrap(benchmark, summary, frames: int, dim: int) -> None:
    evals = _set(0, 100, frames, dim)
    mu, sigma = gaussian_stats(np.concatenate(_set(1, 100, frames, dim)))
    est = benchmark.pedantic(clip_bootstrap_fad, args=(evals, mu, sigma), kwargs={"n_resamples": 1000},
                             rounds=3, iterations=1)
    assert est.n == 100 and est.low < est.value < est.high
    summary.append(f"FAD + 1000-resample bootstrap, 100 vs 100 clips of {frames} x {dim}-d: "
                   f"median {benchmark.stats.stats.median:.2f} s (issue target <= 5 s for 1 x 512-d)")


def test_kad_with_1000_resample_bootstrap(benchmark, summary) -> None:
    evals = _set(0, 100, 49, 128)
    ref = np.concatenate(_set(1, 100, 49, 128))
    est, _ = benchmark.pedantic(clip_bootstrap_kad, args=(evals, ref), kwargs={"n_resamples": 1000},
                                rounds=3, iterations=1)
    assert est.n == 100 and est.low < est.high
    summary.append(f"KAD + 1000-resample bootstrap, 100 clips x 49 x 128-d vs 4,900 reference frames: "
                   f"median {benchmark.stats.stats.median:.2f} s")


@pytest.mark.parametrize("dim", [128, 512, 2048])
def test_frechet_distance(benchmark, summary, dim: int) -> None:
    """One Frechet distance between two full-rank Gaussians by our route (symmetric eigh of A S2 A, the one every
    FAD, FAD-inf point and per-song FAD uses), with the general-eigvals cross-check timed once in the same run."""
    from bench.metrics.frechet import frechet_distance, frechet_distance_eigvals

    mu1, s1 = gaussian_stats(np.concatenate(_set(0, 1, 4 * dim, dim)))
    mu2, s2 = gaussian_stats(np.concatenate(_set(1, 1, 4 * dim, dim)))
    value = benchmark(frechet_distance, mu1, s1, mu2, s2)
    ours_s = benchmark.stats.stats.median
    t0 = time.perf_counter()
    cross_check = frechet_distance_eigvals(mu1, s1, mu2, s2)
    eigvals_s = time.perf_counter() - t0
    assert value == pytest.approx(cross_check, rel=1e-6)
    summary.append(f"Frechet distance, {dim}-d: eigh route (ours) {ours_s * 1e3:.1f} ms; general eigvals "
                   f"cross-check {eigvals_s * 1e3:.1f} ms (one call)")
