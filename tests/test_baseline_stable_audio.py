"""Stable Audio Open adapter: parity with diffusers' own pipeline on a tiny random twin saved in the real format,
golden parameter counts, weights layouts (hub cache, stable-audio-tools) and the early stop of the timing hook. No
network, no published weights. The checks every generator passes (missing weights, unit hooks, counts of the loaded
model, batch = single, seeds) are in test_generator_conformance.py."""

from __future__ import annotations

import importlib.abc
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_generators import diffusers_pipeline, save_tiny_stable_audio

from baselines import stable_audio as sa
from baselines.base import AdapterError, GenerationRequest, ItemError, WeightsChoice

PROMPT = "warm analog bass with brushed drums"
STEPS = 4

# Golden counts of Stable Audio Open 1.0 from the embedded published configs, built on the meta device with
# diffusers 0.42 / transformers 5.23. The paper's split is 156M VAE + 109M T5 + 1057M DiT ("1.2B"; those three add
# up to 1.32B); the projection model (two seconds embedders, the text projection being the identity) is extra.
GOLDEN = {"codec": 156_112_514, "text_encoder": 109_628_544, "dit": 1_056_939_136, "projection": 396_544}
GOLDEN_TOTAL = 1_323_076_738

# The stable-audio-tools model_config.json of stabilityai/stable-audio-open-1.0, the fields the mapping reads (values
# as published in the repository; the same file is mirrored in stable-audio-tools forks).
SAT_MODEL_CONFIG = {
    "model_type": "diffusion_cond", "sample_size": 2097152, "sample_rate": 44100, "audio_channels": 2,
    "model": {
        "pretransform": {"type": "autoencoder", "iterate_batch": True, "config": {
            "encoder": {"type": "oobleck", "requires_grad": False, "config": {
                "in_channels": 2, "channels": 128, "c_mults": [1, 2, 4, 8, 16], "strides": [2, 4, 4, 8, 8],
                "latent_dim": 128, "use_snake": True}},
            "decoder": {"type": "oobleck", "config": {
                "out_channels": 2, "channels": 128, "c_mults": [1, 2, 4, 8, 16], "strides": [2, 4, 4, 8, 8],
                "latent_dim": 64, "use_snake": True, "final_tanh": False}},
            "bottleneck": {"type": "vae"}, "latent_dim": 64, "downsampling_ratio": 2048, "io_channels": 2}},
        "conditioning": {"configs": [
            {"id": "prompt", "type": "t5", "config": {"t5_model_name": "t5-base", "max_length": 128}},
            {"id": "seconds_start", "type": "number", "config": {"min_val": 0, "max_val": 512}},
            {"id": "seconds_total", "type": "number", "config": {"min_val": 0, "max_val": 512}}],
            "cond_dim": 768},
        "diffusion": {"cross_attention_cond_ids": ["prompt", "seconds_start", "seconds_total"],
                      "global_cond_ids": ["seconds_start", "seconds_total"], "type": "dit",
                      "config": {"io_channels": 64, "embed_dim": 1536, "depth": 24, "num_heads": 24,
                                 "cond_token_dim": 768, "global_cond_dim": 1536, "project_cond_tokens": False,
                                 "transformer_type": "continuous_transformer"}},
        "io_channels": 64,
    },
}


@pytest.fixture(autouse=True)
def offline_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    cache = tmp_path / "hf_cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random StableAudioPipeline saved with save_pretrained: the diffusers layout of the published repo."""
    return save_tiny_stable_audio(tmp_path_factory.mktemp("sao_tiny"))


@pytest.fixture(scope="module")
def reference_pipe(tiny_folder: Path):
    """The same folder loaded by diffusers directly, its VAE made fast as the adapter makes it: the reference the
    adapter must match exactly (test_fused_vae_stays_within_float_noise_of_diffusers compares with diffusers' own
    layers)."""
    return diffusers_pipeline("StableAudioPipeline", tiny_folder, fast_vae=True)


def _plain_pipe(tiny_folder: Path):
    return diffusers_pipeline("StableAudioPipeline", tiny_folder, fast_vae=False)


@pytest.fixture(scope="module")
def tiny_adapter(tiny_folder: Path) -> sa.StableAudioOpen:
    adapter = sa.StableAudioOpen(WeightsChoice("pretrained", source=str(tiny_folder)), num_inference_steps=STEPS)
    adapter.load()
    return adapter


def _request(seed: int = 3, duration_s: float = 1.5) -> GenerationRequest:
    return GenerationRequest(item_id=f"item-{seed}", seed=seed, duration_s=duration_s, prompt=PROMPT)


def _reference(pipe, seed: int, duration_s: float, callback=None) -> torch.Tensor:
    return pipe(prompt=PROMPT, audio_end_in_s=duration_s, num_inference_steps=STEPS, guidance_scale=7.0,
                generator=torch.Generator("cpu").manual_seed(seed), callback=callback).audios[0]


# -- parity ---------------------------------------------------------------------------------------------------------
def test_fused_vae_stays_within_float_noise_of_diffusers(tiny_adapter: sa.StableAudioOpen, tiny_folder: Path) -> None:
    plain = _plain_pipe(tiny_folder)  # diffusers' own Snake1d
    out = tiny_adapter.generate([_request(3, 1.0)])[0].audio
    np.testing.assert_allclose(out, _reference(plain, 3, 1.0).numpy(), rtol=1e-4, atol=1e-5)


def test_generate_equals_the_pipeline_exactly(tiny_adapter: sa.StableAudioOpen, reference_pipe) -> None:
    outs = tiny_adapter.generate([_request(3, 1.5), _request(11, 0.5)])
    for out, (seed, duration) in zip(outs, [(3, 1.5), (11, 0.5)], strict=True):
        ref = _reference(reference_pipe, seed, duration).numpy()
        assert out.audio.dtype == np.float32 and out.audio.shape == (2, int(duration * 64)) == ref.shape
        np.testing.assert_array_equal(out.audio, ref)
        assert out.sample_rate == 64
        assert out.info["seed"] == seed and out.info["units_done"] == STEPS and not out.info["stopped_early"]
        assert out.info["guidance_scale"] == 7.0 and out.info["negative_prompt"] is None
        assert out.info["weights"] == "pretrained"
        assert "convolutions plain (samuel.codec); decode untiled (hop 8" in out.info["vae"]  # conftest pins plain
    assert not np.array_equal(outs[0].audio[:, :32], outs[1].audio[:, :32])  # the seed matters


def test_max_units_stops_early_and_decodes_once(tiny_adapter: sa.StableAudioOpen, reference_pipe,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    attempted: list[str] = []

    class Recorder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            attempted.append(name)
            return None

    monkeypatch.setattr(sys, "meta_path", [Recorder(), *sys.meta_path])
    captured: list[torch.Tensor] = []

    def keep_step_2(step: int, timestep, latents: torch.Tensor) -> None:
        if step == 1:
            captured.append(latents.clone())

    _reference(reference_pipe, 5, 1.0, callback=keep_step_2)
    with torch.no_grad():
        expected = reference_pipe.vae.decode(captured[0]).sample[0, :, :64].numpy()

    units: list[int] = []
    decodes: list[int] = []
    monkeypatch.setattr(tiny_adapter._pipe.vae, "decode", _counting(tiny_adapter._pipe.vae.decode, decodes))
    out = tiny_adapter.generate([_request(5, 1.0)], max_units=2, on_unit=lambda: units.append(1))[0]
    assert len(units) == 2 and out.info["units_done"] == 2 and out.info["stopped_early"]
    assert len(decodes) == 1
    np.testing.assert_array_equal(out.audio, expected)

    units.clear()
    tiny_adapter.generate([_request(5, 1.0)], max_units=99, on_unit=lambda: units.append(1))
    assert len(units) == STEPS == tiny_adapter.total_units(_request())
    assert not [m for m in attempted if m.split(".")[0] in ("torchaudio", "torchvision")]
    assert "torchaudio" not in sys.modules
    with pytest.raises(ValueError, match="max_units"):
        tiny_adapter.generate([_request()], max_units=0)


def _counting(fn, calls: list[int]):
    def wrapped(*args, **kwargs):
        calls.append(1)
        return fn(*args, **kwargs)
    return wrapped


def test_duration_beyond_the_model_raises_item_error(tiny_adapter: sa.StableAudioOpen) -> None:
    with pytest.raises(ItemError, match=r"item-3.*2\.5 s.*0 and 2\.0000 s"):
        tiny_adapter.generate([_request(3, 2.5)])
    assert sa.SAO_CONFIGS.max_duration_s() == pytest.approx(47.5544, abs=1e-4)


# -- parameter counts -----------------------------------------------------------------------------------------------
def test_published_counts_are_golden() -> None:
    counts = sa.count_sao_parameters(sa.SAO_CONFIGS)
    assert counts.by_component == GOLDEN
    assert counts.total == GOLDEN_TOTAL
    # with no weights found, the counts are the embedded published architecture's
    assert sa.StableAudioOpen(WeightsChoice("random")).parameter_counts().total == GOLDEN_TOTAL


def test_stable_audio_tools_config_maps_to_the_embedded_configs() -> None:
    assert sa.configs_from_sat_model_config(SAT_MODEL_CONFIG) == sa.SAO_CONFIGS


# -- weights ----------------------------------------------------------------------------------------------------------
def test_hub_cache_snapshot_is_found(tiny_folder: Path, offline_hub: Path) -> None:
    repo = offline_hub / f"models--{sa.HUB_ID.replace('/', '--')}"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(tiny_folder, repo / "snapshots" / commit)
    adapter = sa.StableAudioOpen(WeightsChoice("auto"))
    assert adapter.status.kind == "pretrained" and "Hugging Face cache" in adapter.status.message
    assert adapter.parameter_counts() == sa.count_sao_parameters(sa.TINY_CONFIGS)


def test_random_mode_builds_from_the_embedded_configs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sa, "SAO_CONFIGS", sa.TINY_CONFIGS)  # the same code path, tiny
    monkeypatch.setattr(sa, "t5_tokenizer_or_standin", lambda n: (sa.byte_tokenizer(n), sa.STANDIN_TOKENIZER_LABEL))
    adapter = sa.StableAudioOpen(WeightsChoice("random"), num_inference_steps=2, seed=7)
    out = adapter.generate([_request(1, 0.25)])[0]
    assert out.audio.shape == (2, 16) and np.isfinite(out.audio).all()
    assert out.info["weights"] == "random" and out.info["tokenizer"] == sa.STANDIN_TOKENIZER_LABEL
    assert "seed 7" in adapter.status.source


def test_stable_audio_tools_checkpoint_is_refused_with_instructions(tmp_path: Path) -> None:
    folder = tmp_path / "sat"
    folder.mkdir()
    (folder / "model_config.json").write_text(json.dumps(SAT_MODEL_CONFIG))
    (folder / "model.safetensors").write_bytes(b"\0" * 16)
    for source in (folder, folder / "model.safetensors"):
        adapter = sa.StableAudioOpen(WeightsChoice("pretrained", source=str(source)))
        assert adapter.status.kind == "pretrained"
        assert adapter.parameter_counts().total == GOLDEN_TOTAL  # from model_config.json
        with pytest.raises(AdapterError, match=r"stable-audio-tools checkpoint.*convert_stable_audio\.py"):
            adapter.load()


def test_bad_options_fail_fast() -> None:
    with pytest.raises(ValueError, match="unknown options"):
        sa.StableAudioOpen(steps=3)
    with pytest.raises(ValueError, match="dtype"):
        sa.StableAudioOpen(dtype="int8")
    adapter = sa.StableAudioOpen(num_inference_steps=50, guidance_scale=3.0, negative_prompt="noise")
    assert adapter.total_units(_request()) == 50 and adapter.timing_unit == "steps"


def test_bf16_distance_from_fp32_and_auto_dtype(tiny_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import samuel.generate

    choice = WeightsChoice("pretrained", source=str(tiny_folder))
    assert sa.StableAudioOpen(choice).dtype_name == "float32"  # "auto" on a CPU without native bf16 (conftest)
    assert sa.StableAudioOpen(choice).precision_distance(_request()) is None
    monkeypatch.setattr(samuel.generate, "cpu_has_native_bf16", lambda cpuinfo=None: True)
    fast = sa.StableAudioOpen(choice, num_inference_steps=STEPS)
    assert fast.dtype_name == "bfloat16" and fast.precision() == "bf16"
    distance = fast.precision_distance(_request())
    assert list(distance.stages) == ["DiT (first guided call)", "VAE decode"]
    assert all(15.0 < v < 70.0 for v in distance.stages.values()), distance.stages  # bf16: close, never exact
    assert "item 'item-3'" in distance.on and "pretrained weights" in distance.on


def test_the_planned_distance_takes_its_fp32_side_at_load(tiny_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Planned (what the timing pass does), the fp32 side is run on the fp32 weights before the cast: no second copy
    is built, its seconds are kept apart from the load, and it is what the rebuilt fp32 pipeline gives on the same
    inputs. Another request still compares through the rebuilt copy."""
    import samuel.generate

    monkeypatch.setattr(samuel.generate, "cpu_has_native_bf16", lambda cpuinfo=None: True)
    choice = WeightsChoice("pretrained", source=str(tiny_folder))
    planned = sa.StableAudioOpen(choice, num_inference_steps=STEPS)
    planned.plan_precision_distance(_request())
    planned.load()
    assert planned.fp32_reference_s > 0 and planned._pipe.transformer.dtype == torch.bfloat16
    item_id, call, (exact_dit, exact_vae) = planned._exact_first_call
    assert item_id == "item-3" and all(t.dtype == torch.float32 for t in call[0] if isinstance(t, torch.Tensor))
    rebuilt = planned._fp32_pipeline()
    with torch.inference_mode():
        again = sa.dit_and_vae_outputs(rebuilt.transformer, call, rebuilt.vae, seed=0, device="cpu")
    torch.testing.assert_close(exact_dit, again[0], rtol=0, atol=0)  # the same fp32 weights and inputs
    torch.testing.assert_close(exact_vae, again[1], rtol=1e-5, atol=1e-6)  # diffusers' VAE against the fused one

    monkeypatch.setattr(planned, "_fp32_pipeline", lambda: pytest.fail("the planned request rebuilt the fp32 copy"))
    distance = planned.precision_distance(_request())
    assert all(15.0 < v < 70.0 for v in distance.stages.values()), distance.stages
    assert "its fp32 inputs" in distance.on and "item 'item-3'" in distance.on
    monkeypatch.undo()
    monkeypatch.setattr(samuel.generate, "cpu_has_native_bf16", lambda cpuinfo=None: True)
    other = planned.precision_distance(_request(seed=4))  # not planned: the rebuilt copy, on the loaded inputs
    assert "fp32 inputs" not in other.on and all(15.0 < v < 70.0 for v in other.stages.values())
