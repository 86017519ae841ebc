"""Input checks shared by the metrics: embeddings as a finite float64 (N, D) array."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def as_embeddings(embeddings: ArrayLike, name: str, why_two_rows: str) -> np.ndarray:
    """``embeddings`` as float64 (N, D) with N >= 2, D >= 1 and no NaN or infinity; a clear error otherwise."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {x.shape}")
    if x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"{name} needs N >= 2 rows ({why_two_rows}) and D >= 1, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds {int(np.sum(~np.isfinite(x)))} NaN or infinite values")
    return x


MAX_CHANNELS = 16  # more rows than this in a 2-D array is almost surely (samples, channels): refused


def mono_samples(audio: ArrayLike, name: str) -> np.ndarray:
    """(samples,) or (channels, samples) -> finite, non-empty float64 mono (the channel mean); ValueError naming
    ``name`` and the problem otherwise."""
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 2:
        if x.shape[0] > MAX_CHANNELS:
            raise ValueError(f"{name} must be (samples,) or (channels, samples); got shape {x.shape}, which looks "
                             "like (samples, channels): transpose it")
        x = x.mean(axis=0)
    elif x.ndim != 1:
        raise ValueError(f"{name} must be (samples,) or (channels, samples), got {x.ndim}-D shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds {int(np.sum(~np.isfinite(x)))} NaN or infinite samples")
    return x
