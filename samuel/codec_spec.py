"""What a SAMUeL codec is, shared by the codec (:mod:`samuel.codec`) and its weight loaders
(:mod:`samuel.codec_weights`): the Stable Audio Open VAE's interface, the codec's errors, where a VAE came from, and
the lazy diffusers import. Its own module so that neither of the two imports the other to get these.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CODEC = "stabilityai/stable-audio-open-1.0"  # HF id; the diffusers VAE is in its subfolder "vae"
SAMPLE_RATE = 44_100
HOP_LENGTH = 2048
LATENT_CHANNELS = 64
AUDIO_CHANNELS = 2

RANDOM_MARKER = "samuel_codec.json"  # written by save_tiny_random_oobleck so provenance can say "random weights"


class CodecError(RuntimeError):
    """The codec cannot be loaded or used; the message names the source and the problem."""


class CodecNotFoundError(CodecError):
    """No codec weights where the spec points: the message says what was looked for, where, and how to get them."""


@dataclass(frozen=True)
class CodecOrigin:
    """Where a VAE came from, for :meth:`OobleckCodec.provenance`."""

    resolved: str | None = None
    weights_files: tuple[Path, ...] = ()
    format: str = "diffusers"
    random_weights: bool | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def config_problems(cfg: Mapping[str, Any]) -> list[str]:
    """What in an AutoencoderOobleck config differs from the Stable Audio Open VAE's interface."""
    problems = []
    ratios = cfg.get("downsampling_ratios") or []
    checks = [
        ("decoder_input_channels (latent channels)", cfg.get("decoder_input_channels"), LATENT_CHANNELS),
        # the encoder emits the posterior mean and scale stacked: twice the latent channels
        ("encoder_hidden_size", cfg.get("encoder_hidden_size"), 2 * LATENT_CHANNELS),
        ("audio_channels", cfg.get("audio_channels"), AUDIO_CHANNELS),
        ("sampling_rate", cfg.get("sampling_rate"), SAMPLE_RATE),
        ("hop (product of downsampling_ratios)", math.prod(ratios) if ratios else None, HOP_LENGTH),
    ]
    for name, got, want in checks:
        if got != want:
            problems.append(f"{name} is {got}, expected {want}")
    return problems


def oobleck_class() -> Any:
    try:
        from diffusers import AutoencoderOobleck
    except ImportError as err:
        raise CodecError("the codec needs diffusers>=0.30 (AutoencoderOobleck): pip install diffusers") from err
    return AutoencoderOobleck


@contextlib.contextmanager
def quiet_library_warnings() -> Iterator[None]:
    # Deprecation chatter between our dependencies, not the user's concern: diffusers' Oobleck uses
    # torch.nn.utils.weight_norm (a warning per layer built), and diffusers passes huggingface_hub an argument
    # that it has deprecated.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*nn\.utils\.weight_norm.*deprecated", category=FutureWarning)
        warnings.filterwarnings("ignore", message=r".*local_dir_use_symlinks.*deprecated", category=UserWarning)
        yield
