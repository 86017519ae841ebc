"""The file and folder names that say which stem of a song a file holds (MUSDB18, Demucs, MoisesDB conventions).

Pure and import-light: `samuel prepare` pairs a song's files by these names, and `samuel-eval --vocals` uses them to
tell a song folder's vocal from its other stems.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path

VOCAL_NAMES = ("vocals", "vocal", "voice")
ACCOMP_NAMES = ("accompaniment", "accomp", "instrumental", "no_vocals", "inst")
PART_NAMES = ("drums", "bass", "other")  # MUSDB18-HQ: accompaniment = their sum
MIXTURE_NAMES = ("mixture", "mix")
ROLES = {
    **{n: "vocals" for n in VOCAL_NAMES},
    **{n: "accompaniment" for n in ACCOMP_NAMES},
    **{n: "part" for n in PART_NAMES},
    **{n: "mixture" for n in MIXTURE_NAMES},
}
# MoisesDB's stem folders (besides vocals), and the parts and accompaniment names: a song folder holding only these
# is an instrumental song of a stem-folder dataset
INSTRUMENT_FOLDER_NAMES = frozenset({"bass", "bowed_strings", "drums", "guitar", "other", "other_keys",
                                     "other_plucked", "percussion", "piano", "wind", *PART_NAMES, *ACCOMP_NAMES})


def normal_name(name: str) -> str:
    """A name as the role table is keyed: lower case, ``-`` and spaces as ``_``, outer spaces dropped."""
    return re.sub(r"[-\s]+", "_", name.strip().lower())


def composed(name: str) -> str:
    """``name`` in Unicode NFC: ``café`` saved decomposed (``e`` + U+0301, as macOS file systems and some archives
    write it) is the same name as ``café`` composed."""
    return unicodedata.normalize("NFC", name)


def name_key(name: str) -> str:
    """A file or folder name as names are compared when files are matched: composed (NFC), then case-folded."""
    return composed(name).casefold()


def stem_name_role(name: str) -> str | None:
    """``'vocals' | 'accompaniment' | 'part' | 'mixture'`` for a stem's name (a file stem or a folder name)."""
    return ROLES.get(normal_name(name))


# `samuel generate FOLDER -o OUT` writes <name>.accompaniment.wav: the file of the vocal <name>
GENERATED_SUFFIX = ".accompaniment"
# A song kept as stem folders (MoisesDB: <song>/vocals/*.wav, <song>/drums/*.wav, ...) is one item, "<song>__vocals"
# (bench.manifest), whose vocal sum, when several tracks, is written as "<song>__vocals.flac" (bench.part_sums);
# baselines.files reads the song back from that id.
STEM_SONG_VOCAL = "vocals"
STEM_SONG_SUFFIX = "__" + STEM_SONG_VOCAL


def matching_stem(stem: str) -> str:
    """The name a file is matched to an item or a reference by: its stem, less `samuel generate`'s
    ``.accompaniment`` (``song.accompaniment.wav`` is the accompaniment made for ``song.wav``)."""
    base = stem[: -len(GENERATED_SUFFIX)] if stem.lower().endswith(GENERATED_SUFFIX) else stem
    return base or stem


def matching_name(path: Path, root: Path) -> str:
    """The name a file under ``root`` is matched by: its song folder's name when it is named as a stem inside one
    (``Song A/accompaniment.wav``, MUSDB18 and Demucs trees), else :func:`matching_stem` of its stem."""
    if stem_name_role(path.stem) is not None and path.parent != root:
        return path.parent.name
    return matching_stem(path.stem)


def matching_path(path: Path, root: Path) -> str:
    """The relative path (``/``-separated, no extension) a file under ``root`` is matched by: its folders, then
    :func:`matching_name`; a file named as a stem in a song folder goes by that folder's path (``x/Song A/
    accompaniment.wav`` is ``x/Song A``)."""
    parent = path.parent.relative_to(root)
    if stem_name_role(path.stem) is not None and path.parent != root:
        return parent.as_posix()
    return (parent / matching_stem(path.stem)).as_posix()


def folder_role(folder: Path) -> str:
    """A stem folder's role in a song (MoisesDB): ``'vocals'``, ``'mixture'``, else ``'accompaniment'`` (drums,
    guitar, piano, ...: every other folder is part of the accompaniment)."""
    role = stem_name_role(folder.name)
    return role if role in ("vocals", "mixture") else "accompaniment"


def stem_folder_roles(tracks: Mapping[Path, Sequence[Path]]) -> tuple[list[Path], list[Path]]:
    """(the vocal-named subfolders, the accompaniment subfolders) of a folder whose audio lies in one subfolder per
    stem (``tracks``: subfolder -> its audio files); a ``mixture`` folder is neither (it holds the vocal too)."""
    return ([d for d in tracks if folder_role(d) == "vocals"], [d for d in tracks if folder_role(d) == "accompaniment"])


def parallel_stem_folders(tracks: Mapping[Path, Sequence[Path]], vocal_dir: Path, other_dirs: Sequence[Path]) -> bool:
    """Whether stem folders hold many songs side by side (``vocals/X.wav`` beside ``accompaniment/X.wav``: a file
    name that repeats across the folders) rather than one song's tracks (MoisesDB: ``vocals/<id>.wav``)."""
    stems_of = {d: {p.stem.lower() for p in tracks[d]} for d in (vocal_dir, *other_dirs)}
    return any(stems_of[vocal_dir] & stems_of[d] for d in other_dirs)


def stem_folder_song(tracks: Mapping[Path, Sequence[Path]]) -> tuple[list[Path], list[Path]] | None:
    """(vocal tracks, accompaniment tracks) of one song kept as stem folders (MoisesDB: ``song/vocals/*.wav``,
    ``song/drums/*.wav``, ``song/guitar/*.wav``, ...); None unless there is exactly one vocal folder, at least one
    other stem folder, and the folders are not parallel songs (:func:`parallel_stem_folders`). Pure: no I/O."""
    vocal_dirs, other_dirs = stem_folder_roles(tracks)
    if len(vocal_dirs) != 1 or not other_dirs or parallel_stem_folders(tracks, vocal_dirs[0], other_dirs):
        return None
    return list(tracks[vocal_dirs[0]]), [p for d in other_dirs for p in tracks[d]]


def stem_folder_songs_under(root: Path, files: list[Path]) -> dict[Path, tuple[list[Path], list[Path]]]:
    """Song folder -> (vocal tracks, accompaniment tracks) for every folder at or under ``root`` that keeps one
    song's stems in folders of tracks (:func:`stem_folder_song`), from ``files``, the audio under ``root`` (pure:
    no I/O). A folder with audio of its own is not one (a MUSDB18 song folder holds its stems as files). Shared by
    samuel-eval's manifest, samuel-eval score's refusal and samuel generate's song jobs."""
    by_folder: dict[Path, list[Path]] = {}
    for p in files:
        by_folder.setdefault(p.parent, []).append(p)
    songs: dict[Path, tuple[list[Path], list[Path]]] = {}
    for song in sorted({folder.parent for folder in by_folder}):
        if song in by_folder or not (song == root or root in song.parents):
            continue
        found = stem_folder_song({d: sorted(by_folder[d]) for d in sorted(by_folder) if d.parent == song})
        if found is not None:
            songs[song] = found
    return songs
