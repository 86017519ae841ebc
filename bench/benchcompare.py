"""Regressions between two saved pytest-benchmark runs: `python -m bench.benchcompare STORAGE [--threshold 10]`.

`nox -s bench` runs this after the suites. pytest-benchmark's own comparison prints both runs side by side; this
names the benchmarks whose median moved by more than the threshold, slower first, as ratios (current/previous),
and which runs were compared (commit, date, machine). It fails (exit 1) only with ``--fail``: on a shared 2-core VM
sub-millisecond kernels move by up to ~50% between identical runs (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Change:
    name: str
    previous_s: float
    current_s: float

    @property
    def ratio(self) -> float:
        return self.current_s / self.previous_s


def median_by_name(run: dict[str, Any]) -> dict[str, float]:
    return {b["fullname"]: float(b["stats"]["median"]) for b in run.get("benchmarks", [])}


def changes(previous: dict[str, float], current: dict[str, float], threshold: float) -> list[Change]:
    """Benchmarks in both runs whose median ratio lies outside [1/(1+t), 1+t]; slowest regression first."""
    out = [Change(name, previous[name], current[name]) for name in sorted(set(previous) & set(current))
           if previous[name] > 0 and current[name] > 0]
    moved = [c for c in out if c.ratio > 1 + threshold or c.ratio < 1 / (1 + threshold)]
    return sorted(moved, key=lambda c: -c.ratio)


def saved_runs(storage: Path) -> list[Path]:
    """Saved runs of this machine type's folders, oldest first (pytest-benchmark numbers them NNNN_...)."""
    return sorted(storage.glob("*/[0-9][0-9][0-9][0-9]_*.json"), key=lambda p: (p.name[:4], p.parent.name))


def _describe(path: Path, run: dict[str, Any]) -> str:
    commit = (run.get("commit_info") or {}).get("id", "?")[:8]
    cpu = (run.get("machine_info") or {}).get("cpu", {}).get("brand_raw", "?")
    return f"{path.name} (commit {commit}, {run.get('datetime', '?')}, {cpu})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.benchcompare", description=__doc__.split("\n\n")[0])
    p.add_argument("storage", type=Path)
    p.add_argument("--threshold", type=float, default=10.0, help="percent change of the median to report")
    p.add_argument("--fail", action="store_true", help="exit 1 when any benchmark got slower by the threshold")
    args = p.parse_args(argv)
    runs = saved_runs(args.storage)
    if len(runs) < 2:
        print(f"benchcompare: {len(runs)} saved run(s) under {args.storage}; nothing to compare yet")
        return 0
    (prev_path, cur_path) = runs[-2:]
    prev, cur = (json.loads(path.read_text()) for path in (prev_path, cur_path))
    moved = changes(median_by_name(prev), median_by_name(cur), args.threshold / 100)
    print(f"benchcompare: {_describe(cur_path, cur)}\n  against {_describe(prev_path, prev)}")
    if not moved:
        print(f"  no median moved by more than {args.threshold:g}%")
    for c in moved:
        word = "SLOWER" if c.ratio > 1 else "faster"
        print(f"  {word} x{c.ratio:.2f}  {c.name}: {c.previous_s:.4g} s -> {c.current_s:.4g} s")
    return 1 if args.fail and any(c.ratio > 1 for c in moved) else 0


if __name__ == "__main__":
    sys.exit(main())
