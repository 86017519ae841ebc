"""The vocal + accompaniment mix that the score pass's ``mix`` view scores (what a listener hears).

The rule is APA's published mix (:func:`bench.metrics.apa.loudness_matched_mix`, audio-metrics' ``mix_tracks_loudness``
with mix "L0"), applied to the whole common window in stereo at the scorer's rate instead of to mono 5 s windows:

1. the accompaniment is scaled to the vocal's integrated loudness (ITU-R BS.1770-4, pyloudnorm's meter; stereo
   channels weighted 1, as the standard does for L and R): g_a = 10^((L_vocal - L_acc) / 20);
2. the two are summed, m = v + g_a a, and the sum is scaled to -20 LUFS: m' = m 10^((-20 - L_m) / 20);
3. only when a peak of m' then exceeds full scale, APA's look-ahead limiter (:func:`bench.metrics.apa.peak_limit`)
   runs on the channels' largest magnitude, and its gain is applied to both channels (a linked limiter: the stereo
   image is kept).

As in APA, a silent track (peak below 1e-5) is left out: the other alone is normalised; both silent returns the
vocal as it is; a loudness of -inf (every 400 ms block gated out) skips that gain step. Arrays in, arrays out.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bench.metrics.apa import DEFAULT_MIX, SILENT_PEAK, MixParams, peak_limit

MIX_RULE = ("vocal window + accompaniment, loudness-matched as APA's published mix (audio-metrics "
            "mix_tracks_loudness, mix L0): the accompaniment at the vocal's BS.1770-4 integrated loudness "
            "(pyloudnorm), the sum at -20 LUFS, APA's look-ahead limiter (linked across channels) only above full "
            "scale; stereo at 44.1 kHz over the common window")


def stereo_loudness(x: np.ndarray, rate: int) -> float:
    """BS.1770-4 integrated loudness of (C, S) audio in LUFS (channels weighted 1); -inf when all blocks are gated."""
    import warnings

    import pyloudnorm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log10(0) of silent blocks: gated out
        return float(pyloudnorm.Meter(rate).integrated_loudness(np.asarray(x, dtype=np.float64).T))


def _gain_to(x: np.ndarray, measured: float, target: float) -> np.ndarray:
    """``x`` scaled from ``measured`` to ``target`` LUFS."""
    return x * 10.0 ** ((target - measured) / 20.0)


def linked_peak_limit(x: np.ndarray, params: MixParams = DEFAULT_MIX) -> np.ndarray:
    """APA's limiter on the largest magnitude over channels, its gain applied to every channel of (C, S) ``x``.

    peak_limit(m) = m g for m >= 0 (it only scales), so g = peak_limit(m) / m where m > 0 (and 1 where m = 0,
    where every channel is 0 anyway).
    """
    attack, release, delay, threshold = params.limiter
    m = np.max(np.abs(x), axis=0)
    limited = peak_limit(m, attack, release, int(delay), threshold)
    gain = np.divide(limited, m, out=np.ones_like(m), where=m > 0)
    return x * gain[None, :]


def vocal_accompaniment_mix(vocal: Any, accompaniment: Any, rate: int, params: MixParams = DEFAULT_MIX
                            ) -> np.ndarray:
    """The loudness-matched mix of the module docstring.

    Args:
        vocal, accompaniment: (C, S) float at ``rate``, the same shape (the caller crops both to the common window).
        rate: their sample rate (the meter's).
        params: APA's mix parameters (target loudness, stem offset, limiter); ``params.rate`` is not used.

    Returns:
        (C, S) float32.
    """
    v = np.asarray(vocal, dtype=np.float64)
    a = np.asarray(accompaniment, dtype=np.float64)
    if v.ndim != 2 or v.shape != a.shape:
        raise ValueError(f"vocal and accompaniment must be (channels, samples) of one shape, got {v.shape} and "
                         f"{a.shape}")
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(a))):
        raise ValueError("vocal or accompaniment holds NaN or infinite samples")
    silent_v, silent_a = np.max(np.abs(v)) < SILENT_PEAK, np.max(np.abs(a)) < SILENT_PEAK
    if silent_v and silent_a:
        return v.astype(np.float32)
    if silent_v or silent_a:
        mix = a if silent_v else v
    else:
        l_vocal, l_acc = stereo_loudness(v, rate), stereo_loudness(a, rate)
        target = l_vocal + params.stem_gain_db
        if math.isfinite(l_acc) and math.isfinite(target):
            a = _gain_to(a, l_acc, target)
        mix = v + a
    l_mix = stereo_loudness(mix, rate)
    if math.isfinite(l_mix) and math.isfinite(params.target_lufs):
        mix = _gain_to(mix, l_mix, params.target_lufs)
    if np.max(np.abs(mix)) > 1.0:
        mix = linked_peak_limit(mix, params)
    return mix.astype(np.float32)


def mix_identity(params: MixParams = DEFAULT_MIX) -> dict[str, Any]:
    """What a mix-view value depends on besides its inputs' content (part of every mix-view cache key)."""
    return {"rule": "bench.metrics.mix:vocal_accompaniment_mix/1", "target_lufs": params.target_lufs,
            "stem_gain_db": params.stem_gain_db, "limiter": list(params.limiter), "silent_peak": SILENT_PEAK}
