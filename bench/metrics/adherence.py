"""Vocal-accompaniment adherence: chroma, key and rhythm agreement, and APA, each read between two anchors.

Arrays in, numbers out; no file I/O. Audio is (samples,) or (channels, samples) float at its own rate; both sides
are mixed to mono and resampled to ``ANALYSIS_RATE`` (22.05 kHz), so a 44.1 kHz vocal and a 32 kHz accompaniment
compare directly. Every frame-level feature uses one hop (``HOP_LENGTH`` = 512, 23.2 ms) with centred frames, so
frame t of the vocal and frame t of the accompaniment are the same instant: the comparison is in lockstep, with no
alignment search (a late or early accompaniment must lose).

Per-item scores (features first, so that an anchor's shuffled pairs reuse them and the pitch tracker runs once per
vocal). Every one has chance level 0; docs/notes-adherence.md gives the definitions at length and the validation table
(``python -m bench.metrics.adherence_validation``: true pairs against shifted, faster, transposed, noise and silent
accompaniments).

- **Chroma agreement** (frame level). A pitch tracker on the vocal (:mod:`bench.metrics.pitch`: swift-f0 by
  default, pYIN (Mauch and Dixon 2014) as an option) gives f0 and a voicing weight v_t per frame (swift-f0's
  confidence, pYIN's voiced probability); p_t is the nearest pitch class of f0 (A4 = 440 Hz, no tuning
  estimate). The accompaniment's CQT chroma (tuning fixed at 0 so both sides share A = 440 Hz), L1-normalised per
  frame, is c_t (sums to 1 on a sounding frame, s_t = 1; a silent frame, see below, has c_t = 0 and s_t = 0).
  Over the voiced frames V, ``CA = sum_{t in V} v_t (c_t[p_t] - s_t / 12) / sum_{t in V} v_t / (11 / 12)``: the
  accompaniment's share of chroma on the sung pitch class beyond a flat chroma's 1/12, in Cohen's kappa form.
  Range [-1/11, 1]; 0 for a flat (noise) chroma and for silence (nothing to agree with), 1 when all chroma sits on
  the sung class.
- **Key agreement** (excerpt level). The mean over frames of the Pearson correlation between the vocal's
  pitch-class histogram (h_k = sum_{t in V, p_t = k} v_t) and the accompaniment's chroma c_t, silent frames counting
  0. Range [-1, 1]; its mean over the 12 transpositions of either side is exactly 0 (the rotations of a profile sum
  to a constant vector), so a random key relation scores 0 on average. Frame by frame, white noise's chroma
  fluctuations average out; one correlation with noise's nearly flat mean chroma (version 1) scaled them up to
  |r| ~ 0.7.
- **Rhythm agreement**: (r_O + r_P) / 2, the lag-0 correlations of the two onset envelopes (r_O) and of the
  pitch-class onsets, where each pitch class starts to sound (r_P; :mod:`bench.metrics.rhythm`). Range [-1, 1];
  its mean over every circular time offset of the accompaniment is exactly 0, so chance is 0. It hears an
  accompaniment late or early by a sixteenth, an eighth, a beat or a bar, and one at another tempo.
- **Onset alignment**, a grid-coincidence diagnostic (not in Table I). Onsets of both by spectral flux with a max
  filter across frequency (SuperFlux, Böck and Widmer 2013, which keeps vocal vibrato from firing onsets) and
  librosa's peak picking; onsets within ``EDGE_S`` of either end are dropped (every clip that starts at once has
  one there, from the frame padding). With hit = the share of vocal onsets within +-``ONSET_TOLERANCE_S`` (70 ms,
  mir_eval's beat tolerance) of an accompaniment onset and p = the share of the frame grid within 70 ms of one
  (onsets sit on the grid: the hit rate of onsets placed at random frames), the score is the chance-corrected hit
  rate ``(hit - p) / (1 - p)`` (Cohen's kappa form). Range [-p/(1-p), 1]: 1 when every vocal onset meets an
  accompaniment onset, 0 at chance whatever the accompaniment's onset density, negative when the vocal avoids
  the accompaniment's onsets. It asks only whether onsets share a grid: an accompaniment a beat or an eighth
  late lands on the same grid and scores as high as the true one, so it does not order shifts.

All four are invariant to gain: chroma is L1-normalised, pYIN's difference function is scale-free (swift-f0 hears
the vocal scaled to a fixed level of its loudest frame), the onset
envelope is in dB relative to its maximum (and correlations are scale-free), and a frame is silent (no pitch, no
chroma, no onset) when it is more than ``SILENCE_GATE_DB`` (60 dB) below the clip's loudest frame. The one exception
is by design: a clip whose loudest frame is below ``SILENCE_FLOOR_DBFS`` (-70 dBFS) is silent throughout, because a
silent stem's noise gives a pitch tracker spurious pitches and the onset detector spurious onsets. With no voiced frame
(chroma, key), no vocal onset (onset alignment) or neither (rhythm) a score is NaN, and :func:`score_pair` says
why: an instrumental passage is data, not an error.
Broken input (empty, NaN, wrong rank, a bad rate, durations that differ) raises ``ValueError``.

Set-level: **APA** (Grachten and Nistal 2025, arXiv 2503.06346, "Accompaniment Prompt Adherence"), over embeddings
of (context, stem) pairs from any backend: ``APA = 1/2 + (d(C, R') - d(C, R)) / (2 d(R, R'))`` clipped to [0, 1],
with d the (squared) Frechet distance, C the candidate pairs, R true reference pairs and R' mismatched ones. Its
anchors are built in: C = R scores 1, C = R' scores 0. The paper embeds the audio mix of each pair (early fusion);
:func:`late_fusion_pairs` concatenates per-stem embeddings instead (docs/design.md, "Vocal-accompaniment
adherence", says what that changes).

Anchors: :func:`anchor_scores` scores the true pairs (upper anchor) and deranged pairs (lower anchor, every vocal
with another item's accompaniment, :func:`derangement`); :func:`normalised_position` places a model between them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from bench.metrics.arrays import as_embeddings, mono_samples
from bench.metrics.frechet import frechet_distance, gaussian_stats
from bench.metrics.pitch import DEFAULT_PITCH_TRACKER, check_tracker, pitch_classes, track_pitch, tracker_identity
from bench.metrics.rhythm import rhythm_agreement as _rhythm_agreement
from samuel.numba_cache import librosa_with_kernels  # numba's cache filled by one process at a time

ANALYSIS_RATE = 22_050
HOP_LENGTH = 512  # 23.2 ms at 22.05 kHz: the shared frame grid of pitch, chroma, RMS and onset envelopes
PYIN_FRAME_LENGTH = 2048  # librosa's default, 92.9 ms: its 1024-sample half window holds 3 periods of C2
FMIN_HZ = 65.406  # C2: below a bass singer's low E2
FMAX_HZ = 1046.5  # C6: a soprano's top
SILENCE_GATE_DB = 60.0  # frames this far below the clip's loudest frame count as silent (relative: gain-free)
SILENCE_FLOOR_DBFS = -70.0  # a clip whose loudest frame is below this is silent throughout (a silent stem's noise)
ONSET_TOLERANCE_S = 0.07  # mir_eval's beat F-measure window; its onset window (50 ms) is tight for soft sung onsets
MAX_DURATION_MISMATCH_S = 1.0  # lockstep needs both sides to span the same time; more than this is a caller's bug
MIN_DURATION_S = 0.25  # under this pYIN has fewer than 11 frames
EDGE_S = 0.12  # onsets this close to either end are the frame padding's, shared by any two clips that start at once
EDGE_FRAMES = math.ceil(EDGE_S * ANALYSIS_RATE / HOP_LENGTH)  # 6 frames
FLAT_SHARE = 1 / 12  # a flat chroma's share on any pitch class: chroma agreement's chance level before correction
_TINY = 1e-12
VOCAL_FEATURES_VERSION = 2  # 2: the pitch tracker is a choice (bench.metrics.pitch); pYIN gives what version 1 did


@dataclass(frozen=True)
class VocalFeatures:
    """What the scores need from a vocal, on the ``HOP_LENGTH`` grid at ``ANALYSIS_RATE``."""

    pitch_class: np.ndarray  # (T,) int, 0 = C; -1 on unvoiced frames
    weight: np.ndarray  # (T,) the tracker's voicing weight on voiced frames, 0 elsewhere
    onset_times_s: np.ndarray  # (K,) seconds
    duration_s: float
    onset_envelope: np.ndarray  # (T,) onset strength, 0 on silent frames

    @property
    def n_voiced(self) -> int:
        return int(np.count_nonzero(self.weight > 0))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The features as named arrays (what a cache stores); :meth:`from_arrays` reads them back."""
        return {"pitch_class": np.asarray(self.pitch_class, np.int64), "weight": np.asarray(self.weight, np.float64),
                "onset_times_s": np.asarray(self.onset_times_s, np.float64),
                "duration_s": np.asarray(self.duration_s, np.float64),
                "onset_envelope": np.asarray(self.onset_envelope, np.float64)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> VocalFeatures:
        """Features from :meth:`to_arrays`'s arrays, checked: ValueError saying what is wrong with them (a missing
        array, a wrong dtype or shape, a frame count that does not fit the duration, a value out of range)."""
        missing = sorted({"pitch_class", "weight", "onset_times_s", "duration_s", "onset_envelope"} - set(arrays))
        if missing:
            raise ValueError(f"missing arrays {missing}")
        pc, weight, onsets, envelope = (np.asarray(arrays[k]) for k in ("pitch_class", "weight", "onset_times_s",
                                                                         "onset_envelope"))
        duration = np.asarray(arrays["duration_s"])
        if duration.shape != () or duration.dtype.kind != "f" or not 0 < float(duration) < math.inf:
            raise ValueError(f"duration_s must be one positive finite float, got {duration!r}")
        n = 1 + round(float(duration) * ANALYSIS_RATE) // HOP_LENGTH  # centred frames of the analysis signal
        for name, a, kind in (("pitch_class", pc, "i"), ("weight", weight, "f"), ("onset_envelope", envelope, "f")):
            if a.dtype.kind != kind or a.shape != (n,):
                raise ValueError(f"{name} must be ({n},) of kind {kind!r} for {float(duration):.3f} s, got "
                                 f"{a.dtype} {a.shape}")
        if onsets.dtype.kind != "f" or onsets.ndim != 1:
            raise ValueError(f"onset_times_s must be 1-D float, got {onsets.dtype} {onsets.shape}")
        if pc.size and (pc.min() < -1 or pc.max() > 11):
            raise ValueError("pitch_class outside -1..11")
        if not (np.all(np.isfinite(weight)) and np.all((weight >= 0) & (weight <= 1)) and np.all(weight[pc < 0] == 0)):
            raise ValueError("weight must lie in [0, 1], and be 0 on unvoiced frames")
        if not (np.all(np.isfinite(envelope)) and np.all(envelope >= 0)):
            raise ValueError("onset_envelope must be finite and >= 0")
        if not (np.all(np.isfinite(onsets)) and np.all(np.diff(onsets) > 0)
                and np.all((onsets >= 0) & (onsets <= float(duration)))):
            raise ValueError("onset_times_s must be increasing times within the clip")
        return cls(pc.astype(np.int64), weight.astype(np.float64), onsets.astype(np.float64), float(duration),
                   envelope.astype(np.float64))


@dataclass(frozen=True)
class AccompanimentFeatures:
    """What the scores need from an accompaniment, on the same grid."""

    chroma: np.ndarray  # (12, T) L1-normalised per frame; all-zero columns on silent frames
    onset_times_s: np.ndarray  # (K,) seconds
    duration_s: float
    onset_envelope: np.ndarray  # (T,) onset strength, 0 on silent frames


@dataclass(frozen=True)
class AdherenceScores:
    """The four per-item scores; ``reasons`` says why any of them is NaN."""

    chroma_agreement: float  # [-1/11, 1], chance 0 (flat chroma, silence)
    key_agreement: float  # [-1, 1], chance 0
    onset_alignment: float  # [-p/(1-p), 1], chance 0; a grid-coincidence diagnostic
    rhythm_agreement: float  # [-1, 1], chance 0
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"chroma_agreement": self.chroma_agreement, "key_agreement": self.key_agreement,
                "onset_alignment": self.onset_alignment, "rhythm_agreement": self.rhythm_agreement,
                "reasons": list(self.reasons)}


@dataclass(frozen=True)
class KeyEstimate:
    """A Krumhansl-Schmuckler key: the major or minor key profile best correlated with a pitch-class profile."""

    tonic: int  # pitch class, 0 = C
    mode: str  # "major" | "minor"
    correlation: float  # Pearson r with the winning rotated profile

    @property
    def scale(self) -> frozenset[int]:
        """The key's diatonic pitch classes (natural minor): relative major and minor share it."""
        steps = (0, 2, 4, 5, 7, 9, 11) if self.mode == "major" else (0, 2, 3, 5, 7, 8, 10)
        return frozenset((self.tonic + s) % 12 for s in steps)


# ----------------------------------------------------------------------------------------------- input checks


def _mono(audio: ArrayLike, rate: int, name: str) -> np.ndarray:
    """Checked float64 mono at ``ANALYSIS_RATE``."""
    librosa = librosa_with_kernels()

    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise ValueError(f"{name} rate must be a positive integer (Hz), got {rate!r}")
    x = mono_samples(audio, name)
    if x.size < MIN_DURATION_S * rate:
        raise ValueError(f"{name} lasts {x.size / rate:.3f} s; adherence needs at least {MIN_DURATION_S} s")
    if rate != ANALYSIS_RATE:
        x = librosa.resample(x, orig_sr=int(rate), target_sr=ANALYSIS_RATE, res_type="soxr_hq")
    return x


def _loud_frames(x: np.ndarray) -> np.ndarray:
    """(T,) bool: frames within ``SILENCE_GATE_DB`` of the loudest frame; none if that is below the floor."""
    librosa = librosa_with_kernels()

    rms = librosa.feature.rms(y=x, frame_length=PYIN_FRAME_LENGTH, hop_length=HOP_LENGTH)[0]
    if rms.max() < 10 ** (SILENCE_FLOOR_DBFS / 20):
        return np.zeros(rms.shape, dtype=bool)
    return rms > rms.max() * 10 ** (-SILENCE_GATE_DB / 20)


def _onset_envelope(x: np.ndarray, loud: np.ndarray) -> np.ndarray:
    """(T,) SuperFlux-style onset strength (Böck and Widmer 2013): flux at lag 2 after a 3-bin max filter across
    mel bands (it keeps vocal vibrato from firing onsets), on the shared frame grid."""
    librosa = librosa_with_kernels()

    envelope = librosa.onset.onset_strength(y=x, sr=ANALYSIS_RATE, hop_length=HOP_LENGTH, lag=2, max_size=3)
    n = min(envelope.size, loud.size)
    return envelope[:n]


def _onset_times(envelope: np.ndarray, loud: np.ndarray) -> np.ndarray:
    """Onset times (s) by librosa's peak picking on ``envelope``; onsets in silent frames (noise there) dropped."""
    librosa = librosa_with_kernels()

    if not np.any(envelope > 0):  # digital silence: peak picking would divide by zero
        return np.zeros(0)
    frames = librosa.onset.onset_detect(onset_envelope=envelope, sr=ANALYSIS_RATE, hop_length=HOP_LENGTH)
    frames = frames[frames < loud.size]
    return librosa.frames_to_time(frames[loud[frames]], sr=ANALYSIS_RATE, hop_length=HOP_LENGTH)


def _timing_envelope(envelope: np.ndarray, loud: np.ndarray, n: int) -> np.ndarray:
    """(n,) the onset envelope with silent frames zeroed, padded with zeros to the frame count of the features."""
    out = np.zeros(n)
    m = min(n, envelope.size)
    out[:m] = np.where(loud[:m], envelope[:m], 0.0)
    return out


# ------------------------------------------------------------------------------------------------- features


def vocal_features(vocal: ArrayLike, rate: int, tracker: str = DEFAULT_PITCH_TRACKER) -> VocalFeatures:
    """Pitch classes with voicing weights (``tracker``: swift-f0 or pYIN, :mod:`bench.metrics.pitch`), and onset
    times, of a vocal stem.

    Args:
        vocal: (samples,) or (channels, samples), any gain.
        rate: its sample rate in Hz.
        tracker: one of :data:`bench.metrics.pitch.PITCH_TRACKERS`.

    Returns:
        :class:`VocalFeatures` on the shared frame grid.
    """
    check_tracker(tracker)
    x = _mono(vocal, rate, "vocal")
    loud = _loud_frames(x)
    n = loud.size
    if loud.any():
        track = track_pitch(x, ANALYSIS_RATE, HOP_LENGTH, n, FMIN_HZ, FMAX_HZ, tracker, PYIN_FRAME_LENGTH)
        voiced = track.voiced & loud
    else:  # silent throughout (below SILENCE_FLOOR_DBFS): nothing is voiced, whatever a tracker hears in the noise
        track, voiced = None, np.zeros(n, dtype=bool)
    pitch_class = np.full(n, -1, dtype=np.int64)
    weight = np.zeros(n)
    if track is not None:
        pitch_class[voiced] = pitch_classes(track.f0_hz[voiced])
        weight[voiced] = track.weight[voiced]
    envelope = _onset_envelope(x, loud)
    return VocalFeatures(pitch_class, weight, _onset_times(envelope, loud), x.size / ANALYSIS_RATE,
                         _timing_envelope(envelope, loud, n))


def vocal_features_identity(tracker: str = DEFAULT_PITCH_TRACKER) -> dict[str, Any]:
    """What :func:`vocal_features` computes with (JSON): its version, the analysis settings and the tracker's
    identity (name, versions, weights). A cache of vocal features keys on it."""
    librosa = librosa_with_kernels()

    return {"function": "bench.metrics.adherence:vocal_features", "version": VOCAL_FEATURES_VERSION,
            "analysis": {"rate": ANALYSIS_RATE, "hop": HOP_LENGTH, "frame_length": PYIN_FRAME_LENGTH,
                         "fmin_hz": FMIN_HZ, "fmax_hz": FMAX_HZ, "silence_gate_db": SILENCE_GATE_DB,
                         "silence_floor_dbfs": SILENCE_FLOOR_DBFS, "onsets": "SuperFlux lag 2, max 3; peak_pick",
                         "librosa": librosa.__version__},
            "pitch_tracker": tracker_identity(tracker)}


def accompaniment_features(accompaniment: ArrayLike, rate: int) -> AccompanimentFeatures:
    """L1-normalised CQT chroma with silent frames zeroed, and onset times, of an accompaniment.

    Args:
        accompaniment: (samples,) or (channels, samples), any gain.
        rate: its sample rate in Hz.

    Returns:
        :class:`AccompanimentFeatures` on the shared frame grid.
    """
    librosa = librosa_with_kernels()

    x = _mono(accompaniment, rate, "accompaniment")
    # magnitude chroma is linear in gain, so the L1 normalisation below removes gain exactly
    with warnings.catch_warnings():
        # the CQT's lowest octaves run on a decimated signal, shorter than their FFT for clips under ~3 s: padded
        warnings.filterwarnings("ignore", message=r"n_fft=\d+ is too large", category=UserWarning)
        chroma = librosa.feature.chroma_cqt(y=x, sr=ANALYSIS_RATE, hop_length=HOP_LENGTH, tuning=0.0, norm=None)
    loud = _loud_frames(x)
    n = min(chroma.shape[1], loud.size)
    chroma, loud = chroma[:, :n], loud[:n]
    mass = chroma.sum(axis=0)
    chroma = np.where(loud & (mass > _TINY), chroma / np.maximum(mass, _TINY), 0.0)
    envelope = _onset_envelope(x, loud)
    return AccompanimentFeatures(chroma, _onset_times(envelope, loud), x.size / ANALYSIS_RATE,
                                 _timing_envelope(envelope, loud, n))


# ----------------------------------------------------------------------------------------------- the scores


def _common_frames(vocal: VocalFeatures, accompaniment: AccompanimentFeatures,
                   max_mismatch_s: float | None) -> int:
    gap = abs(vocal.duration_s - accompaniment.duration_s)
    if max_mismatch_s is not None and gap > max_mismatch_s:
        raise ValueError(f"vocal lasts {vocal.duration_s:.2f} s and accompaniment {accompaniment.duration_s:.2f} s; "
                         f"lockstep comparison allows a difference of {max_mismatch_s} s (max_mismatch_s; pass None "
                         "to compare the common span, as shuffled pairs of unequal items must)")
    return min(vocal.pitch_class.size, accompaniment.chroma.shape[1])


def _chroma_agreement(vocal: VocalFeatures, accompaniment: AccompanimentFeatures,
                      max_mismatch_s: float | None) -> tuple[float, str | None]:
    n = _common_frames(vocal, accompaniment, max_mismatch_s)
    pc, w = vocal.pitch_class[:n], vocal.weight[:n]
    voiced = w > 0
    if not voiced.any():
        return math.nan, "no voiced vocal frame: chroma and key agreement undefined"
    frames = np.flatnonzero(voiced)
    share = accompaniment.chroma[pc[voiced], frames]  # c_t[p_t] on the voiced frames
    chance = FLAT_SHARE * accompaniment.chroma[:, frames].sum(axis=0)  # 1/12 on a sounding frame, 0 on a silent one
    excess = np.sum(w[voiced] * (share - chance)) / np.sum(w[voiced])
    return float(excess / (1.0 - FLAT_SHARE)), None


def _key_agreement(vocal: VocalFeatures, accompaniment: AccompanimentFeatures,
                   max_mismatch_s: float | None) -> tuple[float, str | None]:
    n = _common_frames(vocal, accompaniment, max_mismatch_s)
    if not np.any(vocal.weight[:n] > 0):
        return math.nan, "no voiced vocal frame: chroma and key agreement undefined"
    profile = pitch_class_profile(vocal, n)
    chroma = accompaniment.chroma[:, :n]
    per_frame = _pearson_columns(profile, chroma[:, chroma.sum(axis=0) > 0])
    return float(np.sum(per_frame) / n), None  # silent frames hold no key: they count as chance, 0


def _onset_alignment(vocal: VocalFeatures, accompaniment: AccompanimentFeatures, tolerance_s: float,
                     max_mismatch_s: float | None) -> tuple[float, str | None]:
    _common_frames(vocal, accompaniment, max_mismatch_s)
    if tolerance_s <= 0:
        raise ValueError(f"tolerance_s must be positive, got {tolerance_s}")
    span = min(vocal.duration_s, accompaniment.duration_s)
    lo, hi = EDGE_S, span - EDGE_S  # onsets at the ends are the frame padding's (EDGE_S)
    v = vocal.onset_times_s[(vocal.onset_times_s >= lo) & (vocal.onset_times_s <= hi)]
    a = np.sort(accompaniment.onset_times_s[(accompaniment.onset_times_s >= lo) & (accompaniment.onset_times_s <= hi)])
    if v.size == 0:
        return math.nan, "no vocal onset: onset alignment undefined"
    if a.size == 0:
        return 0.0, None  # hit = p = 0: nothing to align to is chance, not an error
    # onsets sit on the frame grid, so chance is the share of grid frames within tolerance of an accompaniment
    # onset (a continuous share undercounts it by up to a frame per window: 7 frames hit, 6.03 frames of time)
    grid = np.arange(math.ceil(lo * ANALYSIS_RATE / HOP_LENGTH), math.floor(hi * ANALYSIS_RATE / HOP_LENGTH) + 1)
    coverage = float(np.mean(_within(grid * HOP_LENGTH / ANALYSIS_RATE, a, tolerance_s)))
    if coverage >= 1.0 - 1e-9:
        return math.nan, "accompaniment onsets cover the whole excerpt: every placement hits, alignment undefined"
    hit = float(np.mean(_within(v, a, tolerance_s)))
    return float((hit - coverage) / (1.0 - coverage)), None


def _within(times: np.ndarray, sorted_onsets: np.ndarray, tolerance_s: float) -> np.ndarray:
    """(K,) bool: each time within ``tolerance_s`` (plus round-off) of one of ``sorted_onsets`` (non-empty)."""
    right = np.clip(np.searchsorted(sorted_onsets, times), 0, sorted_onsets.size - 1)
    left = np.clip(right - 1, 0, sorted_onsets.size - 1)
    nearest = np.minimum(np.abs(times - sorted_onsets[left]), np.abs(times - sorted_onsets[right]))
    return nearest <= tolerance_s + 1e-9


def _rhythm(vocal: VocalFeatures, accompaniment: AccompanimentFeatures,
            max_mismatch_s: float | None) -> tuple[float, str | None]:
    n = _common_frames(vocal, accompaniment, max_mismatch_s)
    if not (np.any(vocal.weight[:n] > 0) or np.ptp(vocal.onset_envelope[:n]) > 0):
        return math.nan, "no voiced vocal frame and no vocal onset: rhythm agreement undefined"
    return _rhythm_agreement(vocal.pitch_class, vocal.weight, vocal.onset_envelope, accompaniment.chroma,
                             accompaniment.onset_envelope, edge_frames=EDGE_FRAMES).value, None


def chroma_agreement(vocal: VocalFeatures, accompaniment: AccompanimentFeatures,
                     max_mismatch_s: float | None = MAX_DURATION_MISMATCH_S) -> float:
    """Confidence-weighted mean chroma share of the sung pitch class, frame by frame (module docstring).

    Returns:
        A value in [0, 1] (1/12 against flat chroma, 0 against silence); NaN when no frame is voiced.

    Raises:
        ValueError: when the durations differ by more than ``max_mismatch_s`` seconds.
    """
    return _chroma_agreement(vocal, accompaniment, max_mismatch_s)[0]


def key_agreement(vocal: VocalFeatures, accompaniment: AccompanimentFeatures,
                  max_mismatch_s: float | None = MAX_DURATION_MISMATCH_S) -> float:
    """Pearson r between the vocal's pitch-class histogram and the accompaniment's mean chroma.

    Returns:
        A value in [-1, 1], 0 on average over random transpositions; NaN when no frame is voiced.
    """
    return _key_agreement(vocal, accompaniment, max_mismatch_s)[0]


def onset_alignment(vocal: VocalFeatures, accompaniment: AccompanimentFeatures,
                    tolerance_s: float = ONSET_TOLERANCE_S,
                    max_mismatch_s: float | None = MAX_DURATION_MISMATCH_S) -> float:
    """Chance-corrected share of vocal onsets within ``tolerance_s`` of an accompaniment onset.

    ``(hit - p) / (1 - p)`` with p the share of the excerpt within ``tolerance_s`` of an accompaniment onset.

    Returns:
        1 for perfect coincidence, 0 at chance, negative for avoidance; NaN with no vocal onset, or when the
        accompaniment's windows cover the whole excerpt.
    """
    return _onset_alignment(vocal, accompaniment, tolerance_s, max_mismatch_s)[0]


def rhythm_agreement(vocal: VocalFeatures, accompaniment: AccompanimentFeatures,
                     max_mismatch_s: float | None = MAX_DURATION_MISMATCH_S) -> float:
    """Lag-0 agreement of onsets and pitch-class onsets, (r_O + r_P) / 2 (:mod:`bench.metrics.rhythm`).

    Returns:
        A value in [-1, 1]; exactly 0 on average over every time offset of the accompaniment (chance), 0 when
        either side is silent.
    """
    return _rhythm(vocal, accompaniment, max_mismatch_s)[0]


def score_pair(vocal: VocalFeatures, accompaniment: AccompanimentFeatures,
               tolerance_s: float = ONSET_TOLERANCE_S,
               max_mismatch_s: float | None = MAX_DURATION_MISMATCH_S) -> AdherenceScores:
    """All four per-item scores from features, with the reason for each NaN."""
    results = (_chroma_agreement(vocal, accompaniment, max_mismatch_s),
               _key_agreement(vocal, accompaniment, max_mismatch_s),
               _onset_alignment(vocal, accompaniment, tolerance_s, max_mismatch_s),
               _rhythm(vocal, accompaniment, max_mismatch_s))
    reasons = tuple(dict.fromkeys(r for _, r in results if r))  # de-duplicated, in order
    return AdherenceScores(results[0][0], results[1][0], results[2][0], results[3][0], reasons)


def pair_scores(vocal: VocalFeatures, accompaniment: AccompanimentFeatures, same_item: bool = True
                ) -> AdherenceScores:
    """:func:`score_pair` as the score pass calls it: an item's own vocal in lockstep (durations within
    ``MAX_DURATION_MISMATCH_S``), another item's vocal (the shuffled anchor) over the common span."""
    return score_pair(vocal, accompaniment, max_mismatch_s=MAX_DURATION_MISMATCH_S if same_item else None)


def adherence(vocal: ArrayLike, vocal_rate: int, accompaniment: ArrayLike, accompaniment_rate: int,
              tolerance_s: float = ONSET_TOLERANCE_S,
              max_mismatch_s: float | None = MAX_DURATION_MISMATCH_S) -> AdherenceScores:
    """Features and scores of one (vocal, accompaniment) pair straight from audio (rates may differ)."""
    return score_pair(vocal_features(vocal, vocal_rate), accompaniment_features(accompaniment, accompaniment_rate),
                      tolerance_s, max_mismatch_s)


# --------------------------------------------------------------------------------------- profiles and keys

# Krumhansl and Kessler 1982 probe-tone ratings (Krumhansl 1990, Table 2.1), tonic first.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def pitch_class_profile(vocal: VocalFeatures, n_frames: int | None = None) -> np.ndarray:
    """(12,) voiced-probability-weighted histogram of the sung pitch classes, summing to 1 (zeros if unvoiced)."""
    pc, w = vocal.pitch_class[:n_frames], vocal.weight[:n_frames]
    voiced = w > 0
    hist = np.bincount(pc[voiced], weights=w[voiced], minlength=12).astype(np.float64)
    return hist / hist.sum() if hist.sum() > 0 else hist


def chroma_profile(accompaniment: AccompanimentFeatures, n_frames: int | None = None) -> np.ndarray:
    """(12,) mean L1 chroma over the non-silent frames, summing to 1 (zeros if all silent)."""
    chroma = accompaniment.chroma[:, :n_frames]
    loud = chroma.sum(axis=0) > 0
    return chroma[:, loud].mean(axis=1) if loud.any() else np.zeros(12)


def estimate_key(profile: ArrayLike) -> KeyEstimate:
    """Krumhansl-Schmuckler key finding: the best Pearson r of ``profile`` with the 24 rotated KK profiles.

    Args:
        profile: (12,) pitch-class weights, 0 = C.

    Raises:
        ValueError: for a flat profile (no key to find) or a wrong shape.
    """
    p = np.asarray(profile, dtype=np.float64)
    if p.shape != (12,) or not np.all(np.isfinite(p)):
        raise ValueError(f"profile must be 12 finite values, got shape {p.shape}")
    if np.ptp(p) <= _TINY:
        raise ValueError("profile is flat: it holds no key")
    best = max(((_pearson(p, np.roll(template, tonic)), tonic, mode)
                for mode, template in (("major", KK_MAJOR), ("minor", KK_MINOR)) for tonic in range(12)))
    return KeyEstimate(best[1], best[2], best[0])


def _pearson_columns(x: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """(K,) :func:`_pearson` of (12,) ``x`` with each column of (12, K) ``columns``, in one pass over the array."""
    xc, yc = x - x.mean(), columns - columns.mean(axis=0)
    denominator = np.sqrt(float(xc @ xc) * np.einsum("ik,ik->k", yc, yc))
    safe = denominator > _TINY
    return np.where(safe, (xc @ yc) / np.where(safe, denominator, 1.0), 0.0)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r; 0 when either side is constant (a flat profile carries no key, which is chance)."""
    xc, yc = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float(xc @ xc) * float(yc @ yc))
    return float(xc @ yc / denominator) if denominator > _TINY else 0.0


# ---------------------------------------------------------------------------------------------------- anchors


@dataclass(frozen=True)
class AnchorScores:
    """A per-item score on the true pairs (upper anchor) and on deranged pairs (lower anchor)."""

    true: np.ndarray  # (N,) score(vocal_i, accompaniment_i)
    shuffled: np.ndarray  # (N,) score(vocal_i, accompaniment_perm[i]), perm a derangement
    permutation: np.ndarray  # (N,) the derangement used
    seed: int

    @property
    def true_mean(self) -> float:
        return _nanmean(self.true)

    @property
    def shuffled_mean(self) -> float:
        return _nanmean(self.shuffled)

    def position(self, model_mean: float) -> float:
        """Where a model's mean score sits between the anchors (:func:`normalised_position`)."""
        return normalised_position(model_mean, self.true_mean, self.shuffled_mean)

    def to_dict(self) -> dict[str, Any]:
        return {"true_mean": self.true_mean, "shuffled_mean": self.shuffled_mean, "n": int(self.true.size),
                "seed": self.seed, "permutation": self.permutation.tolist(),
                "true": self.true.tolist(), "shuffled": self.shuffled.tolist()}


def derangement(n: int, seed: int) -> np.ndarray:
    """A uniformly random permutation of range(n) with no fixed point, from ``np.random.default_rng(seed)``.

    Rejection sampling: a uniform permutation is a derangement with probability ~1/e, so about 2.7 draws.

    Raises:
        ValueError: for n < 2 (no derangement exists).
    """
    if n < 2:
        raise ValueError(f"a derangement needs n >= 2 items, got {n}")
    rng = np.random.default_rng(seed)
    while True:
        perm = rng.permutation(n)
        if not np.any(perm == np.arange(n)):
            return perm


def anchor_scores(score: Callable[[Any, Any], float], vocals: Sequence[Any], accompaniments: Sequence[Any],
                  seed: int = 0) -> AnchorScores:
    """Score true pairs and deranged pairs with one per-item ``score(vocal, accompaniment)``.

    Pass features (:func:`vocal_features`, :func:`accompaniment_features`) rather than audio so that each vocal's
    pYIN runs once. Items of unequal duration need ``functools.partial(score_fn, max_mismatch_s=None)``.

    Args:
        score: e.g. :func:`chroma_agreement`.
        vocals, accompaniments: N items each, paired by index.
        seed: for the derangement.
    """
    if len(vocals) != len(accompaniments):
        raise ValueError(f"{len(vocals)} vocals but {len(accompaniments)} accompaniments")
    perm = derangement(len(vocals), seed)
    true = np.array([score(v, a) for v, a in zip(vocals, accompaniments, strict=True)], dtype=np.float64)
    shuffled = np.array([score(vocals[i], accompaniments[j]) for i, j in enumerate(perm)], dtype=np.float64)
    return AnchorScores(true, shuffled, perm, seed)


def normalised_position(model: float, true: float, shuffled: float, min_gap: float = 1e-9) -> float:
    """``(model - shuffled) / (true - shuffled)``: 0 at the shuffled anchor, 1 at the true-pair anchor.

    Not clipped (a model can beat the true pairs or fall below chance). NaN when the anchors are closer than
    ``min_gap`` or any input is NaN: then the metric cannot tell true pairs from shuffled ones on this set.
    """
    gap = true - shuffled
    if not (math.isfinite(model) and math.isfinite(gap)) or abs(gap) < min_gap:
        return math.nan
    return (model - shuffled) / gap


def _nanmean(x: np.ndarray) -> float:
    finite = x[np.isfinite(x)]
    return float(finite.mean()) if finite.size else math.nan


# -------------------------------------------------------------------------------------------------------- APA


@dataclass(frozen=True)
class ApaResult:
    """An APA value with the three distances that made it."""

    value: float  # in [0, 1]; NaN when d(R, R') = 0
    d_candidate_true: float  # d(C, R)
    d_candidate_shuffled: float  # d(C, R')
    d_true_shuffled: float  # d(R, R')
    clipped: bool  # |d(C, R') - d(C, R)| > d(R, R'): the triangle inequality failed and the value sits at 0 or 1

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "d_candidate_true": self.d_candidate_true,
                "d_candidate_shuffled": self.d_candidate_shuffled, "d_true_shuffled": self.d_true_shuffled,
                "clipped": self.clipped, "method": "APA (Grachten and Nistal 2025), squared Frechet distance "
                                                   "unless a distance was passed"}


def apa_from_distances(d_candidate_true: float, d_candidate_shuffled: float, d_true_shuffled: float) -> float:
    """APA = 1/2 + (d(C, R') - d(C, R)) / (2 d(R, R')), clipped to [0, 1] (Grachten and Nistal 2025).

    Distances below 0 (round-off, or an unbiased MMD estimate) count as 0, as in the authors' package. 1 when C
    sits on the true pairs, 0 on the mismatched ones, 1/2 when equidistant.

    Returns:
        The value, or NaN when d(R, R') <= 0 (the embedding cannot tell true from mismatched pairs).
    """
    raw = (float(d_candidate_true), float(d_candidate_shuffled), float(d_true_shuffled))
    if not all(math.isfinite(d) for d in raw):
        raise ValueError(f"distances must be finite, got {raw}")
    d_cr, d_crp, d_rrp = (max(0.0, d) for d in raw)
    if d_rrp <= 0.0:
        return math.nan
    return min(1.0, max(0.0, 0.5 + (d_crp - d_cr) / (2.0 * d_rrp)))


def squared_frechet(x: ArrayLike, y: ArrayLike) -> float:
    """Squared Frechet distance between Gaussians fitted to two (N, D) embedding sets (FAD's formula)."""
    return frechet_distance(*gaussian_stats(x), *gaussian_stats(y))


def apa(candidate: ArrayLike, reference: ArrayLike, shuffled_reference: ArrayLike,
        distance: Callable[[np.ndarray, np.ndarray], float] = squared_frechet) -> ApaResult:
    """Accompaniment Prompt Adherence of a candidate set of (context, stem) pair embeddings.

    Grachten and Nistal 2025 (arXiv 2503.06346): R holds true (context, stem) pairs, R' the same contexts with
    mismatched stems, C a system's (context, generated stem) pairs; each row is one pair's embedding. The paper
    embeds the audio mix of context and stem (early fusion); :func:`late_fusion_pairs` concatenates per-stem
    embeddings instead, which any backend gives without re-embedding mixes.

    Args:
        candidate: (N_c, D) pair embeddings of the system under test.
        reference: (N_r, D) true pairs.
        shuffled_reference: (N_r', D) mismatched pairs, e.g. ``late_fusion_pairs(ctx, stem[derangement(n, s)])``.
        distance: between two embedding sets; the paper's is FAD (:func:`squared_frechet`). Frechet needs
            N well above D for a stable covariance: reduce D (PCA) first for small sets.

    Returns:
        :class:`ApaResult`.
    """
    sets = [_pair_embeddings(candidate, "candidate"), _pair_embeddings(reference, "reference"),
            _pair_embeddings(shuffled_reference, "shuffled_reference")]
    dims = {s.shape[1] for s in sets}
    if len(dims) != 1:
        raise ValueError(f"candidate, reference and shuffled_reference must share D, got {[s.shape for s in sets]}")
    c, r, rp = sets
    d_cr, d_crp, d_rrp = float(distance(c, r)), float(distance(c, rp)), float(distance(r, rp))
    value = apa_from_distances(d_cr, d_crp, d_rrp)
    clipped = math.isfinite(value) and abs(max(d_crp, 0.0) - max(d_cr, 0.0)) > max(d_rrp, 0.0)
    return ApaResult(value, d_cr, d_crp, d_rrp, clipped)


def late_fusion_pairs(context: ArrayLike, stem: ArrayLike) -> np.ndarray:
    """(N, D_c + D_s) pair embeddings: each item's context (vocal) embedding next to its stem embedding.

    With concatenation, true and shuffled pairs have the same marginals, so the Frechet distance between them
    comes only from the cross-covariance block: APA then measures the dependence of stem on context alone.
    """
    c, s = _pair_embeddings(context, "context"), _pair_embeddings(stem, "stem")
    if c.shape[0] != s.shape[0]:
        raise ValueError(f"context has {c.shape[0]} rows but stem has {s.shape[0]}: pairs are matched by row")
    return np.concatenate([c, s], axis=1)


def _pair_embeddings(x: ArrayLike, name: str) -> np.ndarray:
    return as_embeddings(x, name, "a covariance needs two")
