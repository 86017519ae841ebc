"""Rhythm agreement: does the accompaniment keep the vocal's time? Pure math over frame features.

A vocal and an accompaniment on one frame grid (bench.metrics.adherence: hop 512 at 22.05 kHz, centred frames)
agree in time when two things line up at lag 0, frame by frame:

- **onsets**, r_O: Pearson r between the vocal's and the accompaniment's onset envelopes e_v(t), e_a(t) (SuperFlux
  onset strength, 0 on silent frames). A sixteenth or an eighth off moves the accompaniment's kick, snare and
  hi-hat peaks off the sung onsets; another tempo drifts them apart.
- **pitch-class onsets**, r_P: where each pitch class starts to sound. The vocal's pitch-class activity
  A[k, t] = v_t [p_t = k] (pYIN voiced probability on the sung class) and the accompaniment's L1 chroma C[k, t]
  each become a half-wave rectified rise over ``FLUX_LAG`` frames, max-filtered over ``FLUX_SPREAD`` frames
  (:func:`pitch_class_onsets`; spectral flux per pitch class, Bello et al. 2005). The two (12, T) arrays are
  centred over time per pitch class and across pitch classes per frame, then correlated. A sung chord tone
  starting with the bass root or a chord change scores; a note starting where the accompaniment starts nothing,
  or other pitch classes, does not. Drums repeat every bar, so onsets alone hardly see a beat or bar shift; which
  sung notes start with which chord or bass note does.

``rhythm_agreement = (r_O + r_P) / 2``, in [-1, 1].

**Chance level 0, exactly, for every pair.** Every series is centred in time, so the mean over all T circular lags
of its lagged correlation is 0: sum_L sum_t x(t) y(t + L) = (sum_t x)(sum_t y) = 0, and the lagged correlations
share one denominator (circular shifts keep norms). So the score is its lag-0 value *minus its mean over every
time offset*: an accompaniment at a random offset (or an unrelated one) scores 0 on average, one that keeps time
scores above 0, one that avoids the vocal's events below 0. A side with no variation (silence) carries no timing
and scores exactly 0. White noise's fluctuations are unrelated to the vocal: 0 on average.

Why not a z-score against the lag distribution? Dividing by the spread over lags turns any fluctuation (white
noise's) into a unit-size score and makes the scale depend on the clip's length; the lag-0 correlation already
has mean 0 over lags and a fixed range. docs/notes-adherence.md has the validation on shifted, faster and
transposed accompaniments, and the part we dropped (:func:`harmonic_timing`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_TINY = 1e-12


FLUX_LAG = 2  # frames: the onset envelopes' lag (SuperFlux), so pitch-class onsets and onsets share a time scale
FLUX_SPREAD = 3  # frames: a max filter (+-1 frame, +-23 ms) so pYIN's and the CQT's frame jitter does not decide


@dataclass(frozen=True)
class RhythmAgreement:
    """The rhythm score and its two parts (module docstring)."""

    value: float  # (onset + pitch_onset) / 2, in [-1, 1], chance 0
    onset: float  # r_O, in [-1, 1], chance 0
    pitch_onset: float  # r_P, in [-1, 1], chance 0

    def to_dict(self) -> dict[str, float]:
        return {"rhythm_agreement": self.value, "onset": self.onset, "pitch_onset": self.pitch_onset}


def centred_correlation(x: np.ndarray, y: np.ndarray, centre_pitch: bool = False) -> float:
    """Pearson r of two equal-shape arrays centred along their last axis (time): sum(x_c y_c) / |x_c| |y_c|.

    With ``centre_pitch`` (12, T) arrays are also centred across pitch classes per frame (double centring), so
    what all pitch classes share at a frame (a drum hit, a change of loudness) drops out. Either way the mean of
    the correlation over all circular time lags of y is exactly 0 (module docstring). 0 when either side is
    constant (silence holds no timing: chance).
    """
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    if centre_pitch:
        xc, yc = xc - xc.mean(axis=0, keepdims=True), yc - yc.mean(axis=0, keepdims=True)
    denominator = math.sqrt(float(np.sum(xc * xc)) * float(np.sum(yc * yc)))
    return float(np.sum(xc * yc) / denominator) if denominator > _TINY else 0.0


def pitch_class_activity(pitch_class: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(12, T) A[k, t] = weight_t where pitch_class_t = k (voiced frames), 0 elsewhere."""
    activity = np.zeros((12, pitch_class.size))
    voiced = weight > 0
    activity[pitch_class[voiced], np.flatnonzero(voiced)] = weight[voiced]
    return activity


def pitch_class_onsets(activity: np.ndarray, lag: int = FLUX_LAG, spread: int = FLUX_SPREAD) -> np.ndarray:
    """(12, T) half-wave rectified rise of each pitch class over ``lag`` frames, max-filtered over ``spread``.

    ``F[k, t] = max_{|s| <= spread // 2} max(0, X[k, t + s] - X[k, t + s - lag])``: where a pitch class starts to
    sound (a sung note, a bass note, a chord change), as spectral flux (Bello et al. 2005) is where energy starts.
    """
    from scipy.ndimage import maximum_filter1d

    rise = np.zeros_like(activity, dtype=np.float64)
    rise[:, lag:] = np.maximum(activity[:, lag:] - activity[:, :-lag], 0.0)
    return maximum_filter1d(rise, spread, axis=1, mode="constant") if spread > 1 else rise


def rhythm_agreement(pitch_class: np.ndarray, weight: np.ndarray, vocal_envelope: np.ndarray,
                     chroma: np.ndarray, accompaniment_envelope: np.ndarray, edge_frames: int = 0
                     ) -> RhythmAgreement:
    """Lag-0 agreement of onsets and of pitch-class onsets, chance-corrected by centring (module docstring).

    Args:
        pitch_class: (T,) the vocal's pitch class per frame, -1 unvoiced.
        weight: (T,) its voiced probability, 0 unvoiced.
        vocal_envelope: (T,) the vocal's onset envelope.
        chroma: (12, T) the accompaniment's L1 chroma, zero on silent frames.
        accompaniment_envelope: (T,) its onset envelope.
        edge_frames: frames left out at each end: a clip's first frames hold an onset of every signal that starts
            at once (the frame padding), which would count as agreement for any pair.
        All on one frame grid; the common first T frames are compared.

    Returns:
        :class:`RhythmAgreement`; 0 (chance) for fewer than 2 frames left.
    """
    n = min(pitch_class.size, weight.size, vocal_envelope.size, chroma.shape[1], accompaniment_envelope.size)
    keep = slice(edge_frames, n - edge_frames)
    if n - 2 * edge_frames < 2:
        return RhythmAgreement(0.0, 0.0, 0.0)
    onset = centred_correlation(vocal_envelope[keep], accompaniment_envelope[keep])
    vocal_pitch_onsets = pitch_class_onsets(pitch_class_activity(pitch_class[:n], weight[:n]))
    pitch_onset = centred_correlation(vocal_pitch_onsets[:, keep], pitch_class_onsets(chroma[:, :n])[:, keep],
                                      centre_pitch=True)
    return RhythmAgreement((onset + pitch_onset) / 2, onset, pitch_onset)


def harmonic_timing(pitch_class: np.ndarray, weight: np.ndarray, chroma: np.ndarray, edge_frames: int = 0) -> float:
    """r_H, a part we tried and dropped (docs/notes-adherence.md): Pearson r at lag 0 of the vocal's pitch-class
    activity and the accompaniment's chroma, each centred per pitch class over time. It scores an accompaniment a
    sixteenth or an eighth early above the true one on the synthetic set; kept for the validation's parts table."""
    n = min(pitch_class.size, weight.size, chroma.shape[1])
    keep = slice(edge_frames, n - edge_frames)
    return centred_correlation(pitch_class_activity(pitch_class[:n], weight[:n])[:, keep], chroma[:, keep])
