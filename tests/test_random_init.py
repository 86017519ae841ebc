"""Random weights drawn once (baselines.random_init; MusicGen's random build): nothing left undrawn, the same
weights every build, each weight from transformers' own distribution, and the old double draw when a module is
missed."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_generators import musicgen_tiny_config as tiny_config
from tiny_generators import one_torch_thread

import baselines.musicgen as mg
from baselines.random_init import nonfinite_tensors, torch_defaults_left_nan


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


def test_torch_defaults_are_marked_and_restored() -> None:
    with torch.no_grad(), torch_defaults_left_nan():
        marked = torch.nn.Linear(8, 4)
    assert math.isnan(float(marked.weight.flatten()[0])) and math.isnan(float(marked.bias[0]))
    assert nonfinite_tensors(marked) == ["weight", "bias"]
    drawn = torch.nn.Linear(8, 4)  # outside: torch's default draw again
    assert nonfinite_tensors(drawn) == [] and float(drawn.weight.abs().max()) > 0


def test_an_overflowing_sum_is_not_taken_for_a_nan() -> None:
    module = torch.nn.Linear(4, 4)
    with torch.no_grad():
        module.weight.fill_(3e38)  # finite, but its sum overflows to inf
    assert nonfinite_tensors(module) == []


@pytest.mark.parametrize("melody", [False, True])
def test_a_random_musicgen_is_drawn_once_whole_and_the_same_every_build(melody: bool) -> None:
    cls = mg.model_class(melody)
    state = torch.random.get_rng_state()
    model = mg.build_random_model(cls, tiny_config(melody), "cpu")
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG untouched
    assert nonfinite_tensors(model) == []
    again = mg.build_random_model(cls, tiny_config(melody), "cpu")
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    # every decoder and text-encoder Linear is transformers' N(0, initializer_factor) draw, biases zero
    factor = model.config.decoder.initializer_factor
    linears = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear)]
    weights = torch.cat([m.weight.flatten() for m in linears])
    assert abs(float(weights.std()) / factor - 1) < 0.05 and abs(float(weights.mean())) < 0.05 * factor
    assert all(m.bias is None or not m.bias.any() for m in linears)
    for layer in model.audio_encoder.quantizer.layers:  # codebooks drawn N(0, 1) as before
        assert float(layer.codebook.embed.std()) > 0.5


def test_a_module_transformers_does_not_draw_makes_the_build_draw_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a transformers release leave a weight undrawn, the model is built again with torch's default draw
    first, never run with a NaN or uninitialised weight."""
    cls = mg.model_class(False)
    real_init = cls.__mro__[1]._init_weights  # MusicgenPreTrainedModel's

    def skips_linears(self, module):  # a release whose initialisation misses the decoder's Linear layers
        if isinstance(module, torch.nn.Linear):
            return
        real_init(self, module)

    for klass in {type(m) for m in cls(tiny_config(False)).modules()}:
        if "_init_weights" in vars(klass):
            monkeypatch.setattr(klass, "_init_weights", skips_linears)
    with torch.no_grad(), torch_defaults_left_nan():
        assert nonfinite_tensors(cls(tiny_config(False)))  # the fast path alone would leave them
    model = mg.build_random_model(cls, tiny_config(False), "cpu")
    assert nonfinite_tensors(model) == []
