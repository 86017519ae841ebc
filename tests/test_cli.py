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
