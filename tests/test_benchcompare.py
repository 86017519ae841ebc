"""bench.benchcompare: which benchmark medians moved between two saved pytest-benchmark runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.benchcompare import changes, main, saved_runs


def test_changes_flags_only_moves_beyond_the_threshold() -> None:
    previous = {"a": 1.0, "b": 1.0, "c": 2.0, "gone": 1.0}
    current = {"a": 1.05, "b": 1.5, "c": 1.0, "new": 1.0}
    moved = changes(previous, current, threshold=0.10)
    assert [(c.name, c.ratio) for c in moved] == [("b", 1.5), ("c", 0.5)]  # slower first; a is within 10%


def _run(path: Path, commit: str, medians: dict[str, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"commit_info": {"id": commit}, "datetime": "2026-11-21",
                                "machine_info": {"cpu": {"brand_raw": "test cpu"}},
                                "benchmarks": [{"fullname": k, "stats": {"median": v}} for k, v in medians.items()]}))


def test_main_compares_the_last_two_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    machine = tmp_path / "Linux-CPython-3.11-64bit"
    _run(machine / "0001_aaaa_x.json", "aaaa", {"t::x": 1.0, "t::y": 1.0})
    _run(machine / "0002_bbbb_x.json", "bbbb", {"t::x": 2.0, "t::y": 1.0})
    _run(machine / "0010_cccc_x.json", "cccc", {"t::x": 2.0, "t::y": 0.5})
    assert [p.name[:4] for p in saved_runs(tmp_path)] == ["0001", "0002", "0010"]
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "0010_cccc_x.json" in out and "against 0002_bbbb_x.json" in out
    assert "faster x0.50  t::y" in out and "t::x" not in out
    _run(machine / "0011_dddd_x.json", "dddd", {"t::x": 3.0, "t::y": 0.5})
    assert main([str(tmp_path), "--fail"]) == 1
    assert "SLOWER x1.50  t::x" in capsys.readouterr().out


def test_main_with_fewer_than_two_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 0
    assert "nothing to compare" in capsys.readouterr().out
