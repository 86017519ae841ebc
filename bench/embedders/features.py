"""Pure signal code of the embedders: arrays in, arrays out, no files and no models.

- :func:`prepare_waveform`: (channels, samples) float32 at any rate -> the mono waveform an embedder sees. It
  follows fadtk's input path (Gui et al. 2024), which converts every file to a mono 16-bit WAV at the model's
  rate before embedding: mean of the channels, resampling, then rounding to the 16-bit grid, clipped to [-1, 1).
  The resampler is named (:mod:`bench.resample`): soxr ``VHQ`` by default; fadtk itself has resampled with
  torchaudio's Kaiser sinc (``"torchaudio-kaiser-best"``) since Oct 2023, and with sox before. Matching that path
  is what makes our statistics comparable with fadtk's published ones.
- :class:`VGGishFrontEnd` and :func:`vggish_examples`: the log-mel front end of VGGish (Hershey et al. 2017),
  as the AudioSet release defines it: 25 ms periodic-Hann frames every 10 ms, |rFFT| of 512 bins, 64 mel bands
  from 125 to 7500 Hz (HTK mel scale, triangles in mel space, DC bin zeroed), log(mel + 0.01), cut into
  non-overlapping 0.96 s examples of 96 frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.resample import DEFAULT_RESAMPLER, check_resampler, resample

PCM16_SCALE = 32768.0  # sox and libsndfile map int16 to float by dividing by 2^15


def prepare_waveform(audio: np.ndarray, rate: int, target_rate: int, resampler: str = DEFAULT_RESAMPLER,
                     ) -> np.ndarray:
    """Mono, resampled, 16-bit-rounded waveform, as fadtk feeds its models.

    Args:
        audio: (channels, samples) float array, all finite, at least one sample.
        rate: its sample rate in Hz.
        target_rate: the model's rate.
        resampler: a :data:`bench.resample.RESAMPLERS` name; used only when ``rate != target_rate``.

    Returns:
        (samples',) float32 at ``target_rate``, values on the int16 grid / 32768.
    """
    audio = np.asarray(audio)
    if audio.ndim != 2 or audio.shape[0] < 1 or audio.shape[1] < 1:
        raise ValueError(f"audio must be (channels, samples) with both >= 1, got shape {audio.shape}")
    if not np.issubdtype(audio.dtype, np.floating):
        raise TypeError(f"audio must be float (-1..1 full scale), got dtype {audio.dtype}")
    if rate <= 0 or target_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {rate} and {target_rate}")
    if not np.all(np.isfinite(audio)):
        raise ValueError("audio holds NaN or infinite samples")
    check_resampler(resampler)
    mono = audio.astype(np.float32).mean(axis=0)
    if rate != target_rate:
        mono = resample(mono, rate, target_rate, resampler)
    return quantize_pcm16(mono)


def quantize_pcm16(x: np.ndarray) -> np.ndarray:
    """Round to the signed 16-bit grid and clip, as writing and re-reading a PCM_16 WAV does."""
    q = np.clip(np.round(x.astype(np.float64) * PCM16_SCALE), -PCM16_SCALE, PCM16_SCALE - 1)
    return (q / PCM16_SCALE).astype(np.float32)


def pad_to_length(x: np.ndarray, length: int) -> np.ndarray:
    """``x`` (S,) zero-padded at the end to at least ``length`` samples."""
    return x if x.shape[0] >= length else np.pad(x, (0, length - x.shape[0]))


# -- VGGish log-mel front end -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VGGishFrontEnd:
    """The constants of VGGish's input (the AudioSet release's ``vggish_params``)."""

    sample_rate: int = 16_000
    window_s: float = 0.025  # 400 samples at 16 kHz, zero-padded to the next power of two (512) for the FFT
    hop_s: float = 0.010
    n_mels: int = 64
    fmin_hz: float = 125.0
    fmax_hz: float = 7500.0
    log_offset: float = 0.01  # log(mel + 0.01): keeps silence finite; part of the trained model's input
    example_frames: int = 96  # 0.96 s per example: the network's fixed input height
    example_hop_frames: int = 96  # non-overlapping examples

    @property
    def window_length(self) -> int:
        return round(self.sample_rate * self.window_s)

    @property
    def hop_length(self) -> int:
        return round(self.sample_rate * self.hop_s)

    @property
    def fft_length(self) -> int:
        return 1 << (self.window_length - 1).bit_length()

    def describe(self) -> str:
        return (f"log-mel {self.sample_rate} Hz, {self.window_length}-sample periodic Hann / hop {self.hop_length}, "
                f"fft {self.fft_length}, {self.n_mels} HTK mels {self.fmin_hz:g}-{self.fmax_hz:g} Hz, "
                f"log(mel+{self.log_offset:g}), examples {self.example_frames}/{self.example_hop_frames} frames")


VGGISH_FRONT_END = VGGishFrontEnd()


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale, 1127 ln(1 + f / 700), as VGGish uses."""
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def periodic_hann(n: int) -> np.ndarray:
    """Periodic Hann window of length n (the DFT-even form: 0.5 - 0.5 cos(2 pi k / n), k = 0..n-1)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def frame_signal(x: np.ndarray, window: int, hop: int) -> np.ndarray:
    """(S,) -> (1 + (S - window) // hop, window) frames, no padding; zero frames when S < window."""
    n_frames = 1 + (x.shape[0] - window) // hop if x.shape[0] >= window else 0
    if n_frames == 0:
        return np.zeros((0, window), dtype=x.dtype)
    return np.lib.stride_tricks.sliding_window_view(x, window)[::hop][:n_frames]


def stft_magnitude(x: np.ndarray, fe: VGGishFrontEnd = VGGISH_FRONT_END) -> np.ndarray:
    """|rFFT| of periodic-Hann frames: (S,) -> (frames, fft_length // 2 + 1), float64."""
    frames = frame_signal(x.astype(np.float64), fe.window_length, fe.hop_length)
    return np.abs(np.fft.rfft(frames * periodic_hann(fe.window_length), n=fe.fft_length))


def mel_matrix(fe: VGGishFrontEnd = VGGISH_FRONT_END) -> np.ndarray:
    """(fft_length // 2 + 1, n_mels) triangular weights, linear in mel between n_mels + 2 equally spaced edges.

    Unlike librosa's filters (triangles linear in Hz), VGGish's triangles are linear in mel, and the DC bin gets
    weight 0 in every band.
    """
    n_bins = fe.fft_length // 2 + 1
    if not 0.0 <= fe.fmin_hz < fe.fmax_hz <= fe.sample_rate / 2:
        raise ValueError(f"need 0 <= fmin < fmax <= Nyquist, got {fe.fmin_hz}, {fe.fmax_hz}")
    bins_mel = hz_to_mel(np.linspace(0.0, fe.sample_rate / 2, n_bins))  # (n_bins,)
    edges = np.linspace(hz_to_mel(fe.fmin_hz), hz_to_mel(fe.fmax_hz), fe.n_mels + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]  # (n_mels,) each
    rising = (bins_mel[:, None] - lower) / (center - lower)
    falling = (upper - bins_mel[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return weights


def log_mel_spectrogram(x: np.ndarray, fe: VGGishFrontEnd = VGGISH_FRONT_END) -> np.ndarray:
    """(S,) waveform at ``fe.sample_rate`` -> (frames, n_mels) log-mel, float64."""
    return np.log(stft_magnitude(x, fe) @ mel_matrix(fe) + fe.log_offset)


def vggish_examples(x: np.ndarray, fe: VGGishFrontEnd = VGGISH_FRONT_END) -> np.ndarray:
    """(S,) waveform at 16 kHz -> (examples, 96, 64) float32 network inputs; a trailing partial example is dropped.

    S = 16000 * t gives 1 + (S - 400) // 160 frames and 1 + (frames - 96) // 96 examples (10 s: 998 frames, 10).
    """
    log_mel = log_mel_spectrogram(x, fe)  # (frames, n_mels)
    if log_mel.shape[0] < fe.example_frames:
        return np.zeros((0, fe.example_frames, fe.n_mels), dtype=np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(log_mel, fe.example_frames, axis=0)  # (starts, n_mels, 96)
    return windows[::fe.example_hop_frames].transpose(0, 2, 1).astype(np.float32)
