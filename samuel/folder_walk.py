"""The files under a folder, symbolic links to folders followed, each folder read once.

Python 3.11's ``Path.rglob`` lists a symlinked folder but never enters it, so ``eval/linked -> /elsewhere`` was
passed over in silence. Here it is entered; a link back to a folder already read (a loop, or a second path to the
same folder) is not entered again and is named, so a loop ends and no file is read twice. A link to nothing is
named too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class FolderFiles:
    """What :func:`files_under` found: the files (sorted), and the folders it did not enter and the links to nothing
    it met, with why."""

    files: list[Path]
    skipped: dict[Path, str] = field(default_factory=dict)


def files_under(folder: Path) -> FolderFiles:
    """Every file under ``folder`` (sub-folders and symlinked folders too; symlinked files as themselves), sorted.

    A folder whose real path was already read (a symlink loop such as ``a/up -> ..``, or two links to one folder)
    is entered once, at its first path in sorted order (real folders before symlinks within a folder); the others
    are in ``skipped``, as is every symbolic link to nothing (named, not passed over: the files of a drive not mounted
    must not go missing in silence). Unreadable folders are passed over, as ``rglob`` does."""
    root = Path(folder)
    seen: dict[str, Path] = {os.path.realpath(root): root}  # real path -> the path it is read at
    files: list[Path] = []
    skipped: dict[Path, str] = {}
    for here, dirs, names in os.walk(root, followlinks=True):
        base = Path(here)
        files += [base / n for n in names if (base / n).is_file()]
        for name in names:  # os.walk lists a link to nothing among the files: a drive not mounted, a moved target
            if (base / name).is_symlink() and not (base / name).exists():
                skipped[base / name] = f"a symbolic link to {os.readlink(base / name)}, which does not exist"
        entered = []
        for name in sorted(dirs, key=lambda d: ((base / d).is_symlink(), d)):
            real = os.path.realpath(base / name)
            if real in seen:
                first = seen[real]
                loop = first == base or first in base.parents
                skipped[base / name] = (f"a symbolic link back to {first} (a loop): not followed" if loop
                                        else f"the folder {real}, already read as {first}: not read twice")
                continue
            seen[real] = base / name
            entered.append(name)
        dirs[:] = entered  # os.walk enters only these
    return FolderFiles(sorted(files), skipped)

