"""APA's inputs from files: each item's vocal mixed with a model's clip, with its true accompaniment, and with
shuffled accompaniments, cut into 5 s windows and embedded by LAION-CLAP music through a content-addressed cache.

The math (mixing, windows, the shuffle, APA and its bootstrap) lives in :mod:`bench.metrics.apa`; this module
reads audio, keys the cache and calls the embedder. Every track is decoded by :func:`samuel.audio.load_window`
(44.1 kHz stereo; an item's vocal and reference through the item's window), averaged to mono and resampled to
48 kHz with soxr at quality ``HQ``, as the package's ``embed.resample`` does. A window's context and stem start at
the same sample of their tracks; the windows cover the shorter of the two.

One cache entry per mix window, (1, D) float32, under ``<cache folder>/apa-mix/<embedder>/``. Its key holds the
sha256 of both files, each track's window in its file (start, duration) and the 5 s window's index in it, the mix
parameters, the embedder's identity and how a window is embedded (:data:`WINDOW_EMBEDDING`): a changed file,
checkpoint, window or mix parameter never serves an old entry, and a moved folder keeps them. The X' shuffle
depends on the seed and on which windows exist, so the mismatched pairs are keyed by the two windows each pairs.

A file that cannot be read names itself and its error in :attr:`ApaInputs.errors` and leaves its entries empty
((0, D) arrays); the other items and models go on.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from bench.cache import Cache, Key
from bench.embedders.cache import EmbeddingCache, NpyStore
from bench.metrics.apa import DEFAULT_MIX, MixParams, loudness_matched_mix, mismatch_permutation, window_count
from bench.scoring.records import Sample
from samuel.atomic import DiskFull
from samuel.hashing import file_sha256

SOXR_QUALITY = "HQ"  # audio-metrics' embed.resample calls soxr.resample with its default quality, HQ
APA_CACHE_FORMAT = "samuel-bench-apa-mix/1"
WINDOW_EMBEDDING = ("one 5 s mix window at 48 kHz in float (no 16-bit rounding, as laion_clap with use_tensor=True), "
                    "repeat-padded to the model's 10 s input (ClapFeatureExtractor padding='repeatpad', "
                    "truncation='rand_trunc'), audio projection of the pooled HTSAT output, L2-normalised")
DECODED_TRACKS = 16  # decoded 48 kHz tracks kept at once (a 47.55 s track is 9 MB)


@dataclass(frozen=True)
class Track:
    """Where a mono 48 kHz track comes from: a file, and the window of it an item uses (None: the whole file).
    Files of more than two channels are downmixed (the mix is mono anyway)."""

    path: str
    start_s: float = 0.0
    duration_s: float | None = None

    def key(self, sha256: str) -> dict[str, Any]:
        return {"sha256": sha256, "start_s": round(self.start_s, 6),
                "duration_s": None if self.duration_s is None else round(self.duration_s, 6)}


@dataclass
class ApaInputs:
    """Per-item window embeddings for :func:`bench.metrics.apa.apa_resampled`; every list indexes ``item_ids``."""

    item_ids: list[str]
    candidates: dict[str, list[np.ndarray]]  # model -> per item (windows_i, D); (0, D) when no usable clip
    true_pairs: list[np.ndarray]  # per item (windows_i, D): vocal + true accompaniment
    mismatched_pairs: list[np.ndarray]  # per item (windows_i, D): vocal window + a shuffled accompaniment window
    mismatch: list[tuple[str, int, str, int]]  # every X' pair: (context item, window, stem item, window)
    errors: list[str] = field(default_factory=list)  # "path: Error: message" per file that failed
    identity: dict[str, Any] = field(default_factory=dict)  # embedder, mix, window embedding, seed, cache format


def embed_mix_windows(embedder: Any, windows: np.ndarray) -> np.ndarray:
    """(n, S) float mix windows at the embedder's rate -> (n, D) float32, each window one CLAP input.

    ``embedder`` is a LAION-CLAP embedder of :mod:`bench.embedders.clap` (``clap-laion-music`` for APA as
    published). Its :meth:`embed` cuts fadtk's 10 s windows every second and zero-pads them; APA embeds each 5 s
    mix once, repeat-padded, as ``laion_clap.CLAP_Module.get_audio_embedding_from_data`` does, so this calls the
    loaded model's feature extractor and audio tower directly.
    """
    import torch
    import torch.nn.functional as F

    embedder.load()
    features, model = embedder._features, embedder._model  # the loaded CLAP (see the report: wants a public hook)
    fusion = bool(model.config.audio_config.enable_fusion)
    out = []
    with torch.inference_mode():
        for start in range(0, len(windows), 8):
            batch = [np.asarray(w, dtype=np.float32) for w in windows[start:start + 8]]
            inputs = features(batch, sampling_rate=embedder.sample_rate, padding="repeatpad", return_tensors="pt",
                              truncation="fusion" if fusion else "rand_trunc")
            audio = model.audio_model(input_features=inputs["input_features"].to(embedder.device),
                                      is_longer=inputs["is_longer"].to(embedder.device))
            out.append(F.normalize(model.audio_projection(audio.pooler_output), dim=-1).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, int(embedder.dim)), dtype=np.float32)


def mono_48k(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """(channels, S) float -> (S',) float64 mono at ``target_rate`` (mean of the channels; soxr HQ)."""
    import soxr

    mono = np.asarray(samples, dtype=np.float64).mean(axis=0)
    return mono if rate == target_rate else np.asarray(soxr.resample(mono, rate, target_rate, quality=SOXR_QUALITY),
                                                       dtype=np.float64)


class _Reader:
    """Decodes tracks (a few kept, most recently used) and hashes files (each once); failures raise."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._sha: dict[str, str] = {}
        self.decode = lru_cache(maxsize=DECODED_TRACKS)(self._decode)

    def sha(self, path: str) -> str:
        if path not in self._sha:
            self._sha[path] = file_sha256(path)
        return self._sha[path]

    def _decode(self, track: Track) -> np.ndarray:
        from samuel.audio import SAMPLE_RATE, load_window

        loaded = load_window(track.path, track.start_s, track.duration_s, downmix=True, min_seconds=0.0)
        return mono_48k(loaded.samples, SAMPLE_RATE, self.rate)


class _MixCache:
    """Mix-window embeddings through :class:`bench.cache.Cache`, keyed by content (see the module docstring)."""

    def __init__(self, cache: EmbeddingCache | str | os.PathLike[str], embedder: Any, params: MixParams,
                 reader: _Reader) -> None:
        folder = Path(cache.folder if isinstance(cache, EmbeddingCache) else cache) / "apa-mix" / embedder.name
        self._cache: Cache[np.ndarray] = Cache(lambda key: folder / key.digest[:2] / f"{key.digest}.npy", NpyStore())
        self.embedder, self.params, self.reader = embedder, params, reader
        self.identity = {"embedder": embedder.identity(), "window_embedding": WINDOW_EMBEDDING,
                         "mix": params.to_dict(), "resampler": f"soxr {SOXR_QUALITY}", "format": APA_CACHE_FORMAT}

    def key(self, context: Track, k: int, stem: Track, j: int) -> Key:
        content = json.dumps({"context": [context.key(self.reader.sha(context.path)), k],
                              "stem": [stem.key(self.reader.sha(stem.path)), j]}, sort_keys=True)
        return Key("apa-mix-window", hashlib.sha256(content.encode()).hexdigest(), self.identity)

    def windows(self, pairs: Sequence[tuple[Track, int, Track, int]]) -> np.ndarray:
        """(len(pairs), D): each (context, window k, stem, window j) mixed and embedded, or read from the cache;
        the misses go through the embedder together (its batches)."""
        keys = [self.key(*pair) for pair in pairs]
        found = [self._cache.peek(key) for key in keys]
        missing = [i for i, row in enumerate(found) if row is None]
        if missing:
            rows = embed_mix_windows(self.embedder, np.stack([self.mix(*pairs[i]) for i in missing]))
            for i, row in zip(missing, rows, strict=True):
                found[i] = self._cache.get(keys[i], lambda row=row: row[None, :])
        return np.concatenate(found) if found else np.zeros((0, int(self.embedder.dim)), dtype=np.float32)

    def mix(self, context: Track, k: int, stem: Track, j: int) -> np.ndarray:
        w = self.params.window_samples
        c = self.reader.decode(context)[k * w:(k + 1) * w]
        s = self.reader.decode(stem)[j * w:(j + 1) * w]
        return loudness_matched_mix(c, s, self.params)


def apa_inputs(items: Sequence[Any], samples: Mapping[str, Sequence[Sample]], embedder: Any,
               cache: EmbeddingCache | str | os.PathLike[str], seed: int = 0,
               params: MixParams = DEFAULT_MIX) -> ApaInputs:
    """Build APA's three sets of per-item mix-window embeddings from the manifest items and the models' clips.

    Args:
        items: manifest items (:class:`bench.manifest.Item`: ``item_id``, ``vocal``, ``reference``, ``start_s``,
            ``duration_s``, ``downmix``); the lists of the result index them in this order.
        samples: model -> its clips (:class:`bench.scoring.records.Sample`; matched to items by ``item_id``).
        embedder: a LAION-CLAP embedder (``clap-laion-music`` as published), built with its weights.
        cache: the run's :class:`EmbeddingCache` (its folder) or a folder.
        seed: of the X' shuffle (:func:`bench.metrics.apa.mismatch_permutation`).
        params: mix and window parameters.

    Returns:
        :class:`ApaInputs`. An item without a usable vocal has empty entries everywhere; without a usable
        reference, empty true and mismatched entries (its candidates stay: they need only the vocal).
    """
    if params.rate != embedder.sample_rate:
        raise ValueError(f"mix rate {params.rate} Hz but {embedder.name} reads {embedder.sample_rate} Hz")
    reader = _Reader(params.rate)
    mixes = _MixCache(cache, embedder, params, reader)
    dim = int(embedder.dim)
    errors: list[str] = []

    def usable(track: Track, what: str) -> int | None:
        """Samples of the decoded track, or None with the file and its error named."""
        try:
            reader.sha(track.path)
            return int(reader.decode(track).size)
        except (KeyboardInterrupt, DiskFull):  # a full disk stops the run (reports.cli)
            raise
        except Exception as err:
            errors.append(f"{track.path} ({what}): {type(err).__name__}: {err}")
            return None

    def embedded(pairs: list[tuple[Track, int, Track, int]], what: str) -> np.ndarray:
        try:
            return mixes.windows(pairs)
        except (KeyboardInterrupt, DiskFull):  # a full disk stops the run (reports.cli)
            raise
        except Exception as err:
            errors.append(f"{pairs[0][0].path} + {pairs[0][2].path} ({what}): {type(err).__name__}: {err}")
            return np.zeros((0, dim), dtype=np.float32)

    vocals: list[Track | None] = []
    references: list[Track | None] = []
    lengths: list[tuple[int | None, int | None]] = []
    for item in items:
        vocal = Track(str(item.vocal), item.start_s, item.duration_s)
        n_vocal = usable(vocal, f"vocal of item {item.item_id}")
        reference = Track(str(item.reference), item.start_s, item.duration_s) if item.reference else None
        n_reference = usable(reference, f"reference of item {item.item_id}") if reference and n_vocal else None
        vocals.append(vocal if n_vocal else None)
        references.append(reference if n_reference else None)
        lengths.append((n_vocal, n_reference))

    true_pairs, true_windows = [], []  # true_windows: (item index, window) of every X window
    for i, (vocal, reference) in enumerate(zip(vocals, references, strict=True)):
        if vocal is None or reference is None:
            true_pairs.append(np.zeros((0, dim), dtype=np.float32))
            continue
        n = window_count(min(lengths[i][0], lengths[i][1]), params)  # type: ignore[type-var]
        true_pairs.append(embedded([(vocal, k, reference, k) for k in range(n)], f"true pair of item "
                                   f"{items[i].item_id}"))
        true_windows.extend((i, k) for k in range(true_pairs[-1].shape[0]))

    mismatched: list[list[tuple[int, np.ndarray]]] = [[] for _ in items]
    mismatch: list[tuple[str, int, str, int]] = []
    if len({i for i, _ in true_windows}) >= 2:
        owners = np.array([i for i, _ in true_windows])
        perm = mismatch_permutation(owners, seed)
        by_stem: dict[int, list[int]] = {}  # X' windows grouped by stem item: each accompaniment decoded once
        for w in range(len(true_windows)):
            by_stem.setdefault(true_windows[perm[w]][0], []).append(w)
        for j, group in by_stem.items():
            rows = embedded([(vocals[true_windows[w][0]], true_windows[w][1], references[j], true_windows[perm[w]][1])
                             for w in group], f"mismatched pairs with the reference of item {items[j].item_id}")
            for w, row in zip(group, rows, strict=False):
                (i, k), (_, m) = true_windows[w], true_windows[perm[w]]
                mismatched[i].append((k, row[None, :]))
                mismatch.append((items[i].item_id, k, items[j].item_id, m))
    position = {item.item_id: n for n, item in enumerate(items)}
    mismatch.sort(key=lambda pair: (position[pair[0]], pair[1]))
    mismatched_pairs = [np.concatenate([r for _, r in sorted(rows, key=lambda t: t[0])]) if rows
                        else np.zeros((0, dim), dtype=np.float32) for rows in mismatched]

    index = {item.item_id: i for i, item in enumerate(items)}
    candidates: dict[str, list[np.ndarray]] = {}
    for model, clips in samples.items():
        per_item = [np.zeros((0, dim), dtype=np.float32) for _ in items]
        for sample in clips:
            i = index.get(sample.item_id)
            if i is None or vocals[i] is None:
                continue
            clip = Track(str(sample.audio))
            n_clip = usable(clip, f"{model} clip of item {sample.item_id}")
            if n_clip is None:
                continue
            n = window_count(min(lengths[i][0], n_clip), params)  # type: ignore[type-var]
            per_item[i] = embedded([(vocals[i], k, clip, k) for k in range(n)], f"{model} clip of item "
                                   f"{sample.item_id}")
        candidates[model] = per_item

    identity = {**mixes.identity, "seed": seed, "shuffle": "seeded permutation of the true-pair windows, never "
                "within one item (bench.metrics.apa.mismatch_permutation)"}
    return ApaInputs([item.item_id for item in items], candidates, true_pairs, mismatched_pairs, mismatch,
                     errors, identity)


def describe_errors(errors: Sequence[str], limit: int = 5) -> str:
    """The first ``limit`` errors and a count of the rest, for a note."""
    shown = "; ".join(errors[:limit])
    return shown + (f"; and {len(errors) - limit} more" if len(errors) > limit else "")

