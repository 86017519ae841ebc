"""The steps x precision sweep (bench.sweep): the distances (golden), the run over a fake model whose error per
setting is known, the record read back (bad files named), and the harness pass's reuse and redo."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from baselines.base import GeneratedAudio, GenerationRequest, Generator, ParamCount, WeightsStatus
from bench.sweep import SWEEP_FORMAT, read_sweep, read_sweeps, run_sweep, sweep_record, sweep_snrs

RATE = 8_000
BASE = np.sin(np.linspace(0.0, 200.0, RATE)).astype(np.float64)[None, :]


class Knobbed(Generator):
    """Audio = BASE + an error of known size: 2^-steps from too few steps and 1e-3 from bf16 (a fixed pattern)."""

    name = "knobbed"
    display_name = "Knobbed"
    sample_rate = RATE
    conditioning = "none"
    timing_unit = "steps"

    def __init__(self, precision: str) -> None:
        super().__init__(None, precision=precision)
        self.steps = 1
        self.calls: list[int | None] = []

    def resolve_weights(self) -> WeightsStatus:
        return WeightsStatus("random", None, "knobbed: a fake")

    def _load(self) -> None:
        pass

    def _count_parameters(self) -> ParamCount:
        return ParamCount(0, {})

    def set_sampling_steps(self, steps: int) -> None:
        self.steps = steps

    def generate(self, requests: Sequence[GenerationRequest], *, max_units: int | None = None,
                 on_unit: Callable[[], None] | None = None) -> list[GeneratedAudio]:
        self.calls.append(max_units)
        error = 2.0 ** -self.steps * np.cos(np.linspace(0.0, 50.0, RATE))
        if self.options["precision"] == "bf16":
            error = error + 1e-3 * np.sign(np.sin(np.linspace(0.0, 900.0, RATE)))
        return [GeneratedAudio((BASE + error).astype(np.float32), RATE, {}) for _ in requests]


def _snr(ref: np.ndarray, other: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((ref - other) ** 2)))


def test_sweep_snrs_golden() -> None:
    ref = np.array([[1.0, -1.0, 1.0, -1.0]])
    audio = {("fp32", 2): ref + 0.1, ("fp32", 8): ref, ("bf16", 2): ref + 0.2, ("bf16", 8): ref + 0.01}
    got = sweep_snrs(audio)
    assert got[("fp32", 8)] == (None, None)  # the reference
    assert got[("fp32", 2)] == (None, pytest.approx(20.0))  # 10 log10(1 / 0.01)
    assert got[("bf16", 2)] == (pytest.approx(_snr(ref + 0.1, ref + 0.2)), pytest.approx(10 * np.log10(1 / 0.04)))
    assert got[("bf16", 8)] == (pytest.approx(40.0), pytest.approx(40.0))


def test_run_sweep_over_a_model_with_known_errors() -> None:
    made: list[Knobbed] = []

    def make(precision: str) -> Knobbed:
        made.append(Knobbed(precision))
        return made[-1]

    request = GenerationRequest("item-1", 7, 1.0, "")
    points = run_sweep(make, request, steps=[8, 2, 4], precisions=("fp32", "bf16"), log=lambda s: None)
    assert [(p.precision, p.steps) for p in points] == [("fp32", 2), ("fp32", 4), ("fp32", 8), ("bf16", 2),
                                                         ("bf16", 4), ("bf16", 8)]
    assert [m.calls for m in made] == [[1, None, None, None]] * 2  # one warm-up step, then one run per step count
    by = {(p.precision, p.steps): p for p in points}
    fp32_8 = Knobbed("fp32")
    fp32_8.steps = 8
    exact = fp32_8.generate([request])[0].audio
    for steps in (2, 4):
        other = Knobbed("fp32")
        other.steps = steps
        assert by[("fp32", steps)].snr_vs_fp32_most_steps_db == pytest.approx(
            _snr(exact.astype(np.float64), other.generate([request])[0].audio), rel=1e-6)
    # fewer steps cost more; bf16 costs about the same at every step count against fp32 at the same steps
    assert by[("fp32", 2)].snr_vs_fp32_most_steps_db < by[("fp32", 4)].snr_vs_fp32_most_steps_db
    same = [by[("bf16", s)].snr_vs_fp32_same_steps_db for s in (2, 4, 8)]
    assert max(same) - min(same) < 0.5 and all(50 < v < 60 for v in same)
    assert all(p.seconds > 0 and p.audio_s == 1.0 for p in points)


def _record(points) -> dict:
    request = GenerationRequest("item-1", 7, 1.0, "")
    return sweep_record("knobbed", {"name": "knobbed"}, points, request=request, steps=[2, 4],
                        precisions=["fp32", "bf16"], weights="random", provenance={"cpu": "test"})


def test_a_record_reads_back_and_bad_files_are_named(tmp_path: Path) -> None:
    points = run_sweep(Knobbed, GenerationRequest("item-1", 7, 1.0, ""), steps=[2, 4], log=lambda s: None)
    record = _record(points)
    assert record["format"] == SWEEP_FORMAT and "RANDOM weights" in record["distance"]
    good = tmp_path / "sweep" / "knobbed.json"
    good.parent.mkdir()
    good.write_text(json.dumps(record))
    assert read_sweep(good)["points"] == json.loads(json.dumps(record["points"]))
    torn = tmp_path / "sweep" / "torn.json"
    torn.write_text(json.dumps(record)[:-20])
    other = tmp_path / "sweep" / "other.json"
    other.write_text(json.dumps({**record, "format": "something-else/1"}))
    negative = tmp_path / "sweep" / "negative.json"
    negative.write_text(json.dumps({**record, "points": [{**record["points"][0], "seconds": -1.0}]}))
    records, problems = read_sweeps(tmp_path / "sweep")
    assert [r["model"] for r in records] == ["knobbed"]
    assert len(problems) == 3
    assert any("negative.json: point 0: seconds must be a positive number" in p for p in problems)
    assert any("other.json: not a sweep record" in p for p in problems)
    assert any("torn.json: unreadable sweep record" in p for p in problems)
    assert read_sweeps(tmp_path / "absent") == ([], [])


def test_the_report_plots_the_sweep_and_names_an_unusable_record(tmp_path: Path) -> None:
    from reports.figures import sweep_figure
    from reports.html import _figures_section

    points = run_sweep(Knobbed, GenerationRequest("item-1", 7, 1.0, ""), steps=[2, 4], log=lambda s: None)
    figure = sweep_figure([json.loads(json.dumps(_record(points)))], {"knobbed": "Knobbed"})
    assert figure is not None and figure.key == "sweep" and figure.png.startswith(b"\x89PNG")
    assert "RANDOM weights measure the arithmetic" in figure.caption
    assert "bf16 x 2 steps" in figure.caption and "(the reference)" in figure.caption
    assert sweep_figure([], {}) is None
    html = _figures_section([figure], ["sweep/torn.json: unreadable sweep record"])
    assert 'data-figure="sweep"' in html and "Sweep record not used: sweep/torn.json" in html


def test_bf16_is_not_swept_on_a_cpu_without_onednn_bf16_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """An AVX2-only CPU would sweep bf16 on reference loops (one tiny clip ran over 15 minutes): left out, with why,
    which the record keeps; elsewhere, and on a GPU, every asked precision is swept."""
    import samuel.generate
    from bench.sweep import sweepable_precisions

    why = "oneDNN has no bf16 kernels on this CPU (torch sees AVX2; ...)"
    monkeypatch.setattr(samuel.generate, "cpu_bf16_kernels_missing", lambda: why)
    assert sweepable_precisions(("fp32", "bf16"), "cpu") == (["fp32"], {"bf16": why})
    assert sweepable_precisions(("fp32", "bf16"), "cuda:0") == (["fp32", "bf16"], {})
    assert sweepable_precisions(("fp32",), "cpu") == (["fp32"], {})
    monkeypatch.setattr(samuel.generate, "cpu_bf16_kernels_missing", lambda: None)
    assert sweepable_precisions(("fp32", "bf16"), "cpu") == (["fp32", "bf16"], {})
