"""Stems that no single file holds, summed once into the run folder (``inputs/part-sums/``).

- The true accompaniment of a song folder that holds only its parts: MUSDB18-HQ has no accompaniment file (it is
  drums + bass + other), and a MoisesDB song keeps each instrument in a folder of tracks. :func:`materialize` writes
  that sum for each such song, from the song's start to the end of its last item window (the items read it at their
  own ``start_s``), and points the items' references at it.
- The vocal of a MoisesDB song whose vocal folder holds several tracks (lead and backing): :func:`vocal_sum` writes
  their sum over the whole song before the song's windows are cut, and the item reads it as its vocal.

The file is 24-bit FLAC when the sum stays within full scale, else 32-bit float WAV (nothing is clipped). A sidecar
(``.json``) records the parts (path, size, mtime), the seconds covered and the written file's sha256; a rerun reuses
the file only when all three still hold, and writes it again otherwise (a changed part, a longer window, a torn or
edited file). The same parts give the same bytes, so item ids made from a summed vocal stay valid across reruns.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.manifest import Manifest, safe_name
from samuel.atomic import atomic_write
from samuel.audio import load_window, sum_tracks, write_audio
from samuel.hashing import file_sha256
from samuel.stem_names import STEM_SONG_SUFFIX

SUMS_FOLDER = "part-sums"
SIDECAR_FORMAT = "samuel-bench-part-sum/1"


def materialize(manifest: Manifest, folder: Path, log: Callable[[str], None]) -> Manifest:
    """``manifest`` with each parts-only item's reference set to its song's written sum (see the module doc);
    unchanged when ``manifest.request`` names no parts. A song whose parts cannot be read keeps no reference, said
    in one line; the run goes on."""
    parts_of: dict[str, list[str]] = manifest.request.get("reference_parts") or {}
    if not parts_of:
        return manifest
    songs: dict[str, list[Any]] = defaultdict(list)
    for item in manifest.items:
        if item.vocal in parts_of and item.reference is None:
            songs[item.vocal].append(item)
    song_names: dict[str, str] = manifest.request.get("song_names") or {}
    written: dict[str, str] = {}
    reused = 0
    for vocal, items in songs.items():
        parts = [Path(p) for p in parts_of[vocal]]
        end_s = max(i.start_s + i.duration_s for i in items)
        song = song_names.get(vocal) or Path(vocal).parent.name or Path(vocal).stem
        try:
            path, was_there = _song_sum(parts, end_s, folder / SUMS_FOLDER / safe_name(song))
        except (OSError, RuntimeError, ValueError) as err:  # a damaged part: this song goes without a reference
            log(f"manifest: the accompaniment of {song} (the sum of its parts) could not be written: "
                f"{err}; its items go without a reference")
            continue
        reused += was_there
        for item in items:
            written[item.item_id] = str(path)
    if written:
        log(f"manifest: {len(written)} item(s) take as reference the sum of their song's parts (MUSDB's drums + "
            f"bass + other, or a stem-folder song's instrument tracks: no file holds the accompaniment), "
            f"{len(songs)} song(s) written to {folder / SUMS_FOLDER} ({reused} reused from an earlier run)")
    items = tuple(dataclasses.replace(i, reference=written[i.item_id]) if i.item_id in written else i
                  for i in manifest.items)
    return dataclasses.replace(manifest, items=items)


def vocal_sum(tracks: list[Path], folder: Path, song: str) -> tuple[Path, bool]:
    """(the file holding the sum of a song's vocal tracks over the whole song, whether a valid earlier one was
    reused), in ``folder``'s ``part-sums/`` as ``<song>__vocals``. Raises OSError, RuntimeError or ValueError
    (libsndfile, NaN samples) naming the track that cannot be read."""
    import soundfile as sf

    seconds = []
    for track in tracks:
        try:
            info = sf.info(str(track))
        except RuntimeError as err:
            raise ValueError(f"{track}: not a readable audio file ({err})") from None
        seconds.append(info.frames / info.samplerate)
    return _song_sum(tracks, max(seconds), folder / SUMS_FOLDER / f"{safe_name(song)}{STEM_SONG_SUFFIX}")


def _song_sum(parts: list[Path], end_s: float, stem: Path) -> tuple[Path, bool]:
    """(the file holding sum(parts) over [0, end_s), whether a valid earlier one was reused)."""
    digests = [_fingerprint(p) for p in parts]
    # names appended, not with_suffix: a song named "Mr. A" would lose "._A" and share "Mr.flac" with "Mr. B"
    sidecar = stem.with_name(f"{stem.name}.json")
    if (kept := _valid(sidecar, digests, end_s)) is not None:
        return kept, True
    total = sum_tracks([load_window(part, 0.0, end_s).samples for part in parts])  # MUSDB parts differ by samples
    peak = float(np.max(np.abs(total))) if total.size else 0.0
    path = stem.with_name(f"{stem.name}.flac" if peak <= 1.0 else f"{stem.name}.wav")
    write_audio(path, total.astype(np.float32), subtype="PCM_24" if path.suffix == ".flac" else "FLOAT")
    record = {"format": SIDECAR_FORMAT, "parts": digests, "seconds": end_s, "file": path.name,
              "sha256": file_sha256(path), "peak": round(peak, 6)}
    atomic_write(sidecar, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1)))
    return path, False


def _fingerprint(part: Path) -> dict[str, Any]:
    """A part as the sidecar records it: absolute path, size and mtime (as `samuel prepare` decides a song is
    unchanged; hashing every part of 50 songs on each run would read gigabytes)."""
    st = part.stat()
    return {"path": str(part.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _valid(sidecar: Path, digests: list[dict[str, Any]], end_s: float) -> Path | None:
    """The earlier sum when its sidecar matches these parts, covers ``end_s`` and its file is the one written."""
    try:
        record = json.loads(sidecar.read_text())
        path = sidecar.with_name(str(record["file"]))
        ok = (record.get("format") == SIDECAR_FORMAT and record.get("parts") == digests
              and float(record.get("seconds", 0)) >= end_s - 1e-6 and path.is_file()
              and file_sha256(path) == record.get("sha256"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return path if ok else None
