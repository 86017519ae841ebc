"""Soft alignment attention: local branch vs a naive loop, RoPE relativity, mixing schedules, buffers."""

from __future__ import annotations

import math

import pytest
import torch

from samuel.attention import (
    SoftAlignmentAttention,
    apply_rope,
    global_attention,
    local_attention,
    mixing_weights,
    rope_tables,
)
from samuel.diffusion import cosine_alpha_bar

AB = cosine_alpha_bar()


def naive_local_attention(q, k, v, radius):
    """Per-position loop over W(i) = {i - radius .. i + radius} clipped to the sequence (padded keys masked)."""
    _b, _h, t, d = q.shape
    out = torch.zeros_like(q)
    for i in range(t):
        lo, hi = max(0, i - radius), min(t, i + radius + 1)
        scores = torch.einsum("bhd,bhjd->bhj", q[:, :, i], k[:, :, lo:hi]) / math.sqrt(d)
        out[:, :, i] = torch.einsum("bhj,bhjd->bhd", scores.softmax(-1), v[:, :, lo:hi])
    return out


@pytest.mark.parametrize("t", [5, 17, 40])
def test_local_attention_matches_naive_loop_including_ends(t):
    gen = torch.Generator().manual_seed(t)
    q, k, v = (torch.randn(2, 3, t, 8, generator=gen, dtype=torch.float64) for _ in range(3))
    torch.testing.assert_close(local_attention(q, k, v, 8), naive_local_attention(q, k, v, 8))


def test_local_window_is_symmetric_16():
    # Position 20 of 41 sees keys 12..28 (8 each side) and nothing beyond.
    t, i = 41, 20
    q = torch.zeros(1, 1, t, 4)
    k = torch.zeros(1, 1, t, 4)
    v = torch.zeros(1, 1, t, 4)
    for j in range(t):
        v[0, 0, j, 0] = 1.0 if j in (i - 8, i + 8) else 0.0
        v[0, 0, j, 1] = 1.0 if j in (i - 9, i + 9) else 0.0
    out = local_attention(q, k, v, radius=8)[0, 0, i]
    assert out[0].item() == pytest.approx(2 / 17)  # uniform weights over 17 keys, two of them marked
    assert out[1].item() == 0.0


def test_global_attention_scores_depend_only_on_relative_position():
    cos, sin = rope_tables(64, 16)
    gen = torch.Generator().manual_seed(0)
    q_vec, k_vec = torch.randn(16, generator=gen), torch.randn(16, generator=gen)
    q = apply_rope(q_vec.expand(1, 1, 64, 16), cos, sin)[0, 0]
    k = apply_rope(k_vec.expand(1, 1, 64, 16), cos, sin)[0, 0]
    scores = q @ k.T  # (64, 64)
    for offset in (-7, 0, 3, 20):
        diag = torch.diagonal(scores, offset=offset)
        torch.testing.assert_close(diag, diag[0].expand_as(diag), rtol=0, atol=1e-4)
    assert not torch.allclose(torch.diagonal(scores, 0)[0], torch.diagonal(scores, 5)[0])


def test_rope_preserves_norm_and_is_identity_at_zero():
    cos, sin = rope_tables(8, 16)
    x = torch.randn(2, 2, 8, 16)
    r = apply_rope(x, cos, sin)
    torch.testing.assert_close(r.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(r[:, :, 0], x[:, :, 0])
    with pytest.raises(ValueError):
        rope_tables(8, 15)


def test_mixing_schedules():
    t = torch.tensor([0, 396, 799])
    wg, wl = mixing_weights("eq3", t, AB)
    assert wg[0] > 0.99 and wl[2] > 0.99  # Eq. 3 as written: clean steps global, noisy steps local
    torch.testing.assert_close(wg + wl, torch.ones(3))
    rg, rl = mixing_weights("reversed", t, AB)
    torch.testing.assert_close(rg, wl)
    torch.testing.assert_close(rl, wg)
    ag, al = mixing_weights("authors-code", torch.tensor([0, 500, 799]), AB)
    assert ag[0] == 1 and al[0] == 0
    assert ag[1].item() == pytest.approx(math.sqrt(1 - 500 / 999), rel=1e-6)
    assert (ag[1] + al[1]).item() > 1.3  # the authors' weights do not sum to one
    with pytest.raises(ValueError, match="unknown mixing"):
        mixing_weights("bogus", t, AB)


def _attn(cross: bool) -> SoftAlignmentAttention:
    torch.manual_seed(0)
    return SoftAlignmentAttention(32, heads=2, head_dim=8, local_window=16, groups=8,
                                  context_channels=32 if cross else None)


def test_module_mixes_the_two_branches_per_sample():
    attn = _attn(cross=False).double()
    cos, sin = (tab.double() for tab in rope_tables(48, 8))
    x = torch.randn(2, 32, 48, dtype=torch.float64)
    one, zero = torch.ones(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    only_global = attn(x, one, zero, cos, sin)
    only_local = attn(x, zero, one, cos, sin)
    half = attn(x, 0.5 * one, 0.5 * one, cos, sin)
    torch.testing.assert_close(half, 0.5 * (only_global + only_local))
    # the local-only path equals Eq. 1 computed by hand with the module's own projections
    q, k, v = (attn._heads(p) for p in attn.to_qkv(attn.norm(x)).chunk(3, dim=1))
    expected = x + attn.to_out(naive_local_attention(q, k, v, 8).transpose(2, 3).reshape(2, 16, 48))
    torch.testing.assert_close(only_local, expected)
    ref_global = global_attention(apply_rope(q, cos, sin), apply_rope(k, cos, sin), v)
    torch.testing.assert_close(only_global, x + attn.to_out(ref_global.transpose(2, 3).reshape(2, 16, 48)))


def test_cross_attention_rejects_misaligned_context():
    attn = _attn(cross=True)
    cos, sin = rope_tables(64, 8)
    ctx = attn.project_context(torch.randn(1, 32, 32), cos, sin)
    w = torch.ones(1)
    with pytest.raises(ValueError, match="frames"):
        attn(torch.randn(1, 32, 48), w, w, cos, sin, ctx)
    with pytest.raises(ValueError, match="projected context"):
        attn(torch.randn(1, 32, 32), w, w, cos, sin, None)
