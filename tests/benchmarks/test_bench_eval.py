"""One small end-to-end `samuel-eval` run (issue 6): every pass (params, generate, time, score, report) on the
embedded synthetic set with the tiny SAMUeL preset and the reference row, as CI runs it; and `samuel-eval report`
alone (re-rendering tables, figures and audio excerpts from the files).

Random weights throughout: this measures the harness's own overhead, not any model's speed or quality.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from reports.cli import main

SMALL_RUN = ["--models", "samuel,reference", "--option", "samuel.preset=tiny", "-n", "2", "--duration", "5",
             "--generate-random", "--score-random", "--resamples", "200", "--no-progress"]


def test_small_samuel_eval_run(benchmark, tmp_path: Path, summary) -> None:
    counter = itertools.count()

    def fresh_folder() -> tuple[tuple[list[str]], dict]:
        return ([*SMALL_RUN, "--out", str(tmp_path / f"run{next(counter)}")],), {}

    rc = benchmark.pedantic(main, setup=fresh_folder, rounds=2, iterations=1)
    assert rc == 0
    assert (tmp_path / "run0" / "report.html").is_file()
    summary.append(f"samuel-eval end to end (tiny SAMUeL + reference, 2 items x 5 s, all passes): median "
                   f"{benchmark.stats.stats.median:.1f} s")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main([*SMALL_RUN, "--out", str(out)]) == 0
    return out


def test_report_rerender(benchmark, finished_run: Path, summary) -> None:
    rc = benchmark.pedantic(main, args=(["report", str(finished_run)],), rounds=3, iterations=1)
    assert rc == 0
    size = (finished_run / "report.html").stat().st_size
    summary.append(f"samuel-eval report (tables, figures, 2 items' audio excerpts): median "
                   f"{benchmark.stats.stats.median:.1f} s, report {size / 1e6:.2f} MB")
