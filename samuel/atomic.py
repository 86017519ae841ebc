"""Atomic file writes: a temp file in the target's folder, then a rename, so a reader never sees half a file."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT)


class DiskFull(OSError):
    """A write failed because the file system is full (or the quota is spent). No item is at fault, so the handlers
    that let one bad item fail alone let this through, and the command stops with one line naming the file."""


def is_disk_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in OUT_OF_SPACE


def disk_full_message(err: OSError, command: str) -> str:
    """The one line a command ends with when the disk filled up."""
    where = f" writing {err.filename}" if err.filename else ""
    return (f"{command}: no space left on the device{where}. Files already finished are kept (each was written "
            "whole); free some space and rerun the same command to resume.")


def no_room_for(directory: str | os.PathLike[str], nbytes: int) -> bool:
    """Whether ``directory``'s file system has less than ``nbytes`` free: how a library that reports a failed
    write without its errno (libsndfile's "System error.") is told apart from a full disk."""
    try:
        return shutil.disk_usage(directory).free < nbytes
    except OSError:
        return False


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path``; on any error the old file is left as it was.

    A full disk raises :class:`DiskFull` naming ``path`` (a failed ``write()`` names no file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except OSError as err:
        if is_disk_full(err) and not isinstance(err, DiskFull):
            raise DiskFull(err.errno, err.strerror, str(path)) from err
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
