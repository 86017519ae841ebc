"""The audio the score pass reads, and the pass's typed in-memory caches of it.

An item's vocal and reference are read only through the item's window (``samuel.audio.load_window`` with the
item's ``start_s`` and ``duration_s``), looked up in the manifest by item id: a vocal file longer than its item is
never compared whole. Every cache key that depends on a vocal or reference names the window.

**Common crop.** Systems made elsewhere (``outputs:NAME=DIR``) may be shorter than their item. Every model is
scored on the window common to all models being compared, aligned to the vocal's start (:class:`CommonCrop`): per
item, crop = min(item duration, each scored model's sample length for that item). The pass's items carry the
crop as their duration (so the vocal and reference windows, and every key naming them, are the crop), and a
sample longer than the crop is read only up to it (its keys then name that window). With every sample as long as
its item, nothing is cropped and every key is what it was before the crop existed.

**Views.** ``accompaniment`` scores the sample itself; ``mix`` scores the item's vocal window + the sample,
loudness-matched (:func:`bench.metrics.mix.vocal_accompaniment_mix`); a mix clip's keys name the view, the mix rule
and the vocal.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.scoring.records import Sample
from samuel.hashing import file_sha256

if TYPE_CHECKING:
    from bench.scoring.features import VocalFeatureCache

SAMPLE_RATE = 44_100  # samuel.audio's rate: every clip, vocal and reference is read at it
ACCOMPANIMENT, MIX = "accompaniment", "mix"
VIEWS = (ACCOMPANIMENT, MIX)  # what a clip's scores are computed on (ScoreConfig.score_on)
MIN_CROP_S = 1.0  # a sample shorter than this is broken, not short: it does not shorten every other model's item
CROP_TOLERANCE_S = 1e-3  # a sample at most this much longer than the crop is read whole (frame rounding)
CROP_RULE = ("per item: min(item duration, each scored model's sample length for that item), aligned to the vocal "
             "window's start; applied to every sample, the vocal and the reference window for every metric")


def window_of(item: Any) -> dict[str, float]:
    """An item's window in its vocal and reference files, as cache keys and scores.json name it."""
    return {"start_s": round(float(item.start_s), 6), "duration_s": round(float(item.duration_s), 6)}


@dataclass
class ItemAudio:
    """Items by id, their vocal and reference windows, and per-pass caches of what is computed from them.

    ``features`` keeps one entry per (feature function, item): the pitch tracker runs once per vocal, however many
    models and anchors read it, and with a ``vocal_cache`` once per vocal across runs. Audio itself is not kept
    (100 vocals of 47.55 s would hold 1.6 GB).
    """

    items: dict[str, Any]  # item_id -> bench.manifest.Item (its duration the common crop when one is given)
    features: dict[tuple[str, str], Any] = field(default_factory=dict)  # (feature target, item_id) -> features
    _vocal_sha256: dict[str, str] = field(default_factory=dict)
    crop: CommonCrop | None = None
    vocal_cache: VocalFeatureCache | None = None  # on disk, shared by runs: features that name their identity

    @classmethod
    def of(cls, items: Iterable[Any], crop: CommonCrop | None = None,
           vocal_cache: VocalFeatureCache | None = None) -> ItemAudio:
        """The items, each cut to its common crop when ``crop`` is given (its duration becomes the crop)."""
        if crop is not None:
            items = [dataclasses.replace(i, duration_s=crop.per_item[i.item_id]) if crop.cropped(i.item_id) else i
                     for i in items]
        return cls({item.item_id: item for item in items}, crop=crop, vocal_cache=vocal_cache)

    def sample_crop(self, sample: Sample) -> float | None:
        """Seconds to read of ``sample`` (from its start), or None to read it whole."""
        return None if self.crop is None else self.crop.sample_window(sample)

    def clip(self, sample: Sample, sha256: str, view: str = ACCOMPANIMENT) -> Clip:
        """The clip a group scores for ``sample`` in ``view``: cropped to the common window; in ``mix``, the item's
        vocal window + the sample, loudness-matched."""
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
        crop = self.sample_crop(sample)
        inputs: dict[str, Any] = {} if crop is None else {"sample_window": {"start_s": 0.0, "duration_s": crop}}
        if view == ACCOMPANIMENT:
            return Clip(sample, sha256, crop_s=crop, key_inputs=inputs)
        from bench.metrics.mix import mix_identity

        inputs.update(view=MIX, mix=mix_identity(), mixed_with={"item_id": sample.item_id,
                                                                **self.vocal_key(sample.item_id)})
        return Clip(sample, sha256, crop_s=crop, key_inputs=inputs, mix_vocal=lambda: self.vocal(sample.item_id))

    def item(self, item_id: str) -> Any:
        try:
            return self.items[item_id]
        except KeyError:
            raise ValueError(f"item {item_id!r} is not in the manifest") from None

    def vocal(self, item_id: str) -> np.ndarray:
        """The item's vocal window, (2, S) float32 at 44.1 kHz, read as the adapters read it (``Item.read_vocal``)."""
        return self.item(item_id).read_vocal()

    def vocal_features(self, target: str, fn: Callable[[np.ndarray, int], Any], item_id: str,
                       identity: dict[str, Any] | None = None) -> Any:
        """``fn(vocal window, rate)``, computed once per (target, item) in this pass; with ``identity`` (what
        computes them, :func:`bench.metrics.adherence.vocal_features_identity`) and a :attr:`vocal_cache`, read from
        that cache when an earlier run stored them for the same samples and identity."""
        key = (target, item_id)
        if key not in self.features:
            vocal = self.vocal(item_id)
            if self.vocal_cache is not None and identity is not None:
                self.features[key] = self.vocal_cache.get(vocal, SAMPLE_RATE, identity, lambda: fn(vocal, SAMPLE_RATE))
            else:
                self.features[key] = fn(vocal, SAMPLE_RATE)
        return self.features[key]

    def vocal_key(self, item_id: str) -> dict[str, Any]:
        """What a value computed from the item's vocal depends on: the file's content and the window."""
        item = self.item(item_id)
        if not item.vocal:
            raise ValueError(f"item {item_id!r} has no vocal (none of --vocals has its file stem)")
        if item_id not in self._vocal_sha256:
            self._vocal_sha256[item_id] = item.vocal_sha256 or file_sha256(Path(item.vocal))
        return {"sha256": self._vocal_sha256[item_id], **window_of(item)}


@dataclass
class Clip:
    """One sample being scored: its audio is read once, on first use, and dropped with the clip; features of it
    (per group) are kept for the clip's other uses (the shuffled-pairs anchor reuses the true pairs' features)."""

    sample: Sample
    sha256: str
    features: dict[str, Any] = field(default_factory=dict)  # feature target -> features of this clip
    _audio: np.ndarray | None = None
    crop_s: float | None = None  # read only the sample's first crop_s seconds (the common crop); None: all of it
    key_inputs: dict[str, Any] = field(default_factory=dict)  # what, beyond the sample, every key of it names
    mix_vocal: Callable[[], np.ndarray] | None = None  # mix view: the vocal window the sample is mixed with
    _file_rate: int | None = None  # the stored file's rate, known once its audio is read

    def audio(self) -> np.ndarray:
        """(2, S) float32 at 44.1 kHz: the sample (it is the item's window already) up to the common crop; in the
        mix view, mixed with its vocal window (both cut to the shorter, which differs by rounding only)."""
        if self._audio is None:
            from samuel.audio import load_audio

            loaded = load_audio(self.sample.audio, min_seconds=0.1, duration_s=self.crop_s)
            audio, self._file_rate = loaded.samples, loaded.source_rate
            if self.mix_vocal is not None:
                from bench.metrics.mix import vocal_accompaniment_mix

                vocal = self.mix_vocal()
                n = min(vocal.shape[1], audio.shape[1])
                audio = vocal_accompaniment_mix(vocal[:, :n], audio[:, :n], SAMPLE_RATE)
            self._audio = audio
        return self._audio

    def source_rate(self) -> int:
        """The lowest rate the sample's audio had before 44.1 kHz (:attr:`Sample.source_rate`, else the stored
        file's); in the mix view the sample's too: a band the model's output leaves empty is not the model's because
        the vocal fills it, so a mix is held to the same rate as its sample."""
        if self.sample.source_rate is not None:
            return self.sample.source_rate
        self.audio()
        assert self._file_rate is not None  # set by audio()
        return self._file_rate

    def feature(self, target: str, fn: Callable[[np.ndarray, int], Any]) -> Any:
        if target not in self.features:
            self.features[target] = fn(self.audio(), SAMPLE_RATE)
        return self.features[target]


def sample_seconds(path: str | Path) -> float | None:
    """A sample's length from its header (frames / rate), or None when the header cannot be read (the sample's
    own read then reports the file and its error)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except (RuntimeError, OSError):
        return None
    return info.frames / info.samplerate if info.samplerate > 0 else None


@dataclass(frozen=True)
class CommonCrop:
    """The window common to every model being compared, per item (:data:`CROP_RULE`).

    Per item: crop = min(item duration, each scored model's sample length for that item); a sample shorter than
    :data:`MIN_CROP_S` (broken, not short) or without a readable header does not set it. Per item rather than one
    run-wide crop: every model is still scored on the same seconds of each item (paired), the FAD reference clip of
    an item is as long as its candidates, and one short system does not shorten the items the others share in full.
    """

    models: tuple[str, ...]  # the models compared (the ones scored)
    item_s: Mapping[str, float]  # item_id -> the item's duration
    per_item: Mapping[str, float]  # item_id -> the common crop, seconds
    set_by: Mapping[str, tuple[str, ...]]  # item_id -> the models whose sample set a crop below the item's duration
    sample_s: Mapping[tuple[str, str, str], float]  # (model, item_id, sample_id) -> the sample's length
    ignored: tuple[str, ...] = ()  # samples that did not set the crop, and why

    @classmethod
    def of(cls, items: Iterable[Any], samples: Mapping[str, Sequence[Sample]],
           seconds: Callable[[Path], float | None] = sample_seconds) -> CommonCrop:
        item_s = {i.item_id: round(float(i.duration_s), 6) for i in items}
        per_item, set_by = dict(item_s), {i: () for i in item_s}
        sample_s, ignored = {}, []
        for model, model_samples in samples.items():
            for s in model_samples:
                if s.item_id not in item_s:
                    continue
                length = seconds(s.audio)
                if length is None:
                    continue
                sample_s[(model, s.item_id, s.sample_id)] = length
                if length < MIN_CROP_S:
                    ignored.append(f"{model} {s.item_id}: {s.audio.name} lasts {length:.3f} s (< {MIN_CROP_S:g} s)")
                    continue
                crop = round(length, 6)
                if crop < per_item[s.item_id] - CROP_TOLERANCE_S:
                    per_item[s.item_id], set_by[s.item_id] = crop, (model,)
                elif crop <= per_item[s.item_id] + CROP_TOLERANCE_S and set_by[s.item_id]:
                    set_by[s.item_id] = (*set_by[s.item_id], model)
        return cls(tuple(samples), item_s, per_item, set_by, sample_s, tuple(ignored))

    def cropped(self, item_id: str) -> bool:
        """Whether ``item_id`` is scored on less than its item's duration."""
        return bool(self.set_by.get(item_id))

    def sample_window(self, sample: Sample) -> float | None:
        """Seconds to read of ``sample``: the crop when the sample is longer than it, else None (read whole)."""
        crop = self.per_item.get(sample.item_id)
        length = self.sample_s.get((sample.model, sample.item_id, sample.sample_id))
        if crop is None or length is None or length <= crop + CROP_TOLERANCE_S:
            return None
        return crop

    @property
    def any_cropped(self) -> bool:
        return any(self.set_by.values())

    def summary(self) -> dict[str, Any]:
        """min / median / max crop over items, how many are cropped, the shortest crop among the cropped ones (an
        uncropped short item can set ``min_s``) and which models set a crop."""
        crops = list(self.per_item.values())
        cut = [c for i, c in self.per_item.items() if self.cropped(i)]
        setters = sorted({m for ms in self.set_by.values() for m in ms})
        return {"n_items": len(crops), "n_cropped": len(cut),
                "min_s": min(crops) if crops else None, "median_s": statistics.median(crops) if crops else None,
                "max_s": max(crops) if crops else None, "cropped_min_s": min(cut) if cut else None,
                "set_by": setters}

    def to_dict(self) -> dict[str, Any]:
        """scores.json ``crop``."""
        return {"rule": CROP_RULE, "models": list(self.models), "summary": self.summary(),
                "per_item": {i: {"crop_s": c, "item_s": self.item_s[i], "set_by": list(self.set_by[i])}
                             for i, c in self.per_item.items()},
                "ignored": list(self.ignored)}

    def note(self) -> str | None:
        """Table I's note on the crop; None when no item is cropped."""
        if not self.any_cropped:
            return None
        s = self.summary()
        return (f"Common crop: every model is scored on the window all compared models share, from the vocal's "
                f"start ({s['n_cropped']} of {s['n_items']} items cropped, the shortest to "
                f"{s['cropped_min_s']:.2f} s; every item's window: min {s['min_s']:.2f} s, median "
                f"{s['median_s']:.2f} s, max {s['max_s']:.2f} s; set by {', '.join(s['set_by'])}); the vocal and "
                "reference windows are cut to it for every metric.")


def song_clusters(items: Any) -> dict[str, str] | None:
    """item id -> its song (the vocal file its window was cut from) when some song gave two or more items
    (``--windows-per-song``); None when every item is its own song."""
    songs = {item.item_id: item.vocal or item.item_id for item in items}
    return songs if len(set(songs.values())) < len(songs) else None
