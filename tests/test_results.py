"""results.json as typed objects (bench.results): the file a real evaluate() run writes reads into them and writes
back byte for byte; a damaged or foreign file is refused with the file and the field named (by the reader and by
`samuel-eval report`); an older /1 file still reads where its fields exist."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from baselines import registry
from bench.evaluate import EvalConfig, EvalResult, ModelRun, evaluate
from bench.results import Describe, Generation, ModelResult, Params, RunResults, StoredEstimate, Timing, Weights

FAKE = "fake-noise"
registry.register(FAKE, "fake_generators:NoiseGenerator")
pytestmark = pytest.mark.filterwarnings("ignore:.*sample rate is 16000 Hz:UserWarning")


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, EvalResult, str]:
    """A small run: the fake model (generated and timed), the reference row (files: no params, not timed) and an
    outputs folder that does not exist (not run)."""
    root = tmp_path_factory.mktemp("results")
    gone = f"outputs:gone={root / 'nowhere'}"
    cfg = EvalConfig(out=root / "out", models=(FAKE, "reference", gone), n=3, duration_s=1.0, time_items=2,
                     passes=("params", "generate", "time"), no_progress=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        result = evaluate(cfg, log=lambda s: None)
    return root / "out", result, gone


def _data(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "results.json").read_text())


# -- round trip -----------------------------------------------------------------------------------------------


def test_a_real_run_reads_into_typed_objects_and_writes_back_exactly(finished: tuple[Path, EvalResult, str]
                                                                      ) -> None:
    folder, result, gone = finished
    text = (folder / "results.json").read_text()
    results = RunResults.read(folder / "results.json")
    assert list(results.models) == [FAKE, "reference", gone]  # run order
    fake, reference, missing = results.models.values()
    assert isinstance(fake.weights, Weights) and fake.weights.kind == "pretrained" and not fake.is_random
    assert fake.status == "run" and fake.spec == FAKE and fake.display_name == "Fake noise"
    assert fake.params == Params(15, {"net": 15}) and fake.model_key is not None
    assert isinstance(fake.generation, Generation) and fake.generation.n_ok == 3 and fake.generation.errors == ()
    assert set(fake.generation.sample_ids) == {"syn-000", "syn-001", "syn-002"}
    assert isinstance(fake.timing, Timing) and fake.timing.measured and fake.timing.label == "measured in full"
    assert isinstance(fake.timing.seconds, StoredEstimate) and fake.timing.seconds.n == 2
    assert [i.item_id for i in fake.timing.items] == ["syn-000", "syn-001"] and fake.timing.setup.batch_size == 1
    assert fake.timing.load_s is not None and fake.timing.unmeasured_ranks == ()  # merged over this run's ranks
    assert reference.weights is not None and reference.weights.kind == "files" and reference.params is None
    assert reference.timing is not None and not reference.timing.measured and "elsewhere" in reference.timing.reason
    assert missing.status == "not run" and "no such folder" in missing.reason and missing.weights is None
    assert results.manifest.n == 3 and results.manifest.rejected == () and results.config.time_items == 2
    assert results.provenance.device is not None and results.provenance.device.cpu
    assert results.provenance.command is not None and results.source == str(folder / "results.json")
    # back to JSON: the same document, key for key and in order (evaluate writes the file through these types)
    assert json.dumps(results.to_json(), indent=1, allow_nan=True) + "\n" == text
    assert json.dumps(result.results) == json.dumps(_data(folder))  # what evaluate() returned is what it wrote
    assert RunResults.from_json(results.to_json(), source="again") == results
    # the shape evaluate writes per model: params and timing always with a model key, nothing else for "not run"
    data = _data(folder)["models"]
    assert list(data[FAKE]) == ["spec", "status", "describe", "weights", "model_key", "generated", "generation",
                                "params", "timing"]
    assert data["reference"]["params"] is None and list(data[gone]) == ["spec", "status", "reason"]
    # ... and the parts as their own writers made them: the stored timing record and describe() come first, in order
    stored = json.loads((folder / "timing" / f"{FAKE}.rank0.json").read_text())["value"]
    assert list(data[FAKE]["timing"]) == [*stored, "unmeasured_ranks", "load_s_per_rank", "peak_memory_bytes", "ranks"]
    assert list(data[FAKE]["describe"])[:3] == ["name", "display_name", "sample_rate"]


def test_a_model_run_built_in_code_writes_the_documented_shape() -> None:
    entry = ModelRun(spec="m", name="m", model_key={"name": "m"}, describe=Describe.from_json({"display_name": "M"}),
                     weights=Weights("random", "init", "random", None), generated=False,
                     generation_note="random weights: not generated")
    assert entry.to_dict() == {"spec": "m", "status": "run", "describe": {"display_name": "M"},
                               "weights": {"kind": "random", "source": "init", "message": "random", "sha256": None},
                               "model_key": {"name": "m"}, "generated": False, "params": None, "timing": None,
                               "generation_note": "random weights: not generated"}
    assert ModelRun(spec="x", name="x", status="not run", reason="no").to_dict() == {"spec": "x",
                                                                                      "status": "not run",
                                                                                      "reason": "no"}
    back_json = entry.to_dict()
    back = ModelResult.from_json(back_json, source="memory", name="m")
    assert back == entry.to_result() and back.is_random and back.generated is False and back.display_name == "M"
    del back_json["describe"]  # a built model's entry says what it ran
    with pytest.raises(ValueError, match=r"field \"models\['m'\]\.describe\": missing"):
        ModelResult.from_json(back_json, name="m")


def test_unknown_keys_are_kept_and_written_back(finished: tuple[Path, EvalResult, str]) -> None:
    data = _data(finished[0])
    data["future"] = {"a": 1}
    data["models"][FAKE]["timing"]["setup"]["new_fact"] = [1, 2]
    data["models"][FAKE]["weights"]["revision"] = "abc"
    results = RunResults.from_json(copy.deepcopy(data), source="x")
    assert results.extra == {"future": {"a": 1}}
    fake = results.models[FAKE]
    assert fake.weights is not None and fake.weights.extra == {"revision": "abc"}
    assert fake.timing is not None and fake.timing.setup.extra["new_fact"] == [1, 2]
    assert json.dumps(results.to_json()) == json.dumps(data)


# -- damaged and foreign files ----------------------------------------------------------------------------------


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value
    return change


def _drop(path: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        for key in path[:-1]:
            d = d[key]
        del d[path[-1]]
    return change


M = f"models[{FAKE!r}]"
DAMAGE = {
    "no format": (_drop(("format",)), "field 'format': missing"),
    "foreign format": (_set(("format",), "samuel-bench-scores/2"), "field 'format': 'samuel-bench-scores/2' is not"),
    "models not an object": (_set(("models",), []), "field 'models': expected an object, got list"),
    "no manifest": (_drop(("manifest",)), "field 'manifest': missing"),
    "model without a status": (_drop(("models", FAKE, "status")), f"field \"{M}.status\": missing"),
    "unknown status": (_set(("models", FAKE, "status"), "ok"), f"field \"{M}.status\": expected one of"),
    "model without a spec": (_drop(("models", FAKE, "spec")), f"field \"{M}.spec\": missing"),
    "weights kind a number": (_set(("models", FAKE, "weights", "kind"), 3), f"field \"{M}.weights.kind\": expected a "
                                                                             "string, got int 3"),
    "weights a string": (_set(("models", FAKE, "weights"), "random"), f"field \"{M}.weights\": expected an object"),
    "n_ok a string": (_set(("models", FAKE, "generation", "n_ok"), "3"), f"field \"{M}.generation.n_ok\": expected "
                                                                         "an integer"),
    "seconds a string": (_set(("models", FAKE, "timing", "seconds"), "fast"), f"field \"{M}.timing.seconds\""),
    "measured without seconds": (_drop(("models", FAKE, "timing", "seconds")), f"field \"{M}.timing.seconds\": "
                                                                               "missing"),
    "timed item without an id": (_drop(("models", FAKE, "timing", "items", 0, "item_id")),
                                 f"field \"{M}.timing.items[0].item_id\": missing"),
    "params total a float": (_set(("models", FAKE, "params", "params_total"), 1.5),
                             f"field \"{M}.params.params_total\": expected an integer"),
    "rejected without a problem": (_set(("manifest", "rejected"), [{"path": "a.wav"}]),
                                   "field 'manifest.rejected[0].problem': missing"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_or_foreign_file_is_named_with_its_field(finished: tuple[Path, EvalResult, str], tmp_path: Path,
                                                           damage: str) -> None:
    change, expected = DAMAGE[damage]
    data = _data(finished[0])
    change(data)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as err:
        RunResults.read(path)
    assert str(err.value).startswith(f"{path}: ") and expected in str(err.value), str(err.value)


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text('{"format": "samuel-bench-results/2", "models": {')
    with pytest.raises(ValueError, match=f"^{path}: unreadable"):
        RunResults.read(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=f"^{path}: expected an object, got list"):
        RunResults.read(path)
    with pytest.raises(FileNotFoundError):
        RunResults.read(tmp_path / "none.json")


def test_the_report_refuses_a_damaged_results_file_and_names_it(finished: tuple[Path, EvalResult, str],
                                                                 tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                                 ) -> None:
    from reports.cli import main

    folder = tmp_path / "run"
    shutil.copytree(finished[0], folder)
    data = _data(folder)
    data["models"][FAKE]["timing"]["status"] = 1
    (folder / "results.json").write_text(json.dumps(data))
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"{folder / 'results.json'}: field \"{M}.timing.status\"" in err
    assert not (folder / "report.html").exists() and not (folder / "tables").exists()  # nothing half-rendered


# -- older files ------------------------------------------------------------------------------------------------


def _format_1() -> dict[str, Any]:
    """A results.json as the harness before format 2 wrote it (bench/run.py): no model keys, no sample ids, record
    problems or rejected files; its timing carries the identity it was stored with."""
    est = {"value": 2.0, "ci_low": 1.5, "ci_high": 2.5, "n": 6, "method": "order statistics x(1)..x(6)",
           "coverage": 0.97}
    return {
        "format": "samuel-bench-results/1",
        "config": {"models": ["musicgen-small", "nothing"], "n": 6, "timing": "auto", "time_items": 6},
        "provenance": {"command": "samuel-eval --n 6", "git": {"commit": "abc", "dirty": False},
                       "device": {"requested": "cpu", "cpu": "x86_64", "cpu_count": 2, "torch_threads": 2}},
        "manifest": {"path": "out/manifest.json", "source": "synthetic", "n": 6, "base_seed": 0},
        "models": {
            "musicgen-small": {
                "spec": "musicgen-small", "status": "run",
                "describe": {"name": "musicgen-small", "display_name": "MusicGen - Small",
                             "conditioning": "Text description", "options": {}},
                "weights": {"kind": "pretrained", "source": "facebook/musicgen-small", "message": "ok",
                            "sha256": None},
                "params": {"params_total": 586884674, "params_by_component": {"lm": 586884674}},
                "generated": True,
                "generation": {"n_ok": 6, "n_error": 0, "errors": [], "not_attempted": [],
                               "samples": ["out/samples/musicgen-small/a.flac"], "generation_seconds": est},
                "timing": {"model": "musicgen-small", "status": "measured", "reason": "", "load_s": 3.0,
                           "items": [{"item_id": "syn-000", "seconds": 2.0, "rtf": 0.2, "audio_s": 10.0}],
                           "seconds": est, "rtf": {**est, "value": 0.2}, "mode": "full",
                           "setup": {"device": "cpu", "threads": 2, "batch_size": 1}, "label": "measured in full",
                           "identity": {"mode": "full"}},
            },
            "nothing": {"spec": "nothing", "status": "not run", "reason": "unknown model"},
        },
    }


def test_an_older_format_1_file_still_reads() -> None:
    from reports.table2 import table2

    data = _format_1()
    results = RunResults.from_json(copy.deepcopy(data), source="old/results.json")
    small = results.models["musicgen-small"]
    assert small.model_key is None and small.generation is not None and small.generation.sample_ids == {}
    assert small.generation.record_problems == () and results.manifest.rejected == ()
    assert small.timing is not None and small.timing.extra["identity"] == {"mode": "full"}
    assert small.timing.unmeasured_ranks is None  # never merged: the key is absent, and stays absent
    assert results.models["nothing"].status == "not run"
    assert json.dumps(results.to_json()) == json.dumps(data)
    rows = {row[0].display: row for row in table2(results).rows}
    assert rows["MusicGen - Small"][4].display == "2.00 s [1.50 s, 2.50 s], n=6"
    assert rows["nothing"][4].display == "not run: unknown model"
    # a /1 file may also lack what /2 always writes; the same gaps in a /2 file are damage
    del data["manifest"], data["models"]["nothing"]["spec"]
    assert RunResults.from_json(copy.deepcopy(data), source="old").models["nothing"].spec == "nothing"
    data["format"] = "samuel-bench-results/2"
    with pytest.raises(ValueError, match=r"^new/results\.json: field 'manifest': missing"):
        RunResults.from_json(data, source="new/results.json")
