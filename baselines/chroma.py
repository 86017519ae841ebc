"""MusicGen-Melody's chroma conditioning without torchaudio: STFT power spectrogram, chroma filter bank, one-hot.

transformers' ``MusicgenMelodyFeatureExtractor`` needs torchaudio (``transforms.Spectrogram`` for the STFT and
``functional.resample`` for other rates), which cannot be installed here. This module computes the same features:

1. :class:`PowerSpectrogram` is ``torchaudio.transforms.Spectrogram`` with the semantics the extractor asks for
   (``n_fft = win_length = 16384``, ``hop_length = 4096``, periodic Hann window, ``center=True`` with reflect
   padding, ``pad=0``, ``power=2``, ``normalized=True``): ``|STFT|^2 / sum(window^2)``. Note ``normalized=True``
   (torchaudio's "window" normalisation), as in both transformers and audiocraft's ``ChromaExtractor``; the
   scale cannot change the one-hot result below, but it is kept so that the spectrogram itself matches.
2. :func:`chroma_from_waveform` is the extractor's ``_torch_extract_fbank_features``: zero-pad to ``n_fft`` when
   shorter, project the power spectrogram onto 12 chroma bins with transformers' own ``chroma_filter_bank``
   (a port of librosa's, tuning 0), normalise by the max over bins, and keep only the argmax as a one-hot.
3. :func:`melody_chroma` is the extractor's ``__call__`` for mono waveforms already at the model's rate: truncate
   each to ``chunk_length`` seconds (30 s: MusicGen-Melody's ``chroma_length`` of 235 frames), zero-pad the batch
   to the longest, extract. Resampling to 32 kHz is done by the caller with soxr (:func:`to_model_rate`), not with
   torchaudio's sinc resampler, so features of non-32 kHz audio differ from transformers' by the resampler only.

Pure tensor/array functions; no file I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import soxr
import torch


@dataclass(frozen=True)
class ChromaSettings:
    """The feature extractor's defaults as published with facebook/musicgen-melody (preprocessor_config.json)."""

    sampling_rate: int = 32_000
    n_fft: int = 16_384  # ~0.5 s window at 32 kHz
    hop_length: int = 4_096  # 7.8125 chroma frames per second
    num_chroma: int = 12
    chunk_length: int = 30  # seconds of audio kept: 30 * 32000 / 4096 + 1 = 235 frames = config.chroma_length

    @property
    def n_samples(self) -> int:
        return self.chunk_length * self.sampling_rate


class PowerSpectrogram:
    """``torchaudio.transforms.Spectrogram(n_fft, win_length, hop_length, power=2, center=True, pad=0,
    normalized)`` with torch.stft: (..., time) -> (..., n_fft // 2 + 1, frames).

    Accepts torchaudio's keyword names so it can stand in for it (the parity test does exactly that).
    """

    def __init__(self, n_fft: int = 400, win_length: int | None = None, hop_length: int | None = None,
                 power: float = 2.0, center: bool = True, pad: int = 0, normalized: bool = False,
                 pad_mode: str = "reflect") -> None:
        if power != 2:
            raise ValueError(f"only power=2 is implemented, got {power}")
        if pad != 0:
            raise ValueError(f"only pad=0 is implemented, got {pad}")
        self.n_fft = n_fft
        self.win_length = win_length if win_length is not None else n_fft
        self.hop_length = hop_length if hop_length is not None else self.win_length // 2
        self.center = center
        self.normalized = normalized
        self.pad_mode = pad_mode
        self.window = torch.hann_window(self.win_length)  # periodic, float32: torchaudio's default window_fn

    def __call__(self, waveform: torch.Tensor) -> torch.Tensor:
        return power_spectrogram(waveform, self.window, n_fft=self.n_fft, hop_length=self.hop_length,
                                 center=self.center, normalized=self.normalized, pad_mode=self.pad_mode)


def power_spectrogram(waveform: torch.Tensor, window: torch.Tensor, *, n_fft: int, hop_length: int,
                      center: bool = True, normalized: bool = False, pad_mode: str = "reflect") -> torch.Tensor:
    """|STFT|^2, as ``torchaudio.functional.spectrogram(power=2)``: (..., time) -> (..., freq, frames).

    ``normalized`` divides the complex STFT by sqrt(sum(window^2)) before squaring (torchaudio's "window" norm).
    """
    shape = waveform.shape
    flat = waveform.reshape(-1, shape[-1])  # pack batch
    spec = torch.stft(flat, n_fft=n_fft, hop_length=hop_length, win_length=window.shape[0],
                      window=window.to(flat.device, flat.dtype), center=center, pad_mode=pad_mode, normalized=False,
                      onesided=True, return_complex=True)
    spec = spec.reshape(shape[:-1] + spec.shape[-2:])  # unpack batch
    if normalized:
        spec = spec / window.pow(2.0).sum().sqrt()
    return spec.abs().pow(2.0)


def chroma_filters(settings: ChromaSettings = ChromaSettings()) -> torch.Tensor:
    """(num_chroma, n_fft // 2 + 1) float32: transformers' ``chroma_filter_bank`` exactly as the extractor builds it."""
    from transformers.audio_utils import chroma_filter_bank  # numpy only; never imports torchaudio

    bank = chroma_filter_bank(sampling_rate=settings.sampling_rate, num_frequency_bins=settings.n_fft, tuning=0,
                              num_chroma=settings.num_chroma)
    return torch.from_numpy(bank).float()


def chroma_from_waveform(waveform: torch.Tensor, filters: torch.Tensor, spectrogram: PowerSpectrogram,
                         n_fft: int) -> torch.Tensor:
    """(batch, time) float32 -> (batch, frames, num_chroma) one-hot of the loudest chroma bin per frame."""
    length = waveform.shape[-1]
    if length < n_fft:  # centre the short clip in n_fft zeros, as the extractor does
        pad = n_fft - length
        waveform = torch.nn.functional.pad(waveform, (pad // 2, pad // 2 + pad % 2), "constant", 0)
    spec = spectrogram(waveform).squeeze(1)  # (batch, freq, frames)
    raw = torch.einsum("cf,...ft->...ct", filters, spec)  # (batch, chroma, frames)
    norm = torch.nn.functional.normalize(raw, p=float("inf"), dim=-2, eps=1e-6).transpose(1, 2)
    idx = norm.argmax(-1, keepdim=True)  # (batch, frames, 1)
    return torch.zeros_like(norm).scatter_(-1, idx, 1.0)


def melody_chroma(waveforms: Sequence[np.ndarray], settings: ChromaSettings = ChromaSettings()) -> torch.Tensor:
    """Mono waveforms at ``settings.sampling_rate`` -> (batch, frames, num_chroma) ``input_features``.

    Each is truncated to ``settings.n_samples`` and the batch is zero-padded on the right to the longest, as the
    extractor's ``pad(padding=True, max_length=n_samples, truncation=True)`` does.
    """
    if not waveforms:
        raise ValueError("no waveform given")
    clipped = [np.asarray(w, dtype=np.float32)[: settings.n_samples] for w in waveforms]
    if any(w.ndim != 1 for w in clipped):
        raise ValueError(f"expected mono (time,) waveforms, got shapes {[w.shape for w in clipped]}")
    longest = max(w.shape[0] for w in clipped)
    batch = torch.zeros(len(clipped), longest, dtype=torch.float32)
    for i, w in enumerate(clipped):
        batch[i, : w.shape[0]] = torch.from_numpy(w)
    spectrogram = PowerSpectrogram(n_fft=settings.n_fft, win_length=settings.n_fft, hop_length=settings.hop_length,
                                   power=2, center=True, pad=0, normalized=True)
    return chroma_from_waveform(batch, chroma_filters(settings), spectrogram, settings.n_fft)


def to_model_rate(audio: np.ndarray, rate: int, target_rate: int = 32_000) -> np.ndarray:
    """(channels, samples) float at ``rate`` -> mono (samples,) float32 at ``target_rate``: channel mean, then soxr
    (quality VHQ, as :mod:`samuel.audio`). audiocraft's ``convert_audio`` also mixes down before resampling."""
    mono = np.asarray(audio, dtype=np.float32).mean(axis=0)
    if rate == target_rate:
        return mono
    return soxr.resample(mono, rate, target_rate, quality="VHQ").astype(np.float32, copy=False)
