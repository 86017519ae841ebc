"""Samplers: correctness against a closed-form oracle, determinism, identities, parity with diffusers."""

from __future__ import annotations

import math

import pytest
import torch

from samuel.diffusion import cosine_alpha_bar
from samuel.samplers import (
    SAMPLERS,
    sample,
    sample_ddim,
    sample_ddpm,
    sample_dpmpp_2m,
    sampling_timesteps,
)

AB = cosine_alpha_bar(800, 0.008)
MU, STD = 1.5, 0.5
N_ELEMENTS = 40_000


def gaussian_oracle(mu: float = MU, std: float = STD, alpha_bar: torch.Tensor = AB):
    """The ideal v-predictor for data x0 ~ N(mu, std^2), elementwise.

    E[x0 | x_t] = mu + a s^2 / (a^2 s^2 + sigma^2) (x_t - a mu), E[eps | x_t] = (x_t - a E[x0 | x_t]) / sigma,
    v = a E[eps] - sigma E[x0].
    """

    def model_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = alpha_bar[t].view(-1, *([1] * (x_t.ndim - 1))).to(torch.float64)
        a, sig = ab.sqrt(), (1 - ab).sqrt()
        x = x_t.double()
        x0 = mu + a * std**2 / (a**2 * std**2 + sig**2) * (x - a * mu)
        eps = (x - a * x0) / sig
        return (a * eps - sig * x0).to(x_t.dtype)

    return model_fn


@pytest.mark.parametrize(
    ("sampler", "steps", "options"),
    # DDPM is the paper's 800 steps; DDIM is first order and needs ~200; DPM-Solver++ must manage in <= 25.
    [("ddpm", 800, {}), ("ddim", 200, {"eta": 0.0}), ("ddim", 200, {"eta": 1.0}),
     ("dpmpp", 25, {}), ("dpmpp", 20, {})],
)
def test_sampler_reproduces_gaussian_data(sampler, steps, options):
    gen = torch.Generator().manual_seed(1234)
    x0 = sample(gaussian_oracle(), (100, 1, N_ELEMENTS // 100), AB, sampler=sampler, steps=steps,
                generator=gen, dtype=torch.float64, **options)
    se_mean = STD / math.sqrt(N_ELEMENTS)
    se_std = STD / math.sqrt(2 * N_ELEMENTS)
    assert abs(x0.mean().item() - MU) < 5 * se_mean
    assert abs(x0.std().item() - STD) < 5 * se_std


def exact_ode_solution(x_T: torch.Tensor) -> torch.Tensor:
    """The probability-flow ODE maps x_T to mu + s (x_T - a_T mu) / sqrt(a_T^2 s^2 + sigma_T^2) for Gaussian data."""
    a_t, s_t = AB[-1].sqrt().item(), (1 - AB[-1]).sqrt().item()
    return MU + STD * (x_T - a_t * MU) / math.sqrt(a_t**2 * STD**2 + s_t**2)


def test_dpmpp_is_second_order():
    # Deterministic samplers solve the probability-flow ODE; against its exact solution DPM-Solver++(2M) at
    # 25 steps must be far more accurate than first-order DDIM at 25 steps.
    x_t = torch.randn(4, 1, 256, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = exact_ode_solution(x_t)
    ts = sampling_timesteps(800, 25)
    err_dpm = (sample_dpmpp_2m(gaussian_oracle(), x_t, AB, ts, generator=None) - exact).abs().max().item()
    err_ddim = (sample_ddim(gaussian_oracle(), x_t, AB, ts, generator=None) - exact).abs().max().item()
    assert err_dpm < 0.01 < err_ddim / 5, (err_dpm, err_ddim)


def test_linear_spacing_is_why_quadratic_is_default():
    # With evenly spaced t the last interval is too coarse on the cosine schedule; record the measured gap.
    x_t = torch.randn(4, 1, 256, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = exact_ode_solution(x_t)
    err = {sp: (sample_dpmpp_2m(gaussian_oracle(), x_t, AB, sampling_timesteps(800, 25, sp), generator=None)
                - exact).abs().max().item() for sp in ("quadratic", "linear")}
    assert err["linear"] > 10 * err["quadratic"], err


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sampler_deterministic_for_a_generator(name):
    def run(seed):
        return sample(gaussian_oracle(), (2, 3, 16), AB, sampler=name, steps=20,
                      generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(7), run(7))
    assert not torch.equal(run(7), run(8))


def test_ddim_eta1_equals_ddpm():
    ts = sampling_timesteps(800, 800)
    x_t = torch.randn(2, 2, 64, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    a = sample_ddpm(gaussian_oracle(), x_t, AB, ts, generator=torch.Generator().manual_seed(5))
    b = sample_ddim(gaussian_oracle(), x_t, AB, ts, generator=torch.Generator().manual_seed(5), eta=1.0)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-8)


@pytest.mark.parametrize("spacing", ["quadratic", "linear"])
@pytest.mark.parametrize("steps", [2, 10, 25, 200, 799, 800])
def test_sampling_timesteps_are_exact_and_distinct(steps, spacing):
    ts = sampling_timesteps(800, steps, spacing)
    assert len(ts) == steps and ts[0] == 799 and ts[-1] == 0
    assert torch.all(ts[1:] < ts[:-1])


def test_sampling_timesteps_golden():
    assert sampling_timesteps(800, 800).tolist() == list(range(799, -1, -1))
    assert sampling_timesteps(800, 10, "linear").tolist() == [799, 710, 621, 533, 444, 355, 266, 178, 89, 0]
    assert sampling_timesteps(800, 6).tolist() == [799, 511, 288, 128, 32, 0]
    assert sampling_timesteps(800, 1).tolist() == [799]
    with pytest.raises(ValueError):
        sampling_timesteps(800, 0)
    with pytest.raises(ValueError):
        sampling_timesteps(800, 801)
    with pytest.raises(ValueError, match="spacing"):
        sampling_timesteps(800, 10, "cubic")


def test_sampler_bad_inputs():
    x = torch.zeros(1, 1, 4)
    for bad in ([10, 10, 5], [5, 10], [800, 3], []):
        with pytest.raises(ValueError):
            sample_ddim(gaussian_oracle(), x, AB, bad, generator=None)
    with pytest.raises(ValueError, match="unknown sampler"):
        sample(gaussian_oracle(), (1, 1, 4), AB, sampler="euler", generator=None)
    with pytest.raises(ValueError, match="eta"):
        sample_ddim(gaussian_oracle(), x, AB, [5, 0], generator=None, eta=-1.0)


def test_callback_sees_every_step():
    seen = []
    sample(gaussian_oracle(), (1, 1, 4), AB, sampler="dpmpp", steps=12, generator=torch.Generator(),
           callback=lambda i, t, x, x0: seen.append((i, t)))
    assert [i for i, _ in seen] == list(range(12)) and seen[0][1] == 799 and seen[-1][1] == 0


# --- Parity with a reference implementation (diffusers' schedulers) ---------------------------------------------
diffusers = pytest.importorskip("diffusers", reason="diffusers not installed (pip install -e '.[test]')")


def test_schedule_parity_with_diffusers():
    ref = diffusers.DDPMScheduler(num_train_timesteps=800, beta_schedule="squaredcos_cap_v2").alphas_cumprod
    torch.testing.assert_close(AB.float(), ref, rtol=1e-5, atol=1e-7)


def _run_diffusers(scheduler, x, timesteps, gen=None):
    oracle = gaussian_oracle()
    scheduler.set_timesteps(timesteps=[int(t) for t in timesteps])
    for t in scheduler.timesteps:
        v = oracle(x, torch.full((x.shape[0],), int(t)))
        kwargs = {"generator": gen} if gen is not None else {}
        x = scheduler.step(v, t, x, **kwargs).prev_sample
    return x


def test_dpmpp_parity_with_diffusers():
    ts = sampling_timesteps(800, 20)
    x_t = torch.randn(2, 4, 64, generator=torch.Generator().manual_seed(0))
    sched = diffusers.DPMSolverMultistepScheduler(
        num_train_timesteps=800, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction",
        algorithm_type="dpmsolver++", solver_order=2, final_sigmas_type="zero",
    )
    ref = _run_diffusers(sched, x_t.clone(), ts)
    ours = sample_dpmpp_2m(gaussian_oracle(), x_t.clone(), AB, ts, generator=None)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def test_ddpm_parity_with_diffusers():
    ts = sampling_timesteps(800, 800)
    x_t = torch.randn(2, 4, 64, generator=torch.Generator().manual_seed(1))
    sched = diffusers.DDPMScheduler(
        num_train_timesteps=800, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction",
        clip_sample=False, variance_type="fixed_small",
    )
    ref = _run_diffusers(sched, x_t.clone(), ts, gen=torch.Generator().manual_seed(9))
    ours = sample_ddpm(gaussian_oracle(), x_t.clone(), AB, ts, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(ours, ref, rtol=1e-3, atol=1e-3)
