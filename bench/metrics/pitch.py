"""Pitch trackers for the adherence metrics: f0 and a voicing weight per frame of the metrics' shared frame grid.

Arrays in, arrays out; no file I/O. The caller gives mono audio at its analysis rate and the grid (hop, frame
count: frame t is centred at ``t * hop / rate`` seconds, as librosa's centred frames are).

- **swift-f0** (Nieradzik 2025, the ``swift-f0`` package: a small CNN on a 16 kHz spectrogram whose ONNX weights
  ship inside the wheel, run by onnxruntime on the CPU). It gives a pitch and a calibrated confidence per 16 ms
  frame, voiced when the confidence is at least 0.5. Its output depends on the input's level (its silence gate is
  an absolute 1e-3 peak, and the network saw speech and song at ordinary levels), so the audio is first scaled to
  put its loudest frame at ``SWIFT_F0_LEVEL_RMS``: the track is then the same at any gain. Frame t of the grid
  takes log f0 and confidence at its centre, linearly interpolated between the two 16 ms swift-f0 frames around
  it. About 10x faster than pYIN here (0.4 s against 3-6 s for 47.55 s).
- **pYIN** (Mauch and Dixon 2014, ``librosa.pyin``): f0 by YIN thresholds and a Viterbi path over 480 pitch bins x
  voiced/unvoiced; its voiced probability is the weight. Its Viterbi pass holds ~85% of its cost.

``python -m bench.metrics.pitch_agreement`` measures how often the two name the same pitch class on the frames both
call voiced (the figure that made swift-f0 the default; docs/benchmarks.md).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from samuel.numba_cache import librosa_with_kernels  # numba's cache filled by one process at a time

SWIFT_F0 = "swift-f0"
PYIN = "pyin"
PITCH_TRACKERS = (SWIFT_F0, PYIN)
DEFAULT_PITCH_TRACKER = SWIFT_F0  # agrees with pYIN on >= 99% of voiced frames' pitch classes (pitch_agreement)
SWIFT_F0_VOICED = 0.5  # the package's calibrated threshold: a frame is voiced when its confidence is at least this
SWIFT_F0_LEVEL_RMS = 0.1  # the loudest frame's RMS (-20 dBFS) before swift-f0: ordinary levels, and gain-free
SWIFT_F0_RATE, SWIFT_F0_HOP = 16_000, 256  # the model's input rate and frame hop (16 ms)


@dataclass(frozen=True)
class PitchTrack:
    """A pitch track on the caller's frame grid."""

    f0_hz: np.ndarray  # (T,) float; NaN on unvoiced frames
    voiced: np.ndarray  # (T,) bool
    weight: np.ndarray  # (T,) voicing confidence in [0, 1] (pYIN: voiced probability; swift-f0: its confidence)


def check_tracker(tracker: str) -> str:
    """``tracker`` when it is one of :data:`PITCH_TRACKERS`; ValueError naming the choices otherwise."""
    if tracker not in PITCH_TRACKERS:
        raise ValueError(f"pitch tracker must be one of {PITCH_TRACKERS}, got {tracker!r}")
    return tracker


def track_pitch(x: np.ndarray, rate: int, hop: int, n_frames: int, fmin: float, fmax: float, tracker: str,
                frame_length: int = 2048) -> PitchTrack:
    """f0, voicing and weight of mono ``x`` on ``n_frames`` centred frames of ``hop`` samples at ``rate``.

    Args:
        x: (samples,) float mono, finite.
        rate, hop, n_frames: the grid (frame t centred at ``t * hop / rate`` s).
        fmin, fmax: the pitch range searched, Hz.
        tracker: one of :data:`PITCH_TRACKERS`.
        frame_length: pYIN's analysis window (swift-f0's is its own).
    """
    check_tracker(tracker)
    if tracker == PYIN:
        return _pyin(x, rate, hop, n_frames, fmin, fmax, frame_length)
    return _swift_f0(x, rate, hop, n_frames, fmin, fmax, frame_length)


def _pyin(x: np.ndarray, rate: int, hop: int, n_frames: int, fmin: float, fmax: float,
          frame_length: int) -> PitchTrack:
    librosa = librosa_with_kernels()

    f0, voiced, probability = librosa.pyin(x, fmin=fmin, fmax=fmax, sr=rate, frame_length=frame_length,
                                           hop_length=hop)
    return _on_grid(f0, voiced & np.isfinite(f0), np.nan_to_num(probability), n_frames)


def _swift_f0(x: np.ndarray, rate: int, hop: int, n_frames: int, fmin: float, fmax: float,
              frame_length: int) -> PitchTrack:
    librosa = librosa_with_kernels()

    rms = librosa.feature.rms(y=x, frame_length=frame_length, hop_length=hop)[0]
    loudest = float(rms.max()) if rms.size else 0.0
    if not loudest > 0:  # digital silence: nothing is voiced (and scaling would divide by zero)
        return PitchTrack(np.full(n_frames, np.nan), np.zeros(n_frames, bool), np.zeros(n_frames))
    result = _swift_detector().detect((x * (SWIFT_F0_LEVEL_RMS / loudest)).astype(np.float32), rate,
                                      fmin=fmin, fmax=fmax)
    # grid frame t is centred at t * hop / rate s, swift-f0's frame i at i * 256 / 16000 s: the value at each grid
    # centre, linearly interpolated between the two swift-f0 frames around it (log f0, and confidence)
    position = np.arange(n_frames) * (hop / rate) * (SWIFT_F0_RATE / SWIFT_F0_HOP)
    frames = np.arange(result.pitch_hz.size)
    log_f0 = np.log2(np.maximum(result.pitch_hz, 1e-6))
    f0 = 2.0 ** np.interp(position, frames, log_f0)
    confidence = np.clip(np.interp(position, frames, result.confidence), 0.0, 1.0)
    voiced = (confidence >= SWIFT_F0_VOICED) & np.isfinite(f0) & (f0 > 0)
    return PitchTrack(np.where(voiced, f0, np.nan), voiced, confidence)


def _on_grid(f0: np.ndarray, voiced: np.ndarray, weight: np.ndarray, n_frames: int) -> PitchTrack:
    """Cut or pad (unvoiced) a track to ``n_frames``."""
    out = PitchTrack(np.full(n_frames, np.nan), np.zeros(n_frames, bool), np.zeros(n_frames))
    n = min(n_frames, f0.size)
    out.f0_hz[:n], out.voiced[:n], out.weight[:n] = np.where(voiced[:n], f0[:n], np.nan), voiced[:n], weight[:n]
    return out


@functools.lru_cache(maxsize=1)
def _swift_detector() -> Any:
    """One swift-f0 detector per process: one ONNX thread (the score pass runs clips in processes instead, and
    one thread gives the same numbers however many processes run), its pool asleep between calls."""
    try:
        from swift_f0 import SwiftF0
    except ImportError as err:
        raise ImportError(f"the {SWIFT_F0!r} pitch tracker needs the swift-f0 package (pip install swift-f0): "
                          f"{err}; or choose --pitch-tracker {PYIN}") from None
    return SwiftF0(threads=1, spin=False)


def tracker_identity(tracker: str) -> dict[str, Any]:
    """What makes a track of ``tracker`` what it is (JSON): name, package versions and, for swift-f0, the sha256
    of the ONNX weights in its wheel. Cache keys and scores.json's provenance carry it."""
    return dict(_tracker_identity(check_tracker(tracker)))


@functools.cache
def _tracker_identity(tracker: str) -> dict[str, Any]:
    if tracker == PYIN:
        return {"name": PYIN, "method": "pYIN (Mauch and Dixon 2014), librosa.pyin",
                "librosa": _version("librosa")}
    import swift_f0

    weights = Path(swift_f0.__file__).with_name("model.onnx")
    return {"name": SWIFT_F0, "method": "swift-f0 (CNN, ONNX weights in the wheel), onnxruntime on the CPU",
            "swift-f0": _version("swift-f0"), "onnxruntime": _version("onnxruntime"),
            "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
            "voiced_threshold": SWIFT_F0_VOICED, "level_rms": SWIFT_F0_LEVEL_RMS,
            "grid": "log f0 and confidence interpolated linearly at each frame centre"}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def pitch_classes(f0_hz: np.ndarray) -> np.ndarray:
    """(T,) int pitch class of each f0 (nearest equal-tempered note, A4 = 440 Hz, 0 = C); -1 where f0 is NaN."""
    librosa = librosa_with_kernels()

    out = np.full(f0_hz.shape, -1, dtype=np.int64)
    ok = np.isfinite(f0_hz) & (f0_hz > 0)
    out[ok] = np.round(librosa.hz_to_midi(f0_hz[ok])).astype(np.int64) % 12
    return out
