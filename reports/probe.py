"""The report's responsiveness-probe section: DIR/probe.json (bench.probe) as HTML. Nothing is recomputed.

    probe_section(run)          # run: a run folder path, or anything with .folder (and .results), e.g. html.RunData

One summary row per probed model (verdict, d with its 95% CI and n, the three distances with theirs), the reason
for each verdict, and a per-item table. Every string is escaped.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from bench.probe import ModelProbe, ProbeFile, read_probe
from bench.results import StoredEstimate
from reports.tables import Cell, Table, to_html

SECTION_ID = "probe"
TITLE = "Does each model hear its vocal? (responsiveness probe)"


def load_probe(folder: Path) -> tuple[ProbeFile | None, str | None]:
    """(probe.json, None), (None, None) when there is none, or (None, why) when it cannot be read."""
    try:
        return read_probe(folder), None
    except ValueError as err:
        return None, str(err)


def _fmt(x: float | None, digits: int) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _estimate_cell(est: StoredEstimate | None, digits: int, unit: str = "") -> Cell:
    if est is None or est.value is None:
        return Cell("—")
    low, high = est.ci_low, est.ci_high
    has_ci = low is not None and high is not None and math.isfinite(low) and math.isfinite(high)
    ci = f" [{_fmt(low, digits)}, {_fmt(high, digits)}]" if has_ci else " (no CI)"
    return Cell(f"{_fmt(est.value, digits)}{unit}{ci}, n={est.n}", est.value,
                (float(low), float(high)) if has_ci else None, est.n, est.method or "")


def summary_table(probe: ProbeFile, names: dict[str, str]) -> Table:
    table = Table("Responsiveness probe (per model)",
                  ["Model", "Weights", "Probe", "Verdict", "d = A(own) - A(swapped)", "Swap distance",
                   "Seed-to-seed distance", "Silence distance", "Why"])
    for name, entry in probe.models.items():
        mode = "plumbing (random weights)" if entry.mode == "plumbing" else "responsiveness"
        window = f", {entry.window_s:g} s window" if entry.window_s else ""
        table.add([Cell(names.get(name, name)), Cell("RANDOM" if entry.weights == "random" else entry.weights),
                   Cell(f"{mode}, {len(entry.items)} items{window}"), Cell(entry.verdict),
                   _estimate_cell(entry.responsiveness, 3), _estimate_cell(entry.swap_distance, 2, " dB"),
                   _estimate_cell(entry.seed_distance, 2, " dB"), _estimate_cell(entry.silence_distance, 2, " dB"),
                   Cell(entry.reason)])
    table.notes += [
        "Each model that takes a vocal regenerates the first N items (--probe N) with item (i + 1) mod N's vocal "
        "(same seed and prompt), with a silent vocal, and with its own vocal under a second seed.",
        "d: chroma agreement (bench.metrics.adherence) of an item's vocal with the output made for it minus with the "
        "output made for the other vocal; mean with a Student-t 95% CI over items. \"follows its vocal\": the CI "
        "lies above 0; \"does not respond to its vocal\": identical outputs, or a CI that includes 0; \"responds "
        "against its vocal\": the CI lies below 0; \"plumbing only\": random weights, where only whether the "
        "output changes with the vocal is checked, on the most active span of each vocal window.",
        "Distances: multi-resolution log-spectral distance in dB (STFT 512/1024/2048, hop n/4) between the output "
        "for the item's own vocal and that for the swapped vocal, for its own vocal with another seed, and for "
        "silence. A swap distance well above the seed-to-seed distance means the vocal changes the output more "
        "than the seed does.",
    ]
    return table


def items_table(entry: ModelProbe, display: str) -> Table:
    table = Table(f"{display}: probed items", ["Item", "Vocal from", "Vocal spans (s)", "Identical", "Swap (dB)",
                                              "Seed (dB)", "Silence (dB)", "A(own)", "A(swapped)", "d", "Errors"])
    for r in entry.items:
        spans = "the items' windows"
        if r.own_start_s is not None and r.donor_start_s is not None and entry.window_s:
            w = entry.window_s
            spans = (f"own {r.own_start_s:.2f}-{r.own_start_s + w:.2f}, "
                     f"swapped {r.donor_start_s:.2f}-{r.donor_start_s + w:.2f}")
        table.add([Cell(r.item_id), Cell(r.vocal_from), Cell(spans),
                   Cell("—" if r.identical is None else ("yes" if r.identical else "no")),
                   Cell(_fmt(r.swap_distance, 2), r.swap_distance), Cell(_fmt(r.seed_distance, 2), r.seed_distance),
                   Cell(_fmt(r.silence_distance, 2), r.silence_distance),
                   Cell(_fmt(r.adherence_own, 3), r.adherence_own),
                   Cell(_fmt(r.adherence_swapped, 3), r.adherence_swapped), Cell(_fmt(r.d, 3), r.d),
                   Cell("; ".join(f"{k}: {v}" for k, v in r.errors.items()))])
    return table


def probe_section(run: Any) -> str:
    """The HTML section for a run folder (a path, or an object with ``.folder`` and optionally ``.results``, such
    as reports.html.RunData). Models of another spec than results.json's are left out."""
    folder = Path(getattr(run, "folder", run))
    results = getattr(run, "results", None)
    if results is None:
        from bench.results import RunResults

        try:
            results = RunResults.read(folder / "results.json")
        except (FileNotFoundError, ValueError):
            results = None
    probe, problem = load_probe(folder)
    body: list[str] = []
    if problem is not None:
        body.append(f"<p>The probe's file could not be read: {html.escape(problem)}</p>")
    elif probe is None or not probe.models:
        body.append("<p>No probe ran (no model that takes a vocal was run with pretrained or random weights, "
                    "or --probe 0).</p>")
    else:
        names: dict[str, str] = {}
        if results is not None:
            models = results.models
            current = {n: e for n, e in probe.models.items() if n in models and probe.current(n, models[n].model_key)}
            probe = ProbeFile(current)
            names = {n: models[n].display_name for n in current}
        body.append(to_html(summary_table(probe, names), "probe-summary"))
        for name, entry in probe.models.items():
            body.append(to_html(items_table(entry, names.get(name, name)), f"probe-items-{name}"))
    return (f'<section id="{SECTION_ID}">\n<h2>{html.escape(TITLE)}</h2>\n' + "\n".join(body) + "\n</section>")
