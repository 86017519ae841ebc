"""What a `samuel generate` run reads and writes, decided before any weights are loaded.

A file input is one job. A folder is walked whole (hidden names left out, linked folders followed once), and every
file under it is accounted for: an input, or named with why it is none (:class:`InputPlan`). Folder by folder:

- a MoisesDB song (stems as folders of tracks, ``song/vocals/*.wav``, ``song/drums/*.wav``): one job, its vocals
  folder (tracks summed), written as ``<song>.accompaniment.wav``; the other stem folders' tracks are no input;
- a song folder (MUSDB18, Demucs: among its audio files one named as vocals and another named as a stem,
  ``drums.wav``, ``mixture.wav``, ``no_vocals.wav``, ...): its vocals file, written as ``<song>.accompaniment.wav``;
  its other stems are no input, and neither is an audio file there named as no stem (``take 1.wav`` beside
  ``voice.wav`` and ``mix.wav``): that one is named, as the folder is read as one song;
- any other folder: each audio file its own input, ``<name>.accompaniment.wav``.

Outputs keep the folders' path below the input (``OUT/test/Song A.accompaniment.wav``), which is how samuel-eval's
``outputs:`` rows match a song's item. Chunk seeds follow the same path (``day1/take1.wav``; a file or song
at the top keeps its name alone), so two inputs of one name in different folders get different noise, and a rerun
from the same folder the same. Files this tool wrote (their samuel sidecar names them as an output or mix)
are never inputs, so a rerun into the input folder does not feed on its own outputs. A dangling link with an audio
name is a failure, named. Files not audio by their names are counted and named, never read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import soundfile as sf

from samuel.audio import AUDIO_EXTENSIONS, UNDECODABLE_AUDIO_EXTENSIONS
from samuel.folder_walk import files_under
from samuel.stem_names import GENERATED_SUFFIX, stem_folder_songs_under, stem_name_role

PENDING_KEY = "pending"  # the sidecar's key while the output is being written (Accompanist.pending_record)
SIDECAR_SUFFIX = ".json"


class Job(NamedTuple):
    """One output to make: ``src`` (a vocal file, or a MoisesDB vocals folder whose tracks are summed) -> ``out``
    (and ``mix``). ``seed_key``: the name its chunk seeds follow (:func:`samuel.generate.chunk_seed`); None:
    :func:`_seed_key` of ``src`` and ``out`` (a file's name, a song's output name)."""

    src: Path
    out: Path
    mix: Path | None
    seed_key: str | None = None

    @property
    def key(self) -> str:
        return self.seed_key or _seed_key(self.src, self.out)


JobTuple = Job | tuple[Path, Path, Path | None]  # a plain (input, output, mix) follows _seed_key


@dataclass(frozen=True)
class NotInput:
    """A file under a folder input that is no input of the run, and why. ``kind``: ``"stem"`` (a song's other
    stem), ``"beside a song"`` (audio named as no stem in a folder read as one song), ``"earlier output"`` (written by
    samuel generate) or ``"not audio"`` (by its name)."""

    path: Path
    kind: str
    why: str


@dataclass
class InputPlan:
    """The jobs of a run, every file under a folder input that is none (:class:`NotInput`), and the files that
    should have been inputs but cannot be read at all (dangling links: ``(path, message)``, failures of the run)."""

    jobs: list[Job]
    not_inputs: list[NotInput] = field(default_factory=list)
    broken: list[tuple[Path, str]] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(n.kind == kind for n in self.not_inputs)

    def summary(self) -> list[str]:
        """The lines that say what the plan leaves out: one per audio file left out unexpectedly, then one
        ``plan:`` line with the counts."""
        lines = [f"not read  {n.path}: {n.why}" for n in self.not_inputs if n.kind == "beside a song"]
        parts = [f"{len(self.jobs)} input{'s' if len(self.jobs) != 1 else ''}"]
        if beside := self.count("beside a song"):
            parts.append(f"{beside} audio file{'s' if beside != 1 else ''} beside a song's stems not read (named "
                         "above)")
        if stems := self.count("stem"):
            names = sorted({n.path.stem.lower() for n in self.not_inputs if n.kind == "stem"})
            parts.append(f"{stems} other stem{'s' if stems != 1 else ''} of songs not read ({', '.join(names[:6])}"
                         f"{', ...' if len(names) > 6 else ''}: a song's input is its vocals)")
        if earlier := self.count("earlier output"):
            parts.append(f"{earlier} earlier output{'s' if earlier != 1 else ''} of samuel generate skipped (never "
                         "inputs)")
        if other := [n.path.name for n in self.not_inputs if n.kind == "not audio"]:
            parts.append(f"{len(other)} file{'s' if len(other) != 1 else ''} not audio by name ignored "
                         f"({', '.join(other[:3])}{', ...' if len(other) > 3 else ''})")
        return [*lines, "plan: " + "; ".join(parts)]


def sidecar_path(output: Path) -> Path:
    """``song.wav`` -> ``song.wav.json``: the provenance record (a pending one before the audio is written, the full
    one after it and the mix)."""
    return output.with_name(output.name + SIDECAR_SUFFIX)


def _path_key(path: Path) -> str:
    """The file a path names, links followed (``x.wav`` and a link to it are one file)."""
    return os.path.normcase(os.path.realpath(path))


def is_audio_name(path: Path) -> bool:
    """Whether a file is audio by its name: one libsndfile reads, or one it cannot (named with a way out on load)."""
    ext = path.suffix.lower()
    return ext in AUDIO_EXTENSIONS or ext in UNDECODABLE_AUDIO_EXTENSIONS


def vocal_tracks(src: Path) -> list[Path]:
    """The files a job's input reads: the file itself, or the audio tracks of a MoisesDB vocals folder (summed)."""
    if src.is_dir():
        return sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    return [src]


def _seed_key(src: Path, out: Path) -> str:
    """The name a job's chunk seeds follow (:func:`samuel.generate.chunk_seed`): the input file's name, except for a
    song of a stem tree, whose vocals file or folder is named alike in every song: there the output's name, which is
    the song's. A single ``vocals.wav`` given as the input keeps its own name, as before trees."""
    songs = (src.parent.name, src.parent.parent.name)
    if src.is_dir() or (stem_name_role(src.stem) == "vocals"
                        and any(out.name == f"{song}{GENERATED_SUFFIX}.wav" for song in songs if song)):
        return out.name
    return src.name


# -- what the run writes ------------------------------------------------------------------------------------------


def check_output_file(path: Path, flag: str) -> None:
    """Refuse, before any work, an output path that :func:`samuel.audio.write_audio` would refuse after all of it."""
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory; for a single input file, {flag} names the output file "
                                f"(for example {path / 'name.wav'})")
    ext = path.suffix.lower()
    fmt = {".wav": "WAV", ".aif": "AIFF", ".aiff": "AIFF"}.get(ext) or ext.lstrip(".").upper()
    if not ext or fmt not in sf.available_formats() or not sf.check_format(fmt, "FLOAT"):
        why = f"{ext} files cannot hold it" if ext else "the name has no extension"
        raise ValueError(f"{path}: {flag} must name a .wav file: the audio is written as 32-bit float (unclipped), "
                         f"and {why}")


def path_conflicts(jobs: Sequence[JobTuple]) -> list[str]:
    """Why these jobs cannot run as one: an output or mix path that is an input of the run (writing it would destroy
    the vocal it is made from), or one path written twice (an output and a mix, or two inputs with one output
    name, ``song.wav`` beside ``song.flac``). Each in words; none: ``[]``. Paths are compared with links followed."""
    inputs: dict[str, Path] = {}
    for src, *_ in jobs:
        for path in (src, *vocal_tracks(src)):
            inputs.setdefault(_path_key(path), src)
    written: dict[str, tuple[str, Path]] = {}
    problems = []
    for src, out, mix, *_ in jobs:
        for what, path in (("output", out), ("mix", mix)):
            if path is None:
                continue
            key = _path_key(path)
            if key in inputs:
                of = "" if inputs[key] == src else f" {inputs[key]}"
                problems.append(f"the {what} {path} of {src} is the input{of}: writing it would destroy that vocal")
            elif key in written:
                other, by = written[key]
                problems.append(f"{path} would be written twice: as the {other} of {by} and as the {what} of {src}"
                                + ("; rename one of the two inputs" if by != src else ""))
            else:
                written[key] = (what, src)
    return problems


def conflicts_message(problems: Sequence[str]) -> str:
    return "nothing was run: " + "; ".join(problems) + ". Choose another -o or --mix"


# -- what the run reads -------------------------------------------------------------------------------------------


def _visible_files(root: Path) -> list[Path]:
    """Every file under ``root`` (dangling links included), sorted; hidden names and what they hold left out, linked
    folders followed once (:func:`samuel.folder_walk.files_under`, so a link loop ends)."""
    walk = files_under(root)
    dangling = [p for p in walk.skipped if p.is_symlink() and not p.exists()]
    return sorted(p for p in [*walk.files, *dangling]
                  if not any(part.startswith(".") for part in p.relative_to(root).parts))


def _sidecar_record(path: Path) -> dict[str, Any] | None:
    """A samuel generate sidecar's record (full or pending), else None (unreadable, or another tool's JSON)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("output"), str):
        return None
    return record if "seeds" in record or record.get(PENDING_KEY) else None


def earlier_outputs(sidecars: Iterable[Path]) -> tuple[set[str], dict[str, set[int | None]]]:
    """What samuel generate wrote, from its sidecars: the outputs (path keys: each sidecar lies beside its output)
    and the mixes (name -> the sizes recorded; a mix lies wherever --mix put it, and a relative path in a sidecar
    depends on the folder the run was started from, so a mix is known by name and size, or by its path)."""
    outputs: set[str] = set()
    mixes: dict[str, set[int | None]] = {}
    for side in sidecars:
        record = _sidecar_record(side)
        if record is None:
            continue
        output = side.with_name(side.name[: -len(SIDECAR_SUFFIX)])
        if Path(record["output"]).name == output.name:
            outputs.add(_path_key(output))
        if isinstance(record.get("mix"), str):
            files = record.get("files")
            entry = files.get("mix") if isinstance(files, dict) else None
            size = entry.get("bytes") if isinstance(entry, dict) else None
            mixes.setdefault(Path(record["mix"]).name, set()).add(size)
            outputs.add(_path_key(Path(record["mix"])))
    return outputs, mixes


def _is_earlier_output(path: Path, outputs: set[str], mixes: dict[str, set[int | None]]) -> bool:
    if _path_key(path) in outputs:
        return True
    sizes = mixes.get(path.name)
    return bool(sizes) and path.exists() and path.stat().st_size in sizes


def plan_inputs(inputs: Path, output: Path, mix: Path | None) -> InputPlan:
    """The run's plan (see the module docstring): one input file -> the given output (and mix); a folder -> a job
    per vocal under it, written into the output folder (and ``<name>.mix.wav`` into ``mix``), every other file named.

    Refuses, before any work: an output that cannot be written (not .wav, a folder), a folder that holds no input
    (FileNotFoundError, saying what it holds), and jobs that would write over an input or write one path twice
    (ValueError, :func:`path_conflicts`)."""
    if not inputs.is_dir():
        check_output_file(output, "-o")
        if mix is not None:
            check_output_file(mix, "--mix")
        plan = InputPlan([Job(inputs, output, mix)])
    else:
        if output.exists() and not output.is_dir():
            raise NotADirectoryError(f"{output}: input is a directory, so -o must be a directory")
        plan = _plan_folder(inputs, output, mix)
        if not plan.jobs and not plan.broken:
            held = plan.summary()[-1].removeprefix("plan: 0 inputs; ")
            raise FileNotFoundError(f"{inputs}: holds no audio file to read" +
                                    (f" ({held})" if plan.not_inputs else ""))
    conflicts = path_conflicts(plan.jobs)
    if conflicts:
        raise ValueError(conflicts_message(conflicts))
    return plan


def plan_jobs(inputs: Path, output: Path, mix: Path | None) -> list[Job]:
    """The jobs of :func:`plan_inputs` (input, output, mix or None), in order."""
    return plan_inputs(inputs, output, mix).jobs


def _plan_folder(root: Path, output: Path, mix: Path | None) -> InputPlan:
    files = _visible_files(root)
    sidecars = [p for p in files if p.name.lower().endswith(".wav" + SIDECAR_SUFFIX)]
    for folder in (output, mix):  # a rerun's outputs may be recorded by sidecars outside the input (-o elsewhere)
        if folder is not None and folder.is_dir() and _path_key(folder) != _path_key(root):
            sidecars += sorted(folder.rglob("*.wav" + SIDECAR_SUFFIX))
    outputs, mixes = earlier_outputs(sidecars)
    plan = InputPlan([])
    audio = []
    for p in files:
        if not is_audio_name(p):
            if not (p in sidecars and _sidecar_record(p) is not None):  # our own sidecars go with their outputs
                plan.not_inputs.append(NotInput(p, "not audio", "not audio by its name; not read"))
        elif p.is_symlink() and not p.exists():
            plan.broken.append((p, f"{p}: is a link to {os.readlink(p)}, which does not exist"))
        elif _is_earlier_output(p, outputs, mixes):
            plan.not_inputs.append(NotInput(p, "earlier output", "written by samuel generate (its sidecar says so)"))
        else:
            audio.append(p)

    def job(src: Path, name: Path) -> Job:
        """``name``: the output's name less its suffix, below ``output`` (and ``mix``)."""
        out = output / name.parent / f"{name.name}{GENERATED_SUFFIX}.wav"
        folder = name.parent.as_posix()  # the seeds follow the path below the input: day1/take1 and day2/take1 differ
        return Job(src, out, (mix / name.parent / f"{name.name}.mix.wav") if mix else None,
                   _seed_key(src, out) if folder == "." else f"{folder}/{_seed_key(src, out)}")

    by_folder: dict[Path, list[Path]] = {}
    for p in audio:
        by_folder.setdefault(p.parent, []).append(p)
    moises = stem_folder_songs_under(root, audio)
    for folder in sorted(set(moises) | set(by_folder)):
        rel = folder.relative_to(root)
        song_name = Path(root.name) if folder == root else rel
        if folder in moises:
            tracks = moises[folder][0]
            plan.jobs.append(job(tracks[0] if len(tracks) == 1 else tracks[0].parent, song_name))
        elif folder.parent in moises:  # a MoisesDB song's stem folder: read through the song, by its vocals
            vocals = set(moises[folder.parent][0])
            plan.not_inputs += [NotInput(p, "stem", f"a stem track of the song {folder.parent}, whose input is its "
                                         "vocals") for p in by_folder[folder] if p not in vocals]
        elif (vocals := _song_vocals(by_folder[folder])) is not None:
            plan.jobs += [job(v, song_name) for v in vocals]  # two vocals files: one output, refused as a conflict
            plan.not_inputs += _song_others(folder, by_folder[folder], vocals)
        else:
            plan.jobs += [job(p, rel / p.stem) for p in by_folder[folder]]
    return plan


def _song_vocals(audio: list[Path]) -> list[Path] | None:
    """A song folder's vocals files (MUSDB18, Demucs: a vocals-named file and another stem), else None."""
    roles = [stem_name_role(p.stem) for p in audio]
    if "vocals" not in roles or not any(r not in (None, "vocals") for r in roles):
        return None
    return [p for p, r in zip(audio, roles, strict=True) if r == "vocals"]


def _song_others(folder: Path, audio: list[Path], vocals: list[Path]) -> list[NotInput]:
    """The audio files of a song folder besides its vocals: its stems, and any named as no stem (said so)."""
    others = []
    stems = [p.name for p in audio if p not in vocals and stem_name_role(p.stem) is not None]
    for p in audio:
        if p in vocals:
            continue
        if stem_name_role(p.stem) is not None:
            others.append(NotInput(p, "stem", f"a stem of the song {folder}, whose input is its vocals"))
        else:
            others.append(NotInput(p, "beside a song", (
                f"{folder} is read as one song, as its files include a vocals file ({', '.join(v.name for v in vocals)}"
                f") and other stems ({', '.join(stems)}); {p.name} is named as no stem, so it is not read: move it "
                "to a folder of its own to generate for it")))
    return others
