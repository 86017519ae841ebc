"""Signal metrics that need no model weights: loudness, true peak, clipping, silence, spectral flatness.

Arrays in, numbers out; audio is (channels, samples) float at ``rate``. They flag broken outputs (silence, noise,
clipping) before any learned metric is trusted, and they are valid for random-weight outputs too.

- Integrated loudness, LUFS: ITU-R BS.1770-4 with its gating, via pyloudnorm's meter.
- True peak, dBTP: BS.1770-4 Annex 2, the maximum absolute sample after 4x oversampling (polyphase resampling).
- Clipping share: the fraction of samples at or beyond ``clip_level`` (0.999 of full scale) in any channel.
- Silence share: the fraction of 50 ms frames whose RMS (channels averaged) is below -60 dBFS.
- Spectral flatness: geometric over arithmetic mean of the power spectrum per frame (Gray and Markel 1974), median
  over non-silent frames; ~1 for white noise, near 0 for tones. A noise indicator, not a quality score.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.signal import resample_poly

SILENCE_DBFS = -60.0
FRAME_S = 0.05
CLIP_LEVEL = 0.999
_EPS = 1e-12


@dataclass(frozen=True)
class SignalMetrics:
    loudness_lufs: float  # -inf for digital silence (BS.1770 gating keeps nothing)
    true_peak_dbtp: float
    clipping_share: float
    silence_share: float
    spectral_flatness: float  # NaN when every frame is silent

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _check(audio: np.ndarray, rate: int) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"audio must be (channels, samples) with samples > 0, got shape {x.shape}")
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    if not np.all(np.isfinite(x)):
        raise ValueError("audio holds NaN or infinite samples")
    return x


def integrated_loudness(audio: np.ndarray, rate: int) -> float:
    """BS.1770-4 integrated loudness in LUFS (pyloudnorm). Needs at least one 400 ms block."""
    import pyloudnorm

    x = _check(audio, rate)
    if x.shape[1] < int(0.4 * rate):
        raise ValueError(f"integrated loudness needs >= 0.4 s of audio, got {x.shape[1] / rate:.3f} s")
    return float(pyloudnorm.Meter(rate).integrated_loudness(x.T))


def true_peak_dbtp(audio: np.ndarray, rate: int, oversample: int = 4) -> float:
    """Maximum absolute value after ``oversample``-times polyphase upsampling, in dB (BS.1770-4 Annex 2)."""
    x = _check(audio, rate)
    peak = float(np.abs(resample_poly(x, oversample, 1, axis=1)).max())
    return 20.0 * math.log10(max(peak, _EPS))


def clipping_share(audio: np.ndarray, level: float = CLIP_LEVEL) -> float:
    """Fraction of sample instants at which any channel reaches ``level`` of full scale or beyond."""
    x = np.asarray(audio)
    return float(np.mean(np.any(np.abs(x) >= level, axis=0)))


def _frames(x: np.ndarray, n: int) -> np.ndarray:
    usable = (x.shape[1] // n) * n
    return x[:, :usable].reshape(x.shape[0], -1, n)  # (C, frames, n)


def silence_share(audio: np.ndarray, rate: int, threshold_dbfs: float = SILENCE_DBFS) -> float:
    """Fraction of 50 ms frames whose RMS over all channels is below ``threshold_dbfs``."""
    x = _check(audio, rate)
    frames = _frames(x, max(1, round(FRAME_S * rate)))
    if frames.shape[1] == 0:
        return float(np.sqrt(np.mean(x**2)) < 10 ** (threshold_dbfs / 20))
    rms = np.sqrt(np.mean(frames**2, axis=(0, 2)))
    return float(np.mean(rms < 10 ** (threshold_dbfs / 20)))


def spectral_flatness(audio: np.ndarray, rate: int, threshold_dbfs: float = SILENCE_DBFS) -> float:
    """Median spectral flatness of the non-silent 50 ms frames (Hann window, channels averaged to mono)."""
    x = _check(audio, rate).mean(axis=0, keepdims=True)
    n = max(8, round(FRAME_S * rate))
    frames = _frames(x, n)[0]  # (frames, n)
    if len(frames) == 0:
        return math.nan
    loud = np.sqrt(np.mean(frames**2, axis=1)) >= 10 ** (threshold_dbfs / 20)
    if not loud.any():
        return math.nan
    power = np.abs(np.fft.rfft(frames[loud] * np.hanning(n), axis=1)) ** 2 + _EPS
    flatness = np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1)
    return float(np.median(flatness))


def signal_metrics(audio: np.ndarray, rate: int) -> SignalMetrics:
    """All five for one clip."""
    x = _check(audio, rate)
    loudness = integrated_loudness(x, rate) if x.shape[1] >= int(0.4 * rate) else math.nan
    return SignalMetrics(loudness, true_peak_dbtp(x, rate), clipping_share(x), silence_share(x, rate),
                         spectral_flatness(x, rate))
