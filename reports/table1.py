"""Table I (quality) from scores.json: aesthetics beside the paper's values, the FAD family and adherence.

Every cell is a mean (or a set statistic) with its 95% CI and n. Two anchor rows bracket the adherence columns:
the true vocal/accompaniment pairs (upper) and shuffled pairs (lower). Rows from random-weight models never
appear; a note names them. A paper value outside our 95% CI is flagged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reports.paper import TABLE1
from reports.tables import Cell, Table, write_table

AXES = ("PQ", "PC", "CE", "CU")
ADHERENCE = (("chroma_agreement", "Chroma agreement"), ("key_agreement", "Key agreement"),
             ("onset_alignment", "Onset alignment"))
FLAG = "†"


def _paper_row(model: str) -> tuple[dict[str, float] | None, str]:
    """The paper's Table I row for one of our models, and how it maps."""
    if model in TABLE1:
        return TABLE1[model], ""
    if model.startswith("musicgen"):
        return TABLE1["musicgen"], "the paper's single MusicGen row (size not stated)"
    return None, ""


def estimate_cell(est: dict[str, Any] | None, fmt: Callable[[float], str]) -> Cell:
    """'value [low, high], n=k' from an Estimate/SetEstimate dict; '—' when absent."""
    if not est or est.get("value") is None or not math.isfinite(est["value"]):
        return Cell("—")
    value, low, high, n = est["value"], est.get("ci_low"), est.get("ci_high"), est.get("n")
    has_ci = low is not None and high is not None and math.isfinite(low) and math.isfinite(high)
    ci = f" [{fmt(low)}, {fmt(high)}]" if has_ci else " (no CI)"
    return Cell(f"{fmt(value)}{ci}, n={n}", float(value), (float(low), float(high)) if has_ci else None, n)


def _two(x: float) -> str:
    return f"{x:.2f}"


def _three(x: float) -> str:
    return f"{x:.3f}"


def _sig(x: float) -> str:
    return f"{x:.3g}"


def _with_paper(cell: Cell, paper: float | None) -> tuple[Cell, Cell, bool]:
    if paper is None:
        return cell, Cell("—"), False
    outside = cell.ci is not None and not (cell.ci[0] <= paper <= cell.ci[1])
    paper_cell = Cell(f"{paper:.2f}{FLAG if outside else ''}", paper, note="outside our 95% CI" if outside else "",
                      flagged=outside)
    return cell, paper_cell, outside


def table1(scores: dict[str, Any], results: dict[str, Any] | None = None) -> Table:
    embedders = list(scores.get("config", {}).get("embedders", []))
    columns = ["Model", "Weights"]
    for axis in AXES:
        columns += [axis, f"{axis} (paper)"]
    for e in embedders:
        columns += [f"FAD ({e})", f"KAD ({e})", f"APA, late fusion ({e})"]
    columns += [label for _, label in ADHERENCE]
    table = Table("Table I: quality (audiobox-aesthetics 1-10, FAD family, vocal-accompaniment adherence); "
                  "mean [95% CI], n", columns)
    models = scores.get("models", {})
    display = {name: (results or {}).get("models", {}).get(name, {}).get("describe", {}).get("display_name", name)
               for name in models}
    random_rows, flagged, mapped = [], [], []
    for name, entry in models.items():
        if entry.get("weights") == "random":
            random_rows.append(display[name])
            continue
        per_clip = entry.get("per_clip", {})
        paper, how = _paper_row(name)
        if how:
            mapped.append(f"{display[name]}: {how}")
        row = [Cell(display[name]), Cell({"files": "files", "pretrained": "pretrained"}.get(entry["weights"],
                                                                                            entry["weights"]))]
        for axis in AXES:
            ours, theirs, outside = _with_paper(estimate_cell(per_clip.get(f"aesthetics.{axis}"), _two),
                                                paper.get(axis) if paper else None)
            row += [ours, theirs]
            if outside:
                flagged.append(f"{display[name]} {axis}")
        for e in embedders:
            sets = entry.get("sets", {}).get(e, {})
            if "note" in sets and "fad" not in sets:
                row.append(Cell("— (the FAD reference set)"))
            else:
                row.append(estimate_cell(sets.get("fad"), _sig))
            row.append(estimate_cell(sets.get("kad"), _sig))
            apa = sets.get("apa")
            row.append(Cell(f"{apa['value']:.3f} (no CI), n={apa['n_items']}", apa["value"], n=apa["n_items"],
                            note="a set statistic; no interval computed")
                       if apa and apa.get("value") is not None and math.isfinite(apa["value"]) else Cell("—"))
        for key, _ in ADHERENCE:
            row.append(estimate_cell(per_clip.get(f"adherence.{key}"), _three))
        table.add(row)
    anchors = scores.get("anchors", {})
    for anchor, label in (("true_pairs", "Anchor: true pairs (upper)"), ("shuffled_pairs",
                                                                          "Anchor: shuffled pairs (lower)")):
        if not anchors.get(anchor):
            continue
        row = [Cell(label), Cell("—")] + [Cell("") for _ in range(len(columns) - 2 - len(ADHERENCE))]
        row += [estimate_cell(anchors[anchor].get(key), _three) for key, _ in ADHERENCE]
        table.add(row)
    _notes(table, scores, random_rows, flagged, mapped, embedders)
    return table


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


def write_table1(scores: dict[str, Any], folder: Path, results: dict[str, Any] | None = None) -> list[Path]:
    return write_table(table1(scores, results), folder, "table1")
