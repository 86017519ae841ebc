"""The report pass: Tables I and II and the HTML report from what a run folder holds (nothing is recomputed)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.results import RunResults
from bench.runfolder import RunFolder


def render(run: RunFolder, *, html: Path | None = None, report_command: str = "", echo: bool = False,
           with_html: bool = True) -> list[Path]:
    """Write DIR/tables (Table II always, Table I when scored) and, unless ``with_html`` is False, the HTML report;
    returns the paths written."""
    from bench.scoring.records import read_current_scores
    from reports.html import write_report
    from reports.probe import load_probe
    from reports.table1 import rescore_command, stale_table1, table1
    from reports.table2 import table2, write_table2
    from reports.tables import to_markdown, write_table

    results = RunResults.read(run.results_path)
    probe = load_probe(run.root)[0]  # a damaged probe.json is named in the report's probe section
    written = write_table2(results, run.tables_dir, probe)
    scores, stale = read_current_scores(run, results)
    quality = None
    if stale:  # never the numbers of other samples under this run's name
        quality = stale_table1(stale, rescore_command(results.provenance.command))
        print(f"report: Table I not shown: {quality.notes[0]} {quality.notes[1]}", file=sys.stderr)
    elif scores is not None:
        quality = table1(scores, results)
    if quality is not None:
        written += write_table(quality, run.tables_dir, "table1")
    if echo:
        print(to_markdown(table2(results, probe)))
        if quality is not None:
            print(to_markdown(quality))
    if with_html:
        written.append(write_report(run.root, html, report_command=report_command))
    return written


class ReportRenderer:
    """:class:`bench.evaluate.ReportPass` for samuel-eval: tables to DIR/tables (echoed), the HTML report."""

    def __init__(self, argv: list[str], echo: bool = True) -> None:
        self.argv, self.echo = argv, echo

    def __call__(self, run: RunFolder, cfg: Any, log: Callable[[str], None]) -> list[Path]:
        written = render(run, html=cfg.html, report_command=" ".join(["samuel-eval", *self.argv]), echo=self.echo)
        print(f"report: {written[-1]}", file=sys.stderr)
        return written
