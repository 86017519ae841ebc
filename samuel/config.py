"""SAMUeL configuration: one frozen dataclass whose defaults are the paper's (Cheung et al., sections IV-V)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Literal

MixingSchedule = Literal["eq3", "reversed", "authors-code"]
NullCondition = Literal["learned", "zero"]

MIXING_SCHEDULES: tuple[str, ...] = ("eq3", "reversed", "authors-code")


@dataclass(frozen=True)
class SAMUeLConfig:
    """Architecture and diffusion hyper-parameters. Defaults reproduce the paper's model (~15M parameters)."""

    # Stable Audio Open VAE ("Oobleck") latent width (paper III-B).
    latent_channels: int = 64
    # U-Net widths per level; level l runs at T / 2**l frames: (64,1024)->(128,512)->(256,256)->(512,128) (IV-A).
    channels: tuple[int, ...] = (64, 128, 256, 512)
    # One chunk = 1024 latent frames = 47.55 s of 44.1 kHz audio (III-C). Any T divisible by 8 works. `samuel train`
    # sets it to its data's frames per item: generate cuts chunks of this length (it sizes no parameter).
    num_frames: int = 1024
    # Cosine schedule (improved DDPM) with offset s and 800 steps (V).
    num_train_timesteps: int = 800
    cosine_s: float = 0.008
    # Attention: 8 heads with 64-dimensional projections (IV-C).
    heads: int = 8
    head_dim: int = 64
    # Neighbours of i in the local window W(i): 8 before and 8 after, plus i itself (symmetric; see docs).
    local_window: int = 16
    # Eq. 3 as written is the default; see `samuel.attention.mixing_weights` for the contradiction with the prose.
    mixing: MixingSchedule = "eq3"
    rope_base: float = 10000.0
    # U-Net levels that get vocal cross-attention (time-resolved, Fig. 2); level 3 is the bottleneck.
    cross_attention_levels: tuple[int, ...] = (2, 3)
    # Width of the timestep embedding that drives every FiLM layer.
    time_embed_dim: int = 512
    groups: int = 32
    # What the model sees when the vocal is dropped (CFG, 10% in training): a learned vector or zeros.
    null_condition: NullCondition = "learned"

    def __post_init__(self) -> None:
        # Coerce JSON lists back to tuples so a config read from a checkpoint equals the one written.
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "cross_attention_levels", tuple(int(c) for c in self.cross_attention_levels))
        if len(self.channels) != 4:
            raise ValueError(f"channels must name 4 levels (3 downsamplings), got {self.channels}")
        if self.mixing not in MIXING_SCHEDULES:
            raise ValueError(f"mixing must be one of {MIXING_SCHEDULES}, got {self.mixing!r}")
        if self.null_condition not in ("learned", "zero"):
            raise ValueError(f"null_condition must be 'learned' or 'zero', got {self.null_condition!r}")
        if self.local_window % 2 or self.local_window < 2:
            raise ValueError(f"local_window must be a positive even number (symmetric), got {self.local_window}")
        if any(not 0 <= lvl < len(self.channels) for lvl in self.cross_attention_levels):
            raise ValueError(f"cross_attention_levels must lie in [0, {len(self.channels)})")
        if self.num_frames % self.time_downsampling:
            raise ValueError(f"num_frames must be divisible by {self.time_downsampling}, got {self.num_frames}")
        for c in self.channels:
            if c % self.groups:
                raise ValueError(f"every width in channels must be divisible by groups={self.groups}, got {c}")

    @property
    def time_downsampling(self) -> int:
        """Total temporal downsampling of the U-Net; T must be a multiple of it."""
        return 2 ** (len(self.channels) - 1)

    @property
    def bottleneck_level(self) -> int:
        return len(self.channels) - 1

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SAMUeLConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown SAMUeLConfig keys {unknown}; this checkpoint is from a newer version?")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> SAMUeLConfig:
        return cls.from_dict(json.loads(text))

    @classmethod
    def tiny(cls, **overrides: Any) -> SAMUeLConfig:
        """A small twin built by the same code, for tests and CPU demos (not a quality model)."""
        base: dict[str, Any] = dict(
            # level 0 at least as wide as the 64 latent channels: narrower cannot carry the noise part of v
            channels=(64, 64, 64, 64), num_frames=64, heads=2, head_dim=16, time_embed_dim=32, groups=8
        )
        base.update(overrides)
        return cls(**base)

