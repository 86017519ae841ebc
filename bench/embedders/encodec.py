"""EnCodec encoder latents (Défossez et al. 2022) through transformers, as fadtk's ``encodec-emb``.

The embedding of a clip is the encoder's continuous output before residual vector quantisation: one 128-d frame per
320 samples at 24 kHz (75 frames per second). fadtk runs the 24 kHz model on the whole (mono) clip without
segmenting and cuts clips to their first 3 minutes; both are kept here (``max_seconds``), since its published
statistics were made that way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from baselines.base import AdapterError, WeightsChoice
from baselines.weights import Resolved
from bench.embedders.base import RANDOM_SEED, Embedder
from bench.resample import DEFAULT_RESAMPLER

MAX_SECONDS = 180.0  # fadtk's cut: bounds memory, and its statistics only ever saw the first 3 minutes


class EncodecEmb(Embedder):
    """``facebook/encodec_24khz`` encoder latents, pre-quantisation: fadtk's ``encodec-emb``."""

    name = "encodec-emb"
    sample_rate = 24_000
    dim = 128
    code_version = "1"
    default_repo = "facebook/encodec_24khz"

    def __init__(self, weights: WeightsChoice | None = None, *, device: str = "cpu",
                 max_seconds: float = MAX_SECONDS, resampler: str = DEFAULT_RESAMPLER) -> None:
        if max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}")
        super().__init__(weights, device=device, resampler=resampler, max_seconds=max_seconds)
        self.max_seconds = max_seconds
        self._model: Any = None

    def resolve_weights(self) -> Resolved:
        how = (f"Get it with `huggingface-cli download {self.default_repo}`, or pass a folder saved with "
               "EncodecModel.save_pretrained.")
        return self._resolve_hub(default_repo=self.default_repo, marker_files=("config.json",), how_to_get=how)

    def _load(self) -> None:
        import torch
        from transformers import EncodecConfig, EncodecModel

        folder = self._resolved.folder
        if folder is not None:
            model = EncodecModel.from_pretrained(folder, local_files_only=True)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(RANDOM_SEED)
                model = EncodecModel(EncodecConfig())  # the defaults are encodec_24khz
        config = model.config
        if config.sampling_rate != self.sample_rate or config.audio_channels != 1 or config.normalize:
            raise AdapterError(f"{self.name}: expected a 24 kHz mono EnCodec without input normalisation, got "
                               f"{config.sampling_rate} Hz, {config.audio_channels} channels, "
                               f"normalize={config.normalize} (from {folder})")
        self.dim = int(config.hidden_size)
        self._model = model.eval().to(self.device)

    def _embed(self, waveform: np.ndarray) -> np.ndarray:
        import torch

        clip = waveform[:round(self.max_seconds * self.sample_rate)]
        with torch.inference_mode():
            latents = self._model.encoder(torch.from_numpy(clip).view(1, 1, -1).to(self.device))  # (1, 128, T)
        return latents[0].T.float().cpu().numpy()

    def preprocessing(self) -> str:
        return (f"mono mean; {self.resampling_step()}; pcm16; first {self.max_seconds:g} s; "
                "encoder output before quantisation")

    @property
    def stats_key(self) -> str:
        return self.name if self.max_seconds == MAX_SECONDS else f"{self.name}[max={self.max_seconds:g}s]"
