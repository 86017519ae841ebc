"""The score pass's workers: per-clip metric groups, the FAD family and APA per embedder, adherence anchors.

Each per-clip group has an identity (what computed it); bench.score stores it with the values and recomputes a
group only when the identity or the sample's hash changes. Scorers with weights (audiobox-aesthetics, the
embedders) are built lazily, once per pass; a missing checkpoint turns its group off with one note that says what
was looked for and how to get it, and every other group still runs.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from baselines.base import AdapterError, WeightsChoice
from bench.manifest import Item

if TYPE_CHECKING:
    from bench.score import ClipRecords, Sample, ScoreContext

SAMPLE_RATE = 44_100  # samuel.audio.load_audio's rate
SIGNAL_IDENTITY = {"metric": "signal", "version": 1}
ADHERENCE_VERSION = 1


# -- per-clip groups --------------------------------------------------------------------------------------------


def _aesthetics(ctx: ScoreContext) -> Any | None:
    """The audiobox-aesthetics scorer, or None (with a note) when it cannot run."""
    if "aesthetics" not in ctx.cfg.groups:
        return None
    if "aesthetics" not in ctx.scorers:
        from bench.metrics.aesthetics import AestheticsScorer

        scorer = AestheticsScorer(WeightsChoice("pretrained", ctx.cfg.aesthetics_weights), device=ctx.cfg.device)
        try:
            status = scorer.status
            ctx.scorers["aesthetics"] = {"status": status.to_dict(), "identity": scorer.identity()}
            ctx.state["aesthetics"] = scorer
        except AdapterError as err:
            ctx.scorers["aesthetics"] = {"status": None, "error": str(err)}
            ctx.notes.append(f"aesthetics (PQ/PC/CE/CU) not scored: {err}")
    return ctx.state.get("aesthetics")


def _vocal_features(ctx: ScoreContext, path: Path) -> Any:
    from bench.metrics.adherence import vocal_features
    from samuel.audio import load_audio

    cache = ctx.state.setdefault("vocal_features", {})
    if path not in cache:  # not through ctx.audio: that keeps the clip being scored
        cache[path] = vocal_features(load_audio(path, min_seconds=0.1).samples, SAMPLE_RATE)
    return cache[path]


def adherence_partners(ctx: ScoreContext) -> dict[str, Item]:
    """item id -> the item whose vocal it meets in the shuffled anchor (a seeded derangement of the manifest)."""
    if "partners" not in ctx.state:
        from bench.metrics.adherence import derangement

        items = ctx.manifest.items
        perm = derangement(len(items), ctx.cfg.seed) if len(items) >= 2 else np.arange(len(items))
        # accompaniment j meets vocal perm^-1(j): together the pairs are (vocal_i, accompaniment_perm(i))
        inverse = np.argsort(perm)
        ctx.state["partners"] = {items[j].item_id: items[int(inverse[j])] for j in range(len(items))
                                    if int(inverse[j]) != j}
    return ctx.state["partners"]


def score_clips(ctx: ScoreContext, records: ClipRecords, samples: list[Sample], errors: list[dict[str, str]],
                progress: bool) -> dict[str, dict[str, dict[str, float]]]:
    """Every per-clip group of every sample of one model; returns item -> group -> values."""
    from tqdm import tqdm

    from bench.score import _set_group
    from samuel.generate import file_sha256

    groups = ctx.cfg.groups
    aesthetics = _aesthetics(ctx)
    partners = adherence_partners(ctx) if "adherence" in groups else {}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for sample in tqdm(samples, desc=f"score {sample_model(samples)}", disable=not progress, leave=False):
        try:
            sha = file_sha256(sample.audio)
        except OSError as err:
            errors.append({"item_id": sample.item_id, "group": "read", "message": f"{sample.audio}: {err}"})
            continue
        record = records.read(sample, sha)
        todo = _todo(ctx, record, sample, partners, aesthetics)
        if todo:
            for group, identity, compute in todo:
                try:
                    values = compute()
                    _set_group(record, group, identity, values)
                except KeyboardInterrupt:
                    raise
                except Exception as err:  # one bad clip is reported and the pass goes on
                    message = f"{sample.audio.name}: {type(err).__name__}: {err}"
                    _set_group(record, group, identity, None, message)
                    ctx.log(f"  {sample.model} {sample.item_id} {group}: {message}")
            records.write(sample, record)
        for group, entry in record["groups"].items():
            if group.removesuffix("_shuffled") not in groups:
                continue  # kept in the record from an earlier run with other --metrics; not reported now
            if "error" in entry:
                errors.append({"item_id": sample.item_id, "group": group, "message": entry["error"]})
            else:
                out.setdefault(sample.item_id, {})[group] = entry["values"]
    return out


def sample_model(samples: list[Sample]) -> str:
    return samples[0].model if samples else ""


def _todo(ctx: ScoreContext, record: dict[str, Any], sample: Sample, partners: dict[str, Item],
          aesthetics: Any | None) -> list[tuple[str, dict[str, Any], Any]]:
    """(group, identity, compute) for each group of this clip that is missing or stale."""
    from bench.score import _group_current

    todo: list[tuple[str, dict[str, Any], Any]] = []

    def need(group: str, identity: dict[str, Any], compute: Any) -> None:
        if not _group_current(record, group, identity):
            todo.append((group, identity, compute))

    audio = partial(ctx.audio, sample.audio)
    if "signal" in ctx.cfg.groups:
        from bench.metrics.signal import signal_metrics

        need("signal", SIGNAL_IDENTITY, lambda: signal_metrics(audio(), SAMPLE_RATE).to_dict())
    if "adherence" in ctx.cfg.groups:
        need("adherence", {"metric": "adherence", "version": ADHERENCE_VERSION, "vocal": sample.vocal.name},
             lambda: _adherence(ctx, sample.vocal, audio(), same_item=True))
        partner = partners.get(sample.item_id)
        if partner is not None:
            need("adherence_shuffled", {"metric": "adherence", "version": ADHERENCE_VERSION,
                                        "partner": partner.item_id, "vocal": Path(partner.vocal).name},
                 lambda: _adherence(ctx, Path(partner.vocal), audio(), same_item=False))
    if aesthetics is not None:
        need("aesthetics", aesthetics.identity(), lambda: aesthetics.score([(audio(), SAMPLE_RATE)])[0])
    return todo


def _adherence(ctx: ScoreContext, vocal: Path, accompaniment: np.ndarray, same_item: bool) -> dict[str, float]:
    from bench.metrics.adherence import accompaniment_features, score_pair

    # the clip's true and shuffled groups share its accompaniment features (keyed by the array's identity)
    cached = ctx.state.get("accompaniment_features")
    if cached is None or cached[0] is not accompaniment:
        cached = (accompaniment, accompaniment_features(accompaniment, SAMPLE_RATE))
        ctx.state["accompaniment_features"] = cached
    scores = score_pair(_vocal_features(ctx, vocal), cached[1], max_mismatch_s=None if not same_item else 1.0)
    d = scores.to_dict()
    d.pop("reasons", None)
    return d


# -- adherence anchors -------------------------------------------------------------------------------------------


def adherence_anchors(ctx: ScoreContext, summary: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The true-pairs (upper) and shuffled-pairs (lower) anchors: the reference accompaniments' own adherence
    groups, as bench.score.summarise already reduced them (means with CIs)."""
    from bench.score import REFERENCE_MODEL

    if REFERENCE_MODEL not in summary:
        ctx.notes.append("adherence anchors need the true accompaniments: add the 'reference' model "
                         "(with --references for your own vocals)")
        return {}
    per_clip = summary[REFERENCE_MODEL]["per_clip"]
    return {anchor: {metric.split(".", 1)[1]: est for metric, est in per_clip.items() if metric.split(".")[0] == group}
            for group, anchor in (("adherence", "true_pairs"), ("adherence_shuffled", "shuffled_pairs"))}


# -- set metrics: FAD family and APA ------------------------------------------------------------------------------


def _embedder(ctx: ScoreContext, name: str) -> Any | None:
    key = f"embedder:{name}"
    if key not in ctx.state:
        from bench.embedders.registry import get_embedder

        ctx.state[key] = None
        try:
            embedder = get_embedder(name, WeightsChoice("pretrained", ctx.cfg.embedder_weights.get(name)),
                                    device=ctx.cfg.device)
            ctx.scorers[f"embedder:{name}"] = {"status": embedder.status.to_dict(), "identity": embedder.identity()}
            ctx.state[key] = embedder
        except (AdapterError, ValueError) as err:
            ctx.scorers[f"embedder:{name}"] = {"status": None, "error": str(err)}
            ctx.notes.append(f"FAD/KAD/APA with {name} not computed: {err}")
    return ctx.state[key]


def _embed_all(ctx: ScoreContext, embedder: Any, paths: list[Path], errors: list[str]) -> dict[Path, np.ndarray]:
    from bench.embedders.cache import EmbeddingCache

    cache = EmbeddingCache(ctx.cfg.cache or ctx.out / "cache" / "embeddings")
    out: dict[Path, np.ndarray] = {}
    for path in paths:
        try:
            out[path] = np.asarray(cache.get_or_compute(embedder, path), dtype=np.float64)
        except KeyboardInterrupt:
            raise
        except Exception as err:
            errors.append(f"{path}: {type(err).__name__}: {err}")
    return out


def _reference_set(ctx: ScoreContext, embedder: Any, errors: list[str]
                   ) -> tuple[np.ndarray, np.ndarray, dict[Path, np.ndarray] | None, str]:
    """(mu, sigma, reference embeddings by file or None for a statistics file, description of the set)."""
    from bench.embedders.reference import pooled_stats

    source = ctx.cfg.fad_reference
    if source is not None and source.suffix == ".npz":
        from bench.embedders.reference import read_stats_npz

        mu, sigma = read_stats_npz(source, embedder.stats_key)
        return mu, sigma, None, f"statistics file {source} (key {embedder.stats_key})"
    if source is not None:
        from samuel.audio import AUDIO_EXTENSIONS

        paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
        where = f"audio folder {source} ({len(paths)} files)"
    else:
        paths = [Path(i.reference) for i in ctx.manifest.items if i.reference]
        where = f"the items' true accompaniments ({len(paths)} files)"
    clips = _embed_all(ctx, embedder, paths, errors)
    if len(clips) < 2:
        raise ValueError(f"FAD reference: fewer than two usable clips in {where}")
    mu, sigma, _ = pooled_stats(clips.values())
    return mu, sigma, clips, where


def score_sets(ctx: ScoreContext, scored: dict[str, list[Sample]]) -> dict[str, dict[str, Any]]:
    """Per model and embedder: FAD at equal n with a clip bootstrap, FAD-inf, KAD, per-song FAD and APA."""
    from bench.bootstrap import bootstrap_mean_ci
    from bench.metrics.adherence import apa
    from bench.metrics.frechet import fad_inf
    from bench.metrics.sets import clip_bootstrap_fad, clip_bootstrap_kad, per_song_fad
    from bench.score import REFERENCE_MODEL

    cfg = ctx.cfg
    out: dict[str, dict[str, Any]] = {m: {} for m in scored}
    default_reference = cfg.fad_reference is None
    # equal n: FAD falls with n, so every model is scored on the items all of them have
    contenders = [m for m in scored if not (default_reference and m == REFERENCE_MODEL)]
    common = sorted(set.intersection(*(set(s.item_id for s in scored[m]) for m in contenders))) if contenders else []
    for name in cfg.embedders:
        embedder = _embedder(ctx, name)
        if embedder is None:
            continue
        errors: list[str] = []
        try:
            mu, sigma, ref_clips, where = _reference_set(ctx, embedder, errors)
        except (ValueError, OSError, KeyError) as err:
            ctx.notes.append(f"FAD with {name} not computed: {err}")
            continue
        ctx.scorers[f"embedder:{name}"]["reference"] = where
        vocal_paths = sorted({s.vocal for group in scored.values() for s in group})
        vocals = _embed_all(ctx, embedder, vocal_paths, errors)
        refs_by_item = {i.item_id: Path(i.reference) for i in ctx.manifest.items if i.reference}
        # APA needs the items' true accompaniments: the default reference set already holds them
        ref_embs = (ref_clips if default_reference else _embed_all(ctx, embedder, list(refs_by_item.values()), errors)
                    ) if ref_clips is not None else {}
        apa_sets = _apa_reference(ctx, vocals, ref_embs, refs_by_item)
        for model, samples in scored.items():
            if default_reference and model == REFERENCE_MODEL:
                out[model][name] = {"note": "this row is the FAD reference set itself"}
            embs = _embed_all(ctx, embedder, [s.audio for s in samples], errors)
            by_item = {s.item_id: embs[s.audio] for s in samples if s.audio in embs}
            entry: dict[str, Any] = out[model].setdefault(name, {})
            chosen = [i for i in common if i in by_item] if model in contenders else []
            clips = [by_item[i] for i in chosen]
            if model in contenders and len(clips) >= 2:
                entry["fad"] = clip_bootstrap_fad(clips, mu, sigma, cfg.resamples, cfg.seed).to_dict()
                entry["n_equal"] = len(clips)
                rows = np.concatenate(clips)
                if rows.shape[0] >= 8:
                    entry["fad_inf"] = fad_inf(rows, mu, sigma, seed=cfg.seed).to_dict()
                songs = per_song_fad(clips, mu, sigma)
                finite = songs[np.isfinite(songs)]
                if finite.size:
                    entry["per_song_fad"] = bootstrap_mean_ci(finite, cfg.resamples, cfg.seed).to_dict()
                    entry["per_song_fad_items"] = {i: float(v) for i, v in zip(chosen, songs, strict=True)}
                if ref_clips is not None:
                    kad, h = clip_bootstrap_kad(clips, np.concatenate(list(ref_clips.values())), None,
                                                cfg.resamples, cfg.seed)
                    entry["kad"] = {**kad.to_dict(), "bandwidth": h,
                                    "bandwidth_rule": "median pairwise distance of the reference embeddings"}
            if apa_sets is not None:
                candidate = _pairs(vocals, by_item, {s.item_id: s.vocal for s in samples})
                if candidate is not None:
                    result = apa(candidate, apa_sets[0], apa_sets[1])
                    entry["apa"] = {**result.to_dict(), "n_items": len(by_item), "fusion": "late, frame-aligned"}
        if errors:
            ctx.notes.append(f"{name}: {len(errors)} file(s) could not be embedded, e.g. {errors[0]}")
    return out


def _pairs(vocals: dict[Path, np.ndarray], stems: dict[str, np.ndarray], vocal_of: dict[str, Path]
           ) -> np.ndarray | None:
    """Frame-aligned late-fusion pair embeddings [vocal_t, stem_t] over all items (rows = items x frames)."""
    from bench.metrics.adherence import late_fusion_pairs

    rows = []
    for item, stem in stems.items():
        vocal = vocals.get(vocal_of.get(item, Path()))
        if vocal is None:
            continue
        t = min(len(vocal), len(stem))
        rows.append(late_fusion_pairs(vocal[:t], stem[:t]))
    return np.concatenate(rows) if len(rows) >= 2 else None


def _apa_reference(ctx: ScoreContext, vocals: dict[Path, np.ndarray], ref_embs: dict[Path, np.ndarray],
                   refs_by_item: dict[str, Path]) -> tuple[np.ndarray, np.ndarray] | None:
    """APA's R (true pairs) and R' (each vocal with a deranged item's accompaniment), or None without references."""
    items = [i for i in ctx.manifest.items if i.item_id in refs_by_item and refs_by_item[i.item_id] in ref_embs
             and Path(i.vocal) in vocals]
    if len(items) < 2:
        return None
    from bench.metrics.adherence import derangement

    perm = derangement(len(items), ctx.cfg.seed)
    stems = {i.item_id: ref_embs[refs_by_item[i.item_id]] for i in items}
    vocal_of = {i.item_id: Path(i.vocal) for i in items}
    true = _pairs(vocals, stems, vocal_of)
    shuffled_stems = {i.item_id: stems[items[int(j)].item_id] for i, j in zip(items, perm, strict=True)}
    shuffled = _pairs(vocals, shuffled_stems, vocal_of)
    return (true, shuffled) if true is not None and shuffled is not None else None
