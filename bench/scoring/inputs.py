"""The audio the score pass reads, and the pass's typed in-memory caches of it.

An item's vocal and reference are read only through the item's window (``samuel.audio.load_window`` with the
item's ``start_s`` and ``duration_s``), looked up in the manifest by item id: a vocal file longer than its item is
never compared whole. Every cache key that depends on a vocal or reference names the window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.scoring.records import Sample
from samuel.hashing import file_sha256

SAMPLE_RATE = 44_100  # samuel.audio's rate: every clip, vocal and reference is read at it


def window_of(item: Any) -> dict[str, float]:
    """An item's window in its vocal and reference files, as cache keys and scores.json name it."""
    return {"start_s": round(float(item.start_s), 6), "duration_s": round(float(item.duration_s), 6)}


@dataclass
class ItemAudio:
    """Items by id, their vocal and reference windows, and per-pass caches of what is computed from them.

    ``features`` keeps one entry per (feature function, item): pYIN runs once per vocal, however many models and
    anchors read it. Audio itself is not kept (100 vocals of 47.55 s would hold 1.6 GB).
    """

    items: dict[str, Any]  # item_id -> bench.manifest.Item
    features: dict[tuple[str, str], Any] = field(default_factory=dict)  # (feature target, item_id) -> features
    _vocal_sha256: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, items: Iterable[Any]) -> ItemAudio:
        return cls({item.item_id: item for item in items})

    def item(self, item_id: str) -> Any:
        try:
            return self.items[item_id]
        except KeyError:
            raise ValueError(f"item {item_id!r} is not in the manifest") from None

    def vocal(self, item_id: str) -> np.ndarray:
        """The item's vocal window, (2, S) float32 at 44.1 kHz, read as the adapters read it (``Item.read_vocal``)."""
        return self.item(item_id).read_vocal()

    def vocal_features(self, target: str, fn: Callable[[np.ndarray, int], Any], item_id: str) -> Any:
        """``fn(vocal window, rate)``, computed once per (target, item) in this pass."""
        key = (target, item_id)
        if key not in self.features:
            self.features[key] = fn(self.vocal(item_id), SAMPLE_RATE)
        return self.features[key]

    def vocal_key(self, item_id: str) -> dict[str, Any]:
        """What a value computed from the item's vocal depends on: the file's content and the window."""
        item = self.item(item_id)
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

    def audio(self) -> np.ndarray:
        """(2, S) float32 at 44.1 kHz: the whole sample (it is the item's window already)."""
        if self._audio is None:
            from samuel.audio import load_audio

            self._audio = load_audio(self.sample.audio, min_seconds=0.1).samples
        return self._audio

    def feature(self, target: str, fn: Callable[[np.ndarray, int], Any]) -> Any:
        if target not in self.features:
            self.features[target] = fn(self.audio(), SAMPLE_RATE)
        return self.features[target]
