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

from bench.metrics.responsiveness import PASSING
from bench.probe import ProbeFile
from bench.results import ModelResult, Params, RunResults, StoredEstimate
from reports.paper import TABLE2
from reports.tables import Cell, Table, caveat_note, weights_cell, write_table

COLUMNS = ["Model", "Weights", "Parameters", "Parameters (paper)", "Inference time per item",
           "Inference time (paper)", "Real-time factor", "Precision", "Conditioning", "Conditioning (paper)",
           "Responds to vocal"]


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


def _precision_cell(timing: Any, kind: str | None = None) -> Cell:
    """The precision the model was timed in; a faster one than fp32 with its measured distance from fp32."""
    if kind == "files":
        return Cell("n/a (audio files)")  # nothing ran here: the files' precision is whatever made them
    if timing is None or not timing.setup.dtype:
        return Cell("—")
    distance = timing.setup.fp32_distance
    return Cell(f"{timing.setup.dtype}; {distance}" if distance else timing.setup.dtype)


def _params_cell(params: Params | None) -> Cell:
    """The exact total with its split, largest first: the paper counts different parts for different models
    (SAMUeL's "15M" is the U-Net without the 156M VAE; MusicGen's sizes name the decoder), so a bare total would
    invite a false comparison."""
    if params is None:
        return Cell("—")
    total, parts = params.total, params.by_component
    split = " + ".join(f"{k} {format_count(v)}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
    return Cell(f"{format_count(total)} ({split})" if len(parts) > 1 else format_count(total), float(total))


def _estimate_cell(est: StoredEstimate | None, fmt: Any, label: str | None) -> Cell:
    if est is None or est.value is None:
        return Cell("—")
    value, low, high, n = est.value, est.ci_low, est.ci_high, est.n
    has_ci = low is not None and not math.isnan(low)
    ci_text = f" [{fmt(low)}, {fmt(high)}]" if has_ci else " (no 95% CI: n < 6)"
    note = f"; {label}" if label and label != "measured in full" else ""
    return Cell(f"{fmt(value)}{ci_text}, n={n}{note}", value, (low, high) if has_ci else None, n, label or "")


FLAG = "†"
PARAMS_TOLERANCE = 0.10  # the paper prints counts to 2-3 significant figures


def _params_match(paper_value: float, params: Params | None) -> bool | None:
    """Whether the paper's count is our total or the sum of some of our components, within the paper's rounding;
    None when we have no count. Sums of components keep SAMUeL's "15M" (everything but the VAE) from a false
    flag."""
    if params is None:
        return None
    parts = list(params.by_component.values())
    counts = {params.total} | {sum(c) for r in range(1, len(parts) + 1) for c in combinations(parts, r)}
    return any(abs(c - paper_value) <= PARAMS_TOLERANCE * paper_value for c in counts)


def _paper_cell(text: str, value: float | None, differs: bool, note: str) -> Cell:
    return Cell(f"{text}{FLAG if differs else ''}", value, note=note if differs else "", flagged=differs)


def _where(results: RunResults) -> str:
    device = results.provenance.device
    if device is not None and device.gpu:
        return device.gpu
    cpu = device.cpu if device is not None and device.cpu is not None else "?"
    threads = device.torch_threads if device is not None and device.torch_threads is not None else "?"
    return f"{cpu} CPU, {threads} threads"


def _probe_cell(name: str, model: ModelResult, probe: ProbeFile | None) -> Cell:
    """The responsiveness probe's verdict (bench.probe) for a model that takes a vocal, with its mean paired
    adherence difference d and 95% CI when it has one."""
    uses_vocal = model.describe.uses_vocal if model.describe is not None else None
    if uses_vocal is None:
        return Cell("—")
    if not uses_vocal:
        return Cell("n/a (takes no vocal)")
    entry = probe.current(name, model.model_key) if probe is not None else None
    if entry is None:
        return Cell("not probed")
    est = entry.responsiveness
    if entry.mode == "responsiveness" and est is not None and est.value is not None and est.ci_low is not None \
            and not math.isnan(est.ci_low):
        return Cell(f"{entry.verdict} (d = {est.value:.3f} [{est.ci_low:.3f}, {est.ci_high:.3f}], n={est.n})",
                    est.value, (est.ci_low, est.ci_high), est.n, entry.reason)
    return Cell(entry.verdict, note=entry.reason)


def table2(results: RunResults, probe: ProbeFile | None = None) -> Table:
    """Table II; ``probe`` (DIR/probe.json, :func:`bench.probe.read_probe`) fills the "Responds to vocal" column."""
    table = Table(f"Table II: efficiency ({_where(results)}; batch 1; paper values as printed)", list(COLUMNS))
    random_rows, flagged = [], []
    for name, model in results.models.items():
        paper = TABLE2.get(name)
        display = model.display_name
        kind = model.weights_kind or "not run"
        if kind == "random":
            random_rows.append(display)
        params, timing = model.params, model.timing
        if timing is not None and timing.unmeasured_ranks:
            skipped = "; ".join(f"{r.file}: {r.reason}" for r in timing.unmeasured_ranks)
            table.notes.append(f"{display}: times pool only the ranks that measured (not measured: {skipped}).")
        if timing is not None and timing.measured:
            time_cell = _estimate_cell(timing.seconds, format_seconds, timing.label)
            if timing.setup.stopped_early:
                time_cell = Cell(time_cell.display + " (timing budget spent)", time_cell.value, time_cell.ci,
                                 time_cell.n, time_cell.note)
            if timing.setup.busy:
                time_cell = Cell(time_cell.display + " (BUSY machine)", time_cell.value, time_cell.ci, time_cell.n,
                                 time_cell.note)
                table.notes.append(f"{display}, BUSY machine: {timing.setup.busy}.")
            rtf_cell = _estimate_cell(timing.rtf, lambda x: f"{x:.3f}", None)
        elif timing is not None:
            time_cell = Cell(f"not measured: {timing.reason}", note=timing.reason)
            rtf_cell = Cell("—")
        else:
            time_cell = Cell("—" if model.status != "not run" else f"not run: {model.reason}")
            rtf_cell = Cell("—")
        described = model.describe.conditioning if model.describe is not None else None
        conditioning = described if described is not None else "—"
        if paper:
            params_differ = _params_match(paper.params_value, params) is False
            time_differ = (paper.time_s is not None and time_cell.ci is not None
                           and not time_cell.ci[0] <= paper.time_s <= time_cell.ci[1])
            cond_differ = described is not None and conditioning != paper.conditioning  # a row not run: unknown
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
            weights_cell({"random": "RANDOM (efficiency only)", "pretrained": "pretrained", "files": "files"}.get(
                kind, kind), model.weights.caveat if model.weights else None),
            _params_cell(params),
            paper_cells[0],
            time_cell,
            paper_cells[1],
            rtf_cell,
            _precision_cell(timing, kind),
            Cell(conditioning),
            paper_cells[2],
            _probe_cell(name, model, probe),
        ])
    if flagged:
        why = {"parameters": "Parameters: neither our exact total nor any sum of our components is within 10% of the "
                             "printed count.",
               "time": "Time: the printed time lies outside our 95% CI (the paper's hardware is unknown, so this "
                       "flags a difference, not an error).",
               "conditioning": "Conditioning: the printed conditioning is not ours."}
        table.notes.append(f"{FLAG} the paper's value differs from ours: {', '.join(flagged)}. "
                           + " ".join(text for what, text in why.items() if any(f.endswith(what) for f in flagged)))
    if any("conditioning" in f for f in flagged):
        table.notes.append("Conditioning: MusicGen Small/Medium/Large take only text; the one MusicGen that takes "
                           "audio is MusicGen-Melody (the vocal's chroma plus text), which we run as its own row.")
    probed = [probe.current(n, m.model_key) for n, m in results.models.items()] if probe is not None else []
    if any(p is not None for p in probed):
        table.notes.append("Responds to vocal: the responsiveness probe (--probe N) regenerates the first N items with "
                           "another item's vocal (same seed and prompt); d = chroma agreement with its own vocal of "
                           "the output made for it minus that of the output made for the other vocal, mean with a "
                           "Student-t 95% CI. \"follows its vocal\": the CI lies above 0; \"does not respond\": "
                           "identical outputs, or a CI that includes 0; \"plumbing only\": random weights, where only "
                           "whether the output changes is checked.")
    failing = [f"{results.models[p.model].display_name}: {p.reason}" for p in probed
               if p is not None and p.verdict not in PASSING and p.model in results.models]
    if failing:
        table.notes.append("Probe warnings: " + "; ".join(failing) + ".")
    if any(m.timing is not None and m.timing.setup.fp32_distance for m in results.models.values()):
        table.notes.append("Precision: a model timed in a faster precision than fp32 carries, measured in the same "
                           "run, the SNR of each stage's result against the same stage in fp32 on the same input "
                           "(higher is closer; 40 dB is an error of 1% in amplitude).")
    table.notes.append("Times: median over items with a distribution-free 95% CI (order statistics), n = items; "
                       "model loading is excluded and reported separately in results.json. The interval takes the "
                       "items' times as independent: when one predicts the next (the machine's speed drifting "
                       "during a model's items) it covers less (simulated with 6 items: 92% at a lag-one "
                       "correlation of 0.3, 79% at 0.6).")
    if random_rows:
        reduced = [m.display_name for m in results.models.values() if m.display_name in random_rows
                   and m.describe is not None and (m.describe.options or {}).get("preset") == "tiny"]
        real = [r for r in random_rows if r not in reduced]
        if real:
            table.notes.append(f"Ran with RANDOM weights (real architecture): {', '.join(real)}. Their parameter "
                               "counts and times are efficiency measurements; their outputs never enter Table I "
                               "(--score-random scores them, labelled, as a plumbing check).")
        if reduced:
            table.notes.append(f"Ran a reduced test architecture with RANDOM weights (tiny preset): "
                               f"{', '.join(reduced)}. Its parameter count and times say nothing about the paper's "
                               "model; they check the harness.")
    table.notes.append("The paper states no hardware, batch size or number of runs, and gives no CIs; its Jukebox "
                       "time is quoted from a tutorial.")
    if note := caveat_note([(m.display_name, m.weights.caveat) for m in results.models.values()
                            if m.weights is not None and m.weights.caveat]):
        table.notes.append(note)
    return table


def write_table2(results: RunResults, folder: Path, probe: ProbeFile | None = None) -> list[Path]:
    return write_table(table2(results, probe), folder, "table2")
