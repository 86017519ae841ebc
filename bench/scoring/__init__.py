"""The score pass as a package; imports flow down this list (import-linter keeps it so):

- :mod:`bench.scoring.pipeline`: :func:`score`, the pass (caches, per-clip groups, sets, summary, scores.json).
- :mod:`bench.scoring.workers`: the per-clip groups without weights computed in worker processes (--score-workers).
- :mod:`bench.scoring.clips`: per-clip metric groups built from the registry; the shuffled-pairs anchor.
- :mod:`bench.scoring.embeddings`: clips, references and vocals embedded; the registered set metrics run.
- :mod:`bench.scoring.summary`: means with bootstrap CIs, paired differences, the adherence anchors.
- :mod:`bench.scoring.sets`: the set statistics, one small function each (FAD, FAD-inf, per-song FAD, KAD, APA).
- :mod:`bench.scoring.inputs`: an item's vocal and reference read through its window, cut to the common crop
  (:class:`~bench.scoring.inputs.CommonCrop`); clips in the accompaniment or mix view; the pass's typed caches.
- :mod:`bench.scoring.records`: :class:`Sample`, per-clip records (the cache), :func:`read_scores`,
  :func:`read_clip_values`.
- :mod:`bench.scoring.config`: :class:`ScoreConfig`.
- :mod:`bench.scoring.features`: the content-addressed vocal feature cache shared by runs (--feature-cache).
- :mod:`bench.scoring.registry`: every metric with its metadata, declared once.

Importing the package (or its registry) imports no metric backend: the names below are loaded on first use, and
each group's computation only when a pass runs it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "score": "bench.scoring.pipeline",
    "REFERENCE_MODEL": "bench.scoring.config", "ScoreConfig": "bench.scoring.config",
    "SCORES_FORMAT": "bench.scoring.records", "Sample": "bench.scoring.records",
    "read_clip_values": "bench.scoring.records", "read_scores": "bench.scoring.records",
    "GROUPS": "bench.scoring.registry", "Metric": "bench.scoring.registry", "MetricGroup": "bench.scoring.registry",
    "UnknownMetricError": "bench.scoring.registry", "group_names": "bench.scoring.registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bench.scoring' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
