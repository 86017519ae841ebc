"""bench.resample: the windowed-sinc kernel against its closed form, the direct interpolation sum, torchaudio's
length and gcd rules, passband gain, the -6 dB point at the cutoff, aliasing of every method, and batch = single.

The closed form and the direct sum are written here independently of the module (plain float64 NumPy), from the
formula in torchaudio's ``_get_sinc_resample_kernel``: k(tau) = (f_c / L) sinc(f_c tau) w(f_c tau / W).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import soxr

from bench.resample import (
    RESAMPLERS,
    SINC_SPECS,
    SincSpec,
    describe_resampler,
    reduced_rates,
    resample,
    sinc_output_length,
    sinc_resample_kernel,
)

IN, OUT = 44_100, 16_000
SINC_METHODS = tuple(SINC_SPECS)


def closed_form(u: np.ndarray, spec: SincSpec, low: int, high: int) -> np.ndarray:
    """k at f_c tau = u: (f_c / L) sin(pi u) / (pi u) w(u / W), 0 outside |u| <= W; float64."""
    fc, lpw = min(low, high) * spec.rolloff, spec.lowpass_filter_width
    inside = np.abs(u) <= lpw
    if spec.window == "hann":
        window = np.cos(np.pi * u / (2 * lpw)) ** 2
    else:
        window = np.i0(spec.beta * np.sqrt(np.clip(1 - (u / lpw) ** 2, 0, None))) / np.i0(spec.beta)
    return np.where(inside, fc / low * np.sinc(u) * window, 0.0)


def tone(freq_hz: float, seconds: float = 1.0, rate: int = IN) -> np.ndarray:
    return np.sin(2 * np.pi * freq_hz * np.arange(round(seconds * rate)) / rate)


def gain_db(y: np.ndarray, freq_hz: float, rate: int = OUT) -> float:
    """Amplitude of a sinusoid at ``freq_hz`` in the middle half of ``y`` (least squares), in dB re 1."""
    n = len(y)
    t = np.arange(n // 4, 3 * n // 4) / rate
    basis = np.stack([np.cos(2 * np.pi * freq_hz * t), np.sin(2 * np.pi * freq_hz * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y[n // 4: 3 * n // 4].astype(np.float64), rcond=None)
    return 20 * math.log10(max(float(np.hypot(*coef)), 1e-15))


# -- the kernel ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", SINC_METHODS)
def test_kernel_taps_match_the_closed_form(method):
    spec = SINC_SPECS[method]
    kernel, width = sinc_resample_kernel(IN, OUT, spec)
    low, high = 441, 160
    fc = min(low, high) * spec.rolloff
    assert width == math.ceil(spec.lowpass_filter_width * low / fc)
    assert kernel.shape == (high, 2 * width + low) and kernel.dtype == np.float64
    for m, n in [(0, width), (0, width + 1), (7, width - 3), (159, 2 * width + 100), (80, 0), (123, width + 441)]:
        u = fc * ((n - width) / low - m / high)
        assert kernel[m, n] == pytest.approx(float(closed_form(np.array(u), spec, low, high)), abs=1e-15, rel=1e-12)
    assert kernel[0, width] == pytest.approx(fc / low, rel=1e-15)  # tau = 0: the peak, (f_c / L) * 1 * 1


def test_kernel_is_computed_in_the_input_dtype():
    k32, _ = sinc_resample_kernel(IN, OUT, SINC_SPECS["torchaudio-default"], np.float32)
    k64, _ = sinc_resample_kernel(IN, OUT, SINC_SPECS["torchaudio-default"], np.float64)
    assert k32.dtype == np.float32
    np.testing.assert_allclose(k32, k64, atol=1e-5)  # t = f_c tau is float32 too: ~1e-5 relative on the taps
    assert not np.array_equal(k32.astype(np.float64), k64)  # rounded as float32 all the way, as torchaudio does


@pytest.mark.parametrize("method", SINC_METHODS)
def test_output_is_the_direct_interpolation_sum(method):
    """y[j] = sum_i x[i] k(i / L - j / M) over the whole input, no polyphase bookkeeping."""
    spec = SINC_SPECS[method]
    x = np.random.default_rng(0).standard_normal(3 * 441 + 17)
    y = resample(x, IN, OUT, method)
    j, i = np.arange(len(y))[:, None], np.arange(len(x))[None]
    fc = 160 * spec.rolloff
    direct = closed_form(fc * (i / 441 - j / 160), spec, 441, 160) @ x
    np.testing.assert_allclose(y, direct, rtol=0, atol=1e-12)


# -- lengths, rates, identity ----------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [1, 440, 441, 442, 44_100, 44_101, 123_457])
@pytest.mark.parametrize("rates", [(IN, OUT), (48_000, OUT), (OUT, IN), (22_050, OUT)])
def test_output_length_is_ceil_new_length_over_orig(length, rates):
    orig, new = rates
    exact = -(-new * length // orig)  # ceil in integers
    assert sinc_output_length(length, orig, new) == exact
    y = resample(np.zeros(length, np.float32), orig, new, "torchaudio-default")
    assert y.shape == (exact,)


def test_output_length_keeps_torchaudios_float32_rounding():
    """torchaudio takes ceil of the quotient as a float32 tensor: just above an integer, it rounds down first."""
    length = next(n for n in range(2_100_000, 2_200_000) if (160 * n) % 441 == 1)
    exact = -(-160 * length // 441)
    assert sinc_output_length(length, IN, OUT) == exact - 1
    assert sinc_output_length(length + 1, IN, OUT) == -(-160 * (length + 1) // 441)


def test_rates_are_reduced_by_their_gcd():
    assert reduced_rates(IN, OUT) == (441, 160)
    x = np.random.default_rng(1).standard_normal(5_000)
    for method in SINC_METHODS:
        spec = SINC_SPECS[method]
        full, width = sinc_resample_kernel(IN, OUT, spec)
        reduced, width_reduced = sinc_resample_kernel(441, 160, spec)
        np.testing.assert_array_equal(full, reduced)
        assert width == width_reduced
        np.testing.assert_array_equal(resample(x, IN, OUT, method), resample(x, 441, 160, method))


@pytest.mark.parametrize("method", RESAMPLERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equal_rates_give_a_copy_and_every_method_keeps_the_dtype(method, dtype):
    x = np.random.default_rng(2).standard_normal((2, 1000)).astype(dtype)
    same = resample(x, OUT, OUT, method)
    np.testing.assert_array_equal(same, x)
    assert same is not x and same.dtype == dtype
    assert resample(x, IN, OUT, method).dtype == dtype


def test_soxr_is_libsoxr_vhq_unchanged():
    x = np.random.default_rng(3).standard_normal(20_000).astype(np.float32)
    np.testing.assert_array_equal(resample(x, IN, OUT, "soxr"), soxr.resample(x, IN, OUT, quality="VHQ"))


@pytest.mark.parametrize("method", RESAMPLERS)
def test_batch_of_channels_equals_each_channel_alone(method):
    x = np.random.default_rng(4).standard_normal((3, 2, 7_000)).astype(np.float32)
    batch = resample(x, IN, OUT, method)
    assert batch.shape[:2] == (3, 2)
    for a in range(3):
        for b in range(2):
            np.testing.assert_allclose(batch[a, b], resample(x[a, b], IN, OUT, method), rtol=0, atol=1e-6)


def test_kernel_built_in_blocks_of_phases_gives_the_same_output(monkeypatch):
    """A rate pair with a small gcd has a kernel too large to hold (44101 -> 16000: 16000 x 44135); it is then
    built a block of phases at a time. Forced here on 44.1 -> 16 kHz: 2 phases per block instead of all 160."""
    import bench.resample as module

    x = np.random.default_rng(5).standard_normal((2, 3_000))
    whole = resample(x, IN, OUT, "torchaudio-default")
    monkeypatch.setattr(module, "KERNEL_BLOCK_ELEMENTS", 1_000)
    np.testing.assert_allclose(resample(x, IN, OUT, "torchaudio-default"), whole, rtol=0, atol=1e-13)


def test_bad_input():
    x = np.zeros(100, np.float32)
    with pytest.raises(ValueError, match=r"unknown resampler 'sox'.*soxr, torchaudio-default"):
        resample(x, IN, OUT, "sox")
    with pytest.raises(TypeError, match="float32 or float64"):
        resample(np.zeros(100, np.int16), IN, OUT)
    for rates in [(0, OUT), (IN, -1), (44_100.0, OUT), (True, OUT)]:
        with pytest.raises(ValueError, match="positive integers"):
            resample(x, *rates, "torchaudio-default")
    with pytest.raises(ValueError, match="beta"):
        SincSpec("hann", 6, 0.99, beta=5.0)
    assert describe_resampler("soxr") == "soxr VHQ"
    assert "lowpass_filter_width=6, rolloff=0.99" in describe_resampler("torchaudio-default")


# -- what the filters do to tones --------------------------------------------------------------------------------
@pytest.mark.parametrize("method", RESAMPLERS)
def test_a_passband_sine_keeps_its_amplitude_and_phase(method):
    y = resample(tone(1000.0), IN, OUT, method)
    assert abs(gain_db(y, 1000.0)) < 0.01
    expected = tone(1000.0, rate=OUT)[: len(y)]
    mid = slice(len(y) // 4, 3 * len(y) // 4)  # zero delay: the filters are centred (linear phase, no shift)
    np.testing.assert_allclose(y[mid], expected[mid], atol=2e-3)


@pytest.mark.parametrize("method", SINC_METHODS)
def test_gain_is_minus_6_db_at_the_cutoff(method):
    """A windowed sinc's response is the ideal low-pass convolved with the window's (even) transform, so it
    passes exactly half the amplitude at its cutoff f_c = rolloff * 8 kHz."""
    cutoff = SINC_SPECS[method].rolloff * OUT / 2
    y = resample(tone(cutoff, 2.0), IN, OUT, method)
    assert gain_db(y, cutoff) == pytest.approx(20 * math.log10(0.5), abs=0.1)


def test_a_7_9_khz_tone_passes_torchaudio_default_but_not_soxr():
    """7.9 kHz lies in torchaudio-default's wide transition band (cutoff 7.92 kHz), and in soxr's stopband."""
    gains = {m: gain_db(resample(tone(7900.0), IN, OUT, m), 7900.0) for m in RESAMPLERS}
    assert -8.0 < gains["torchaudio-default"] < -4.0
    assert gains["soxr"] < -60.0
    assert gains["torchaudio-kaiser-best"] < -30.0


@pytest.mark.parametrize(("freq", "floor_db"), [(8_100.0, -10.0), (8_500.0, -15.0), (9_000.0, -20.0)])
def test_tones_above_8_khz_alias_through_torchaudio_default_only(freq, floor_db):
    """A tone at f > 8 kHz folds to 16 kHz - f. torchaudio-default's transition band reaches ~10.6 kHz (Hann main
    lobe 2 f_c / W wide beyond f_c), so the alias is loud; soxr and Kaiser-best bury it."""
    alias = OUT - freq
    gains = {m: gain_db(resample(tone(freq), IN, OUT, m), alias) for m in RESAMPLERS}
    assert gains["torchaudio-default"] > floor_db
    assert gains["soxr"] < -120.0
    assert gains["torchaudio-kaiser-best"] < -100.0
