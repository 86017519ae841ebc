"""The set statistics of the FAD family, one small function each (fadtk's ``score``, ``score_inf``,
``score_individual``): embeddings in, a dict for scores.json out, None where a statistic does not apply to a row.

Every function has the registry's SET signature ``f(model, reference, params)``. Arrays only: the embedding of the
clips, the reference set and the vocals happens in :mod:`bench.scoring.embeddings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

FAD_INF_MIN_FRAMES = 8  # FAD-inf fits FAD(n) over subsets: fewer pooled frames than this give no usable fit


@dataclass(frozen=True)
class ReferenceSet:
    """The FAD reference: Gaussian statistics, the per-clip embeddings when known (KAD needs them), and APA's true
    and shuffled (vocal, accompaniment) pair embeddings when the items have references."""

    mu: np.ndarray  # (D,)
    sigma: np.ndarray  # (D, D)
    where: str  # what the set is, for scores.json
    clips: list[np.ndarray] | None = None  # (frames_i, D) per reference clip; None for a statistics file
    apa_true: np.ndarray | None = None  # (rows, D_vocal + D) late-fusion pairs of the items' own vocals
    apa_shuffled: np.ndarray | None = None  # the same vocals with a deranged item's accompaniment


@dataclass(frozen=True)
class ModelSet:
    """One model's clip embeddings: all of them by item, and the items scored at equal n (every contender is
    scored on the items all contenders have: FAD falls with n)."""

    by_item: dict[str, np.ndarray]  # item_id -> (frames, D)
    equal_n: list[str] = field(default_factory=list)  # empty for a row that is not compared (the reference set)
    vocals: dict[str, np.ndarray] = field(default_factory=dict)  # item_id -> the item's vocal window embedding

    @property
    def clips(self) -> list[np.ndarray]:
        return [self.by_item[i] for i in self.equal_n]


@dataclass(frozen=True)
class SetParams:
    resamples: int
    seed: int


def fad_equal_n(model: ModelSet, reference: ReferenceSet, params: SetParams) -> dict[str, Any] | None:
    """Pooled FAD at equal n with the standard bootstrap interval over clips (bench.metrics.sets)."""
    from bench.metrics.sets import clip_bootstrap_fad

    clips = model.clips
    if len(clips) < 2:
        return None
    fad = clip_bootstrap_fad(clips, reference.mu, reference.sigma, params.resamples, params.seed)
    return {"fad": fad.to_dict(), "n_equal": len(clips)}


def fad_infinity(model: ModelSet, reference: ReferenceSet, params: SetParams) -> dict[str, Any] | None:
    """FAD-inf (Chong and Forsyth 2020): the intercept of FAD(n) = a + b/n over subsets of the pooled frames."""
    from bench.metrics.frechet import fad_inf

    clips = model.clips
    if len(clips) < 2:
        return None
    rows = np.concatenate(clips)
    if rows.shape[0] < FAD_INF_MIN_FRAMES:
        return None
    return {"fad_inf": fad_inf(rows, reference.mu, reference.sigma, seed=params.seed).to_dict()}


def per_song(model: ModelSet, reference: ReferenceSet, params: SetParams) -> dict[str, Any] | None:
    """Each clip's own FAD against the reference (fadtk's per-song FAD): the mean with a bootstrap CI, and the
    value per item."""
    from bench.bootstrap import bootstrap_mean_ci
    from bench.metrics.sets import per_song_fad

    clips = model.clips
    if len(clips) < 2:
        return None
    songs = per_song_fad(clips, reference.mu, reference.sigma)
    finite = songs[np.isfinite(songs)]
    if not finite.size:
        return None
    return {"per_song_fad": bootstrap_mean_ci(finite, params.resamples, params.seed).to_dict(),
            "per_song_fad_items": {i: float(v) for i, v in zip(model.equal_n, songs, strict=True)}}


def kad(model: ModelSet, reference: ReferenceSet, params: SetParams) -> dict[str, Any] | None:
    """KAD (unbiased MMD^2, RBF kernel) with a bootstrap over clips; needs the reference's embeddings."""
    from bench.metrics.sets import clip_bootstrap_kad

    clips = model.clips
    if len(clips) < 2 or reference.clips is None:
        return None
    estimate, bandwidth = clip_bootstrap_kad(clips, np.concatenate(reference.clips), None, params.resamples,
                                             params.seed)
    return {"kad": {**estimate.to_dict(), "bandwidth": bandwidth,
                    "bandwidth_rule": "median pairwise distance of the reference embeddings"}}


def apa_late_fusion(model: ModelSet, reference: ReferenceSet, params: SetParams) -> dict[str, Any] | None:
    """APA (Grachten and Nistal 2025) of every clip of the row, each paired frame by frame with its item's vocal."""
    from bench.metrics.adherence import apa

    if reference.apa_true is None or reference.apa_shuffled is None:
        return None
    candidate = pair_rows(model.vocals, model.by_item)
    if candidate is None:
        return None
    result = apa(candidate, reference.apa_true, reference.apa_shuffled)
    return {"apa": {**result.to_dict(), "n_items": len(model.by_item), "fusion": "late, frame-aligned"}}


def pair_rows(vocals: dict[str, np.ndarray], stems: dict[str, np.ndarray]) -> np.ndarray | None:
    """Frame-aligned late-fusion pair embeddings [vocal_t, stem_t] over the items both have (rows = items x
    frames, each item cut to its shorter side); None with fewer than two items."""
    from bench.metrics.adherence import late_fusion_pairs

    rows = []
    for item, stem in stems.items():
        vocal = vocals.get(item)
        if vocal is None:
            continue
        t = min(len(vocal), len(stem))
        rows.append(late_fusion_pairs(vocal[:t], stem[:t]))
    return np.concatenate(rows) if len(rows) >= 2 else None
