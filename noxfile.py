"""Developer sessions: `nox -s tests`, `nox -s lint`, `nox -s bench`, and CI's `nox -s ci_report`.

Every session installs torch first, pinned (default ``torch==2.13.0``), so that on a CPU machine pip takes the
CPU wheel from its configured find-links and never the registry's CUDA build. A GPU user sets
``SAMUEL_TORCH_SPEC`` (for example ``"torch==2.13.0 --index-url <PyTorch CUDA wheel index>"``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import tomllib
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

TORCH_SPEC = shlex.split(os.environ.get("SAMUEL_TORCH_SPEC", "torch==2.13.0"))
# committed, so that a fresh clone compares with the recorded run (docs/benchmarks.md); commit a new run with
# the figures it backs
BENCH_STORAGE = Path("docs/benchmark-runs")
CI_REPORT = Path("reports/ci/report.html")
# the embedded default input set, the fast models (tiny SAMUeL preset, random weights; the true accompaniments), and
# a steps x precision sweep of 1 and 2 steps, so that the browser test sees the sweep figure too
CI_RUN = ["--models", "samuel,reference", "--option", "samuel.preset=tiny", "-n", "3", "--duration", "5",
          "--generate-random", "--score-random", "--no-progress", "--sweep-steps", "1,2"]


def install(session: nox.Session, extras: str) -> None:
    session.install(*TORCH_SPEC)
    session.install("-e", f".[{extras}]")
    # audiobox-aesthetics without its torchaudio requirement (requirements/no-deps.txt says why)
    session.install("--no-deps", "-r", "requirements/no-deps.txt")


@nox.session
def tests(session: nox.Session) -> None:
    """The unit test suite (benchmarks are skipped here; they live in `bench`).

    With ``SAMUEL_CI_REPORT=1`` (set by .ci/run) it then does ``ci_report``'s work in this session's environment,
    which saves CI a third install of torch and the package (about 3 minutes on 2 cores).
    """
    install(session, "test")
    # two worker processes: most tests are single-threaded Python/numpy, so 2 cores run about twice the work
    session.run("python", "-m", "pytest", "--benchmark-skip", "-n", "2", "--dist", "loadfile", *session.posargs)
    if os.environ.get("SAMUEL_CI_REPORT") == "1":
        run_ci_report(session)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, and the import layers reports -> bench -> baselines -> samuel (import-linter).

    Neither tool imports the code (import-linter parses it), so the package goes in without its dependencies.
    """
    session.install("-e", ".", "--no-deps")
    session.install(*tomllib.loads(Path("pyproject.toml").read_text())["project"]["optional-dependencies"]["lint"])
    session.run("ruff", "check", ".")
    session.run("lint-imports")


@nox.session
def bench(session: nox.Session) -> None:
    """pytest-benchmark suites; results saved as JSON and compared with the previous saved run.

    The comparison table prints every benchmark's previous and current figures side by side, and
    `bench.benchcompare` then lists every median that moved by more than 10%, slower first. Set
    SAMUEL_BENCH_FAIL (e.g. ``25%``) to fail the session when a median regresses by more than that; it is off by
    default because this 2-core VM moves sub-millisecond kernels by up to ~50% between identical runs (see
    docs/benchmarks.md). Current figures are recorded in docs/benchmarks.md.
    """
    install(session, "test")
    args = [
        "python", "-m", "pytest", "tests/benchmarks", "--benchmark-only",
        f"--benchmark-storage=file://{BENCH_STORAGE}", "--benchmark-autosave",
        "--benchmark-columns=min,median,mean,stddev,rounds", "--benchmark-sort=name",
    ]
    if any(BENCH_STORAGE.glob("*/*.json")):
        args.append("--benchmark-compare")
        if threshold := os.environ.get("SAMUEL_BENCH_FAIL"):
            args.append(f"--benchmark-compare-fail=median:{threshold}")
    else:
        session.log("no saved benchmark run yet: this run becomes the baseline")
    session.run(*args, *session.posargs)
    # name what moved, as ratios of medians (the table above shows both runs whole)
    session.run("python", "-m", "bench.benchcompare", str(BENCH_STORAGE))


@nox.session
def ci_report(session: nox.Session) -> None:
    """CI's end-to-end check: a small `samuel-eval` run on the embedded default writes reports/ci/report.html, and
    the browser test opens it in headless Chromium (screenshot: reports/ci/report.png)."""
    install(session, "test")
    run_ci_report(session)


def run_ci_report(session: nox.Session) -> None:
    out = Path(session.create_tmp()) / "ci-run"
    shutil.rmtree(out, ignore_errors=True)  # a fresh run each time (a kept folder would resume the last one)
    session.run("samuel-eval", *CI_RUN, "--out", str(out), "--html", str(CI_REPORT))
    session.run("python", "-m", "pytest", "tests/test_report_browser.py", "-v",
                env={"SAMUEL_REPORT_HTML": str(CI_REPORT.resolve()),
                     "SAMUEL_SCREENSHOT": str(CI_REPORT.with_suffix(".png").resolve())})
