"""Per-clip groups in worker processes (bench.scoring.workers): the same values, anchors, records and errors as
the serial pass; one bad clip is reported and the rest scored; how many processes a pass gets.
"""

from __future__ import annotations

import json
import shutil

import pytest
from test_score import reference_samples

from bench.manifest import synthetic_manifest
from bench.runfolder import RunFolder
from bench.scoring import ScoreConfig, score
from bench.scoring import workers as wk

N_ITEMS = 4
DURATION_S = 3.0


def _cfg(workers: int | None, **kw: object) -> ScoreConfig:
    return ScoreConfig(groups=("signal", "adherence"), baseline="reference", resamples=100, score_workers=workers,
                       **kw)  # type: ignore[arg-type]


def _run(root, manifest, workers: int | None, bad_item: int | None = None, **kw: object
         ) -> tuple[dict, list[str], RunFolder]:
    """reference + 'misplaced' (another item's true accompaniment; with ``bad_item``, that item's file is not
    audio), scored with ``workers``; (scores.json, log lines, run folder)."""
    run = RunFolder(root)
    samples = {"reference": reference_samples(run, manifest),
               "misplaced": reference_samples(run, manifest, "misplaced", shift=1, weights="pretrained")}
    if bad_item is not None:
        samples["misplaced"][bad_item].audio.write_bytes(b"not audio at all")
    lines: list[str] = []
    data = score(run, manifest, _cfg(workers, **kw), samples, log=lines.append, progress=False)
    return data, lines, run


def _values(data: dict) -> dict:
    return {m: [(c["item_id"], c["values"]) for c in e["clips"]] for m, e in data["models"].items()}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return synthetic_manifest(tmp_path_factory.mktemp("inputs"), N_ITEMS, duration_s=DURATION_S)


def test_workers_give_the_serial_values_anchors_and_records(tmp_path, manifest) -> None:
    serial, serial_log, serial_run = _run(tmp_path / "serial", manifest, workers=1)
    batch, batch_log, batch_run = _run(tmp_path / "batch", manifest, workers=2)
    assert any("in 2 worker processes" in line for line in batch_log)
    assert not any("worker processes" in line for line in serial_log)
    assert _values(batch) == _values(serial)  # exactly: the same code, one BLAS and one ONNX thread each
    assert batch["anchors"] == serial["anchors"]
    for model in ("reference", "misplaced"):
        assert batch["models"][model]["per_clip"] == serial["models"][model]["per_clip"]
        assert batch["models"][model]["errors"] == serial["models"][model]["errors"] == []
    # the clip records hold the same entries (keys and values), so either pass resumes the other's run
    for record in sorted((serial_run.root / "scores").rglob("*.json")):
        twin = batch_run.root / record.relative_to(serial_run.root)
        assert json.loads(twin.read_text())["groups"] == json.loads(record.read_text())["groups"]
        assert json.loads(twin.read_text())["anchors"] == json.loads(record.read_text())["anchors"]
    # both computed every vocal's features once, in their own cache
    assert len(list((batch_run.root / "cache" / "vocal-features").rglob("*.npz"))) == N_ITEMS


def test_the_mix_view_in_workers_is_the_serial_mix_view(tmp_path, manifest) -> None:
    serial, _, _ = _run(tmp_path / "serial", manifest, workers=1, score_on="both")
    batch, lines, _ = _run(tmp_path / "batch", manifest, workers=2, score_on="both")
    assert sum("in 2 worker processes" in line for line in lines) == 1  # one pool for both views
    assert _values(batch["mix"]) == _values(serial["mix"]) and _values(batch) == _values(serial)
    assert any("signal.loudness_lufs" in c["values"] for c in batch["mix"]["models"]["misplaced"]["clips"])


def test_a_rerun_with_workers_computes_nothing(tmp_path, manifest) -> None:
    first, _, run = _run(tmp_path / "run", manifest, workers=2)
    samples = {"reference": reference_samples(run, manifest),
               "misplaced": reference_samples(run, manifest, "misplaced", shift=1, weights="pretrained")}
    lines: list[str] = []
    again = score(run, manifest, _cfg(2), samples, log=lines.append, progress=False)
    assert not any("worker processes" in line for line in lines)  # every record was there: no pool started
    assert _values(again) == _values(first) and again["redone"] == []


def test_one_bad_clip_is_reported_and_the_rest_scored_as_the_serial_pass_does(tmp_path, manifest) -> None:
    serial, _, serial_run = _run(tmp_path / "run", manifest, workers=1, bad_item=2)
    shutil.rmtree(serial_run.root / "scores")  # the same folder again (the error names the file), nothing stored
    batch, lines, _ = _run(tmp_path / "run", manifest, workers=2, bad_item=2)
    assert any("in 2 worker processes" in line for line in lines)
    errors = batch["models"]["misplaced"]["errors"]
    assert errors == serial["models"]["misplaced"]["errors"]
    assert {e["group"] for e in errors} == {"signal", "adherence"} and {e["item_id"] for e in errors} == {"syn-002"}
    assert all("not audio" in e["message"] or "Error" in e["message"] for e in errors)
    assert len(batch["models"]["misplaced"]["clips"]) == N_ITEMS  # the clip is listed, without values
    assert _values(batch) == _values(serial)
    assert batch["models"]["reference"]["errors"] == []


def test_a_vocal_that_cannot_be_read_fails_its_clips_only(tmp_path) -> None:
    manifest = synthetic_manifest(tmp_path / "inputs", N_ITEMS, duration_s=DURATION_S)
    run = RunFolder(tmp_path / "run")
    samples = {"reference": reference_samples(run, manifest)}
    broken = manifest.items[1]
    with open(broken.vocal, "wb") as fh:
        fh.write(b"RIFF, but not really")
    results = {}
    for workers in (1, 2):
        shutil.rmtree(run.root / "scores", ignore_errors=True)
        results[workers] = score(run, manifest, _cfg(workers), samples, log=lambda _: None, progress=False)
    errors = results[2]["models"]["reference"]["errors"]
    assert errors == results[1]["models"]["reference"]["errors"]
    assert errors and all(e["group"].startswith("adherence") for e in errors)
    assert {e["item_id"] for e in errors} >= {broken.item_id}
    signal = [c["values"].get("signal.loudness_lufs") for c in results[2]["models"]["reference"]["clips"]]
    assert all(v is not None for v in signal)  # the clips themselves were fine


def test_how_many_processes() -> None:
    assert wk.worker_count(None, jobs=1, audio_s=1e6) == 1  # one job: nothing to share
    assert wk.worker_count(None, jobs=50, audio_s=wk.MIN_PARALLEL_AUDIO_S - 1) == 1  # spawning would cost more
    assert wk.worker_count(None, jobs=50, audio_s=1e4) == min(wk.machine_workers(), 50)
    assert wk.worker_count(None, jobs=2, audio_s=1e4) == min(wk.machine_workers(), 2)
    assert wk.worker_count(3, jobs=50, audio_s=1.0) == 3  # asked for: whatever the audio
    assert wk.worker_count(8, jobs=2, audio_s=1.0) == 2  # never more than the jobs
    assert wk.worker_count(1, jobs=50, audio_s=1e4) == 1
    with pytest.raises(ValueError, match="score_workers"):
        ScoreConfig(score_workers=0)


def test_a_worker_prints_its_warnings_in_the_command_lines_format(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under samuel-eval the workers' warnings (an 8 kHz vocal read in a worker) came in Python's two-line form with
    the source line, while the parent's were one line."""
    import warnings

    import threadpoolctl

    from samuel.console import prints_one_line_warnings

    monkeypatch.setattr(warnings, "formatwarning", lambda *args, **kwargs: "Python's own form")  # restored after
    monkeypatch.setattr(threadpoolctl, "threadpool_limits", lambda limits: None)  # this process keeps its threads
    monkeypatch.setattr(wk, "_WORKER", {})
    wk._init({}, None, None, ScoreConfig(groups=("signal",)), ["signal"], False)
    assert not prints_one_line_warnings() and set(wk._WORKER["groups"]) == {"signal"}
    wk._init({}, None, None, ScoreConfig(groups=("signal",)), ["signal"], True)
    assert prints_one_line_warnings()
