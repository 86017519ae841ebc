"""The manifest: N matched items (vocal, prompt, seed, duration, reference) that every model receives.

A sample's id is a hash of the item (its fields and its vocal file's content), the model spec (name, weights
kind and digest, options) and the seed, so outputs of different runs line up, a changed input never reuses an
old output, and a resumed run finds exactly what is already done.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from baselines.base import GenerationRequest
from baselines.files import prefer_exact_case
from bench.synthetic import DEFAULT_DURATION_S, SET_VERSION, write_synthetic_set
from bench.windows import WindowRule, song_windows, window_item_id
from samuel.audio import AUDIO_EXTENSIONS, undecodable_audio_files, undecodable_audio_problem
from samuel.folder_walk import files_under
from samuel.hashing import file_sha256
from samuel.stem_names import (
    STEM_SONG_VOCAL,
    composed,
    name_key,
    stem_folder_song,
    stem_folder_songs_under,
    stem_name_role,
)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "samuel-bench-manifest/1"  # /1 files without `rejected` or `request` still read
DEFAULT_PROMPT = "instrumental pop accompaniment with bass, pad and drums"


class ManifestError(ValueError):
    pass


@dataclass(frozen=True)
class Item:
    item_id: str
    vocal: str | None  # path to the vocal stem; None only in score-only manifests (`samuel-eval score` without
    # --vocals), where the groups that read a vocal are switched off with a note
    prompt: str
    seed: int
    duration_s: float
    reference: str | None = None  # path to the true accompaniment, when known
    vocal_sha256: str = ""
    meta: str | None = None  # path to a JSON of known facts (key, tempo, beats) for synthetic items
    start_s: float = 0.0  # the window in the vocal and reference files: [start_s, start_s + duration_s)

    downmix: bool = False  # fold a vocal of more than 2 channels to stereo (--downmix)
    # score-only manifests: sha256 of the files the rows read (eval output, reference), so a changed file gets a
    # new sample id and is read and scored anew; '' for generated items (their ids do not change)
    sources_sha256: str = ""

    def request(self) -> GenerationRequest:
        return GenerationRequest(self.item_id, self.seed, self.duration_s, self.prompt,
                                 Path(self.vocal) if self.vocal else None,
                                 Path(self.reference) if self.reference else None, self.start_s, self.downmix)

    def read_vocal(self) -> Any:
        """The vocal's window, (2, S) float32 at 44.1 kHz: the same seconds every model was given."""
        return self.request().read_vocal()

    def read_reference(self) -> Any:
        """The true accompaniment's window (ItemError when the item has none)."""
        return self.request().read_reference()

    def key(self) -> dict[str, Any]:
        """What identifies the item's content (paths are not part of it: a moved folder keeps its ids)."""
        return {"item_id": self.item_id, "prompt": self.prompt, "seed": self.seed,
                "duration_s": round(self.duration_s, 6), "vocal_sha256": self.vocal_sha256,
                # a window from the file's start keeps the ids of runs made before windows existed
                **({"start_s": round(self.start_s, 6)} if self.start_s else {}),
                **({"sources_sha256": self.sources_sha256} if self.sources_sha256 else {})}


@dataclass(frozen=True)
class Rejected:
    """An input file that did not become an item, and why (reported; the run goes on without it)."""

    path: str
    problem: str


@dataclass(frozen=True)
class Manifest:
    items: tuple[Item, ...]
    source: str  # "synthetic (set v1)" or the vocals folder
    base_seed: int
    rejected: tuple[Rejected, ...] = ()
    request: dict[str, Any] = field(default_factory=dict)  # what was asked for (folder, n, window, seed)

    def to_dict(self) -> dict[str, Any]:
        return {"format": MANIFEST_FORMAT, "source": self.source, "base_seed": self.base_seed,
                "request": self.request, "rejected": [asdict(r) for r in self.rejected],
                "items": [asdict(i) for i in self.items]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ManifestError(f"not a samuel-bench manifest (format {got!r})")
        items = tuple(Item(**i) for i in data["items"])
        for item in items:
            _check_item(item)
        ids = [i.item_id for i in items]
        if len(set(ids)) != len(ids):
            raise ManifestError("two items share an id")
        rejected = tuple(Rejected(**r) for r in data.get("rejected", []))
        return cls(items, str(data["source"]), int(data["base_seed"]), rejected, dict(data.get("request") or {}))

    def write(self, path: Path) -> Path:
        from samuel.atomic import atomic_write

        return atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(self.to_dict(), indent=1) + "\n"))

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except ManifestError as err:
            raise ManifestError(f"{path}: {err}") from err
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ManifestError(f"{path}: unreadable manifest ({type(err).__name__}: {err})") from err

    def shard(self, rank: int, world: int) -> tuple[Item, ...]:
        """Rank ``rank``'s disjoint slice (items rank, rank + world, ...); together they cover every item once."""
        return self.items[rank::world]


def _seed31(text: str) -> int:
    """31 bits of sha256(text): a seed every RNG here takes."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") >> 1


def item_seed(base_seed: int, index: int) -> int:
    """A 31-bit seed per item, the same for every model (matched generation): by position, for the embedded set,
    whose ids and positions are fixed together."""
    return _seed31(f"samuel-bench\0{base_seed}\0{index}")


def item_seed_for_id(base_seed: int, item_id: str) -> int:
    """A 31-bit seed per item from its id, for items made from the user's files: adding, removing or fixing one
    file leaves every other item's seed, and so its samples, as they were (by position, every later item's moved)."""
    return _seed31(f"samuel-bench\0{base_seed}\0item\0{item_id}")


def sample_id(item: Item, model_key: dict[str, Any]) -> str:
    """Hash of the item's content, the model spec and the seed: 16 hex characters."""
    blob = json.dumps({"item": item.key(), "model": model_key}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _check_item(item: Item) -> None:
    if not (isinstance(item.item_id, str) and item.item_id and (item.vocal is None or isinstance(item.vocal, str))):
        raise ManifestError(f"item {item.item_id!r}: needs an id and a vocal path (or none)")
    if not (isinstance(item.duration_s, int | float) and math.isfinite(item.duration_s) and item.duration_s > 0):
        raise ManifestError(f"item {item.item_id!r}: duration must be > 0, got {item.duration_s!r}")
    if not (isinstance(item.start_s, int | float) and math.isfinite(item.start_s) and item.start_s >= 0):
        raise ManifestError(f"item {item.item_id!r}: start must be >= 0, got {item.start_s!r}")
    if not isinstance(item.seed, int):
        raise ManifestError(f"item {item.item_id!r}: seed must be an integer, got {item.seed!r}")


def synthetic_manifest(folder: Path, n: int, *, duration_s: float = DEFAULT_DURATION_S, base_seed: int = 0
                       ) -> Manifest:
    """Write (or reuse) the embedded synthetic set under ``folder`` and describe it."""
    metas = write_synthetic_set(folder, n, duration_s)
    items = []
    for i, meta in enumerate(metas):
        vocal = folder / "vocals" / f"{meta.item_id}.flac"
        items.append(Item(meta.item_id, str(vocal), meta.prompt, item_seed(base_seed, i), duration_s,
                          str(folder / "accompaniment" / f"{meta.item_id}.flac"), file_sha256(vocal),
                          str(folder / "meta" / f"{meta.item_id}.json")))
    return Manifest(tuple(items), f"synthetic (set v{SET_VERSION}, {n} items)", base_seed,
                    request={"synthetic": True, "n": n, "duration_s": duration_s, "seed": base_seed})


def probe_vocal(path: Path, start_s: float, downmix: bool) -> str | None:
    """Why ``path`` cannot be an item's vocal (read from its header, nothing decoded), or None when it can."""
    import soundfile as sf

    from samuel.audio import AudioError, check_channels, header_truncation

    try:
        if path.stat().st_size == 0:
            return "is an empty file (0 bytes)"
        truncated = header_truncation(path)
        info = sf.info(str(path))
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    except RuntimeError as err:  # libsndfile
        detail = str(getattr(err, "error_string", "") or err).removeprefix("Error : ")
        return f"not a readable audio file (libsndfile: {detail})"
    if truncated is not None:
        return truncated
    if info.frames <= 0 or info.samplerate <= 0:
        return "contains no audio (0 frames)"
    try:
        check_channels(int(info.channels), downmix, path)
    except AudioError as err:
        return err.problem
    if start_s >= info.frames / info.samplerate:
        return f"lasts {info.frames / info.samplerate:.2f} s, so the item's window (from {start_s:.2f} s) is empty"
    return None


def folder_manifest(vocals: Path, n: int | None, *, references: Path | None = None, prompt: str = DEFAULT_PROMPT,
                    duration_s: float = DEFAULT_DURATION_S, base_seed: int = 0, start_s: float = 0.0,
                    downmix: bool = False, window: WindowRule | None = None,
                    sum_vocals: VocalSummer | None = None) -> Manifest:
    """Items from a folder of vocal files (sorted by path, the first ``n`` usable items); references matched by
    stem. A file that cannot be a vocal (empty, unreadable, too many channels, shorter than the window's start)
    or whose item id another file already took (``x.wav`` beside ``x.flac``) is listed in ``rejected`` with the
    reason, and the run goes on without it. ``window`` cuts each song into items (:mod:`bench.windows`; default:
    one window from ``start_s``); each window is recorded in ``request['windows']`` by item id.

    A song kept as stem folders (MoisesDB: ``song/vocals/*.wav``, ``song/drums/*.wav``, ...) is one item,
    ``<song>__vocals``; none of its tracks is an item of its own. Its vocal is its vocal folder's one track, or the
    sum of its tracks (lead and backing) that ``sum_vocals(song, tracks)`` writes (bench.part_sums.vocal_sum; without
    it such a song is rejected, named). Its reference is the sum of the same song's other folders under
    ``references`` (``request['reference_parts']``, written by bench.part_sums.materialize)."""
    rule = window if window is not None else WindowRule("fixed" if start_s else "start", start_s)
    if not vocals.is_dir():
        raise ManifestError(f"{vocals}: no such folder of vocal files")
    walk = files_under(vocals)  # symlinked folders too; a loop is named, not followed
    files = [p for p in walk.files if p.suffix.lower() in AUDIO_EXTENSIONS]
    # A song kept as stem folders (MoisesDB): one item; before, each track was an item whose reference was itself
    stem_songs = stem_folder_songs_under(vocals, files)
    files = [p for p in files if not any(folder in stem_songs for folder in p.parents)]  # their tracks: no items
    # A song folder of stems (MUSDB18: vocals, drums, bass, other, mixture): its vocal is the item, the other stems
    # are not vocals. Before, each became an item of its own, and its "reference" was itself.
    vocal_folders = {p.parent for p in files if stem_name_role(p.stem) == "vocals"}
    other_stems = [p for p in files if p.parent in vocal_folders and stem_name_role(p.stem) not in (None, "vocals")]
    not_vocals = set(other_stems)
    files = [p for p in files if p not in not_vocals]
    undecodable = undecodable_audio_files(vocals)
    if not files and not undecodable and not stem_songs:
        raise ManifestError(f"{vocals}: no audio files ({' '.join(AUDIO_EXTENSIONS)})")
    refs: ReferenceIndex | None = None
    if references is not None:
        if not references.is_dir():
            raise ManifestError(f"{references}: no such folder of reference accompaniments")
        refs = ReferenceIndex.of(references)
    items: list[Item] = []
    rejected: list[Rejected] = []
    taken: dict[str, Path] = {}
    windows: dict[str, dict[str, Any]] = {}
    parts_only: dict[str, list[str]] = {}  # vocal -> the MUSDB parts (drums, bass, other) its song's sum is made of
    # named first and never given an item id: x.m4a must not take the id of the x.wav beside it
    rejected += [Rejected(str(path), str(undecodable_audio_problem(path))) for path in undecodable]
    rejected += [Rejected(str(path), why) for path, why in walk.skipped.items()]
    # (the file, or None for a stem-folder song's vocal tracks not yet summed; its path relative to ``vocals``, by
    # which its item id and reference go; the stem-folder song it is the vocal of), in path order
    entries: list[tuple[Path | None, Path, Path | None]] = [(p, p.relative_to(vocals), None) for p in files]
    entries += [(None, _stem_song_name(song, vocals) / STEM_SONG_VOCAL, song) for song in stem_songs]
    entries.sort(key=lambda e: e[1].as_posix())
    stem_song_records: dict[str, dict[str, Any]] = {}
    song_names: dict[str, str] = {}
    not_read = 0  # inputs left unread once n items were cut: said, so that --n never cuts a folder silently
    windows_left = 0  # windows of the last song read that did not fit in n
    for position, (found, relative, song) in enumerate(entries):
        if n is not None and len(items) >= n:
            not_read = len(entries) - position
            break
        path: Path
        if song is not None:
            tracks = stem_songs[song][0]
            name = relative.parent.as_posix()
            stem_song_records[name] = {"folder": str(song), "vocal_tracks": [str(t.relative_to(song)) for t in tracks],
                                       "other_tracks": len(stem_songs[song][1])}
            try:
                path = _stem_song_vocal(name, tracks, sum_vocals)
            except (OSError, RuntimeError, ValueError) as err:
                rejected.append(Rejected(str(song), f"its vocal tracks cannot be summed ({err})"))
                continue
        else:
            assert found is not None
            path = found
        item_id = safe_name(relative.with_suffix("").as_posix().replace("/", "__"))  # a song's: "<song>__vocals"
        if item_id in taken:
            rejected.append(Rejected(str(path), f"item id {item_id!r} is already taken by {taken[item_id].name}; "
                                                "rename one of them to keep both"))
            continue
        problem = probe_vocal(path, rule.start_s, downmix)
        if problem is None:
            try:
                digest = file_sha256(path)
                cuts = song_windows(path, rule, duration_s)
            except OSError as err:
                problem = f"cannot be read ({err.strerror or err})"
            except (RuntimeError, ValueError) as err:  # libsndfile mid-file, NaN samples
                problem = f"cannot be cut into windows ({str(err).removeprefix('Error : ')})"
        if problem is not None:
            rejected.append(Rejected(str(path), problem))
            continue
        ref, ambiguous = refs.reference_for(relative) if refs is not None else (None, None)
        if ambiguous is not None:
            rejected.append(Rejected(str(path), ambiguous))
            continue
        if ref is None and refs is not None and (parts := refs.parts_only(relative)
                                                 or refs.stem_folder_parts(relative.parent)):
            parts_only[str(path)] = [str(p) for p in parts]
            # the sum is named by the song's path under --vocals: train/X and test/X are two songs, two files
            if relative.parent != Path("."):
                song_names[str(path)] = relative.parent.as_posix()
        if ref is not None and ref.resolve() == path.resolve():  # --references at the vocals folder itself
            rejected.append(Rejected(str(path), f"its reference would be the vocal file itself ({ref}): "
                                                "--references names a folder of true accompaniments"))
            continue
        taken[item_id] = path
        for k, cut in enumerate(cuts):
            if n is not None and len(items) >= n:
                windows_left = len(cuts) - k
                break
            wid = window_item_id(item_id, k, rule.per_song)
            items.append(Item(wid, str(path), prompt, item_seed_for_id(base_seed, wid), duration_s,
                              str(ref) if ref else None, digest, start_s=cut.start_s, downmix=downmix))
            windows[wid] = cut.to_dict()
    if not items:
        reasons = "; ".join(f"{Path(r.path).name}: {r.problem}" for r in rejected[:3])
        raise ManifestError(f"{vocals}: no usable vocal file ({reasons})")
    request = {"vocals": str(vocals), "references": str(references) if references else None, "n": n,
               "duration_s": duration_s, "start_s": start_s, "prompt": prompt, "seed": base_seed, "downmix": downmix,
               "window": rule.to_dict(), "windows": windows}
    if other_stems:
        request["other_stems"] = [str(p.relative_to(vocals)) for p in other_stems]
    if not_read or windows_left:
        request["n_reached"] = {"inputs_not_read": not_read, "windows_left": windows_left}
    if parts_only:  # bench.part_sums writes each song's sum into the run folder and points the items at it
        request["reference_parts"] = parts_only
    if stem_song_records:
        request["stem_folder_songs"] = stem_song_records
    if names := {v: k for v, k in song_names.items() if v in parts_only}:
        request["song_names"] = names
    return Manifest(tuple(items), str(vocals), base_seed, tuple(rejected), request)


# writes the sum of a song's vocal tracks and returns (its path, whether an earlier one was reused)
VocalSummer = Callable[[str, list[Path]], tuple[Path, bool]]


def _stem_song_name(song: Path, root: Path) -> Path:
    """A stem-folder song's name as its item id and part sums go: its path under ``root`` (the root's own name when
    ``--vocals`` names the song folder itself)."""
    return Path(root.name) if song == root else song.relative_to(root)


def _stem_song_vocal(name: str, tracks: list[Path], sum_vocals: VocalSummer | None) -> Path:
    """The file a stem-folder song's item reads as its vocal: its one vocal track, or the written sum of several."""
    if len(tracks) == 1:
        return tracks[0]
    if sum_vocals is None:
        raise ValueError(f"{len(tracks)} vocal tracks, which only a samuel-eval run sums (into its run folder)")
    return sum_vocals(name, tracks)[0]


@dataclass(frozen=True)
class ReferenceIndex:
    """The audio files under a references folder, by relative path without suffix and by stem (both as
    :func:`~samuel.stem_names.name_key`: composed, case-folded), built once per manifest."""

    folder: Path
    by_path: dict[str, list[Path]]
    by_stem: dict[str, list[Path]]
    by_stem_folder: dict[str, list[Path]]  # the files of each folder (relative, as name keys): a song's stems

    @classmethod
    def of(cls, folder: Path) -> ReferenceIndex:
        by_path: dict[str, list[Path]] = {}
        by_stem: dict[str, list[Path]] = {}
        by_stem_folder: dict[str, list[Path]] = {}
        for p in files_under(folder).files:
            if p.suffix.lower() in AUDIO_EXTENSIONS:
                by_path.setdefault(name_key(p.relative_to(folder).with_suffix("").as_posix()), []).append(p)
                by_stem.setdefault(name_key(p.stem), []).append(p)
                by_stem_folder.setdefault(name_key(p.parent.relative_to(folder).as_posix()), []).append(p)
        return cls(folder, by_path, by_stem, by_stem_folder)

    def stem_folder_parts(self, song: Path) -> list[Path]:
        """The accompaniment tracks of a song kept as stem folders (MoisesDB) at ``song`` (relative) under this
        folder: every track of its folders other than the vocal and mixture ones; [] when it is not such a song."""
        prefix = name_key(song.as_posix())
        if prefix == name_key(self.folder.name) and prefix not in self.by_stem_folder:
            prefix = "."  # --references names the song folder itself
        tracks = {Path(key): files for key, files in self.by_stem_folder.items()
                  if Path(key).parent.as_posix() == prefix}
        found = stem_folder_song(tracks) if tracks and prefix not in self.by_stem_folder else None
        return found[1] if found is not None else []

    def parts_only(self, vocal: Path) -> list[Path]:
        """The MUSDB parts (drums, bass, other) of a stem-named vocal's song folder when it holds no accompaniment
        file (its accompaniment is their sum, which no file holds); [] otherwise."""
        files = self.by_stem_folder.get(name_key(vocal.parent.as_posix()), [])
        roles = {stem_name_role(p.stem) for p in files}
        if stem_name_role(vocal.stem) != "vocals" or "accompaniment" in roles:
            return []
        parts = [p for p in files if stem_name_role(p.stem) == "part"]
        return parts if len({name_key(p.stem) for p in parts}) == len(parts) else []  # drums.wav + drums.flac: no sum

    def reference_for(self, vocal: Path) -> tuple[Path | None, str | None]:
        """(the reference of the vocal at ``vocal`` (relative to the vocals folder), why it is ambiguous): the file
        at the same relative path (any audio extension) when there is one, else the only file with the vocal's stem
        anywhere in the folder; two candidates at either step are ambiguous (which one is meant cannot be known),
        and the vocal is rejected naming them rather than matched to whichever sorted last.

        A vocal named as a stem (``Song/vocals.wav``, MUSDB18 and Demucs layouts) takes the accompaniment file of its
        own song folder (``Song/accompaniment.*``, ``no_vocals``, ``instrumental``, ``inst``), never a file named as
        its own stem: that is a vocal, the same file when both folders are one."""
        if stem_name_role(vocal.stem) == "vocals":
            folder = name_key(vocal.parent.as_posix())
            candidates = [p for p in self.by_stem_folder.get(folder, []) if stem_name_role(p.stem) == "accompaniment"]
            if len(candidates) > 1:
                names = ", ".join(p.relative_to(self.folder).as_posix() for p in candidates)
                return None, (f"its reference is ambiguous: {len(candidates)} accompaniment files in its song folder "
                              f"({names}); keep one")
            return (candidates[0] if candidates else None), None
        relative = vocal.with_suffix("").as_posix()
        candidates = (prefer_exact_case(self.by_path.get(name_key(relative), []), relative,
                                        lambda p: p.relative_to(self.folder).with_suffix("").as_posix())
                      or prefer_exact_case(self.by_stem.get(name_key(vocal.stem), []), vocal.stem, lambda p: p.stem))
        if len(candidates) > 1:
            names = ", ".join(p.relative_to(self.folder).as_posix() for p in candidates)
            return None, (f"its reference is ambiguous: {len(candidates)} files in {self.folder} match it ({names}); "
                          "keep one, or put the right one at the vocal's own relative path")
        return (candidates[0] if candidates else None), None


def safe_name(name: str) -> str:
    """A file-name-safe form of an item id or model name, composed (NFC: ``café`` saved decomposed is the id of
    ``café`` composed): odd characters become '_'."""
    out = "".join(c if c.isalnum() or c in "-_." else "_" for c in composed(name))
    return out.strip("._") or "item"
