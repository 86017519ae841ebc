"""Developer sessions: `nox -s tests`, `nox -s lint`, `nox -s bench`.

Every session installs torch first, pinned (default ``torch==2.13.0``), so that on a CPU machine pip takes the
CPU wheel from its configured find-links and never the registry's CUDA build. A GPU user sets
``SAMUEL_TORCH_SPEC`` (for example ``"torch==2.13.0 --index-url <PyTorch CUDA wheel index>"``).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

TORCH_SPEC = shlex.split(os.environ.get("SAMUEL_TORCH_SPEC", "torch==2.13.0"))
BENCH_STORAGE = Path(".benchmarks")


def install(session: nox.Session, extras: str) -> None:
    session.install(*TORCH_SPEC)
    session.install("-e", f".[{extras}]")


@nox.session
def tests(session: nox.Session) -> None:
    """The unit test suite (benchmarks are skipped here; they live in `bench`)."""
    install(session, "test")
    session.run("python", "-m", "pytest", "--benchmark-skip", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, and the import layers reports -> bench -> baselines -> samuel (import-linter)."""
    install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("lint-imports")


@nox.session
def bench(session: nox.Session) -> None:
    """pytest-benchmark suites; results saved as JSON and compared with the previous saved run.

    A median more than SAMUEL_BENCH_FAIL (default 20%) slower than the last run is reported as a regression and
    fails the session. Current figures are recorded in docs/benchmarks.md.
    """
    install(session, "test")
    args = [
        "python", "-m", "pytest", "tests/benchmarks", "--benchmark-only", "-p", "no:randomly",
        f"--benchmark-storage=file://{BENCH_STORAGE}", "--benchmark-autosave",
        "--benchmark-columns=min,median,mean,stddev,rounds", "--benchmark-sort=name",
    ]
    if any(BENCH_STORAGE.glob("*/*.json")):
        threshold = os.environ.get("SAMUEL_BENCH_FAIL", "20%")
        args += ["--benchmark-compare", f"--benchmark-compare-fail=median:{threshold}"]
    else:
        session.log("no saved benchmark run yet: this run becomes the baseline")
    session.run(*args, *session.posargs)
