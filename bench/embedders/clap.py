"""LAION CLAP audio embeddings (Wu et al. 2023) through transformers, as fadtk's ``clap-laion-*`` models.

Windowing follows fadtk: the 48 kHz mono waveform is cut into 10 s windows starting every second (``hop_seconds``),
each zero-padded to 10 s, so a clip of S samples gives ceil(S / 48000) frames, and every window lands exactly on the
feature extractor's ``nb_max_samples``: no random truncation, no repeat-padding. Each window's embedding is the
audio projection of the pooled HTSAT output, L2-normalised (laion_clap's ``get_audio_embedding_from_data`` and
transformers' ``get_audio_features`` both normalise). The towers are called directly rather than
``get_audio_features``, whose return type changed between transformers 4 and 5.

fadtk loads the original laion_clap checkpoints (``630k-audioset-best.pt``, ``music_audioset_epoch_15_esc_90.14.pt``);
the transformers checkpoints named here are LAION's conversions of the same model families, not verified here to be
bit-identical to those files, so fadtk's published ``clap-laion-*`` statistics are comparable only approximately.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from baselines.base import AdapterError, WeightsChoice
from baselines.weights import Resolved
from bench.embedders.base import RANDOM_SEED, Embedder, with_digest
from bench.embedders.features import pad_to_length
from bench.resample import DEFAULT_RESAMPLER

WINDOW_SECONDS = 10.0  # the model's input length (feature extractor max_length_s)
HOP_SECONDS = 1.0  # fadtk's hop: one frame per second of audio
BATCH_WINDOWS = 8  # windows per forward pass
FEATURE_FILE = "preprocessor_config.json"
# Random init only (weights asked for as random): the text tower is never used for audio embeddings, so it is
# built minimal to keep setup fast; the audio tower is the published one.
_TINY_TEXT = {"vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 37, "max_position_embeddings": 64}


class _ClapEmbedder(Embedder):
    """One embedding per ``hop_seconds`` of audio: the 10 s window starting there (fadtk's CLAP windowing)."""

    sample_rate = 48_000
    dim = 512
    code_version = "1"
    default_repo = ""
    # the audio tower of ``default_repo`` as ClapAudioConfig arguments, for random init
    published_audio_config: ClassVar[Mapping[str, Any]] = MappingProxyType({})

    def __init__(self, weights: WeightsChoice | None = None, *, device: str = "cpu",
                 hop_seconds: float = HOP_SECONDS, resampler: str = DEFAULT_RESAMPLER) -> None:
        if hop_seconds <= 0:
            raise ValueError(f"hop_seconds must be positive, got {hop_seconds}")
        super().__init__(weights, device=device, resampler=resampler, hop_seconds=hop_seconds)
        self.hop_seconds = hop_seconds
        self._model: Any = None
        self._features: Any = None

    def resolve_weights(self) -> Resolved:
        repo = self.default_repo
        how = (f"Get it with `huggingface-cli download {repo}` (config.json, the weights and {FEATURE_FILE}), or "
               "pass a folder saved with ClapModel.save_pretrained plus its feature extractor.")
        resolved = self._resolve_hub(default_repo=repo, marker_files=("config.json",), how_to_get=how)
        if resolved.folder is None:
            return resolved
        feature_config = resolved.folder / FEATURE_FILE
        if not feature_config.is_file():
            raise AdapterError(f"{self.name}: {resolved.folder} holds no {FEATURE_FILE} (the feature extractor). "
                               f"{how}")
        # the mel front end is part of the checkpoint's meaning: its config joins the weights' digest
        digest = f"{resolved.status.sha256};features=sha256:{hashlib.sha256(feature_config.read_bytes()).hexdigest()}"
        return with_digest(resolved, digest)

    def _load(self) -> None:
        import torch
        from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

        folder = self._resolved.folder
        if folder is not None:
            model = ClapModel.from_pretrained(folder, local_files_only=True)
            self._features = ClapFeatureExtractor.from_pretrained(folder, local_files_only=True)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(RANDOM_SEED)
                model = ClapModel(ClapConfig(audio_config=dict(self.published_audio_config), text_config=_TINY_TEXT))
            self._features = ClapFeatureExtractor(frequency_min=50, frequency_max=14_000)
        if self._features.sampling_rate != self.sample_rate:
            raise AdapterError(f"{self.name}: the feature extractor reads {self._features.sampling_rate} Hz, "
                               f"expected {self.sample_rate}")
        self.dim = int(model.config.projection_dim)
        self._model = model.eval().to(self.device)

    def window_starts(self, n_samples: int) -> list[int]:
        """Start sample of every window: 0, hop, 2 hop, ... while inside the clip (at least one)."""
        hop = round(self.hop_seconds * self.sample_rate)
        return list(range(0, max(n_samples, 1), hop))

    def _embed(self, waveform: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        window = int(self._features.nb_max_samples)  # 10 s at 48 kHz
        fusion = bool(self._model.config.audio_config.enable_fusion)
        windows = [pad_to_length(waveform[s:s + window], window) for s in self.window_starts(waveform.shape[0])]
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(windows), BATCH_WINDOWS):
                inputs = self._features(windows[start:start + BATCH_WINDOWS], sampling_rate=self.sample_rate,
                                        truncation="fusion" if fusion else "rand_trunc", padding="repeatpad",
                                        return_tensors="pt")
                audio = self._model.audio_model(input_features=inputs["input_features"].to(self.device),
                                                is_longer=inputs["is_longer"].to(self.device))
                projected = self._model.audio_projection(audio.pooler_output)  # (B, 512)
                outputs.append(F.normalize(projected, dim=-1).float().cpu().numpy())
        return np.concatenate(outputs)

    def preprocessing(self) -> str:
        return (f"mono mean; {self.resampling_step()}; pcm16; {WINDOW_SECONDS:g} s windows every "
                f"{self.hop_seconds:g} s, zero-padded; transformers ClapFeatureExtractor; "
                "audio projection, L2-normalised")

    @property
    def stats_key(self) -> str:
        return self.name if self.hop_seconds == HOP_SECONDS else f"{self.name}[hop={self.hop_seconds:g}]"


class ClapLaionAudio(_ClapEmbedder):
    """``laion/clap-htsat-unfused`` (HTSAT-tiny audio tower, general audio): fadtk's ``clap-laion-audio``."""

    name = "clap-laion-audio"
    default_repo = "laion/clap-htsat-unfused"
    published_audio_config = MappingProxyType({})  # transformers' ClapAudioConfig defaults are this tower


class ClapLaionMusic(_ClapEmbedder):
    """``laion/larger_clap_music`` (HTSAT-base audio tower, music): fadtk's ``clap-laion-music``."""

    name = "clap-laion-music"
    default_repo = "laion/larger_clap_music"
    published_audio_config = MappingProxyType({"patch_embeds_hidden_size": 128, "hidden_size": 1024,
                                               "depths": [2, 2, 12, 2]})
