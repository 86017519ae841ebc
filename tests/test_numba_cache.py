"""numba's on-disk cache written by one process at a time (samuel.numba_cache).

Four processes saving 60 signatures each into one function's cache with numba's own writer left 41 keys naming
another key's code and lost 152 from the index (the race that crashed CI's pytest workers in librosa's peak_pick);
with the serialised writer, none. The test runs the serialised writer only: the race itself is not deterministic.
"""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba")

PROCESSES, SAVES = 4, 40


def _writer(args: tuple[str, int]) -> None:
    from numba.core.caching import IndexDataCacheFile

    from samuel.numba_cache import serialize_numba_cache_writes

    assert serialize_numba_cache_writes()
    folder, who = args
    cache = IndexDataCacheFile(folder, "fn", ("stamp", 1))
    for i in range(SAVES):
        cache.save((who, i), (who, i, b"x" * 2000))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="flock")
def test_processes_saving_at_once_leave_every_key_with_its_own_code(tmp_path: Path) -> None:
    from numba.core.caching import IndexDataCacheFile

    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        pool.map(_writer, [(str(tmp_path), who) for who in range(PROCESSES)])
    cache = IndexDataCacheFile(str(tmp_path), "fn", ("stamp", 1))
    loaded = {(who, i): cache.load((who, i)) for who in range(PROCESSES) for i in range(SAVES)}
    assert [k for k, v in loaded.items() if v is None] == []  # no key lost from the index
    assert [k for k, v in loaded.items() if v[:2] != k] == []  # no key naming another's code
    assert len(list(tmp_path.glob("fn.*.nbc"))) == PROCESSES * SAVES


def test_the_patch_is_idempotent_and_in_place_once_the_pitch_module_is_imported() -> None:
    from numba.core.caching import IndexDataCacheFile

    import bench.metrics.pitch  # noqa: F401  (imports serialise the writer)
    from samuel.numba_cache import serialize_numba_cache_writes

    patched = IndexDataCacheFile.save
    assert getattr(patched, "_samuel_serialized", False)
    assert serialize_numba_cache_writes() and IndexDataCacheFile.save is patched
