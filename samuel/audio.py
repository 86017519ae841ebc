"""Audio in and out of the SAMUeL pipeline: every array the model touches is 44.1 kHz stereo float32, shape (2, S).

Policy of :func:`load_audio` (file I/O) and :func:`to_stereo_44k` (the same conversion on an array in memory):

- **Sample format.** Files are decoded by libsndfile (``soundfile``) straight to float32; integer PCM lands in
  [-1, 1) (int16 is divided by 32768, and so on). Float files are taken as they are, values beyond +-1 included:
  nothing is clipped on the way in.
- **Sample rate.** Any rate is resampled to 44.1 kHz with soxr at quality ``'VHQ'``, in float32 throughout
  (decode, mix and resample; soxr computes internally at higher precision). VHQ rather than HQ because it costs
  next to nothing here (10 minutes of 8 kHz mono: ~0.21 s against ~0.18 s on 2 CPU cores, tiny next to the VAE
  and the diffusion sampler) and its 28-bit precision keeps the resampler's error below float32's own rounding, so
  resampling is never the step that limits fidelity. The output has exactly ``round(frames * 44100 / rate)``
  samples (soxr's one-shot output can differ by a sample at exact halves; it is trimmed or zero-padded).
  Rates below 44.1 kHz are accepted and upsampled, with a ``UserWarning``: upsampling cannot restore content above
  the source's Nyquist frequency (rate / 2), and the model was trained on full-band 44.1 kHz audio.
- **Channels.** Mono becomes two identical channels (duplicated after resampling, so only one channel is
  resampled). Stereo is kept as it is. More than two channels is an :class:`AudioError` unless ``downmix=True``
  (the CLI's ``--downmix``), because folding a multichannel mix is a choice the user should make knowingly:

  - 6 channels are read as 5.1 in the WAV/SMPTE order L R C LFE Ls Rs and mixed with the ITU-R BS.775 downmix,
    ``L' = L + 0.7071 C + 0.7071 Ls`` and ``R' = R + 0.7071 C + 0.7071 Rs`` (centre and surrounds at -3 dB, LFE
    dropped), then divided by the sum of the coefficients, 1 + 2 x 0.7071 = 2.414, so that a full-scale input on
    every channel at once cannot exceed full scale. The net gains are 0.4142 for the front channel of each side
    and 0.2929 for centre and surround (-7.7 dB and -10.7 dB).
  - Any other count above 2 has no standard layout, so all channels are averaged into both outputs.

  Mixing happens before resampling, so at most two channels are resampled.
- **Refused inputs**, each an :class:`AudioError` whose message names the file and says what is wrong: a missing
  path or a directory; a file of 0 bytes; a file libsndfile cannot read (not audio, damaged, unsupported); a RIFF
  WAV whose data chunk declares more bytes than the file holds (truncated; libsndfile itself silently reads the
  frames that are there, so the chunk headers are parsed here), an MP3 whose Xing/Info header declares more stream
  bytes than the file holds (:func:`mp3_truncation`), or any other file that decodes to fewer frames than its
  header declares (an MP3's frame count is an estimate); 0 frames; a NaN or infinite sample (the
  first one's time is given); shorter than ``min_seconds`` (default 1 s: the model generates 47.55 s chunks and
  one latent frame is 46 ms, so a sub-second accompaniment is meaningless); longer than ``max_seconds`` if given.

:func:`write_audio` writes (C, S) float arrays atomically (temp file + rename), FLOAT WAV by default so that sums
such as vocals + accompaniment are stored without clipping.
"""

from __future__ import annotations

import errno
import math
import os
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from samuel.atomic import DiskFull, atomic_write, no_room_for
from samuel.chunking import SAMPLE_RATE
from samuel.folder_walk import files_under

# every audio file the toolkit reads, in one list (libsndfile decodes all of them; .opus is Ogg Opus)
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aif", ".aiff")

# audio containers libsndfile cannot decode: a file in one of these is named with a way out, never passed over in
# silence (a vocals folder of .m4a files would otherwise read as "no audio files", a reference as "missing")
UNDECODABLE_AUDIO_EXTENSIONS: dict[str, str] = {
    ".m4a": "AAC or ALAC in MP4", ".mp4": "MP4", ".m4b": "AAC in MP4", ".aac": "raw AAC", ".alac": "ALAC",
    ".wma": "Windows Media Audio", ".ape": "Monkey's Audio", ".wv": "WavPack", ".mka": "Matroska audio",
    ".webm": "WebM", ".amr": "AMR", ".ac3": "Dolby AC-3", ".eac3": "Dolby E-AC-3", ".dts": "DTS",
    ".mpc": "Musepack", ".tta": "TTA", ".dsf": "DSD", ".dff": "DSD", ".mp2": "MPEG Layer II",
}

RESAMPLE_QUALITY = "VHQ"
MAX_WRITE_CHANNELS = 32  # more than this is almost surely a (samples, channels) array passed the wrong way round
_FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})  # every other subtype stores [-1, 1] only
_FORMAT_BY_EXTENSION = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".opus": "OGG", ".mp3": "MP3", ".aif": "AIFF",
                        ".aiff": "AIFF"}
_MINUS_3_DB = 1 / math.sqrt(2)  # ITU-R BS.775 gain for centre and surrounds


class AudioError(ValueError):
    """A file that cannot be used as audio. ``str(err)`` is ``'<path>: <problem>'``, so it always names the file."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class LoadedAudio:
    """A decoded file: ``samples`` is (2, S) float32 at 44.1 kHz; the ``source_*`` fields describe the file."""

    path: Path
    samples: np.ndarray
    source_rate: int
    source_channels: int
    source_frames: int

    @property
    def seconds(self) -> float:
        """Duration of ``samples`` at 44.1 kHz."""
        return self.samples.shape[1] / SAMPLE_RATE


# --------------------------------------------------------------------------------------------------------------
# Pure helpers: no file I/O.


def undecodable_audio_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is audio this toolkit cannot decode (its extension is in :data:`UNDECODABLE_AUDIO_EXTENSIONS`),
    with the conversion that makes it readable; None for any other file."""
    path = Path(path)
    kind = UNDECODABLE_AUDIO_EXTENSIONS.get(path.suffix.lower())
    if kind is None:
        return None
    if path.name.lower().endswith(".stem.mp4"):  # MUSDB18's format; its track order is fixed by the dataset
        song = path.name[: -len(".stem.mp4")]
        return ("is a Native Instruments stems file (MUSDB18's .stem.mp4: mixture, drums, bass, other and vocals as "
                "five AAC tracks), which libsndfile cannot decode; use MUSDB18-HQ's WAV folders, or export each "
                f"track into a folder per song, e.g. ffmpeg -i '{path.name}' -map 0:1 '{song}/drums.wav' -map 0:2 "
                f"'{song}/bass.wav' -map 0:3 '{song}/other.wav' -map 0:4 '{song}/vocals.wav'")
    return (f"is {path.suffix} ({kind}), which libsndfile cannot decode (it reads "
            f"{' '.join(AUDIO_EXTENSIONS)}); convert it, e.g. ffmpeg -i '{path.name}' '{path.stem}.flac'")


def undecodable_audio_files(folder: str | os.PathLike[str], *, recursive: bool = True) -> list[Path]:
    """The files under ``folder`` that are audio libsndfile cannot decode (by extension; hidden files skipped),
    sorted."""
    folder = Path(folder)
    found = files_under(folder).files if recursive else folder.iterdir()
    return sorted(p for p in found if p.suffix.lower() in UNDECODABLE_AUDIO_EXTENSIONS and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def resampled_length(frames: int, rate: int, target_rate: int = SAMPLE_RATE) -> int:
    """``round(frames * target_rate / rate)``, computed exactly (no float rounding for long files)."""
    return round(Fraction(frames * target_rate, rate))


def pcm_to_float(data: np.ndarray) -> np.ndarray:
    """Integer PCM -> float32 in [-1, 1) (int16 / 32768, ...); float input is cast to float32 as it is."""
    if np.issubdtype(data.dtype, np.signedinteger):
        return (data / np.float32(2 ** (8 * data.dtype.itemsize - 1))).astype(np.float32, copy=False)
    if np.issubdtype(data.dtype, np.floating):
        return data.astype(np.float32, copy=False)
    raise TypeError(f"expected float or signed integer samples, got dtype {data.dtype}")


def _cap_row(row: np.ndarray) -> np.ndarray:
    """Nudge a float32 row of gains down by ulps until summing them in order, as :func:`mix_channels` does,
    cannot exceed 1 (rounding of 0.4142 + 0.2929 + 0.2929 could otherwise land one ulp above full scale)."""
    if row.sum() > 1 + 1e-6:  # only rounding is corrected here, never a matrix that is loud by design
        raise ValueError(f"gains sum to {row.sum()}, above 1")
    row = row.astype(np.float32).copy()
    while True:
        total = np.float32(0)
        for gain in row[row != 0]:
            total = np.float32(total + gain)
        if total <= 1:
            return row
        largest = int(np.argmax(row))
        row[largest] = np.nextafter(row[largest], np.float32(0))


def downmix_matrix(channels: int) -> np.ndarray:
    """(2, channels) float32 gains folding ``channels`` > 2 to stereo; each row sums to at most 1 (see module doc).

    6 channels: ITU-R BS.775 5.1 -> stereo over L R C LFE Ls Rs (LFE dropped), normalised by 1 + 2 / sqrt(2).
    Any other count: the average of all channels in both outputs.
    """
    if channels <= 2:
        raise ValueError(f"downmix_matrix is for more than 2 channels, got {channels}")
    if channels == 6:
        #                      L    R    C            LFE  Ls           Rs
        m = np.array([[1.0, 0.0, _MINUS_3_DB, 0.0, _MINUS_3_DB, 0.0],
                      [0.0, 1.0, _MINUS_3_DB, 0.0, 0.0, _MINUS_3_DB]])  # fmt: skip
        m /= 1 + 2 * _MINUS_3_DB
    else:
        m = np.full((2, channels), 1.0 / channels)
    return np.stack([_cap_row(row) for row in m])


def mix_channels(data: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(frames, C) float32 x (K, C) gains -> (frames, K) float32, summing each row's terms in channel order.

    Summing term by term in float32 (rather than a BLAS matmul of unspecified order) keeps the result exactly
    reproducible and guarantees that |inputs| <= 1 gives |outputs| <= 1 whenever the row's gains sum to <= 1.
    """
    out = np.zeros((data.shape[0], matrix.shape[0]), dtype=np.float32)
    for k, row in enumerate(matrix):
        for j in np.flatnonzero(row):
            out[:, k] += row[j] * data[:, j]
    return out


def first_non_finite(data: np.ndarray, rate: int) -> str | None:
    """``'NaN samples at 12.300 s (frame 542430)'`` for the first non-finite frame of (frames, C) data, or None."""
    finite = np.isfinite(data)
    if finite.all():
        return None
    frame = int(np.argmin(finite.all(axis=1)))
    kind = "NaN" if np.isnan(data[frame]).any() else "infinite"
    return f"{kind} samples at {frame / rate:.3f} s (frame {frame})"


def check_channels(channels: int, downmix: bool, name: str | os.PathLike[str]) -> None:
    """Raise :class:`AudioError` for a channel count the pipeline will not take."""
    if channels < 1:
        raise AudioError(name, "has no channels")
    if channels > 2 and not downmix:
        layout = " (read as 5.1: L R C LFE Ls Rs)" if channels == 6 else " (averaged)"
        raise AudioError(
            name,
            f"has {channels} channels; only mono or stereo is taken. Pass --downmix (downmix=True) to fold it to "
            f"stereo{layout}",
        )


def to_stereo_44k(data: np.ndarray, rate: int, *, downmix: bool = False, name: str = "<array>") -> np.ndarray:
    """(frames, channels) or (frames,) samples at ``rate`` -> (2, S) float32 at 44.1 kHz.

    ``S == round(frames * 44100 / rate)`` exactly. Integer input is scaled to [-1, 1). Channel and resampling
    policy as in the module docstring; a rate below 44.1 kHz warns. ``name`` goes into error messages.

    Raises:
        AudioError: no frames, NaN/inf samples, more than 2 channels without ``downmix``, or a bad shape or rate.
    """
    data = np.asarray(data)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2:
        raise AudioError(name, f"expected samples shaped (frames, channels) or (frames,), got {data.shape}")
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or rate <= 0:
        raise AudioError(name, f"sample rate must be a positive integer, got {rate!r}")
    rate = int(rate)
    frames, channels = data.shape
    check_channels(channels, downmix, name)
    if frames == 0:
        raise AudioError(name, "contains no audio (0 frames)")
    try:
        data = pcm_to_float(data)
    except TypeError as err:
        raise AudioError(name, str(err)) from None
    # before resampling: the filter would smear one NaN over its whole length and hide where it was
    bad = first_non_finite(data, rate)
    if bad is not None:
        raise AudioError(name, f"contains {bad}")

    if channels > 2:
        data = mix_channels(data, downmix_matrix(channels))
    if rate != SAMPLE_RATE:
        if rate < SAMPLE_RATE:
            warnings.warn(
                f"{name}: sample rate is {rate} Hz; upsampled to {SAMPLE_RATE} Hz, but nothing above {rate / 2:g} Hz "
                f"is there (a vocal given to a model trained on full-band {SAMPLE_RATE} Hz audio, or a reference or "
                "output compared with full-band ones, lacks that band)",
                UserWarning,
                stacklevel=2,
            )
        data = soxr.resample(np.ascontiguousarray(data), rate, SAMPLE_RATE, quality=RESAMPLE_QUALITY)
        target = resampled_length(frames, rate)
        if data.shape[0] > target:
            data = data[:target]
        elif data.shape[0] < target:
            data = np.concatenate([data, np.zeros((target - data.shape[0], data.shape[1]), np.float32)])
    stereo = np.repeat(data.T, 2, axis=0) if data.shape[1] == 1 else data.T
    return np.ascontiguousarray(stereo, dtype=np.float32)


# --------------------------------------------------------------------------------------------------------------
# File I/O.


def wav_truncation(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """``(declared_frames, held_frames)`` if ``path`` is a RIFF/RIFX WAVE whose data chunk runs past the file's end.

    libsndfile reads a truncated WAV without complaint (it clamps the frame count to the bytes present), so the
    chunk headers are walked here. Returns None for a complete WAV, a non-WAV file, RF64/W64 (not checked), and a
    data size of 0 or 0xFFFFFFFF (what streaming writers leave when the length is not known yet).
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return None
        endian = "<" if head[:4] == b"RIFF" else ">"
        block_align = 0
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack(f"{endian}4sI", f.read(8))
            if chunk_id == b"fmt ":
                fmt = f.read(min(chunk_size, 16))
                if len(fmt) >= 14:
                    (block_align,) = struct.unpack(f"{endian}H", fmt[12:14])  # bytes per frame, all channels
            elif chunk_id == b"data":
                present = size - (pos + 8)
                if block_align == 0 or chunk_size in (0, 0xFFFFFFFF) or chunk_size <= present:
                    return None
                return chunk_size // block_align, present // block_align
            pos += 8 + chunk_size + (chunk_size & 1)  # chunks are padded to an even size
    return None


_MP3_SIDE_INFO = {(True, False): 32, (True, True): 17, (False, False): 17, (False, True): 9}  # (MPEG-1, mono)
MP3_TRUNCATION_SLACK = 0.01  # mpg123 warns past 1% too ("Xing stream size off by more than 1%")


def mp3_truncation(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """``(declared_bytes, held_bytes)`` if ``path`` is an MP3 whose Xing/Info header (LAME's, libsndfile's, most
    encoders') declares more than 1% more stream bytes than the whole file holds.

    An MP3's frame count in libsndfile is an estimate, so decoding fewer frames than it says proves nothing; the
    Xing header's byte count, written by the encoder once the stream was complete, does. libsndfile decodes a cut
    MP3 to what is left (an audit's 10 s file gave 4.9 s with only mpg123's "Xing stream size off" on stderr).
    None for a complete MP3, one without such a header (nothing to compare), or any other file."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(10)
        start = 0
        if len(head) == 10 and head[:3] == b"ID3":  # ID3v2: a syncsafe size, plus a footer when flag 0x10 is set
            start = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
            start += 10 if head[5] & 0x10 else 0
        f.seek(start)
        frame = f.read(4 + 32 + 16)  # header, the longest side info, then Xing's tag, flags, frames and bytes
    if len(frame) < 4 + 9 + 8 or frame[0] != 0xFF or frame[1] & 0xE0 != 0xE0 or (frame[1] >> 1) & 3 != 1:
        return None  # no MPEG Layer III frame where the stream should start
    mpeg1, mono = (frame[1] >> 3) & 3 == 3, (frame[3] >> 6) & 3 == 3
    tag = 4 + _MP3_SIDE_INFO[(mpeg1, mono)]
    if frame[tag:tag + 4] not in (b"Xing", b"Info"):
        return None
    flags = struct.unpack(">I", frame[tag + 4:tag + 8])[0]
    if not flags & 2:  # no byte count (flag 1 is the frame count, which precedes it)
        return None
    at = tag + 8 + (4 if flags & 1 else 0)
    if len(frame) < at + 4:
        return None
    declared = struct.unpack(">I", frame[at:at + 4])[0]
    held = size  # the whole file: some encoders count the ID3v2 tag in, so a cut is only called one past it
    return (declared, held) if declared and held < declared * (1 - MP3_TRUNCATION_SLACK) else None


def header_truncation(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is cut short by what its own header declares (a WAV's data chunk, an MP3's Xing header), in
    words, or None. Raises OSError when the file cannot be read."""
    if (wav := wav_truncation(path)) is not None:
        return f"truncated: header declares {wav[0]} frames, file holds {wav[1]}"
    if (mp3 := mp3_truncation(path)) is not None:
        return (f"truncated: its MP3 (Xing) header declares {mp3[0]} bytes of stream, the file holds {mp3[1]} "
                f"({100 * mp3[1] / mp3[0]:.0f}%)")
    return None


def _libsndfile_problem(err: Exception, path: Path | None = None) -> str:
    if path is not None and (undecodable := undecodable_audio_problem(path)) is not None:
        return undecodable  # "Format not recognised" says less than the container and the conversion
    detail = getattr(err, "error_string", None) or str(err)
    detail = detail.removeprefix("Error : ")  # libsndfile's FLAC messages carry this prefix
    return f"not a readable audio file (libsndfile: {detail.rstrip('.')})"


def load_audio(
    path: str | os.PathLike[str],
    *,
    downmix: bool = False,
    min_seconds: float = 1.0,
    max_seconds: float | None = None,
    start_s: float = 0.0,
    duration_s: float | None = None,
) -> LoadedAudio:
    """Read an audio file as (2, S) float32 at 44.1 kHz, per the policy in the module docstring.

    Args:
        path: any format libsndfile reads (see :data:`AUDIO_EXTENSIONS`); the content decides, not the extension.
        downmix: fold more than 2 channels to stereo instead of refusing them.
        min_seconds: shorter files are refused.
        max_seconds: longer files are refused (checked from the header, before decoding); None for no limit.
        start_s, duration_s: keep only this window of the file (see :func:`load_window`); the length checks
            apply to the whole file.

    Raises:
        AudioError: the file cannot be used; the message names it and says why.
    """
    path = Path(path)
    if max_seconds is not None and max_seconds < min_seconds:
        raise ValueError(f"max_seconds ({max_seconds}) is below min_seconds ({min_seconds})")
    if not path.exists():
        raise AudioError(path, "no such file")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    try:
        if path.stat().st_size == 0:
            raise AudioError(path, "is an empty file (0 bytes)")
        truncated = header_truncation(path)
    except OSError as err:
        raise AudioError(path, f"cannot be read ({err.strerror or err})") from None
    if truncated is not None:
        raise AudioError(path, truncated)

    try:
        info = sf.info(str(path))
    except RuntimeError as err:  # sf.LibsndfileError and its kin
        raise AudioError(path, _libsndfile_problem(err, path)) from None
    rate, channels = int(info.samplerate), int(info.channels)
    check_channels(channels, downmix, path)  # before decoding: a long 6-channel file is not read in vain
    if max_seconds is not None and info.frames > max_seconds * rate:
        raise AudioError(path, f"is {info.frames / rate:.2f} s long; the maximum is {max_seconds:.2f} s")

    try:
        data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    except RuntimeError as err:  # sf.LibsndfileError and its kin
        raise AudioError(path, _libsndfile_problem(err, path)) from None
    frames = data.shape[0]
    if 0 < frames < info.frames and info.format != "MP3":
        raise AudioError(path, f"truncated: header declares {info.frames} frames, file holds {frames}")
    if frames == 0:
        raise AudioError(path, "contains no audio (0 frames)")
    if frames < min_seconds * rate:
        raise AudioError(path, f"is {frames / rate:.2f} s long; the minimum is {min_seconds:.2f} s")
    if max_seconds is not None and frames > max_seconds * rate:
        raise AudioError(path, f"is {frames / rate:.2f} s long; the maximum is {max_seconds:.2f} s")

    if start_s or duration_s is not None:
        data = data[_window_slice(frames, rate, start_s, duration_s, path)]
    # to_stereo_44k also refuses NaN/inf samples, naming their first position
    samples = to_stereo_44k(data, rate, downmix=downmix, name=str(path))
    return LoadedAudio(path=path, samples=samples, source_rate=rate, source_channels=channels, source_frames=frames)


def window_samples(path: str | os.PathLike[str], start_s: float = 0.0, duration_s: float | None = None) -> int:
    """How many 44.1 kHz samples :func:`load_window` gives for this window of ``path``, from the file's header alone
    (no decoding): a window that runs past the file's end is cut there. Raises as :func:`load_window` does for a file
    whose header cannot be read or a window that starts past the end; an MP3's header length is an estimate."""
    path = Path(path)
    try:
        info = sf.info(str(path))
    except RuntimeError as err:
        raise AudioError(path, _libsndfile_problem(err, path)) from None
    window = _window_slice(int(info.frames), int(info.samplerate), start_s, duration_s, path)
    return resampled_length(window.stop - window.start, int(info.samplerate))


def _window_slice(frames: int, rate: int, start_s: float, duration_s: float | None, path: Path) -> slice:
    """Frames [start, start + duration) of a file of ``frames`` frames at ``rate``; the window is cut at the
    file's end (a vocal shorter than its item gives what it has)."""
    if not (math.isfinite(start_s) and start_s >= 0):
        raise ValueError(f"{path}: window start must be a finite number >= 0, got {start_s}")
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"{path}: window duration must be a finite number > 0, got {duration_s}")
    start = round(start_s * rate)
    if start >= frames:
        raise AudioError(path, f"the window starts at {start_s:.2f} s, but the file lasts {frames / rate:.2f} s")
    stop = frames if duration_s is None else min(frames, start + round(duration_s * rate))
    return slice(start, stop)


def sum_tracks(tracks: Sequence[np.ndarray]) -> np.ndarray:
    """The sum of (C, S) tracks of one stem (MoisesDB's lead and backing vocals, MUSDB18's drums + bass + other),
    in float64, over the shortest one's length: a dataset's stems of a song can differ by a few samples."""
    if not tracks:
        raise ValueError("no tracks to sum")
    n = min(t.shape[1] for t in tracks)
    total = np.zeros((tracks[0].shape[0], n), np.float64)
    for t in tracks:
        total += t[:, :n]
    return total


def load_tracks_sum(paths: Sequence[str | os.PathLike[str]], *, downmix: bool = False) -> LoadedAudio:
    """:func:`load_audio` of each track and their :func:`sum_tracks` as one (2, S) float32 file-like result; the
    source fields are the first track's. One track is loaded as it is."""
    loaded = [load_audio(p, downmix=downmix) for p in paths]
    if len(loaded) == 1:
        return loaded[0]
    first = loaded[0]
    return LoadedAudio(Path(first.path).parent, sum_tracks([a.samples for a in loaded]).astype(np.float32),
                       first.source_rate, first.source_channels, first.source_frames)


def load_window(path: str | os.PathLike[str], start_s: float = 0.0, duration_s: float | None = None, *,
                downmix: bool = False, min_seconds: float = 0.1) -> LoadedAudio:
    """An item's window of a file, (2, S) float32 at 44.1 kHz: the one way every model, scorer, anchor and report
    player reads an item's vocal or reference, so that all of them see the same seconds of it.

    The whole file is validated as :func:`load_audio` does (a damaged file is refused even when the damage lies
    outside the window); ``min_seconds`` applies to the file. ``samples`` holds only the window.
    """
    return load_audio(path, downmix=downmix, min_seconds=min_seconds, start_s=start_s, duration_s=duration_s)


def _format_for(path: Path) -> str:
    ext = path.suffix.lower()
    fmt = _FORMAT_BY_EXTENSION.get(ext) or ext.lstrip(".").upper()
    if not ext or fmt not in sf.available_formats():
        raise ValueError(f"{path}: cannot tell the audio format from the extension {ext!r}; use .wav or .flac")
    return fmt


def write_audio(
    path: str | os.PathLike[str], samples: np.ndarray, rate: int = SAMPLE_RATE, subtype: str = "FLOAT"
) -> Path:
    """Write (C, S) float samples to ``path`` atomically; the format comes from the extension.

    The default, 32-bit float WAV, stores any value, so a sum such as vocals + accompaniment above full scale is
    kept intact. Every subtype other than FLOAT and DOUBLE (PCM_16, PCM_24, FLAC, OGG, MP3, ...) can only hold
    [-1, 1], so the samples are **clipped to [-1, 1]** first (explicitly, rather than relying on libsndfile).
    A format that cannot store the subtype (FLOAT in FLAC, say) is a ValueError that names the ones it can.

    Returns:
        ``path`` as a Path.

    Raises:
        ValueError: NaN or infinite samples, a bad shape, rate or subtype, or an unknown extension. Nothing is
            written then, and an error while writing leaves no temp file and any old file at ``path`` untouched.
    """
    path = Path(path)
    samples = np.asarray(samples)
    if samples.ndim != 2 or samples.shape[0] < 1:
        raise ValueError(f"{path}: samples must be (channels, samples), got shape {samples.shape}")
    if samples.shape[0] > MAX_WRITE_CHANNELS:
        raise ValueError(f"{path}: {samples.shape[0]} channels; samples must be (channels, samples), not transposed")
    if not np.issubdtype(samples.dtype, np.floating):
        raise ValueError(f"{path}: samples must be floating point, got dtype {samples.dtype}")
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or rate <= 0:
        raise ValueError(f"{path}: sample rate must be a positive integer, got {rate!r}")
    bad = first_non_finite(samples.T, int(rate))
    if bad is not None:
        raise ValueError(f"{path}: refusing to write {bad}")
    fmt = _format_for(path)
    subtype = subtype.upper()
    if not sf.check_format(fmt, subtype):
        raise ValueError(
            f"{path}: {fmt} cannot store subtype {subtype!r}; use one of {sorted(sf.available_subtypes(fmt))}"
        )
    frames = samples.T  # soundfile wants (frames, channels)
    if subtype not in _FLOAT_SUBTYPES:
        frames = np.clip(frames, -1.0, 1.0)

    def write(tmp: str) -> None:
        # the temp name ends in .tmp, so the format must be given rather than guessed from the name
        try:
            sf.write(tmp, frames, int(rate), subtype=subtype, format=fmt)
        except RuntimeError as err:  # libsndfile says "System error." for a full disk, without its errno
            if no_room_for(path.parent, frames.nbytes):
                raise DiskFull(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from err
            raise

    return atomic_write(path, write)
