"""Samplers for a v-predicting model: pure functions sharing one signature, no I/O, no device logic.

Every sampler is ``sampler(model_fn, x, alpha_bar, timesteps, *, generator, callback=None, **options) -> x0`` where

- ``model_fn(x_t, t) -> v`` with ``t`` a (B,) long tensor of training timesteps in [0, N);
- ``x`` is the starting noise x_T (the caller draws it, from the same generator, see :func:`sample`);
- ``alpha_bar`` is the (N,) float64 cumulative schedule (:func:`samuel.diffusion.cosine_alpha_bar`);
- ``timesteps`` is a strictly decreasing sequence of training timesteps; after the last one the sampler steps to
  the clean signal (abar = 1), so ``len(timesteps)`` is the number of model evaluations;
- ``generator`` supplies all fresh noise, so a run is reproducible given the generator's seed. It may also be a
  sequence of generators, one per batch item: each item's noise then comes from its own stream, so an item
  sampled in a batch equals the same item sampled alone.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Protocol

import torch
from torch import Tensor

from samuel.diffusion import eps_from_v, x0_from_v

ModelFn = Callable[[Tensor, Tensor], Tensor]
Callback = Callable[[int, int, Tensor, Tensor], None]  # (step index, timestep, x_t, predicted x0)
Generators = torch.Generator | Sequence[torch.Generator] | None  # one for the batch, or one per item


class Sampler(Protocol):
    def __call__(
        self,
        model_fn: ModelFn,
        x: Tensor,
        alpha_bar: Tensor,
        timesteps: Sequence[int] | Tensor,
        *,
        generator: Generators,
        callback: Callback | None = None,
    ) -> Tensor: ...


def sampling_timesteps(num_train_timesteps: int, steps: int, spacing: str = "quadratic") -> Tensor:
    """``steps`` distinct training timesteps from N-1 down to 0, as a strictly decreasing long tensor.

    ``quadratic`` (default; Song et al. 2021, DDIM section D.2) places t = (N-1) u**2 for u evenly spaced in
    [0, 1], so steps are dense where little noise is left. On the cosine schedule this matters: evenly spaced t
    make the last interval (t -> 0, log-SNR jumping to 4.9) so coarse that DPM-Solver++ at 25 steps misses the
    data's standard deviation by 6% even with an exact model, against 0.2% with quadratic spacing
    (tests/test_samplers.py). ``linear`` spaces t evenly. Rounding never merges two steps: each timestep is at
    least one above the next smaller one.
    """
    if not 1 <= steps <= num_train_timesteps:
        raise ValueError(f"steps must lie in [1, {num_train_timesteps}], got {steps}")
    if spacing not in ("quadratic", "linear"):
        raise ValueError(f"spacing must be 'quadratic' or 'linear', got {spacing!r}")
    if steps == 1:
        return torch.tensor([num_train_timesteps - 1])
    u = torch.linspace(0, 1, steps, dtype=torch.float64)
    ideal = (num_train_timesteps - 1) * (u**2 if spacing == "quadratic" else u)
    ts = ideal.round().long().tolist()
    for i in range(1, steps):  # ascending: push duplicates up, then cap at the top
        ts[i] = max(ts[i], ts[i - 1] + 1)
    for i in range(steps - 1, -1, -1):
        ts[i] = min(ts[i], num_train_timesteps - 1 - (steps - 1 - i))
    return torch.tensor(ts[::-1], dtype=torch.long)


def _pairs(alpha_bar: Tensor, timesteps: Sequence[int] | Tensor) -> list[tuple[int, float, float]]:
    """[(t, abar_t, abar_next)] with abar_next = 1 after the last step; checks the sequence decreases."""
    ts = [int(t) for t in (timesteps.tolist() if isinstance(timesteps, Tensor) else timesteps)]
    if not ts:
        raise ValueError("timesteps is empty")
    if any(b >= a for a, b in itertools.pairwise(ts)):
        raise ValueError(f"timesteps must strictly decrease, got {ts[:8]}...")
    if ts[0] >= len(alpha_bar) or ts[-1] < 0:
        raise ValueError(f"timesteps must lie in [0, {len(alpha_bar)}), got {ts[0]}..{ts[-1]}")
    ab = alpha_bar.double().tolist()
    return [(t, ab[t], ab[ts[i + 1]] if i + 1 < len(ts) else 1.0) for i, t in enumerate(ts)]


def _t_batch(t: int, x: Tensor) -> Tensor:
    return torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)


def draw_noise(shape: Sequence[int], generator: Generators, *, device: torch.device | str = "cpu",
               dtype: torch.dtype = torch.float32) -> Tensor:
    """N(0, I) of ``shape`` from one generator, or item by item from one generator per batch item."""
    shape = tuple(shape)
    if generator is None or isinstance(generator, torch.Generator):
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)
    if len(generator) != shape[0]:
        raise ValueError(f"got {len(generator)} generators for a batch of {shape[0]}")
    items = [torch.randn(shape[1:], generator=g, device=g.device, dtype=dtype) for g in generator]
    return torch.stack(items).to(device)


def _noise_like(x: Tensor, generator: Generators) -> Tensor:
    return draw_noise(x.shape, generator, device=x.device, dtype=x.dtype)


def _predict(model_fn: ModelFn, x: Tensor, t: int, abar: float) -> tuple[Tensor, Tensor]:
    """(x0, v): the model's v at (x_t, t) and x0 recovered exactly from it; no clamping (the authors clamp)."""
    v = model_fn(x, _t_batch(t, x))
    return x0_from_v(x, v, torch.tensor([abar], dtype=torch.float64)), v


@torch.no_grad()
def sample_ddpm(
    model_fn: ModelFn,
    x: Tensor,
    alpha_bar: Tensor,
    timesteps: Sequence[int] | Tensor,
    *,
    generator: Generators,
    callback: Callback | None = None,
) -> Tensor:
    """Ancestral DDPM sampling (Ho et al. 2020, Alg. 2) with the posterior q(x_s | x_t, x0) of Eq. 7 there.

    Over all N timesteps this is the paper's 800-step sampler; over a subsequence it is the same posterior with
    ``beta = 1 - abar_t / abar_s``.
    """
    for i, (t, ab_t, ab_s) in enumerate(_pairs(alpha_bar, timesteps)):
        x0, _ = _predict(model_fn, x, t, ab_t)
        if callback is not None:
            callback(i, t, x, x0)
        beta = 1.0 - ab_t / ab_s
        coef_x0 = math.sqrt(ab_s) * beta / (1.0 - ab_t)
        coef_xt = math.sqrt(1.0 - beta) * (1.0 - ab_s) / (1.0 - ab_t)
        var = (1.0 - ab_s) / (1.0 - ab_t) * beta
        x = coef_x0 * x0 + coef_xt * x
        if var > 0:
            x = x + math.sqrt(var) * _noise_like(x, generator)
    return x


@torch.no_grad()
def sample_ddim(
    model_fn: ModelFn,
    x: Tensor,
    alpha_bar: Tensor,
    timesteps: Sequence[int] | Tensor,
    *,
    generator: Generators,
    callback: Callback | None = None,
    eta: float = 0.0,
) -> Tensor:
    """DDIM (Song et al. 2021, Eq. 12): eta = 0 is the deterministic ODE sampler, eta = 1 matches DDPM."""
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    for i, (t, ab_t, ab_s) in enumerate(_pairs(alpha_bar, timesteps)):
        x0, v = _predict(model_fn, x, t, ab_t)
        eps = eps_from_v(x, v, torch.tensor([ab_t], dtype=torch.float64))
        if callback is not None:
            callback(i, t, x, x0)
        sigma = eta * math.sqrt((1.0 - ab_s) / (1.0 - ab_t) * (1.0 - ab_t / ab_s))
        x = math.sqrt(ab_s) * x0 + math.sqrt(max(1.0 - ab_s - sigma**2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * _noise_like(x, generator)
    return x


@torch.no_grad()
def sample_dpmpp_2m(
    model_fn: ModelFn,
    x: Tensor,
    alpha_bar: Tensor,
    timesteps: Sequence[int] | Tensor,
    *,
    generator: Generators,
    callback: Callback | None = None,
) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2), multistep second order in the data prediction x0.

    With ``lambda = log(alpha / sigma)`` and ``h_i = lambda_i - lambda_{i-1}``:
    ``x_i = (sigma_i / sigma_{i-1}) x_{i-1} - alpha_i (exp(-h_i) - 1) D_i`` with
    ``D_i = (1 + 1/(2 r_i)) x0_{i-1} - 1/(2 r_i) x0_{i-2}``, ``r_i = h_{i-1} / h_i`` (first order on the first
    step). The last step goes to sigma = 0, where the update is exactly the last x0 prediction. Deterministic:
    ``generator`` is accepted for the shared signature and used by no step.
    """
    del generator
    x0_prev: Tensor | None = None
    h_prev: float | None = None
    for i, (t, ab_t, ab_s) in enumerate(_pairs(alpha_bar, timesteps)):
        x0, _ = _predict(model_fn, x, t, ab_t)
        if callback is not None:
            callback(i, t, x, x0)
        if ab_s >= 1.0:
            x = x0
            break
        lam_t = 0.5 * math.log(ab_t / (1.0 - ab_t))
        lam_s = 0.5 * math.log(ab_s / (1.0 - ab_s))
        h = lam_s - lam_t
        if x0_prev is None or h_prev is None:
            d = x0
        else:
            r = h_prev / h
            d = (1.0 + 0.5 / r) * x0 - (0.5 / r) * x0_prev
        sigma_ratio = math.sqrt((1.0 - ab_s) / (1.0 - ab_t))
        x = sigma_ratio * x - math.sqrt(ab_s) * math.expm1(-h) * d
        x0_prev, h_prev = x0, h
    return x


SAMPLERS: dict[str, Sampler] = {"ddpm": sample_ddpm, "ddim": sample_ddim, "dpmpp": sample_dpmpp_2m}
# The paper samples with 800 DDPM steps; the fast samplers' defaults sit inside their accurate range.
DEFAULT_STEPS: dict[str, int] = {"ddpm": 800, "ddim": 50, "dpmpp": 25}


def sample(
    model_fn: ModelFn,
    shape: Sequence[int],
    alpha_bar: Tensor,
    *,
    sampler: str = "ddpm",
    steps: int | None = None,
    spacing: str = "quadratic",
    generator: Generators,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    callback: Callback | None = None,
    **options: float,
) -> Tensor:
    """Draw x_T ~ N(0, I) from ``generator`` and run the named sampler over :func:`sampling_timesteps`."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose from {sorted(SAMPLERS)}")
    n_steps = DEFAULT_STEPS[sampler] if steps is None else steps
    timesteps = sampling_timesteps(len(alpha_bar), n_steps, spacing)
    x = draw_noise(shape, generator, device=device, dtype=dtype)
    fn = SAMPLERS[sampler]
    return fn(model_fn, x, alpha_bar, timesteps, generator=generator, callback=callback, **options)
