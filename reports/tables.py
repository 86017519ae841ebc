"""Tables as data: a :class:`Cell` holds a value, its display text, CI and n; renderers only format.

The renderers (CSV, Markdown, LaTeX, HTML) know nothing about models or metrics, so every table is built once, as
data, and rendered the same way everywhere. CSV keeps the raw numbers (value, CI bounds, n) in their own
columns so that nothing needs re-parsing; HTML keeps them as data attributes and marks flagged cells (a paper
value that differs from ours) with a class as well as the marker in the display text.
"""

from __future__ import annotations

import csv
import html
import io
import math
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Cell:
    display: str
    value: float | None = None
    ci: tuple[float, float] | None = None
    n: int | None = None
    note: str = ""
    flagged: bool = False  # the paper's value differs from ours (the note says how)


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: list[Cell]) -> None:
        if len(row) != len(self.columns):
            raise ValueError(f"row has {len(row)} cells, table has {len(self.columns)} columns")
        self.rows.append(row)


def weights_cell(shown: str, caveat: str | None) -> Cell:
    """A Weights cell: the kind as shown, plus the caveat's headline ("VAE MISMATCH") when the weights carry one
    (baselines.base.WeightsStatus.caveat); the whole caveat is the cell's note and :func:`caveat_note`'s."""
    if not caveat:
        return Cell(shown)
    return Cell(f"{shown}, {caveat_headline(caveat)}", note=caveat)


def caveat_headline(caveat: str) -> str:
    """The words before a caveat's first colon (its headline, e.g. "VAE MISMATCH"), else "see note"."""
    head, colon, _ = caveat.partition(":")
    return head.strip() if colon and 0 < len(head.strip()) <= 40 else "see note"


def caveat_note(caveats: list[tuple[str, str]]) -> str | None:
    """One table note for the rows whose weights carry a caveat, ``(row, caveat)``; None when none does."""
    if not caveats:
        return None
    return ("Weights with a caveat (the row runs; its samples' records say it too): "
            + "; ".join(f"{row}: {caveat}" for row, caveat in caveats) + ".")


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def to_markdown(table: Table) -> str:
    lines = [f"**{_md_escape(table.title)}**", "", "| " + " | ".join(_md_escape(c) for c in table.columns) + " |",
             "| " + " | ".join("---" for _ in table.columns) + " |"]
    lines += ["| " + " | ".join(_md_escape(c.display) for c in row) + " |" for row in table.rows]
    if table.notes:
        lines.append("")
        lines += [f"{i}. {_md_escape(n)}" for i, n in enumerate(table.notes, 1)]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
                  ">": r"\textgreater{}", "±": r"$\pm$", "×": r"$\times$", "≥": r"$\geq$", "≤": r"$\leq$"}


def latex_escape(s: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in s)


def to_latex(table: Table) -> str:
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(table.title)}}}",
             r"\begin{tabular}{" + "l" * len(table.columns) + "}", r"\hline",
             " & ".join(latex_escape(c) for c in table.columns) + r" \\", r"\hline"]
    lines += [" & ".join(latex_escape(c.display) for c in row) + r" \\" for row in table.rows]
    lines += [r"\hline", r"\end{tabular}"]
    if table.notes:
        lines.append(r"\par\footnotesize " + " ".join(f"({i}) {latex_escape(n)}" for i, n in
                                                      enumerate(table.notes, 1)))
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """One row per table row; each column gives display text, then value, ci_low, ci_high and n when any cell of
    that column carries them."""
    numeric = [any(r[j].value is not None or r[j].ci is not None for r in table.rows)
               for j in range(len(table.columns))]
    header: list[str] = []
    for name, num in zip(table.columns, numeric, strict=True):
        header += [name] + ([f"{name} value", f"{name} ci_low", f"{name} ci_high", f"{name} n"] if num else [])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in table.rows:
        out: list[object] = []
        for cell, num in zip(row, numeric, strict=True):
            out.append(cell.display)
            if num:
                low, high = cell.ci if cell.ci else ("", "")
                out += ["" if cell.value is None else repr(cell.value), low, high, "" if cell.n is None else cell.n]
        w.writerow(out)
    return buf.getvalue()


def _html_number(x: float) -> str:
    return repr(float(x)) if math.isfinite(x) else "nan"


def _html_cell(cell: Cell, tag: str) -> str:
    attrs = []
    if cell.value is not None:
        attrs.append(f'data-value="{_html_number(cell.value)}"')
    if cell.ci is not None:
        attrs.append(f'data-ci-low="{_html_number(cell.ci[0])}" data-ci-high="{_html_number(cell.ci[1])}"')
    if cell.n is not None:
        attrs.append(f'data-n="{int(cell.n)}"')
    if cell.note:
        attrs.append(f'title="{html.escape(cell.note)}"')
    if cell.flagged:
        attrs.append('class="flagged"')
    return f"<{tag}{''.join(' ' + a for a in attrs)}>{html.escape(cell.display)}</{tag}>"


def to_html(table: Table, table_id: str) -> str:
    """A ``<table class="results">`` with the title as caption and the notes in an ordered list after it.
    Every string is escaped: titles, cells and notes can carry file and model names."""
    lines = [f'<table class="results" id="{html.escape(table_id)}">',
             f"<caption>{html.escape(table.title)}</caption>",
             "<thead><tr>" + "".join(f'<th scope="col">{html.escape(c)}</th>' for c in table.columns) + "</tr></thead>",
             "<tbody>"]
    for row in table.rows:
        lines.append("<tr>" + _html_cell(row[0], "th").replace("<th", '<th scope="row"', 1)
                     + "".join(_html_cell(c, "td") for c in row[1:]) + "</tr>")
    lines.append("</tbody></table>")
    if table.notes:
        lines.append(f'<ol class="notes" id="{html.escape(table_id)}-notes">'
                     + "".join(f"<li>{html.escape(n)}</li>" for n in table.notes) + "</ol>")
    return "\n".join(lines) + "\n"


def write_table(table: Table, folder: Path, stem: str) -> list[Path]:
    """``stem``.md, .tex and .csv under ``folder``, each written atomically."""
    from samuel.atomic import atomic_write

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for suffix, render in ((".md", to_markdown), (".tex", to_latex), (".csv", to_csv)):
        text = render(table)
        out.append(atomic_write(folder / f"{stem}{suffix}", lambda tmp, t=text: Path(tmp).write_text(t)))
    return out
