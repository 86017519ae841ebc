"""The report's figures: robust z golden numbers, outlier finding, and that each figure is a valid, deterministic
PNG that labels random-weight models RANDOM. Inputs are small synthetic dicts built here (no run folder needed)."""

from __future__ import annotations

import io
import math

import matplotlib.image as mpimg
import numpy as np
import pytest

from bench.results import RunResults
from bench.stats import OUTLIER_Z, robust_z
from reports import figures
from reports.figures import (
    ReportFigure,
    distributions_figure,
    outliers,
    outliers_figure,
    report_figures,
    time_vs_params_figure,
)

METRICS = ("adherence.chroma_agreement", "signal.loudness_lufs", "aesthetics.PQ")
BOOTSTRAP = "percentile bootstrap of the mean, 1000 resamples, seed 0"


def make_rows(models: dict[str, str], n: int = 6, plant: tuple[str, str, int, float] | None = None) -> list[dict]:
    """Per-clip rows for ``models`` ({name: weights kind}) with smooth, spread values (no outliers), plus rows of a
    metric the registry does not list (the shuffled-pairs anchor group of a scores.json from before format 2);
    ``plant`` = (model, metric, clip index, value) overrides one value."""
    rows = []
    for k, (model, weights) in enumerate(models.items()):
        for metric_index, metric in enumerate((*METRICS, "adherence_shuffled.chroma_agreement")):
            for i in range(n):
                value = 0.1 * k + metric_index + 0.05 * i
                if plant and (model, metric, i) == plant[:3]:
                    value = plant[3]
                rows.append({"model": model, "item_id": f"item-{i:03d}", "sample_id": f"s{k}{i}", "weights": weights,
                             "metric": metric, "value": value})
    return rows


def make_scores(rows: list[dict]) -> dict:
    models: dict[str, dict] = {}
    for row in rows:
        entry = models.setdefault(row["model"], {"weights": row["weights"], "per_clip": {}, "values": {}})
        entry["values"].setdefault(row["metric"], []).append(row["value"])
    for entry in models.values():
        for metric, values in entry.pop("values").items():
            mean = float(np.mean(values))
            entry["per_clip"][metric] = {"value": mean, "ci_low": mean - 0.1, "ci_high": mean + 0.1, "n": len(values),
                                         "method": BOOTSTRAP}
    return {"models": models, "anchors": {"shuffled_pairs": {"chroma_agreement": {"value": 0.3}}}}


def make_results(models: dict[str, str], n: int = 4) -> RunResults:
    entries = {}
    for k, (name, kind) in enumerate(models.items()):
        entries[name] = {
            "spec": name, "status": "run",
            "describe": {"display_name": name.upper()},
            "weights": {"kind": kind},
            "params": {"params_total": 10 ** (6 + k)} if kind != "files" else None,
            "timing": {"status": "measured", "label": "measured in full", "setup": {"device": "cpu", "threads": 2},
                       "items": [{"item_id": f"item-{i:03d}", "seconds": 2.0 + k, "rtf": (2.0 + k) / 5.0,
                                  "audio_s": 5.0} for i in range(n)],
                       "seconds": {"value": 2.0 + k, "ci_low": math.nan, "ci_high": math.nan, "n": n,
                                   "method": "order statistics: too few"}}
            if kind != "files" else {"status": "not measured"},
        }
    data = {"format": "samuel-bench-results/2", "config": {}, "provenance": {}, "manifest": {"rejected": []},
            "models": entries}
    return RunResults.from_json(data, source="make_results")


MODELS = {"reference": "files", "musicgen-small": "pretrained", "samuel": "random"}
DISPLAY = {"reference": "Reference (ground truth)", "musicgen-small": "MusicGen small", "samuel": "SAMUeL"}


def decode(fig: ReportFigure) -> np.ndarray:
    assert fig.png.startswith(b"\x89PNG\r\n\x1a\n")
    return mpimg.imread(io.BytesIO(fig.png), format="png")


def tick_labels_of(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every tick label the figures set, to check the text without reading pixels."""
    seen: list[str] = []
    original = figures._tick_label

    def spy(*args, **kwargs):
        label = original(*args, **kwargs)
        seen.append(label)
        return label

    monkeypatch.setattr(figures, "_tick_label", spy)
    return seen


# ---- robust z ----


def test_robust_z_golden_numbers() -> None:
    # median 3, |x - 3| = [2, 1, 0, 1, 97] -> MAD 1, scale 1.4826
    z = robust_z([1, 2, 3, 4, 100])
    np.testing.assert_allclose(z, [-2 / 1.4826, -1 / 1.4826, 0, 1 / 1.4826, 97 / 1.4826])
    assert z[-1] > OUTLIER_Z and np.all(np.abs(z[:-1]) < OUTLIER_Z)


def test_robust_z_falls_back_to_mean_absolute_deviation_when_mad_is_zero() -> None:
    # median 5, |x - 5| = [0, 0, 0, 0, 4] -> MAD 0; mean AD 0.8, scale 1.2533 * 0.8
    np.testing.assert_allclose(robust_z([5, 5, 5, 5, 9]), [0, 0, 0, 0, 4 / (1.2533 * 0.8)])


def test_robust_z_is_zero_for_constant_values_and_nan_for_non_finite() -> None:
    np.testing.assert_array_equal(robust_z([2.0, 2.0, 2.0]), [0.0, 0.0, 0.0])
    z = robust_z([1.0, math.nan, 3.0, 2.0])
    assert math.isnan(z[1]) and np.isfinite(z[[0, 2, 3]]).all()
    assert robust_z([]).shape == (0,)


# ---- outliers ----


def test_outliers_finds_the_planted_clip_and_no_other() -> None:
    rows = make_rows(MODELS, n=8, plant=("musicgen-small", "signal.loudness_lufs", 3, 40.0))
    found = outliers(rows)
    assert len(found) == 1
    hit = found[0]
    assert (hit["model"], hit["metric"], hit["item_id"], hit["value"]) == ("musicgen-small", "signal.loudness_lufs",
                                                                           "item-003", 40.0)
    assert hit["z"] > OUTLIER_Z
    assert set(hit) >= {"model", "item_id", "sample_id", "metric", "value", "z"}


def test_outliers_sorted_by_size_and_ignore_unregistered_metrics() -> None:
    rows = make_rows(MODELS, n=8, plant=("samuel", "aesthetics.PQ", 0, -50.0))
    anchor_clip = ("reference", "adherence_shuffled.chroma_agreement", "item-001")
    rows = [r | {"value": 99.0} if (r["model"], r["metric"], r["item_id"]) == anchor_clip else r for r in rows]
    rows.append({"model": "reference", "item_id": "x", "sample_id": "x", "weights": "files",
                 "metric": "signal.loudness_lufs", "value": 500.0})
    found = outliers(rows)
    assert [f["metric"] for f in found] == ["signal.loudness_lufs", "aesthetics.PQ"]
    assert abs(found[0]["z"]) >= abs(found[1]["z"])
    assert outliers([]) == []


# ---- figures ----


def test_distributions_figure_is_a_png_that_labels_random_models(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = tick_labels_of(monkeypatch)
    rows = make_rows(MODELS)
    fig = distributions_figure(rows, make_scores(rows), DISPLAY, {"samuel"})
    assert fig is not None and fig.key == "distributions"
    height, width = decode(fig).shape[:2]
    assert 400 <= width <= 1100 and 200 <= height <= 2000
    assert "SAMUeL\n[RANDOM]\nn=6" in seen
    assert all("RANDOM" not in s for s in seen if not s.startswith("SAMUeL"))
    assert "RANDOM" in fig.caption and "SAMUeL" in fig.caption and BOOTSTRAP in fig.caption
    assert "adherence_shuffled" not in fig.alt
    # panels in the registry's figure order (bench.scoring.registry: figure_rank), then by name
    assert "metrics (adherence.chroma_agreement, aesthetics.PQ, signal.loudness_lufs)" in fig.alt


def test_an_interval_that_excludes_its_point_is_drawn_as_given() -> None:
    """A percentile interval from few resamples can miss its mean: matplotlib refused the negative error length
    ("'yerr' must not contain negative values") and the report failed."""
    for low, high in ((0.6, 0.9), (0.9, 0.6)):
        centre, ((below,), (above,)) = figures.interval_bar(low, high)
        assert (centre - below, centre + above) == pytest.approx((0.6, 0.9))
    rows = make_rows({"reference": "files"})
    scores = make_scores(rows)
    for estimate in scores["models"]["reference"]["per_clip"].values():  # above the mean, and below it
        estimate["ci_low"], estimate["ci_high"] = estimate["value"] + 0.1, estimate["value"] + 0.2
    scores["models"]["reference"]["per_clip"]["signal.loudness_lufs"].update(ci_low=-99.0, ci_high=-98.0)
    assert distributions_figure(rows, scores, DISPLAY, set()) is not None
    results = make_results({"reference": "pretrained"}, n=6)
    seconds = results.models["reference"].timing.seconds
    object.__setattr__(seconds, "ci_low", 2.5)  # above the median of 2 s
    object.__setattr__(seconds, "ci_high", 3.0)
    assert time_vs_params_figure(results) is not None


def test_time_vs_params_figure_plots_measured_models_and_says_random() -> None:
    fig = time_vs_params_figure(make_results(MODELS))
    assert fig is not None and fig.key == "time-vs-params"
    height, width = decode(fig).shape[:2]
    assert 400 <= width <= 1100 and 200 <= height <= 1000
    assert "SAMUEL [RANDOM weights]" in fig.caption and "MUSICGEN-SMALL:" in fig.caption
    assert "REFERENCE" not in fig.caption  # files: no params, no timing
    assert "paper" in fig.caption


def test_outliers_figure_is_a_png_that_labels_random_models(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = tick_labels_of(monkeypatch)
    rows = make_rows(MODELS, plant=("samuel", "aesthetics.PQ", 2, 1e4))  # forces the symlog axis
    fig = outliers_figure(rows, DISPLAY, {"samuel"})
    assert fig is not None and fig.key == "outliers"
    height, width = decode(fig).shape[:2]
    assert 400 <= width <= 1100 and 200 <= height <= 2000
    assert any(s.startswith("SAMUeL\n[RANDOM]") for s in seen)
    assert "RANDOM" in fig.caption and "1 clip value beyond" in fig.caption


@pytest.fixture(scope="module")
def standard() -> tuple[tuple[RunResults, dict, list[dict]], list[ReportFigure]]:
    """The three figures for one small run, rendered once for the tests that only read them."""
    rows = make_rows(MODELS, plant=("samuel", "aesthetics.PQ", 2, 50.0))
    inputs = (make_results(MODELS), make_scores(rows), rows)
    return inputs, report_figures(*inputs)


def test_report_figures_in_a_fixed_order(standard) -> None:
    _, found = standard
    assert [f.key for f in found] == ["distributions", "time-vs-params", "outliers"]
    assert all(f.title and f.alt and f.caption and f.png.startswith(b"\x89PNG") for f in found)


def test_same_input_gives_the_same_bytes(standard) -> None:
    (results, scores, rows), found = standard
    again = report_figures(results, scores, list(reversed(rows)))  # row order must not matter either
    assert [f.png for f in again] == [f.png for f in found]


def test_figures_leave_no_pyplot_figures_or_style_behind(standard) -> None:
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    before = dict(mpl.rcParams)
    time_vs_params_figure(standard[0][0])
    assert plt.get_fignums() == []
    assert dict(mpl.rcParams) == before


def test_empty_inputs_give_none() -> None:
    assert distributions_figure([], {}, {}, set()) is None
    assert outliers_figure([], {}, set()) is None
    assert time_vs_params_figure(None) is None
    assert time_vs_params_figure(make_results({"reference": "files"})) is None
    assert report_figures(None, {}, []) == []


def test_report_figures_takes_random_from_the_rows_too() -> None:
    rows = make_rows(MODELS)  # results and scores say nothing about weights here
    found = report_figures(None, {}, rows)
    assert [f.key for f in found] == ["distributions", "outliers"]
    assert all("RANDOM weights: samuel ran" in f.caption for f in found)


def test_outliers_need_five_clips_per_model_and_metric() -> None:
    few = make_rows({"reference": "files"}, n=4, plant=("reference", METRICS[0], 0, 1e6))
    assert outliers(few) == [] and outliers_figure(few, DISPLAY, set()) is None
    assert len(outliers(make_rows({"reference": "files"}, n=5, plant=("reference", METRICS[0], 0, 1e6)))) == 1


def test_hostile_model_names_do_not_crash() -> None:
    names = {"<script>alert(1)</script>": "random", "a $x^2$ b $": "pretrained", "ünïcode — name": "files"}
    rows = make_rows(names, n=5)
    found = report_figures(make_results(names), make_scores(rows), rows)
    assert [f.key for f in found] == ["distributions", "time-vs-params", "outliers"]
    assert all(f.png.startswith(b"\x89PNG") for f in found)
    assert "<SCRIPT>ALERT(1)</SCRIPT>" in found[0].caption  # plain text; escaping is the HTML writer's job
