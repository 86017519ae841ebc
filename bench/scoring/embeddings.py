"""The inputs of the set statistics: every clip, reference and vocal embedded through the content-addressed cache,
then each registered SET metric run per model and embedder.

The default FAD reference is the items' true accompaniments, each read through its item's window; APA pairs each
clip with its item's vocal window. A reference that cannot be built says why in the note, naming each file that
failed to embed and its error. Every sample is read up to its item's common crop (:class:`ItemAudio`), and the
items' windows are the crop.

In the ``mix`` view (:class:`MixEmbedding`), every clip is the item's vocal window + the sample, loudness-matched
(:func:`bench.metrics.mix.vocal_accompaniment_mix`), and the default reference is each item's vocal + its true
accompaniment mixed the same way; those embeddings are cached under ``<cache>/view-mix/<embedder>/`` keyed by both
inputs' content and windows, the mix rule and the embedder's identity. The late-fusion APA variant (vocal and stem
side by side) and the published APA (its own mixes) belong to the accompaniment view only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.bootstrap import ResampledStatistic, set_draws
from bench.cache import Cache, CacheEvent, Key
from bench.embedders.cache import EmbeddingCache, NpyStore
from bench.scoring.config import REFERENCE_MODEL, ScoreConfig
from bench.scoring.inputs import ACCOMPANIMENT, MIX, SAMPLE_RATE, ItemAudio, song_clusters, window_of
from bench.scoring.records import Sample
from bench.scoring.registry import MIX_SET, SET, MetricGroup, resolve
from bench.scoring.sets import ModelSet, ReferenceSet, SetOutcome, SetParams, Sets, pair_rows
from samuel.atomic import DiskFull

MAX_ERRORS_NAMED = 5  # a failed reference names this many files and their errors, then counts the rest


@dataclass
class Embedding:
    """One embedder through the cache; a file that fails is listed in ``errors`` (path: error) and skipped."""

    cache: EmbeddingCache
    embedder: Any
    errors: list[str]
    items: ItemAudio | None = None  # the pass's items: a sample is read up to its item's common crop

    def file(self, path: Path) -> np.ndarray | None:
        return self._get(path, 0.0, None)

    def sample(self, sample: Sample) -> np.ndarray | None:
        """A model's clip, up to its item's common crop (whole when it is not longer)."""
        crop = self.items.sample_crop(sample) if self.items is not None else None
        return self._get(sample.audio, 0.0, crop)

    def reference(self, item: Any) -> np.ndarray | None:
        """An item's true accompaniment, the FAD reference clip of the item (its window)."""
        return self.window(item, "reference")

    def window(self, item: Any, what: str) -> np.ndarray | None:
        """The embedding of an item's ``vocal`` or ``reference`` window."""
        return self._get(Path(getattr(item, what)), item.start_s, item.duration_s)

    def _get(self, path: Path, start_s: float, duration_s: float | None) -> np.ndarray | None:
        try:
            return np.asarray(self.cache.get_or_compute(self.embedder, path, start_s=start_s, duration_s=duration_s),
                              dtype=np.float64)
        except (KeyboardInterrupt, DiskFull):  # a full disk stops the run (reports.cli)
            raise
        except Exception as err:
            window = "" if not start_s and duration_s is None else f" [window {start_s:g} s + {duration_s:g} s]"
            self.errors.append(f"{path}{window}: {type(err).__name__}: {err}")
            return None


MIX_EMBEDDING_FORMAT = "samuel-bench-mix-embedding/1; decode=samuel.audio.load_window(44.1 kHz stereo)"


class MixCache:
    """The mix view's embeddings: ``folder/view-mix/<embedder>/<digest[:2]>/<digest>.npy``, float32."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder) / "view-mix"
        self._cache: Cache[np.ndarray] = Cache(
            lambda key: self.folder / key.identity["name"] / key.digest[:2] / f"{key.digest}.npy", NpyStore())

    def get(self, key: Key, compute: Any) -> np.ndarray:
        return self._cache.get(key, compute)

    def redone(self) -> list[CacheEvent]:
        return self._cache.redone()


@dataclass
class MixEmbedding(Embedding):
    """:class:`Embedding` of the ``mix`` view: a clip (and a reference) is embedded mixed with its item's vocal."""

    mixes: MixCache | None = None
    _sha: dict[str, str] = field(default_factory=dict)

    def sample(self, sample: Sample) -> np.ndarray | None:
        from samuel.audio import load_audio

        crop = self.items.sample_crop(sample) if self.items is not None else None
        track = {"sha256": self._sha256(sample.audio), "start_s": 0.0, "duration_s": crop}
        return self._mixed(sample.item_id, track, lambda: load_audio(sample.audio, min_seconds=0.1,
                                                                     duration_s=crop).samples, str(sample.audio))

    def reference(self, item: Any) -> np.ndarray | None:
        return self._mixed(item.item_id, {"sha256": self._sha256(item.reference), **window_of(item)},
                           item.read_reference, f"{item.reference} [window {item.start_s:g} s + {item.duration_s:g} s]")

    def _sha256(self, path: Any) -> str:
        from samuel.hashing import file_sha256

        if str(path) not in self._sha:
            self._sha[str(path)] = file_sha256(path)
        return self._sha[str(path)]

    def _mixed(self, item_id: str, accompaniment: dict[str, Any], load: Any, where: str) -> np.ndarray | None:
        from bench.metrics.mix import mix_identity, vocal_accompaniment_mix

        assert self.items is not None and self.mixes is not None
        items = self.items

        def compute() -> np.ndarray:
            vocal, acc = items.vocal(item_id), load()
            n = min(vocal.shape[1], acc.shape[1])
            mixed = vocal_accompaniment_mix(vocal[:, :n], acc[:, :n], SAMPLE_RATE)
            return np.asarray(self.embedder.embed(mixed, SAMPLE_RATE), dtype=np.float32)

        try:
            content = json.dumps({"vocal": items.vocal_key(item_id), "accompaniment": accompaniment},
                                 sort_keys=True, default=str)
            key = Key("mix-embedding", hashlib.sha256(content.encode()).hexdigest(),
                      {"embedder": self.embedder.identity(), "name": self.embedder.name, "mix": mix_identity(),
                       "format": MIX_EMBEDDING_FORMAT})
            return np.asarray(self.mixes.get(key, compute), dtype=np.float64)
        except (KeyboardInterrupt, DiskFull):  # a full disk stops the run (reports.cli)
            raise
        except Exception as err:
            self.errors.append(f"{where} mixed with the vocal of item {item_id}: {type(err).__name__}: {err}")
            return None


APA_EMBEDDER = "clap-laion-music"  # the published APA's embedder
APA_MATCHES = ("APA as published (Grachten and Nistal 2025) and computed by SonyCSLParis audio-metrics: vocal and "
               "stem mixed loudness-matched at -20 LUFS, 5 s windows (partial last one dropped), LAION-CLAP music, "
               "mismatched pairs by a shuffle of windows, squared Frechet distances; the interval is ours")


def build_embedder(name: str, cfg: ScoreConfig, scorers: dict[str, Any], notes: list[str],
                   what: str = "FAD/KAD/APA") -> Any | None:
    """The embedder ``name`` with its checkpoint, or None (with a note) when it cannot run."""
    from baselines.base import AdapterError, WeightsChoice
    from bench.embedders.registry import get_embedder

    try:
        embedder = get_embedder(name, WeightsChoice("pretrained", cfg.embedder_weights.get(name)), device=cfg.device,
                                resampler=cfg.resampler)
        # update, not replace: the published APA builds clap-laion-music again after the FAD pass may have
        scorers.setdefault(f"embedder:{name}", {}).update(status=embedder.status.to_dict(),
                                                          identity=embedder.identity())
        return embedder
    except (AdapterError, ValueError) as err:
        scorers.setdefault(f"embedder:{name}", {}).update(status=None, error=str(err))
        notes.append(f"{what} with {name} not computed: {err}")
        return None


def reference_set(cfg: ScoreConfig, items: list[Any], embed: Embedding) -> tuple[ReferenceSet, dict[str, np.ndarray]]:
    """The FAD reference (statistics file, audio folder, or the items' reference windows) and the items' reference
    embeddings by item id (empty for a statistics file).

    Raises:
        ValueError: fewer than two usable clips; the message names the files that failed and why.
    """
    from bench.embedders.reference import audio_files, pooled_stats
    from samuel.audio import undecodable_audio_files, undecodable_audio_problem

    source = cfg.fad_reference
    if source is not None and source.suffix == ".npz":
        from bench.embedders.reference import read_stats_npz

        mu, sigma = read_stats_npz(source, embed.embedder.stats_key)
        return ReferenceSet(mu, sigma, f"statistics file {source} (key {embed.embedder.stats_key})"), {}
    start = len(embed.errors)
    by_item: dict[str, np.ndarray] = {}
    if source is not None:
        paths = audio_files(source)
        where = f"audio folder {source} ({len(paths)} files)"
        clips = [e for e in (embed.file(p) for p in paths) if e is not None]
        # named among the files that failed, so the note says the set is smaller than the folder
        embed.errors.extend(f"{p}: {undecodable_audio_problem(p)}" for p in undecodable_audio_files(source))
    else:
        mixed = isinstance(embed, MixEmbedding)
        with_reference = [i for i in items if i.reference and (i.vocal or not mixed)]
        where = (f"the items' true accompaniments ({len(with_reference)} files, each item's window"
                 + (", each mixed with its vocal window as the clips are)" if mixed else ")"))
        for item in with_reference:
            if (e := embed.reference(item)) is not None:
                by_item[item.item_id] = e
        clips = list(by_item.values())
    if len(clips) < 2:
        failed = embed.errors[start:]
        why = ""
        if failed:
            named = "; ".join(failed[:MAX_ERRORS_NAMED])
            more = f"; and {len(failed) - MAX_ERRORS_NAMED} more" if len(failed) > MAX_ERRORS_NAMED else ""
            why = f"; {len(failed)} could not be embedded: {named}{more}"
        raise ValueError(f"FAD reference: fewer than two usable clips in {where}{why}")
    mu, sigma, _ = pooled_stats(clips)
    return ReferenceSet(mu, sigma, where, clips), by_item


def apa_reference(items: list[Any], vocals: dict[str, np.ndarray], references: dict[str, np.ndarray], seed: int
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    """APA's R (the items' own vocal/accompaniment pairs) and R' (each vocal with a deranged item's accompaniment),
    over the items with both embeddings, in manifest order; None with fewer than two."""
    from bench.metrics.adherence import derangement

    ids = [i.item_id for i in items if i.item_id in references and i.item_id in vocals]
    if len(ids) < 2:
        return None
    perm = derangement(len(ids), seed)
    stems = {i: references[i] for i in ids}
    true = pair_rows(vocals, stems)
    shuffled = pair_rows(vocals, {i: stems[ids[int(j)]] for i, j in zip(ids, perm, strict=True)})
    return (true, shuffled) if true is not None and shuffled is not None else None


def score_sets(groups: list[MetricGroup], items: ItemAudio, cfg: ScoreConfig, scored: dict[str, list[Sample]],
               cache: EmbeddingCache, scorers: dict[str, Any], notes: list[str], view: str = ACCOMPANIMENT,
               mixes: MixCache | None = None) -> dict[str, dict[str, Any]]:
    """Per embedder, every SET metric of ``groups`` over all models at once (FAD at equal n, FAD-inf, per-song
    FAD, KAD, the late-fusion APA), then every MIX_SET group (the published APA); each bootstrapped statistic is
    paired against ``cfg.baseline`` on the shared draws, and the p-values of all set comparisons are
    Holm-adjusted as one family (:data:`SET_FAMILY`; the ``mix`` view's are their own family, ``set (mix)``).

    In the ``mix`` view (``mixes`` required) clips and the default reference are vocal + accompaniment mixes
    (:class:`MixEmbedding`); the caller passes no MIX_SET group there.

    Returns:
        model -> embedder -> entry (scores.json ``sets``).
    """
    if view == MIX and mixes is None:
        raise ValueError("the mix view's set metrics need a MixCache")
    prefix = "" if view == ACCOMPANIMENT else f"({view}) "
    out: dict[str, dict[str, Any]] = {m: {} for m in scored}
    default_reference = cfg.fad_reference is None
    # equal n: FAD falls with n, so every model is scored on the items all of them have
    contenders = [m for m in scored if not (default_reference and m == REFERENCE_MODEL)]
    common = sorted(set.intersection(*({s.item_id for s in scored[m]} for m in contenders))) if contenders else []
    set_functions = [(m, resolve(m.compute)) for g in groups if g.kind == SET for m in g.metrics]
    params = SetParams(cfg.resamples, cfg.seed, cfg.kad_bandwidth)
    manifest_items = list(items.items.values())
    scored_items = {s.item_id for samples in scored.values() for s in samples}
    paired: dict[tuple[str, str, str], ResampledStatistic] = {}  # (embedder, metric, model) -> resampled
    for name in cfg.embedders if set_functions else []:
        embedder = build_embedder(name, cfg, scorers, notes, what=f"{prefix}FAD/KAD/APA")
        if embedder is None:
            continue
        embed = (Embedding(cache, embedder, [], items) if view == ACCOMPANIMENT
                 else MixEmbedding(cache, embedder, [], items, mixes))
        try:
            reference, references = reference_set(cfg, manifest_items, embed)
        except (ValueError, OSError, KeyError) as err:
            notes.append(f"{prefix}FAD with {name} not computed: {err}")
            continue
        if view == ACCOMPANIMENT:
            scorers[f"embedder:{name}"]["reference"] = reference.where
            vocals = {i.item_id: e for i in manifest_items if i.item_id in scored_items and i.vocal
                      if (e := embed.window(i, "vocal")) is not None}
            if cfg.fad_reference is not None and reference.clips is not None:  # APA still pairs the references
                references = {i.item_id: e for i in manifest_items if i.reference
                              if (e := embed.window(i, "reference")) is not None}
            pairs = apa_reference(manifest_items, vocals, references, cfg.seed)
            if pairs is not None:
                reference = ReferenceSet(reference.mu, reference.sigma, reference.where, reference.clips, *pairs)
        else:  # the mixes already hold the vocal: no late-fusion pairs
            scorers[f"embedder:{name}"][f"reference ({view})"] = reference.where
            vocals = {}
        models = {model: ModelSet({s.item_id: e for s in samples if (e := embed.sample(s)) is not None}, vocals)
                  for model, samples in scored.items()}
        usable = [i for i in common if all(i in models[m].by_item for m in contenders)]
        draws = (set_draws(len(usable), None if reference.clips is None else len(reference.clips), cfg.resamples,
                           cfg.seed, clusters=_songs(items, usable)) if len(usable) >= 2 else None)
        sets = Sets(models, contenders, usable, reference, draws)
        for model in scored:
            out[model][name] = ({"note": "this row is the FAD reference set itself"}
                                if default_reference and model == REFERENCE_MODEL else {})
        for metric, fn in set_functions:
            for model, outcome in fn(sets, params).items():
                out[model][name].update(outcome.entry)
                if outcome.resampled is not None:
                    paired[(name, metric.key, model)] = outcome.resampled
        if embed.errors:
            notes.append(f"{prefix}{name}: {len(embed.errors)} file(s) could not be embedded, e.g. {embed.errors[0]}")
    for group in (g for g in groups if g.kind == MIX_SET):
        for model, outcome in resolve(group.compute)(items, scored, cfg, cache, scorers, notes).items():
            out[model].setdefault(group.embedder, {}).update(outcome.entry)
            for metric in group.metrics:
                if outcome.resampled is not None:
                    paired[(group.embedder, metric.key, model)] = outcome.resampled
    _pair_sets(out, paired, cfg.baseline, SET_FAMILY if view == ACCOMPANIMENT else f"{SET_FAMILY} ({view})")
    return out


SET_FAMILY = "set"
SET_FAMILY_MEANS = ("every set-level paired comparison of the run (FAD, KAD, APA; every embedder; every model "
                    "against the baseline) is one family")


def _pair_sets(out: dict[str, dict[str, Any]], paired: dict[tuple[str, str, str], ResampledStatistic],
               baseline: str, family: str = SET_FAMILY) -> None:
    """``sets.EMBEDDER.paired.METRIC.BASELINE``: model minus baseline on the same resamples, Holm over the family."""
    from bench.bootstrap import paired_set_difference
    from bench.stats import holm_adjust

    found = []
    for (embedder, metric, model), stat in paired.items():
        base = paired.get((embedder, metric, baseline))
        if model == baseline or base is None:
            continue
        diff, p = paired_set_difference(stat, base)
        found.append((embedder, metric, model, {**diff.to_dict(), "p_value": p, "versus": baseline}))
    adjusted = holm_adjust([d["p_value"] for *_, d in found])
    size = int(np.count_nonzero(np.isfinite(adjusted)))
    for (embedder, metric, model, d), p_holm in zip(found, adjusted, strict=True):
        d.update(p_holm=float(p_holm) if np.isfinite(p_holm) else None, family=family, family_size=size)
        out[model][embedder].setdefault("paired", {}).setdefault(metric, {})[baseline] = d


def published_apa(items: ItemAudio, scored: dict[str, list[Sample]], cfg: ScoreConfig, cache: EmbeddingCache,
                  scorers: dict[str, Any], notes: list[str]) -> dict[str, SetOutcome]:
    """APA as Grachten and Nistal publish it (bench.metrics.apa, bench.scoring.apa): each item's vocal mixed with
    each model's clip, with its true accompaniment and with a shuffled one, embedded by LAION-CLAP music; a
    bootstrap over items shared by every model. The reference row is the true pairs themselves (APA 1 by
    construction) and is not scored as a candidate."""
    from bench.bootstrap import set_draws
    from bench.metrics.apa import apa_resampled
    from bench.scoring.apa import apa_inputs, describe_errors

    embedder = build_embedder(APA_EMBEDDER, cfg, scorers, notes, what="APA (published)")
    if embedder is None:
        return {}
    candidates = {m: s for m, s in scored.items() if m != REFERENCE_MODEL}
    if not candidates:
        return {}
    with_reference = [i for i in items.items.values() if i.reference and i.vocal]
    inputs = apa_inputs(with_reference, candidates, embedder, cache, seed=cfg.seed)
    scorers[f"embedder:{APA_EMBEDDER}"]["apa"] = inputs.identity
    if inputs.errors:
        notes.append(f"APA (published): {describe_errors(inputs.errors)}")
    # items every candidate, the true pairs and the mismatched pairs have windows for: equal n, as for FAD
    usable = [k for k in range(len(inputs.item_ids))
              if inputs.true_pairs[k].shape[0] and inputs.mismatched_pairs[k].shape[0]
              and all(inputs.candidates[m][k].shape[0] for m in candidates)]
    if len(usable) < 2:
        notes.append(f"APA (published) not computed: {len(usable)} item(s) with a vocal, a true accompaniment and "
                     "a clip of every model (it needs two)")
        return {}
    draws = set_draws(len(usable), None, cfg.resamples, cfg.seed,
                      clusters=_songs(items, [inputs.item_ids[k] for k in usable]))
    stats = apa_resampled({m: [inputs.candidates[m][k] for k in usable] for m in candidates},
                          [inputs.true_pairs[k] for k in usable], [inputs.mismatched_pairs[k] for k in usable], draws)
    by = f" (by song: {draws.songs} songs)" if draws.songs is not None else ""
    method = (f"bootstrap over items{by}, {draws.n_resamples} resamples, seed {draws.seed}, the same items for "
              "every model (paired); true and mismatched pairs resampled with their items")
    return {m: SetOutcome({"apa": {**s.estimate(method=f"{s.what}; {method}").to_dict(), "matches": APA_MATCHES,
                                   "n_items": len(usable)}}, s) for m, s in stats.items()}


def _songs(items: Any, item_ids: list[str]) -> list[str] | None:
    """The song (vocal file) of each item, for set_draws' song resampling; None when no song gave two items."""
    clusters = song_clusters(items.items.values())
    return None if clusters is None else [clusters.get(i, i) for i in item_ids]
