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
