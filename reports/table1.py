"""Table I (quality) from scores.json: aesthetics beside the paper's values, the FAD family and adherence.

Every cell is a mean (or a set statistic) with its 95% CI and n. Two anchor rows bracket the adherence columns:
the true vocal/accompaniment pairs (upper) and shuffled pairs (lower). Rows from random-weight models never
appear; a note names them. A paper value outside our 95% CI is flagged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.results import RunResults
from bench.scoring.registry import SET, Metric, MetricGroup, table1_groups
from reports.paper import TABLE1
from reports.tables import Cell, Table, write_table

FLAG = "†"
ANCHOR_ROWS = (("true_pairs", "Anchor: true pairs (upper)"), ("shuffled_pairs", "Anchor: shuffled pairs (lower)"))
SET_NOTE = "a set statistic; no interval computed"


def _paper_row(model: str) -> tuple[dict[str, float] | None, str]:
    """The paper's Table I row for one of our models, and how it maps."""
    if model in TABLE1:
        return TABLE1[model], ""
    if model.startswith("musicgen"):
        return TABLE1["musicgen"], "the paper's single MusicGen row (size not stated)"
    return None, ""


def estimate_cell(est: dict[str, Any] | None, fmt: Callable[[float], str]) -> Cell:
    """'value [low, high], n=k' from an Estimate/SetEstimate dict; 'value (no CI), n=k' for a statistic without an
    interval (``n_items`` stands in for n); '—' when absent."""
    if not est or est.get("value") is None or not math.isfinite(est["value"]):
        return Cell("—")
    value, low, high = est["value"], est.get("ci_low"), est.get("ci_high")
    n = est.get("n", est.get("n_items"))
    has_ci = low is not None and high is not None and math.isfinite(low) and math.isfinite(high)
    ci = f" [{fmt(low)}, {fmt(high)}]" if has_ci else " (no CI)"
    note = SET_NOTE if "ci_low" not in est and "ci_high" not in est else ""
    return Cell(f"{fmt(value)}{ci}, n={n}", float(value), (float(low), float(high)) if has_ci else None, n, note)


def _with_paper(cell: Cell, paper: float | None) -> tuple[Cell, Cell, bool]:
    if paper is None:
        return cell, Cell("—"), False
    outside = cell.ci is not None and not (cell.ci[0] <= paper <= cell.ci[1])
    paper_cell = Cell(f"{paper:.2f}{FLAG if outside else ''}", paper, note="outside our 95% CI" if outside else "",
                      flagged=outside)
    return cell, paper_cell, outside


def _has_paper_value(metric: Metric) -> bool:
    return any(metric.key in row for row in TABLE1.values())


@dataclass(frozen=True)
class Column:
    """A Table I column of one registered metric (per embedder for set metrics); paper columns follow theirs."""

    group: MetricGroup
    metric: Metric
    embedder: str | None = None

    @property
    def label(self) -> str:
        return self.metric.table1.format(embedder=self.embedder)

    @property
    def with_paper(self) -> bool:
        return self.group.kind != SET and _has_paper_value(self.metric)


def columns_for(embedders: list[str]) -> list[Column]:
    """Table I's metric columns, from the registry: groups by ``table1_rank``, metrics in registry order."""
    out = []
    for group in table1_groups():
        shown = [m for m in group.metrics if m.table1]
        for embedder in embedders if group.kind == SET else [None]:
            out += [Column(group, m, embedder) for m in shown]
    return out


def table1(scores: dict[str, Any], results: RunResults | None = None) -> Table:
    embedders = list(scores.get("config", {}).get("embedders", []))
    metric_columns = columns_for(embedders)
    columns = ["Model", "Weights"]
    for c in metric_columns:
        columns += [c.label, f"{c.label} (paper)"] if c.with_paper else [c.label]
    table = Table("Table I: quality (audiobox-aesthetics 1-10, FAD family, vocal-accompaniment adherence); "
                  "mean [95% CI], n", columns)
    models = scores.get("models", {})
    ran = results.models if results is not None else {}
    display = {name: ran[name].display_name if name in ran else name for name in models}
    random_rows, flagged, mapped = [], [], []
    for name, entry in models.items():
        if entry.get("weights") == "random":
            random_rows.append(display[name])
            continue
        paper, how = _paper_row(name)
        if how:
            mapped.append(f"{display[name]}: {how}")
        row = [Cell(display[name]), Cell(entry["weights"])]
        for c in metric_columns:
            if c.group.kind == SET:
                row.append(_set_cell(entry.get("sets", {}).get(c.embedder, {}), c.metric))
                continue
            cell = estimate_cell(entry.get("per_clip", {}).get(f"{c.group.name}.{c.metric.key}"), c.metric.format)
            if not c.with_paper:
                row.append(cell)
                continue
            ours, theirs, outside = _with_paper(cell, paper.get(c.metric.key) if paper else None)
            row += [ours, theirs]
            if outside:
                flagged.append(f"{display[name]} {c.metric.key}")
        table.add(row)
    anchors = scores.get("anchors", {})
    for anchor, label in ANCHOR_ROWS:
        if not anchors.get(anchor):
            continue
        row = [Cell(label), Cell("—")]
        for c in metric_columns:
            cells = 2 if c.with_paper else 1
            row += ([estimate_cell(anchors[anchor].get(c.metric.key), c.metric.format)] if c.group.anchored
                    else [Cell("") for _ in range(cells)])
        table.add(row)
    _notes(table, scores, random_rows, flagged, mapped, embedders)
    return table


def _set_cell(sets: dict[str, Any], metric: Metric) -> Cell:
    """A set statistic of one model and embedder; the FAD column of the FAD reference set's own row says so."""
    if metric.key == "fad" and "note" in sets and "fad" not in sets:
        return Cell("— (the FAD reference set)")
    return estimate_cell(sets.get(metric.key), metric.format)


def _notes(table: Table, scores: dict[str, Any], random_rows: list[str], flagged: list[str], mapped: list[str],
           embedders: list[str]) -> None:
    resamples = scores.get("config", {}).get("resamples")
    table.notes.append(f"Per-clip metrics: mean over items with a seeded percentile bootstrap 95% CI "
                       f"(B={resamples}); n = items with a finite value.")
    table.notes.append("Paper values as printed (the mean of 10 tracks; a later version of the paper says 100; no "
                       "CI). The aesthetics model's fourth axis is 'Content Usefulness'; the paper calls CU "
                       "'Content Unity'.")
    if flagged:
        table.notes.append(f"{FLAG} paper value outside our 95% CI: {', '.join(flagged)}.")
    if mapped:
        table.notes.append("Paper row used: " + "; ".join(mapped) + ".")
    if embedders:
        table.notes.append("FAD: frames of every clip pooled, equal n for every model (the items all scored models "
                           "have); CI = value +- 1.96 bootstrap SE over clips (B resamples); the small-n bias is "
                           "in scores.json as FAD-inf and as the bootstrap bias. KAD: unbiased MMD^2, RBF kernel, "
                           "bandwidth = median distance of the reference embeddings. APA (Grachten & Nistal 2025): "
                           "1 = like the true pairs, 0 = like shuffled pairs, frame-aligned late fusion.")
    table.notes.append("Adherence: chroma agreement in [0, 1] (flat chroma 1/12), key agreement and onset "
                       "alignment with chance at 0; the two anchor rows are the true accompaniments with their own "
                       "vocals and with another item's vocal.")
    if random_rows:
        table.notes.append(f"Not shown: {', '.join(random_rows)} ran with RANDOM weights (plumbing only, not a "
                           "quality result).")
    for note in scores.get("notes", []):
        table.notes.append(note)


def write_table1(scores: dict[str, Any], folder: Path, results: RunResults | None = None) -> list[Path]:
    return write_table(table1(scores, results), folder, "table1")
