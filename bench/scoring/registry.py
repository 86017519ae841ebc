"""Every metric of the score pass, declared once with its metadata (lm-eval's registry with ``higher_is_better``).

A :class:`MetricGroup` is what one computation yields (one call per clip, or one set statistic per embedder); its
:class:`Metric` entries are the numbers, each with a version, label, unit, format, range, direction, chance level
and its Table I column. The score pass, ``samuel-eval --metrics``, Table I, the report's figures and scores.json's
``metrics`` block all read this module; nothing else names a metric's facts.

Compute targets are lazy ``"module:attribute"`` strings, imported only when a pass uses the group. What a target
is called with depends on the group's kind:

- ``CLIP``: ``f(audio (2, S) float32, rate) -> mapping`` over the generated clip alone; a group with
  ``takes_source_rate`` also gets ``source_rate=``, the lowest rate the clip had before it was resampled to ``rate``
  (``Sample.source_rate``).
- ``VOCAL_PAIR``: ``f(vocal_features, clip_features, same_item: bool) -> mapping``, where the features come from
  the group's ``features`` pair: ``(vocal_fn, clip_fn)``, each ``fn(audio, rate)``. The vocal is the item's window
  (features computed once per item and reused by every model, and with ``features_identity`` cached on disk across
  runs); ``same_item=False`` for the shuffled-pairs anchor. ``pitch_tracked`` groups' ``vocal_fn`` also takes
  ``tracker=`` (``--pitch-tracker``).
- ``SCORER``: a class built once per pass as ``cls(WeightsChoice, device=...)`` with ``status``, ``identity()``
  and ``score([(audio, rate)]) -> [mapping]``; its checkpoint comes from the config field ``weights_option``.
- ``SET``: per metric, ``f(sets: Sets, params: SetParams) -> {model: SetOutcome}`` over every model's clip
  embeddings by one embedder (:mod:`bench.scoring.sets`), all models at once so that they share one bootstrap
  draw (paired differences); a model the statistic does not apply to is absent.
- ``MIX_SET``: the group's ``compute`` is ``f(items, samples, cfg, cache, scorers, notes) -> {model: SetOutcome}``
  over its own embedder (``embedder``) of audio it builds itself: the published APA embeds vocal + stem mixes.

A returned mapping may be an object with ``to_dict()``; only the metrics' keys (per-clip) or ``result_keys``
(sets) are kept. Adding a metric: its function in its module, and one line here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from samuel.registry import close_matches_hint, import_target

CLIP = "clip"
VOCAL_PAIR = "vocal-pair"
SCORER = "scorer"
SET = "set"
MIX_SET = "mix-set"
KINDS = (CLIP, VOCAL_PAIR, SCORER, SET, MIX_SET)
SET_KINDS = (SET, MIX_SET)  # set-level statistics: no per-clip values


class UnknownMetricError(ValueError):
    pass


@dataclass(frozen=True)
class Metric:
    """One number a group yields, with everything a reader needs to interpret it."""

    key: str  # "chroma_agreement"; the result key in the group's values
    label: str  # "Chroma agreement"
    version: int = 1  # bump when the number changes for the same input: cached values are recomputed
    unit: str = ""  # "LUFS", "dBTP", "share", "1-10" ...
    fmt: str = ".3g"  # format spec of a value (and its CI bounds) in tables
    low: float | None = None  # the range: None where unbounded
    high: float | None = None
    higher_is_better: bool | None = None  # None: a diagnostic with no better direction
    chance: float | None = None  # the value that random pairing (or noise) gives, where one is known
    table1: str | None = None  # Table I column label ("{embedder}" is filled for set metrics); None: not shown
    compute: str | None = None  # SET metrics only: "module:function"
    result_keys: tuple[str, ...] = ()  # SET metrics only: keys it adds to the set entry (default: (key,))
    undefined: str = ""  # per-clip: where a clip's value is not finite (so outside n), said beside the count

    def format(self, value: float) -> str:
        return format(value, self.fmt)

    @property
    def keys(self) -> tuple[str, ...]:
        return self.result_keys or (self.key,)

    def to_dict(self) -> dict[str, Any]:
        """The facts scores.json carries next to the numbers."""
        return {"label": self.label, "version": self.version, "unit": self.unit,
                "range": [_json_bound(self.low), _json_bound(self.high)],
                "higher_is_better": self.higher_is_better, "chance": self.chance}


@dataclass(frozen=True)
class MetricGroup:
    """One computation of the score pass and the metrics it yields."""

    name: str  # what --metrics names
    kind: str  # CLIP | VOCAL_PAIR | SCORER | SET
    help: str  # one line for --help
    metrics: tuple[Metric, ...]
    compute: str | None = None  # per-clip kinds: "module:attribute" (see the module docstring)
    features: tuple[str, str] | None = None  # VOCAL_PAIR: (vocal features, clip features) "module:function"
    version: int = 1  # bump when the group's computation changes for every metric
    weights_option: str | None = None  # the ScoreConfig field naming the checkpoint (aesthetics_weights, ...)
    resamples_audio: bool = False  # SCORER: its constructor takes ``resampler`` (ScoreConfig.resampler, --resampler)
    takes_source_rate: bool = False  # CLIP: its target takes ``source_rate=`` (the clip's rate before 44.1 kHz)
    anchored: bool = False  # the reference row also scores shuffled pairs: the lower (chance) anchor
    table1_rank: int | None = None  # where its columns go in Table I; None: no columns
    figure_rank: int | None = None  # where its panels go in the report's figures; None: no panels
    embedder: str | None = None  # MIX_SET: the one embedder its Table I columns name (SET: every --embedders)
    # VOCAL_PAIR: its vocal features take ``tracker=`` (ScoreConfig.pitch_tracker, --pitch-tracker)
    pitch_tracked: bool = False
    # VOCAL_PAIR: "module:function"(**the vocal features' options) -> JSON identity of the vocal features; it joins
    # the group's identity and keys the on-disk vocal feature cache shared by runs (None: not cached on disk)
    features_identity: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"metric group {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        keys = [m.key for m in self.metrics]
        if len(set(keys)) != len(keys):
            raise ValueError(f"metric group {self.name!r}: a metric key appears twice in {keys}")
        if self.kind == SET:
            if any(m.compute is None for m in self.metrics):
                raise ValueError(f"metric group {self.name!r}: every set metric needs its compute target")
        elif self.compute is None:
            raise ValueError(f"metric group {self.name!r}: a per-clip or mix-set group needs its compute target")
        if (self.kind == MIX_SET) != (self.embedder is not None):
            raise ValueError(f"metric group {self.name!r}: an embedder goes with kind {MIX_SET!r}, and only there")
        if (self.kind == VOCAL_PAIR) != (self.features is not None):
            raise ValueError(f"metric group {self.name!r}: features go with kind {VOCAL_PAIR!r}, and only there")
        if self.kind != VOCAL_PAIR and (self.pitch_tracked or self.features_identity is not None):
            raise ValueError(f"metric group {self.name!r}: pitch_tracked and features_identity go with kind "
                             f"{VOCAL_PAIR!r}, and only there")
        if self.takes_source_rate and self.kind != CLIP:
            raise ValueError(f"metric group {self.name!r}: takes_source_rate goes with kind {CLIP!r}, and only there")

    @property
    def per_clip(self) -> bool:
        return self.kind not in SET_KINDS

    def identity(self) -> dict[str, Any]:
        """What makes a stored value of this group current: the group's and every metric's version."""
        return {"group": self.name, "version": self.version, "metrics": {m.key: m.version for m in self.metrics}}

    def metric(self, key: str) -> Metric:
        for m in self.metrics:
            if m.key == key:
                return m
        raise UnknownMetricError(f"metric group {self.name!r} has no metric {key!r}")


# -- the registry ---------------------------------------------------------------------------------------------------

_SHARE = {"unit": "share", "low": 0.0, "high": 1.0}
_SILENT = "-inf for digital silence"
_NO_VOICE = "undefined where the vocal window has no voiced frame or onset, e.g. a silent vocal"
_AES = {"unit": "1-10", "fmt": ".2f", "low": 1.0, "high": 10.0}

GROUPS: tuple[MetricGroup, ...] = (
    MetricGroup("signal", CLIP, "loudness, true peak, clipping, silence, spectral flatness (no weights)",
                compute="bench.metrics.signal:signal_metrics", takes_source_rate=True, figure_rank=2, metrics=(
                    Metric("loudness_lufs", "Integrated loudness", unit="LUFS", fmt=".1f", undefined=_SILENT),
                    # v2: digital silence is -inf (it was floored at -240 dBTP and pulled the mean down)
                    Metric("true_peak_dbtp", "True peak", version=2, unit="dBTP", fmt=".2f", undefined=_SILENT),
                    Metric("clipping_share", "Clipping share", higher_is_better=False, **_SHARE),
                    Metric("silence_share", "Silence share", higher_is_better=False, **_SHARE),
                    # v2: over 20 Hz - 15 kHz for every row (it was full band: it measured the source's rate)
                    Metric("spectral_flatness", "Spectral flatness, 20 Hz-15 kHz", version=2, low=0.0, high=1.0,
                           undefined="NaN for silence or a source rate below 32 kHz (no content in part of the band)"),
                )),
    MetricGroup("adherence", VOCAL_PAIR, "chroma, key and rhythm agreement with the item's vocal (swift-f0 or "
                "pYIN: --pitch-tracker)",
                compute="bench.metrics.adherence:pair_scores", anchored=True, table1_rank=2, figure_rank=0,
                features=("bench.metrics.adherence:vocal_features", "bench.metrics.adherence:accompaniment_features"),
                pitch_tracked=True, features_identity="bench.metrics.adherence:vocal_features_identity",
                metrics=(
                    # v2: chance-corrected, (share - 1/12) / (11/12): flat chroma and silence score 0
                    Metric("chroma_agreement", "Chroma agreement", version=2, fmt=".3f", low=-1 / 11, high=1.0,
                           higher_is_better=True, chance=0.0, table1="Chroma agreement", undefined=_NO_VOICE),
                    # v2: mean over frames of r(vocal profile, frame chroma): white noise no longer scores +-0.7
                    Metric("key_agreement", "Key agreement", version=2, fmt=".3f", low=-1.0, high=1.0,
                           higher_is_better=True, chance=0.0, table1="Key agreement", undefined=_NO_VOICE),
                    Metric("rhythm_agreement", "Rhythm agreement", fmt=".3f", low=-1.0, high=1.0,
                           higher_is_better=True, chance=0.0, table1="Rhythm agreement", undefined=_NO_VOICE),
                    # v2: chance on the frame grid, edge onsets dropped; a diagnostic, not expected to order shifts
                    Metric("onset_alignment", "Onset grid coincidence (diagnostic)", version=2, fmt=".3f", high=1.0,
                           chance=0.0, undefined=_NO_VOICE),
                )),
    MetricGroup("aesthetics", SCORER, "audiobox-aesthetics PQ, PC, CE, CU (needs its checkpoint)",
                compute="bench.metrics.aesthetics:AestheticsScorer", weights_option="aesthetics_weights",
                resamples_audio=True,
                table1_rank=0, figure_rank=1, metrics=(
                    Metric("PQ", "Production quality", higher_is_better=True, table1="PQ", **_AES),
                    Metric("PC", "Production complexity", table1="PC", **_AES),
                    Metric("CE", "Content enjoyment", higher_is_better=True, table1="CE", **_AES),
                    Metric("CU", "Content usefulness", higher_is_better=True, table1="CU", **_AES),
                )),
    MetricGroup("fad", SET, "FAD at equal n, FAD-inf (clips; fadtk's frames), per-song FAD, KAD x100 and the "
                "late-fusion APA variant per embedder (--embedders)",
                weights_option="embedder_weights", table1_rank=1, metrics=(
                    Metric("fad", "FAD", low=0.0, higher_is_better=False, table1="FAD ({embedder})",
                           compute="bench.scoring.sets:fad_equal_n", result_keys=("fad", "n_equal")),
                    Metric("fad_inf", "FAD-inf over clips", version=2, higher_is_better=False,
                           compute="bench.scoring.sets:fad_infinity", result_keys=("fad_inf", "fad_inf_frames")),
                    Metric("per_song_fad", "Per-song FAD", low=0.0, higher_is_better=False,
                           compute="bench.scoring.sets:per_song", result_keys=("per_song_fad", "per_song_fad_items")),
                    Metric("kad", "KAD x100", version=2, unit="x100", higher_is_better=False,
                           table1="KAD x100 ({embedder})", compute="bench.scoring.sets:kad"),
                    Metric("apa_late_fusion", "APA, late-fusion variant", version=2, fmt=".3f", low=0.0, high=1.0,
                           higher_is_better=True, chance=0.0, compute="bench.scoring.sets:apa_late_fusion"),
                )),
    MetricGroup("apa", MIX_SET, "APA as published (Grachten and Nistal 2025): vocal + stem mixes at -20 LUFS, "
                "5 s windows, LAION-CLAP music (needs its checkpoint)",
                compute="bench.scoring.embeddings:published_apa", embedder="clap-laion-music",
                weights_option="embedder_weights", table1_rank=3, metrics=(
                    Metric("apa", "APA", fmt=".3f", low=0.0, high=1.0, higher_is_better=True, chance=0.0,
                           table1="APA ({embedder})"),
                )),
)

_BY_NAME = {g.name: g for g in GROUPS}
if len(_BY_NAME) != len(GROUPS):
    raise ValueError(f"a metric group name appears twice in {[g.name for g in GROUPS]}")


def group_names() -> list[str]:
    """Every group, in registry order (the default of --metrics)."""
    return [g.name for g in GROUPS]


def group(name: str) -> MetricGroup:
    """The group called ``name``; UnknownMetricError with close matches otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownMetricError(f"unknown metric group {name!r}.{close_matches_hint(name, group_names())} "
                                 f"Known: {', '.join(group_names())}.") from None


def check_groups(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``names`` when every one is a group (UnknownMetricError naming the first that is not)."""
    for name in names:
        group(name)
    return tuple(names)


def metric(name: str) -> tuple[MetricGroup, Metric] | None:
    """``"group.key"`` (as scores.json names per-clip metrics) -> its group and metric, or None when unknown."""
    group_name, _, key = name.partition(".")
    g = _BY_NAME.get(group_name)
    if g is None:
        return None
    return next(((g, m) for m in g.metrics if m.key == key), None)


def per_clip_metrics() -> list[tuple[MetricGroup, Metric]]:
    return [(g, m) for g in GROUPS if g.per_clip for m in g.metrics]


def table1_groups() -> list[MetricGroup]:
    """Groups with Table I columns, in column order."""
    return sorted((g for g in GROUPS if g.table1_rank is not None), key=lambda g: g.table1_rank)


resolve = import_target  # "module:attribute" -> the attribute; the heavy import happens only here


def _json_bound(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x
