"""The HTML report's figures, as data: loaded results, scores and per-clip rows in, :class:`ReportFigure` out.

Tables give a mean and an interval; these figures show what stands behind them: every clip's value (is a mean
carried by one wild clip?), where our measured times sit against the paper's, and which clips are outliers. Each
function returns PNG bytes with a title, caption and alt text, or None when it has nothing to plot; it reads and
writes no files, so the HTML writer decides where the bytes go and tests need no disk.

Rules every figure keeps:

- Random-weight models are tagged RANDOM in their tick labels and captions and drawn grey over a hatched band, so
  a plumbing run can never pass for a quality result.
- The same input gives the same bytes: jitter comes from a seeded generator (seaborn's stripplot draws from
  numpy's global random state, so the strips are drawn here), and the PNG carries no software tag or date.
- No global state is left behind: figures are plain :class:`matplotlib.figure.Figure` objects on an Agg canvas
  (never registered with pyplot, so nothing to close or leak), and style is applied inside ``rc_context``.
- Panels and their order come from the metric registry (``bench.scoring.registry``: a group's ``figure_rank``, then
  metric name); a row whose metric is not registered for figures is left out. The shuffled-pairs chance anchor is
  not a metric: its mean (from ``scores["anchors"]``) is drawn as a dotted line on the anchored groups' panels.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import NullLocator
from matplotlib.transforms import Bbox

from bench.results import RunResults
from bench.scoring.registry import Metric, MetricGroup
from bench.scoring.registry import metric as registered_metric
from bench.stats import OUTLIER_Z, robust_z
from reports.paper import TABLE2

DPI = 100
WIDTH_IN = 11.0  # 1100 px at DPI: keeps the base64 PNGs in the HTML small
JITTER_SEED = 0
RANDOM_COLOUR = "#8c8c8c"
RANDOM_TEXT_COLOUR = "#b00020"
OUTLIER_COLOUR = "#d62728"
MIN_CLIPS_FOR_Z = 5  # per model and metric, for robust z and outlier flags
MAX_LABELLED_OUTLIERS = 4  # per panel; the rest are in the HTML table
LOG_SPAN = 1e3  # a positive metric spanning more than this many-fold gets a log axis

_STYLE = {**sns.axes_style("whitegrid"), "font.size": 9, "axes.titlesize": 9.5, "axes.labelsize": 9,
          "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.fontsize": 8.5, "hatch.linewidth": 0.7,
          "savefig.dpi": DPI, "figure.dpi": DPI}


@dataclass(frozen=True)
class ReportFigure:
    key: str  # stable id: "distributions", "time-vs-params", "outliers"
    title: str
    caption: str  # says what is plotted: n, CI method, which rows ran with RANDOM weights
    alt: str
    png: bytes


# ---- the figures ----------------------------------------------------------------------------------------------


def distributions_figure(rows: Sequence[Mapping[str, Any]], scores: Mapping[str, Any] | None,
                         display_names: Mapping[str, str], random_models: set[str]) -> ReportFigure | None:
    """One panel per metric: every clip's value per model (jittered dots) and the model's mean with its 95% CI
    from scores.json (black diamond and bar). None when there are no rows."""
    frame = _model_rows(rows)
    if frame.empty:
        return None
    scores = scores or {}
    metrics = _metric_order(frame["metric"].unique())
    models = _model_order(frame, random_models)
    colours = _colours(models, random_models)
    per_clip = {m: (scores.get("models", {}).get(m) or {}).get("per_clip") or {} for m in models}
    anchors = (scores.get("anchors") or {}).get("shuffled_pairs") or {}
    ncols = _ncols(len(metrics), len(models))
    nrows = math.ceil(len(metrics) / ncols)
    methods: set[str] = set()
    log_metrics, anchored = [], False

    with _figure(WIDTH_IN, 0.9 + nrows * (2.4 + 0.15 * _label_lines(models, display_names, random_models))) as fig:
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax, metric in zip(axes.flat, metrics, strict=False):
            data = frame[frame["metric"] == metric]
            present = [m for m in models if (data["model"] == m).any()]
            rng = np.random.default_rng(JITTER_SEED)  # per panel: a panel's dots do not move when another changes
            extent: list[float] = []
            for x, model in enumerate(present):
                values = data.loc[data["model"] == model, "value"].to_numpy()
                extent.extend(values)
                if model in random_models:
                    _hatch_band(ax, x)
                ax.scatter(x - 0.1 + _jitter(rng, len(values)), values, s=16, color=colours[model], alpha=0.75,
                           linewidths=0, zorder=2)
                estimate = per_clip[model].get(metric) or {}
                mean = _finite(estimate.get("value"))
                if mean is None:
                    continue
                low, high = _finite(estimate.get("ci_low")), _finite(estimate.get("ci_high"))
                extent.extend(v for v in (mean, low, high) if v is not None)
                point_with_interval(ax, x + 0.27, mean, low, high, marker="D", color="black", markersize=4.5,
                                    elinewidth=1.2, zorder=3)
                if estimate.get("method"):
                    methods.add(str(estimate["method"]))
            anchor = _finite((anchors.get(metric.split(".", 1)[1]) or {}).get("value")) \
                if _figure_group(metric)[0].anchored else None
            if anchor is not None:
                ax.axhline(anchor, linestyle=":", color="#444444", linewidth=1.1, zorder=1)
                extent.append(anchor)
                anchored = True
            if extent and min(extent) > 0 and max(extent) / min(extent) > LOG_SPAN:
                ax.set_yscale("log")
                log_metrics.append(metric)
            _category_axis(ax, present, data, display_names, random_models)
            ax.set_title(_plain(metric + (" (log scale)" if metric in log_metrics else "")))
        for ax in axes.flat[len(metrics):]:
            ax.remove()
        handles = [Line2D([], [], linestyle="", marker="o", color="#4c72b0", alpha=0.75, label="one clip"),
                   Line2D([], [], linestyle="-", marker="D", color="black", markersize=4.5,
                          label="mean over clips, 95% CI")]
        if anchored:
            handles.append(Line2D([], [], linestyle=":", color="#444444", label="shuffled-pairs mean (chance)"))
        if random_models & set(models):
            handles.append(Patch(facecolor="white", edgecolor="#bdbdbd", hatch="///", label="RANDOM weights"))
        fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), frameon=False)
        png = _png(fig)

    random_shown = [m for m in models if m in random_models]
    counts = frame.drop_duplicates(["model", "item_id", "sample_id"]).groupby("model").size()
    caption = (f"Per-clip values of each metric (dots, one per clip, jittered sideways; n clips per model under its "
               f"name) with the mean over clips and its 95% confidence interval from scores.json "
               f"({'; '.join(sorted(methods)) or 'no interval recorded'}) as a black diamond and bar.")
    if anchored:
        caption += (" Adherence panels: the dotted line is the mean over shuffled (mismatched) vocal/accompaniment "
                    "pairs, the chance level; shuffled-pair rows are not plotted as a model.")
    if log_metrics:
        caption += f" Log scale: {', '.join(log_metrics)}."
    caption += _random_sentence(random_shown, display_names, "plumbing only, not a quality result")
    alt = (f"Strip plots of per-clip values for {len(metrics)} metrics ({', '.join(metrics)}) and "
           f"{len(models)} models ({', '.join(_name_with_n(m, display_names, random_models, counts) for m in models)})"
           f", each with its mean and 95% confidence interval.")
    return ReportFigure("distributions", "Per-clip distributions of every metric", caption, alt, png)


def interval_bar(low: float, high: float) -> tuple[float, list[list[float]]]:
    """(centre, yerr) that make matplotlib's error bar span exactly [low, high]. Bars are drawn from the interval's
    centre, not from the point: a percentile interval need not contain its point estimate, and errorbar refuses a
    negative length."""
    low, high = sorted((low, high))
    centre = (low + high) / 2
    return centre, [[centre - low], [high - centre]]


def point_with_interval(ax: Any, x: float, y: float, low: float | None, high: float | None, *, marker: str,
                        color: Any, zorder: int, elinewidth: float | None = None, **marker_style: Any) -> None:
    """A point and its interval drawn as given (capped bar from ``low`` to ``high``, absent when either is None),
    even where the interval excludes the point."""
    if low is not None and high is not None:
        centre, yerr = interval_bar(low, high)
        ax.errorbar([x], [centre], yerr=yerr, fmt="none", ecolor=color, elinewidth=elinewidth, capsize=3,
                    zorder=zorder)
    ax.plot([x], [y], linestyle="none", marker=marker, color=color, zorder=zorder, **marker_style)


def time_vs_params_figure(results: RunResults | None) -> ReportFigure | None:
    """Log-log: total parameters against median inference seconds per clip (CI bars where n >= 6) for every
    measured model, with the paper's Table II values as hollow markers. None when no model has both numbers."""
    points = _timed_models(results) if results is not None else []
    if not points:
        return None
    paper = {name: row for name, row in TABLE2.items() if row.time_s is not None}
    families = sorted({p["name"] for p in points} | set(paper))
    palette = dict(zip(families, sns.color_palette("colorblind", len(families)), strict=True))

    with _figure(9.0, 5.6) as fig:
        ax = fig.subplots()
        xs, ys = [], []
        labels: list[_Label] = []
        for name, row in paper.items():
            ax.scatter([row.params_value], [row.time_s], s=70, facecolors="none", edgecolors=palette[name],
                       linewidths=1.6, zorder=3)
            labels.append(_Label(ax, (row.params_value, row.time_s), f"{row.label} (paper)", above=True,
                                 style={"fontsize": 8, "color": "#333333"}))
            xs.append(row.params_value)
            ys.append(row.time_s)
        for p in points:
            if p["low"] is not None and p["high"] is not None:
                ys.extend([p["low"], p["high"]])
            point_with_interval(ax, p["params"], p["seconds"], p["low"], p["high"], marker="o", markersize=8,
                                color=palette[p["name"]], markeredgecolor="black", markeredgewidth=0.6, zorder=4)
            label = p["display"] + (" (ours)\nRANDOM weights" if p["random"] else " (ours)") + \
                ("\nBUSY machine" if p["busy"] else "")
            # Ours first in the list: they get the first pick of label spots.
            labels.insert(0, _Label(ax, (p["params"], p["seconds"]), label, above=False,
                                    style={"fontsize": 8, "fontweight": "bold" if p["random"] else "normal",
                                           "color": RANDOM_TEXT_COLOUR if p["random"] else "black"}))
            xs.append(p["params"])
            ys.append(p["seconds"])
        ax.set_xscale("log")
        ax.set_yscale("log")
        # Room on the right for the labels, which sit right of their points where they fit.
        ax.set_xlim(min(xs) / 3, max(xs) * 12)
        ax.set_ylim(min(ys) / 4, max(ys) * 3)
        ax.set_xlabel("parameters (total)")
        ax.set_ylabel("inference seconds per clip (median)")
        handles = [Line2D([], [], linestyle="", marker="o", color="#777777", markeredgecolor="black",
                          label="measured here: median, 95% CI where n ≥ 6"),
                   Line2D([], [], linestyle="", marker="o", markerfacecolor="none", markeredgecolor="#777777",
                          markersize=8, label="paper, Table II (no CI given)")]
        ax.legend(handles=handles, loc="upper left", frameon=True)
        _place_labels(fig, labels)
        png = _png(fig)

    ours = []
    for p in points:
        interval = (f"95% CI {p['low']:.3g}-{p['high']:.3g} s, {p['ci_method']}" if p["low"] is not None
                    else f"no CI: {p['ci_method']}")
        busy = f" [timed on a BUSY machine: {p['busy']}]" if p["busy"] else ""
        ours.append(f"{p['display']}{' [RANDOM weights]' if p['random'] else ''}{busy}: {p['seconds']:.3g} s median of "
                    f"n={p['n']} ({interval}); {p['params']:,} parameters; {p['label'] or 'timing label missing'}"
                    f"{p['setup']}")
    random_shown = [p["name"] for p in points if p["random"]]
    caption = ("Inference seconds per clip (median; bars: distribution-free 95% CI from order statistics, drawn "
               "only where n ≥ 6) against total parameters, log-log. " + "; ".join(ours) + ". Hollow markers: the "
               "paper's Table II, which states no hardware, batch size, runs or clip length, so the two sets are "
               "not like for like. Jukebox is left out: the paper's '> 6 h' is quoted from a tutorial, not measured.")
    caption += _random_sentence(random_shown, {p["name"]: p["display"] for p in points},
                                "weights do not change the arithmetic of inference, so the time is a valid "
                                "efficiency measurement; the audio is not a quality result")
    alt = ("Log-log scatter of parameters against inference seconds per clip: "
           + ", ".join(f"{p['display']}{' (RANDOM weights)' if p['random'] else ''} {p['params']:,} parameters, "
                       f"{p['seconds']:.3g} s" for p in points)
           + "; paper: " + ", ".join(f"{row.label} {row.params}, {row.time}" for row in paper.values()) + ".")
    return ReportFigure("time-vs-params", "Inference time against model size", caption, alt, png)


def outliers(rows: Sequence[Mapping[str, Any]], z_cut: float = OUTLIER_Z) -> list[dict[str, Any]]:
    """Clips whose robust z within their model and metric exceeds ``z_cut`` in size, largest |z| first, as dicts
    for the HTML table: model, item_id, sample_id, metric, value, z, weights."""
    frame = _robust_z_frame(rows)
    if frame.empty:
        return []
    hits = frame[frame["z"].abs() > z_cut].copy()
    hits["abs_z"] = hits["z"].abs()
    hits = hits.sort_values(["abs_z", "model", "metric", "item_id", "sample_id"],
                            ascending=[False, True, True, True, True], kind="mergesort")
    columns = ["model", "item_id", "sample_id", "metric", "value", "z", "weights"]
    return [{c: (float(r[c]) if c in ("value", "z") else r[c]) for c in columns} for _, r in hits.iterrows()]


def outliers_figure(rows: Sequence[Mapping[str, Any]], display_names: Mapping[str, str],
                    random_models: set[str]) -> ReportFigure | None:
    """One panel per metric: each clip's robust z within its model (dots), the ±3.5 cut as dashed lines, and the
    clips beyond it in red, labelled with their item id. None when there are no rows."""
    frame = _robust_z_frame(rows)
    if frame.empty:
        return None
    metrics = _metric_order(frame["metric"].unique())
    models = _model_order(frame, random_models)
    colours = _colours(models, random_models)
    ncols = _ncols(len(metrics), len(models))
    nrows = math.ceil(len(metrics) / ncols)
    n_out = 0
    labels: list[_Label] = []

    with _figure(WIDTH_IN, 0.9 + nrows * (2.4 + 0.15 * _label_lines(models, display_names, random_models))) as fig:
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax, metric in zip(axes.flat, metrics, strict=False):
            data = frame[frame["metric"] == metric]
            present = [m for m in models if (data["model"] == m).any()]
            rng = np.random.default_rng(JITTER_SEED)
            labelled: list[tuple[float, float, str]] = []
            for x, model in enumerate(present):
                clips = data[data["model"] == model]
                z = clips["z"].to_numpy()
                xs = x + _jitter(rng, len(z))
                beyond = np.abs(z) > OUTLIER_Z
                n_out += int(beyond.sum())
                if model in random_models:
                    _hatch_band(ax, x)
                ax.scatter(xs[~beyond], z[~beyond], s=16, color=colours[model], alpha=0.75, linewidths=0, zorder=2)
                ax.scatter(xs[beyond], z[beyond], s=22, color=OUTLIER_COLOUR, linewidths=0, zorder=3)
                labelled.extend(zip(xs[beyond], z[beyond], clips["item_id"].to_numpy()[beyond], strict=True))
            for cut in (-OUTLIER_Z, OUTLIER_Z):
                ax.axhline(cut, linestyle="--", color="#555555", linewidth=1, zorder=1)
            labelled.sort(key=lambda t: (-abs(t[1]), t[2]))  # the largest few get labels
            labels += [_Label(ax, (x, z), str(item_id), above=z > 0, style={"fontsize": 7.5, "color": OUTLIER_COLOUR})
                       for x, z, item_id in labelled[:MAX_LABELLED_OUTLIERS]]
            if len(labelled) > MAX_LABELLED_OUTLIERS:
                ax.text(0.99, 0.02, f"+{len(labelled) - MAX_LABELLED_OUTLIERS} more in the table",
                        transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color=OUTLIER_COLOUR)
            symlog = _z_axis(ax, float(data["z"].abs().max()))
            _category_axis(ax, present, data, display_names, random_models)
            ax.set_title(_plain(metric + (" (symlog axis)" if symlog else "")))
            ax.set_ylabel("robust z")
        for ax in axes.flat[len(metrics):]:
            ax.remove()
        handles = [Line2D([], [], linestyle="", marker="o", color="#4c72b0", alpha=0.75, label="one clip"),
                   Line2D([], [], linestyle="", marker="o", color=OUTLIER_COLOUR, label=f"|z| > {OUTLIER_Z:g}"),
                   Line2D([], [], linestyle="--", color="#555555", label=f"cut at ±{OUTLIER_Z:g}")]
        if random_models & set(models):
            handles.append(Patch(facecolor="white", edgecolor="#bdbdbd", hatch="///", label="RANDOM weights"))
        fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), frameon=False)
        _place_labels(fig, labels)
        png = _png(fig)

    random_shown = [m for m in models if m in random_models]
    caption = (f"Robust z-score of every clip within its own model and metric, (x - median) / (1.4826 x MAD) "
               f"(Iglewicz & Hoaglin 1993; 1.2533 x the mean absolute deviation when MAD is 0, and 0 when all "
               f"values are equal); n clips per model under its name. Dashed lines: ±{OUTLIER_Z:g}, the usual cut. "
               f"{n_out} clip value{'s' if n_out != 1 else ''} beyond it, in red and labelled with the item id "
               f"(at most {MAX_LABELLED_OUTLIERS} per panel; all are in the outlier table). With few clips per model "
               f"the median and MAD are themselves uncertain: read a flag as a clip to listen to, not a verdict. "
               f"Shuffled-pair anchor rows are not included.")
    caption += _random_sentence(random_shown, display_names, "their outliers are plumbing, not quality")
    alt = (f"Strip plots of per-clip robust z-scores for {len(metrics)} metrics and {len(models)} models, with "
           f"dashed cut lines at ±{OUTLIER_Z:g}; {n_out} clip value{'s' if n_out != 1 else ''} beyond the cut.")
    return ReportFigure("outliers", "Outlying clips (robust z-scores)", caption, alt, png)


def sweep_figure(sweeps: Sequence[Mapping[str, Any]], display_names: Mapping[str, str]) -> ReportFigure | None:
    """The steps x precision sweep (bench.sweep), one panel per model: seconds per clip against the SNR of the
    clip against fp32 at the most steps swept, one line per precision, each point labelled with its steps. None
    without sweep records."""
    if not sweeps:
        return None
    colours = {"fp32": "#1f77b4", "bf16": "#ff7f0e"}
    with _figure(4.6 * len(sweeps) + 0.6, 4.2) as fig:
        axes = fig.subplots(1, len(sweeps), squeeze=False)[0]
        for ax, record in zip(axes, sweeps, strict=True):
            name = display_names.get(record["model"], record["model"])
            random = record.get("weights") == "random"
            labels: list[_Label] = []
            for precision in record["settings"]["precisions"]:
                points = sorted((p for p in record["points"] if p["precision"] == precision), key=lambda p: p["steps"])
                xs = [p["seconds"] for p in points]
                # the reference point (fp32 at the most steps) has no distance from itself: drawn at the top
                ys = [p["snr_vs_fp32_most_steps_db"] for p in points]
                top = max([y for y in ys if y is not None and math.isfinite(y)] + [0.0]) + 10.0
                ys = [top if y is None or not math.isfinite(y) else y for y in ys]
                ax.plot(xs, ys, marker="o", color=colours.get(precision, "#555555"), label=precision)
                labels += [_Label(ax, (x, y), f"{p['steps']} steps" + (" (reference)" if p[
                    "snr_vs_fp32_most_steps_db"] is None else ""), above=True, style={"fontsize": 8})
                           for x, y, p in zip(xs, ys, points, strict=True)]
            ax.set_xlim(left=0)
            ax.set_xlabel("seconds per clip")
            ax.set_ylabel("SNR vs fp32 at the most steps (dB)")
            ax.set_title(name + (" — RANDOM weights" if random else ""),
                         color=RANDOM_TEXT_COLOUR if random else "black")
            ax.legend(title="precision", loc="lower right", frameon=True)
            _place_labels(fig, labels)
        png = _png(fig)
    parts = []
    for record in sweeps:
        item = record["item"]
        figures = "; ".join(
            f"{p['precision']} x {p['steps']} steps {p['seconds']:.3g} s"
            + (f", {p['snr_vs_fp32_same_steps_db']:.1f} dB vs fp32 at {p['steps']} steps"
               if p["snr_vs_fp32_same_steps_db"] is not None else "")
            + (f", {p['snr_vs_fp32_most_steps_db']:.1f} dB vs fp32 at the most steps"
               if p["snr_vs_fp32_most_steps_db"] is not None else " (the reference)")
            for p in record["points"])
        device = record.get("provenance", {})
        parts.append(f"{display_names.get(record['model'], record['model'])} ({record['weights']} weights; item "
                     f"{item['item_id']}, {item['duration_s']:g} s, seed {item['seed']}; {device.get('cpu', '?')}, "
                     f"{device.get('torch_threads', '?')} threads): {figures}")
    caption = ("Steps x precision: one clip generated at each number of sampler steps in each precision, timed "
               "whole after a warm-up (one run per point, no CI), and its SNR against fp32 on the same item, seed "
               "and weights at the most steps swept (that point drawn at the top, 10 dB above the rest). "
               + " ".join(parts) + ".")
    if any(r.get("weights") == "random" for r in sweeps):
        caption += (" RANDOM weights measure the arithmetic of each setting, not its quality: a trained model's "
                    "distances differ.")
    alt = "Seconds per clip against SNR versus fp32, per precision and step count: " + " ".join(parts)
    return ReportFigure("sweep", "Steps x precision", caption, alt, png)


def report_figures(results: RunResults | None, scores: Mapping[str, Any] | None,
                   rows: Sequence[Mapping[str, Any]], sweeps: Sequence[Mapping[str, Any]] = ()
                   ) -> list[ReportFigure]:
    """Every figure that has data, in a fixed order: distributions, time-vs-params, sweep, outliers."""
    scores = scores or {}
    ran = results.models if results is not None else {}
    display_names = {name: model.display_name for name, model in ran.items()}
    random_models = {name for name, model in ran.items() if model.is_random}
    random_models |= {name for name, entry in (scores.get("models") or {}).items() if entry.get("weights") == "random"}
    random_models |= {str(r["model"]) for r in rows if r.get("weights") == "random"}
    figures = [distributions_figure(rows, scores, display_names, random_models), time_vs_params_figure(results),
               sweep_figure(sweeps, display_names), outliers_figure(rows, display_names, random_models)]
    return [f for f in figures if f is not None]


# ---- data helpers ---------------------------------------------------------------------------------------------


def _model_rows(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Finite rows of metrics registered for figures, in a fixed order whatever the input order."""
    columns = ["model", "item_id", "sample_id", "weights", "metric", "value"]
    frame = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)
    if frame.empty:
        return frame
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    frame = frame[np.isfinite(frame["value"]) & frame["metric"].map(lambda m: _figure_group(str(m)) is not None)]
    for c in ("model", "item_id", "sample_id", "metric"):
        frame[c] = frame[c].astype(str)
    return frame.sort_values(["model", "metric", "item_id", "sample_id"], kind="mergesort").reset_index(drop=True)


def _robust_z_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Per-clip robust z within each model and metric; groups of fewer than MIN_CLIPS_FOR_Z clips are left out (a
    median and MAD of 2-4 values flag a clip by chance, not because it stands out)."""
    frame = _model_rows(rows)
    if not frame.empty:
        sizes = frame.groupby(["model", "metric"])["value"].transform("size")
        frame = frame[sizes >= MIN_CLIPS_FOR_Z].copy()
    if not frame.empty:
        frame["z"] = frame.groupby(["model", "metric"])["value"].transform(lambda v: robust_z(v.to_numpy()))
    return frame


def _timed_models(results: RunResults) -> list[dict[str, Any]]:
    points = []
    for name in sorted(results.models):
        model = results.models[name]
        timing, seconds = model.timing, model.timing.seconds if model.timing is not None else None
        params = _finite(model.params.total) if model.params is not None else None
        value = _finite(seconds.value) if seconds is not None else None
        if (timing is None or seconds is None or not timing.measured or params is None or params <= 0 or value is None
                or value <= 0):
            continue
        low, high = _finite(seconds.ci_low), _finite(seconds.ci_high)
        setup = timing.setup
        audio = [i.audio_s for i in timing.items if _finite(i.audio_s) is not None]
        where = ", ".join(s for s in (
            f"device {setup.device}" if setup.device else "",
            f"{setup.threads} threads" if setup.threads else "",
            f"batch {setup.batch_size}" if setup.batch_size else "",
            f"{float(np.median(audio)):g} s clips" if audio else "") if s)
        points.append({
            "name": name, "display": model.display_name,
            "params": int(params), "seconds": value,
            "low": low if low is not None and high is not None else None,
            "high": high if low is not None and high is not None else None,
            "n": seconds.n, "ci_method": seconds.method or "method not recorded",
            "random": model.is_random, "busy": setup.busy, "label": timing.label,
            "setup": f" ({where})" if where else ""})
    return points


def _figure_group(metric: str) -> tuple[MetricGroup, Metric] | None:
    """The registry's (group, metric) of a 'group.key' that figures show, or None."""
    found = registered_metric(metric)
    return found if found is not None and found[0].figure_rank is not None else None


def _metric_order(metrics: Iterable[str]) -> list[str]:
    """By the group's figure rank, then by name."""
    return sorted(metrics, key=lambda metric: (_figure_group(metric)[0].figure_rank, metric))


def _model_order(frame: pd.DataFrame, random_models: set[str]) -> list[str]:
    """Reference audio (files) first, then pretrained models, then anything else, random-weight models last and
    apart; by name within each. Depends only on the rows, so every figure lists the models the same way."""
    rank = {"files": 0, "pretrained": 1}
    kinds = frame.groupby("model")["weights"].first()
    return sorted(kinds.index, key=lambda m: (m in random_models, rank.get(str(kinds[m]), 2), m))


def _colours(models: Sequence[str], random_models: set[str]) -> dict[str, Any]:
    palette = sns.color_palette("colorblind", max(1, len(models)))
    real = [m for m in models if m not in random_models]
    return {m: (palette[real.index(m)] if m in real else RANDOM_COLOUR) for m in models}


def _finite(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _jitter(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(-0.15, 0.15, n) if n > 1 else np.zeros(n)


# ---- drawing helpers ------------------------------------------------------------------------------------------


@dataclass
class _Label:
    ax: Any
    xy: tuple[float, float]  # the point labelled, in data coordinates
    text: str
    above: bool  # try the spots above the point first
    style: dict[str, Any]


# Spots beside a point, in points: (dx, dy, ha, va); right before left, since x labels read left to right.
_BELOW = ((7, -4, "left", "top"), (7, 4, "left", "bottom"), (-7, -4, "right", "top"), (-7, 4, "right", "bottom"))
_ABOVE = (_BELOW[1], _BELOW[0], _BELOW[3], _BELOW[2])
_POINT_HALF_PX = 5  # a marker's half size, to keep labels off other points


def _place_labels(fig: Figure, labels: Sequence[_Label]) -> None:
    """Greedy label placement: each label, in the given order, takes the first spot beside its point that stays
    inside its axes and overlaps no label already placed and no labelled point; failing that, its first spot.

    Runs after the layout is settled; the labels stay out of the layout, so saving does not move the axes under
    them. Deterministic: the same figure gives the same spots.
    """
    if not labels:
        return
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    taken = []
    for label in labels:
        x, y = label.ax.transData.transform(label.xy)
        taken.append(Bbox.from_extents(x - _POINT_HALF_PX, y - _POINT_HALF_PX, x + _POINT_HALF_PX,
                                       y + _POINT_HALF_PX))
    for label in labels:
        frame = label.ax.get_window_extent(renderer)
        spots = _ABOVE if label.above else _BELOW
        chosen = None
        for dx, dy, ha, va in spots:
            note = label.ax.annotate(_plain(label.text), label.xy, xytext=(dx, dy), textcoords="offset points",
                                     ha=ha, va=va, **label.style)
            note.set_in_layout(False)
            box = note.get_window_extent(renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(other) for other in taken):
                chosen = note
                break
            note.remove()
        if chosen is None:
            dx, dy, ha, va = spots[0]
            chosen = label.ax.annotate(_plain(label.text), label.xy, xytext=(dx, dy), textcoords="offset points",
                                       ha=ha, va=va, **label.style)
            chosen.set_in_layout(False)
        taken.append(chosen.get_window_extent(renderer))


@contextmanager
def _figure(width_in: float, height_in: float) -> Iterator[Figure]:
    """A pyplot-free figure on an Agg canvas, its style confined to this block."""
    with mpl.rc_context(_STYLE):
        fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        yield fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # No "Software" text chunk (it names the matplotlib version) and Agg writes no date: same input, same bytes.
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _plain(text: str) -> str:
    """Matplotlib reads text between two '$' as mathtext; a model name is never math."""
    return text.replace("$", r"\$")


def _ncols(n_metrics: int, n_models: int) -> int:
    per_row = 4 if n_models <= 2 else 3 if n_models <= 4 else 2
    return max(1, min(n_metrics, per_row))


def _tick_label(model: str, display_names: Mapping[str, str], random_models: set[str], n: int) -> str:
    name = textwrap.fill(display_names.get(model, model), 16)
    return _plain(name + ("\n[RANDOM]" if model in random_models else "") + f"\nn={n}")


def _label_lines(models: Sequence[str], display_names: Mapping[str, str], random_models: set[str]) -> int:
    return max((_tick_label(m, display_names, random_models, 0).count("\n") + 1 for m in models), default=1)


def _category_axis(ax: Any, present: Sequence[str], data: pd.DataFrame, display_names: Mapping[str, str],
                   random_models: set[str]) -> None:
    counts = data.groupby("model")["item_id"].size()
    ax.set_xticks(range(len(present)))
    ax.set_xticklabels([_tick_label(m, display_names, random_models, int(counts[m])) for m in present])
    for label, model in zip(ax.get_xticklabels(), present, strict=True):
        if model in random_models:
            label.set_color(RANDOM_TEXT_COLOUR)
            label.set_fontweight("bold")
    ax.set_xlim(-0.5, len(present) - 0.5)
    ax.grid(axis="x", visible=False)


def _hatch_band(ax: Any, x: float) -> None:
    ax.axvspan(x - 0.45, x + 0.45, facecolor="#f4f4f4", edgecolor="#bdbdbd", hatch="///", linewidth=0, zorder=0)


def _z_axis(ax: Any, largest: float) -> bool:
    """Symmetric limits that always show the cut; symlog when one wild clip would flatten the rest on a linear
    axis (the region around the cut stays linear), with plain-number ticks at the cut and at powers of ten."""
    if largest <= 4 * OUTLIER_Z:
        top = max(OUTLIER_Z + 1.0, largest * 1.15)
        ax.set_ylim(-top, top)
        return False
    linthresh = OUTLIER_Z + 1.0
    ax.set_yscale("symlog", linthresh=linthresh)
    top = largest * 2.5  # on the log part, headroom for the top label is a factor, not a fraction
    ax.set_ylim(-top, top)
    decades = [10.0 ** k for k in range(1, int(math.log10(top)) + 1)]
    ticks = sorted({0.0, OUTLIER_Z, -OUTLIER_Z, *decades, *(-d for d in decades)})
    ax.set_yticks(ticks)
    ax.set_yticklabels([f"{t:g}" for t in ticks])
    ax.yaxis.set_minor_locator(NullLocator())
    return True


def _name_with_n(model: str, display_names: Mapping[str, str], random_models: set[str], counts: pd.Series) -> str:
    tag = ", RANDOM weights" if model in random_models else ""
    return f"{display_names.get(model, model)}{tag}, n={int(counts.get(model, 0))}"


def _random_sentence(models: Sequence[str], display_names: Mapping[str, str], why: str) -> str:
    if not models:
        return ""
    names = ", ".join(display_names.get(m, m) for m in models)
    return f" RANDOM weights: {names} ran with randomly initialised weights ({why})."
