"""The file and folder names that say which stem of a song a file holds (MUSDB18, Demucs, MoisesDB conventions).

Pure and import-light: `samuel prepare` pairs a song's files by these names, and `samuel-eval --vocals` uses them to
tell a song folder's vocal from its other stems.
"""

from __future__ import annotations

import re
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


def stem_name_role(name: str) -> str | None:
    """``'vocals' | 'accompaniment' | 'part' | 'mixture'`` for a stem's name (a file stem or a folder name)."""
    return ROLES.get(normal_name(name))


# `samuel generate FOLDER -o OUT` writes <name>.accompaniment.wav: the file of the vocal <name>
GENERATED_SUFFIX = ".accompaniment"


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
