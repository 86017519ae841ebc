"""Rows made of audio files rather than a model: the reference accompaniments and pre-generated outputs.

``outputs:NAME=DIR`` brings in any system's samples made elsewhere (audiocraft, stable-audio-tools, a Jukebox
run, a commercial API). The **file-name rule** that matches a file to a manifest item:

0. the file's path under DIR, without extension and with ``/`` as ``__``, as an item id writes it, equals the item id
   and no other file's does (``artist1/track01.wav`` for item ``artist1__track01``, as ``samuel-eval score`` and a
   tree of vocals name items; a file named as a stem in a song folder goes by the folder: ``Song A/
   accompaniment.wav`` for item ``Song_A``), else
1. the file's stem equals the item id (``syn-007.flac`` for item ``syn-007``), else
2. the file's stem equals the stem of the item's vocal file (``song_a.wav`` for vocal ``vocals/song_a.wav``) or,
   for a vocal named as a stem in its song folder (``Song A/vocals.wav``, MUSDB18 and Demucs layouts), the song
   folder's name (``Song A.wav``), else
3. the file's stem with characters an item id cannot hold as ``_`` equals the item id (``my song.wav`` for item
   ``my_song``; ``samuel-eval score`` names items so), else
4. for a vocal named as a stem, the one audio file in a folder named like its song folder (``Song A/x.wav``, a tree
   that mirrors the vocals'), or the one there named as an accompaniment (``Song A/accompaniment.wav``).

A stem is taken less `samuel generate`'s ``.accompaniment`` (``song_a.accompaniment.wav`` is song_a's). Matching
ignores case, and files may sit in sub-folders of DIR. Extensions: whatever libsndfile reads, i.e.
.wav .flac .ogg .opus .mp3 .aif .aiff. Two files that match one item (``x.wav`` and ``x.flac``) are an error for
that item, a missing file is an error for that item, and files that match no item are listed as extra; the run
goes on in every case. Audio is read as 44.1 kHz stereo float32 (:func:`samuel.audio.load_audio`).

**Length of a pre-generated file.** It is the model's output, not the song, so the item's window (``start_s``)
does not apply: the file is read from 0. A file up to 0.05 s longer or any amount shorter than the item is kept as
it is; a longer one is cut to the item's duration (its first ``duration_s`` seconds), because the scorers compare it
with the item's ``duration_s``-long vocal window and nothing after that has a counterpart. Either way the output's
info says so (``duration_note``; ``source_duration_s`` when cut). A file of more than 2 channels is refused unless
the run folds them (``--downmix``, :attr:`GenerationRequest.downmix`), as for vocals.

**The reference row** reads each item's window ``[start_s, start_s + duration_s)`` of its reference accompaniment
through :meth:`~baselines.base.GenerationRequest.read_reference`, the same seconds the scorers read of the vocal.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from baselines.base import (
    AdapterError,
    GeneratedAudio,
    GenerationRequest,
    Generator,
    ItemError,
    ParamCount,
    WeightsChoice,
    WeightsStatus,
)
from samuel.audio import AUDIO_EXTENSIONS, undecodable_audio_problem
from samuel.folder_walk import files_under
from samuel.stem_names import STEM_SONG_SUFFIX, composed, matching_path, matching_stem, name_key, stem_name_role

_DURATION_TOLERANCE_S = 0.05


def read_audio_file(path: Path, request: GenerationRequest) -> GeneratedAudio:
    """Read one pre-generated file as (2, S) 44.1 kHz float32, cut to the item's duration when longer (see the
    module doc); a bad file is an :class:`ItemError` naming it."""
    from samuel.audio import AudioError, load_audio

    try:
        loaded = load_audio(path, min_seconds=0.0, downmix=request.downmix)
    except AudioError as err:
        raise ItemError(f"output for item {request.item_id!r}: {err}") from err
    audio = GeneratedAudio(loaded.samples, 44_100, {"source_file": str(path), "source_rate": loaded.source_rate})
    seconds = audio.duration_s
    if seconds > request.duration_s + _DURATION_TOLERANCE_S:
        audio.audio = np.ascontiguousarray(audio.audio[:, : round(request.duration_s * audio.sample_rate)])
        audio.info["source_duration_s"] = round(seconds, 4)
        audio.info["duration_note"] = (f"{path.name} lasts {seconds:.2f} s; cut to the item's {request.duration_s:.2f} "
                                       "s from 0 (a pre-generated output is the model's output, not the song)")
    elif seconds < request.duration_s - _DURATION_TOLERANCE_S:
        audio.info["duration_note"] = (f"{path.name} lasts {seconds:.2f} s; the item asks for "
                                       f"{request.duration_s:.2f} s (kept as it is)")
    return audio


def prefer_exact_case(candidates: list[Path], name: str, name_of: Callable[[Path], str]) -> list[Path]:
    """Of files that match ``name`` ignoring case, the one that matches it exactly when there is exactly one
    (``Song.wav`` and ``song.wav`` are two songs on a case-sensitive file system: each item gets its own);
    otherwise all of them. The rule of :class:`FileIndex` and of bench.manifest's references."""
    exact = [p for p in candidates if composed(name_of(p)) == composed(name)]
    return exact if len(candidates) > 1 and len(exact) == 1 else candidates


class FileIndex:
    """The audio files under a folder, indexed by stem, compared as :func:`~samuel.stem_names.name_key` (composed,
    case-folded; a file whose stem matches in case wins over others that match only ignoring it)."""

    def __init__(self, folder: Path) -> None:
        if not folder.is_dir():
            raise AdapterError(f"{folder}: no such folder of audio files")
        self.folder = folder
        self.by_stem: dict[str, list[Path]] = defaultdict(list)
        self.by_parent: dict[str, list[Path]] = defaultdict(list)  # by the name key of the folder holding it
        self.by_path: dict[str, list[Path]] = defaultdict(list)  # by the id form of its path under the folder (rule 0)
        self.path_id: dict[Path, str] = {}
        self.undecodable: dict[str, list[Path]] = defaultdict(list)  # by lower-case stem: named when an item misses
        for path in files_under(folder).files:  # symlinked folders too
            if path.suffix.lower() in AUDIO_EXTENSIONS:
                self.by_stem[name_key(matching_stem(path.stem))].append(path)
                self.path_id[path] = _id_form(matching_path(path, folder).replace("/", "__"))
                self.by_path[self.path_id[path]].append(path)
                if path.parent != folder:
                    self.by_parent[name_key(path.parent.name)].append(path)
            elif undecodable_audio_problem(path) is not None:
                self.undecodable[name_key(path.stem)].append(path)

    def match(self, request: GenerationRequest) -> Path:
        """The one file for ``request`` by the module's rule, or :class:`ItemError` saying what is wrong."""
        names = [request.item_id]  # as written: of Song.wav and song.wav the one in the name's own case wins
        vocal_name = _vocal_name(request)
        if vocal_name is not None:
            names.append(vocal_name)
        keys = [name_key(name) for name in names]
        if len(found := self.by_path.get(keys[0], [])) == 1:
            return found[0]
        for name, key in zip(names, keys, strict=True):
            found = prefer_exact_case(self.by_stem.get(key, []), name, lambda p: matching_stem(p.stem))
            if len(found) > 1:
                raise ItemError(f"{self.folder}: {len(found)} files match item {request.item_id!r} "
                                f"({', '.join(p.name for p in found)}); keep one")
            if found:
                return found[0]
        # an item id cannot hold every character a file name can ("my song.wav" is item "my_song"): match the
        # stem's id form (bench.manifest.safe_name's rule) last
        found = [p for stem, paths in self.by_stem.items() if _id_form(stem) == keys[0] for p in paths]
        if len(found) == 1:
            return found[0]
        if (mirrored := self._in_song_folder(request)) is not None:
            return mirrored
        tried = " or ".join(f"'{k}.<ext>'" for k in dict.fromkeys(keys))
        undecodable = [p for key in keys for p in self.undecodable.get(key, [])]
        if undecodable:
            raise ItemError(f"{undecodable[0]}: the file for item {request.item_id!r} "
                            f"{undecodable_audio_problem(undecodable[0])}")
        raise ItemError(f"{self.folder}: no file for item {request.item_id!r} (looked for {tried}, "
                        f"ext in {' '.join(AUDIO_EXTENSIONS)})")

    def _in_song_folder(self, request: GenerationRequest) -> Path | None:
        """Rule 4: the file of a stem-named vocal's song in a folder named like its song folder, or None."""
        song = _song_folder(request)
        if song is None or _is_window_of_song(request):  # the song's one file is no window's own output
            return None
        files = self.by_parent.get(name_key(song), [])
        named = [p for p in files if stem_name_role(p.stem) == "accompaniment"]
        return files[0] if len(files) == 1 else named[0] if len(named) == 1 else None

    def extra(self, requests: Sequence[GenerationRequest]) -> list[Path]:
        """Files that match none of ``requests``."""
        wanted = {name_key(r.item_id) for r in requests} | {name_key(s) for r in requests
                                                          if (s := _vocal_name(r)) is not None}
        mirrored = {p for r in requests if (p := self._in_song_folder(r)) is not None}
        return [p for stem, paths in sorted(self.by_stem.items()) if stem not in wanted and _id_form(stem) not in wanted
                for p in paths if p not in mirrored and self.path_id[p] not in wanted]


def _vocal_name(request: GenerationRequest) -> str | None:
    """The second name a file may match the item by (rule 2): the vocal file's stem, or the song folder's name for a
    vocal named as a stem (``Song A/vocals.wav``); None for one of several windows of a song
    (bench.windows.window_item_id: "<stem>__w<k>"), whose vocal names the song, not the window, so such items
    match by item id only."""
    if request.vocal_path is None or _is_window_of_song(request):
        return None
    return _song_folder(request) or Path(request.vocal_path).stem


def _is_window_of_song(request: GenerationRequest) -> bool:
    return re.fullmatch(r".+__w\d+", request.item_id) is not None


def _song_folder(request: GenerationRequest) -> str | None:
    """The song folder's name of a vocal named as a stem (``Song A`` for ``Song A/vocals.wav``), or of a song kept
    as stem folders (MoisesDB; bench.manifest: item ``<song>__vocals``, whose vocal is the one track in
    ``<song>/vocals/`` or the sum of several written as ``<song>__vocals.flac``), else None."""
    vocal = Path(request.vocal_path) if request.vocal_path is not None else None
    if vocal is None:
        return None
    if stem_name_role(vocal.stem) == "vocals" and vocal.parent.name:
        return vocal.parent.name
    if request.item_id.endswith(STEM_SONG_SUFFIX):
        if stem_name_role(vocal.parent.name) == "vocals" and vocal.parent.parent.name:
            return vocal.parent.parent.name
        if vocal.stem == request.item_id:
            return request.item_id.removesuffix(STEM_SONG_SUFFIX)
    return None


def file_rate(path: str | Path) -> int | None:
    """The sample rate in ``path``'s header (before any resampling), or None when the header cannot be read."""
    import soundfile as sf

    try:
        return int(sf.info(str(path)).samplerate)
    except (RuntimeError, OSError):
        return None


def _id_form(stem: str) -> str:
    """A stem as an item id writes it, compared as a name_key: characters outside [A-Za-z0-9-_.] become '_'."""
    return name_key("".join(c if c.isalnum() or c in "-_." else "_" for c in composed(stem)).strip("._"))


class _FileGenerator(Generator):
    """Shared plumbing of file rows: nothing to load, no parameters, no timing units."""

    conditioning = "n/a (audio files)"
    sample_rate = 44_100

    def _load(self) -> None:
        pass

    def _count_parameters(self) -> ParamCount | None:
        return None


class ReferenceAccompaniments(_FileGenerator):
    """The true accompaniment of each input item: the paper's "Pop Benchmark (ground truth)" row."""

    name = "reference"
    display_name = "Reference (ground truth)"

    def resolve_weights(self) -> WeightsStatus:
        return WeightsStatus("files", "the manifest's reference accompaniments",
                             "reference: ground-truth accompaniments named in the manifest")

    def generate(self, requests: Sequence[GenerationRequest], *, max_units: int | None = None,
                 on_unit: Callable[[], None] | None = None) -> list[GeneratedAudio]:
        return [self._window(r) for r in requests]

    def source_file(self, request: GenerationRequest) -> Path | None:
        return Path(request.reference_path) if request.reference_path is not None else None

    @staticmethod
    def _window(request: GenerationRequest) -> GeneratedAudio:
        """The item's window of its reference accompaniment (:meth:`GenerationRequest.read_reference`)."""
        if request.reference_path is None:
            raise ItemError(f"item {request.item_id!r}: the manifest names no reference accompaniment (pass "
                            "--references DIR; for a tree of song stem folders such as MUSDB18 or MoisesDB, the same "
                            "tree: each song's other stems are summed into its reference)")
        audio = GeneratedAudio(request.read_reference(), 44_100,
                               {"source_file": str(request.reference_path), "start_s": request.start_s,
                                "source_rate": file_rate(request.reference_path)})
        if audio.duration_s < request.duration_s - _DURATION_TOLERANCE_S:
            audio.info["duration_note"] = (f"{Path(request.reference_path).name} holds {audio.duration_s:.2f} s from "
                                           f"{request.start_s:.2f} s; the item asks for {request.duration_s:.2f} s")
        return audio


class PregeneratedOutputs(_FileGenerator):
    """``outputs:NAME=DIR``: a folder of another system's samples, matched to items by the module's rule."""

    def __init__(self, name: str, folder: str | Path, weights: WeightsChoice | None = None, *,
                 device: str = "cpu", **options: Any) -> None:
        super().__init__(weights, device=device, **options)
        self.name = self.display_name = name
        self.folder = Path(folder).expanduser()
        self._index: FileIndex | None = None

    @property
    def index(self) -> FileIndex:
        if self._index is None:
            self._index = FileIndex(self.folder)
        return self._index

    def resolve_weights(self) -> WeightsStatus:
        if not self.folder.is_dir():
            raise AdapterError(f"outputs:{self.name}={self.folder}: no such folder")
        return WeightsStatus("files", str(self.folder),
                             f"{self.name}: pre-generated files from {self.folder} (quality as made elsewhere)")

    def generate(self, requests: Sequence[GenerationRequest], *, max_units: int | None = None,
                 on_unit: Callable[[], None] | None = None) -> list[GeneratedAudio]:
        return [read_audio_file(self.index.match(r), r) for r in requests]

    def unmatched_files(self, requests: Sequence[GenerationRequest]) -> list[Path]:
        return self.index.extra(requests) if self.folder.is_dir() else []

    def source_file(self, request: GenerationRequest) -> Path | None:
        try:
            return self.index.match(request)
        except ItemError:
            return None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "folder": str(self.folder)}
