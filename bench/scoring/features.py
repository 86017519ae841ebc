"""A content-addressed cache of vocal features on disk, shared by runs: :class:`bench.cache.Cache` with an ``.npz``
store of :class:`bench.metrics.adherence.VocalFeatures`.

Key = (sha256 of the decoded samples with their shape, dtype and rate; the identity of what computed them:
:func:`bench.metrics.adherence.vocal_features_identity`, which names the features' version, the analysis settings,
librosa's version and the pitch tracker with its version and weights). So the same vocal window read by another
run, another model or another run folder is served its features without running the pitch tracker, while another
window, another file, another tracker or another setting gets another key. The samples are what is hashed (not
the file), so the key says exactly what the features were computed from.

An entry lives at ``folder/<digest[:2]>/<digest>.npz`` and carries its key as JSON; it is written atomically
(temp file + rename) and checked on every read (a readable npz, the same key, arrays that
:meth:`VocalFeatures.from_arrays` accepts): a torn, foreign or stale entry is recomputed and rewritten, never
used, and listed in :meth:`VocalFeatureCache.redone`.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.cache import BadEntry, Cache, CacheEvent, Key
from bench.metrics.adherence import VocalFeatures

FEATURES_FORMAT = "samuel-bench-vocal-features/1"


def samples_sha256(audio: np.ndarray, rate: int) -> str:
    """sha256 of an array's bytes (C order) with its dtype, shape and sample rate."""
    a = np.ascontiguousarray(audio)
    digest = hashlib.sha256(f"{a.dtype.str} {a.shape} {int(rate)}\n".encode())
    digest.update(a.tobytes())
    return digest.hexdigest()


def features_key(audio: np.ndarray, rate: int, identity: dict[str, Any]) -> Key:
    """The cache key of the vocal features of ``audio`` at ``rate`` computed by ``identity``."""
    return Key("vocal-features", samples_sha256(audio, rate), {"computed_by": identity, "format": FEATURES_FORMAT})


def arrays_checksum(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over named arrays (name, dtype, shape and bytes, in name order): stored beside them and compared on
    read, so that features changed after they were written are redone."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


class NpzFeatureStore:
    """:class:`VocalFeatures` as an uncompressed ``.npz`` with the key's JSON and the arrays' checksum
    (:func:`arrays_checksum`) beside the arrays."""

    def read(self, path: Path, key: Key) -> VocalFeatures:
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except FileNotFoundError:
            raise
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:  # torn, foreign, pickled
            raise BadEntry(f"unreadable ({type(err).__name__}: {err})") from None
        stored = arrays.pop("key", None)
        try:
            made_for = json.loads(str(stored)) if stored is not None and stored.shape == () else None
        except json.JSONDecodeError:
            made_for = None
        if made_for != key.to_json():
            raise BadEntry("made for another key (stale or foreign)")
        checksum = arrays.pop("values_sha256", None)
        if checksum is None or checksum.shape != () or str(checksum) != arrays_checksum(arrays):
            raise BadEntry("its arrays were changed after they were written, or carry no checksum (an older "
                           "samuel-bench)")
        try:
            return VocalFeatures.from_arrays(arrays)
        except ValueError as err:
            raise BadEntry(f"malformed features ({err})") from None

    def write(self, path: Path, key: Key, value: VocalFeatures) -> None:
        from samuel.atomic import atomic_write

        arrays = value.to_arrays()
        arrays = {**arrays, "key": np.asarray(json.dumps(key.to_json(), sort_keys=True)),
                  "values_sha256": np.asarray(arrays_checksum(arrays))}

        def write(tmp: str) -> None:
            with open(tmp, "wb") as fh:  # a file object: np.savez given a name would append ".npz" to the temp name
                np.savez(fh, **arrays)

        atomic_write(path, write)


class VocalFeatureCache:
    """Vocal features under ``folder/<digest[:2]>/<digest>.npz`` (module docstring)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._cache: Cache[VocalFeatures] = Cache(self.path_for, NpzFeatureStore())

    def path_for(self, key: Key) -> Path:
        return self.folder / key.digest[:2] / f"{key.digest}.npz"

    def get(self, audio: np.ndarray, rate: int, identity: dict[str, Any],
            compute: Callable[[], VocalFeatures]) -> VocalFeatures:
        """The stored features of ``audio`` at ``rate`` for ``identity`` when valid; else ``compute()``, stored."""
        return self._cache.get(features_key(audio, rate, identity), compute)

    @property
    def events(self) -> list[CacheEvent]:
        return self._cache.events

    @property
    def computed(self) -> int:
        """How many features this cache computed (missing or unusable entries) rather than read."""
        return sum(e.outcome != "reused" for e in self._cache.events)

    def redone(self) -> list[CacheEvent]:
        """Entries that were on disk but unusable (torn, stale, malformed) and were recomputed."""
        return self._cache.redone()
