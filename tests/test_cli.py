"""`samuel info` and `samuel demo` through the real entry point."""

from __future__ import annotations

import json

import numpy as np
import pytest

from samuel.cli import main


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"params_total", "params_by_component", "config"} <= report.keys()
    assert report["params_total"] == sum(report["params_by_component"].values()) == 15_394_560
    assert report["config"]["channels"] == [64, 128, 256, 512]
    assert {"time_mlp", "vocal_encoder", "encoder", "bottleneck", "decoder", "head"} <= report[
        "params_by_component"].keys()


def test_info_text(capsys):
    assert main(["info", "--mixing", "reversed"]) == 0
    out = capsys.readouterr().out
    assert "15,394,560 parameters" in out and "mixing = reversed" in out


def test_demo_writes_labelled_random_weight_output(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--preset", "tiny", "--frames", "64", "--steps", "4", "--out", str(out)]) == 0
    record = json.loads((out / "demo.json").read_text())
    assert record["weights"] == "random" and "not a quality result" in record["label"]
    latent = np.load(out / record["output"])
    assert latent.shape == (1, 64, 64) and np.isfinite(latent).all()
    assert "random-weights" in record["output"]
    assert "RANDOM WEIGHTS" in capsys.readouterr().err


def test_demo_rejects_bad_frames(tmp_path):
    with pytest.raises(SystemExit):
        main(["demo", "--preset", "tiny", "--frames", "60", "--out", str(tmp_path)])


@pytest.mark.parametrize(("argv", "message"), [
    (["--guidance", "nan"], "argument --guidance: must be a finite number, got 'nan'"),
    (["--guidance", "inf"], "argument --guidance: must be a finite number, got 'inf'"),
    (["--guidance", "x"], "argument --guidance: not a number: 'x'"),
    (["--steps", "-3"], "argument --steps: must be >= 1, got '-3'"),
    (["--steps", "0"], "argument --steps: must be >= 1, got '0'"),
    (["--steps", "801"], "--steps must lie in [1, 800] (the model's schedule), got 801"),
])
def test_demo_refuses_settings_it_cannot_honour_at_parse_time(argv, message, tmp_path, capsys):
    """`demo --guidance nan` exited 0 with "finite: false"; `--steps -3` and 801 gave a traceback, `--steps 0`
    silently ran 25 steps. Each is now a usage error (exit 2) naming the option, before any model is built."""
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--preset", "tiny", "--frames", "64", "--out", str(tmp_path / "demo"), *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()


def test_usable_device_says_why_a_device_cannot_be_used(monkeypatch):
    import torch

    from samuel.dist import usable_device

    assert usable_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="'gpu' is not a device"):
        usable_device("gpu")
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None)
    with pytest.raises(ValueError, match=r"cuda: this torch \(.*\) is built without CUDA"):
        usable_device("cuda")
    monkeypatch.setattr(torch.version, "cuda", "12.8")  # a CUDA build on a machine without a GPU, or with two
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(ValueError, match=r"cuda:0: no CUDA device is visible \(CUDA_VISIBLE_DEVICES=\)"):
        usable_device("cuda:0")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert usable_device("cuda") == "cuda" and usable_device("cuda:1") == "cuda:1"
    with pytest.raises(ValueError, match=r"cuda:2: only 2 CUDA device\(s\) are visible \(cuda:0 to cuda:1\)"):
        usable_device("cuda:2")


@pytest.mark.parametrize("command", [["generate", "v.wav", "-o", "out.wav"],
                                     ["train", "--data", "data", "--out", "run"], ["prepare", "src", "-o", "data"]])
def test_a_device_this_machine_lacks_is_a_usage_error_before_any_work(command, tmp_path, monkeypatch, capsys):
    # defect: --device cuda on a CPU-only machine failed inside a load, with a traceback about pin_memory
    import torch

    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--device", "cuda"])
    assert exit_.value.code == 2
    assert "argument --device: cuda: this torch" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_command_lines_print_a_warning_as_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder of 100 low-rate files printed 200 lines: each warning with its source file and the line of code
    that raised it. The message names the file and the problem; that line is all a user needs."""
    import warnings

    from samuel.console import one_line_warnings

    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # restored after the test
    one_line_warnings()
    text = warnings.formatwarning("x.wav: sample rate is 8000 Hz", UserWarning, "/a/audio.py", 367, "samples = f()")
    assert text == "warning: x.wav: sample rate is 8000 Hz\n"
    other = warnings.formatwarning("old API", FutureWarning, "/a/torch.py", 1, None)
    assert other == "warning (FutureWarning): old API\n"


def test_the_closing_random_weights_line_says_whether_their_outputs_were_scored(capsys):
    """With --score-random the last lines still said 'outputs never scored' above a report that scored them."""
    from bench.results import RunResults
    from reports.cli import _summary

    results = RunResults.from_json({
        "format": "samuel-bench-results/2", "config": {}, "manifest": {"rejected": []}, "provenance": {},
        "models": {"samuel": {"spec": "samuel", "status": "run", "describe": {"display_name": "SAMUeL"},
                              "weights": {"kind": "random", "message": "samuel: RANDOM weights (seed 0)"}}}},
        source="fixture")
    _summary(results)
    assert "RANDOM WEIGHTS (efficiency only; outputs never scored):\n  - samuel: RANDOM weights (seed 0)" in (
        capsys.readouterr().err)
    _summary(results, scored=True)
    assert ("RANDOM WEIGHTS (efficiency only; outputs scored only as a labelled plumbing check (--score-random), "
            "never in Table I):") in capsys.readouterr().err
