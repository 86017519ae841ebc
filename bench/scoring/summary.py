"""The summary of per-clip values: per model and metric the mean with a seeded bootstrap CI over items, paired
differences to the baseline model on the items both have, and the adherence anchors of the reference row.

Values in, dicts for scores.json out; every estimate carries n, its interval and the method.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from bench.bootstrap import bootstrap_mean_ci, paired_bootstrap_diff

# item_id -> group -> key -> value
PerItem = Mapping[str, Mapping[str, Mapping[str, float]]]


def metric_values(per_item: PerItem) -> dict[str, dict[str, float]]:
    """item -> group -> values  =>  'group.key' -> item -> value (finite values only)."""
    out: dict[str, dict[str, float]] = {}
    for item, groups in per_item.items():
        for group, values in groups.items():
            for name, v in values.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    out.setdefault(f"{group}.{name}", {})[item] = float(v)
    return out


def mean_estimates(values: Mapping[str, Mapping[str, float]], n_samples: int, resamples: int, seed: int
                   ) -> dict[str, dict[str, Any]]:
    """Per metric: the mean over items with a percentile bootstrap CI; ``n_nonfinite`` counts the clips without a
    finite value (failed, or NaN by definition such as no voiced frame)."""
    out = {}
    for metric, by_item in sorted(values.items()):
        est = bootstrap_mean_ci(list(by_item.values()), n_resamples=resamples, seed=seed)
        out[metric] = {**est.to_dict(), "n_nonfinite": n_samples - est.n}
    return out


def paired_differences(values: Mapping[str, Mapping[str, float]], base: Mapping[str, Mapping[str, float]],
                       baseline: str, resamples: int, seed: int) -> dict[str, dict[str, Any]]:
    """Per metric: the mean of (model - baseline) over the items both have (>= 2), with a paired bootstrap CI and
    a two-sided p-value."""
    out = {}
    for metric, by_item in sorted(values.items()):
        common = sorted(set(by_item) & set(base.get(metric, {})))
        if len(common) < 2:
            continue
        diff, p = paired_bootstrap_diff([by_item[i] for i in common], [base[metric][i] for i in common],
                                        n_resamples=resamples, seed=seed)
        out[metric] = {**diff.to_dict(), "p_value": p, "versus": baseline}
    return out


def summarise(per_item: Mapping[str, PerItem], n_samples: Mapping[str, int], baseline: str, resamples: int,
              seed: int) -> dict[str, dict[str, Any]]:
    """Per model: ``per_clip`` means with CIs and ``paired`` differences to ``baseline`` (when it was scored)."""
    values = {m: metric_values(v) for m, v in per_item.items()}
    out: dict[str, dict[str, Any]] = {}
    for model, vals in values.items():
        paired = {}
        if baseline in values and model != baseline:
            paired = paired_differences(vals, values[baseline], baseline, resamples, seed)
        out[model] = {"per_clip": mean_estimates(vals, n_samples[model], resamples, seed), "paired": paired}
    return out


def anchor_estimates(reference_per_clip: Mapping[str, dict[str, Any]], shuffled: Mapping[str, PerItem],
                     n_reference: int, resamples: int, seed: int) -> dict[str, dict[str, Any]]:
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
        estimates = mean_estimates(metric_values(per_item), n_reference, resamples, seed)
        shuffled_pairs.update({metric.split(".", 1)[1]: est for metric, est in estimates.items()})
    return {"true_pairs": true_pairs, "shuffled_pairs": shuffled_pairs}
