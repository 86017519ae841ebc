"""A content-addressed cache of embeddings on disk: :class:`bench.cache.Cache` with a float32 ``.npy`` store.

Key = (the audio file's sha256; the embedder's identity; the window read from the file, when only part of it is;
this cache's format). The file's name and time play no part, so a file rewritten in place is never served its old
embedding, a moved folder keeps its entries, and a different checkpoint, option, code version or window gets a
different key. An entry lives at ``folder/<embedder>/<digest[:2]>/<digest>.npy``, named by its key's digest, and
is written atomically (temp file + rename); one that cannot be read back as a finite float32 (frames, dim) array
is recomputed and rewritten, never returned, and listed in :meth:`EmbeddingCache.redone`.

Audio is decoded by :func:`samuel.audio.load_window` (any format libsndfile reads, checked, 44.1 kHz stereo; the
whole file when no window is given), then each embedder resamples to its own rate. The file is hashed before it
is decoded; a file changed in between is the one race left, and the next run, seeing new bytes, recomputes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bench.cache import BadEntry, Cache, CacheEvent, Key
from bench.embedders.base import Embedder
from samuel.atomic import atomic_write
from samuel.audio import load_window
from samuel.chunking import SAMPLE_RATE
from samuel.hashing import file_sha256

CACHE_FORMAT = "samuel-bench-embeddings/2; decode=samuel.audio.load_window(44.1 kHz stereo)"


def embedding_key(audio_sha256: str, embedder: Embedder, start_s: float = 0.0,
                  duration_s: float | None = None) -> Key:
    """The cache key of one file's (or one window's) embedding under one embedder."""
    window = None if not start_s and duration_s is None else {
        "start_s": round(float(start_s), 6), "duration_s": None if duration_s is None else round(float(duration_s), 6)}
    return Key("embedding", audio_sha256, {"embedder": embedder.identity(), "name": embedder.name, "window": window,
                                           "format": CACHE_FORMAT})


class NpyStore:
    """A (frames, dim) float32 array as ``.npy``; the path is the key's digest, so the file is the key's own."""

    def read(self, path: Path, key: Key) -> np.ndarray:
        try:
            array = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise
        except (OSError, ValueError, EOFError) as err:  # torn or foreign file: recompute
            raise BadEntry(f"unreadable ({type(err).__name__}: {err})") from None
        if not (array.dtype == np.float32 and array.ndim == 2 and array.shape[0] >= 1 and array.shape[1] >= 1):
            raise BadEntry(f"not a (frames, dim) float32 array: {array.dtype} {array.shape}")
        if not np.all(np.isfinite(array)):
            raise BadEntry("holds NaN or infinite values")
        return array

    def write(self, path: Path, key: Key, value: np.ndarray) -> None:
        array = np.ascontiguousarray(value, dtype=np.float32)

        def write(tmp: str) -> None:
            with open(tmp, "wb") as fh:  # a file object: np.save given a name would append ".npy" to the temp name
                np.save(fh, array, allow_pickle=False)

        atomic_write(path, write)


class EmbeddingCache:
    """Embeddings under ``folder/<embedder name>/<digest[:2]>/<digest>.npy``.

    ``hits`` and ``misses`` count :meth:`get_or_compute` outcomes (a corrupt entry counts as a miss).
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._cache: Cache[np.ndarray] = Cache(lambda key: self.path_for_name(key.identity["name"], key.digest),
                                               NpyStore())

    @property
    def hits(self) -> int:
        return sum(e.outcome == "reused" for e in self._cache.events)

    @property
    def misses(self) -> int:
        return sum(e.outcome != "reused" for e in self._cache.events)

    def redone(self) -> list[CacheEvent]:
        """Entries that were on disk but unusable (torn, not finite float32) and were recomputed."""
        return self._cache.redone()

    def key(self, embedder: Embedder, audio_path: str | os.PathLike[str], start_s: float = 0.0,
            duration_s: float | None = None) -> str:
        """The digest that names the entry of ``audio_path`` (or its window) under ``embedder``."""
        return embedding_key(file_sha256(audio_path), embedder, start_s, duration_s).digest

    def path_for(self, embedder: Embedder, key: str) -> Path:
        return self.path_for_name(embedder.name, key)

    def path_for_name(self, name: str, digest: str) -> Path:
        return self.folder / name / digest[:2] / f"{digest}.npy"

    def get_or_compute(self, embedder: Embedder, audio_path: str | os.PathLike[str], start_s: float = 0.0,
                       duration_s: float | None = None) -> np.ndarray:
        """The (frames, dim) float32 embedding of ``audio_path`` (or of its window ``[start_s, start_s +
        duration_s)``): from the cache, or computed and stored."""
        key = embedding_key(file_sha256(audio_path), embedder, start_s, duration_s)
        return self._cache.get(key, lambda: embed_file(embedder, audio_path, start_s, duration_s))


def embed_file(embedder: Embedder, audio_path: str | os.PathLike[str], start_s: float = 0.0,
               duration_s: float | None = None) -> np.ndarray:
    """Decode ``audio_path`` (or its window; any length above zero; more than two channels are downmixed) and
    embed it."""
    loaded = load_window(audio_path, start_s, duration_s, min_seconds=0.0, downmix=True)
    return np.asarray(embedder.embed(loaded.samples, SAMPLE_RATE), dtype=np.float32)
