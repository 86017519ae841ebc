"""Per-clip metric groups: each registered group is built once per pass, then run on every clip through the cache.

A group's stored values are reused only when their :class:`bench.cache.Key` matches: the sample's content, the
group's and metrics' versions, the scorer's identity (checkpoint digest, preprocessing) and, for groups that read
the vocal, the vocal's content, the item's window and what computes the vocal features (the pitch tracker with its
version and weights). One clip that fails is reported with its error and the pass goes on. On the reference row,
anchored groups also score each accompaniment against a deranged item's vocal: the shuffled-pairs (chance)
anchor, kept apart from the metrics.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.cache import Cache, Key
from bench.scoring.config import REFERENCE_MODEL, ScoreConfig
from bench.scoring.inputs import ACCOMPANIMENT, SAMPLE_RATE, Clip, ItemAudio
from bench.scoring.records import Sample, clip_key
from bench.scoring.registry import CLIP, SCORER, VOCAL_PAIR, MetricGroup, resolve
from samuel.atomic import DiskFull
from samuel.hashing import file_sha256

# run(clip, items, vocal item id, same_item) -> values; same_item=False only for the shuffled-pairs anchor
Runner = Callable[[Clip, ItemAudio, str, bool], Any]


@dataclass(frozen=True)
class VocalSpec:
    """How a VOCAL_PAIR group gets its vocal features: ``fn(vocal window, rate)``, kept per pass under ``target``
    and, with an ``identity``, on disk across runs (:meth:`ItemAudio.vocal_features`)."""

    target: str
    fn: Callable[[np.ndarray, int], Any]
    identity: dict[str, Any] | None

    def features(self, items: ItemAudio, item_id: str) -> Any:
        return items.vocal_features(self.target, self.fn, item_id, self.identity)


@dataclass(frozen=True)
class ClipGroup:
    """A registered per-clip group, built: its identity (what computes it) and how to run it on one clip."""

    group: MetricGroup
    identity: dict[str, Any]
    run: Runner
    vocal: VocalSpec | None = None  # VOCAL_PAIR groups

    def key(self, clip: Clip, items: ItemAudio, kind: str = "group", vocal_item: str | None = None) -> Key:
        inputs = dict(clip.key_inputs)  # the common crop and the view, when they change what the clip is
        if self.group.kind == VOCAL_PAIR:
            vocal_item = vocal_item or clip.sample.item_id
            inputs = {"vocal": {"item_id": vocal_item, **items.vocal_key(vocal_item)}}
        elif self.group.takes_source_rate and clip.sample.source_rate is not None:
            inputs["source_rate"] = clip.sample.source_rate  # its target is given it
        return clip_key(f"{kind}:{self.group.name}", clip.sample, clip.sha256,
                        {"computed_by": self.identity, **inputs})

    def values(self, clip: Clip, items: ItemAudio, vocal_item: str | None = None) -> dict[str, float]:
        """The group's metrics for ``clip``; with ``vocal_item`` (another item), against that item's vocal."""
        result = self.run(clip, items, vocal_item or clip.sample.item_id, vocal_item is None)
        d = result.to_dict() if hasattr(result, "to_dict") else dict(result)
        if missing := [m.key for m in self.group.metrics if m.key not in d]:
            raise ValueError(f"{self.group.compute} gave no value for {missing}")
        return {m.key: float(d[m.key]) for m in self.group.metrics}


def build_group(group: MetricGroup, cfg: ScoreConfig, scorers: dict[str, Any], notes: list[str]) -> ClipGroup | None:
    """``group`` ready to run, or None (with a note and its provenance entry) when its scorer cannot run."""
    fn = resolve(group.compute)
    if group.kind == CLIP:
        if group.takes_source_rate:
            return ClipGroup(group, group.identity(), lambda clip, items, vocal, same: fn(
                clip.audio(), SAMPLE_RATE, source_rate=clip.source_rate()))
        return ClipGroup(group, group.identity(), lambda clip, items, vocal, same: fn(clip.audio(), SAMPLE_RATE))
    if group.kind == VOCAL_PAIR:
        vocal_target, clip_target = group.features
        options = {"tracker": cfg.pitch_tracker} if group.pitch_tracked else {}
        vocal_identity = resolve(group.features_identity)(**options) if group.features_identity else None
        spec = VocalSpec(vocal_target, functools.partial(resolve(vocal_target), **options), vocal_identity)
        clip_fn = resolve(clip_target)

        def pair(clip: Clip, items: ItemAudio, vocal: str, same: bool) -> Any:
            return fn(spec.features(items, vocal), clip.feature(clip_target, clip_fn), same_item=same)

        identity = group.identity()
        if vocal_identity is not None:  # the pitch tracker and its version are part of what computes the values
            identity["vocal_features"] = vocal_identity
            scorers[group.name] = {"vocal_features": vocal_identity}
        return ClipGroup(group, identity, pair, spec)
    if group.kind == SCORER:
        from baselines.base import AdapterError, WeightsChoice

        scorer = fn(WeightsChoice("pretrained", cfg.weights_for(group.weights_option)), device=cfg.device,
                    **({"resampler": cfg.resampler} if group.resamples_audio else {}))
        try:
            status, identity = scorer.status, scorer.identity()
        except AdapterError as err:
            scorers[group.name] = {"status": None, "error": str(err)}
            notes.append(f"{group.name} ({'/'.join(m.key for m in group.metrics)}) not scored: {err}")
            return None
        scorers[group.name] = {"status": status.to_dict(), "identity": identity}
        return ClipGroup(group, {**group.identity(), "scorer": identity},
                         lambda clip, items, vocal, same: scorer.score([(clip.audio(), SAMPLE_RATE)])[0])
    raise ValueError(f"metric group {group.name!r} of kind {group.kind!r} is not a per-clip group")


def shuffled_partners(item_ids: list[str], seed: int) -> dict[str, str]:
    """item id -> the item whose vocal meets its accompaniment in the shuffled anchor: a seeded derangement of the
    manifest's items (accompaniment j meets vocal perm^-1(j), so the pairs are (vocal_i, accompaniment_perm(i)))."""
    from bench.metrics.adherence import derangement

    if len(item_ids) < 2:
        return {}
    inverse = np.argsort(derangement(len(item_ids), seed))
    return {item_ids[j]: item_ids[int(inverse[j])] for j in range(len(item_ids))}


@dataclass
class ClipResult:
    """One scored clip: group -> values (groups that failed are in the errors instead)."""

    sample: Sample
    sha256: str
    values: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class ModelClips:
    """One model's per-clip results, its errors, and (reference row) the shuffled-pairs anchor values."""

    clips: list[ClipResult] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    anchors: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # group -> item_id -> values


class ComputedError(Exception):
    """An error a group raised in a worker process, raised again here with the original type's name."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type_name = type_name


@dataclass(frozen=True)
class Computed:
    """One group's values for one clip (or its anchor) computed in a worker process, or the error it raised."""

    values: dict[str, float] | None
    error_type: str = ""
    error: str = ""

    def result(self) -> dict[str, float]:
        if self.values is None:
            raise ComputedError(self.error_type, self.error)
        return self.values


# (model, sample_id, group name, the partner item of the shuffled-pairs anchor or None) -> computed elsewhere
ComputedKey = tuple[str, str, str, str | None]


def computed_key(sample: Sample, group_name: str, partner: str | None) -> ComputedKey:
    return sample.model, sample.sample_id, group_name, partner


def score_clips(samples: list[Sample], groups: list[ClipGroup], items: ItemAudio, cache: Cache,
                partners: Mapping[str, str], log: Callable[[str], None], progress: bool,
                view: str = ACCOMPANIMENT, computed: Mapping[ComputedKey, Computed] | None = None) -> ModelClips:
    """Every built group on every sample of one model (and the anchors on the reference row), each sample cut to
    its item's common crop and, in the ``mix`` view, mixed with its vocal window (:meth:`ItemAudio.clip`).

    ``computed`` holds values (or errors) that worker processes computed for entries the cache lacked
    (:mod:`bench.scoring.workers`): they go through the cache as if computed here, so the records, the redone
    entries and the errors are those of the serial pass."""
    from tqdm import tqdm

    out = ModelClips()
    model = samples[0].model if samples else ""
    for sample in tqdm(samples, desc=f"score {model}", disable=not progress, leave=False):
        if sample.item_id not in items.items:
            out.errors.append({"item_id": sample.item_id, "group": "manifest",
                               "message": f"{sample.audio.name}: item {sample.item_id!r} is not in the manifest"})
            continue
        try:
            clip = items.clip(sample, file_sha256(sample.audio), view)
        except (OSError, ValueError) as err:
            out.errors.append({"item_id": sample.item_id, "group": "read", "message": f"{sample.audio}: {err}"})
            continue
        result = ClipResult(sample, clip.sha256)
        done = computed or {}
        for g in groups:
            values = _get(cache, g, clip, items, None, out.errors, log,
                          done.get(computed_key(sample, g.group.name, None)))
            if values is not None:
                result.values[g.group.name] = values
            partner = partners.get(sample.item_id)
            if sample.model == REFERENCE_MODEL and g.group.anchored and partner is not None:
                shuffled = _get(cache, g, clip, items, partner, out.errors, log,
                                done.get(computed_key(sample, g.group.name, partner)))
                if shuffled is not None:
                    out.anchors.setdefault(g.group.name, {})[sample.item_id] = shuffled
        out.clips.append(result)
    return out


def _get(cache: Cache, g: ClipGroup, clip: Clip, items: ItemAudio, partner: str | None,
         errors: list[dict[str, str]], log: Callable[[str], None],
         computed: Computed | None = None) -> dict[str, float] | None:
    """One group (or, with ``partner``, its shuffled anchor) of one clip through the cache; None on error.
    ``computed``: what a worker process computed for it, used in place of computing it here."""
    what = g.group.name if partner is None else f"{g.group.name} (shuffled-pairs anchor, vocal of {partner})"
    try:
        key = g.key(clip, items, "group" if partner is None else "anchor", partner)
        return cache.get(key, computed.result if computed is not None else lambda: g.values(clip, items, partner))
    except (KeyboardInterrupt, DiskFull):  # a full disk stops the run (reports.cli)
        raise
    except Exception as err:  # one bad clip is reported and the pass goes on
        kind = err.type_name if isinstance(err, ComputedError) else type(err).__name__
        message = f"{clip.sample.audio.name}: {kind}: {err}"
        errors.append({"item_id": clip.sample.item_id, "group": what, "message": message})
        log(f"  {clip.sample.model} {clip.sample.item_id} {what}: {message}")
        return None
