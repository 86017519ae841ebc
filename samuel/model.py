"""The SAMUeL network: a 1-D U-Net over Stable Audio Open VAE latents with FiLM timestep conditioning and
time-resolved vocal cross-attention (paper section IV, Figs. 1-2).

Shapes (default config, B = batch):
    x_t, vocal     (B, 64, 1024)
    level 0        (B, 64, 1024)    FiLM res block
    level 1        (B, 128, 512)    FiLM res block
    level 2        (B, 256, 256)    FiLM res block, vocal cross-attention
    bottleneck     (B, 512, 128)    res block, soft-alignment self-attention, vocal cross-attention, res block
    then back up with skip connections (each projection of cat(up, skip) starting as a pass-through of the skip),
    mirroring levels 2 -> 0, and a GroupNorm -> Conv1d head -> v.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import NamedTuple, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samuel.attention import ContextKV, SoftAlignmentAttention, mixing_weights, rope_tables
from samuel.config import SAMUeLConfig
from samuel.diffusion import cosine_alpha_bar

TIMESTEP_FEATURES = 256  # sinusoidal features fed to the timestep MLP
_Layer = TypeVar("_Layer", nn.Linear, nn.Conv1d)


def timestep_features(t: Tensor, dim: int = TIMESTEP_FEATURES) -> Tensor:
    """Sinusoidal embedding of integer timesteps (Vaswani et al. 2017), (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([args.cos(), args.sin()], dim=-1)


class FiLMResBlock(nn.Module):
    """GroupNorm -> SiLU -> Conv1d -> GroupNorm -> FiLM -> SiLU -> Conv1d, plus a residual path.

    FiLM (Perez et al. 2018) is ``h * (1 + gamma) + beta``. gamma and beta come from the timestep embedding and,
    when ``vocal_channels`` is set, also per frame from the vocal features at this level: the second stream of
    the paper's "dual-stream vocal conditioning", kept time-resolved (the authors averaged it over time and lost
    the vocal's timing). Both projections are zero-initialised, so every block starts as the identity
    modulation. ``embed_dim=None`` builds the block without FiLM (the vocal encoder, which does not see t).
    """

    def __init__(
        self, c_in: int, c_out: int, *, groups: int, embed_dim: int | None, vocal_channels: int | None = None
    ) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv1d(c_in, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.film: nn.Linear | None = None
        self.vocal_film: nn.Conv1d | None = None
        if embed_dim is not None:
            self.film = _zero(nn.Linear(embed_dim, 2 * c_out))
            if vocal_channels is not None:
                self.vocal_film = _zero(nn.Conv1d(vocal_channels, 2 * c_out, 1))

    def project_vocal(self, vocal_features: Tensor) -> Tensor:
        """Per-frame (gamma, beta) offsets from vocal features (B, C_v, T) -> (B, 2 C_out, T); t-independent."""
        if self.vocal_film is None:
            raise ValueError("this block takes no vocal FiLM")
        return self.vocal_film(vocal_features)

    def forward(self, x: Tensor, embed: Tensor | None = None, vocal_film: Tensor | None = None) -> Tensor:
        """x: (B, C_in, T); embed: (B, E) after SiLU; vocal_film: (B, 2 C_out, T) from :meth:`project_vocal`."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.norm2(h)
        if self.film is not None:
            if embed is None:
                raise ValueError("this block is FiLM-conditioned and needs a timestep embedding")
            modulation = self.film(embed).unsqueeze(-1)  # (B, 2C, 1)
            if vocal_film is not None:
                modulation = modulation + vocal_film  # (B, 2C, T)
            gamma, beta = modulation.chunk(2, dim=1)
            h = torch.addcmul(beta, h, 1 + gamma)
        h = self.conv2(F.silu(h))
        return self.skip(x) + h


def _zero(layer: _Layer) -> _Layer:
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def _downsample(c_in: int, c_out: int) -> nn.Conv1d:
    return nn.Conv1d(c_in, c_out, 3, stride=2, padding=1)  # T -> T/2


def _upsample(c_in: int, c_out: int) -> nn.ConvTranspose1d:
    return nn.ConvTranspose1d(c_in, c_out, 4, stride=2, padding=1)  # T -> 2T


class VocalEncoder(nn.Module):
    """Time-resolved vocal features at every U-Net level: (B, 64, T) -> [(B, c_l, T / 2**l) for each level l].

    No pooling over time: the authors' model fed FiLM a time-averaged vocal and so lost the vocal's timing.
    """

    def __init__(self, config: SAMUeLConfig) -> None:
        super().__init__()
        ch, g = config.channels, config.groups
        self.stem = nn.Conv1d(config.latent_channels, ch[0], 3, padding=1)
        self.blocks = nn.ModuleList(FiLMResBlock(c, c, groups=g, embed_dim=None) for c in ch)
        self.downs = nn.ModuleList(_downsample(a, b) for a, b in itertools.pairwise(ch))

    def forward(self, vocal: Tensor) -> list[Tensor]:
        h = self.stem(vocal)
        feats = []
        for level, block in enumerate(self.blocks):
            h = block(h)
            feats.append(h)
            if level < len(self.downs):
                h = self.downs[level](h)
        return feats


class Condition(NamedTuple):
    """Everything the U-Net needs from the vocal, computed once per clip (it does not depend on t)."""

    contexts: tuple[ContextKV, ...]  # one per cross-attention module, in call order
    films: tuple[Tensor, ...]  # (B, 2C, T_l) per FiLM block, in call order; (B, T_l, 2C) when time-major
    layout: str = "channel-major"  # or "time-major": from samuel.time_major.TimeMajorSAMUeL.encode_condition

    @property
    def batch_size(self) -> int:
        return self.films[0].shape[0]

    def to(self, dtype: torch.dtype) -> Condition:
        """The same condition in ``dtype``: computed once per clip in fp32, cast once for a low-precision twin."""
        return Condition(tuple(ContextKV(*(z.to(dtype) for z in kv)) for kv in self.contexts),
                         tuple(f.to(dtype) for f in self.films), self.layout)


class EncoderLevel(nn.Module):
    def __init__(self, c: int, c_next: int, cross: bool, config: SAMUeLConfig) -> None:
        super().__init__()
        self.res = FiLMResBlock(c, c, groups=config.groups, embed_dim=config.time_embed_dim, vocal_channels=c)
        self.cross = _attention(c, config, context_channels=c) if cross else None
        self.down = _downsample(c, c_next)


class Bottleneck(nn.Module):
    def __init__(self, c: int, cross: bool, config: SAMUeLConfig) -> None:
        super().__init__()
        e, g = config.time_embed_dim, config.groups
        self.res_in = FiLMResBlock(c, c, groups=g, embed_dim=e, vocal_channels=c)
        self.self_attn = _attention(c, config)
        self.cross = _attention(c, config, context_channels=c) if cross else None
        self.res_out = FiLMResBlock(c, c, groups=g, embed_dim=e, vocal_channels=c)


class DecoderLevel(nn.Module):
    def __init__(self, c_below: int, c: int, cross: bool, config: SAMUeLConfig) -> None:
        super().__init__()
        self.up = _upsample(c_below, c)
        self.res = FiLMResBlock(2 * c, c, groups=config.groups, embed_dim=config.time_embed_dim, vocal_channels=c)
        # The projection of cat(up, skip) starts as "pass the encoder skip through" ([0 | I]): at level 0 that is the
        # only path at full frame rate, the one that carries x_t and so the noise part of v. A random projection
        # mixes it with up-path features that are still random (docs/design.md, "Training on four pairs").
        with torch.no_grad():
            skip = self.res.skip
            assert isinstance(skip, nn.Conv1d)
            skip.weight.zero_()
            skip.bias.zero_()
            skip.weight[:, c:, 0] = torch.eye(c)
        self.cross = _attention(c, config, context_channels=c) if cross else None


def _attention(c: int, config: SAMUeLConfig, context_channels: int | None = None) -> SoftAlignmentAttention:
    return SoftAlignmentAttention(
        c,
        heads=config.heads,
        head_dim=config.head_dim,
        local_window=config.local_window,
        groups=config.groups,
        context_channels=context_channels,
    )


class SAMUeL(nn.Module):
    """SAMUeL v-predictor: ``SAMUeL(config)(x_t, t, vocal) -> v``, all (B, 64, T) except t (B,) long in [0, N).

    ``vocal=None`` is the unconditional model (the null condition). ``keep_condition`` (B,) bool replaces the
    vocal of the False samples by the null condition: classifier-free guidance dropout in training and the
    unconditional half of a guided batch at sampling.
    """

    def __init__(self, config: SAMUeLConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SAMUeLConfig()
        ch, e = config.channels, config.time_embed_dim
        top = config.bottleneck_level
        cross = set(config.cross_attention_levels)

        self.time_mlp = nn.Sequential(nn.Linear(TIMESTEP_FEATURES, e), nn.SiLU(), nn.Linear(e, e))
        self.vocal_encoder = VocalEncoder(config)
        self.stem = nn.Conv1d(config.latent_channels, ch[0], 3, padding=1)
        self.encoder = nn.ModuleList(EncoderLevel(ch[i], ch[i + 1], i in cross, config) for i in range(top))
        self.bottleneck = Bottleneck(ch[top], top in cross, config)
        self.decoder = nn.ModuleList(DecoderLevel(ch[i + 1], ch[i], i in cross, config) for i in reversed(range(top)))
        # Output head: GroupNorm -> Conv1d, no SiLU and no zero-init. v holds sqrt(abar) * eps, a linear function of
        # x_t that can only reach the output through the 64 level-0 channels; a SiLU there keeps ~70% of a Gaussian
        # code's variance and a zero start adds a slow phase, and together they stalled the noise part of v
        # (measured: docs/design.md, "Training on four pairs").
        self.head = nn.Sequential(
            nn.GroupNorm(config.groups, ch[0]), nn.Conv1d(ch[0], config.latent_channels, 3, padding=1)
        )
        if config.null_condition == "learned":
            self.null_vocal = nn.Parameter(torch.zeros(config.latent_channels))
        else:
            self.register_buffer("null_vocal", torch.zeros(config.latent_channels), persistent=False)

        # Derived tables: non-persistent buffers built once here (never per call, never in the state dict).
        self.register_buffer(
            "alpha_bar", cosine_alpha_bar(config.num_train_timesteps, config.cosine_s), persistent=False
        )
        cos, sin = rope_tables(config.num_frames, config.head_dim, config.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    # -- helpers ---------------------------------------------------------------------------------------------
    def _conditioned_modules(self) -> tuple[list[tuple[SoftAlignmentAttention, int]], list[tuple[FiLMResBlock, int]]]:
        """(cross-attention, level) and (FiLM block, level) pairs in the order :meth:`denoise` calls them."""
        top = self.config.bottleneck_level
        decoder_levels = list(reversed(range(top)))
        cross = [(lvl.cross, i) for i, lvl in enumerate(self.encoder)]
        cross += [(self.bottleneck.cross, top)]
        cross += [(lvl.cross, i) for i, lvl in zip(decoder_levels, self.decoder, strict=True)]
        films = [(lvl.res, i) for i, lvl in enumerate(self.encoder)]
        films += [(self.bottleneck.res_in, top), (self.bottleneck.res_out, top)]
        films += [(lvl.res, i) for i, lvl in zip(decoder_levels, self.decoder, strict=True)]
        return [(m, i) for m, i in cross if m is not None], films

    def _rope(self, frames: int) -> tuple[Tensor, Tensor]:
        if frames > self.rope_cos.shape[0]:  # longer than any clip seen so far: extend the tables once
            cos, sin = rope_tables(frames, self.config.head_dim, self.config.rope_base)
            self.rope_cos, self.rope_sin = cos.to(self.rope_cos.device), sin.to(self.rope_sin.device)
        return self.rope_cos, self.rope_sin

    @property
    def dtype(self) -> torch.dtype:
        """The parameters' dtype: fp32, or a low-precision twin's (see low_precision_twin); the tables stay fp32."""
        return self.stem.weight.dtype

    def _check_latent(self, name: str, x: Tensor) -> None:
        c = self.config
        if x.ndim != 3 or x.shape[1] != c.latent_channels:
            raise ValueError(f"{name} must be (B, {c.latent_channels}, T), got {tuple(x.shape)}")
        if x.shape[-1] % c.time_downsampling or x.shape[-1] == 0:
            raise ValueError(f"{name} has T={x.shape[-1]} frames; T must be a positive multiple of "
                             f"{c.time_downsampling}")

    def _check_denoise_inputs(self, x_t: Tensor, t: Tensor, condition: Condition) -> None:
        self._check_latent("x_t", x_t)
        b = x_t.shape[0]
        if t.shape != (b,):
            raise ValueError(f"t must be ({b},), got {tuple(t.shape)}")
        if condition.batch_size != b:
            raise ValueError(f"condition has batch {condition.batch_size}, x_t has {b}")

    def _check_forward_inputs(self, x_t: Tensor, t: Tensor, vocal: Tensor | None) -> None:
        self._check_latent("x_t", x_t)
        if t.ndim != 1 or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise ValueError(f"t must be a (B,) integer tensor, got dtype {t.dtype} shape {tuple(t.shape)}")
        n = self.config.num_train_timesteps
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= n):
            raise ValueError(f"t must lie in [0, {n}), got [{int(t.min())}, {int(t.max())}]")
        if vocal is not None and vocal.shape != x_t.shape:
            raise ValueError(f"vocal {tuple(vocal.shape)} and x_t {tuple(x_t.shape)} must have the same shape")

    # -- public API ------------------------------------------------------------------------------------------
    def null_condition_input(self, batch_size: int, frames: int) -> Tensor:
        """The vocal input the model sees when the condition is dropped: (B, 64, T)."""
        return self.null_vocal.view(1, -1, 1).expand(batch_size, -1, frames)

    def condition_input(self, vocal: Tensor | None, keep_condition: Tensor | None = None, *, batch_size: int = 1,
                        frames: int = 0) -> Tensor:
        """What the vocal encoder reads: ``vocal`` checked, with the null condition where ``keep_condition`` is
        False, or the null condition alone for ``vocal=None``."""
        if vocal is None:
            if frames <= 0:
                raise ValueError("frames must be given for the null condition")
            return self.null_condition_input(batch_size, frames)
        self._check_latent("vocal", vocal)
        if keep_condition is not None:
            if keep_condition.shape != (vocal.shape[0],):
                raise ValueError(f"keep_condition must be ({vocal.shape[0]},), got {tuple(keep_condition.shape)}")
            null = self.null_condition_input(vocal.shape[0], vocal.shape[-1]).to(vocal.dtype)
            vocal = torch.where(keep_condition.view(-1, 1, 1), vocal, null)
        return vocal

    def encode_condition(
        self, vocal: Tensor | None, keep_condition: Tensor | None = None, *, batch_size: int = 1, frames: int = 0
    ) -> Condition:
        """Vocal (B, 64, T) -> per-module projected contexts. Independent of t: compute once per clip.

        ``vocal=None`` gives the null condition for ``batch_size`` clips of ``frames`` frames.
        """
        vocal = self.condition_input(vocal, keep_condition, batch_size=batch_size, frames=frames)
        feats = self.vocal_encoder(vocal)
        cos, sin = self._rope(vocal.shape[-1])
        cross, films = self._conditioned_modules()
        return Condition(
            contexts=tuple(m.project_context(feats[lvl], cos, sin) for m, lvl in cross),
            films=tuple(block.project_vocal(feats[lvl]) for block, lvl in films),
        )

    def denoise(self, x_t: Tensor, t: Tensor, condition: Condition) -> Tensor:
        """v-prediction for (x_t, t) given a condition from :meth:`encode_condition`."""
        self._check_denoise_inputs(x_t, t, condition)
        if condition.layout != "channel-major":
            raise ValueError(f"this condition is {condition.layout}: denoise it with samuel.time_major's executor")
        frames = x_t.shape[-1]
        t = t.to(x_t.device)
        dtype = self.dtype
        embed = F.silu(self.time_mlp(timestep_features(t).to(dtype)))
        w_global, w_local = (w.to(dtype) for w in mixing_weights(self.config.mixing, t, self.alpha_bar))
        cos, sin = self._rope(frames)
        contexts, films = iter(condition.contexts), iter(condition.films)

        h = self.stem(x_t)
        skips = []
        for lvl in self.encoder:
            h = lvl.res(h, embed, next(films))
            if lvl.cross is not None:
                h = lvl.cross(h, w_global, w_local, cos, sin, next(contexts))
            skips.append(h)
            h = lvl.down(h)
        mid = self.bottleneck
        h = mid.res_in(h, embed, next(films))
        h = mid.self_attn(h, w_global, w_local, cos, sin)
        if mid.cross is not None:
            h = mid.cross(h, w_global, w_local, cos, sin, next(contexts))
        h = mid.res_out(h, embed, next(films))
        for lvl in self.decoder:
            h = lvl.res(torch.cat([lvl.up(h), skips.pop()], dim=1), embed, next(films))
            if lvl.cross is not None:
                h = lvl.cross(h, w_global, w_local, cos, sin, next(contexts))
        return self.head(h)

    def forward(
        self, x_t: Tensor, t: Tensor, vocal: Tensor | None = None, *, keep_condition: Tensor | None = None
    ) -> Tensor:
        self._check_forward_inputs(x_t, t, vocal)
        cond = self.encode_condition(vocal, keep_condition, batch_size=x_t.shape[0], frames=x_t.shape[-1])
        return self.denoise(x_t, t, cond)


def low_precision_twin(model: SAMUeL, dtype: torch.dtype) -> SAMUeL:
    """A copy of ``model`` whose parameters are in ``dtype`` (bf16 for the fast path), for inference only.

    Buffers (the cosine schedule, the RoPE tables) stay fp32: the mixing weights and rotations are computed there
    and cast per call. Unlike autocast, which casts every weight at every step, the cast is paid once: on an AMX
    Xeon the bf16 denoiser step ran 1.2-1.5x faster than under autocast, at the same SNR against fp32
    (docs/benchmarks.md). Callers feed it ``x_t`` and a :class:`Condition` in ``dtype``.
    """
    twin = copy.deepcopy(model).eval()
    vars(twin).pop("denoise", None)  # a compiled override (Accompanist.load) is bound to the original model
    with torch.no_grad():
        for param in twin.parameters():
            param.data = param.data.to(dtype)
            param.requires_grad_(False)
    return twin


def fill_zero_init_layers(model: nn.Module, seed: int = 0, std: float = 0.05) -> nn.Module:
    """Random-weight stand-in: give the layers that start at zero (output conv, FiLM, learned null vector)
    small seeded noise, so that an untrained model's output depends on its inputs.

    For demos, timing and tests only: such a model is never a quality result.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.numel() and not p.any():
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    return model


def parameter_counts(model: nn.Module) -> tuple[int, dict[str, int]]:
    """(total, per top-level component); a parameter shared by several modules is counted once.

    Works on the meta device, so the full model never has to be allocated.
    """
    seen: set[int] = set()
    by_component: dict[str, int] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in seen:
            continue
        seen.add(id(param))
        component = name.split(".", 1)[0]
        by_component[component] = by_component.get(component, 0) + param.numel()
    return sum(by_component.values()), by_component
