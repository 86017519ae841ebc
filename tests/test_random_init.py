"""Random weights drawn once (baselines.random_init; MusicGen's random build): nothing left undrawn, the same
weights every build, each weight from transformers' own distribution, and the old double draw (with a warning) when
a module is missed. Also cast_like, which gives a captured call's inputs another precision's dtypes."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from tiny_generators import musicgen_tiny_config as tiny_config
from tiny_generators import one_torch_thread

import baselines.musicgen as mg
from baselines.base import cast_like
from baselines.random_init import DoubleDrawWarning, nonfinite_tensors, torch_defaults_left_nan


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


@pytest.mark.parametrize("padding_idx", [0, 9])
def test_an_embedding_whose_padding_row_is_zeroed_keeps_a_mark(padding_idx: int) -> None:
    """torch zeroes the padding row after drawing an embedding: one mark in that row would be erased."""
    with torch.no_grad(), torch_defaults_left_nan():
        embedding = torch.nn.Embedding(10, 4, padding_idx=padding_idx)
    assert nonfinite_tensors(embedding) == ["weight"]


def test_an_overflowing_sum_is_not_taken_for_a_nan() -> None:
    module = torch.nn.Linear(4, 4)
    with torch.no_grad():
        module.weight.fill_(3e38)  # finite, but its sum overflows to inf
    assert nonfinite_tensors(module) == []


@pytest.mark.parametrize("melody", [False, True])
def test_a_random_musicgen_is_drawn_once_whole_and_the_same_every_build(melody: bool) -> None:
    cls = mg.model_class(melody)
    state = torch.random.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DoubleDrawWarning)  # drawn once: the fallback never ran
        model = mg.build_random_model(cls, tiny_config(melody), "cpu")
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG untouched
    assert nonfinite_tensors(model) == []
    again = mg.build_random_model(cls, tiny_config(melody), "cpu")
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    # every decoder Linear is transformers' N(0, initializer_factor) draw, biases zero
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

    def skipping_linears(real_init):  # a release whose initialisation misses every Linear layer
        def init(self, module):
            if not isinstance(module, torch.nn.Linear):
                real_init(self, module)
        return init

    classes = {k for m in cls(tiny_config(False)).modules() for k in type(m).__mro__ if "_init_weights" in vars(k)}
    assert len(classes) >= 3  # MusicGen's, T5's, EnCodec's (and transformers' base)
    for klass in classes:
        monkeypatch.setattr(klass, "_init_weights", skipping_linears(vars(klass)["_init_weights"]))
    with torch.no_grad(), torch_defaults_left_nan():
        missed = nonfinite_tensors(cls(tiny_config(False)))  # the fast path alone would leave them
    assert any(name.startswith("decoder.") and name.endswith("proj.weight") for name in missed), missed
    with pytest.warns(DoubleDrawWarning, match="left .* tensors undrawn"):
        model = mg.build_random_model(cls, tiny_config(False), "cpu")
    assert nonfinite_tensors(model) == []


def test_cast_like_follows_the_structure_and_leaves_the_rest() -> None:
    half, full = torch.zeros(2, dtype=torch.bfloat16), torch.ones(2)
    value = ((full, None, 3), {"a": full, "b": True, "c": torch.arange(3)})
    like = ((half, None, 3), {"a": full.double(), "b": True, "c": torch.arange(3)})
    (a, none, three), rest = cast_like(value, like)
    assert a.dtype == torch.bfloat16 and none is None and three == 3
    assert rest["a"].dtype == torch.float64 and rest["b"] is True and rest["c"].dtype == torch.int64
    with pytest.raises(ValueError):  # another structure: no silent pairing of the wrong tensors
        cast_like((full, full), (half,))


def test_a_random_draw_that_changed_is_part_of_the_model_key(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Samples, probes and timings stored under the old double draw's key are not reused for the new draw's model;
    a model whose draw did not change, or one with real weights, keeps its key (and every stored sample)."""
    from tiny_generators import save_tiny_musicgen

    from baselines.base import WeightsChoice
    from baselines.samuel_adapter import SAMUeLGenerator
    from bench.evaluate import model_key

    random_key = model_key(mg.MusicGenSmall(WeightsChoice("random")))
    assert random_key["random_draw"].startswith("drawn once")
    assert "random_draw" not in model_key(SAMUeLGenerator(WeightsChoice("random")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    save_tiny_musicgen(tmp_path / "tiny")
    pretrained = mg.MusicGenSmall(WeightsChoice("pretrained", source=str(tmp_path / "tiny")))
    assert pretrained.status.kind == "pretrained" and "random_draw" not in model_key(pretrained)
