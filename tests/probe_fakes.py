"""Fake vocal-conditioned generators for the responsiveness probe's tests: real Generator subclasses, no model.

- :class:`VocalIgnorer`: a fixed seeded chord whatever the vocal (the transformers bug that dropped
  MusicGen-melody's audio conditioning looks like this): must get "does not respond to its vocal".
- :class:`VocalFollower`: returns its vocal itself (so its chroma sits on the sung pitch) plus a little seeded noise:
  must get "follows its vocal".
- :class:`VocalHasher`: a chord whose root is drawn from a hash of the vocal: the output changes with the vocal but
  does not follow it: "does not respond" (CI includes 0).
- :class:`RandomFollower` / :class:`RandomIgnorer`: the same with random weights: "plumbing only" / "does not
  respond".
- :class:`SilenceRefuser`: a follower that refuses a silent vocal (ItemError), for the bad-item test.

``calls`` counts generations and ``loads`` loads per class (resume tests, one load per model).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

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

RATE = 44_100


def _chord(root_midi: float, seconds: float, seed: int) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * 440.0 * 2 ** ((root_midi + k - 69) / 12) * t) for k in (0, 4, 7))
    noise = 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    return (0.2 * tone / 3 + noise).astype(np.float32)[None, :].repeat(2, axis=0)


class _Fake(Generator):
    sample_rate = RATE
    conditioning = "Vocal melody"
    uses_vocal = True
    timing_unit = "steps"
    weights_kind = "pretrained"
    calls = 0
    loads = 0

    def resolve_weights(self) -> WeightsStatus:
        if self.weights_kind == "random":
            return WeightsStatus("random", "random init (seed 0)", f"{self.name}: RANDOM weights (fake)")
        return WeightsStatus("pretrained", "fake", f"{self.name}: fake pretrained model")

    def _load(self) -> None:
        type(self).loads += 1
        self.net = torch.nn.Linear(2, 2)

    def generate(self, requests: Sequence[GenerationRequest], *, max_units: int | None = None,
                 on_unit: Callable[[], None] | None = None) -> list[GeneratedAudio]:
        out = []
        for r in requests:
            type(self).calls += 1
            out.append(GeneratedAudio(self.make(r), RATE))
            if on_unit is not None:
                on_unit()
        return out

    def make(self, r: GenerationRequest) -> np.ndarray:
        raise NotImplementedError

    def total_units(self, request: GenerationRequest) -> int:
        return 1

    def _count_parameters(self) -> ParamCount:
        with torch.device("meta"):
            net = torch.nn.Linear(2, 2)
        return count_parameters({"net": net})


class VocalIgnorer(_Fake):
    name = "fake-ignorer"

    def make(self, r: GenerationRequest) -> np.ndarray:
        return _chord(57 + r.seed % 12, r.duration_s, r.seed)


class VocalFollower(_Fake):
    name = "fake-follower"

    def make(self, r: GenerationRequest) -> np.ndarray:
        vocal = r.read_vocal()
        noise = 0.01 * np.random.default_rng(r.seed).standard_normal(vocal.shape)
        return (0.5 * vocal + noise).astype(np.float32)


class VocalHasher(_Fake):
    name = "fake-hasher"

    def make(self, r: GenerationRequest) -> np.ndarray:
        digest = hashlib.sha256(r.read_vocal().tobytes()).digest()
        return _chord(48 + digest[0] % 24, r.duration_s, r.seed)


class RandomFollower(VocalFollower):
    name = "fake-random-follower"
    weights_kind = "random"


class RandomIgnorer(VocalIgnorer):
    name = "fake-random-ignorer"
    weights_kind = "random"


class SilenceRefuser(VocalFollower):
    name = "fake-silence-refuser"

    def make(self, r: GenerationRequest) -> np.ndarray:
        vocal = r.read_vocal()
        if not np.any(vocal):
            raise ItemError(f"{r.vocal_path}: item {r.item_id}: the vocal is silent")
        return super().make(r)


FAKES = {cls.name: cls for cls in (VocalIgnorer, VocalFollower, VocalHasher, RandomFollower, RandomIgnorer,
                                   SilenceRefuser)}
