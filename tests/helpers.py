"""Shared test utilities (imported as ``helpers``: pytest puts tests/ on sys.path, as it has no __init__.py)."""

from __future__ import annotations

import torch

from samuel.chunking import HOP_LENGTH


class ProjectionCodec:
    """Stands in for ``OobleckCodec``: same attributes, same input checks, a seeded linear projection of each
    2048-sample hop onto 64 channels in place of the VAE (and its transpose to decode). Records the shape of every
    ``encode`` call in ``calls`` and of every ``decode`` call in ``decode_calls``.

    The tiny random Oobleck VAE has the real hop, so its encoder runs 128 channels wide at the full 44.1 kHz rate:
    about 6 s per 64-frame chunk and minutes per 1024-frame chunk on a 2-core CPU. This runs in milliseconds.
    """

    sample_rate = 44_100
    hop_length = HOP_LENGTH
    latent_channels = 64

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        gen = torch.Generator().manual_seed(seed)
        self.weight = torch.randn(64, 2, HOP_LENGTH, generator=gen) / 64
        self.calls: list[tuple[int, ...]] = []
        self.decode_calls: list[tuple[int, ...]] = []
        self.decode_keeps: list[list[int] | None] = []  # keep_frames of every decode call
        self.fail_after: int | None = None  # raise KeyboardInterrupt on this call number, to simulate Ctrl-C
        self.fail_once: Exception | None = None  # raised by the next call only

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        assert audio.ndim == 3 and audio.shape[1] == 2 and audio.dtype == torch.float32
        assert audio.shape[-1] % HOP_LENGTH == 0
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt
        if self.fail_once is not None:
            err, self.fail_once = self.fail_once, None
            raise err
        self.calls.append(tuple(audio.shape))
        return torch.nn.functional.conv1d(audio, self.weight, stride=HOP_LENGTH)

    def decode(self, latents: torch.Tensor, keep_frames=None) -> torch.Tensor:
        assert latents.ndim == 3 and latents.shape[1] == 64 and latents.dtype == torch.float32
        assert keep_frames is None or len(keep_frames) == latents.shape[0]
        self.decode_calls.append(tuple(latents.shape))
        self.decode_keeps.append(None if keep_frames is None else list(keep_frames))
        return torch.nn.functional.conv_transpose1d(latents, self.weight, stride=HOP_LENGTH)

    def provenance(self) -> dict:
        return {"codec": "projection", "seed": self.seed, "weights_sha256": None}


def save_tiny_clap(folder):
    """A random LAION-CLAP checkpoint in the transformers format (config, weights, feature extractor) in ``folder``;
    HTSAT needs spec_size^2 / mels >= 1001 time frames and spec_size / 4^(stages) >= spec_size / mels."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    audio = {"hidden_size": 32, "patch_embeds_hidden_size": 8, "depths": [1, 1, 1], "num_attention_heads": [1, 1, 2],
             "window_size": 4, "spec_size": 128, "num_mel_bins": 16}
    text = {"vocab_size": 64, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
            "intermediate_size": 20, "max_position_embeddings": 40}
    torch.manual_seed(0)
    ClapModel(ClapConfig(audio_config=audio, text_config=text, projection_dim=16)).save_pretrained(folder)
    ClapFeatureExtractor(feature_size=16, frequency_min=50, frequency_max=14_000).save_pretrained(folder)
    return folder
