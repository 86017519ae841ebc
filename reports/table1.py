"""Table I (quality) from scores.json: aesthetics beside the paper's values, the FAD family and adherence.

Every cell is a mean (or a set statistic) with its 95% CI and n. Two anchor rows bracket the adherence columns:
the true vocal/accompaniment pairs (upper) and shuffled pairs (lower). Rows from random-weight models never
appear; a note names them. A paper value is flagged when it differs from ours by more than the 95% bound of a
difference of two means that counts the paper's own n (:func:`bench.stats.compare_with_paper`). The notes name the
method, scale and variant of every set statistic from the fields scores.json stores beside it (``matches``,
``method``, ``scale``, ...), so a reader can tell which tool each number matches.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.bootstrap import MIN_BOOTSTRAP_UNITS, names_t_interval
from bench.results import RunResults
from bench.scoring.registry import MIX_SET, SET, SET_KINDS, Metric, MetricGroup, table1_groups
from bench.stats import CONFIDENCE, RANGE_CLIPPED, PaperComparison, compare_with_paper
from reports.paper import TABLE1, TABLE1_N, TABLE1_N_SOURCE
from reports.tables import Cell, Table, caveat_note, weights_cell, write_table

FLAG = "†"
ANCHOR_ROWS = (("true_pairs", "Anchor: true pairs (upper)"), ("shuffled_pairs", "Anchor: shuffled pairs (lower)"))
SET_NOTE = "a set statistic; no interval computed"


def _paper_row(model: str) -> tuple[str | None, str]:
    """The key of the paper's Table I row for one of our models, and how it maps."""
    if model in TABLE1:
        return model, ""
    if model.startswith("musicgen"):
        return "musicgen", "the paper's single MusicGen row (size not stated)"
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


def compare_cell(est: dict[str, Any] | None, paper: float, n_paper: int | None) -> PaperComparison | None:
    """Our stored per-clip estimate (value, ``sd``, n) against the paper's mean of ``n_paper`` clips; None without
    a finite value of ours."""
    if not est or est.get("value") is None or not math.isfinite(est["value"]):
        return None
    sd = est.get("sd")
    return compare_with_paper(est["value"], sd if isinstance(sd, (int, float)) else None, int(est.get("n") or 0),
                              paper, n_paper, CONFIDENCE)


def paper_cell(paper: float | None, comparison: PaperComparison | None) -> Cell:
    """The paper's value, marked with :data:`FLAG` when ``comparison`` flags it; the note gives the difference and
    its bound, or why there is none."""
    if paper is None:
        return Cell("—")
    if comparison is None:
        return Cell(f"{paper:.2f}", paper, note="not compared: no value of ours")
    if math.isnan(comparison.bound):
        return Cell(f"{paper:.2f}", paper, note=comparison.method)
    note = (f"ours - paper = {comparison.difference:+.2f}; 95% bound +-{comparison.bound:.2f} "
            f"(n_paper={comparison.n_paper})")
    return Cell(f"{paper:.2f}{FLAG if comparison.flagged else ''}", paper, note=note, flagged=comparison.flagged)


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
        return self.group.per_clip and _has_paper_value(self.metric)


def column_embedders(group: MetricGroup, embedders: list[str]) -> list[str | None]:
    """A set group has one column per ``--embedders`` entry, a mix-set group one for its own embedder, a per-clip
    group one."""
    if group.kind == SET:
        return list(embedders)
    if group.kind == MIX_SET:
        return [group.embedder]
    return [None]


RESAMPLER_MATCHES = {
    "soxr": "ours; the audiobox-aesthetics CLI resamples with torchaudio's default (--resampler torchaudio-default), "
            "fadtk with torchaudio's Kaiser-best sinc (--resampler torchaudio-kaiser-best)",
    "torchaudio-default": "torchaudio's default windowed sinc, re-implemented: what the audiobox-aesthetics CLI uses",
    "torchaudio-kaiser-best": "torchaudio's Kaiser-best sinc, re-implemented: what fadtk uses since Oct 2023",
}


def _ran(scores: dict[str, Any]) -> list[str] | None:
    """The metric groups the score pass ran (None for a scores.json that does not say)."""
    ran = scores.get("config", {}).get("groups")
    return list(ran) if isinstance(ran, list) else None


def columns_for(embedders: list[str], groups: list[str] | None = None) -> list[Column]:
    """Table I's metric columns, from the registry: groups by ``table1_rank``, metrics in registry order; only the
    groups the score pass ran when ``groups`` (scores.json's ``config.groups``) is given."""
    return [Column(group, m, embedder) for group in table1_groups() if groups is None or group.name in groups
            for embedder in column_embedders(group, embedders) for m in group.metrics if m.table1]


def table1(scores: dict[str, Any], results: RunResults | None = None) -> Table:
    embedders = list(scores.get("config", {}).get("embedders", []))
    metric_columns = columns_for(embedders, _ran(scores))
    columns = ["Model", "Weights"]
    for c in metric_columns:
        columns += [c.label, f"{c.label} (paper)"] if c.with_paper else [c.label]
    table = Table(f"Table I: quality ({_title_groups(_ran(scores))}); mean [95% CI], n", columns)
    models = scores.get("models", {})
    ran = results.models if results is not None else {}
    display = {name: ran[name].display_name if name in ran else name for name in models}
    random_rows, flagged, not_compared, mapped = [], [], [], []
    caveats: list[tuple[str, str]] = []  # (row, the caveat its weights carry: baselines.base.WeightsStatus.caveat)
    missing: list[tuple[str, dict[str, list[str]]]] = []  # row -> metric label -> items without a finite value
    row_items: dict[str, set[str]] = {}  # row -> the items it has a clip of
    # the mix view (--score-on mix|both): rows "<model> (mix)" after the accompaniment rows, never paper-compared
    mix_models = (scores.get("mix") or {}).get("models") or {}
    rows = [(name, entry, display[name], False) for name, entry in models.items()]
    rows += [(name, entry, f"{display.get(name, name)} (mix)", True) for name, entry in mix_models.items()]
    for name, entry, shown, is_mix in rows:
        if entry.get("weights") == "random":
            random_rows.append(shown)
            continue
        paper_key, how = _paper_row(name) if not is_mix else (None, "")
        paper = TABLE1.get(paper_key) if paper_key else None
        n_paper = TABLE1_N[paper_key].used if paper_key in TABLE1_N else None
        if how:
            mapped.append(f"{display[name]}: {how}")
        caveat = _caveat(ran.get(name))
        if caveat:
            caveats.append((shown, caveat))
        row = [Cell(shown), weights_cell(entry["weights"], caveat)]
        for c in metric_columns:
            if c.group.kind in SET_KINDS:
                row.append(_set_cell(entry.get("sets", {}).get(c.embedder, {}), c.metric))
                continue
            est = entry.get("per_clip", {}).get(f"{c.group.name}.{c.metric.key}")
            cell = estimate_cell(est, c.metric.format)
            if not c.with_paper:
                row.append(cell)
                continue
            value = paper.get(c.metric.key) if paper else None
            comparison = compare_cell(est, value, n_paper) if value is not None else None
            row += [cell, paper_cell(value, comparison)]
            if comparison is not None and comparison.flagged:
                flagged.append(f"{shown} {c.metric.key}")
            elif value is not None and (comparison is None or math.isnan(comparison.bound)):
                not_compared.append(f"{shown} {c.metric.key}")
        table.add(row)
        missing.append((shown, _items_without_value(entry, metric_columns)))
        if entry.get("clips"):  # a scores.json without clips (older) says nothing of which items a row lacks
            row_items[shown] = {str(c.get("item_id")) for c in entry["clips"]}
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
    _notes(table, scores, random_rows, flagged, not_compared, mapped, embedders)
    every_item = set().union(*row_items.values()) if row_items else set()
    for shown, by_label in missing:  # an item another row has a clip of and this one has none: no sample here
        if shown in row_items and (absent := sorted(every_item - row_items[shown])):
            by_label[NO_SAMPLE] = absent
    if note := _without_value_note(missing):
        table.notes.insert(1, note)  # beside "n = items with a finite value", which it explains
    if note := caveat_note(caveats):
        table.notes.insert(0, note)  # before the method notes: it says what the row's numbers rest on
    if results is not None and (note := _without_scores_note(scores, results)):
        table.notes.append(note)
    if note := beyond_full_scale_note([ran[name] for name in models if name in ran]):
        table.notes.append(note)
    return table


def _without_scores_note(scores: dict[str, Any], results: RunResults) -> str | None:
    """The models of this run (not random-weight ones, which the RANDOM note names) that have no row, or a row with
    no scored clip, and why: without it such a model leaves Table I in silence."""
    models = scores.get("models") or {}
    parts = []
    for name, model in results.models.items():
        if model.is_random:
            continue
        entry = models.get(name)
        if entry is None:
            parts.append(f"{model.display_name}: no row, {_why_no_sample(model)}")
        elif not entry.get("clips") and "clips" in entry:
            errors = [e for e in entry.get("errors") or [] if isinstance(e, dict)]
            why = f", e.g. {errors[0].get('item_id')}: {errors[0].get('message')}" if errors else ""
            parts.append(f"{model.display_name}: no clip could be scored ({len(errors)} error(s){why})")
    if not parts:
        return None
    return "Models of this run without scores: " + "; ".join(parts) + "."


def _why_no_sample(model: Any) -> str:
    """Why a model of results.json (a ModelResult) has no sample to score."""
    if model.status != "run":
        return f"the model {model.status}: {model.reason}"
    gen = model.generation
    if gen is None or gen.n_ok == 0:
        if gen is not None and gen.errors:
            return (f"no sample: every item failed ({gen.n_error}), e.g. {gen.errors[0].item_id}: "
                    f"{gen.errors[0].message}")
        return f"no sample: {model.generation_note or 'nothing generated (the generate pass did not run for it)'}"
    return "its samples not scored"


def beyond_full_scale_note(ran: list[Any]) -> str | None:
    """Which rows' outputs exceed full scale (results.json's generation.beyond_full_scale): their samples are kept
    and scored as made (float WAV), so loudness, true peak and the clipping share measure the model's own output,
    and what a PCM export or a player would clip is said here rather than hidden by our storage."""
    parts = []
    for model in ran:
        generation = getattr(model, "generation", None)
        peaks = dict(getattr(generation, "beyond_full_scale", None) or {})
        if peaks and generation is not None:
            worst = max(peaks.values())
            parts.append(f"{model.display_name}: {len(peaks)} of {generation.n_ok} outputs (peak up to "
                         f"{20 * math.log10(worst):+.1f} dBFS)")
    if not parts:
        return None
    return ("Outputs beyond full scale, scored as the model made them (stored as 32-bit float WAV, not clipped): "
            + "; ".join(parts) + ". A 16- or 24-bit export or a player clips them; the clipping share counts the "
            "samples at or beyond 0.999 of full scale.")


def _caveat(model: Any) -> str | None:
    """The caveat of a row's weights in results.json (a ModelResult), or None."""
    weights = getattr(model, "weights", None)
    return weights.caveat if weights is not None else None


MAX_ITEMS_NAMED = 5
NO_SAMPLE = "no sample: not generated, or its file missing or unreadable"


def _items_without_value(entry: dict[str, Any], columns: list[Column]) -> dict[str, list[str]]:
    """Per-clip column label -> the ids of this row's clips whose value is not finite (they are outside its n)."""
    out: dict[str, list[str]] = {}
    failed = {(str(e.get("item_id")), str(e.get("group"))) for e in entry.get("errors") or [] if isinstance(e, dict)}
    for c in columns:
        if c.group.kind in SET_KINDS:
            continue
        key = f"{c.group.name}.{c.metric.key}"
        # a value that is absent because its scorer failed on the clip (scores.json's errors say why) is outside n
        ids = [str(clip.get("item_id")) for clip in entry.get("clips", [])
               if isinstance(clip.get("values"), dict) and (
                   (key in clip["values"] and not _finite(clip["values"][key]))
                   or (key not in clip["values"] and (str(clip.get("item_id")), c.group.name) in failed))]
        if ids:
            out[c.label] = ids
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _without_value_note(missing: list[tuple[str, dict[str, list[str]]]]) -> str | None:
    """Which items a row's n leaves out, and why a metric can be undefined: without it a row's n = 9 of 11 items
    does not say whether the model failed or the metric does not apply (an item whose vocal is silent)."""
    parts = []
    for row, by_label in missing:
        by_items: dict[tuple[str, ...], list[str]] = {}
        for label, ids in by_label.items():
            by_items.setdefault(tuple(ids), []).append(label)
        for ids, labels in by_items.items():
            shown = ", ".join(ids[:MAX_ITEMS_NAMED]) + (f" and {len(ids) - MAX_ITEMS_NAMED} more"
                                                         if len(ids) > MAX_ITEMS_NAMED else "")
            parts.append(f"{row} ({', '.join(labels)}): {shown}")
    if not parts:
        return None
    return ("Clips without a finite value, outside n (scores.json holds each clip): " + "; ".join(parts) + ". "
            "Adherence is undefined, not zero, where the item's vocal window has no voiced frame (chroma, key) or "
            "neither a voiced frame nor an onset (rhythm): a silent vocal, or one whose stereo channels cancel in "
            "the mono sum.")


def _set_cell(sets: dict[str, Any], metric: Metric) -> Cell:
    """A set statistic of one model and embedder; the FAD column of the FAD reference set's own row says so."""
    if metric.key == "fad" and "note" in sets and "fad" not in sets:
        return Cell("— (the FAD reference set)")
    if metric.key == "apa" and isinstance(sets.get("apa"), dict) and "fusion" in sets["apa"]:
        return Cell("— (this older scores.json holds only the late-fusion variant)")
    return estimate_cell(sets.get(metric.key), metric.format)


TITLE_GROUPS = {"aesthetics": "audiobox-aesthetics 1-10", "fad": "FAD family", "adherence": "vocal-accompaniment "
                "adherence"}


def _title_groups(ran: list[str] | None) -> str:
    """What the table holds, by the groups the score pass ran (all three named for a scores.json that does not
    say)."""
    if ran is None:
        return ", ".join(TITLE_GROUPS.values())
    shown = [TITLE_GROUPS.get(g, g) for g in ran if any(group.name == g for group in table1_groups())]
    return ", ".join(shown) or "no metric group of this table was run"


def _notes(table: Table, scores: dict[str, Any], random_rows: list[str], flagged: list[str], not_compared: list[str],
           mapped: list[str], embedders: list[str]) -> None:
    kinds = _interval_kinds(scores, columns_for(embedders, _ran(scores)))
    table.notes.append(per_clip_method_note(scores.get("config", {}).get("resamples"), kinds))
    if _any_clipped(scores):
        table.notes.append("Intervals that reached past a metric's range (Student's t below 10 items, FAD's normal "
                           "interval below 0) are cut to it; "
                           "the true mean lies inside the range, so the coverage is unchanged (scores.json's method "
                           "says which).")
    if any(c.with_paper for c in columns_for(embedders, _ran(scores))):
        table.notes.append(f"Paper values as printed, without a CI ({TABLE1_N_SOURCE}; compared at n=10, the "
                           "smaller, so a cell is flagged only when both readings flag it). The aesthetics model's "
                           "fourth axis is 'Content Usefulness'; the paper calls CU 'Content Unity'.")
    resampler = scores.get("config", {}).get("resampler")
    if resampler and any(c.group.name in ("aesthetics", "fad") for c in columns_for(embedders, _ran(scores))):
        table.notes.append(f"Aesthetics and the FAD embedders: audio resampled to the model's rate with {resampler} "
                           f"({RESAMPLER_MATCHES.get(resampler, 'see docs/design.md')}).")
    with_paper = any(c.with_paper for c in columns_for(embedders, _ran(scores)))
    if with_paper:
        table.notes.append(f"{FLAG} the paper's value differs from ours by more than the 95% bound of a difference "
                           "of two means, t(n-1) * SD * sqrt(1/n + 1/n_paper), our per-clip SD standing in for the "
                           "paper's (it printed none): " + (", ".join(flagged) if flagged else "no cell") + ".")
    if not_compared:
        table.notes.append(f"Not compared with the paper (no n from the paper, or no per-clip SD of ours): "
                           f"{', '.join(not_compared)}.")
    if mapped:
        table.notes.append("Paper row used: " + "; ".join(mapped) + ".")
    if embedders:
        table.notes += set_notes(scores, embedders)
    if any(c.group.name == "adherence" for c in columns_for(embedders, _ran(scores))):
        table.notes.append("Adherence: chroma, key and rhythm agreement, chance 0 for each (docs/notes-adherence.md); "
                           "the two anchor rows are the true accompaniments with their own vocals and with another "
                           "item's vocal.")
    if (scores.get("mix") or {}).get("models"):
        table.notes.append(f"Rows '(mix)': {', '.join(scores['mix'].get('groups') or [])} scored on the "
                           f"{scores['mix'].get('rule')}; "
                           "the FAD reference is the items' vocals + true accompaniments mixed the same way (unless "
                           "--fad-reference names one). Adherence and APA read the accompaniment with its vocal, so "
                           "those columns are empty there. No paper values apply.")
    if random_rows:
        table.notes.append(f"Not shown: {', '.join(random_rows)} ran with RANDOM weights (plumbing only, not a "
                           "quality result).")
    for note in scores.get("notes", []):
        table.notes.append(note)


T_KIND, BOOTSTRAP_KIND = "t", "bootstrap"


def _interval_kinds(scores: dict[str, Any], columns: list[Column]) -> set[str]:
    """How the per-clip intervals Table I shows were computed, from each estimate's stored ``method`` (rows of
    models with pretrained weights or files, their mix rows and the anchors); empty when none records one."""
    keys = {f"{c.group.name}.{c.metric.key}" for c in columns if c.group.kind not in SET_KINDS}
    estimates = [est for block in (scores, scores.get("mix") or {}) for entry in (block.get("models") or {}).values()
                 if isinstance(entry, dict) and entry.get("weights") != "random"
                 for key, est in (entry.get("per_clip") or {}).items() if key in keys]
    anchored = {c.metric.key for c in columns if c.group.anchored}
    estimates += [est for anchor in (scores.get("anchors") or {}).values() if isinstance(anchor, dict)
                  for key, est in anchor.items() if key in anchored]
    return {T_KIND if names_t_interval(est.get("method")) else BOOTSTRAP_KIND for est in estimates
            if isinstance(est, dict) and est.get("method") and _finite(est.get("ci_low"))}


def per_clip_method_note(resamples: Any, kinds: set[str]) -> str:
    """Table I's note on the per-clip intervals, naming only the methods its rows used."""
    t = (f"Student's t 95% CI (fewer than {MIN_BOOTSTRAP_UNITS} items or songs, where a bootstrap interval cannot be "
         "wider than the data)")
    bootstrap = (f"a seeded expanded percentile bootstrap 95% CI (B={resamples}; Hesterberg 2015: as wide as "
                 "Student's t interval for normal data, where the plain percentile interval is too narrow at small n)")
    if kinds == {T_KIND}:
        how = t
    elif kinds == {T_KIND, BOOTSTRAP_KIND}:
        how = f"{t}, else {bootstrap}; each cell's method is in scores.json"
    else:
        how = bootstrap
    return f"Per-clip metrics: mean over items with {how}; n = items with a finite value."


# What each FAD-inf variant removes: the reason two extrapolations exist (issue 13, finding 2).
FAD_INF_REMOVES = ("The clip variant refits FAD on resampled subsets of clips against 1/n_clips and removes the "
                   "small-sample bias of a finite set of clips; fadtk's frame variant does the same over frames "
                   "and removes only the bias of the frame count, so with frames clustered within clips it keeps "
                   "the clip-level bias and does not estimate the population FAD.")


def _any_clipped(scores: dict[str, Any]) -> bool:
    """Whether a per-clip or set estimate of any row had its interval cut to the metric's range
    (bench.stats.within_range; FAD's at 0)."""
    def estimates(entry: dict[str, Any]):
        yield from (entry.get("per_clip") or {}).values()
        for by_key in (entry.get("sets") or {}).values():
            yield from (by_key.values() if isinstance(by_key, dict) else ())

    return any(isinstance(est, dict) and RANGE_CLIPPED in str(est.get("method", ""))
               for entry in scores.get("models", {}).values() for est in estimates(entry))


def _stats(scores: dict[str, Any], embedders: list[str], key: str) -> list[tuple[str, dict[str, Any]]]:
    """(embedder, stored statistic) of one set statistic for every shown (not random-weight) model."""
    out = []
    for embedder in embedders:
        for entry in (scores.get("models") or {}).values():
            stat = ((entry.get("sets") or {}).get(embedder) or {}).get(key)
            if entry.get("weights") != "random" and isinstance(stat, dict):
                out.append((embedder, stat))
    return out


def _facts(scores: dict[str, Any], embedders: list[str], key: str, name: str = "matches"
           ) -> list[tuple[str, list[str]]]:
    """The distinct values of one text field (``matches``) of one set statistic, each with its embedders."""
    found: dict[str, list[str]] = {}
    for embedder, stat in _stats(scores, embedders, key):
        text = stat.get(name)
        if isinstance(text, str) and text and embedder not in found.setdefault(text, []):
            found[text].append(embedder)
    return list(found.items())


def _field(scores: dict[str, Any], embedders: list[str], key: str, name: str) -> list[str]:
    """The distinct values of one scalar field of one set statistic across models and embedders, as text."""
    seen: list[str] = []
    for _, stat in _stats(scores, embedders, key):
        v = stat.get(name)
        if v is None or isinstance(v, (dict, list)):
            continue
        text = f"{v:g}" if isinstance(v, float) else str(v)
        if text not in seen:
            seen.append(text)
    return seen


def _which(facts: list[tuple[str, list[str]]], embedders: list[str]) -> str:
    if len(facts) == 1 and facts[0][1] == embedders:
        return facts[0][0]
    return "; ".join(f"{text} [{', '.join(where)}]" for text, where in facts)


def set_notes(scores: dict[str, Any], embedders: list[str]) -> list[str]:
    """One note per set statistic naming its method, scale and variant, read from scores.json (``matches``,
    ``method``, ``scale``, ``bandwidth_rule``, ``estimator``, ``variant``), with a plain statement where a field is
    absent (a scores.json from before these fields); nothing for a statistic that was not computed."""
    notes = fad_family_notes(scores, embedders) if _stats(scores, embedders, "fad") else []
    apa_embedders = [g.embedder for g in table1_groups() if g.kind == MIX_SET and g.embedder]
    if apa := _facts(scores, apa_embedders, "apa"):
        apa_ci = _field(scores, apa_embedders, "apa", "method")
        notes.append(f"APA (Grachten & Nistal 2025): {_which(apa, apa_embedders)}"
                     + (f"; interval: {'; '.join(apa_ci)}" if apa_ci else "") + ".")
    if late := _facts(scores, embedders, "apa_late_fusion"):
        notes.append(f"APA, late fusion (a variant, in scores.json as apa_late_fusion, not in this table): "
                     f"{_which(late, embedders)}.")
    if notes:
        notes.append(SET_INTERVALS_COVER)
    return notes


# What the set statistics' intervals cover (a simulation at D = 32 found the APA interval around the population
# value 26-60% of the time, around the value expected at its n 93-94%: the finite-n bias dominates; docs/benchmarks.md,
# fourteenth pass)
SET_INTERVALS_COVER = ("Set statistics (FAD, KAD, APA): their intervals give the bootstrap spread at this number of "
                       "clips and this embedding size. FAD and APA are biased at a finite n (FAD upward, APA toward "
                       "chance), more so for larger embeddings, so an interval covers the value expected at this n, "
                       "not the population value: compare rows at the same n (each row here has the same items), not "
                       "with values published at another n.")


def fad_family_notes(scores: dict[str, Any], embedders: list[str]) -> list[str]:
    """The notes of FAD, FAD-inf and KAD (the caller checks that FAD was computed)."""
    notes = []
    fad, ci = _facts(scores, embedders, "fad"), _field(scores, embedders, "fad", "method")
    interval = f"; interval: {'; '.join(ci)}" if ci else ""
    notes.append(f"FAD: {_which(fad, embedders)}{interval}." if fad else
                 f"FAD: frames of every clip pooled, equal n for every model{interval}; which tool it matches is "
                 "not recorded in this scores.json.")
    named = []
    for label, key in (("clip variant", "fad_inf"), ("frame variant (fadtk's)", "fad_inf_frames")):
        facts = _facts(scores, embedders, key) or _facts(scores, embedders, key, "variant")
        if facts:
            named.append(f"{label}: {_which(facts, embedders)}")
    notes.append("FAD-inf (in scores.json, not in this table): " + ("; ".join(named) + ". " if named else "")
                 + FAD_INF_REMOVES)
    if not _stats(scores, embedders, "kad"):
        return notes
    parts = [_which(kad, embedders)] if (kad := _facts(scores, embedders, "kad")) else []
    scale = _field(scores, embedders, "kad", "scale")
    parts.append(f"scale: x{' / x'.join(scale)}" if scale else
                 "scale: none stored (raw MMD^2; kadtk reports x100)")
    for label, name in (("bandwidth", "bandwidth_rule"), ("estimator", "estimator"), ("interval", "method")):
        if values := _field(scores, embedders, "kad", name):
            parts.append(f"{label}: {'; '.join(values)}")
    notes.append("KAD: " + "; ".join(parts) + ("." if kad else "; which tool it matches is not recorded in this "
                                                                 "scores.json."))
    return notes


def write_table1(scores: dict[str, Any], folder: Path, results: RunResults | None = None) -> list[Path]:
    return write_table(table1(scores, results), folder, "table1")


def stale_table1(reasons: list[str], rescore: str) -> Table:
    """Table I in place of scores that describe other samples than this run's (bench.scoring.records.stale_scores):
    no row, and notes that say why and how to score again. The common crop, the anchors, the paired differences and
    their Holm families all depend on every scored row, so one stale row leaves none of them current."""
    table = Table("Table I: quality; not shown: scores.json describes other samples than this run's", ["Model"])
    table.notes.append("scores.json is stale (the last score pass scored other items, models or samples than this "
                       "run holds), so no number of it is shown: " + "; ".join(reasons) + ".")
    table.notes.append(f"To score this run's samples (finished per-clip scores are reused): {rescore}")
    return table


def rescore_command(command: str | None) -> str:
    """The command that wrote results.json (its provenance) with ``--passes score,report``: it scores the current
    samples and renders the report without generating or timing again; ``samuel-eval score`` is run as it was."""
    words = (command or "samuel-eval --out DIR").split()
    if len(words) > 1 and words[1] == "score":
        return " ".join(words)
    out, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word == "--passes":
            skip = True
        elif not word.startswith("--passes="):
            out.append(word)
    return " ".join([*out, "--passes", "score,report"])
