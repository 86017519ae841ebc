"""``samuel prepare``: a folder of songs -> paired Stable Audio Open latents that :mod:`samuel.data` reads.

Layout of SRC: one folder per song (found at any depth; a folder that directly holds audio files is a song and is
not searched further), or SRC itself is one song folder. Stems are recognised by file name without extension,
case-insensitively, for any extension in :data:`samuel.audio.AUDIO_EXTENSIONS` (hidden files such as macOS
``._vocals.wav`` are ignored; ``-`` and spaces count as ``_``):

- vocals: ``vocals``, ``vocal``, ``voice``
- accompaniment: ``accompaniment``, ``accomp``, ``instrumental``, ``no_vocals`` (Demucs two-stem output), ``inst``
- MUSDB18-HQ folders (``mixture, drums, bass, other, vocals``) have no accompaniment file: the accompaniment is
  then the sum of ``drums``, ``bass`` and ``other`` (of those present). An accompaniment file, where there is one,
  wins over the parts (summing both would count the instruments twice).
- mixture: ``mixture``, ``mix``. A song without both a vocal and an accompaniment needs ``separate=True``
  (Demucs splits the mixture); otherwise it is skipped with a reason.

A folder that holds no audio itself but subfolders of audio named by stem is read by :func:`stem_folder_songs`:
one folder per stem of one song (MoisesDB: ``song/vocals/*.wav``, ``song/drums/*.wav``, ``song/guitar/*.wav``:
the vocal folder's tracks are summed into the vocal, every other folder's into the accompaniment), or parallel
folders of many songs paired by file name (``SRC/vocals/X.wav`` beside ``SRC/accompaniment/X.wav``). Audio in a
container libsndfile cannot decode (MUSDB18's ``.stem.mp4``, ``.m4a``) makes its song a problem or a skip that
names the conversion.

Per song: stems are loaded as 44.1 kHz stereo, accompaniment parts summed, vocal and accompaniment cut to the
shorter of the two, and non-overlapping 1024-frame (47.55 s) chunks taken with the tail dropped (the paper's
policy, :func:`samuel.chunking.training_chunk_starts`). Both are encoded with the codec and written as one shard,
``DST/shards/<NNNN>-<slug>/``. ``DST/manifest.json`` (``samuel-latents/1``) is rewritten atomically after every
song, so an interrupted run keeps what it finished, and a rerun skips songs whose shard is complete and whose
source files (size and mtime) and options are unchanged, with the same codec.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from samuel import __version__
from samuel.atomic import DiskFull, atomic_write
from samuel.audio import AUDIO_EXTENSIONS, UNDECODABLE_AUDIO_EXTENSIONS, load_audio, undecodable_audio_problem
from samuel.chunking import CHUNK_FRAMES, CHUNK_SAMPLES, HOP_LENGTH, SAMPLE_RATE, training_chunk_starts
from samuel.data import MANIFEST_FILE, MANIFEST_FORMAT, DataError, open_pair, write_latent_pair
from samuel.stem_names import (
    ACCOMP_NAMES,
    INSTRUMENT_FOLDER_NAMES,
    PART_NAMES,
    VOCAL_NAMES,
    normal_name,
    parallel_stem_folders,
    stem_folder_roles,
    stem_name_role,
)

if TYPE_CHECKING:
    from samuel.codec import OobleckCodec

LENGTH_WARNING_SECONDS = 1.0  # stems that differ by more than this are probably not from the same take
DEMUCS_MODEL = "htdemucs"
DEMUCS_MISSING = (
    "Demucs is not installed, so --separate cannot split mixtures into vocals and accompaniment. "
    "Install it with: pip install 'samuel-bench[demucs]'. Note that Demucs needs torchaudio, which this "
    "project's CPU package registry cannot provide (its torchaudio builds are CUDA-only): separate on a machine "
    "where torchaudio installs, or put vocal and accompaniment stems in the song folders instead."
)


class PrepareError(RuntimeError):
    """A problem that stops the whole run (bad SRC, Demucs missing); per-song problems never raise."""


SUMMED_STEMS_NOTE = "accompaniment = sum of"  # how a note that is not a warning begins (the CLI does not repeat it)
SUMMED_VOCALS_NOTE = "vocal = sum of"


class SongSkipped(Exception):
    """A song that cannot yield training pairs for a reason that is not an error (too short, no stems)."""


@dataclass(frozen=True)
class SongStems:
    """The files of one song, by role.

    ``problem`` is set (and the song reported as an error) when the folder is ambiguous, e.g. two vocal files;
    ``ignored`` lists the audio files whose names matched no role. Both are additions to the brief's interface.
    """

    name: str
    folder: Path
    vocals: Path | None
    accompaniment: tuple[Path, ...]
    mixture: Path | None
    problem: str | None = None
    ignored: tuple[Path, ...] = ()
    extra_vocals: tuple[Path, ...] = ()  # more vocal tracks summed with ``vocals`` (stem folders: lead + backing)

    @property
    def all_vocals(self) -> tuple[Path, ...]:
        return ((self.vocals,) if self.vocals is not None else ()) + self.extra_vocals

    def label(self, path: Path) -> str:
        """A file's name as the song's notes give it: relative to the song folder (``drums/3f2a.wav``)."""
        try:
            return path.relative_to(self.folder).as_posix()
        except ValueError:
            return path.name

    @property
    def has_stems(self) -> bool:
        return self.vocals is not None and bool(self.accompaniment)


# ------------------------------------------------------------------------------------------- discovery (pure)


def stem_role(path: Path) -> str | None:
    """``'vocals' | 'accompaniment' | 'part' | 'mixture'`` for a recognised stem file name, else None."""
    if path.suffix.lower() not in AUDIO_EXTENSIONS and path.suffix.lower() not in UNDECODABLE_AUDIO_EXTENSIONS:
        return None
    return stem_name_role(path.stem)


def song_from_files(name: str, folder: Path, files: Sequence[Path]) -> SongStems:
    """Assign the audio files of one folder to roles (no I/O)."""
    by_role: dict[str, list[Path]] = {"vocals": [], "accompaniment": [], "part": [], "mixture": []}
    ignored = []
    for path in sorted(files, key=lambda p: p.name):
        role = stem_role(path)
        if role is None:
            ignored.append(path)
        else:
            by_role[role].append(path)
    # A stem in a format libsndfile cannot decode is a problem of the song, unless a decodable file stands for it
    # (vocals.wav beside vocals.m4a; for parts, one of the same instrument): then it is only ignored.
    unusable = []
    for role, paths in by_role.items():
        decodable = [p for p in paths if undecodable_audio_problem(p) is None]
        for path in paths:
            if path in decodable:
                continue
            if any(role != "part" or q.stem.strip().lower() == path.stem.strip().lower() for q in decodable):
                ignored.append(path)
            else:
                unusable.append(f"{path.name} {undecodable_audio_problem(path)}")
        by_role[role] = decodable
    problems = []
    for role in ("vocals", "accompaniment", "mixture"):
        if len(by_role[role]) > 1:
            problems.append(f"{len(by_role[role])} {role} files ({', '.join(p.name for p in by_role[role])})")
    parts = by_role["part"]
    part_names = [p.stem.strip().lower() for p in parts]
    if len(set(part_names)) != len(part_names):
        problems.append(f"repeated instrument parts ({', '.join(p.name for p in parts)})")
    # An accompaniment file is the full instrumental; adding the parts as well would count them twice.
    accompaniment = tuple(by_role["accompaniment"][:1]) or tuple(parts)
    return SongStems(
        name=name,
        folder=folder,
        vocals=by_role["vocals"][0] if by_role["vocals"] else None,
        accompaniment=accompaniment,
        mixture=by_role["mixture"][0] if by_role["mixture"] else None,
        problem=("; ".join([f"{folder}: ambiguous stems: {'; '.join(problems)}"] * bool(problems)
                           + [f"{folder}/{u}" for u in unusable]) or None),
        ignored=tuple(sorted(ignored, key=lambda p: p.name)),
    )


def slugify(name: str, max_len: int = 48) -> str:
    """A file-system-safe, lower-case form of a song name for shard directories."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:max_len].strip("-") or "song"


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _audio_in(folder: Path) -> list[Path]:
    """The audio files directly in ``folder`` (decodable or not), hidden ones skipped, sorted by name."""
    return sorted((p for p in folder.iterdir() if _visible(p) and p.is_file()
                   and (p.suffix.lower() in AUDIO_EXTENSIONS or p.suffix.lower() in UNDECODABLE_AUDIO_EXTENSIONS)),
                  key=lambda p: p.name)


def stem_folder_songs(name: str, folder: Path, tracks: dict[Path, list[Path]]) -> list[SongStems]:
    """Songs of a folder whose audio lies in one subfolder per stem (``tracks``: subfolder -> its audio files;
    pure, no I/O); [] when the subfolders are not stems (no vocal-named one, or nothing beside it). Two layouts:

    - stem folders, one song (MoisesDB): ``song/vocals/*.wav``, ``song/drums/*.wav``, ``song/guitar/*.wav``, ...;
      the vocal is the sum of the vocal folder's tracks (lead and backing), the accompaniment the sum of every other
      folder's (a ``mixture`` folder excepted: it holds the vocal too);
    - parallel folders, a song per file name: ``src/vocals/X.wav`` beside ``src/accompaniment/X.wav`` (or
      ``src/drums/X.wav``, ...): told apart by file names that repeat across the folders.
    """
    vocal_dirs, other_dirs = stem_folder_roles(tracks)
    if not vocal_dirs and other_dirs and all(normal_name(d.name) in INSTRUMENT_FOLDER_NAMES for d in other_dirs):
        # an instrumental song of a stem-folder dataset: one skipped song, not one per instrument folder
        return [song_from_roles(name or folder.name, folder, [], tuple(p for d in other_dirs for p in tracks[d]))]
    if len(vocal_dirs) != 1 or not other_dirs:
        return []
    (vocal_dir,) = vocal_dirs
    if parallel_stem_folders(tracks, vocal_dir, other_dirs):
        songs = []
        for vocal in tracks[vocal_dir]:
            accompaniment = tuple(p for d in other_dirs for p in tracks[d] if p.stem.lower() == vocal.stem.lower())
            song = song_from_roles(f"{name}/{vocal.stem}" if name else vocal.stem, folder, [vocal], accompaniment)
            songs.append(song)
        return songs
    accompaniment = tuple(p for d in other_dirs for p in tracks[d])
    return [song_from_roles(name or folder.name, folder, tracks[vocal_dir], accompaniment)]


def song_from_roles(name: str, folder: Path, vocals: Sequence[Path], accompaniment: Sequence[Path]) -> SongStems:
    """A song whose files' roles are known (from their folders); a track libsndfile cannot decode is its problem."""
    unusable = [f"{p.relative_to(folder).as_posix()} {undecodable_audio_problem(p)}"
                for p in (*vocals, *accompaniment) if undecodable_audio_problem(p) is not None]
    return SongStems(name=name, folder=folder, vocals=vocals[0] if vocals else None,
                     accompaniment=tuple(accompaniment), mixture=None,
                     problem="; ".join(f"{folder}/{u}" for u in unusable) or None, extra_vocals=tuple(vocals[1:]))


def discover_songs(src: str | os.PathLike[str]) -> list[SongStems]:
    """Every song folder under ``src`` (or ``src`` itself), sorted by name (the path relative to ``src``)."""
    src = Path(src)
    if not src.is_dir():
        raise PrepareError(f"{src}: not a directory of songs")
    songs: list[SongStems] = []
    seen: set[Path] = set()  # real paths, so a symlink loop is walked once

    def visit(folder: Path) -> None:
        real = folder.resolve()
        if real in seen:
            return
        seen.add(real)
        entries = sorted((p for p in folder.iterdir() if _visible(p)), key=lambda p: p.name)
        audio = _audio_in(folder)
        name = folder.name if folder == src else folder.relative_to(src).as_posix()
        if audio:
            songs.append(song_from_files(name, folder, audio))
            return
        tracks = {sub: files for sub in entries if sub.is_dir() and (files := _audio_in(sub))}
        if found := stem_folder_songs("" if folder == src else name, folder, tracks):
            songs.extend(found)
            return
        for sub in entries:
            if sub.is_dir():
                visit(sub)

    visit(src)
    return sorted(songs, key=lambda s: s.name)


# -------------------------------------------------------------------------------------------------- separation


def require_demucs() -> None:
    """Fail with one clear message when Demucs cannot be imported."""
    if importlib.util.find_spec("demucs") is None:
        raise PrepareError(DEMUCS_MISSING)


def demucs_command(mixture: Path, out_dir: Path) -> list[str]:
    return [sys.executable, "-m", "demucs.separate", "--two-stems", "vocals", "-n", DEMUCS_MODEL,
            "-o", str(out_dir), str(mixture)]


def separate_with_demucs(mixture: Path, out_dir: Path) -> tuple[Path, Path]:
    """Run Demucs (two stems) on ``mixture``; returns the ``(vocals.wav, no_vocals.wav)`` it wrote."""
    proc = subprocess.run(demucs_command(mixture, out_dir), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"{mixture}: Demucs failed (exit {proc.returncode}): {' | '.join(tail)}")
    track = out_dir / DEMUCS_MODEL / mixture.stem  # Demucs names the track folder after the file, less extension
    vocals, no_vocals = track / "vocals.wav", track / "no_vocals.wav"
    for path in (vocals, no_vocals):
        if not path.is_file():
            raise RuntimeError(f"{mixture}: Demucs exited cleanly but did not write {path}")
    return vocals, no_vocals


# --------------------------------------------------------------------------------------------------- one song


def fingerprint(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Path, size and mtime of each source file: what a rerun compares to decide a shard is current."""
    out = []
    for path in paths:
        st = path.stat()
        out.append({"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return out


def planned_sources(song: SongStems, separate: bool) -> list[Path] | None:
    """The files a song will be made from, or None when it will be skipped or fail before reading any."""
    if song.problem is not None:
        return None
    if song.has_stems:
        return [*song.all_vocals, *song.accompaniment]
    if song.mixture is not None and separate:
        return [song.mixture]
    return None


def skip_reason(song: SongStems) -> str:
    """Why a song without a usable vocal + accompaniment pair (and no separation) is skipped."""
    found = [song.label(p) for p in (*song.all_vocals, *song.accompaniment, song.mixture) if p is not None]
    found += [song.label(p) for p in song.ignored]
    undecodable = [p for p in song.ignored if undecodable_audio_problem(p) is not None]
    if undecodable:  # e.g. MUSDB18's .stem.mp4 files: the way out is a conversion, not a renaming
        return (f"no vocal + accompaniment pair ({', '.join(found)}): {undecodable[0].name} "
                f"{undecodable_audio_problem(undecodable[0])}")
    if song.mixture is not None:
        return (f"no vocal + accompaniment pair, only a mixture ({', '.join(found)}); rerun with --separate to "
                "split it with Demucs")
    return (f"no vocal + accompaniment pair ({', '.join(found) or 'no audio'}); expected file names like "
            f"{'/'.join(VOCAL_NAMES)} and {'/'.join(ACCOMP_NAMES)} (or {'+'.join(PART_NAMES)})")


def _sum_parts(parts: list[np.ndarray], names: list[str], notes: list[str], what: str = "accompaniment") -> np.ndarray:
    lengths = [p.shape[1] for p in parts]
    if max(lengths) - min(lengths) > LENGTH_WARNING_SECONDS * SAMPLE_RATE:
        notes.append(f"{what} parts differ in length ({', '.join(names)}: "
                     f"{', '.join(f'{n / SAMPLE_RATE:.2f} s' for n in lengths)}); summed over the shortest")
    n = min(lengths)
    total = parts[0][:, :n].copy()
    for part in parts[1:]:
        total += part[:, :n]
    return total


def encode_chunks(codec: OobleckCodec, audio: np.ndarray, starts: Sequence[int], batch_size: int) -> np.ndarray:
    """Encode ``audio[:, s : s + CHUNK_SAMPLES]`` for each start, ``batch_size`` at a time -> (n, C, 1024) float32."""
    channels = codec.latent_channels
    out = []
    for b in range(0, len(starts), batch_size):
        batch = np.stack([audio[:, s : s + CHUNK_SAMPLES] for s in starts[b : b + batch_size]])
        with torch.inference_mode():
            latents = codec.encode(torch.from_numpy(batch))
        latents = latents.detach().to("cpu", torch.float32).numpy()
        expected = (len(batch), channels, CHUNK_FRAMES)
        if latents.shape != expected:
            raise RuntimeError(f"codec returned latents {latents.shape}, expected {expected}")
        if not np.isfinite(latents).all():
            raise RuntimeError("codec returned NaN or inf latents")
        out.append(latents)
    return np.concatenate(out)


def _load_song(song: SongStems, separate: bool, downmix: bool, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(vocal, accompaniment) as 44.1 kHz stereo, not yet aligned."""
    if song.problem is not None:
        raise RuntimeError(song.problem)
    if song.has_stems:
        voices = [load_audio(p, downmix=downmix, min_seconds=0).samples for p in song.all_vocals]
        vocal_names = [song.label(p) for p in song.all_vocals]
        if len(voices) > 1:
            notes.append(f"{SUMMED_VOCALS_NOTE} {', '.join(vocal_names)} (stem folders)")
        parts = [load_audio(p, downmix=downmix, min_seconds=0).samples for p in song.accompaniment]
        names = [song.label(p) for p in song.accompaniment]
        if len(parts) > 1:
            style = "stem folders" if song.accompaniment[0].parent != song.folder else "MUSDB-style"
            notes.append(f"{SUMMED_STEMS_NOTE} {', '.join(names)} ({style})")
        return _sum_parts(voices, vocal_names, notes, "vocal"), _sum_parts(parts, names, notes)
    if song.mixture is not None and separate:
        with tempfile.TemporaryDirectory(prefix="samuel-demucs-") as tmp:
            vocals_path, no_vocals_path = separate_with_demucs(song.mixture, Path(tmp))
            vocal = load_audio(vocals_path, downmix=downmix, min_seconds=0).samples
            accomp = load_audio(no_vocals_path, downmix=downmix, min_seconds=0).samples
        notes.append(f"separated from {song.mixture.name} with Demucs ({DEMUCS_MODEL}, two stems)")
        return vocal, accomp
    raise SongSkipped(skip_reason(song))


def prepare_song(
    song: SongStems, dst: Path, shard: str, codec: OobleckCodec, *, separate: bool, downmix: bool, batch_size: int
) -> dict[str, Any]:
    """Make one song's shard; returns its manifest entry. Never raises for a problem with the song itself."""
    sources = planned_sources(song, separate) or []
    entry: dict[str, Any] = {"name": song.name, "folder": str(song.folder), "status": "ok", "n_chunks": 0,
                             "shard": None, "seconds": 0.0}
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # e.g. load_audio's upsampling warning, kept with the song it concerns
        try:
            entry["sources"] = fingerprint(sources)
            vocal, accomp = _load_song(song, separate, downmix, notes)
            if abs(vocal.shape[1] - accomp.shape[1]) > LENGTH_WARNING_SECONDS * SAMPLE_RATE:
                notes.append(f"vocal is {vocal.shape[1] / SAMPLE_RATE:.2f} s but accompaniment is "
                             f"{accomp.shape[1] / SAMPLE_RATE:.2f} s; both cut to the shorter")
            n = min(vocal.shape[1], accomp.shape[1])
            entry["seconds"] = round(n / SAMPLE_RATE, 3)
            starts = training_chunk_starts(n)
            if not starts:
                raise SongSkipped(f"{n / SAMPLE_RATE:.2f} s is shorter than one training chunk "
                                  f"({CHUNK_SAMPLES / SAMPLE_RATE:.2f} s); tails are dropped (the paper's policy)")
            vocal_latents = encode_chunks(codec, vocal, starts, batch_size)
            accomp_latents = encode_chunks(codec, accomp, starts, batch_size)
            write_latent_pair(dst / shard, vocal_latents, accomp_latents)
            entry.update(n_chunks=len(starts), shard=shard)
        except SongSkipped as why:
            entry.update(status="skipped", reason=str(why))
        except DiskFull:
            raise  # no song is at fault: the command stops and says so (samuel.cli)
        except Exception as err:  # one bad song never sinks the run
            message = str(err) if isinstance(err, ValueError | RuntimeError) else f"{type(err).__name__}: {err}"
            if not message.startswith(str(song.folder)):  # AudioError already names its file; others get the song
                message = f"{song.folder}: {message}"
            entry.update(status="error", message=message, n_chunks=0, shard=None)
    entry.setdefault("sources", [])
    entry["separated"] = bool(separate and not song.has_stems and song.mixture is not None)
    entry["downmix"] = downmix
    entry["notes"] = list(dict.fromkeys(notes + [str(w.message) for w in caught]))  # each once, in order
    return entry


# ----------------------------------------------------------------------------------------------------- the run


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def codec_identity(provenance: Any) -> Any:
    """What must match for latents to be interchangeable: the weights' hash, config and dtype where the codec
    reports a hash (so the same weights given by another path still count as the same codec), else everything."""
    if isinstance(provenance, dict) and provenance.get("weights_sha256"):
        return {k: provenance.get(k) for k in ("weights_sha256", "config", "dtype", "hop_length", "sample_rate")}
    return provenance


def _shard_is_complete(dst: Path, entry: dict[str, Any], channels: int) -> bool:
    if not entry.get("shard") or not entry.get("n_chunks"):
        return False
    try:
        vocal, _ = open_pair(dst / entry["shard"], channels)
    except DataError:
        return False
    return vocal.shape == (entry["n_chunks"], channels, CHUNK_FRAMES)


def _previous_entries(dst: Path, header: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Previous 'ok' entries by song name, if DST holds a manifest made with the same codec and chunking; else
    none, and why an existing manifest was not used (None when there was none)."""
    path = dst / MANIFEST_FILE
    if not path.exists():
        return {}, None
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return {}, f"{path} is unreadable ({type(err).__name__}: {err})"
    keys = ("format", "chunk_frames", "hop_length", "sample_rate", "latent_channels")
    if not isinstance(previous, dict):
        return {}, f"{path} is not a JSON object"
    changed = [k for k in keys if previous.get(k) != header[k]]
    if changed:
        return {}, f"{path} was made with another {', '.join(changed)}"
    if codec_identity(previous.get("codec")) != codec_identity(header["codec"]):
        # another codec's latents are not interchangeable: recompute everything
        return {}, f"{path} was made with another VAE ({_codec_words(previous.get('codec'))})"
    songs = previous.get("songs", [])
    return {s["name"]: s for s in songs if isinstance(s, dict) and s.get("status") == "ok"}, None


def _codec_words(codec: Any) -> str:
    if not isinstance(codec, dict):
        return "not recorded"
    digest = codec.get("weights_sha256")
    return f"{codec.get('source')}, sha256 {str(digest)[:12]}" if digest else str(codec.get("source"))


def multichannel_files(paths: Sequence[Path]) -> list[str]:
    """``"name (N channels)"`` for each file of more than 2 channels among ``paths`` (from the headers): the files
    ``--downmix`` folds to stereo."""
    import soundfile as sf

    channels = {path: sf.info(str(path)).channels for path in paths}
    return [f"{path.name} ({n} channels)" for path, n in channels.items() if n > 2]


def _stale_reason(entry: dict[str, Any] | None, song: SongStems, dst: Path, separate: bool, downmix: bool,
                  channels: int) -> str | None:
    """None when the previous run's entry for ``song`` can be kept as it is; else why it is redone."""
    if entry is None:
        return "not encoded before"
    sources = planned_sources(song, separate)
    if sources is None:
        return "its files changed since (it is now skipped or fails)"
    try:
        if entry.get("sources") != fingerprint(sources):
            return "its source files changed since (size or modification time)"
        # --downmix only admits files of more than 2 channels and leaves mono and stereo as they are: a song kept
        # from a run without it had none, so adding it changes nothing; dropping it refuses a song it folded
        folded = multichannel_files(sources) if entry.get("downmix") and not downmix else []
    except (OSError, RuntimeError) as err:  # soundfile's errors are RuntimeErrors
        return f"a source cannot be read now ({err})"
    if folded:
        return f"--downmix folded {', '.join(folded)} to stereo before; without it such a file is refused"
    if not _shard_is_complete(dst, entry, channels):
        return f"its shard {entry.get('shard')} is missing or incomplete"
    return None


def _totals(songs: list[dict[str, Any]], n_songs: int) -> dict[str, Any]:
    chunks = sum(s["n_chunks"] for s in songs if s["status"] == "ok")
    return {
        "songs": n_songs,
        "ok": sum(s["status"] == "ok" for s in songs),
        "skipped": sum(s["status"] == "skipped" for s in songs),
        "error": sum(s["status"] == "error" for s in songs),
        "chunks": chunks,
        "hours": round(chunks * CHUNK_SAMPLES / SAMPLE_RATE / 3600, 4),
    }


def prepare(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    codec: OobleckCodec,
    *,
    separate: bool = False,
    downmix: bool = False,
    batch_size: int = 4,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Encode every song under ``src`` into paired latent shards under ``dst``; returns the manifest written, plus
    ``"this_run"`` (not in the file): the songs reused from an earlier run and those redone, with why.

    Args:
        src: a folder of song folders, or one song folder (layout in the module docstring).
        dst: output directory; ``dst/manifest.json`` and ``dst/shards/``. An existing run there is resumed.
        codec: the Stable Audio Open VAE (or a twin with the same hop), used through ``encode`` and ``provenance``.
        separate: split songs that only have a mixture with Demucs (an optional dependency).
        downmix: fold files with more than 2 channels to stereo instead of reporting them as errors.
        batch_size: chunks per ``codec.encode`` call.
        progress: show a tqdm bar over songs on stderr.
        log: told why an earlier run's manifest or a song's earlier shard is not reused (they are redone).

    Raises:
        PrepareError: ``src`` is not a directory or holds no audio, or ``separate`` and Demucs is not installed.
            Problems with a single song never raise: they are recorded in its manifest entry.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if separate:
        require_demucs()
    src, dst = Path(src).resolve(), Path(dst).resolve()
    songs = discover_songs(src)
    if not songs:
        raise PrepareError(f"{src}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) found")
    channels = codec.latent_channels
    header: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "samuel_version": __version__,
        "created": _now(),
        "complete": False,
        "src": str(src),
        "codec": _jsonable(codec.provenance()),
        "sample_rate": SAMPLE_RATE,
        "hop_length": HOP_LENGTH,
        "chunk_frames": CHUNK_FRAMES,
        "latent_channels": channels,
        "chunking": "non-overlapping chunks, tail shorter than one chunk dropped (the paper's policy)",
        "options": {"separate": separate, "downmix": downmix},
    }
    say = log or (lambda _: None)
    previous, discarded = _previous_entries(dst, header)
    if discarded is not None:
        say(f"prepare: not reusing the earlier run: {discarded}; every song is encoded again")
    stale = {i: _stale_reason(previous.get(s.name), s, dst, separate, downmix, channels) for i, s in enumerate(songs)}
    reused = {i: previous[s.name] for i, s in enumerate(songs) if stale[i] is None}
    redone = {songs[i].name: why for i, why in stale.items() if why is not None and songs[i].name in previous}
    for name, why in redone.items():
        say(f"prepare: redo {name}: {why}")
    taken = {e["shard"] for e in reused.values()}  # a new shard must not land on a kept one

    def shard_for(i: int, song: SongStems) -> str:
        base = candidate = f"shards/{i:04d}-{slugify(song.name)}"
        k = 2
        while candidate in taken:
            candidate, k = f"{base}-{k}", k + 1
        taken.add(candidate)
        return candidate

    done: dict[int, dict[str, Any]] = {}

    def write_manifest(complete: bool) -> dict[str, Any]:
        # Songs not reached yet keep their reusable entries, so an interruption loses nothing already encoded;
        # stale entries are never listed, so a reader never sees a shard that is being rewritten.
        entries = [done.get(i, reused.get(i)) for i in range(len(songs))]
        listed = [e for e in entries if e is not None]
        manifest = {**header, "complete": complete, "songs": listed, "totals": _totals(listed, len(songs))}
        text = json.dumps(manifest, indent=2) + "\n"
        atomic_write(dst / MANIFEST_FILE, lambda tmp: Path(tmp).write_text(text))
        return manifest

    write_manifest(complete=False)
    bar = tqdm(songs, desc="prepare", unit="song", file=sys.stderr, disable=not progress)
    for i, song in enumerate(bar):
        bar.set_postfix_str(song.name[-40:], refresh=False)
        if i in reused:
            done[i] = reused[i]
        else:
            done[i] = prepare_song(song, dst, shard_for(i, song), codec, separate=separate, downmix=downmix,
                                   batch_size=batch_size)
        write_manifest(complete=False)
    bar.close()
    manifest = write_manifest(complete=True)
    return {**manifest, "this_run": {"reused": [songs[i].name for i in sorted(reused)], "redone": redone}}
