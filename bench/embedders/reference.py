"""Reference statistics for FAD: the Gaussian (mu, cov) of a reference set's embeddings, in float64.

A reference is either a folder of audio (every file embedded, all frames pooled, as fadtk and the Google FAD do)
or a statistics ``.npz`` in fadtk's published format: for each model, ``<model>.mu`` (D,) and ``<model>.cov``
(D, D), the model named as in fadtk (``vggish``, ``clap-laion-music``, ``encodec-emb``; our registry names are
the same). :func:`write_stats_npz` writes that format, so statistics computed here can be shared the same way.

Statistics in a file cannot say which checkpoint or preprocessing made them; a file is trusted to match the
embedder whose key it is read under. Embedders with non-default options use another key (see
``Embedder.stats_key``), so they never read the default model's statistics.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.embedders.base import Embedder
from bench.embedders.cache import EmbeddingCache, embed_file
from samuel.atomic import atomic_write
from samuel.audio import AUDIO_EXTENSIONS, undecodable_audio_files, undecodable_audio_problem
from samuel.folder_walk import files_under


class StatsFileError(ValueError):
    """A statistics file that cannot be used; the message names the file and says what is wrong."""


@dataclass(frozen=True)
class ReferenceStats:
    """Mean and covariance of a reference set's embeddings, with where they came from."""

    key: str  # the model key (embedder.stats_key)
    mu: np.ndarray  # (D,) float64
    cov: np.ndarray  # (D, D) float64, symmetric
    source: str  # the folder or the .npz file
    n_frames: int | None = None  # pooled frames; None when read from a statistics file
    n_files: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {"key": self.key, "dim": int(self.mu.shape[0]), "source": self.source, "n_frames": self.n_frames,
                "n_files": self.n_files}


# -- pure ----------------------------------------------------------------------------------------------------------


def pooled_stats(chunks: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean and unbiased covariance (ddof=1) of all rows of all chunks, without concatenating them.

    Chunks are merged one at a time with the pairwise update of Chan, Golub & LeVeque (1979): for a running
    (n, mu, S) and a chunk (m, mu_c, S_c), with S the centred sum of outer products and d = mu_c - mu,
    S <- S + S_c + d d^T n m / (n + m), mu <- mu + d m / (n + m). The result equals ``gaussian_stats`` of the
    concatenation up to round-off, in float64, with memory O(D^2) whatever the number of frames.

    Args:
        chunks: (frames_i, D) arrays, one D for all, at least two rows in all.

    Returns:
        ``(mu (D,), cov (D, D), n rows)``.
    """
    n, mu, scatter = 0, None, None
    for i, chunk in enumerate(chunks):
        x = np.asarray(chunk, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"chunk {i}: expected (frames >= 1, D >= 1) embeddings, got shape {x.shape}")
        if mu is not None and x.shape[1] != mu.shape[0]:
            raise ValueError(f"chunk {i}: dimension {x.shape[1]} differs from the earlier chunks' {mu.shape[0]}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"chunk {i}: holds NaN or infinite values")
        m = x.shape[0]
        mu_c = x.mean(axis=0)
        xc = x - mu_c
        if mu is None:
            n, mu, scatter = m, mu_c, xc.T @ xc
            continue
        d = mu_c - mu
        scatter = scatter + xc.T @ xc + np.outer(d, d) * (n * m / (n + m))
        mu = mu + d * (m / (n + m))
        n += m
    if n < 2:
        raise ValueError(f"need at least 2 embedding frames in all for a covariance, got {n}")
    cov = scatter / (n - 1)
    return mu, (cov + cov.T) / 2.0, n


# -- statistics files ----------------------------------------------------------------------------------------------


def stats_keys(model: str) -> tuple[str, str]:
    """The two array names of ``model`` in a statistics file."""
    return f"{model}.mu", f"{model}.cov"


def read_stats_npz(path: str | os.PathLike[str], model: str, dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(mu, cov)`` of ``model`` from a fadtk-format statistics file, as float64.

    Raises:
        StatsFileError: no such file, not an ``.npz``, no arrays for ``model`` (the message lists the models
            present), wrong shapes, a dimension other than ``dim``, or non-finite values.
    """
    path = Path(path)
    mu_key, cov_key = stats_keys(model)
    if not path.is_file():
        raise StatsFileError(f"{path}: no such statistics file")
    try:
        with np.load(path, allow_pickle=False) as data:
            present = sorted(data.files)
            if mu_key not in present or cov_key not in present:
                models = sorted({k.rsplit(".", 1)[0] for k in present if k.endswith((".mu", ".cov"))})
                raise StatsFileError(f"{path}: no statistics for model {model!r} (wanted {mu_key!r} and {cov_key!r}); "
                                     f"keys present: {present}; models present: {models}")
            mu, cov = data[mu_key], data[cov_key]
    except StatsFileError:
        raise
    except (OSError, ValueError, EOFError) as err:  # not a zip, torn, or pickled objects
        raise StatsFileError(f"{path}: not a readable .npz statistics file ({err})") from None
    check_stats(mu, cov, f"{path} [{model}]", dim)
    return np.asarray(mu, dtype=np.float64), np.asarray(cov, dtype=np.float64)


def check_stats(mu: np.ndarray, cov: np.ndarray, where: str, dim: int | None = None) -> None:
    """Raise StatsFileError unless mu is (D,), cov is (D, D), D == dim (when given) and all values finite."""
    mu, cov = np.asarray(mu), np.asarray(cov)
    if mu.ndim != 1 or mu.shape[0] < 1:
        raise StatsFileError(f"{where}: mu must be 1-D (D,), got shape {mu.shape}")
    d = mu.shape[0]
    if cov.shape != (d, d):
        raise StatsFileError(f"{where}: cov must be (D, D) = ({d}, {d}) to match mu, got shape {cov.shape}")
    if dim is not None and d != dim:
        raise StatsFileError(f"{where}: statistics have D={d}, the embedder gives D={dim}")
    if not (np.issubdtype(mu.dtype, np.floating) and np.issubdtype(cov.dtype, np.floating)):
        raise StatsFileError(f"{where}: mu and cov must be floating point, got {mu.dtype} and {cov.dtype}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(cov))):
        raise StatsFileError(f"{where}: mu or cov holds NaN or infinite values")


def write_stats_npz(path: str | os.PathLike[str], stats: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """Write ``{model: (mu, cov)}`` as a fadtk-format statistics file (float64), atomically."""
    arrays: dict[str, np.ndarray] = {}
    for model, (mu, cov) in stats.items():
        check_stats(mu, cov, f"{path} [{model}]")
        mu_key, cov_key = stats_keys(model)
        arrays[mu_key] = np.asarray(mu, dtype=np.float64)
        arrays[cov_key] = np.asarray(cov, dtype=np.float64)
    if not arrays:
        raise ValueError("no statistics to write")

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez given a name would append ".npz" to the temp name
            np.savez(fh, **arrays)

    return atomic_write(path, write)


# -- orchestration -------------------------------------------------------------------------------------------------


def audio_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Audio files under ``folder`` (recursively, by extension), hidden files skipped, in a stable sorted order."""
    folder = Path(folder)
    return sorted(p for p in files_under(folder).files if p.suffix.lower() in AUDIO_EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def reference_stats(source: str | os.PathLike[str], embedder: Embedder,
                    cache: EmbeddingCache | None = None) -> ReferenceStats:
    """Reference statistics from a folder of audio (embedded, through ``cache`` when given) or a ``.npz`` file.

    Args:
        source: a folder of reference audio, or a statistics file with ``<model>.mu`` and ``<model>.cov``.
        embedder: gives the model key (``embedder.stats_key``) and, for a folder, the embeddings.
        cache: where embeddings are kept between runs; None embeds every file afresh.
    """
    path = Path(source)
    key = embedder.stats_key
    if path.is_dir():
        files = audio_files(path)
        undecodable = undecodable_audio_files(path)
        if undecodable:  # statistics over part of the folder would pass for the whole folder's
            more = f" ({len(undecodable) - 1} more such file(s) in {path})" if len(undecodable) > 1 else ""
            raise ValueError(f"{undecodable[0]}: {undecodable_audio_problem(undecodable[0])}{more}")
        if not files:
            raise ValueError(f"{path}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in this folder")
        embed = cache.get_or_compute if cache is not None else embed_file
        mu, cov, n = pooled_stats(embed(embedder, f) for f in files)
        return ReferenceStats(key, mu, cov, str(path), n_frames=n, n_files=len(files))
    if path.is_file() and path.suffix.lower() == ".npz":
        mu, cov = read_stats_npz(path, key, embedder.dim)
        return ReferenceStats(key, mu, cov, str(path))
    raise ValueError(f"{path}: neither a folder of reference audio nor a .npz statistics file")
