"""numba's on-disk cache written by one process at a time, so that parallel processes cannot poison it.

librosa compiles its kernels (``peak_pick``, ``localmax``, pYIN's Viterbi) with ``cache=True``: each compiled
signature goes to a data file ``<function>.<n>.nbc``, listed in an index ``<function>.nbi``. numba's
``IndexDataCacheFile.save`` reads the index, picks the first free number, writes the index and only then the data.
Two processes that compile two signatures of one function at once (score workers, pytest-xdist workers) can both
pick number n; the index can then name one signature's key and the data file hold the other's code. Every later
process that loads that key calls code compiled for other argument types: a segfault at address 0 in ``peak_pick``
(seen in CI: each fresh pytest worker crashed on it, and ``librosa.util.peak_pick`` crashed in a plain
interpreter using that environment, until its cache was deleted).

:func:`serialize_numba_cache_writes` replaces ``save`` by one that holds an exclusive ``flock`` on
``<index>.lock`` while it reads the index, writes the data and then the index (data first: an index never names a
file not yet written). Reads take no lock: each file is replaced atomically (numba writes a temporary file and
renames it), and with this order an index only names finished data.
"""

from __future__ import annotations

import itertools
from typing import Any

_MARK = "_samuel_serialized"


def serialize_numba_cache_writes() -> bool:
    """Patch numba's cache writer in this process (idempotent). False where numba is absent or its cache class is
    not the one this was written against (then numba's own writer stays)."""
    try:
        from numba.core import caching
    except ImportError:
        return False
    cls: Any = getattr(caching, "IndexDataCacheFile", None)
    if cls is None or not all(hasattr(cls, m) for m in ("save", "_load_index", "_save_index", "_save_data",
                                                          "_data_name")):
        return False
    if getattr(cls.save, _MARK, False):
        return True
    plain_save = cls.save

    def save(self: Any, key: Any, data: Any) -> None:
        import fcntl

        try:
            lock = open(self._index_path + ".lock", "a+b")
        except OSError:  # no lock file possible here: numba's own writer
            plain_save(self, key, data)
            return
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            overloads = self._load_index()
            name = overloads.get(key)
            if name is None:
                taken = set(overloads.values())
                name = next(n for n in (self._data_name(i) for i in itertools.count(1)) if n not in taken)
            self._save_data(name, data)
            overloads[key] = name
            self._save_index(overloads)

    setattr(save, _MARK, True)
    cls.save = save
    return True
