"""Worker processes that never outlive the run, and SIGTERM handled as Ctrl-C is.

A ``kill PID`` (SIGTERM) ends a Python process at once, without unwinding: a ``ProcessPoolExecutor``'s workers are
left blocked on their call queue for ever (an audit found two score workers of ~500 MB each still alive after the
run had exited 143). Two guards:

- :func:`spawn_pool` starts spawned workers that ask the kernel to end them when their parent dies
  (``PR_SET_PDEATHSIG``, Linux), whatever killed it, SIGKILL included;
- workers write numba's cache one at a time (:mod:`samuel.numba_cache`);
- :func:`sigterm_as_interrupt` turns the first SIGTERM into :class:`Terminated`, a ``KeyboardInterrupt``, so that
  the cleanup written for Ctrl-C runs (pools shut down, locks released, what is finished kept) and the command
  exits 143. A second SIGTERM ends the process at once, as the default does.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

SIGTERM_EXIT = 128 + signal.SIGTERM  # 143: the shell's code for a process ended by SIGTERM
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that Ctrl-C's cleanup runs."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, the first SIGTERM raises :class:`Terminated` in the main thread (elsewhere: no change;
    Python runs signal handlers only there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM is not caught again
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def die_with_parent(parent_pid: int) -> bool:
    """Ask the kernel to send this process SIGTERM when its parent dies (Linux' ``PR_SET_PDEATHSIG``); exit now if
    the parent is already gone. False where it cannot be asked (not Linux, or the call failed)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        asked = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)
    return asked


def _worker_init(parent_pid: int, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    from samuel.numba_cache import serialize_numba_cache_writes

    die_with_parent(parent_pid)
    serialize_numba_cache_writes()  # before any kernel is compiled: workers share numba's cache with the parent
    if initializer is not None:
        initializer(*initargs)


def spawn_pool(workers: int, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()) -> Any:
    """A ``ProcessPoolExecutor`` of ``workers`` spawned processes that end with this one.

    Spawned, not forked: a child forked after the parent has run numba or torch threads can crash in librosa's
    numba kernels (a segfault in ``peak_pick`` was seen in CI), and must not inherit torch's thread pools. Call it
    from the thread that stays alive for the pool's life (the kernel's "parent" is the creating thread)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                               initargs=(os.getpid(), initializer, initargs))
