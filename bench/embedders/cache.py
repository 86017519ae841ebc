"""A content-addressed cache of embeddings on disk.

Key = sha256 of (the audio file's bytes, the embedder's identity, this cache's format). The file's name and time
play no part, so a file rewritten in place is never served its old embedding, a moved folder keeps its entries,
and a different checkpoint, option or code version gets a different key. Entries are float32 ``.npy`` files,
written atomically (temp file + rename); an entry that cannot be read back as a finite float32 (frames, dim)
array is recomputed and rewritten, never returned.

Audio is decoded by :func:`samuel.audio.load_audio` (any format libsndfile reads, checked, 44.1 kHz stereo), then
each embedder resamples to its own rate. The file is hashed before it is decoded; a file changed in between is
the one race left, and the next run, seeing new bytes, recomputes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from bench.embedders.base import Embedder
from samuel.atomic import atomic_write
from samuel.audio import load_audio
from samuel.chunking import SAMPLE_RATE

CACHE_FORMAT = "samuel-bench-embeddings/1; decode=samuel.audio.load_audio(44.1 kHz stereo)"
_HASH_BLOCK = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


def embedding_key(audio_sha256: str, identity: dict[str, str]) -> str:
    """The cache key of one file's embedding under one embedder identity."""
    payload = json.dumps({"audio": audio_sha256, "embedder": identity, "format": CACHE_FORMAT}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


class EmbeddingCache:
    """Embeddings under ``folder/<embedder name>/<key[:2]>/<key>.npy``.

    ``hits`` and ``misses`` count :meth:`get_or_compute` outcomes (a corrupt entry counts as a miss).
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.hits = 0
        self.misses = 0

    def key(self, embedder: Embedder, audio_path: str | os.PathLike[str]) -> str:
        return embedding_key(file_sha256(audio_path), embedder.identity())

    def path_for(self, embedder: Embedder, key: str) -> Path:
        return self.folder / embedder.name / key[:2] / f"{key}.npy"

    def get_or_compute(self, embedder: Embedder, audio_path: str | os.PathLike[str]) -> np.ndarray:
        """The (frames, dim) float32 embedding of ``audio_path``: from the cache, or computed and stored."""
        entry = self.path_for(embedder, self.key(embedder, audio_path))
        cached = read_entry(entry)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        embedding = embed_file(embedder, audio_path)
        write_entry(entry, embedding)
        return embedding


def embed_file(embedder: Embedder, audio_path: str | os.PathLike[str]) -> np.ndarray:
    """Decode ``audio_path`` (any length above zero; more than two channels are downmixed) and embed it."""
    loaded = load_audio(audio_path, min_seconds=0.0, downmix=True)
    return embedder.embed(loaded.samples, SAMPLE_RATE)


def read_entry(path: Path) -> np.ndarray | None:
    """A cached (frames, dim) float32 array, or None when absent or unusable (truncated, not 2-D, NaN)."""
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError):  # torn or foreign file: recompute
        return None
    usable = (array.dtype == np.float32 and array.ndim == 2 and array.shape[0] >= 1 and array.shape[1] >= 1
              and bool(np.all(np.isfinite(array))))
    return array if usable else None


def write_entry(path: Path, embedding: np.ndarray) -> None:
    """Store ``embedding`` as float32 ``.npy``, atomically."""
    array = np.ascontiguousarray(embedding, dtype=np.float32)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.save given a name would append ".npy" to the temp name
            np.save(fh, array, allow_pickle=False)

    atomic_write(path, write)
