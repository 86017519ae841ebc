"""numba's on-disk cache filled by one process at a time, so that parallel processes cannot poison it.

**The import race.** librosa compiles some kernels when its modules are imported (``guvectorize`` with signatures:
``peak_pick``, ``localmax``, ``localmin`` in ``librosa.util.utils``; more in ``core.audio``, ``core.pitch``,
``beat``), each as a kernel entry and a gufunc wrapper entry that calls it. Three plain interpreters importing
``librosa.util.utils`` at once into an empty cache (``NUMBA_CACHE_DIR``, no code of ours) left, in one of three
tries, a cache on which every later process segfaulted in ``peak_pick`` (address 0): one process's wrapper beside
another's kernel. CI's pytest workers and the score pass's workers import librosa at once on a fresh install.
:func:`librosa_with_kernels` imports those modules holding an exclusive ``flock``, so the first process compiles and
writes the cache alone and the others load it whole.

**The write race.**
Each compiled signature goes to a data file ``<function>.<n>.nbc``, listed in an index ``<function>.nbi``. numba's
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

import importlib
import importlib.util
import itertools
import os
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

_MARK = "_samuel_serialized"
# librosa's modules that compile numba kernels when imported (guvectorize with signatures)
LIBROSA_KERNEL_MODULES = ("librosa.util.utils", "librosa.core.audio", "librosa.core.pitch", "librosa.beat",
                          "librosa.onset", "librosa.sequence")
_imported: list[ModuleType] = []


def librosa_with_kernels() -> ModuleType:
    """``librosa``, its kernel modules (:data:`LIBROSA_KERNEL_MODULES`) imported once per process under an exclusive
    lock shared by every process that uses the same cache (module docstring), and numba's writer serialised."""
    if _imported:
        return _imported[0]
    import fcntl

    serialize_numba_cache_writes()
    with open(_import_lock_path(), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in LIBROSA_KERNEL_MODULES:
            importlib.import_module(name)
    import librosa

    _imported.append(librosa)
    return librosa


def _import_lock_path() -> str:
    """A lock beside librosa's cache: NUMBA_CACHE_DIR when set, else librosa's ``util/__pycache__`` (where numba
    writes it when it can), else the temporary folder (the same for every process of this user)."""
    candidates = []
    if os.environ.get("NUMBA_CACHE_DIR"):
        candidates.append(Path(os.environ["NUMBA_CACHE_DIR"]))
    spec = importlib.util.find_spec("librosa")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "util" / "__pycache__")
    candidates.append(Path(tempfile.gettempdir()))
    for folder in candidates:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "samuel-librosa-import.lock"
            with open(path, "a+b"):
                return str(path)
        except OSError:
            continue
    return os.devnull


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
