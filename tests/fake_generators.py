"""Cheap stand-in generators for the harness tests: real Generator subclasses, no model, deterministic output."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from baselines.base import (
    GeneratedAudio,
    GenerationRequest,
    Generator,
    ItemError,
    ParamCount,
    WeightsStatus,
    count_parameters,
)


class NoiseGenerator(Generator):
    """Seeded noise of the item's duration (the vocal is not read); 10 "steps" of ~2 ms each; a tiny Linear for
    its parameters.

    Tests steer it through class attributes (monkeypatched), which stay out of the sample ids: ``fail_items``
    (item ids that raise ItemError), ``interrupt_at`` (raise KeyboardInterrupt on that call, to simulate a kill),
    ``memory_bytes`` (the memory estimate).
    """

    name = "fake-noise"
    display_name = "Fake noise"
    sample_rate = 16_000
    conditioning = "Vocal melody"
    uses_vocal = True
    timing_unit = "steps"
    default_timing_mode = "full"
    STEPS = 10
    calls = 0
    interrupt_at: int | None = None
    fail_items: frozenset[str] = frozenset()
    crash_items: frozenset[str] = frozenset()  # raise RuntimeError, as a model failing mid-item (e.g. OOM) does
    memory_bytes = 1000

    def resolve_weights(self) -> WeightsStatus:
        return WeightsStatus("pretrained", "fake", "fake-noise: deterministic fake model")

    def _load(self) -> None:
        self.net = torch.nn.Linear(4, 3)

    def generate(self, requests: Sequence[GenerationRequest], *, max_units: int | None = None,
                 on_unit: Callable[[], None] | None = None) -> list[GeneratedAudio]:
        out = []
        for r in requests:
            type(self).calls += 1
            if type(self).calls == self.interrupt_at:
                raise KeyboardInterrupt
            if r.item_id in self.fail_items:
                raise ItemError(f"{r.vocal_path}: fake failure for item {r.item_id}")
            if r.item_id in self.crash_items:
                raise RuntimeError(f"fake out of memory on item {r.item_id}")
            steps = self.STEPS if max_units is None else min(max_units, self.STEPS)
            time.sleep(float(os.environ.get("FAKE_NOISE_ITEM_S", "0")))  # a slower model, for kill tests
            for _ in range(steps):
                time.sleep(0.002)
                if on_unit is not None:
                    on_unit()
            rng = np.random.default_rng(r.seed)
            audio = (0.1 * rng.standard_normal((1, round(r.duration_s * self.sample_rate)))).astype(np.float32)
            out.append(GeneratedAudio(audio, self.sample_rate, {"steps": steps}))
        return out

    def total_units(self, request: GenerationRequest) -> int:
        return self.STEPS

    def _count_parameters(self) -> ParamCount:
        with torch.device("meta"):
            net = torch.nn.Linear(4, 3)
        return count_parameters({"net": net})

    def memory_estimate_bytes(self) -> int:
        return self.memory_bytes

    def describe(self) -> dict[str, Any]:
        return super().describe()
