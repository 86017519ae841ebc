"""The run folder: one class owns every path under ``--out``.

    DIR/run.lock                            exclusive lock of the run (held while any pass writes)
    DIR/manifest.json                       the N matched items
    DIR/inputs/                             the embedded synthetic set, when no --vocals was given
    DIR/samples/<model>/<item>__<sid>.flac  one output per (model, item), 24-bit FLAC; `.random` before the suffix
                                            for random weights; `.wav` (32-bit float) for an output beyond full scale
    DIR/samples/<model>/<item>__<sid>.json  its sidecar (written after the audio, with the audio's sha256)
    DIR/records/<model>.rank<R>.jsonl       one line per item and attempt (ok / skipped / error)
    DIR/timing/<model>.rank<R>.json         the timing protocol's per-item figures
    DIR/results.json                        merged results with provenance (rank 0)
    DIR/scores/<model>/<item>__<sid>.json   one clip's metric groups
    DIR/cache/embeddings/                   content-addressed embeddings
    DIR/scores.json                         the score pass's summary
    DIR/tables/, DIR/report.html            rendered tables and the HTML report
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.manifest import Manifest, ManifestError, safe_name
from samuel.atomic import atomic_write
from samuel.hashing import file_sha256

MANIFEST_NAME = "manifest.json"
RESULTS_NAME = "results.json"
SCORES_NAME = "scores.json"
LOCK_NAME = "run.lock"
SIDECAR_FORMAT = "samuel-bench-sample/2"
# How a sample is stored, by its peak: 24-bit FLAC (lossless for float32 audio within [-1, 1], about half a float
# WAV's size) when it fits, else 32-bit float WAV, which keeps values beyond full scale: a model's output is scored
# as it was produced, never clipped by our storage. (suffix, soundfile subtype)
WITHIN_FULL_SCALE = (".flac", "PCM_24")
BEYOND_FULL_SCALE = (".wav", "FLOAT")
SAMPLE_SUFFIXES = (WITHIN_FULL_SCALE[0], BEYOND_FULL_SCALE[0])


def sample_storage(peak_abs: float) -> tuple[str, str]:
    """(suffix, subtype) a sample whose largest absolute value is ``peak_abs`` is stored as."""
    return WITHIN_FULL_SCALE if peak_abs <= 1.0 else BEYOND_FULL_SCALE
RECORD_FORMAT = "samuel-bench-record/1"


class RunFolderError(ValueError):
    """The run folder cannot be used (not a folder, not writable, held by another run); names the folder."""


class RunFolderLocked(RunFolderError):
    """Another process holds the run folder's lock."""


class RunFolder:
    """Every path of one run folder (see the module docstring); reading and writing records goes through here."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- paths ------------------------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_NAME

    @property
    def inputs_dir(self) -> Path:
        return self.root / "inputs"

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_NAME

    @property
    def results_path(self) -> Path:
        return self.root / RESULTS_NAME

    @property
    def scores_path(self) -> Path:
        return self.root / SCORES_NAME

    @property
    def tables_dir(self) -> Path:
        return self.root / "tables"

    @property
    def report_path(self) -> Path:
        return self.root / "report.html"

    @property
    def embeddings_dir(self) -> Path:
        return self.root / "cache" / "embeddings"

    def samples_dir(self, model: str) -> Path:
        return self.root / "samples" / safe_name(model)

    def sample_paths(self, model: str, item_id: str, sample_id: str, random_weights: bool,
                     suffix: str = WITHIN_FULL_SCALE[0]) -> tuple[Path, Path]:
        """(audio, sidecar) of one sample, its audio stored with ``suffix`` (:func:`sample_storage`)."""
        stem = f"{item_id}__{sample_id}{'.random' if random_weights else ''}"
        folder = self.samples_dir(model)
        return folder / f"{stem}{suffix}", folder / f"{stem}.json"

    def sample_candidates(self, model: str, item_id: str, sample_id: str, random_weights: bool) -> list[Path]:
        """Every file one sample may own: its audio in each storage, and its sidecar."""
        paths = [self.sample_paths(model, item_id, sample_id, random_weights, suffix) for suffix in SAMPLE_SUFFIXES]
        return [audio for audio, _ in paths] + [paths[0][1]]

    def sample_audio(self, model: str, item_id: str, sample_id: str, random_weights: bool) -> Path:
        """The audio file of a sample, in whichever storage it was written (FLAC when neither exists)."""
        candidates = self.sample_candidates(model, item_id, sample_id, random_weights)[:-1]
        return next((p for p in candidates if p.exists()), candidates[0])

    def record_audio(self, record: SampleRecord) -> Path:
        """The audio file a finished sample's sidecar names."""
        return self.samples_dir(record.model) / record.audio

    def records_path(self, model: str, rank: int) -> Path:
        return self.root / "records" / f"{safe_name(model)}.rank{rank}.jsonl"

    def timing_path(self, model: str, rank: int) -> Path:
        return self.root / "timing" / f"{safe_name(model)}.rank{rank}.json"

    def clip_record_path(self, model: str, item_id: str, sample_id: str) -> Path:
        return self.root / "scores" / safe_name(model) / f"{item_id}__{sample_id}.json"

    # -- the folder itself and its lock -----------------------------------------------------------------------
    def lies_inside(self, folder: Path) -> bool:
        """Whether this run folder is ``folder`` or inside it: an input folder whose files the next run would read
        back, the run's own samples among them."""
        out, folder = self.root.resolve(), folder.resolve()
        return out == folder or folder in out.parents

    def ensure_writable(self) -> None:
        """Create the folder if needed; a file in its place or a folder we cannot write is a RunFolderError."""
        if self.root.exists() and not self.root.is_dir():
            raise RunFolderError(f"--out {self.root}: is a file, not a folder; choose another --out")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RunFolderError(f"--out {self.root}: cannot create the folder ({err.strerror or err})") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise RunFolderError(f"--out {self.root}: the folder is not writable by this user; choose another --out")

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's exclusive lock (flock on DIR/run.lock, released when the process ends, even on kill -9).
        A second run into the same folder is refused at once with the holder's pid, instead of doing the same
        work twice and storing timings measured under contention."""
        self.ensure_writable()
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise RunFolderError(f"{self.lock_path}: cannot open the run lock ({err.strerror or err})") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                raise RunFolderLocked(f"{self.root}: another samuel-eval is running in this folder ({holder}); "
                                      "wait for it to finish or choose another --out") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    # -- the manifest -----------------------------------------------------------------------------------------
    def read_manifest(self) -> Manifest:
        """The stored manifest, validated (ManifestError naming the file when torn or foreign)."""
        return Manifest.read(self.manifest_path)

    def stored_manifest(self) -> tuple[Manifest | None, str | None]:
        """(the stored manifest, None), (None, None) when there is none, or (None, why) when it is damaged."""
        if not self.manifest_path.exists():
            return None, None
        try:
            return self.read_manifest(), None
        except ManifestError as err:
            return None, str(err)

    def write_manifest(self, manifest: Manifest) -> Path:
        return manifest.write(self.manifest_path)

    # -- JSON documents (results, scores) ---------------------------------------------------------------------
    def write_json(self, path: Path, data: Any) -> Path:
        text = json.dumps(data, indent=1, default=_json_default, allow_nan=True) + "\n"
        return atomic_write(path, lambda tmp: Path(tmp).write_text(text))

    def read_json(self, path: Path, fmt_prefix: str) -> dict[str, Any]:
        """A JSON document whose ``format`` starts with ``fmt_prefix``; ValueError naming the file otherwise."""
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: unreadable ({type(err).__name__}: {err})") from None
        if not isinstance(data, dict) or not str(data.get("format", "")).startswith(fmt_prefix):
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"{path}: not a {fmt_prefix.rstrip('/')} file (format {got!r})")
        return data

    # -- sample sidecars --------------------------------------------------------------------------------------
    def write_sidecar(self, sidecar: Path, record: SampleRecord) -> None:
        self.write_json(sidecar, record.to_dict())

    def read_sample(self, model: str, item_id: str, sample_id: str, random_weights: bool) -> SampleRecord:
        """The finished sample with this id, validated: the sidecar parses, is of this format, names this item
        and sample, and the audio beside it has the recorded size and sha256. Raises :class:`DamagedFile` (the
        sample must be redone, and the reason is reported) or FileNotFoundError (never written)."""
        audio, sidecar = self.sample_paths(model, item_id, sample_id, random_weights)
        if not sidecar.exists():
            for orphan in self.sample_candidates(model, item_id, sample_id, random_weights)[:-1]:
                if orphan.exists():
                    raise DamagedFile(orphan, "audio without its sidecar (interrupted while writing)")
            raise FileNotFoundError(sidecar)
        try:
            data = json.loads(sidecar.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DamagedFile(sidecar, f"unreadable sidecar ({type(err).__name__})") from None
        if isinstance(data, dict) and "format" not in data and "path" in data:
            return self._upgrade_v1(data, sidecar, audio, model, item_id, sample_id)
        if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
            got = data.get("format") if isinstance(data, dict) else None
            raise DamagedFile(sidecar, f"sidecar of another format ({got!r}; this version writes {SIDECAR_FORMAT})")
        try:
            record = SampleRecord.from_dict(data)
        except (KeyError, TypeError, ValueError) as err:
            raise DamagedFile(sidecar, f"malformed sidecar ({type(err).__name__}: {err})") from None
        if (record.model, record.item_id, record.sample_id) != (model, item_id, sample_id):
            raise DamagedFile(sidecar, f"sidecar names {record.model}/{record.item_id}/{record.sample_id}")
        names = [p.name for p in self.sample_candidates(model, item_id, sample_id, random_weights)[:-1]]
        if record.audio not in names:
            raise DamagedFile(sidecar, f"sidecar names audio {record.audio!r}, expected one of {names}")
        audio = audio.with_name(record.audio)
        _check_storage(record, audio)
        try:
            size = audio.stat().st_size
        except FileNotFoundError:
            raise DamagedFile(audio, "audio file missing beside its sidecar") from None
        if size != record.audio_bytes:
            raise DamagedFile(audio, f"audio holds {size} bytes, the sidecar recorded {record.audio_bytes} "
                                     "(truncated or rewritten)")
        if file_sha256(audio) != record.audio_sha256:
            raise DamagedFile(audio, "audio content differs from the sha256 its sidecar recorded")
        return record

    def _upgrade_v1(self, data: dict[str, Any], sidecar: Path, audio: Path, model: str, item_id: str,
                    sample_id: str) -> SampleRecord:
        """A sidecar written before checksums (issue 6 and earlier): kept, so a costly generation is not thrown
        away, only when it names this very sample and its audio decodes whole; the audio's sha256 is recorded now
        and the sidecar rewritten in this format. Anything less is redone."""
        import soundfile as sf

        named = (data.get("model"), data.get("item_id"), data.get("sample_id"), data.get("path"))
        if named != (model, item_id, sample_id, audio.name) or not isinstance(data.get("model_key"), dict):
            raise DamagedFile(sidecar, "sidecar of an older format that does not name this sample")
        try:
            with sf.SoundFile(str(audio)) as f:
                rate, channels, declared = int(f.samplerate), int(f.channels), int(f.frames)
                frames = len(f.read(dtype="float32"))
        except (OSError, RuntimeError) as err:
            raise DamagedFile(audio, f"audio of an older sidecar does not decode ({err})") from None
        if frames == 0 or frames != declared:
            raise DamagedFile(audio, f"audio of an older sidecar decodes to {frames} of {declared} frames")
        record = SampleRecord(
            model=model, item_id=item_id, sample_id=sample_id, audio=audio.name, audio_sha256=file_sha256(audio),
            audio_bytes=audio.stat().st_size, sample_rate=rate, channels=channels, frames=frames,
            weights=str(data.get("weights", "pretrained")), model_key=data["model_key"], seconds=data.get("seconds"),
            peak_abs=float(data.get("peak_abs", 0.0)),
            beyond_full_scale_share=float(data.get("clipped_share_before_write", 0.0)), label=data.get("label"),
            info={**(data.get("info") or {}), "sidecar_upgraded_from": "samuel-bench sample sidecar v1 (no checksum)"})
        _check_storage(record, audio)
        self.write_sidecar(sidecar, record)
        return record

    def sample_files(self) -> list[Path]:
        """Every file under DIR/samples (finished, stale or damaged)."""
        return sorted(p for p in (self.root / "samples").glob("*/*") if p.is_file())

    def clip_record_files(self) -> list[Path]:
        return sorted(p for p in (self.root / "scores").glob("*/*.json") if p.is_file())

    # -- attempt records (JSONL) ------------------------------------------------------------------------------
    def append_record(self, model: str, rank: int, record: dict[str, Any]) -> None:
        """One JSON line per attempt, flushed and synced. A torn last line (an interrupt mid-write) is closed with
        a newline first, so it never swallows the record appended after it."""
        path = self.records_path(model, rank)
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"format": RECORD_FORMAT, "rank": rank, **record}, default=str) + "\n"
        with path.open("ab+") as f:
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")
            f.write(line.encode())
            f.flush()
            os.fsync(f.fileno())

    def read_records(self, model: str) -> tuple[list[dict[str, Any]], list[str]]:
        """Every rank's attempt records of ``model`` in file order, and a note per line that could not be used
        (torn, not JSON, or without item_id and status); those lines are skipped, never fatal."""
        records: list[dict[str, Any]] = []
        problems: list[str] = []
        for path in sorted(self.records_path(model, 0).parent.glob(f"{safe_name(model)}.rank*.jsonl")):
            try:
                lines = path.read_text(errors="replace").splitlines()
            except OSError as err:
                problems.append(f"{path}: unreadable ({err.strerror or err})")
                continue
            for n, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    problems.append(f"{path}:{n}: torn or garbled line skipped")
                    continue
                if not isinstance(rec, dict) or not isinstance(rec.get("item_id"), str) or "status" not in rec:
                    problems.append(f"{path}:{n}: record without item_id or status skipped")
                    continue
                records.append(rec)
        return records, problems


def _check_storage(record: SampleRecord, audio: Path) -> None:
    """A sample whose output went beyond full scale yet is stored as FLAC was clipped by an earlier version's
    storage (every sample was 24-bit FLAC): its audio is not what the model made, so it is made again."""
    if sample_storage(record.peak_abs)[0] != audio.suffix:
        raise DamagedFile(audio, f"the output peaked at {record.peak_abs:.3g} ({_dbfs(record.peak_abs)}) but is stored "
                                 f"as {audio.suffix}: clipped to full scale by an earlier version; made again")


def _dbfs(peak: float) -> str:
    import math

    return f"{20 * math.log10(peak):+.1f} dBFS" if peak > 0 else "silence"


class DamagedFile(Exception):
    """A file of the run that cannot be used as it is (torn, truncated, foreign); the pass redoes it."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class SampleRecord:
    """A sample's sidecar: which item and sample it is, the audio's checksum, and how it was made. It holds the
    item id, not copies of the item (the manifest has the item's facts once)."""

    model: str
    item_id: str
    sample_id: str
    audio: str  # file name beside the sidecar
    audio_sha256: str
    audio_bytes: int
    sample_rate: int
    channels: int
    frames: int
    weights: str  # pretrained | files | random
    model_key: dict[str, Any]
    seconds: float | None = None  # wall time of this generation
    peak_abs: float = 0.0
    # share of sample instants beyond full scale in some channel: what a PCM export or a player would clip (the
    # stored audio keeps them: sample_storage). Sidecars before float WAV storage called it clipped_share_before_write
    beyond_full_scale_share: float = 0.0
    label: str | None = None  # the random-weights label when random
    info: dict[str, Any] = field(default_factory=dict)  # the adapter's per-item provenance

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    @property
    def random(self) -> bool:
        return self.weights == "random"

    def to_dict(self) -> dict[str, Any]:
        return {"format": SIDECAR_FORMAT, **{k: getattr(self, k) for k in self.__dataclass_fields__},
                "duration_s": self.duration_s}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SampleRecord:
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if "clipped_share_before_write" in data:  # its name before float WAV storage
            fields.setdefault("beyond_full_scale_share", data["clipped_share_before_write"])
        record = cls(**fields)
        for name in ("model", "item_id", "sample_id", "audio", "audio_sha256", "weights"):
            if not isinstance(getattr(record, name), str):
                raise TypeError(f"{name} must be a string")
        if not (isinstance(record.audio_bytes, int) and isinstance(record.frames, int)
                and isinstance(record.sample_rate, int) and record.sample_rate > 0):
            raise TypeError("audio_bytes, frames and sample_rate must be integers")
        return record


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    return str(o)



@dataclass(frozen=True)
class NewSample:
    """A generation not yet on disk: what :class:`SampleStore` writes."""

    audio: Any  # (channels, samples) float32 ndarray
    sample_rate: int
    seconds: float  # wall time of the generation
    weights: str
    label: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


UNRECORDED_SOURCE = ("its sample records no sha256 of its source file (made by an earlier version), so whether the "
                     "file changed cannot be told")


class SampleStore:
    """The :class:`bench.cache.Store` of one model's samples: the key's content is the sample id and its identity
    names the model and item; the entry is two files, the audio and then its sidecar (the sidecar is the path the
    cache is given). Reading validates both (:meth:`RunFolder.read_sample`); a damaged pair is a BadEntry, so the
    cache redoes it and says why."""

    def __init__(self, run: RunFolder, model: str, random_weights: bool, model_key: dict[str, Any]) -> None:
        self.run, self.model, self.random, self.model_key = run, model, random_weights, model_key

    def key(self, item_id: str, sample_id: str, source: tuple[str, str] | None = None) -> Any:
        """``source``: (path, sha256) of the file a row of files reads the sample from (the true accompaniment, an
        ``outputs:`` file); a stored sample that records another sha256 (or none) is stale."""
        from bench.cache import Key

        identity: dict[str, Any] = {"model": self.model, "item_id": item_id}
        if source is not None:
            identity.update(source_file=source[0], source_sha256=source[1])
        return Key("sample", sample_id, identity)

    def path_for(self, key: Any) -> Path:
        return self.run.sample_paths(self.model, key.identity["item_id"], key.content, self.random)[1]

    def read(self, path: Path, key: Any) -> SampleRecord:
        from bench.cache import BadEntry

        try:
            record = self.run.read_sample(self.model, key.identity["item_id"], key.content, self.random)
        except DamagedFile as err:
            raise BadEntry(str(err)) from None
        expected = key.identity.get("source_sha256")
        if expected is not None and record.info.get("source_sha256") != expected:
            # a row of files keys its samples by the item: an edited source file kept its old sample before
            was = record.info.get("source_sha256")
            raise BadEntry(f"its source file {key.identity['source_file']} changed since the sample was made "
                           f"(sha256 {str(was)[:12]}... -> {expected[:12]}...)" if was else UNRECORDED_SOURCE)
        return record

    def write(self, path: Path, key: Any, value: NewSample) -> SampleRecord:
        import numpy as np

        from samuel.audio import write_audio

        item_id, sid = key.identity["item_id"], key.content
        audio = np.asarray(value.audio, dtype=np.float32)
        peak = float(np.abs(audio).max()) if audio.size else 0.0
        suffix, subtype = sample_storage(peak)
        audio_path, sidecar = self.run.sample_paths(self.model, item_id, sid, self.random, suffix)
        for other in self.run.sample_candidates(self.model, item_id, sid, self.random)[:-1]:
            if other != audio_path:
                other.unlink(missing_ok=True)  # the sample in its other storage, from an earlier run, is replaced
        write_audio(audio_path, audio, value.sample_rate, subtype=subtype)
        record = SampleRecord(
            model=self.model, item_id=item_id, sample_id=sid, audio=audio_path.name,
            audio_sha256=file_sha256(audio_path), audio_bytes=audio_path.stat().st_size,
            sample_rate=value.sample_rate, channels=int(audio.shape[0]), frames=int(audio.shape[1]),
            weights=value.weights, model_key=self.model_key, seconds=value.seconds,
            peak_abs=peak, beyond_full_scale_share=float(np.mean(np.any(np.abs(audio) > 1, axis=0))),
            label=value.label, info=dict(value.info))
        self.run.write_sidecar(sidecar, record)  # after the audio: a sidecar always describes finished audio
        return record
