"""Overall progress of a `samuel-eval` run: one line per stage with how far along the whole run is.

The passes show their own per-item bars; this says where those sit in the run (stage k of N, elapsed time), so
a user watching a 100-item run knows how much is left. Stages are coarse: one per model (its params, generate
and time passes), then scoring, then the report.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def format_elapsed(seconds: float) -> str:
    """3723.4 -> '1:02:03'."""
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Stages:
    def __init__(self, total: int, say: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if total < 1:
            raise ValueError(f"a run has at least one stage, got {total}")
        self.total = total
        self.done = 0
        self.say = say or (lambda s: print(s, file=sys.stderr))
        self.clock = clock
        self.started = clock()

    def start(self, label: str) -> None:
        """Announce the next stage; the stages before it count as done."""
        if self.done >= self.total:
            raise ValueError(f"stage {label!r} is beyond the {self.total} announced")
        self.done += 1
        self.say(f"== stage {self.done}/{self.total}: {label} ({100 * (self.done - 1) // self.total}% done, "
                 f"{format_elapsed(self.clock() - self.started)} elapsed) ==")

    def finish(self) -> None:
        self.say(f"== done: {self.done}/{self.total} stages in {format_elapsed(self.clock() - self.started)} ==")
