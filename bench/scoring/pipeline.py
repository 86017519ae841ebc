"""The score pass: per-clip metric groups, set statistics and the summary over the samples the caller names.

    DIR/scores/<model>/<item>__<sid>.json   per-clip records: the cache of each clip's groups (bench.scoring.records)
    DIR/scores/<model>/mix/...              the same for the mix view (--score-on mix|both)
    DIR/cache/embeddings/                   content-addressed float32 embeddings (bench.embedders.cache)
    DIR/cache/embeddings/view-mix/          the mix view's embeddings (bench.scoring.embeddings.MixCache)
    DIR/cache/vocal-features/               content-addressed vocal features (bench.scoring.features); --feature-cache
                                            puts them in a folder shared by runs
    DIR/scores.json                         per model: means with bootstrap CIs, the FAD family, paired differences,
                                            every clip's values, errors; the adherence anchors; the metrics' facts
                                            (bench.scoring.registry); the scorers' provenance; what was redone

Every write is atomic and every computation goes through a cache keyed by content and identity, so a rerun
computes only what is missing or stale and says which stored entries it had to redo (torn, stale). The per-clip
groups without weights (signal, adherence) run in worker processes (bench.scoring.workers; ``--score-workers``),
with the values of a serial pass. The caller
passes the current samples (of the current manifest and model specs); the pass never globs samples/.

Every model is scored on the window common to all scored models, per item (bench.scoring.inputs.CommonCrop; in
scores.json ``crop``, and a note when an item is cropped). ``cfg.score_on`` picks the views: ``accompaniment``
(``models``, as before) and/or ``mix`` (``mix``: signal, aesthetics and the FAD family on the vocal window + the
clip, loudness-matched, in entries shaped like ``models``'; own Holm families). Adherence and the published APA
read the accompaniment with its vocal and sit in ``models`` whatever the view.

Samples of random-weight models are scored only with ``score_random``, and every number from them carries the
RANDOM label; Table I never shows them.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.bootstrap import MIN_BOOTSTRAP_UNITS
from bench.cache import Cache, CacheEvent
from bench.embedders.cache import EmbeddingCache
from bench.runfolder import RunFolder
from bench.scoring.clips import ClipGroup, ModelClips, build_group, score_clips, shuffled_partners
from bench.scoring.config import REFERENCE_MODEL, ScoreConfig
from bench.scoring.embeddings import SET_FAMILY, SET_FAMILY_MEANS, MixCache, score_sets
from bench.scoring.features import VocalFeatureCache
from bench.scoring.inputs import ACCOMPANIMENT, MIX, CommonCrop, ItemAudio, song_clusters
from bench.scoring.records import RANDOM_NOT_SCORED, SCORES_FORMAT, RecordStore, Sample, record_path_for
from bench.scoring.registry import MIX_SET, VOCAL_PAIR, MetricGroup, group
from bench.scoring.summary import PER_CLIP_FAMILY, PER_CLIP_FAMILY_MEANS, anchor_estimates, summarise
from bench.scoring.workers import ClipWorkers

SCORE_PACKAGES = ("samuel-bench", "torch", "numpy", "scipy", "librosa", "transformers", "audiobox-aesthetics",
                  "pyloudnorm", "soxr", "swift-f0", "onnxruntime")
MAX_REDONE_LISTED = 5  # the note on redone cache entries names this many, then counts the rest
VOCAL_FEATURES_DIR = "vocal-features"  # DIR/cache/vocal-features: the default vocal feature cache


def score(run: RunFolder, manifest: Any, cfg: ScoreConfig, samples: dict[str, list[Sample]],
          log: Callable[[str], None] | None = None, progress: bool = True) -> dict[str, Any]:
    """Score the current ``samples`` (model -> its samples) and write ``run.scores_path`` atomically.

    Args:
        run: the run folder (every path comes from it).
        manifest: the :class:`bench.manifest.Manifest`; each sample's vocal and reference are its item's windows.
        cfg: what to compute.
        samples: the samples of the current manifest and model specs, by model; nothing else is scored.
        log: one line per event (default: stderr).
        progress: per-model progress bars.

    Returns:
        The content of scores.json.
    """
    say = log or (lambda s: print(s, file=sys.stderr))
    notes: list[str] = []
    scorers: dict[str, Any] = {}  # group or embedder -> provenance of the scorer used (JSON)
    scored = _scorable(samples, cfg, notes)
    if cfg.baseline in scored and any(s.random for s in scored[cfg.baseline]):
        # a comparison against outputs of random weights tests nothing about the others (plumbing only)
        notes.append(f"No paired differences: the baseline {cfg.baseline} ran with RANDOM weights (plumbing only); "
                     "--baseline NAME compares every row with another one")
        cfg = dataclasses.replace(cfg, baseline="")
    if not scored:
        why = ("models with random weights write none unless --generate-random" if not any(samples.values()) else
               "the samples there are from random weights: --score-random scores them, labelled")
        say(f"score: no scorable samples ({why}; a model that failed wrote none)")
    crop = CommonCrop.of(manifest.items, scored)
    notes += [n for n in (crop.note(), _ignored_note(crop)) if n]
    vocal_cache = VocalFeatureCache(cfg.feature_cache or run.root / "cache" / VOCAL_FEATURES_DIR)
    items = ItemAudio.of(manifest.items, crop, vocal_cache)
    groups = _vocal_groups_off([group(name) for name in cfg.groups], manifest.items, notes)
    views = _views(cfg, manifest.items, notes)
    # adherence and the published APA read the accompaniment with its vocal in every view; the rest per view
    base_groups = groups if ACCOMPANIMENT in views else [g for g in groups if g.kind in VIEW_FIXED_KINDS]
    mix_groups = [g for g in groups if g.kind not in VIEW_FIXED_KINDS] if MIX in views else []
    # scorers with weights are built (and their checkpoints looked up) only when there is something to score
    built_all = [g for g in (build_group(g, cfg, scorers, notes) for g in groups
                             if g.per_clip and scored and (g in base_groups or g in mix_groups)) if g is not None]
    built = [b for b in built_all if b.group in base_groups]
    records = Cache(record_path_for(run), RecordStore())
    # the shuffled-pairs anchor pairs a reference accompaniment with another item's vocal: only items with both
    with_both = {s.item_id for s in scored.get(REFERENCE_MODEL, [])}
    partners = (shuffled_partners([i for i, item in items.items.items() if item.vocal and i in with_both], cfg.seed)
                if any(g.group.anchored for g in built) and REFERENCE_MODEL in scored else {})
    workers = ClipWorkers(cfg.score_workers, cfg, items, built_all, say)
    try:
        clips: dict[str, ModelClips] = {}
        computed = workers.prefetch(scored, built, records, partners, progress)
        for model, group_samples in scored.items():
            say(f"score {model}: {len(group_samples)} clips")
            clips[model] = score_clips(group_samples, built, items, records, partners, say, progress,
                                       computed=computed)
        set_groups = [g for g in base_groups if not g.per_clip]
        embeddings = EmbeddingCache(cfg.cache or run.embeddings_dir)
        sets = score_sets(set_groups, items, cfg, scored, embeddings, scorers, notes) if set_groups and scored else {}
        per_item = {m: {c.sample.item_id: c.values for c in mc.clips} for m, mc in clips.items()}
        clusters = song_clusters(manifest.items)
        summary = summarise(per_item, {m: len(s) for m, s in scored.items()}, cfg.baseline, cfg.resamples, cfg.seed,
                            clusters=clusters)
        anchors = _anchors(built, clips, summary, cfg, notes, clusters)
        if clusters is not None:
            notes.append(clustered_note(clusters, bool(sets)))
        mix_records = Cache(record_path_for(run, MIX), RecordStore())
        mixes = MixCache(cfg.cache or run.embeddings_dir)
        mix = (_mix_view(mix_groups, [b for b in built_all if b.group in mix_groups], items, cfg, scored, mix_records,
                         embeddings, mixes, scorers, notes, say, progress, workers) if mix_groups and scored else None)
    finally:
        workers.close()
    redone = [*records.redone(), *embeddings.redone(), *mix_records.redone(), *mixes.redone(), *vocal_cache.redone()]
    if redone:
        notes.append(_redone_note(redone, run.root))
        say(f"  {notes[-1]}")  # as the generate pass says a redone sample, not only in scores.json
    data = {"format": SCORES_FORMAT, "config": cfg.to_dict(), "provenance": score_provenance(cfg),
            "metrics": _metric_facts(groups), "scorers": scorers, "anchors": anchors,
            "models": {m: _model_entry(scored[m], clips[m], summary[m], sets.get(m, {})) for m in scored},
            "families": {PER_CLIP_FAMILY: PER_CLIP_FAMILY_MEANS, SET_FAMILY: SET_FAMILY_MEANS},
            "notes": notes, "redone": [{"path": str(e.path), "reason": e.reason} for e in redone],
            "n_items": len(manifest.items), "crop": crop.to_dict(), "score_on": list(views)}
    if mix is not None:
        data["mix"] = mix
    from samuel.atomic import atomic_write

    text = json.dumps(data, indent=1, default=_json_default, allow_nan=True) + "\n"
    atomic_write(run.scores_path, lambda tmp: Path(tmp).write_text(text))
    say(f"scores: {run.scores_path}")
    return data


VIEW_FIXED_KINDS = (VOCAL_PAIR, MIX_SET)  # adherence, published APA: vocal vs accompaniment by definition
MIX_PER_CLIP_FAMILY, MIX_SET_FAMILY = f"{PER_CLIP_FAMILY} ({MIX})", f"{SET_FAMILY} ({MIX})"


def _views(cfg: ScoreConfig, items: Any, notes: list[str]) -> tuple[str, ...]:
    """``cfg.views``, less ``mix`` when no item has a vocal to mix with (with a note)."""
    if MIX in cfg.views and not any(getattr(item, "vocal", None) for item in items):
        notes.append("the mix view (--score-on mix|both) not scored: it needs the vocal each accompaniment was made "
                     "for (samuel-eval score --vocals DIR, matched by file stem)")
        return tuple(v for v in cfg.views if v != MIX)
    return cfg.views


def _ignored_note(crop: CommonCrop) -> str | None:
    if not crop.ignored:
        return None
    return (f"Common crop: {len(crop.ignored)} sample(s) too short to set it (scored as they are): "
            + "; ".join(crop.ignored[:MAX_REDONE_LISTED]) + ("; ..." if len(crop.ignored) > MAX_REDONE_LISTED else ""))


def _mix_view(groups: list[MetricGroup], built: list[ClipGroup], items: ItemAudio, cfg: ScoreConfig,
              scored: dict[str, list[Sample]], records: Cache, embeddings: EmbeddingCache, mixes: MixCache,
              scorers: dict[str, Any], notes: list[str], say: Callable[[str], None], progress: bool,
              workers: ClipWorkers) -> dict[str, Any]:
    """scores.json ``mix``: the per-clip groups and set metrics of ``groups`` on each item's vocal window + the
    model's clip, loudness-matched (bench.metrics.mix); every model's entry has the shape of ``models``; its
    paired comparisons are their own Holm families (:data:`MIX_PER_CLIP_FAMILY`, :data:`MIX_SET_FAMILY`)."""
    from bench.metrics.mix import MIX_RULE

    clips = {}
    computed = workers.prefetch(scored, built, records, {}, progress, view=MIX)
    for model, model_samples in scored.items():
        say(f"score {model} ({MIX}): {len(model_samples)} clips")
        clips[model] = score_clips(model_samples, built, items, records, {}, say, progress, view=MIX,
                                   computed=computed)
    set_groups = [g for g in groups if not g.per_clip]
    sets = (score_sets(set_groups, items, cfg, scored, embeddings, scorers, notes, view=MIX, mixes=mixes)
            if set_groups else {})
    per_item = {m: {c.sample.item_id: c.values for c in mc.clips} for m, mc in clips.items()}
    summary = summarise(per_item, {m: len(s) for m, s in scored.items()}, cfg.baseline, cfg.resamples, cfg.seed,
                        family=MIX_PER_CLIP_FAMILY, clusters=song_clusters(items.items.values()))
    return {"view": MIX, "rule": MIX_RULE, "groups": [g.name for g in groups],
            "families": {MIX_PER_CLIP_FAMILY: PER_CLIP_FAMILY_MEANS + " (mix view)",
                         MIX_SET_FAMILY: SET_FAMILY_MEANS + " (mix view)"},
            "models": {m: _model_entry(scored[m], clips[m], summary[m], sets.get(m, {})) for m in scored}}


def _vocal_groups_off(groups: list[MetricGroup], items: Any, notes: list[str]) -> list[MetricGroup]:
    """``groups`` less those that read the vocal (adherence, APA) when no item has one (a score-only manifest
    without --vocals): they are switched off with a note rather than failing on every clip."""
    if any(getattr(item, "vocal", None) for item in items):
        return groups
    off = [g for g in groups if g.kind in (VOCAL_PAIR, MIX_SET)]
    for g in off:
        notes.append(f"{g.name} not scored: it needs the vocal each accompaniment was made for "
                     "(samuel-eval score --vocals DIR, matched by file stem)")
    return [g for g in groups if g not in off]


def _scorable(samples: dict[str, list[Sample]], cfg: ScoreConfig, notes: list[str]) -> dict[str, list[Sample]]:
    """The models to score: random-weight samples only with ``score_random``."""
    scored = {}
    for model, model_samples in samples.items():
        if not model_samples:
            continue
        if any(s.random for s in model_samples) and not cfg.score_random:
            notes.append(f"{model}: {RANDOM_NOT_SCORED}")
            continue
        scored[model] = model_samples
    return scored


def _anchors(built: list[ClipGroup], clips: dict[str, ModelClips], summary: dict[str, dict[str, Any]],
             cfg: ScoreConfig, notes: list[str], clusters: dict[str, str] | None = None) -> dict[str, Any]:
    anchored = [g.group.name for g in built if g.group.anchored]
    if not anchored:
        return {}
    if REFERENCE_MODEL not in clips:
        notes.append("adherence anchors need the true accompaniments: add the 'reference' model "
                     "(with --references for your own vocals)")
        return {}
    reference = clips[REFERENCE_MODEL]
    shuffled = {g: {item: {g: values} for item, values in reference.anchors.get(g, {}).items()} for g in anchored}
    return anchor_estimates(summary[REFERENCE_MODEL]["per_clip"], shuffled, len(reference.clips), cfg.resamples,
                            cfg.seed, clusters)


def clustered_note(clusters: dict[str, str], with_sets: bool) -> str:
    """What the intervals of a run with several windows per song resample."""
    songs = len(set(clusters.values()))
    note = (f"{len(clusters)} items are windows of {songs} songs, which are not independent draws: per-clip "
            "intervals resample songs (a song's windows together; Student's t over songs below "
            f"{MIN_BOOTSTRAP_UNITS} songs) and the paired sign-flip test flips a song's windows together")
    if with_sets:
        note += ("; the set statistics (FAD, KAD, APA) draw songs too, each resample cut to the same number of "
                 "items (the FAD reference clips are resampled on their own)")
    return note + "."


def _model_entry(samples: list[Sample], clips: ModelClips, summary: dict[str, Any], sets: dict[str, Any]
                 ) -> dict[str, Any]:
    random = any(s.random for s in samples)
    return {"n_samples": len(samples), "weights": "random" if random else samples[0].weights,
            "label": "RANDOM weights: plumbing only, not a quality result" if random else None,
            "per_clip": summary["per_clip"], "paired": summary["paired"], "sets": sets, "errors": clips.errors,
            "clips": [{"item_id": c.sample.item_id, "sample_id": c.sample.sample_id, "sha256": c.sha256,
                       "values": {f"{g}.{k}": v for g, values in c.values.items() for k, v in values.items()}}
                      for c in clips.clips]}


def _metric_facts(groups: list[MetricGroup]) -> dict[str, Any]:
    """The registry's facts of every metric this pass computes ('group.key' -> label, unit, range, ...)."""
    return {f"{g.name}.{m.key}": {**m.to_dict(), "kind": g.kind} for g in groups for m in g.metrics}


def _redone_note(events: list[CacheEvent], root: Path) -> str:
    def rel(path: Path) -> str:
        try:
            return str(path.relative_to(root))
        except ValueError:
            return str(path)

    named = "; ".join(f"{rel(e.path)} ({e.reason})" for e in events[:MAX_REDONE_LISTED])
    more = f"; and {len(events) - MAX_REDONE_LISTED} more" if len(events) > MAX_REDONE_LISTED else ""
    return f"{len(events)} stored result(s) could not be used and were recomputed: {named}{more}"


def score_provenance(cfg: ScoreConfig) -> dict[str, Any]:
    """Versions of what scores, git state, device and seed (the run's own provenance is in results.json)."""
    from samuel.provenance import provenance

    return provenance(cfg.device, cfg.seed, packages=SCORE_PACKAGES)


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    return str(o)
