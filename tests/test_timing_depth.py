"""Depth timing (bench.timing.time_model_by_depth): a model too big for memory is timed with its denoiser cut to a
few identical blocks and scaled up. Known truth: a fake model on a fake clock whose every cost is set, so the
extrapolated total must equal the true full-depth total exactly. Then the same path on ACE-Step's real pipeline
code, at a tiny width with 8 blocks."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_generators import one_torch_thread, write_signal

from baselines.base import (
    AdapterError,
    DenoiserCalls,
    GeneratedAudio,
    GenerationRequest,
    Generator,
    ParamCount,
    WeightsChoice,
    WeightsStatus,
)
from bench import stats, timing


class Clock:
    now = 0.0

    @classmethod
    def perf_counter(cls) -> float:
        return cls.now


class Layered(Generator):
    """A model on :class:`Clock` whose costs are set: ``FIXED`` s outside the steps (encoders, codec), per step
    ``OTHER`` s outside the block stack plus ``CALLS`` denoiser calls of ``BLOCK`` s per block. Its full depth does
    not fit in memory; cut, it does."""

    name = "layered"
    sample_rate = 8_000
    timing_unit = "steps"
    default_timing_mode = "extrapolate"
    FIXED, OTHER, BLOCK, CALL_OVERHEAD = 6.0, 0.1, 0.25, 0.03
    STEPS, FULL, CALLS = 50, 32, 2
    slope_override: float | None = None  # a denoiser that does not get slower with depth (timing noise)

    def __init__(self, weights: WeightsChoice | None = None, *, layers: int | None = None) -> None:
        super().__init__(weights or WeightsChoice("random"))
        self.layers = layers

    def resolve_weights(self) -> WeightsStatus:
        return WeightsStatus("random", "random init (seed 0)", "layered: RANDOM weights")

    def _load(self) -> None:
        Clock.now += 1.0

    def generate(self, requests: Sequence[GenerationRequest], *, max_units: int | None = None,
                 on_unit: Callable[[], None] | None = None) -> list[GeneratedAudio]:
        layers = self.layers or self.FULL
        out = []
        for r in requests:
            Clock.now += self.FIXED / 2
            for _ in range(self.STEPS if max_units is None else min(max_units, self.STEPS)):
                Clock.now += self.OTHER + self.CALLS * (self.CALL_OVERHEAD + layers * self.BLOCK)
                if on_unit is not None:
                    on_unit()
            Clock.now += self.FIXED / 2
            out.append(GeneratedAudio(np.zeros((1, round(r.duration_s * self.sample_rate)), np.float32),
                                      self.sample_rate, {}))
        return out

    def total_units(self, request: GenerationRequest) -> int:
        return self.STEPS

    def _count_parameters(self) -> ParamCount:
        return ParamCount(1000 * (self.layers or self.FULL), {"denoiser": 1000 * (self.layers or self.FULL)})

    def memory_estimate_bytes(self) -> int:
        return 10**15 if self.layers is None else 1000

    def timing_depths(self) -> tuple[int, int] | None:
        return None if self.layers is not None else (2, self.FULL)

    def at_depth(self, layers: int) -> Layered:
        return Layered(layers=layers)

    def denoiser_call_seconds(self, depths: Sequence[int], repeats: int = 3) -> DenoiserCalls:
        block = self.BLOCK if self.slope_override is None else self.slope_override
        return DenoiserCalls({d: self.CALL_OVERHEAD + d * block for d in depths}, float(self.CALLS))

    @classmethod
    def true_seconds(cls) -> float:
        return cls.FIXED + cls.STEPS * (cls.OTHER + cls.CALLS * (cls.CALL_OVERHEAD + cls.FULL * cls.BLOCK))


def _requests(n: int = 3, duration_s: float = 10.0) -> list[GenerationRequest]:
    return [GenerationRequest(f"item-{i}", i, duration_s, "p") for i in range(n)]


def test_extrapolate_depth_golden() -> None:
    # 100 s measured at 2 of 32 blocks; a call costs 1 + 0.5 s per block; 50 steps of 2 calls: 100 + 50*2*30*0.5
    seconds, per_block = stats.extrapolate_depth(100.0, {2: 2.0, 4: 3.0}, 2.0, 50, 2, 32)
    assert per_block == pytest.approx(0.5) and seconds == pytest.approx(1600.0)
    # three depths: the least-squares slope
    assert stats.extrapolate_depth(0.0, {1: 1.0, 2: 2.2, 3: 2.8}, 1.0, 1, 1, 2)[1] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="timing noise"):
        stats.extrapolate_depth(1.0, {2: 2.0, 4: 1.9}, 2.0, 50, 2, 32)
    for flat in ({2: 0.03, 4: 0.03}, {2: 0.03, 4: 0.03, 8: 0.03}, {1: 1e-3, 2: 1e-3}):  # rounding, not a cost
        with pytest.raises(ValueError, match="timing noise"):
            stats.extrapolate_depth(1.0, flat, 2.0, 50, 2, 32)
    with pytest.raises(ValueError, match="two depths"):
        stats.extrapolate_depth(1.0, {2: 2.0}, 2.0, 50, 2, 32)


def test_a_model_that_does_not_fit_is_timed_at_depth_and_scaled_to_the_true_total(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timing.time, "perf_counter", Clock.perf_counter)
    lines: list[str] = []
    res = timing.time_model(Layered(), _requests(), mode="extrapolate", k=3, log=lines.append)
    assert res.status == "measured" and res.mode == "depth" and len(res.items) == 3
    for item in res.items:
        assert item.seconds == pytest.approx(Layered.true_seconds(), rel=1e-9)  # 6 + 50 * (0.1 + 2 * 8.03) = 814.5
        assert item.rtf == pytest.approx(item.seconds / 10.0)
        assert item.units_done == 3 and item.fit["block_call_s"] == pytest.approx(Layered.BLOCK)
        assert item.label == ("measured on 3 of 50 steps, denoiser at 2 of 32 blocks, scaled to 32 (random "
                              "weights)")
    assert res.seconds is not None and res.seconds.value == pytest.approx(Layered.true_seconds())
    depth = res.setup["depth"]
    assert depth["layers"] == 2 and depth["full_layers"] == 32 and "does not fit" in depth["why"]
    assert res.setup["memory_needed_bytes"] == 10**15 and "2 of 32 blocks" in res.setup["memory_note"]
    assert res.to_dict()["label"].startswith("measured on 3 of 50 steps, denoiser at 2 of 32")
    assert any("depth mode" in line for line in lines)


def test_depth_mode_asked_for_and_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timing.time, "perf_counter", Clock.perf_counter)
    asked = timing.time_model(Layered(), _requests(2), mode="depth", k=2, log=lambda s: None)
    assert asked.mode == "depth" and "asked for" in asked.setup["depth"]["why"]
    assert asked.items[0].seconds == pytest.approx(Layered.true_seconds())
    # the cut model itself cannot be cut again: depth mode says so instead of recursing
    cut = timing.time_model(Layered(layers=2), _requests(1), mode="depth", log=lambda s: None)
    assert cut.status == "not measured" and "no reduced-depth timing" in cut.reason
    # a denoiser no slower with more blocks: named, not a negative or silly total
    monkeypatch.setattr(Layered, "slope_override", 0.0)
    flat = timing.time_model(Layered(), _requests(2), mode="extrapolate", k=2, log=lambda s: None)
    assert flat.status == "not measured" and "timing noise" in flat.reason and flat.seconds is None


def test_depth_mode_by_default_when_the_whole_model_does_not_fit_or_runs_on_a_cpu(
        monkeypatch: pytest.MonkeyPatch) -> None:
    model = Layered()
    assert "does not fit: needs about" in str(timing.depth_reason(model, "extrapolate", 3 * 2**30, 2**30))
    assert str(timing.depth_reason(model, "extrapolate", 1, 2)).startswith("random weights on a CPU")
    assert "asked for" in str(timing.depth_reason(model, "depth", 1, 2))
    assert timing.depth_reason(model, "full", 3, 2) is None  # full: the whole model, or not measured
    model.device = "cuda:0"
    assert timing.depth_reason(model, "extrapolate", 1, 2) is None  # fits on a GPU: timed whole
    monkeypatch.setattr(Layered, "timing_depths", lambda self: None)  # real weights: never cut
    assert timing.depth_reason(Layered(), "extrapolate", 3, 2) is None
    monkeypatch.setattr(timing.time, "perf_counter", Clock.perf_counter)
    monkeypatch.setattr(Layered, "memory_estimate_bytes", lambda self: 1000)  # fits in memory
    monkeypatch.setattr(Layered, "timing_depths", lambda self: None if self.layers is not None else (2, self.FULL))
    res = timing.time_model(Layered(), _requests(1), mode="extrapolate", k=3, log=lambda s: None)
    assert res.mode == "depth" and res.setup["depth"]["why"].startswith("random weights on a CPU")
    assert res.items[0].seconds == pytest.approx(Layered.true_seconds(), rel=1e-9)


def test_without_depth_support_a_model_that_does_not_fit_is_still_reported(monkeypatch: pytest.MonkeyPatch
                                                                           ) -> None:
    monkeypatch.setattr(Layered, "timing_depths", lambda self: None)  # e.g. real weights
    res = timing.time_model(Layered(), _requests(1), mode="extrapolate", log=lambda s: None)
    assert res.status == "not measured" and res.reason.startswith("does not fit")


# -- ACE-Step's real pipeline, tiny ------------------------------------------------------------------------------


@pytest.fixture
def tiny_eight_blocks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from baselines import ace_step as ace

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    configs = ace.TINY_CONFIGS
    monkeypatch.setattr(ace, "PUBLISHED_CONFIGS", dataclasses.replace(
        configs, transformer={**configs.transformer, "num_hidden_layers": 8}))
    with one_torch_thread():
        yield ace


def test_ace_step_at_depth_cuts_only_the_dit_and_times_its_calls(tiny_eight_blocks, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ace = tiny_eight_blocks
    vocal = write_signal(tmp_path / "vocal.wav", 1.0, seed=3)
    full = ace.AceStep(WeightsChoice("random"), num_inference_steps=4)
    assert full.timing_depths() == (2, 8)
    cut = full.at_depth(2)
    assert cut.timing_depths() is None and cut.status.is_random and cut.dit_layers == 2
    counts, cut_counts = full.parameter_counts(), cut.parameter_counts()
    assert counts is not None and cut_counts is not None
    for part in counts.by_component:  # only the DiT shrinks
        assert (cut_counts.by_component[part] < counts.by_component[part]) == (part == "dit")
    assert "DiT cut to 2 of 8 blocks" in cut.parameter_source()
    request = GenerationRequest("v", 1, 0.3, "piano", vocal_path=vocal)
    cut.generate([request], max_units=2)
    order: list[int] = []
    built = ace.build_transformer

    def hooked(config, depth, dtype):  # record which depth each DiT call ran at
        dit = built(config, depth, dtype)
        dit.register_forward_pre_hook(lambda module, inputs: order.append(depth))
        return dit

    monkeypatch.setattr(ace, "build_transformer", hooked)
    cut._pipe.transformer.register_forward_pre_hook(lambda module, inputs: order.append(2))
    calls = cut.denoiser_call_seconds((2, 4), repeats=2)
    assert set(calls.seconds) == {2, 4} and all(s > 0 and math.isfinite(s) for s in calls.seconds.values())
    # a warm-up per depth, then rounds of every depth in alternating order: a drift of the machine's speed falls
    # on both depths, not on the difference between them
    assert order == [2, 4, 2, 4, 4, 2]
    assert calls.calls_per_step == 1.0  # guidance batched into one call of batch 2
    with pytest.raises(ValueError, match="dit_layers must be at least 1"):
        ace.AceStep(WeightsChoice("random"), dit_layers=0)


def test_ace_step_with_real_weights_is_not_cut(tiny_eight_blocks, tmp_path: Path) -> None:
    from tiny_generators import save_tiny_ace_step

    folder = save_tiny_ace_step(tmp_path / "tiny")
    ace = tiny_eight_blocks
    assert ace.AceStep(WeightsChoice("pretrained", source=str(folder))).timing_depths() is None
    cut = ace.AceStep(WeightsChoice("pretrained", source=str(folder)), dit_layers=1)
    with pytest.raises(AdapterError, match="dit_layers cuts a random-weight DiT"):
        cut.load()


def test_ace_step_depth_timing_end_to_end(tiny_eight_blocks, tmp_path: Path) -> None:
    ace = tiny_eight_blocks
    vocal = write_signal(tmp_path / "vocal.wav", 1.0, seed=4)
    requests = [GenerationRequest(f"v{i}", i, 0.3, "piano", vocal_path=vocal) for i in range(2)]
    res = timing.time_model(ace.AceStep(WeightsChoice("random"), num_inference_steps=6), requests, mode="depth",
                            k=2, log=lambda s: None)
    if res.status != "measured":  # a tiny DiT's block costs microseconds: noise may swamp it, and that is named
        assert "timing noise" in res.reason
        return
    assert res.mode == "depth" and res.items[0].units_total == 6
    assert res.items[0].label == ("measured on 2 of 6 steps, denoiser at 2 of 8 blocks, scaled to 8 (random "
                                  "weights)")
    assert res.items[0].peak_memory_bytes > 0 and res.items[0].memory_kind
    assert res.items[0].seconds > res.items[0].fit["seconds_at_depth"] > 0
    assert torch.get_default_dtype() == torch.float32
