"""Clip-structured synthetic embeddings with closed-form truths, and the simulations that check the set statistics.

A clip of f frames is drawn as frames = c + e_1..f, c ~ N(mu, A) per clip (between clips), e ~ N(0, W) per frame
(within a clip), so frames of one clip are dependent and the frame marginal is N(mu, A + W). For two such
populations the population FAD is the Frechet distance of the two marginals (Heusel et al. 2017, eq. 6), and the
population MMD^2 with k(x, y) = exp(-||x - y||^2 / (2 h^2)) is closed form too: for x ~ N(m1, S1), y ~ N(m2, S2)
independent, x - y ~ N(d, S) with d = m1 - m2, S = S1 + S2, and

    E k(x, y) = det(I + S / h^2)^(-1/2) exp(-1/2 d^T (h^2 I + S)^(-1) d),

(the Gaussian integral of a Gaussian), so MMD^2 = E k(x, x') + E k(y, y') - 2 E k(x, y).

The tests (tests/test_set_statistics_simulation.py) and the docs tables share these routines; run
``python -m bench.metrics.simulate`` for the tables (more replications than the tests use). Everything is seeded.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np

from bench.bootstrap import bootstrap_mean_ci, set_draws
from bench.metrics.frechet import fad_inf, fad_inf_clips, fadtk_fad_inf_ns, frechet_distance, gaussian_stats
from bench.metrics.kernel import KAD_SCALE, KADTK_GAMMA_EPS, mmd2_unbiased
from bench.metrics.sets import clip_kad, fad_resampled, kad_resampled


@dataclass(frozen=True)
class ClipGaussian:
    """Clips of dependent frames: clip centre ~ N(mu, between), frame = centre + N(0, within)."""

    mu: np.ndarray  # (D,)
    between: np.ndarray  # (D, D): A, the spread of clip centres
    within: np.ndarray  # (D, D): W, the spread of frames around their clip's centre

    @property
    def marginal(self) -> tuple[np.ndarray, np.ndarray]:
        """(mu, A + W): the distribution of one frame."""
        return self.mu, self.between + self.within

    def sample(self, rng: np.random.Generator, n_clips: int, frames: int) -> np.ndarray:
        """(n_clips, frames, D) embeddings."""
        d = self.mu.shape[0]
        centres = rng.multivariate_normal(self.mu, self.between, size=n_clips)  # (n, D)
        noise = rng.multivariate_normal(np.zeros(d), self.within, size=(n_clips, frames))  # (n, f, D)
        return centres[:, None, :] + noise


def isotropic(dim: int, shift: float, between: float, within: float) -> ClipGaussian:
    """mu = shift * (1, ..., 1) / sqrt(D), A = between * I, W = within * I."""
    return ClipGaussian(np.full(dim, shift / math.sqrt(dim)), between * np.eye(dim), within * np.eye(dim))


def fad_truth(p: ClipGaussian, q: ClipGaussian) -> float:
    """Population FAD: the Frechet distance between the frame marginals."""
    return frechet_distance(*p.marginal, *q.marginal)


def rbf_expectation(m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray, bandwidth: float) -> float:
    """E exp(-||x - y||^2 / (2 h^2)) for independent x ~ N(m1, s1), y ~ N(m2, s2) (module docstring)."""
    s = s1 + s2
    h2 = bandwidth * bandwidth
    d = m1 - m2
    _, logdet = np.linalg.slogdet(np.eye(len(d)) + s / h2)
    return float(math.exp(-0.5 * logdet - 0.5 * d @ np.linalg.solve(h2 * np.eye(len(d)) + s, d)))


def mmd2_truth(p: ClipGaussian, q: ClipGaussian, bandwidth: float, scale: float = KAD_SCALE) -> float:
    """Population scale * MMD^2 of the frame marginals for kadtk's gamma = 1 / (2 h^2 + 1e-8)."""
    h = math.sqrt(bandwidth * bandwidth + KADTK_GAMMA_EPS / 2.0)  # the h that gamma = 1 / (2 h^2) means
    (mp, sp), (mq, sq) = p.marginal, q.marginal
    return scale * (rbf_expectation(mp, sp, mp, sp, h) + rbf_expectation(mq, sq, mq, sq, h)
                    - 2.0 * rbf_expectation(mp, sp, mq, sq, h))


@dataclass(frozen=True)
class Setup:
    """One simulated comparison: eval population, reference population, set sizes and the kernel's h."""

    eval_pop: ClipGaussian
    reference_pop: ClipGaussian
    n_eval: int  # clips
    n_reference: int  # clips
    frames: int  # per clip
    bandwidth: float


def default_setup(n_eval: int = 40, n_reference: int = 40, frames: int = 5) -> Setup:
    """D = 4, strongly clip-structured (between 0.6, within 0.4 per axis); eval shifted by 0.8 from the reference."""
    return Setup(isotropic(4, 0.8, 0.6, 0.4), isotropic(4, 0.0, 0.6, 0.4), n_eval, n_reference, frames, 2.5)


def expected_fad(setup: Setup, replications: int = 4000, seed: int = 0) -> tuple[float, float]:
    """Monte Carlo E[FAD] at the setup's n_eval and n_reference (the target of a FAD interval, as FAD is biased at
    finite n): ``(mean, its standard error)``."""
    rng = np.random.default_rng([seed, 7])
    values = np.empty(replications)
    d = setup.eval_pop.mu.shape[0]
    for r in range(replications):
        x = setup.eval_pop.sample(rng, setup.n_eval, setup.frames).reshape(-1, d)
        y = setup.reference_pop.sample(rng, setup.n_reference, setup.frames).reshape(-1, d)
        values[r] = frechet_distance(*gaussian_stats(x), *gaussian_stats(y))
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(replications))


@dataclass(frozen=True)
class Coverage:
    """How often a nominal interval covered its truth over seeded replications."""

    statistic: str
    reference: str  # "resampled (two-sample)" or "held fixed"
    truth: float
    coverage: float
    replications: int
    resamples: int
    mean_se: float  # mean bootstrap SE
    sd_value: float  # SD of the point estimate over replications: the SE the bootstrap should find


def set_coverage(setup: Setup, statistic: str, two_sample: bool, replications: int = 200, resamples: int = 200,
                 seed: int = 0, truth: float | None = None, confidence: float = 0.95) -> Coverage:
    """Coverage of the standard bootstrap interval of FAD or KAD (value +- z SE over clips), the reference a sample.

    Args:
        setup: populations, sizes and h.
        statistic: "fad" (truth: :func:`expected_fad` unless given) or "kad" (truth: :func:`mmd2_truth`, x100).
        two_sample: resample the reference clips too (True), or hold the drawn reference fixed (False).
        replications, resamples, seed: of the simulation; replication r uses ``default_rng([seed, r])``.
        truth: the target, when already known.
    """
    if statistic not in ("fad", "kad"):
        raise ValueError(f"statistic must be 'fad' or 'kad', got {statistic!r}")
    if truth is None:
        truth = (expected_fad(setup, seed=seed)[0] if statistic == "fad"
                 else mmd2_truth(setup.eval_pop, setup.reference_pop, setup.bandwidth))
    covered, ses, values = 0, [], []
    for r in range(replications):
        rng = np.random.default_rng([seed, r])
        evals = list(setup.eval_pop.sample(rng, setup.n_eval, setup.frames))
        refs = list(setup.reference_pop.sample(rng, setup.n_reference, setup.frames))
        draws = set_draws(setup.n_eval, setup.n_reference if two_sample else None, resamples, seed=r)
        if statistic == "fad":
            stat = fad_resampled({"m": evals}, refs, draws)["m"]
        else:
            stat = kad_resampled({"m": evals}, refs, draws, bandwidth=setup.bandwidth)[0]["m"]
        est = stat.estimate(confidence)
        covered += int(est.low <= truth <= est.high)
        ses.append(est.se)
        values.append(est.value)
    return Coverage(statistic, "resampled (two-sample)" if two_sample else "held fixed", float(truth),
                    covered / replications, replications, resamples, float(np.mean(ses)),
                    float(np.std(values, ddof=1)))


def mean_ci_coverage(n: int, replications: int = 200, resamples: int = 1000, seed: int = 0) -> float:
    """Coverage of :func:`bench.bootstrap.bootstrap_mean_ci` (percentile, 95%) for the mean of n per-clip values
    drawn from a skewed distribution with a known mean (gamma, shape 4, scale 0.25: mean 1)."""
    covered = 0
    for r in range(replications):
        values = np.random.default_rng([seed, r]).gamma(4.0, 0.25, size=n)
        est = bootstrap_mean_ci(values, resamples, seed=r)
        covered += int(est.low <= 1.0 <= est.high)
    return covered / replications


@dataclass(frozen=True)
class NullMeans:
    """KAD x100 between two samples of ONE population: frame-pooled U-statistic against the clip-level one."""

    frames: int
    frame_pooled: float  # mean over replications
    frame_pooled_se: float
    clip_level: float
    clip_level_se: float
    replications: int


def kad_null_means(frames: int, n_clips: int = 50, replications: int = 200, seed: int = 0,
                   population: ClipGaussian | None = None, bandwidth: float = 2.5) -> NullMeans:
    """Both samples from one clip-structured population (truth 0), fixed h; frames = 1 is the i.i.d. case."""
    pop = population if population is not None else isotropic(4, 0.0, 0.6, 0.4)
    pooled, clip = np.empty(replications), np.empty(replications)
    d = pop.mu.shape[0]
    for r in range(replications):
        rng = np.random.default_rng([seed, r, frames])
        x, y = pop.sample(rng, n_clips, frames), pop.sample(rng, n_clips, frames)
        pooled[r] = KAD_SCALE * mmd2_unbiased(x.reshape(-1, d), y.reshape(-1, d), bandwidth)
        clip[r] = clip_kad(list(x), list(y), bandwidth=bandwidth)[0]
    root = math.sqrt(replications)
    return NullMeans(frames, float(pooled.mean()), float(pooled.std(ddof=1) / root), float(clip.mean()),
                     float(clip.std(ddof=1) / root), replications)


@dataclass(frozen=True)
class FadInfErrors:
    """FAD-inf estimates over replications against the population FAD."""

    truth: float
    fad_full: float  # mean FAD of the whole eval set
    clip_variant: float  # mean FAD-inf over clips
    clip_variant_sd: float
    frame_variant: float  # mean FAD-inf over frames, without replacement (ours)
    fadtk_variant: float  # mean FAD-inf of fadtk's procedure (frames with replacement, its sizes)
    replications: int


def fad_inf_errors(eval_pop: ClipGaussian, reference_pop: ClipGaussian, n_clips: int, frames: int,
                   replications: int = 40, seed: int = 0, n_repeats: int = 5) -> FadInfErrors:
    """FAD-inf of eval sets of ``n_clips`` clips against the reference POPULATION statistics (so only the eval
    side is finite), clip variant against frame variants; the truth is :func:`fad_truth`."""
    mu_r, sigma_r = reference_pop.marginal
    d = mu_r.shape[0]
    full, clip, frame, fadtk = (np.empty(replications) for _ in range(4))
    for r in range(replications):
        x = eval_pop.sample(np.random.default_rng([seed, r]), n_clips, frames)
        rows = x.reshape(-1, d)
        full[r] = frechet_distance(*gaussian_stats(rows), mu_r, sigma_r)
        clip[r] = fad_inf_clips(list(x), mu_r, sigma_r, n_repeats=n_repeats, seed=r).value
        frame[r] = fad_inf(rows, mu_r, sigma_r, n_repeats=n_repeats, seed=r).value
        ns = fadtk_fad_inf_ns(rows.shape[0], min_n=min(500, rows.shape[0] // 2))
        fadtk[r] = fad_inf(rows, mu_r, sigma_r, ns=ns, seed=r, replace=True).value
    return FadInfErrors(fad_truth(eval_pop, reference_pop), float(full.mean()), float(clip.mean()),
                        float(clip.std(ddof=1)), float(frame.mean()), float(fadtk.mean()), replications)


def fad_inf_setup() -> tuple[ClipGaussian, ClipGaussian]:
    """D = 8, clip centres spread 0.8, frames 0.2 around them; reference N(0, I) as the population."""
    return isotropic(8, 0.5, 0.8, 0.2), isotropic(8, 0.0, 0.5, 0.5)


# -- the docs tables ----------------------------------------------------------------------------------------------


def _coverage_rows(replications: int, resamples: int) -> list[str]:
    rows = ["| interval | reference | n eval x n ref clips (frames) | truth | coverage | mean boot SE | SD of value |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for n in (30, 100):
        cov = mean_ci_coverage(n, replications, 1000)
        rows.append(f"| per-clip mean, percentile | - | {n} | 1 (gamma mean) | {cov:.1%} | - | - |")
    setup = default_setup()
    fad_target, _ = expected_fad(setup, 8000)
    for stat, truth in (("fad", fad_target), ("kad", mmd2_truth(setup.eval_pop, setup.reference_pop,
                                                                 setup.bandwidth))):
        for two in (True, False):
            c = set_coverage(setup, stat, two, replications, resamples, truth=truth)
            label = "FAD, E[FAD] at n (MC)" if stat == "fad" else "KAD x100, population MMD^2"
            rows.append(f"| {label} | {c.reference} | {setup.n_eval} x {setup.n_reference} ({setup.frames}) | "
                        f"{c.truth:.4g} | {c.coverage:.1%} | {c.mean_se:.4g} | {c.sd_value:.4g} |")
    return rows


def _null_rows(replications: int) -> list[str]:
    rows = ["| frames per clip | frame-pooled KAD x100 (old) | clip-level KAD x100 (new) |", "| --- | --- | --- |"]
    for frames in (1, 5, 10):
        m = kad_null_means(frames, replications=replications)
        rows.append(f"| {frames} | {m.frame_pooled:+.4f} +- {m.frame_pooled_se:.4f} | "
                    f"{m.clip_level:+.4f} +- {m.clip_level_se:.4f} |")
    return rows


def _fad_inf_rows(replications: int) -> list[str]:
    eval_pop, ref_pop = fad_inf_setup()
    rows = ["| clips x frames | truth | FAD, whole set | FAD-inf clips (ours) | FAD-inf frames, no repl. | "
            "FAD-inf frames, fadtk's procedure |", "| --- | --- | --- | --- | --- | --- |"]
    for n_clips, frames in ((100, 1), (100, 10), (50, 20)):
        e = fad_inf_errors(eval_pop, ref_pop, n_clips, frames, replications)
        rows.append(f"| {n_clips} x {frames} | {e.truth:.4f} | {e.fad_full:.4f} | {e.clip_variant:.4f} "
                    f"(SD {e.clip_variant_sd:.4f}) | {e.frame_variant:.4f} | {e.fadtk_variant:.4f} |")
    return rows


def main(argv: list[str] | None = None) -> None:
    """Print the markdown tables of docs/design.md's Statistics section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=1000)
    parser.add_argument("--resamples", type=int, default=500)
    args = parser.parse_args(argv)
    print("### Coverage of nominal 95% intervals\n")
    print("\n".join(_coverage_rows(args.replications, args.resamples)))
    print("\n### KAD x100 under the null (one population, mean +- SE over replications)\n")
    print("\n".join(_null_rows(args.replications)))
    print("\n### FAD-inf against the population FAD (means over replications)\n")
    print("\n".join(_fad_inf_rows(max(20, args.replications // 25))))


if __name__ == "__main__":
    main()
