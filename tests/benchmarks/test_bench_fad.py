"""FAD and KAD with bootstrap CIs over clips (issues 5 and 13): the set-level statistics the harness runs per model.

Issue 13's target: FAD + KAD with the two-sample bootstrap (eval and reference clips resampled), B = 1000, 100 eval
x 100 reference clips, for 512-d single-frame clips (CLAP-like) and 128-d x 10-frame clips (VGGish-like), each
pair under about 2 s on the 2-core CPU (APA takes the rest of a 5 s budget). A statistics-file reference and
full-length VGGish clips are timed too. Random embeddings: the cost does not depend on what the embeddings mean.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from bench.bootstrap import set_draws
from bench.metrics.frechet import gaussian_stats
from bench.metrics.sets import fad_resampled, kad_resampled


def _set(seed: int, clips: int, frames: int, dim: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(frames, dim)) for _ in range(clips)]


def _fad_and_kad_two_sample(evals: list[np.ndarray], refs: list[np.ndarray]) -> tuple:
    draws = set_draws(len(evals), len(refs), 1000, seed=0)
    return fad_resampled({"model": evals}, refs, draws), kad_resampled({"model": evals}, refs, draws)[0]


@pytest.mark.parametrize(("frames", "dim"), [(1, 512), (10, 128)], ids=["100x1x512", "100x10x128"])
def test_fad_and_kad_two_sample_1000_resamples(benchmark, summary, frames: int, dim: int) -> None:
    evals, refs = _set(0, 100, frames, dim), _set(1, 100, frames, dim)
    fad, kad = benchmark.pedantic(_fad_and_kad_two_sample, args=(evals, refs), rounds=3, iterations=1)
    for stat in (fad["model"], kad["model"]):
        est = stat.estimate()
        assert stat.resampled.shape == (1000,) and est.low < est.value < est.high
    summary.append(f"FAD + KAD, two-sample bootstrap B=1000, 100 x 100 clips of {frames} x {dim}-d: median "
                   f"{benchmark.stats.stats.median:.2f} s (issue 13 target about 2 s)")


@pytest.mark.parametrize(("frames", "dim"), [(1, 512), (49, 128)], ids=["100x1x512", "100x49x128"])
def test_fad_against_a_statistics_file_1000_resamples(benchmark, summary, frames: int, dim: int) -> None:
    """The reference held fixed (a published .npz): only the eval rows are resampled."""
    evals = _set(0, 100, frames, dim)
    stats = gaussian_stats(np.concatenate(_set(1, 100, frames, dim)))
    out = benchmark.pedantic(lambda: fad_resampled({"model": evals}, stats, set_draws(100, None, 1000)),
                             rounds=3, iterations=1)
    est = out["model"].estimate()
    assert est.n == 100 and est.low < est.value < est.high
    summary.append(f"FAD against fixed statistics, 1000 resamples, 100 clips of {frames} x {dim}-d: "
                   f"median {benchmark.stats.stats.median:.2f} s")


def test_fad_and_kad_two_sample_on_full_length_vggish_clips(benchmark, summary) -> None:
    """47.55 s clips (49 VGGish frames each), 100 x 100: the default run's shape."""
    evals, refs = _set(0, 100, 49, 128), _set(1, 100, 49, 128)
    fad, kad = benchmark.pedantic(_fad_and_kad_two_sample, args=(evals, refs), rounds=3, iterations=1)
    assert all(s["model"].resampled.shape == (1000,) for s in (fad, kad))
    summary.append(f"FAD + KAD, two-sample bootstrap B=1000, 100 x 100 clips of 49 x 128-d: "
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
