"""Diffusion maths: golden schedule values, identities, v/x0/eps round trips, loss weights, CFG helpers."""

from __future__ import annotations

import math

import pytest
import torch

from samuel.diffusion import (
    alpha_sigma,
    condition_keep_mask,
    cosine_alpha_bar,
    eps_from_v,
    guided_v,
    loss_weight,
    q_sample,
    snr,
    v_target,
    weighted_v_loss,
    x0_from_v,
)

AB = cosine_alpha_bar(800, 0.008)


def test_schedule_golden_values():
    # Golden numbers for the paper's schedule (cosine, s = 0.008, 800 steps), float64.
    assert AB.dtype == torch.float64 and AB.shape == (800,)
    assert AB[0].item() == pytest.approx(0.9999476360111796, rel=1e-12)
    assert AB[399].item() == pytest.approx(0.4938435904406373, rel=1e-12)
    assert AB[799].item() == pytest.approx(3.794946564312124e-09, rel=1e-9)
    # abar crosses 1/2 at t = 396, where the authors' plus-sign v-target is singular.
    assert int((AB < 0.5).nonzero()[0]) == 396


def test_schedule_matches_closed_form_before_the_cap():
    f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 1, 100, 400, 700, 798):
        assert AB[t].item() == pytest.approx(f((t + 1) / 800) / f(0.0), rel=1e-9)


def test_schedule_identities():
    assert torch.all(AB[1:] < AB[:-1]), "abar must be strictly decreasing"
    assert torch.all((AB > 0) & (AB < 1))
    a, s = alpha_sigma(AB)
    torch.testing.assert_close(a**2 + s**2, torch.ones_like(AB), rtol=0, atol=1e-12)


def test_schedule_rejects_bad_length():
    with pytest.raises(ValueError, match="num_steps"):
        cosine_alpha_bar(0)


@pytest.mark.parametrize("t", [0, 1, 396, 500, 799])
def test_v_round_trip(t):
    gen = torch.Generator().manual_seed(t)
    x0 = torch.randn(4, 64, 32, generator=gen)
    eps = torch.randn(4, 64, 32, generator=gen)
    ab = AB[[t] * 4]
    x_t = q_sample(x0, eps, ab)
    v = v_target(x0, eps, ab)
    torch.testing.assert_close(x0_from_v(x_t, v, ab), x0, rtol=0, atol=1e-5)
    torch.testing.assert_close(eps_from_v(x_t, v, ab), eps, rtol=0, atol=1e-5)


def test_v_target_sign_is_eq4():
    # v = sqrt(abar) eps - sqrt(1 - abar) x0: with eps = 0 the target is -sigma * x0, not +sigma * x0.
    ab = torch.tensor([0.36])
    v = v_target(torch.ones(1, 1, 1), torch.zeros(1, 1, 1), ab)
    assert v.item() == pytest.approx(-0.8)


def test_loss_weights():
    ab = AB[[0, 396, 799]]
    torch.testing.assert_close(loss_weight(ab, "snr"), ab / (1 - ab))
    assert loss_weight(ab, "snr")[0].item() == pytest.approx(19096.09368, rel=1e-6)
    assert loss_weight(ab, "min-snr", gamma=5.0).max().item() == 5.0
    torch.testing.assert_close(loss_weight(ab, "min-snr-v", 5.0), snr(ab).clamp(max=5) / (snr(ab) + 1))
    assert torch.all(loss_weight(ab, "none") == 1)
    with pytest.raises(ValueError, match="unknown loss weighting"):
        loss_weight(ab, "bogus")  # type: ignore[arg-type]


def test_weighted_v_loss_is_eq6():
    ab = AB[[10, 700]]
    pred, true = torch.zeros(2, 3, 4), torch.ones(2, 3, 4)
    pred[1] = 1.0  # second sample is exact
    expected = (ab[0] / (1 - ab[0])).item() * 1.0 / 2
    assert weighted_v_loss(pred, true, ab).item() == pytest.approx(expected, rel=1e-6)


def test_condition_dropout_is_per_sample():
    gen = torch.Generator().manual_seed(0)
    keep = condition_keep_mask(100_000, 0.1, gen)
    assert keep.dtype == torch.bool
    assert abs((~keep).float().mean().item() - 0.1) < 0.005
    # within a batch of 16, both outcomes appear in a typical draw (not one coin per batch)
    batches = condition_keep_mask(16 * 1000, 0.1, gen).view(1000, 16)
    mixed = (batches.any(1) & (~batches).any(1)).float().mean().item()
    assert mixed > 0.7  # 1 - 0.9**16 - 0.1**16 = 0.81
    with pytest.raises(ValueError):
        condition_keep_mask(4, 1.5)


def test_guidance_combination():
    vc, vu = torch.full((2,), 3.0), torch.full((2,), 1.0)
    assert torch.equal(guided_v(vc, vu, 1.0), vc)
    assert torch.equal(guided_v(vc, vu, 0.0), vu)
    assert torch.equal(guided_v(vc, vu, 3.0), torch.full((2,), 7.0))
