"""Signal metrics: golden values on synthetic signals whose answers are known, and bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.metrics import signal as sm

RATE = 44_100


def _sine(freq: float, seconds: float, amp: float, rate: int = RATE, phase: float = 0.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return amp * np.sin(2 * np.pi * freq * t + phase)


def test_loudness_of_a_full_scale_1khz_sine_is_minus_3_lufs() -> None:
    # BS.1770: a 0 dBFS 997 Hz sine in one channel reads -3.01 LKFS (the K-filter is ~0 dB at 1 kHz)
    mono = _sine(997.0, 5.0, 1.0)[None, :]
    assert sm.integrated_loudness(mono, RATE) == pytest.approx(-3.01, abs=0.05)
    # the same sine in both channels adds 3 dB
    assert sm.integrated_loudness(np.vstack([mono, mono]), RATE) == pytest.approx(0.0, abs=0.05)


def test_true_peak_finds_the_intersample_peak() -> None:
    # fs/4 sine sampled at +-45 degrees: every sample is 0.7071, the waveform peaks at 1.0 between samples
    x = _sine(RATE / 4, 1.0, 1.0, phase=math.pi / 4)[None, :]
    assert np.abs(x).max() == pytest.approx(math.sqrt(0.5), abs=1e-9)
    assert sm.true_peak_dbtp(x, RATE) == pytest.approx(0.0, abs=0.2)  # 4x oversampling lands on the peak
    assert sm.true_peak_dbtp(0.5 * _sine(1000.0, 1.0, 1.0)[None, :], RATE) == pytest.approx(-6.02, abs=0.05)


@pytest.mark.parametrize("up", [2, 3, 4])
@pytest.mark.parametrize("samples", [1, 7, 21, 32, 33, 1000, 44_101])
def test_oversampling_equals_resample_poly_output_by_output(up: int, samples: int) -> None:
    # parity with the reference definition, scipy's resample_poly (float64), on every output, not only the peak:
    # lengths inside one block, at a block's edge, and a partial last block
    from scipy.signal import resample_poly

    rng = np.random.default_rng(samples + up)
    x = rng.standard_normal((2, samples)) * np.array([[0.3], [0.9]])
    expected = resample_poly(x, up, 1, axis=1)
    for channel in range(2):
        got = np.concatenate(list(sm.oversampled_pieces(x[channel], up)))
        assert got.shape == expected[channel].shape
        np.testing.assert_allclose(got, expected[channel], rtol=0, atol=1e-14)
    assert sm.oversampled_peak(x, up) == pytest.approx(float(np.abs(expected).max()), rel=1e-14, abs=0)


def test_oversampled_peak_of_a_long_clip_of_clipped_square_and_of_silence() -> None:
    # more rows than one product takes (47.55 s would be 65k rows of 32 samples), a square wave's overshoot
    from scipy.signal import resample_poly

    square = np.sign(np.sin(2 * np.pi * 50.0 * np.arange(RATE * 3) / RATE))[None, :]
    expected = float(np.abs(resample_poly(square, 4, 1, axis=1)).max())
    assert expected > 1.05  # the Gibbs overshoot between samples
    assert sm.oversampled_peak(square, 4) == pytest.approx(expected, rel=1e-14, abs=0)
    assert sm.oversampled_peak(np.zeros((1, 100)), 4) == 0.0


def test_digital_silence_has_no_true_peak_as_it_has_no_loudness() -> None:
    """A silent clip's true peak was floored at 20 log10(1e-12) = -240 dBTP and kept in the mean over clips (one
    silent file among 10 moved the mean from about +0.4 to -24.5 dBTP); it is -inf, left out like its loudness."""
    m = sm.signal_metrics(np.zeros((2, RATE)), RATE)
    assert m.true_peak_dbtp == -math.inf and m.loudness_lufs == -math.inf
    assert sm.true_peak_dbtp(1e-14 * _sine(1000.0, 1.0, 1.0)[None, :], RATE) == pytest.approx(-280.0, abs=0.05)


def test_clipping_and_silence_shares() -> None:
    x = np.zeros((2, 1000))
    x[0, :10] = 1.0
    x[1, 5:15] = -1.2
    assert sm.clipping_share(x) == pytest.approx(15 / 1000)  # instants 0..14 clip in some channel
    half = np.concatenate([np.zeros(RATE), _sine(440.0, 1.0, 0.5)])[None, :]
    assert sm.silence_share(half, RATE) == pytest.approx(0.5)
    assert sm.silence_share(1e-4 * np.ones((1, RATE)), RATE) == 1.0  # -80 dBFS counts as silence


def test_spectral_flatness_separates_noise_from_tones() -> None:
    rng = np.random.default_rng(0)
    noise = 0.1 * rng.standard_normal((2, RATE))
    assert sm.spectral_flatness(noise, RATE) > 0.5  # white noise (Hann-windowed periodogram: ~0.56)
    assert sm.spectral_flatness(_sine(440.0, 1.0, 0.5)[None, :], RATE) < 0.01
    assert math.isnan(sm.spectral_flatness(np.zeros((1, RATE)), RATE))


@pytest.mark.parametrize("source_rate", [32_000, 44_100, 48_000])
def test_flatness_of_white_noise_does_not_depend_on_its_source_rate(source_rate: int) -> None:
    """Over the full band, white noise resampled to 44.1 kHz read 0.56 from 44.1 kHz, 0.36 from 48 kHz and 0.0002 from
    32 kHz (the empty band above the source's Nyquist, at the floor, ruled the log mean): the source rate, not the
    audio. Over the fixed 20 Hz-15 kHz band, each reads exp(-gamma) ~ 0.56."""
    from samuel.audio import to_stereo_44k

    noise = 0.1 * np.random.default_rng(0).standard_normal((3 * source_rate, 2)).astype(np.float32)
    x = to_stereo_44k(noise, source_rate, name="noise")
    assert sm.spectral_flatness(x, RATE, source_rate) == pytest.approx(math.exp(-np.euler_gamma), abs=0.02)


def test_flatness_is_undefined_below_the_bands_source_rate() -> None:
    """22.05 and 8 kHz files scored 0.0: they have nothing in part of the band, so no value (NaN, outside n)."""
    noise = 0.1 * np.random.default_rng(1).standard_normal((2, RATE))
    for rate in (8_000, 22_050, 31_999):
        assert math.isnan(sm.spectral_flatness(noise, RATE, source_rate=rate))
        assert math.isnan(sm.signal_metrics(noise, RATE, source_rate=rate).spectral_flatness)
    assert math.isnan(sm.spectral_flatness(noise[:, :RATE // 2], 22_050))  # the clip's own rate counts too


def test_signal_metrics_bundle_and_bad_inputs() -> None:
    m = sm.signal_metrics(np.vstack([_sine(997.0, 2.0, 0.5)] * 2), RATE)
    assert m.loudness_lufs == pytest.approx(-6.02, abs=0.1) and m.clipping_share == 0.0
    assert m.silence_share == 0.0 and m.spectral_flatness < 0.01 and set(m.to_dict()) == {
        "loudness_lufs", "true_peak_dbtp", "clipping_share", "silence_share", "spectral_flatness"}
    short = sm.signal_metrics(_sine(440.0, 0.2, 0.5)[None, :], RATE)
    assert math.isnan(short.loudness_lufs)  # under one 400 ms gating block
    with pytest.raises(ValueError, match="NaN"):
        sm.signal_metrics(np.full((1, RATE), np.nan), RATE)
    with pytest.raises(ValueError, match="channels, samples"):
        sm.signal_metrics(np.zeros(RATE), RATE)
    with pytest.raises(ValueError, match=r"0\.4 s"):
        sm.integrated_loudness(np.zeros((1, 100)), RATE)
