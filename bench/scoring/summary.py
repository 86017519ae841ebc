"""The summary of per-clip values: per model and metric the mean with a seeded bootstrap CI over items and the
per-clip SD, paired differences to the baseline model on the items both have (raw and Holm-adjusted p-values),
and the adherence anchors of the reference row.

Values in, dicts for scores.json out; every estimate carries n, its interval and the method.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from bench.bootstrap import bootstrap_mean_ci, paired_bootstrap_diff
from bench.scoring.registry import metric as registered_metric
from bench.stats import holm_adjust, within_range

# item_id -> group -> key -> value
PerItem = Mapping[str, Mapping[str, Mapping[str, float]]]

# The multiplicity family of the per-clip paired differences; the set pass's FAD/KAD/APA differences are "set".
PER_CLIP_FAMILY = "per-clip"
PER_CLIP_FAMILY_MEANS = ("every per-clip paired comparison of the run: each scored model against the baseline on "
                         "each per-clip metric")


def metric_values(per_item: PerItem) -> dict[str, dict[str, float]]:
    """item -> group -> values  =>  'group.key' -> item -> value (finite values only)."""
    out: dict[str, dict[str, float]] = {}
    for item, groups in per_item.items():
        for group, values in groups.items():
            for name, v in values.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    out.setdefault(f"{group}.{name}", {})[item] = float(v)
    return out


def metric_range(name: str) -> tuple[float | None, float | None]:
    """The registry's range of ``"group.key"`` (None where unbounded, or the metric is unknown)."""
    found = registered_metric(name)
    return (None, None) if found is None else (found[1].low, found[1].high)


def difference_range(name: str) -> tuple[float | None, float | None]:
    """The range of a paired difference of ``"group.key"``: +-(high - low) when both ends are known."""
    low, high = metric_range(name)
    return (None, None) if low is None or high is None else (low - high, high - low)


def mean_estimates(values: Mapping[str, Mapping[str, float]], n_samples: int, resamples: int, seed: int,
                   clusters: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Per metric: the mean over items with an expanded percentile bootstrap CI (intersected with the metric's
    registered range, :func:`bench.stats.within_range`), the per-clip sample SD (``sd``, ddof=1; None below 2 clips:
    Table I's paper comparison needs it) and ``n_nonfinite``, the clips without a finite value (failed, or NaN by
    definition such as no voiced frame). ``clusters`` (item -> its song) resamples the windows of one song together
    (bench.bootstrap's cluster bootstrap)."""
    out = {}
    for metric, by_item in sorted(values.items()):
        x = list(by_item.values())
        est = within_range(bootstrap_mean_ci(x, n_resamples=resamples, seed=seed, clusters=_labels(by_item, clusters)),
                           *metric_range(metric))
        sd = float(np.std(x, ddof=1)) if len(x) >= 2 else None
        out[metric] = {**est.to_dict(), "sd": sd, "n_nonfinite": n_samples - est.n}
    return out


def paired_differences(values: Mapping[str, Mapping[str, float]], base: Mapping[str, Mapping[str, float]],
                       baseline: str, resamples: int, seed: int, clusters: Mapping[str, str] | None = None
                       ) -> dict[str, dict[str, Any]]:
    """Per metric: the mean of (model - baseline) over the items both have (>= 2), with a paired bootstrap CI and
    the sign-flip test's two-sided p-value (:func:`bench.bootstrap.sign_flip_p_value`; pairs of one song resampled
    and flipped together when ``clusters`` says which song each item is); the interval is intersected with the
    difference's range (:func:`difference_range`)."""
    out = {}
    for metric, by_item in sorted(values.items()):
        common = sorted(set(by_item) & set(base.get(metric, {})))
        if len(common) < 2:
            continue
        diff, p = paired_bootstrap_diff([by_item[i] for i in common], [base[metric][i] for i in common],
                                        n_resamples=resamples, seed=seed,
                                        clusters=_labels(dict.fromkeys(common), clusters))
        out[metric] = {**within_range(diff, *difference_range(metric)).to_dict(), "p_value": p, "versus": baseline}
    return out


def _labels(items: Mapping[str, Any], clusters: Mapping[str, str] | None) -> list[str] | None:
    """The cluster label of each item, in ``items``' order (an item the map does not name is its own cluster)."""
    return None if clusters is None else [clusters.get(item, item) for item in items]


def holm_family(paired: Mapping[str, Mapping[str, Mapping[str, Any]]], family: str
                ) -> dict[str, dict[str, dict[str, Any]]]:
    """Holm-adjust the p-values of one family of comparisons (:func:`bench.stats.holm_adjust`).

    Args:
        paired: model -> metric -> a paired difference with ``p_value`` (every entry belongs to the family).
        family: its name, stored beside each adjusted p.

    Returns:
        the same entries, each with ``p_holm`` (None where ``p_value`` is None or NaN), ``family`` and
        ``family_size`` (m, the tests with a p-value).
    """
    keys = [(model, metric) for model, entries in paired.items() for metric in entries]
    raw = [paired[m][k].get("p_value") for m, k in keys]
    adjusted = holm_adjust([math.nan if p is None else float(p) for p in raw])
    size = int(np.count_nonzero(np.isfinite(adjusted)))
    out: dict[str, dict[str, dict[str, Any]]] = {model: {} for model in paired}
    for (model, metric), p in zip(keys, adjusted, strict=True):
        out[model][metric] = {**paired[model][metric], "p_holm": float(p) if math.isfinite(p) else None,
                              "family": family, "family_size": size}
    return out


def summarise(per_item: Mapping[str, PerItem], n_samples: Mapping[str, int], baseline: str, resamples: int,
              seed: int, family: str = PER_CLIP_FAMILY, clusters: Mapping[str, str] | None = None
              ) -> dict[str, dict[str, Any]]:
    """Per model: ``per_clip`` means with CIs and ``paired`` differences to ``baseline`` (when it was scored), their
    p-values Holm-adjusted over ``family`` (every model and metric of the run together; the mix view's per-clip
    comparisons are their own family, so that asking for it leaves the accompaniment view's numbers as they are).
    ``clusters`` (:func:`song_clusters`) makes every interval and p-value a cluster bootstrap over songs."""
    values = {m: metric_values(v) for m, v in per_item.items()}
    paired = {model: paired_differences(vals, values[baseline], baseline, resamples, seed, clusters)
              if baseline in values and model != baseline else {} for model, vals in values.items()}
    paired = holm_family(paired, family)
    return {model: {"per_clip": mean_estimates(vals, n_samples[model], resamples, seed, clusters),
                    "paired": paired[model]} for model, vals in values.items()}


def anchor_estimates(reference_per_clip: Mapping[str, dict[str, Any]], shuffled: Mapping[str, PerItem],
                     n_reference: int, resamples: int, seed: int, clusters: Mapping[str, str] | None = None
                     ) -> dict[str, dict[str, Any]]:
    """The two adherence anchors: ``true_pairs`` (upper), the reference row's own means for each anchored group,
    and ``shuffled_pairs`` (lower, chance), the mean over the reference accompaniments each scored against a
    deranged item's vocal. Keyed by metric key without the group, as Table I and the figures read them.

    Args:
        reference_per_clip: the reference row's ``per_clip`` estimates ('group.key' -> estimate).
        shuffled: anchored group -> item -> group -> values (the shuffled pairs; an empty mapping for a group
            whose shuffled pairs all failed).
        n_reference: the reference row's clips (``n_nonfinite`` counts those without a finite shuffled value).
    """
    true_pairs: dict[str, Any] = {}
    shuffled_pairs: dict[str, Any] = {}
    for group, per_item in shuffled.items():
        true_pairs.update({metric.split(".", 1)[1]: est for metric, est in reference_per_clip.items()
                           if metric.split(".", 1)[0] == group})
        estimates = mean_estimates(metric_values(per_item), n_reference, resamples, seed, clusters)
        shuffled_pairs.update({metric.split(".", 1)[1]: est for metric, est in estimates.items()})
    return {"true_pairs": true_pairs, "shuffled_pairs": shuffled_pairs}
