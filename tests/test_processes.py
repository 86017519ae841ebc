"""Worker processes end with their parent, and SIGTERM runs Ctrl-C's cleanup (samuel.processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from samuel.processes import SIGTERM_EXIT, Terminated, die_with_parent, sigterm_as_interrupt

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (dead, not yet reaped by init) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pids: list[int], seconds: float = 20.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def _start(script: str, folder: Path) -> tuple[subprocess.Popen[str], list[int]]:
    """Run ``script`` in a fresh interpreter (from a file: spawned workers import its functions from there); it
    prints its workers' pids on one line, then blocks."""
    path = folder / "parent.py"
    path.write_text(textwrap.dedent(script))
    proc = subprocess.Popen([sys.executable, str(path)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip(), proc.stderr.read() if proc.stderr else "no output"
    return proc, [int(p) for p in line.split()]


POOL_SCRIPT = """
    import os, sys, time
    from samuel.processes import spawn_pool

    def pid(_):
        time.sleep(0.3)  # both workers take a task
        return os.getpid()

    if __name__ == "__main__":
        pool = spawn_pool(2)
        print(*sorted(set(pool.map(pid, range(4)))), flush=True)
        time.sleep(120)
"""


def test_workers_end_when_their_parent_is_killed(tmp_path):
    """SIGKILL leaves Python no chance to shut its pool down: the kernel ends the idle workers
    (a plain ProcessPoolExecutor's stay blocked on their queue for ever)."""
    proc, workers = _start(POOL_SCRIPT, tmp_path)
    assert workers and all(_alive(p) for p in workers)
    proc.kill()
    proc.wait(timeout=10)
    assert _wait_gone(workers) == []


CLI_SCRIPT = """
    import os, sys, time
    import reports.cli as cli
    from samuel.processes import spawn_pool

    def busy(seconds):
        time.sleep(seconds)
        return os.getpid()

    def command(args, args_list):  # stands in for a score pass: a pool with work in flight
        with spawn_pool(2) as pool:
            pids = sorted(set(pool.map(busy, [0.3, 0.3])))
            future = pool.submit(busy, 1.0)
            print(*pids, flush=True)
            future.result()
            time.sleep(120)
        return 0

    if __name__ == "__main__":
        cli._command = command
        sys.exit(cli.main(["params", "--models", "samuel"]))
"""


def test_samuel_eval_exits_143_on_sigterm_and_its_workers_with_it(tmp_path):
    proc, workers = _start(CLI_SCRIPT, tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == SIGTERM_EXIT == 143
    assert "terminated (SIGTERM)" in err and "rerun the same command to resume" in err
    assert "Traceback" not in err
    assert _wait_gone(workers) == []


def test_sigterm_raises_terminated_once_then_restores_the_handler():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler runs at the next bytecode; never reached
    assert signal.getsignal(signal.SIGTERM) == before
    assert issubclass(Terminated, KeyboardInterrupt)  # every `except KeyboardInterrupt` cleanup runs for it


def test_die_with_parent_asks_the_kernel():
    assert die_with_parent(os.getppid()) is True
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    got = ctypes.c_int(-1)
    assert libc.prctl(2, ctypes.byref(got), 0, 0, 0) == 0  # PR_GET_PDEATHSIG
    assert got.value == signal.SIGTERM
    libc.prctl(1, 0, 0, 0, 0)  # this pytest process: back to no death signal
