"""samuel.audio: loading any file as 44.1 kHz stereo float32, refusing bad ones by name, and atomic writes."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from samuel import audio
from samuel.audio import (
    AUDIO_EXTENSIONS,
    AudioError,
    LoadedAudio,
    downmix_matrix,
    load_audio,
    load_window,
    mix_channels,
    mp3_truncation,
    resampled_length,
    to_stereo_44k,
    wav_truncation,
    window_samples,
    write_audio,
)
from samuel.chunking import SAMPLE_RATE

SIDE = np.float32(1 - 1 / math.sqrt(2))  # ITU 5.1 gain of C and Ls/Rs after normalising by 1 + sqrt(2): 0.29289
FRONT = np.float32(math.sqrt(2) - 1)  # gain of L/R: 1 / (1 + sqrt(2)) = 0.41421


def sine(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    """Frequency of the FFT peak of ``x`` (a Hann window keeps leakage from the edges out of the way)."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)])


def amplitude(x: np.ndarray) -> float:
    """Sine amplitude from the RMS of the middle half (away from the resampler's edge transients)."""
    mid = x[len(x) // 4 : 3 * len(x) // 4]
    return float(np.sqrt(2 * np.mean(mid.astype(np.float64) ** 2)))


def write_wav(path: Path, data: np.ndarray, rate: int, subtype: str = "FLOAT") -> Path:
    sf.write(path, data, rate, subtype=subtype)
    return path


# ------------------------------------------------------------------------------------------------ pure helpers


@pytest.mark.parametrize(
    ("frames", "rate", "expected"),
    [(8000, 8000, 44100), (48000, 48000, 44100), (1, 88200, 0), (3, 88200, 2), (800, 96000, 368), (7, 44100, 7)],
)
def test_resampled_length_is_exact_round(frames, rate, expected):
    assert resampled_length(frames, rate) == expected == round(frames * SAMPLE_RATE / rate)


def test_resampled_length_exact_for_ten_hours_at_odd_rate():
    frames = 11025 * 36000 + 1  # float division would still do here; Fraction keeps it exact at any length
    assert resampled_length(frames, 11025) == 4 * frames


def test_itu_downmix_matrix_golden():
    m = downmix_matrix(6)
    assert m.dtype == np.float32
    #                            L      R      C     LFE  Ls    Rs
    np.testing.assert_array_equal(m, [[FRONT, 0, SIDE, 0, SIDE, 0], [0, FRONT, SIDE, 0, 0, SIDE]])
    assert FRONT == np.float32(0.41421356) and SIDE == np.float32(0.29289322)


@pytest.mark.parametrize("channels", [3, 4, 5, 6, 7, 8, 12])
def test_downmix_never_exceeds_full_scale(channels):
    worst = np.ones((4, channels), np.float32) * np.array([[1], [-1], [1], [-1]], np.float32)
    out = mix_channels(worst, downmix_matrix(channels))
    assert np.abs(out).max() <= 1.0
    assert np.abs(out).max() > 0.999  # ...and a full-scale input on every channel stays (nearly) full scale


@pytest.mark.parametrize("channels", [3, 4, 5, 8])
def test_other_channel_counts_are_averaged(channels):
    data = np.zeros((3, channels), np.float32)
    data[:, 0] = 0.5
    out = mix_channels(data, downmix_matrix(channels))
    np.testing.assert_allclose(out, 0.5 / channels, rtol=1e-6)
    np.testing.assert_array_equal(out[:, 0], out[:, 1])


def test_array_path_mono_duplicated_and_int16_scaled():
    pcm = np.array([-32768, -16384, 0, 16384, 32767], np.int16)
    out = to_stereo_44k(pcm, SAMPLE_RATE)
    assert out.shape == (2, 5) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], [-1.0, -0.5, 0.0, 0.5, 32767 / 32768])


@pytest.mark.parametrize(("frames", "rate"), [(800, 96000), (800, 32000), (8001, 88200), (1, 8000), (12345, 44100)])
@pytest.mark.parametrize("channels", [1, 2])
def test_array_path_length_is_exact_where_soxr_is_off_by_one(frames, rate, channels):
    # soxr's one-shot output is 367 samples for (800, 96 kHz) and 1103 for (800, 32 kHz): padded / trimmed here
    data = np.random.default_rng(1).uniform(-0.5, 0.5, (frames, channels)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = to_stereo_44k(data, rate)
    assert out.shape == (2, round(frames * SAMPLE_RATE / rate)) and out.dtype == np.float32


def test_array_path_errors_use_the_given_name():
    with pytest.raises(AudioError, match=r"^vocals\.npy: contains no audio"):
        to_stereo_44k(np.zeros((0, 2), np.float32), SAMPLE_RATE, name="vocals.npy")
    with pytest.raises(AudioError, match=r"^<array>: contains infinite samples at 0\.000 s"):
        to_stereo_44k(np.array([np.inf, 0.0], np.float32), SAMPLE_RATE)


def test_audio_error_is_a_value_error_naming_the_file():
    err = AudioError(Path("a/b.wav"), "is broken")
    assert isinstance(err, ValueError)
    assert str(err) == "a/b.wav: is broken" and err.path == "a/b.wav" and err.problem == "is broken"
    assert ".wav" in AUDIO_EXTENSIONS and all(e == e.lower() and e.startswith(".") for e in AUDIO_EXTENSIONS)


# ------------------------------------------------------------------------------------------------ loading


def test_stereo_44k_float_round_trip_is_bit_exact(tmp_path):
    x = np.random.default_rng(0).uniform(-1.5, 1.5, (2, 2 * SAMPLE_RATE)).astype(np.float32)  # > 1 survives
    path = write_audio(tmp_path / "mix.wav", x)
    assert sf.info(path).subtype == "FLOAT"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no resampling, no warning
        loaded = load_audio(path)
    assert isinstance(loaded, LoadedAudio)
    assert loaded.samples.dtype == np.float32 and loaded.samples.flags.c_contiguous
    np.testing.assert_array_equal(loaded.samples, x)
    assert (loaded.source_rate, loaded.source_channels, loaded.source_frames) == (SAMPLE_RATE, 2, 2 * SAMPLE_RATE)
    assert loaded.seconds == 2.0 and loaded.path == path


def test_int16_pcm_is_scaled_to_unit_range(tmp_path):
    pcm = np.zeros((SAMPLE_RATE, 2), np.int16)
    pcm[:4, 0] = [-32768, -16384, 16384, 32767]
    loaded = load_audio(write_wav(tmp_path / "pcm.wav", pcm, SAMPLE_RATE, "PCM_16"))
    np.testing.assert_array_equal(loaded.samples[0, :4], np.float32([-1.0, -0.5, 0.5, 32767 / 32768]))
    assert loaded.samples.max() < 1.0


def test_mono_44k_becomes_two_identical_channels(tmp_path):
    x = sine(440, SAMPLE_RATE, 1.5)
    loaded = load_audio(write_wav(tmp_path / "mono.flac", x, SAMPLE_RATE, "PCM_24"))
    assert loaded.samples.shape == (2, len(x)) and loaded.source_channels == 1
    np.testing.assert_array_equal(loaded.samples[0], loaded.samples[1])
    np.testing.assert_allclose(loaded.samples[0], x, atol=2**-22)  # 24-bit quantisation only


def test_8k_mono_upsampled_with_warning_keeping_pitch_and_level(tmp_path):
    x = sine(440, 8000, 2.0, amp=0.5)
    path = write_wav(tmp_path / "phone.wav", x, 8000)
    with pytest.warns(UserWarning, match=r"phone\.wav: sample rate is 8000 Hz.*nothing above 4000 Hz"):
        loaded = load_audio(path)
    assert loaded.samples.shape == (2, round(len(x) * SAMPLE_RATE / 8000)) == (2, 88200)
    np.testing.assert_array_equal(loaded.samples[0], loaded.samples[1])
    assert peak_hz(loaded.samples[0]) == pytest.approx(440, abs=1)
    assert amplitude(loaded.samples[0]) == pytest.approx(0.5, rel=0.01)


@pytest.mark.parametrize("rate", [48000, 96000, 22050, 11025])
@pytest.mark.parametrize("frames_extra", [0, 7])  # a length that does not divide evenly must still be exact
def test_other_rates_exact_length_and_pitch(tmp_path, rate, frames_extra):
    freq = 1000.0
    x = np.concatenate([sine(freq, rate, 1.0), np.zeros(frames_extra, np.float32)])
    stereo = np.stack([x, -x], axis=1)
    path = write_wav(tmp_path / f"s{rate}.wav", stereo, rate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 22050 and 11025 warn; that is tested above
        loaded = load_audio(path)
    assert loaded.samples.shape == (2, round(len(x) * SAMPLE_RATE / rate))
    assert loaded.source_rate == rate and loaded.source_frames == len(x)
    assert peak_hz(loaded.samples[0, :SAMPLE_RATE]) == pytest.approx(freq, abs=1)
    assert amplitude(loaded.samples[0, :SAMPLE_RATE]) == pytest.approx(0.5, rel=0.01)
    np.testing.assert_allclose(loaded.samples[1], -loaded.samples[0], atol=1e-6)  # channels stay apart


@pytest.mark.parametrize("rate", [48000, 96000])
def test_downsampling_does_not_warn(tmp_path, rate):
    path = write_wav(tmp_path / "hi.wav", sine(440, rate, 1.0), rate)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_audio(path).samples.shape == (2, SAMPLE_RATE)


def test_six_channels_refused_without_downmix(tmp_path):
    path = write_wav(tmp_path / "surround.wav", np.zeros((96000, 6), np.float32), 96000)
    with pytest.raises(AudioError, match=r"surround\.wav: has 6 channels.*--downmix.*5\.1") as info:
        load_audio(path)
    assert str(path) in str(info.value)


def test_six_channels_itu_downmix_golden_at_44k(tmp_path):
    # one channel per source at a time, constant levels: the mix is exact, no resampling in the way
    data = np.zeros((SAMPLE_RATE, 6), np.float32)
    data[:, 0] = 0.25  # L
    data[:, 2] = 0.5  # C
    data[:, 3] = 1.0  # LFE: dropped
    data[:, 5] = -0.5  # Rs
    loaded = load_audio(write_wav(tmp_path / "51.wav", data, SAMPLE_RATE), downmix=True)
    assert loaded.samples.shape == (2, SAMPLE_RATE) and loaded.source_channels == 6
    left = np.float32(np.float32(FRONT * np.float32(0.25)) + SIDE * np.float32(0.5))
    right = np.float32(SIDE * np.float32(0.5) + SIDE * np.float32(-0.5))
    assert left == pytest.approx(0.25 * 0.41421356 + 0.5 * 0.29289322, abs=1e-7)
    assert right == 0.0
    np.testing.assert_array_equal(loaded.samples[0], left)
    np.testing.assert_array_equal(loaded.samples[1], right)


def test_six_channels_96k_centre_only_downmix(tmp_path):
    centre = sine(1000, 96000, 1.0, amp=1.0)
    data = np.zeros((96000, 6), np.float32)
    data[:, 2] = centre
    loaded = load_audio(write_wav(tmp_path / "c96.wav", data, 96000), downmix=True)
    assert loaded.samples.shape == (2, SAMPLE_RATE)
    np.testing.assert_array_equal(loaded.samples[0], loaded.samples[1])  # C goes equally into L and R
    assert amplitude(loaded.samples[0]) == pytest.approx(0.29289322, rel=0.001)  # -3 dB, then / (1 + sqrt 2)
    assert peak_hz(loaded.samples[0]) == pytest.approx(1000, abs=1)


def test_four_channels_averaged_with_downmix(tmp_path):
    data = np.zeros((SAMPLE_RATE, 4), np.float32)
    data[:, 3] = 0.8
    loaded = load_audio(write_wav(tmp_path / "quad.wav", data, SAMPLE_RATE), downmix=True)
    np.testing.assert_array_equal(loaded.samples, np.float32(0.25) * np.float32(0.8))


# ------------------------------------------------------------------------------------------------ bad inputs


def _text_as_wav(p: Path) -> Path:
    p.write_text("this is not audio\n" * 20)
    return p


def _zero_bytes(p: Path) -> Path:
    p.write_bytes(b"")
    return p


def _header_only(p: Path) -> Path:
    return write_wav(p, np.zeros((0, 2), np.float32), SAMPLE_RATE)


def _nan_wav(p: Path) -> Path:
    x = np.zeros((2 * SAMPLE_RATE, 2), np.float32)
    x[int(1.5 * SAMPLE_RATE), 1] = np.nan
    return write_wav(p, x, SAMPLE_RATE)


def _inf_wav(p: Path) -> Path:
    x = np.zeros((2 * 8000, 1), np.float32)
    x[12345, 0] = -np.inf
    return write_wav(p, x, 8000)


def _short_wav(p: Path) -> Path:
    return write_wav(p, np.zeros((4410, 2), np.float32), SAMPLE_RATE)


def _cut_flac(p: Path) -> Path:
    sf.write(p, np.random.default_rng(0).uniform(-0.5, 0.5, (2 * SAMPLE_RATE, 2)), SAMPLE_RATE, subtype="PCM_16")
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])  # libsndfile's FLAC decoder fails on it, unlike WAV
    return p


def _missing(p: Path) -> Path:
    return p


def _directory(p: Path) -> Path:
    p.mkdir()
    return p


def _garbage_flac(p: Path) -> Path:
    p.write_bytes(b"fLaC" + bytes(range(256)) * 4)
    return p


@pytest.mark.parametrize(
    ("make", "name", "problem"),
    [
        (_text_as_wav, "notes.wav", r"not a readable audio file \(libsndfile: Format not recognised\)"),
        (_garbage_flac, "bad.flac", r"not a readable audio file \(libsndfile: .+\)"),
        (_cut_flac, "cut.flac", r"not a readable audio file \(libsndfile: flac decoder lost sync\)"),
        (_zero_bytes, "zero.wav", r"is an empty file \(0 bytes\)"),
        (_header_only, "header.wav", r"contains no audio \(0 frames\)"),
        (_nan_wav, "nan.wav", r"contains NaN samples at 1\.500 s \(frame 66150\)"),
        (_inf_wav, "inf.wav", r"contains infinite samples at 1\.543 s \(frame 12345\)"),
        (_short_wav, "short.wav", r"is 0\.10 s long; the minimum is 1\.00 s"),
        (_text_as_wav, "song.m4a", r"is \.m4a \(AAC or ALAC in MP4\), which libsndfile cannot decode .* convert it, "
                                   r"e\.g\. ffmpeg -i 'song\.m4a' 'song\.flac'"),
        (_missing, "nowhere.wav", r"no such file"),
        (_directory, "folder.wav", r"is a directory"),
    ],
)
def test_bad_inputs_name_the_file_and_the_problem(tmp_path, make, name, problem):
    path = make(tmp_path / name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # inf.wav is 8 kHz
        with pytest.raises(AudioError, match=problem) as info:
            load_audio(path)
    assert str(info.value).startswith(f"{path}: ")
    assert info.value.path == str(path)


@pytest.mark.parametrize(
    ("subtype", "keep_bytes", "declared", "held"),
    [
        ("PCM_16", 0.5, 44100, 22050),  # cut in the middle of the data
        ("FLOAT", 0.5, 44100, 22050),  # FLOAT WAVs have a longer header (fact and PEAK chunks)
        ("PCM_24", 1.0, 44100, 44099),  # one byte short
        ("PCM_16", 0.0, 44100, 0),  # data header only: libsndfile reports 0 frames, not an error
    ],
)
def test_truncated_wav_detected(tmp_path, subtype, keep_bytes, declared, held):
    full = write_wav(tmp_path / "full.wav", sine(440, SAMPLE_RATE, 1.0), SAMPLE_RATE, subtype)
    raw = full.read_bytes()
    header = raw.index(b"data") + 8
    data_bytes = len(raw) - header
    cut = header + int(data_bytes * keep_bytes) - (1 if keep_bytes == 1.0 else 0)
    path = tmp_path / "cut.wav"
    path.write_bytes(raw[:cut])
    # what libsndfile itself does: it opens the file and quietly returns fewer frames
    assert sf.info(path).frames == held
    assert wav_truncation(path) == (declared, held)
    with pytest.raises(AudioError, match=rf"cut\.wav: truncated: header declares {declared} frames, file holds {held}"):
        load_audio(path)


def _mp3(path: Path, rate: int, channels: int, seconds: float = 3.0) -> bytes:
    noise = np.random.default_rng(0).standard_normal((int(rate * seconds), channels)).astype(np.float32) * 0.1
    sf.write(path, noise, rate, format="MP3")
    return path.read_bytes()


@pytest.mark.parametrize(("rate", "channels"), [(44100, 2), (22050, 1)])  # MPEG-1 stereo, MPEG-2 mono side info
@pytest.mark.parametrize("id3", [False, True])
def test_a_cut_mp3_is_named_by_its_xing_header(tmp_path, rate, channels, id3):
    """libsndfile decodes a cut MP3 to what is left, and its frame count is an estimate: the Xing header's byte
    count, written when the stream was complete, is what tells. An ID3v2 tag (cover art) in front changes
    nothing."""
    raw = _mp3(tmp_path / "src.mp3", rate, channels)
    tag = b"ID3\x04\x00\x00" + bytes([0, 0, 0x10, 0]) + b"\x00" * (0x10 << 7) if id3 else b""
    whole, cut = tmp_path / "whole.mp3", tmp_path / "cut.mp3"
    whole.write_bytes(tag + raw)
    cut.write_bytes(tag + raw[: len(raw) // 2])
    assert mp3_truncation(whole) is None
    assert load_audio(whole).seconds == pytest.approx(3.0, abs=0.1)
    declared, held = mp3_truncation(cut)
    assert declared == len(raw) and held == len(tag) + len(raw) // 2
    assert sf.read(cut)[0].shape[0] > 0  # what libsndfile does: no error, half the audio
    with pytest.raises(AudioError, match=r"cut\.mp3: truncated: its MP3 \(Xing\) header declares"):
        load_audio(cut)
    from bench.manifest import probe_vocal  # a folder's files are checked from their headers before any decoding

    assert probe_vocal(whole, 0.0, False) is None
    assert probe_vocal(cut, 0.0, False).startswith("truncated: its MP3 (Xing) header declares")


def test_mp3_truncation_leaves_other_files_and_headerless_mp3_alone(tmp_path):
    raw = _mp3(tmp_path / "src.mp3", 44100, 2, 1.0)
    xing = raw.index(b"Xing")
    plain = tmp_path / "plain.mp3"  # the tag's frame gone: nothing declares the stream's size
    plain.write_bytes(raw[:xing] + b"\x00" * 4 + raw[xing + 4:])
    assert mp3_truncation(plain) is None
    wav = write_wav(tmp_path / "ok.wav", np.zeros((100, 2), np.int16), 8000, "PCM_16")
    assert mp3_truncation(wav) is None


def test_complete_wav_is_not_reported_truncated(tmp_path):
    path = write_wav(tmp_path / "ok.wav", np.zeros((100, 2), np.int16), 8000, "PCM_16")
    assert wav_truncation(path) is None
    (tmp_path / "x.flac").write_bytes(b"fLaC")
    assert wav_truncation(tmp_path / "x.flac") is None  # not RIFF: left to libsndfile


def test_min_and_max_seconds(tmp_path):
    path = write_wav(tmp_path / "three.wav", np.zeros((3 * SAMPLE_RATE, 2), np.float32), SAMPLE_RATE)
    assert load_audio(path, min_seconds=3.0, max_seconds=3.0).seconds == 3.0  # bounds are inclusive
    assert load_audio(tmp_path / "three.wav", min_seconds=0.0).seconds == 3.0
    with pytest.raises(AudioError, match=r"three\.wav: is 3\.00 s long; the minimum is 4\.00 s"):
        load_audio(path, min_seconds=4.0)
    with pytest.raises(AudioError, match=r"three\.wav: is 3\.00 s long; the maximum is 2\.50 s"):
        load_audio(path, max_seconds=2.5)
    with pytest.raises(ValueError, match="below min_seconds"):
        load_audio(path, min_seconds=2.0, max_seconds=1.0)


def test_ten_minute_8k_int16_file_loads_exactly(tmp_path):
    rate, seconds = 8000, 600
    t = np.arange(rate * seconds, dtype=np.float64) / rate
    pcm = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    path = write_wav(tmp_path / "long.wav", pcm, rate, "PCM_16")
    with pytest.warns(UserWarning, match="8000 Hz"):
        loaded = load_audio(path)
    assert loaded.samples.shape == (2, seconds * SAMPLE_RATE)
    assert loaded.seconds == 600.0 and loaded.source_frames == rate * seconds
    tail = loaded.samples[0, -SAMPLE_RATE - SAMPLE_RATE // 2 : -SAMPLE_RATE // 2]  # the last minute's pitch holds
    assert peak_hz(tail) == pytest.approx(440, abs=1)
    assert amplitude(tail) == pytest.approx(0.3, rel=0.01)


# ------------------------------------------------------------------------------------------------ writing


@pytest.mark.parametrize(("suffix", "subtype"), [(".wav", "PCM_16"), (".flac", "PCM_24"), (".aiff", "PCM_16")])
def test_integer_subtypes_clip_to_full_scale(tmp_path, suffix, subtype):
    x = np.array([[0.5, 1.5, -2.0, -1.0]] * 2, np.float32)
    path = write_audio(tmp_path / f"clip{suffix}", x, subtype=subtype)
    back, rate = sf.read(path, dtype="float32", always_2d=True)
    assert rate == SAMPLE_RATE and sf.info(path).subtype == subtype
    np.testing.assert_allclose(back.T, np.clip(x, -1, 1), atol=2**-15)
    assert back.max() <= 1.0 and back.min() == -1.0


def test_integer_subtypes_get_clipped_data_float_does_not(tmp_path, monkeypatch):
    # libsndfile (as soundfile opens it) clips too; write_audio does not rely on that, and this checks it does not
    seen: dict[str, np.ndarray] = {}
    real_write = sf.write

    def spy(file, data, *args, subtype=None, **kwargs):
        seen[subtype] = np.array(data)
        real_write(file, data, *args, subtype=subtype, **kwargs)

    monkeypatch.setattr(audio.sf, "write", spy)
    x = np.array([[2.0, -3.0, 0.25]], np.float32)
    write_audio(tmp_path / "i.wav", x, subtype="PCM_24")
    write_audio(tmp_path / "f.wav", x)
    np.testing.assert_array_equal(seen["PCM_24"].T, [[1.0, -1.0, 0.25]])
    np.testing.assert_array_equal(seen["FLOAT"].T, x)
    np.testing.assert_array_equal(sf.read(tmp_path / "f.wav", dtype="float32", always_2d=True)[0].T, x)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_write_refuses_non_finite_and_leaves_nothing(tmp_path, bad):
    x = np.zeros((2, 1000), np.float32)
    x[1, 441] = bad
    with pytest.raises(ValueError, match=r"out\.wav: refusing to write (NaN|infinite) samples at 0\.010 s"):
        write_audio(tmp_path / "out.wav", x)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "samples", "kwargs", "problem"),
    [
        ("a.flac", np.zeros((2, 10), np.float32), {}, r"FLAC cannot store subtype 'FLOAT'.*PCM_24"),
        ("a.xyz", np.zeros((2, 10), np.float32), {}, "cannot tell the audio format"),
        ("a.wav", np.zeros((100, 2), np.float32), {}, "channels, samples"),
        ("a.wav", np.zeros(10, np.float32), {}, "channels, samples"),
        ("a.wav", np.zeros((2, 10), np.int16), {}, "floating point"),
        ("a.wav", np.zeros((2, 10), np.float32), {"rate": 0}, "positive integer"),
    ],
)
def test_write_rejects_bad_arguments(tmp_path, name, samples, kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        write_audio(tmp_path / name, samples, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_write_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "song.wav"
    target.write_bytes(b"old result")

    def broken_write(file, *args, **kwargs):
        Path(file).write_bytes(b"half a file")
        raise RuntimeError("disk full")

    monkeypatch.setattr(audio.sf, "write", broken_write)
    with pytest.raises(RuntimeError, match="disk full"):
        write_audio(target, np.zeros((2, 100), np.float32))
    assert target.read_bytes() == b"old result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.wav"]  # no temp file left behind


def test_write_creates_parent_folders_and_replaces(tmp_path):
    target = tmp_path / "out" / "deep" / "acc.wav"
    write_audio(target, np.full((2, 50), 0.25, np.float32))
    returned = write_audio(target, np.full((1, 60), -0.5, np.float64), rate=22050)
    assert returned == target
    back, rate = sf.read(target, dtype="float32", always_2d=True)
    assert rate == 22050 and back.shape == (60, 1) and np.all(back == -0.5)
    assert sorted(p.name for p in target.parent.iterdir()) == ["acc.wav"]


@pytest.mark.parametrize(("rate", "start_s", "duration_s", "expected"), [
    (48_000, 0.0, 47.55, 882_000),   # 20 s at 48 kHz: the window is cut at the file's end
    (48_000, 5.0, 10.0, 441_000),
    (22_050, 19.5, 47.55, 22_050),   # 0.5 s left after the start
    (44_100, 0.0, None, 882_000),
])
def test_window_samples_reads_the_windows_length_from_the_header(tmp_path, rate, start_s, duration_s, expected):
    path = tmp_path / f"song-{rate}.flac"
    t = np.arange(20 * rate) / rate
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 220 * t), rate)
    assert window_samples(path, start_s, duration_s) == expected
    assert load_window(path, start_s, duration_s).samples.shape[1] == expected  # what the window gives decoded
    with pytest.raises(AudioError, match=r"starts at 25\.00 s, but the file lasts 20\.00 s"):
        window_samples(path, 25.0, 1.0)
    (tmp_path / "junk.wav").write_text("not audio")
    with pytest.raises(AudioError, match=r"junk\.wav"):
        window_samples(tmp_path / "junk.wav")


def test_a_full_disk_is_named_with_the_file_and_leaves_the_old_one(tmp_path, monkeypatch):
    """A failed write() names no file, and libsndfile says only "System error." for a full disk: both now raise
    DiskFull naming the target, with no temp file left and any old file untouched."""
    import errno

    from samuel.atomic import DiskFull, atomic_write, is_disk_full

    target = tmp_path / "x.json"
    target.write_text("old")

    def no_space(tmp):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(DiskFull) as caught:
        atomic_write(target, no_space)
    assert caught.value.filename == str(target) and is_disk_full(caught.value)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]
    with pytest.raises(PermissionError):  # other errors pass as they were
        atomic_write(target, lambda tmp: (_ for _ in ()).throw(PermissionError(errno.EACCES, "denied")))

    def system_error(*args, **kwargs):
        raise sf.LibsndfileError(0, "System error.")  # what libsndfile raised on a full tmpfs

    monkeypatch.setattr(audio.sf, "write", system_error)
    samples = np.zeros((2, 4410), np.float32)
    monkeypatch.setattr(audio, "no_room_for", lambda directory, nbytes: True)
    with pytest.raises(DiskFull, match=r"out\.flac"):
        write_audio(tmp_path / "out.flac", samples, subtype="PCM_16")
    monkeypatch.setattr(audio, "no_room_for", lambda directory, nbytes: False)  # room enough: libsndfile's error
    with pytest.raises(RuntimeError, match="System error"):
        write_audio(tmp_path / "out.flac", samples, subtype="PCM_16")
    assert not (tmp_path / "out.flac").exists()
