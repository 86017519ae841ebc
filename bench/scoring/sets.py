"""The set statistics of the FAD family, one small function each (fadtk's ``score``, ``score_inf``,
``score_individual``; kadtk's KAD; the late-fusion APA variant): embeddings in, scores.json entries out.

Every function has the registry's SET signature ``f(sets: Sets, params: SetParams) -> {model: SetOutcome}`` and
sees every model of one embedder at once, so that the statistics that are bootstrapped share one
:class:`bench.bootstrap.SetDraws`: the eval rows are the same for every model (a paired design) and the reference
clips are resampled independently (a two-sample bootstrap; held fixed only for a statistics file). An outcome's
``resampled`` statistic is what :func:`bench.bootstrap.paired_set_difference` pairs across models.

Each entry names the tool whose definition it matches (``matches``), so that a reader can put it beside fadtk's,
kadtk's or audio-metrics' numbers. Arrays only: embedding happens in :mod:`bench.scoring.embeddings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.bootstrap import ResampledStatistic, SetDraws
from bench.stats import within_range

FAD_INF_MIN_CLIPS = 8  # FAD-inf fits FAD(n) over clip subsets: fewer clips give no usable fit
FAD_INF_MIN_FRAMES = 8  # the same for fadtk's frame variant
FADTK_INF_MIN_FRAMES = 500  # fadtk's score_inf starts at 500 embeddings; with fewer we space our own sizes

FAD_MATCHES = ("FAD as fadtk computes it: every frame of every clip pooled into one Gaussian, Frechet distance "
               "(Kilgour et al. 2019); the interval is ours: a bootstrap over clips")
KAD_MATCHES = {
    "reference": ("KAD x100 (kadtk's SCALE_FACTOR) with kadtk's Gaussian kernel; bandwidth: median pairwise "
                  "distance of the reference set (kadtk's README; one kernel for every model); same-clip frame "
                  "pairs left out (clip-level U-statistic)"),
    "kadtk": ("KAD x100 as kadtk's code computes it: bandwidth the lower median pairwise distance of each eval set, "
              "gamma = 1/(2h^2 + 1e-8); same-clip frame pairs left out (clip-level U-statistic; equals kadtk's "
              "frame-level statistic when every clip has one frame)"),
}
FAD_INF_MATCHES = {
    "clips": "FAD-inf over clips (ours): subsets of clips, FAD = a + b/n_clips; removes the bias of a finite clip set",
    "frames": ("FAD-inf as fadtk's score_inf computes it: subsets of frames drawn with replacement, FAD = a + "
               "b/n_frames; removes the bias only when frames are independent, so with several frames per clip "
               "it keeps most of the bias of the finite clip set"),
}
APA_LATE_FUSION_MATCHES = ("APA formula of Grachten and Nistal 2025 on late-fusion pairs [vocal_t, stem_t] of this "
                           "embedder's frames: a variant of ours, not the published metric (which embeds "
                           "loudness-matched mixes with LAION-CLAP music), and without an interval")


@dataclass(frozen=True)
class ReferenceSet:
    """The FAD reference: Gaussian statistics, the per-clip embeddings when known (KAD needs them), and APA's true
    and shuffled late-fusion (vocal, accompaniment) pair embeddings when the items have references."""

    mu: np.ndarray  # (D,)
    sigma: np.ndarray  # (D, D)
    where: str  # what the set is, for scores.json
    clips: list[np.ndarray] | None = None  # (frames_i, D) per reference clip; None for a statistics file
    apa_true: np.ndarray | None = None  # (rows, D_vocal + D) late-fusion pairs of the items' own vocals
    apa_shuffled: np.ndarray | None = None  # the same vocals with a deranged item's accompaniment


@dataclass(frozen=True)
class ModelSet:
    """One model's clip embeddings by item."""

    by_item: dict[str, np.ndarray]  # item_id -> (frames, D)
    vocals: dict[str, np.ndarray] = field(default_factory=dict)  # item_id -> the item's vocal window embedding


@dataclass(frozen=True)
class Sets:
    """One embedder's inputs: every scored model, which of them are compared (at equal n, on ``common`` items in
    this order), the reference and the shared draws (None with fewer than two common items)."""

    models: dict[str, ModelSet]
    contenders: list[str]  # compared at equal n; the reference row is not when it is the reference set
    common: list[str]  # the items every contender has, in the order the draws index
    reference: ReferenceSet
    draws: SetDraws | None

    def clips(self, model: str) -> list[np.ndarray]:
        return [self.models[model].by_item[i] for i in self.common]


@dataclass(frozen=True)
class SetParams:
    resamples: int
    seed: int
    kad_bandwidth: str = "reference"


@dataclass(frozen=True)
class SetOutcome:
    """What one set metric adds to one model's entry, and its resampled statistic when it is paired."""

    entry: dict[str, Any]
    resampled: ResampledStatistic | None = None


Outcomes = dict[str, SetOutcome]


def _compared(sets: Sets) -> list[str]:
    return sets.contenders if sets.draws is not None and len(sets.common) >= 2 else []


def fad_equal_n(sets: Sets, params: SetParams) -> Outcomes:
    """Pooled FAD at equal n with the standard interval of the shared (two-sample) bootstrap over clips."""
    from bench.metrics.sets import fad_resampled

    models = _compared(sets)
    if not models:
        return {}
    ref = sets.reference
    reference = ref.clips if ref.clips is not None else (ref.mu, ref.sigma)
    stats = fad_resampled({m: sets.clips(m) for m in models}, reference, sets.draws)  # type: ignore[arg-type]
    method = sets.draws.describe()  # type: ignore[union-attr]
    # a Frechet distance is >= 0: the normal interval's low end is cut there (same coverage, bench.stats.within_range)
    return {m: SetOutcome({"fad": {**within_range(s.estimate(method=f"{s.what}; {method}"), 0.0, None).to_dict(),
                                   "matches": FAD_MATCHES},
                           "n_equal": len(sets.common)}, s) for m, s in stats.items()}


def fad_infinity(sets: Sets, params: SetParams) -> Outcomes:
    """FAD-inf, both variants: over clips (ours, the default ``fad_inf``) and fadtk's over frames
    (``fad_inf_frames``), each against the full reference statistics."""
    from bench.metrics.frechet import fad_inf, fad_inf_clips, fadtk_fad_inf_ns

    out: Outcomes = {}
    for model in _compared(sets):
        clips = sets.clips(model)
        entry: dict[str, Any] = {}
        if len(clips) >= FAD_INF_MIN_CLIPS:
            clip_fit = fad_inf_clips(clips, sets.reference.mu, sets.reference.sigma, seed=params.seed)
            entry["fad_inf"] = {**clip_fit.to_dict(), "matches": FAD_INF_MATCHES["clips"]}
        rows = np.concatenate(clips)
        if rows.shape[0] >= FAD_INF_MIN_FRAMES:
            ns = fadtk_fad_inf_ns(rows.shape[0]) if rows.shape[0] >= FADTK_INF_MIN_FRAMES else None
            frame_fit = fad_inf(rows, sets.reference.mu, sets.reference.sigma, ns=ns, seed=params.seed,
                                replace=True)
            entry["fad_inf_frames"] = {**frame_fit.to_dict(), "matches": FAD_INF_MATCHES["frames"] + (
                "" if ns else f" (fewer than {FADTK_INF_MIN_FRAMES} frames: our subset sizes)")}
        if entry:
            out[model] = SetOutcome(entry)
    return out


def per_song(sets: Sets, params: SetParams) -> Outcomes:
    """Each clip's own FAD against the reference (fadtk's per-song FAD): the mean with a bootstrap CI, and the
    value per item."""
    from bench.bootstrap import bootstrap_mean_ci
    from bench.metrics.sets import per_song_fad

    out: Outcomes = {}
    for model in _compared(sets):
        songs = per_song_fad(sets.clips(model), sets.reference.mu, sets.reference.sigma)
        finite = songs[np.isfinite(songs)]
        if not finite.size:
            continue
        mean = within_range(bootstrap_mean_ci(finite, params.resamples, params.seed), 0.0, None)  # FAD >= 0
        out[model] = SetOutcome({
            "per_song_fad": {**mean.to_dict(),
                             "matches": "fadtk's per-song FAD (score_individual): each clip's frames against the "
                                        "reference statistics"},
            "per_song_fad_items": {i: float(v) for i, v in zip(sets.common, songs, strict=True)}})
    return out


def kad(sets: Sets, params: SetParams) -> Outcomes:
    """KAD x100, clip-level U-statistic, with the shared (two-sample) bootstrap; needs the reference's clips."""
    from bench.metrics.kernel import KAD_SCALE
    from bench.metrics.sets import kad_resampled

    models = _compared(sets)
    if not models or sets.reference.clips is None:
        return {}
    stats, bandwidths = kad_resampled({m: sets.clips(m) for m in models}, sets.reference.clips,
                                      sets.draws, params.kad_bandwidth, seed=params.seed)  # type: ignore[arg-type]
    method = sets.draws.describe()  # type: ignore[union-attr]
    return {m: SetOutcome({"kad": {**s.estimate(method=f"{s.what}; {method}").to_dict(), "scale": KAD_SCALE,
                                   "bandwidth": bandwidths[m], "bandwidth_rule": params.kad_bandwidth,
                                   "estimator": "clip-level U-statistic: same-clip frame pairs left out",
                                   "matches": KAD_MATCHES[params.kad_bandwidth]}}, s)
            for m, s in stats.items()}


def apa_late_fusion(sets: Sets, params: SetParams) -> Outcomes:
    """The late-fusion APA variant of every scored row, each clip paired frame by frame with its item's vocal."""
    from bench.metrics.adherence import apa

    ref = sets.reference
    if ref.apa_true is None or ref.apa_shuffled is None:
        return {}
    out: Outcomes = {}
    for model, model_set in sets.models.items():
        candidate = pair_rows(model_set.vocals, model_set.by_item)
        if candidate is None:
            continue
        result = apa(candidate, ref.apa_true, ref.apa_shuffled)
        out[model] = SetOutcome({"apa_late_fusion": {**result.to_dict(), "n": len(model_set.by_item),
                                                     "fusion": "late, frame-aligned",
                                                     "matches": APA_LATE_FUSION_MATCHES}})
    return out


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
