"""Files on disk are untrusted (issue 12): every kind of file in a finished run folder is truncated, garbled or
emptied, the same command is rerun, and the run either repairs the file or names it; no silent change reaches a
table. And a run killed with SIGKILL during each pass resumes to byte-identical tables.

The run: the fake noise model and the reference row on 3 embedded items of 1 s, signal metrics, in a subprocess
for the kill tests (``samuel-eval`` itself, as a user runs it).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fake_generators import NoiseGenerator

from baselines import registry
from bench.evaluate import EvalConfig, evaluate

HERE = Path(__file__).parent
FAKE = "fake-noise"
registry.register(FAKE, "fake_generators:NoiseGenerator")
ARGS = ["--models", f"{FAKE},reference", "--n", "3", "--duration", "1", "--time-items", "2", "--metrics", "signal",
        "--resamples", "200", "--no-progress"]


def _cfg(out: Path) -> EvalConfig:
    return EvalConfig(out=out, models=(FAKE, "reference"), n=3, duration_s=1.0, time_items=2, metrics=("signal",),
                      resamples=200, no_progress=True)


def _rerun(out: Path, with_html: bool = False) -> tuple[int, list[str]]:
    """The same run again; the HTML report only when asked (it reads what the tables read, and costs seconds)."""
    from reports.render import ReportRenderer, render

    log: list[str] = []
    report = ReportRenderer([], echo=False) if with_html else (lambda run, cfg, say: render(run, with_html=False))
    result = evaluate(_cfg(out), report=report, log=log.append)
    return result.exit_code, log


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A finished run folder and its Table I, as an undamaged rerun renders it."""
    NoiseGenerator.calls = 0
    out = tmp_path_factory.mktemp("corrupt") / "clean"
    assert _rerun(out, with_html=True)[0] == 0
    assert _rerun(out)[0] == 0  # the rerun of an intact folder: what every damaged rerun must reproduce
    return out, (out / "tables" / "table1.md").read_text()


def _one(out: Path, pattern: str) -> Path:
    found = sorted(p for p in out.glob(pattern) if p.is_file())
    assert found, pattern
    return found[len(found) // 2]


KINDS = {
    "manifest": "manifest.json",
    "synthetic vocal": "inputs/vocals/*.flac",
    "synthetic accompaniment": "inputs/accompaniment/*.flac",
    "synthetic meta": "inputs/meta/*.json",
    "sample audio": f"samples/{FAKE}/*.flac",
    "sample sidecar": f"samples/{FAKE}/*.json",
    "reference sample": "samples/reference/*.flac",
    "attempt records": f"records/{FAKE}.rank0.jsonl",
    "timing": f"timing/{FAKE}.rank0.json",
    "results": "results.json",
    "scores": "scores.json",
    "clip record": f"scores/{FAKE}/*.json",
    "table": "tables/table1.md",
    "report": "report.html",
}


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbled":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + b"\x00\xff garbage \xfe" * 8 + data[middle + 96:])
    else:
        path.write_bytes(b"")


# every kind torn and garbled; emptied too where a zero-byte file is a case of its own (JSON and JSONL)
CASES = [(kind, how) for kind in sorted(KINDS) for how in ("truncated", "garbled")
         if not (kind == "report" and how == "garbled")] + [
    (kind, "emptied") for kind in ("manifest", "sample sidecar", "attempt records", "timing", "results", "scores",
                                   "clip record")]


@pytest.mark.parametrize(("kind", "how"), CASES)
def test_a_damaged_file_is_repaired_or_named_and_tables_do_not_change(finished: tuple[Path, str], tmp_path: Path,
                                                                     kind: str, how: str) -> None:
    clean, table1 = finished
    out = tmp_path / "run"
    shutil.copytree(clean, out)
    victim = _one(out, KINDS[kind])
    _damage(victim, how)
    code, log = _rerun(out, with_html=kind == "report")
    text = "\n".join(log)
    # repaired: every row of Table I as in the undamaged run; a note the table gains must name the file
    got = (out / "tables" / "table1.md").read_text().splitlines()
    want = table1.splitlines()
    assert [r for r in got if r.startswith("|")] == [r for r in want if r.startswith("|")], text
    assert all(victim.name in line for line in set(got) - set(want)), set(got) - set(want)
    if code != 0:  # or named: a failure must say which file
        assert victim.name in text, text
    assert victim.exists() and victim.stat().st_size > 0  # redone, not left broken


# -- kill -9 during each pass, then resume ------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "FAKE_NOISE_ITEM_S": "0.4",
            "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "SAMUEL_EVAL_GENERATORS": f"{FAKE}=fake_generators:NoiseGenerator"}


def _run_cli(out: Path, kill_on: str | None = None, delay_s: float = 0.3) -> tuple[int, str]:
    """samuel-eval in a subprocess; with ``kill_on``, SIGKILL it ``delay_s`` after a stderr line holding that
    text appears. Returns (exit code, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "reports.cli", *ARGS, "--out", str(out)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if kill_on is not None and kill_on in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if kill_on is not None:
        if seen.wait(timeout=240):
            time.sleep(delay_s)
            proc.send_signal(signal.SIGKILL)
    code = proc.wait(timeout=300)
    reader.join(timeout=10)
    return code, "".join(lines)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kill") / "whole"
    code, err = _run_cli(out)
    assert code == 0, err[-3000:]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("kill_on", [f"{FAKE}: params, generate, time", f"time {FAKE} 1/", "stage 3/4: score",
                                     "stage 4/4: report"])
def test_kill_9_during_a_pass_then_resume_gives_byte_identical_tables(uninterrupted: Path, tmp_path: Path,
                                                                      kill_on: str) -> None:
    out = tmp_path / "cut"
    code, err = _run_cli(out, kill_on=kill_on)
    assert code == -signal.SIGKILL, f"not killed at {kill_on!r}: exit {code}\n{err[-2000:]}"
    code, err = _run_cli(out)
    assert code == 0, err[-3000:]
    assert (out / "tables" / "table1.md").read_bytes() == (uninterrupted / "tables" / "table1.md").read_bytes()
    # Table II: the parameter counts and rows are the same; times are new measurements (or reused when the kill
    # came after the timing was stored)
    for name in ("table2.md",):
        got = (out / "tables" / name).read_text().splitlines()
        want = (uninterrupted / "tables" / name).read_text().splitlines()
        assert [row.split("|")[1:4] for row in got] == [row.split("|")[1:4] for row in want]
    from bench.evaluate import stale_files
    from bench.runfolder import RunFolder

    # a temp file the kill left is never read: it is listed as stale (the report names it; clean removes it)
    assert set(out.rglob(".*.tmp")) <= set(stale_files(RunFolder(out)))
