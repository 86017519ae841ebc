"""Table II (efficiency) from results.json: our measurements beside the paper's values.

Parameters are exact counts of the real architecture (meta device); times are medians over items with a
distribution-free 95% CI and n, labelled "measured in full" or "measured on k of N steps/frames"; each row says
which weights it ran with. Random weights do not change parameter counts or, for a fixed architecture, the
arithmetic of inference, so efficiency rows with random weights are valid efficiency measurements; they are
still marked.
"""

from __future__ import annotations

import math
from itertools import combinations
from pathlib import Path
from typing import Any

from reports.paper import TABLE2
from reports.tables import Cell, Table, write_table

COLUMNS = ["Model", "Weights", "Parameters", "Parameters (paper)", "Inference time per item",
           "Inference time (paper)", "Real-time factor", "Conditioning", "Conditioning (paper)"]


def format_count(n: int) -> str:
    """15394560 -> '15.4M'; 3300000000 -> '3.30B'."""
    if n >= 1e9:
        return f"{n / 1e9:.2f}B"
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}k"
    return str(n)


def format_seconds(s: float) -> str:
    if math.isnan(s):
        return "nan"
    if s >= 3600:
        return f"{s / 3600:.2f} h"
    if s >= 100:
        return f"{s:.0f} s"
    if s >= 1:
        return f"{s:.2f} s"
    return f"{s * 1000:.0f} ms"


def _params_cell(params: dict[str, Any] | None) -> Cell:
    """The exact total with its split, largest first: the paper counts different parts for different models
    (SAMUeL's "15M" is the U-Net without the 156M VAE; MusicGen's sizes name the decoder), so a bare total would
    invite a false comparison."""
    if not params:
        return Cell("—")
    total, parts = params["params_total"], params.get("params_by_component") or {}
    split = " + ".join(f"{k} {format_count(v)}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
    return Cell(f"{format_count(total)} ({split})" if len(parts) > 1 else format_count(total), float(total))


def _estimate_cell(est: dict[str, Any] | None, fmt: Any, label: str | None) -> Cell:
    if not est or est.get("value") is None:
        return Cell("—")
    value, low, high, n = est["value"], est["ci_low"], est["ci_high"], est["n"]
    has_ci = low is not None and not math.isnan(low)
    ci_text = f" [{fmt(low)}, {fmt(high)}]" if has_ci else " (no 95% CI: n < 6)"
    note = f"; {label}" if label and label != "measured in full" else ""
    return Cell(f"{fmt(value)}{ci_text}, n={n}{note}", value, (low, high) if has_ci else None, n, label or "")


FLAG = "†"
PARAMS_TOLERANCE = 0.10  # the paper prints counts to 2-3 significant figures


def _params_match(paper_value: float, params: dict[str, Any] | None) -> bool | None:
    """Whether the paper's count is our total or the sum of some of our components, within the paper's rounding;
    None when we have no count. Sums of components keep SAMUeL's "15M" (everything but the VAE) from a false
    flag."""
    if not params:
        return None
    parts = list((params.get("params_by_component") or {}).values())
    counts = {params["params_total"]} | {sum(c) for r in range(1, len(parts) + 1) for c in combinations(parts, r)}
    return any(abs(c - paper_value) <= PARAMS_TOLERANCE * paper_value for c in counts)


def _paper_cell(text: str, value: float | None, differs: bool, note: str) -> Cell:
    return Cell(f"{text}{FLAG if differs else ''}", value, note=note if differs else "", flagged=differs)


def table2(results: dict[str, Any]) -> Table:
    device = results.get("provenance", {}).get("device", {})
    where = device.get("gpu") or f"{device.get('cpu', '?')} CPU, {device.get('torch_threads', '?')} threads"
    table = Table(f"Table II: efficiency ({where}; batch 1; paper values as printed)", list(COLUMNS))
    random_rows, flagged = [], []
    for name, entry in results.get("models", {}).items():
        paper = TABLE2.get(name)
        describe = entry.get("describe", {})
        weights = entry.get("weights", {})
        kind = weights.get("kind", "not run")
        if kind == "random":
            random_rows.append(describe.get("display_name", name))
        params = entry.get("params")
        timing = entry.get("timing") or {}
        if timing.get("unmeasured_ranks"):
            skipped = "; ".join(f"{r['file']}: {r['reason']}" for r in timing["unmeasured_ranks"])
            table.notes.append(f"{describe.get('display_name', name)}: times pool only the ranks that measured "
                               f"(not measured: {skipped}).")
        if timing.get("status") == "measured":
            time_cell = _estimate_cell(timing.get("seconds"), format_seconds, timing.get("label"))
            if timing.get("setup", {}).get("stopped_early"):
                time_cell = Cell(time_cell.display + " (timing budget spent)", time_cell.value, time_cell.ci,
                                 time_cell.n, time_cell.note)
            rtf_cell = _estimate_cell(timing.get("rtf"), lambda x: f"{x:.3f}", None)
        elif timing:
            time_cell = Cell(f"not measured: {timing.get('reason', '')}", note=timing.get("reason", ""))
            rtf_cell = Cell("—")
        else:
            time_cell = Cell("—" if entry.get("status") != "not run" else f"not run: {entry.get('reason', '')}")
            rtf_cell = Cell("—")
        display = describe.get("display_name", name)
        conditioning = describe.get("conditioning", "—")
        if paper:
            params_differ = _params_match(paper.params_value, params) is False
            time_differ = (paper.time_s is not None and time_cell.ci is not None
                           and not time_cell.ci[0] <= paper.time_s <= time_cell.ci[1])
            cond_differ = conditioning != paper.conditioning
            flagged += [f"{display} {what}" for what, differs in (("parameters", params_differ),
                                                                   ("time", time_differ),
                                                                   ("conditioning", cond_differ)) if differs]
            paper_cells = [_paper_cell(paper.params, paper.params_value, params_differ,
                                       "neither our total nor any sum of our components within 10%"),
                           _paper_cell(paper.time, paper.time_s, time_differ, "outside our 95% CI"),
                           _paper_cell(paper.conditioning, None, cond_differ, "differs from ours")]
        else:
            paper_cells = [Cell("—"), Cell("—"), Cell("—")]
        table.add([
            Cell(display),
            Cell({"random": "RANDOM (efficiency only)", "pretrained": "pretrained", "files": "files"}.get(kind, kind)),
            _params_cell(params),
            paper_cells[0],
            time_cell,
            paper_cells[1],
            rtf_cell,
            Cell(conditioning),
            paper_cells[2],
        ])
    if flagged:
        table.notes.append(f"{FLAG} the paper's value differs from ours: {', '.join(flagged)}. Parameters: neither "
                           "our exact total nor any sum of our components is within 10% of the printed count. "
                           "Time: the printed time lies outside our 95% CI (the paper's hardware is unknown, so "
                           "this flags a difference, not an error).")
    if any("conditioning" in f for f in flagged):
        table.notes.append("Conditioning: MusicGen Small/Medium/Large take only text; the one MusicGen that takes "
                           "audio is MusicGen-Melody (the vocal's chroma plus text), which we run as its own row.")
    table.notes.append("Times: median over items with a distribution-free 95% CI (order statistics), n = items; "
                       "model loading is excluded and reported separately in results.json.")
    if random_rows:
        table.notes.append(f"Ran with RANDOM weights (real architecture): {', '.join(random_rows)}. Their "
                           "parameter counts and times are efficiency measurements; their outputs are never scored.")
    table.notes.append("The paper states no hardware, batch size or number of runs, and gives no CIs; its Jukebox "
                       "time is quoted from a tutorial.")
    return table


def write_table2(results: dict[str, Any], folder: Path) -> list[Path]:
    return write_table(table2(results), folder, "table2")
