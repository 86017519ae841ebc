"""The inputs of the set statistics: every clip, reference and vocal embedded through the content-addressed cache,
then each registered SET metric run per model and embedder.

The default FAD reference is the items' true accompaniments, each read through its item's window; APA pairs each
clip with its item's vocal window. A reference that cannot be built says why in the note, naming each file that
failed to embed and its error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.embedders.cache import EmbeddingCache
from bench.scoring.config import REFERENCE_MODEL, ScoreConfig
from bench.scoring.inputs import ItemAudio
from bench.scoring.records import Sample
from bench.scoring.registry import MetricGroup, resolve
from bench.scoring.sets import ModelSet, ReferenceSet, SetParams, pair_rows

MAX_ERRORS_NAMED = 5  # a failed reference names this many files and their errors, then counts the rest


@dataclass
class Embedding:
    """One embedder through the cache; a file that fails is listed in ``errors`` (path: error) and skipped."""

    cache: EmbeddingCache
    embedder: Any
    errors: list[str]

    def file(self, path: Path) -> np.ndarray | None:
        return self._get(path, 0.0, None)

    def window(self, item: Any, what: str) -> np.ndarray | None:
        """The embedding of an item's ``vocal`` or ``reference`` window."""
        return self._get(Path(getattr(item, what)), item.start_s, item.duration_s)

    def _get(self, path: Path, start_s: float, duration_s: float | None) -> np.ndarray | None:
        try:
            return np.asarray(self.cache.get_or_compute(self.embedder, path, start_s=start_s, duration_s=duration_s),
                              dtype=np.float64)
        except KeyboardInterrupt:
            raise
        except Exception as err:
            window = "" if not start_s and duration_s is None else f" [window {start_s:g} s + {duration_s:g} s]"
            self.errors.append(f"{path}{window}: {type(err).__name__}: {err}")
            return None


def build_embedder(name: str, cfg: ScoreConfig, scorers: dict[str, Any], notes: list[str]) -> Any | None:
    """The embedder ``name`` with its checkpoint, or None (with a note) when it cannot run."""
    from baselines.base import AdapterError, WeightsChoice
    from bench.embedders.registry import get_embedder

    try:
        embedder = get_embedder(name, WeightsChoice("pretrained", cfg.embedder_weights.get(name)), device=cfg.device)
        scorers[f"embedder:{name}"] = {"status": embedder.status.to_dict(), "identity": embedder.identity()}
        return embedder
    except (AdapterError, ValueError) as err:
        scorers[f"embedder:{name}"] = {"status": None, "error": str(err)}
        notes.append(f"FAD/KAD/APA with {name} not computed: {err}")
        return None


def reference_set(cfg: ScoreConfig, items: list[Any], embed: Embedding) -> tuple[ReferenceSet, dict[str, np.ndarray]]:
    """The FAD reference (statistics file, audio folder, or the items' reference windows) and the items' reference
    embeddings by item id (empty for a statistics file).

    Raises:
        ValueError: fewer than two usable clips; the message names the files that failed and why.
    """
    from bench.embedders.reference import audio_files, pooled_stats

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
    else:
        with_reference = [i for i in items if i.reference]
        where = f"the items' true accompaniments ({len(with_reference)} files, each item's window)"
        for item in with_reference:
            if (e := embed.window(item, "reference")) is not None:
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
               cache: EmbeddingCache, scorers: dict[str, Any], notes: list[str]) -> dict[str, dict[str, Any]]:
    """Per model and embedder: every SET metric of ``groups`` (FAD at equal n, FAD-inf, per-song FAD, KAD, APA)."""
    out: dict[str, dict[str, Any]] = {m: {} for m in scored}
    default_reference = cfg.fad_reference is None
    # equal n: FAD falls with n, so every model is scored on the items all of them have
    contenders = [m for m in scored if not (default_reference and m == REFERENCE_MODEL)]
    common = sorted(set.intersection(*({s.item_id for s in scored[m]} for m in contenders))) if contenders else []
    functions = [(metric, resolve(metric.compute)) for g in groups for metric in g.metrics]
    params = SetParams(cfg.resamples, cfg.seed)
    manifest_items = list(items.items.values())
    scored_items = {s.item_id for samples in scored.values() for s in samples}
    for name in cfg.embedders:
        embedder = build_embedder(name, cfg, scorers, notes)
        if embedder is None:
            continue
        embed = Embedding(cache, embedder, [])
        try:
            reference, references = reference_set(cfg, manifest_items, embed)
        except (ValueError, OSError, KeyError) as err:
            notes.append(f"FAD with {name} not computed: {err}")
            continue
        scorers[f"embedder:{name}"]["reference"] = reference.where
        vocals = {i.item_id: e for i in manifest_items if i.item_id in scored_items
                  if (e := embed.window(i, "vocal")) is not None}
        if cfg.fad_reference is not None and reference.clips is not None:  # APA still pairs the items' references
            references = {i.item_id: e for i in manifest_items if i.reference
                          if (e := embed.window(i, "reference")) is not None}
        pairs = apa_reference(manifest_items, vocals, references, cfg.seed)
        if pairs is not None:
            reference = ReferenceSet(reference.mu, reference.sigma, reference.where, reference.clips, *pairs)
        for model, samples in scored.items():
            if default_reference and model == REFERENCE_MODEL:
                out[model][name] = {"note": "this row is the FAD reference set itself"}
            by_item = {s.item_id: e for s in samples if (e := embed.file(s.audio)) is not None}
            entry: dict[str, Any] = out[model].setdefault(name, {})
            model_set = ModelSet(by_item, [i for i in common if i in by_item] if model in contenders else [], vocals)
            for _, fn in functions:
                if (result := fn(model_set, reference, params)) is not None:
                    entry.update(result)
        if embed.errors:
            notes.append(f"{name}: {len(embed.errors)} file(s) could not be embedded, e.g. {embed.errors[0]}")
    return out
