"""The report's "worst clips" section: for each per-clip metric, the clips that score worst, with players, so a
reader listens where it matters.

"Worst" follows the metric's direction in :mod:`bench.scoring.registry` (``higher_is_better``): the lowest values
of a higher-is-better metric, the highest of a lower-is-better one; metrics with no direction (diagnostics such as
loudness) are not ranked. Values are the per-clip values scores.json lists (``read_clip_values``), for the
accompaniment view and, when the run scored it (``--score-on mix|both``), the mix view. The ``reference`` row
(the true accompaniments) and random-weight models are not ranked: the first is no model, the second no quality
result. Each listed item gets one block of players: its vocal window, its reference window and the listed models'
samples, so an item that is worst on several metrics is embedded once.

This module sits below :mod:`reports.html`, which calls it: the run is read duck-typed (a ``reports.html.RunData``)
and the MP3 encoder is passed in (``reports.html.encode_excerpt``).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.scoring.records import read_clip_values
from bench.scoring.registry import metric as registered_metric
from reports.tables import Cell, Table, to_html

WORST_PER_METRIC = 3  # clips listed per metric and view (0: no section)
NOT_RANKED = ("reference",)  # rows that are no model
VIEWS = ("accompaniment", "mix")

Encode = Callable[[Path, float, float], bytes]  # (path, seconds, start_s) -> MP3 bytes


@dataclass(frozen=True)
class WorstClip:
    """One clip among the worst of a metric: its rank (1 = worst) in ``view``."""

    view: str  # accompaniment | mix
    metric: str  # "group.key" as scores.json names it
    label: str
    higher_is_better: bool
    rank: int
    model: str
    item_id: str
    sample_id: str
    value: float


def worst_clips(rows: Iterable[Mapping[str, Any]], per_metric: int = WORST_PER_METRIC, *, view: str = "accompaniment",
                exclude: Iterable[str] = ()) -> list[WorstClip]:
    """The ``per_metric`` worst clips of every directed metric among ``rows`` (read_clip_values' tidy rows), in
    registry order; ties are broken by model, then item id, so the list is stable."""
    skip = set(exclude) | set(NOT_RANKED)
    by_metric: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r["model"] not in skip:
            by_metric.setdefault(str(r["metric"]), []).append(r)
    out: list[WorstClip] = []
    for name in sorted(by_metric, key=_metric_order):
        found = registered_metric(name)
        if found is None or found[1].higher_is_better is None:
            continue
        m = found[1]
        sign = 1.0 if m.higher_is_better else -1.0  # ascending sign * value: worst first
        ranked = sorted(by_metric[name], key=lambda r: (sign * float(r["value"]), r["model"], r["item_id"]))
        # a clip tied with the best one is no worse than any: clipping share 0 on every clip ranks nothing
        best = max((sign * float(r["value"]) for r in ranked), default=0.0)
        ranked = [r for r in ranked if sign * float(r["value"]) < best]
        for i, r in enumerate(ranked[:per_metric]):
            out.append(WorstClip(view, name, m.label, bool(m.higher_is_better), i + 1, str(r["model"]),
                                 str(r["item_id"]), str(r["sample_id"]), float(r["value"])))
    return out


def _metric_order(name: str) -> tuple[int, str]:
    from bench.scoring.registry import per_clip_metrics

    order = [f"{g.name}.{m.key}" for g, m in per_clip_metrics()]
    return (order.index(name) if name in order else len(order), name)


def view_rows(run: Any, view: str) -> list[dict[str, Any]]:
    """The per-clip rows of ``view``: the report's own rows for the accompaniment, scores.json's ``mix`` block
    read the same way for the mix."""
    if view == "accompaniment":
        return list(run.clip_rows)
    block = run.scores_json.get(view) or {}
    return read_clip_values({"models": block.get("models") or {}}) if isinstance(block, dict) else []


def worst_items_section(run: Any, per_metric: int = WORST_PER_METRIC, *, encode: Encode | None = None,
                        excerpt_s: float = 10.0, listened: Mapping[str, Collection[Path]] | None = None) -> str:
    """The section's HTML (``run``: a reports.html.RunData). ``per_metric`` = 0 gives ''. Without ``encode`` the
    table is given without players. ``listened``: item id -> the sample files (resolved) the report's Listen section
    already plays for it; such an item links there instead of embedding the same audio twice."""
    if per_metric <= 0:
        return ""
    skip = set(run.random_models)
    found = [c for v in VIEWS for c in worst_clips(view_rows(run, v), per_metric, view=v, exclude=skip)]
    body = [f"<p>For each per-clip metric, the {per_metric} clips that score worst (lowest where higher is better, "
            "highest where lower is better; metrics with no better direction are not ranked), over every model but "
            "the reference row and random-weight models. Listen to them below, item by item: the vocal and the "
            "reference are the item's window, the seconds every model was given.</p>"]
    if not found:
        body.append("<p>No per-clip values to rank (score the run, or its metrics have no direction).</p>")
        return _section(body)
    items = _items(run)
    table = Table(f"The {per_metric} worst clips per metric", ["Metric", "View", "Rank", "Model", "Item", "Window",
                                                                "Value"])
    for c in found:
        table.add([Cell(f"{c.label} ({'higher' if c.higher_is_better else 'lower'} is better)"), Cell(c.view),
                   Cell(str(c.rank), c.rank), Cell(run.display_name(c.model)), Cell(c.item_id),
                   Cell(_window_text(items.get(c.item_id))), Cell(f"{c.value:.4g}", c.value)])
    body.append(to_html(table, "worst-table"))
    if encode is not None:
        body += _player_blocks(run, found, items, encode, excerpt_s, listened or {})
    return _section(body)


# -- players --------------------------------------------------------------------------------------------------------


def _player_blocks(run: Any, found: Sequence[WorstClip], items: Mapping[str, Any], encode: Encode,
                   excerpt_s: float, listened: Mapping[str, Collection[Path]]) -> list[str]:
    from bench.runfolder import RunFolder

    folder = RunFolder(run.folder)
    by_item: dict[str, dict[str, tuple[str, list[str]]]] = {}  # item -> model -> (sample id, metrics)
    for c in found:
        entry = by_item.setdefault(c.item_id, {}).setdefault(c.model, (c.sample_id, []))
        what = f"{c.label}{' (mix)' if c.view == 'mix' else ''} #{c.rank}"
        if what not in entry[1]:
            entry[1].append(what)
    blocks = [f"<p>The first {excerpt_s:g} s of each, as VBR MP3.</p>"]
    for item_id, models in by_item.items():
        item = items.get(item_id)
        paths = {model: folder.sample_audio(model, item_id, sid, False) for model, (sid, _) in models.items()}
        heading = (f'<h3 id="worst-{_esc(item_id)}">Item <code>{_esc(item_id)}</code>, window '
                   f"{_esc(_window_text(item))}</h3>")
        if item_id in listened and all(p.resolve() in listened[item_id] for p in paths.values()):
            # the very same files play in the Listen section: a link, not a second copy of the audio
            worst_on = "; ".join(f"{run.display_name(m)}: {', '.join(metrics)}" for m, (_, metrics) in models.items())
            blocks.append(f'{heading}<p>Worst on {_esc(worst_on)}. Its players are in '
                          f'<a href="#listen-{_esc(item_id)}">Listen</a>.</p>')
            continue
        cells = []
        if item is not None and item.vocal:
            cells.append(_player("Vocal (input)", _existing(item.vocal), item.start_s, encode, excerpt_s))
        if item is not None and item.reference:
            cells.append(_player("Reference (true accompaniment)", _existing(item.reference), item.start_s, encode,
                                 excerpt_s))
        for model, (_, metrics) in models.items():
            path = paths[model]
            label = f"{run.display_name(model)} — worst on {', '.join(metrics)}"
            cells.append(_player(label, path if path.is_file() else None, 0.0, encode, excerpt_s))
        blocks.append(f"{heading}<div class=\"players\">{''.join(cells)}</div>")
    return blocks


def _player(label: str, path: Path | None, start_s: float, encode: Encode, excerpt_s: float) -> str:
    if path is None:
        return f'<div class="player"><div>{_esc(label)}</div><em>file not found</em></div>'
    try:
        data = base64.b64encode(encode(path, excerpt_s, start_s)).decode("ascii")
    except Exception as err:  # one unreadable file costs one player, never the report
        return (f'<div class="player"><div>{_esc(label)}</div><em>{_esc(path.name)}: {_esc(type(err).__name__)}: '
                f"{_esc(err)}</em></div>")
    return (f'<div class="player"><div>{_esc(label)}</div><audio controls preload="metadata" '
            f'src="data:audio/mpeg;base64,{data}"></audio><div><code>{_esc(path.name)}</code></div></div>')


def _items(run: Any) -> dict[str, Any]:
    manifest = getattr(run, "manifest", None)
    return {i.item_id: i for i in manifest.items} if manifest is not None else {}


def _window_text(item: Any) -> str:
    if item is None:
        return "?"
    return f"{item.start_s:.1f}–{item.start_s + item.duration_s:.1f} s"


def _existing(path: str | None) -> Path | None:
    return Path(path) if path and Path(path).is_file() else None


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _section(body: list[str]) -> str:
    return '<section id="worst">\n<h2>Worst clips per metric</h2>\n' + "\n".join(body) + "\n</section>"
