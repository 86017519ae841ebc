"""Soft alignment attention (paper section IV-B, Eqs. 1-3): a local windowed branch and a global RoPE branch,
mixed per sample by a function of the diffusion timestep.

Shapes: ``q, k, v`` are (B, H, T, D); modules take and return (B, C, T) like the rest of the U-Net.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


# --- Pure functions ---------------------------------------------------------------------------------------------
def rope_tables(length: int, dim: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """Rotary tables (Su et al. 2024): cos and sin of ``pos * base**(-2i/dim)``, each (length, dim), float32.

    Frequencies are repeated in two halves to match :func:`apply_rope`'s rotate-half layout.
    """
    if dim % 2:
        raise ValueError(f"RoPE needs an even head dimension, got {dim}")
    inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    angles = torch.arange(length, dtype=torch.float64)[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate pairs (x_i, x_{i+D/2}) of ``x`` (B, H, T, D) by position-dependent angles (paper Eq. 2's RoPE)."""
    t = x.shape[-2]
    cos, sin = cos[:t].to(x.dtype), sin[:t].to(x.dtype)
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


@functools.lru_cache(maxsize=32)
def local_window_mask(length: int, radius: int, device: torch.device | None = None) -> Tensor:
    """(T, T) boolean mask, True where |i - j| <= radius: the window W(i) of paper Eq. 1.

    Keys beyond the sequence ends are the zero padding of the paper; they are masked out, never attended to, so a
    window near an end simply holds fewer keys. Cached: built once per (length, radius, device).
    """
    idx = torch.arange(length, device=device)
    return (idx[:, None] - idx[None, :]).abs() <= radius


def local_attention(q: Tensor, k: Tensor, v: Tensor, radius: int) -> Tensor:
    """Paper Eq. 1: softmax(Q_i . K_j / sqrt(d)) V_j over j in W(i) = {i - radius, ..., i + radius}; no RoPE."""
    mask = local_window_mask(q.shape[-2], radius, q.device)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def global_attention(q_rope: Tensor, k_rope: Tensor, v: Tensor) -> Tensor:
    """Paper Eq. 2: softmax(RoPE(Q) RoPE(K)^T / sqrt(d)) V over the whole sequence."""
    return F.scaled_dot_product_attention(q_rope, k_rope, v)


def mixing_weights(schedule: str, t: Tensor, alpha_bar: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample (w_global, w_local) for ``Context = w_global * Global + w_local * Local`` (paper Eq. 3).

    - ``eq3`` (default), Eq. 3 as printed: ``w_global = sqrt(abar_t)``, ``w_local = 1 - sqrt(abar_t)``.
    - ``reversed``: the paper's prose ("early diffusion stages (large t) emphasize global attention ... later
      stages (small t) emphasize local"): ``w_global = 1 - sqrt(abar_t)``, ``w_local = sqrt(abar_t)``.
    - ``authors-code``: what the authors' repository computes: ``w_global = sqrt(1 - t/999)``,
      ``w_local = sqrt(t/999)``; linear in t over 1000 steps although the schedule has 800, and the two weights
      sum to more than 1 in between.

    The contradiction: as t grows, abar_t -> 0, so Eq. 3 gives the global branch weight -> 0, i.e. noisy steps
    are LOCAL, the opposite of the prose. The authors' code follows Eq. 3's direction. We default to Eq. 3 as
    written and expose the others by name.
    """
    abar = alpha_bar.to(t.device)[t]
    if schedule == "eq3":
        w_global = abar.sqrt()
        w_local = 1 - w_global
    elif schedule == "reversed":
        w_local = abar.sqrt()
        w_global = 1 - w_local
    elif schedule == "authors-code":
        frac = t.double() / 999.0
        w_global, w_local = (1 - frac).clamp(min=0).sqrt(), frac.clamp(max=1).sqrt()
    else:
        raise ValueError(f"unknown mixing schedule {schedule!r}; choose from eq3, reversed, authors-code")
    return w_global.float(), w_local.float()


# --- Modules ----------------------------------------------------------------------------------------------------
class ContextKV(NamedTuple):
    """Keys and values of a cross-attention context, projected once and reused at every sampling step."""

    k: Tensor  # (B, H, T, D), no RoPE: the local branch
    k_rope: Tensor  # (B, H, T, D), rotated: the global branch
    v: Tensor  # (B, H, T, D)


class SoftAlignmentAttention(nn.Module):
    """Pre-norm soft alignment attention with a residual connection, as self- or cross-attention.

    Q, K and V come from 1x1 convolutional projections (paper IV-B) shared by both branches; RoPE is applied
    only on the global branch. For cross-attention the context (vocal features at the same frame rate) is
    projected by :meth:`project_context`, which a sampler can call once per clip.
    """

    def __init__(
        self,
        channels: int,
        *,
        heads: int,
        head_dim: int,
        local_window: int,
        groups: int,
        context_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.radius = local_window // 2
        self.is_cross = context_channels is not None
        inner = heads * head_dim
        self.norm = nn.GroupNorm(groups, channels)
        if self.is_cross:
            assert context_channels is not None
            self.context_norm = nn.GroupNorm(groups, context_channels)
            self.to_q = nn.Conv1d(channels, inner, 1)
            self.to_kv = nn.Conv1d(context_channels, 2 * inner, 1)
        else:
            self.to_qkv = nn.Conv1d(channels, 3 * inner, 1)
        self.to_out = nn.Conv1d(inner, channels, 1)

    def _heads(self, x: Tensor) -> Tensor:  # (B, H*D, T) -> (B, H, T, D), contiguous
        # contiguous: the CPU's fused attention kernel takes strided bf16 inputs 5-7x slower (T = 256, AMX Xeon)
        b, _, t = x.shape
        return x.reshape(b, self.heads, self.head_dim, t).transpose(2, 3).contiguous()

    def project_context(self, context: Tensor, cos: Tensor, sin: Tensor) -> ContextKV:
        """Keys/values of a (B, C_ctx, T) context for cross-attention."""
        k, v = self.to_kv(self.context_norm(context)).chunk(2, dim=1)
        k, v = self._heads(k), self._heads(v)
        return ContextKV(k, apply_rope(k, cos, sin), v)

    def forward(
        self,
        x: Tensor,
        w_global: Tensor,
        w_local: Tensor,
        cos: Tensor,
        sin: Tensor,
        context: ContextKV | None = None,
    ) -> Tensor:
        """x: (B, C, T); w_global, w_local: (B,); context: projected keys/values (cross) or None (self)."""
        b, _c, t = x.shape
        h = self.norm(x)
        if self.is_cross:
            if context is None:
                raise ValueError("cross-attention needs a projected context")
            q = self._heads(self.to_q(h))
            k, k_rope, v = context
        else:
            q, k, v = (self._heads(p) for p in self.to_qkv(h).chunk(3, dim=1))
            k_rope = apply_rope(k, cos, sin)
        if k.shape[-2] != t:
            raise ValueError(f"context has {k.shape[-2]} frames but x has {t}: vocal and accompaniment must align")
        local = local_attention(q, k, v, self.radius)
        glob = global_attention(apply_rope(q, cos, sin), k_rope, v)
        mixed = w_global.view(b, 1, 1, 1) * glob + w_local.view(b, 1, 1, 1) * local
        out = mixed.transpose(2, 3).reshape(b, self.heads * self.head_dim, t)
        return x + self.to_out(out)

