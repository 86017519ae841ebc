"""bench.gpu_bench on a CPU: its quick mode (tiny presets, a few steps) end to end, the JSON's structure, failures
reported per model and per configuration while the rest go on, and bad arguments. No GPU is needed or used; the
quick run's times are checked for shape and sign only (they measure nothing)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from tiny_generators import one_torch_thread

from baselines.musicgen import MusicGenSmall, default_inference
from bench import gpu_bench


def positive(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


def results_of(quick_run, name: str) -> dict[str, Any]:
    return quick_run[1]["models"][name]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any], Path]:
    """One quick CPU run of all four models, with Stable Audio Open made to fail outright and MusicGen's bf16
    static-cache configuration made to fail inside its model (module-scoped: the run takes ~20 s)."""
    out = tmp_path_factory.mktemp("gpu-bench") / "results.json"
    patch = pytest.MonkeyPatch()

    def boom(plan, workdir):
        raise RuntimeError("Stable Audio Open exploded on purpose")

    real_steps = MusicGenSmall.decoder_step_seconds

    def steps_or_boom(self, positions, repeats=3, text_tokens=8):
        if (self.inference.dtype, self.inference.cache_implementation) == ("bfloat16", "static"):
            raise RuntimeError("static bf16 exploded on purpose")
        return real_steps(self, positions, repeats, text_tokens)

    patch.setitem(gpu_bench.BENCHES, "stable-audio-open", boom)
    patch.setattr(MusicGenSmall, "decoder_step_seconds", steps_or_boom)
    patch.setenv("HF_HUB_OFFLINE", "1")
    try:
        with one_torch_thread():
            rc = gpu_bench.main(["--out", str(out), "--device", "cpu", "--quick"])
    finally:
        patch.undo()
    return rc, json.loads(out.read_text()), out


def test_quick_run_records_the_environment_and_plan(quick_run) -> None:
    rc, results, out = quick_run
    assert rc == 1  # something failed (on purpose), and the exit status says so
    assert results["schema"] == gpu_bench.SCHEMA and results["quick"] is True
    assert "RANDOM WEIGHTS" in results["weights_label"] and "not a measurement" in results["note"]
    env = results["environment"]
    assert env["device"] == "cpu" and env["device_name"] and env["torch"] and "cuda" in env
    assert set(env["git"]) >= {"commit"} and env["versions"]["torch"]
    assert results["plan"]["device"] == "cpu" and results["plan"]["repeats"] == 1
    assert list(results["models"]) == list(gpu_bench.MODELS)
    assert not list(out.parent.glob(".results.json.*"))  # atomic: no temp file left behind


def test_a_failing_model_is_reported_and_the_rest_go_on(quick_run) -> None:
    _, results, _ = quick_run
    failed = results["models"]["stable-audio-open"]
    assert failed["status"] == "failed" and failed["error"] == "RuntimeError: Stable Audio Open exploded on purpose"
    assert "exploded on purpose" in failed["traceback"] and positive(failed["wall_s"])
    assert results["models"]["samuel"]["status"] == "ok" and results["models"]["ace-step"]["status"] == "ok"


def test_a_failing_configuration_marks_its_model_partial(quick_run) -> None:
    _, results, _ = quick_run
    musicgen = results["models"]["musicgen-small"]
    assert musicgen["status"] == "partial" and musicgen["failed_parts"] == ["configs/bfloat16 static"]
    assert musicgen["configs"]["bfloat16 static"]["error"] == "RuntimeError: static bf16 exploded on purpose"
    assert [k for k, v in musicgen["configs"].items() if v["status"] == "ok"] == [
        "float32 dynamic", "bfloat16 dynamic", "float32 static", "float32 preallocated", "bfloat16 preallocated"]


def test_samuel_figures(quick_run) -> None:
    samuel = results_of(quick_run, "samuel")
    assert samuel["preset"] == "tiny" and samuel["weights"] == "random" and samuel["forward_flops"] > 0
    fp32 = samuel["precisions"]["fp32"]
    assert fp32["status"] == "ok"
    assert positive(fp32["forward_b2"]["median_s"]) and positive(fp32["forward_b2"]["tflops"])
    assert positive(fp32["guided_step"]["median_s"]) and len(fp32["guided_step"]["times_s"]) == 3
    clip = fp32["clip"]
    assert positive(clip["seconds_per_clip"]) and clip["label"] == "measured in full" and clip["n"] == 1
    assert clip["steps"] == 25 and clip["precision_label"] == "fp32"


def test_musicgen_figures(quick_run) -> None:
    musicgen = results_of(quick_run, "musicgen-small")
    assert musicgen["default_config"] == gpu_bench.musicgen_config_name(*default_inference("cpu"))
    for name, config in musicgen["configs"].items():
        if config["status"] != "ok":
            continue
        assert config["codebooks"] == 4 and config["steps_total"] == 25 + 3  # 0.5 s at 50 Hz, + 3 delays
        assert config["tokens_per_s"] == pytest.approx(4 * config["frames_per_s"])
        assert config["frames_per_s"] == pytest.approx(1 / config["median_frame_s"])
        assert positive(config["whole_run_estimate_s"]) and positive(config["frame_speedup_vs_fp32_dynamic"])
        assert set(config["decoder_step_s_by_position"]) == {"1", "27"}
        assert "measured on 8 of 28 frames" in config["label"]
        assert ("full_run" in config) == (name == musicgen["default_config"])
    assert musicgen["configs"]["float32 dynamic"]["frame_speedup_vs_fp32_dynamic"] == 1.0


def test_ace_step_figures(quick_run) -> None:
    ace = results_of(quick_run, "ace-step")
    assert ace["preset"] == "tiny" and ace["steps_per_clip"] == 3 and positive(ace["seconds_per_step"])
    assert ace["clip"]["label"] == "measured in full" and positive(ace["clip"]["seconds_per_clip"])
    assert "measured on 2 of 3 steps" in ace["step_timing"]["label"]


def test_stable_audio_figures_on_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stable Audio Open (made to fail in the shared run) timed alone: per step and per clip."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "sao.json"
    with one_torch_thread():
        assert gpu_bench.main(["--out", str(out), "--device", "cpu", "--quick", "--models", "stable-audio-open"]) == 0
    sao = json.loads(out.read_text())["models"]["stable-audio-open"]
    fp32 = sao["dtypes"]["float32"]
    assert sao["status"] == "ok" and fp32["steps_per_clip"] == 4 and positive(fp32["seconds_per_step"])
    assert fp32["clip"]["label"] == "measured in full" and "measured on 2 of 4 steps" in fp32["step_timing"]["label"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--models", "samuel,jukebox"], "--models: unknown ['jukebox']"),
    (["--repeats", "0"], "--repeats must be at least 1, got 0"),
    (["--device", "tpu"], "--device must be cuda, cuda:N or cpu, got 'tpu'"),
])
def test_bad_arguments_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                        message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        gpu_bench.parse_args(["--out", str(tmp_path / "r.json"), "--device", "cpu", *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_cuda_without_a_gpu_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        gpu_bench.parse_args(["--out", str(tmp_path / "r.json")])
    assert "sees no CUDA device (use --device cpu for a smoke run)" in capsys.readouterr().err


def test_attempt_keeps_the_failure_and_frees_memory() -> None:
    ok = gpu_bench.attempt(lambda: {"x": 1}, "cpu")
    assert ok["status"] == "ok" and ok["x"] == 1 and ok["wall_s"] >= 0
    bad = gpu_bench.attempt(lambda: {"x": 1 / 0}, "cpu")
    assert bad["status"] == "failed" and bad["error"].startswith("ZeroDivisionError") and "1 / 0" in bad["traceback"]
    nan = gpu_bench.attempt(lambda: {"x": {"median_s": float("nan")}}, "cpu")
    assert nan["status"] == "failed" and "Out of range float values are not JSON compliant" in nan["error"]


def test_non_finite_figures_are_refused_not_written(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    gpu_bench.write_results(path, {"a": 1.0})
    with pytest.raises(ValueError):
        gpu_bench.write_results(path, {"a": float("nan")})
    assert json.loads(path.read_text()) == {"a": 1.0}  # the previous file is intact
