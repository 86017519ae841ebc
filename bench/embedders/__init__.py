"""FAD embedding backends (VGGish, LAION CLAP, EnCodec) behind one interface, a content-addressed embedding cache
and reference statistics.

- :mod:`bench.embedders.base`: the :class:`Embedder` interface (cheap constructor, lazy weights, ``identity()``,
  ``embed(audio, rate) -> (frames, dim)``).
- :mod:`bench.embedders.registry`: ``EMBEDDERS`` (lazy ``"module:Class"`` strings, fadtk's model names) and
  :func:`get_embedder`.
- :mod:`bench.embedders.features`: pure signal code (mono/resample/16-bit input path, VGGish log-mel).
- :mod:`bench.embedders.cache`: :class:`EmbeddingCache` (a :class:`bench.cache.Cache`), keyed by file content,
  embedder identity and the window read.
- :mod:`bench.embedders.reference`: :func:`reference_stats` from a folder or a fadtk ``.npz``; the npz writer.

Importing this package imports no backend (and not transformers): each is imported when chosen.
"""

from bench.embedders.base import Embedder
from bench.embedders.cache import EmbeddingCache, embed_file
from bench.embedders.reference import (
    ReferenceStats,
    StatsFileError,
    pooled_stats,
    read_stats_npz,
    reference_stats,
    write_stats_npz,
)
from bench.embedders.registry import EMBEDDERS, UnknownEmbedderError, embedder_names, get_embedder, register_embedder

__all__ = ["EMBEDDERS", "Embedder", "EmbeddingCache", "ReferenceStats", "StatsFileError", "UnknownEmbedderError",
           "embed_file", "embedder_names", "get_embedder", "pooled_stats", "read_stats_npz", "reference_stats",
           "register_embedder", "write_stats_npz"]
