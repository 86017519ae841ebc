"""The timing's contention flag (bench.timing): the arithmetic (golden), /proc/stat read back (golden), a known load
detected by the real counters, and the flag carried to the log, results, Table II and the next run's re-timing."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_generators import NoiseGenerator

from baselines import registry
from baselines.base import WeightsChoice
from bench import timing
from bench.evaluate import EvalConfig, evaluate
from bench.manifest import synthetic_manifest
from bench.results import RunResults
from bench.timing import BUSY_CORES, busy_note, contention_cores, machine_cpu_seconds, time_model, watch_cpu_load

FAKE = "fake-noise"
if FAKE not in registry.names():
    registry.register(FAKE, "fake_generators:NoiseGenerator")

STAT = """cpu  1000 50 300 9000 20 5 15 40 0 0
cpu0 500 25 150 4500 10 3 7 20 0 0
cpu1 500 25 150 4500 10 2 8 20 0 0
intr 12345
"""


def test_contention_golden() -> None:
    # 2 cores, this process on 1 thread: another process's one busy core fits on the spare core
    assert contention_cores(3.0, 1.0, 0.0, 2.0, 2, 1) == {"other_cores": 1.0, "steal_cores": 0.0,
                                                          "contention_cores": 0.0}
    # ... on 2 threads it competes: one core's worth
    assert contention_cores(3.0, 1.0, 0.0, 2.0, 2, 2)["contention_cores"] == 1.0
    # steal always competes; other work below the spare cores does not
    assert contention_cores(1.5, 1.0, 0.4, 2.0, 4, 2) == {"other_cores": 0.25, "steal_cores": 0.2,
                                                          "contention_cores": 0.2}
    # counters read a tick apart can put our own time above the machine's: never negative
    assert contention_cores(0.99, 1.0, 0.0, 1.0, 2, 2)["other_cores"] == 0.0
    with pytest.raises(ValueError):
        contention_cores(1.0, 1.0, 0.0, 0.0, 2, 2)


def test_proc_stat_read_back() -> None:
    hz = os.sysconf("SC_CLK_TCK")
    busy, steal, cpus = machine_cpu_seconds(STAT)  # type: ignore[misc]
    assert busy == pytest.approx((1000 + 50 + 300 + 5 + 15) / hz) and steal == pytest.approx(40 / hz) and cpus == 2
    assert machine_cpu_seconds("intr 1 2 3\n") is None and machine_cpu_seconds("cpu a b c\n") is None
    old = machine_cpu_seconds("cpu  1000 50 300 9000 20 5 15\ncpu0 1 1 1 1 1 1 1\n")  # no steal column
    assert old is not None and old[1] == 0.0 and old[2] == 1
    if Path("/proc/stat").exists():
        assert machine_cpu_seconds() is not None


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="Linux CPU counters")
def test_a_known_competing_load_is_detected_by_the_real_counters() -> None:
    # a process spinning one core beside a span that claims every core: about one core of contention
    burner = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 8\nwhile time.time() < end: "
                               "pass"])
    try:
        time.sleep(0.3)  # the burner is running
        with watch_cpu_load(os.cpu_count() or 1) as load:
            _spin(1.5)
    finally:
        burner.kill()
        burner.wait()
    assert load["wall_s"] >= 1.5 and load["contention_cores"] > 0.5, load


def test_spans_too_short_to_judge_are_left_unjudged() -> None:
    with watch_cpu_load(1) as load:
        _spin(0.05)
    assert load == {}


@contextlib.contextmanager
def _fake_load(contention: float) -> Iterator[dict[str, float]]:
    yield {"other_cores": contention, "steal_cores": 0.0, "contention_cores": contention, "wall_s": 2.0,
           "cores": 2, "threads": 2}


def test_a_busy_item_flags_the_timing_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads = iter([0.0, 0.9, 0.05])
    monkeypatch.setattr(timing, "watch_cpu_load", lambda threads: _fake_load(next(loads)))
    m = synthetic_manifest(tmp_path, 3, duration_s=1.0)
    logged: list[str] = []
    res = time_model(NoiseGenerator(WeightsChoice()), [i.request() for i in m.items], mode="full",
                     log=logged.append)
    assert [i.cpu_load["contention_cores"] for i in res.items] == [0.0, 0.9, 0.05]
    assert "1 of 3 items were timed while other work competed for the CPU (up to 0.90 of 2 cores, item syn-001" \
        in res.setup["busy"]
    assert any("2/3" in line and "BUSY: other work took 0.90 cores" in line for line in logged)
    assert busy_note(res.items[:1]) is None and 0.05 < BUSY_CORES < 0.9


def test_a_busy_timing_is_shown_in_table2_and_re_timed_by_the_next_run(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from reports.table2 import table2
    from reports.tables import to_markdown

    out = tmp_path / "out"
    cfg = EvalConfig(out=out, models=(FAKE,), n=2, duration_s=1.0, passes=("params", "time"), no_progress=True)
    monkeypatch.setattr(timing, "watch_cpu_load", lambda threads: _fake_load(0.9))
    first = evaluate(cfg, log=lambda s: None)
    results = RunResults.from_json(first.results, source=out / "results.json")
    rendered = to_markdown(table2(results))
    assert "(BUSY machine)" in rendered and "Fake noise, BUSY machine: 2 of 2 items were timed" in rendered
    from reports.figures import time_vs_params_figure

    figure = time_vs_params_figure(results)
    assert figure is not None and "Fake noise [timed on a BUSY machine: 2 of 2 items" in figure.caption
    monkeypatch.setattr(timing, "watch_cpu_load", lambda threads: _fake_load(0.0))
    logged: list[str] = []
    second = evaluate(cfg, log=logged.append)
    assert any("was timed on a busy machine (2 of 2 items were timed while other work" in x and "re-timed" in x
               for x in logged), logged
    again = RunResults.from_json(second.results, source=out / "results.json")
    assert "BUSY" not in to_markdown(table2(again))
