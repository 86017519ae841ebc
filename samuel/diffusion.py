"""Diffusion maths for SAMUeL: pure functions of tensors, no I/O, no modules.

Notation follows the paper (Cheung et al., section IV-C and V): ``abar_t`` is the cumulative product of the noise
schedule, ``alpha_t = sqrt(abar_t)`` and ``sigma_t = sqrt(1 - abar_t)`` so that ``alpha_t**2 + sigma_t**2 = 1``
and ``x_t = alpha_t * x0 + sigma_t * eps``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

LossWeighting = Literal["snr", "min-snr", "min-snr-v", "none"]
LOSS_WEIGHTINGS: tuple[str, ...] = ("snr", "min-snr", "min-snr-v", "none")


def cosine_alpha_bar(num_steps: int = 800, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """Cumulative schedule ``abar_t`` for t = 0..num_steps-1 (float64), cosine schedule of Nichol & Dhariwal.

    ``f(u) = cos(((u + s) / (1 + s)) * pi / 2) ** 2``; ``beta_t = min(1 - f((t+1)/N) / f(t/N), max_beta)`` and
    ``abar_t = prod_{i<=t} (1 - beta_i)``. The cap keeps the last step invertible (abar > 0); this is the form
    diffusers calls ``squaredcos_cap_v2``. The paper uses s = 0.008 and 800 steps (section V).
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")

    def f(u: Tensor) -> Tensor:
        return torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    u = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
    betas = torch.clamp(1 - f(u[1:]) / f(u[:-1]), max=max_beta)
    return torch.cumprod(1 - betas, dim=0)


def alpha_sigma(alpha_bar_t: Tensor) -> tuple[Tensor, Tensor]:
    """(alpha_t, sigma_t) = (sqrt(abar_t), sqrt(1 - abar_t))."""
    return alpha_bar_t.sqrt(), (1 - alpha_bar_t).sqrt()


def _bcast(coef: Tensor, like: Tensor) -> Tensor:
    """Per-sample coefficients (B,) -> (B, 1, ..., 1) in ``like``'s dtype, for broadcasting."""
    coef = coef.to(device=like.device, dtype=like.dtype)
    return coef.reshape(coef.shape + (1,) * (like.ndim - coef.ndim))


def q_sample(x0: Tensor, eps: Tensor, alpha_bar_t: Tensor) -> Tensor:
    """Forward process ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps``; abar_t is (B,)."""
    a, s = alpha_sigma(alpha_bar_t)
    return _bcast(a, x0) * x0 + _bcast(s, x0) * eps


def v_target(x0: Tensor, eps: Tensor, alpha_bar_t: Tensor) -> Tensor:
    """Paper Eq. 4: ``v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0`` (minus sign; the authors' code has a plus)."""
    a, s = alpha_sigma(alpha_bar_t)
    return _bcast(a, x0) * eps - _bcast(s, x0) * x0


def x0_from_v(x_t: Tensor, v: Tensor, alpha_bar_t: Tensor) -> Tensor:
    """Exact inverse of Eq. 4 given x_t: ``x0 = sqrt(abar_t) x_t - sqrt(1 - abar_t) v``."""
    a, s = alpha_sigma(alpha_bar_t)
    return _bcast(a, x_t) * x_t - _bcast(s, x_t) * v


def eps_from_v(x_t: Tensor, v: Tensor, alpha_bar_t: Tensor) -> Tensor:
    """Exact inverse of Eq. 4 given x_t: ``eps = sqrt(1 - abar_t) x_t + sqrt(abar_t) v``."""
    a, s = alpha_sigma(alpha_bar_t)
    return _bcast(s, x_t) * x_t + _bcast(a, x_t) * v


def snr(alpha_bar_t: Tensor) -> Tensor:
    """Signal-to-noise ratio ``abar_t / (1 - abar_t)``."""
    return alpha_bar_t / (1 - alpha_bar_t)


def loss_weight(alpha_bar_t: Tensor, weighting: LossWeighting = "snr", gamma: float = 5.0) -> Tensor:
    """Per-sample weight on the v-space MSE.

    - ``snr``: paper Eq. 6, ``w(t) = abar_t / (1 - abar_t)`` (about 1.9e4 at t = 0 with 800 steps).
    - ``min-snr``: Eq. 6 clipped, ``min(SNR, gamma)``.
    - ``min-snr-v``: Min-SNR-gamma of Hang et al. (2023) expressed for a v-target, ``min(SNR, gamma) / (SNR + 1)``.
    - ``none``: paper Eq. 5, unweighted.
    """
    ratio = snr(alpha_bar_t)
    if weighting == "snr":
        return ratio
    if weighting == "min-snr":
        return torch.clamp(ratio, max=gamma)
    if weighting == "min-snr-v":
        return torch.clamp(ratio, max=gamma) / (ratio + 1)
    if weighting == "none":
        return torch.ones_like(ratio)
    raise ValueError(f"unknown loss weighting {weighting!r}; choose from {LOSS_WEIGHTINGS}")


def weighted_v_loss(
    v_pred: Tensor, v_true: Tensor, alpha_bar_t: Tensor, weighting: LossWeighting = "snr", gamma: float = 5.0
) -> Tensor:
    """Paper Eq. 6: ``E[w(t) ||v_t - v_theta||^2]``, the squared error averaged over elements, then over samples."""
    per_sample = (v_pred.float() - v_true.float()).pow(2).flatten(1).mean(dim=1)
    w = loss_weight(alpha_bar_t.to(per_sample.device, torch.float64), weighting, gamma).to(per_sample.dtype)
    return (w * per_sample).mean()


def condition_keep_mask(
    batch_size: int, drop_prob: float, generator: torch.Generator | None = None, device: torch.device | None = None
) -> Tensor:
    """Classifier-free guidance training: keep each sample's condition with probability ``1 - drop_prob``.

    The draw is per sample (never one coin for the whole batch), so every batch mixes both cases.
    """
    if not 0.0 <= drop_prob <= 1.0:
        raise ValueError(f"drop_prob must lie in [0, 1], got {drop_prob}")
    u = torch.rand(batch_size, generator=generator, device=device or torch.device("cpu"))
    return u >= drop_prob


def guided_v(v_cond: Tensor, v_uncond: Tensor, guidance: float) -> Tensor:
    """Classifier-free guidance on v-predictions: ``v_u + g (v_c - v_u)``; g = 1 is the conditional model.

    Guidance is linear in the prediction, so combining v equals combining eps or x0 at the same x_t.
    """
    return v_uncond + guidance * (v_cond - v_uncond)
