"""Tables as data: a :class:`Cell` holds a value, its display text, CI and n; renderers only format.

The renderers (CSV, Markdown, LaTeX) know nothing about models or metrics, so every table is built once, as
data, and rendered the same way everywhere. CSV keeps the raw numbers (value, CI bounds, n) in their own
columns so that nothing needs re-parsing.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Cell:
    display: str
    value: float | None = None
    ci: tuple[float, float] | None = None
    n: int | None = None
    note: str = ""

    @classmethod
    def text(cls, s: str) -> Cell:
        return cls(s)


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


def write_table(table: Table, folder: Path, stem: str) -> list[Path]:
    """``stem``.md, .tex and .csv under ``folder``, each written atomically."""
    from samuel.atomic import atomic_write

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for suffix, render in ((".md", to_markdown), (".tex", to_latex), (".csv", to_csv)):
        text = render(table)
        out.append(atomic_write(folder / f"{stem}{suffix}", lambda tmp, t=text: Path(tmp).write_text(t)))
    return out
