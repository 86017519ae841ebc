"""ACE-Step 1.5 adapter: parity with diffusers' own AceStepPipeline on a tiny random twin saved in the diffusers
layout, the early stop of the timing hook, golden parameter counts of the embedded published architecture, weights
layouts (hub cache, ACE-Step's own layout, a turbo DiT), options, and Table II without a paper row. No network, no
published weights. The checks every generator passes are in test_generator_conformance.py."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soxr
import torch
from tiny_generators import diffusers_pipeline, one_torch_thread, save_tiny_ace_step, write_signal

from baselines import ace_step as ace
from baselines import registry
from baselines.base import AdapterError, GenerationRequest, ItemError, WeightsChoice
from samuel.audio import load_window

PROMPT = "warm piano ballad with brushed drums"
STEPS = 2

# Golden counts of the embedded ACE-Step 1.5 XL base architecture, built on the meta device with diffusers 0.42 /
# transformers 5.24. Cross-checks against published numbers: the DiT's 4.17 B matches the "~4.17 B-parameter DiT"
# others derive from the checkpoint's size (the XL family is announced as "5B" / "4B DiT"); Qwen3-Embedding-0.6B is
# 0.6 B; the VAE's 168,695,426 parameters are the 337,431,388-byte bf16 vae/diffusion_pytorch_model.safetensors of
# ACE-Step/Ace-Step1.5 less its header.
GOLDEN = {"dit": 4_168_897_088, "condition_encoder": 608_369_664, "text_encoder": 595_776_512,
          "audio_tokenizer": 105_032_198, "audio_detokenizer": 105_011_776, "vae": 168_695_426}
GOLDEN_TOTAL = 5_751_782_664


@pytest.fixture(autouse=True)
def offline_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    cache = tmp_path / "hf_cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_ace_step(tmp_path_factory.mktemp("ace_tiny"))


@pytest.fixture(scope="module")
def reference_pipe(tiny_folder: Path):
    """The same folder loaded by diffusers directly, its VAE made fast as the adapter makes it: the reference the
    adapter must match exactly (test_fused_vae_stays_within_float_noise_of_diffusers compares with diffusers' own
    layers)."""
    return diffusers_pipeline("AceStepPipeline", tiny_folder, fast_vae=True)


def _plain_pipe(tiny_folder: Path):
    return diffusers_pipeline("AceStepPipeline", tiny_folder, fast_vae=False)


@pytest.fixture(scope="module")
def vocal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_signal(tmp_path_factory.mktemp("ace_vocal") / "vocal.wav", 1.0, seed=7)


def _adapter(folder: Path, **options) -> ace.AceStep:
    adapter = ace.AceStep(WeightsChoice("pretrained", source=str(folder)), num_inference_steps=STEPS, **options)
    adapter.load()
    return adapter


def _request(vocal: Path, seed: int = 3, duration_s: float = 0.21, start_s: float = 0.3) -> GenerationRequest:
    return GenerationRequest(f"item-{seed}", seed, duration_s, PROMPT, vocal_path=vocal, start_s=start_s)


def _reference(pipe, request: GenerationRequest, callback=None, steps: int = STEPS, own_noise: bool = False,
               **task) -> np.ndarray:
    """The pipeline's own call, its inputs built here independently of the adapter: the vocal window read at
    44.1 kHz, resampled with soxr to 48 kHz, zero-padded to whole 1920-sample latent frames; the global stream (the
    VAE's posterior sample) and the noise generator seeded with the item's seed."""
    window = load_window(request.vocal_path, request.start_s, request.duration_s).samples
    at48 = soxr.resample(window.T, 44_100, 48_000, quality="VHQ").T[:, : round(window.shape[1] * 48_000 / 44_100)]
    frames = -(-at48.shape[1] // 1920)
    src = np.zeros((2, frames * 1920), np.float32)
    src[:, : at48.shape[1]] = at48
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(request.seed)
        generator = torch.Generator("cpu").manual_seed(request.seed)
        if own_noise:  # the noise prepare_latents would draw, drawn here (see test_window_lengths_...)
            task["latents"] = torch.randn((1, frames, 4), generator=generator)
        audio = pipe(prompt=PROMPT, lyrics="", audio_duration=request.duration_s, num_inference_steps=steps,
                     guidance_scale=7.0, shift=3.0, src_audio=torch.from_numpy(src), generator=generator,
                     callback_on_step_end=callback, **task).audios[0]
    return audio.numpy()[:, : round(request.duration_s * 48_000)]


# -- parity -----------------------------------------------------------------------------------------------------------
def test_fused_vae_stays_within_float_noise_of_diffusers(tiny_folder: Path) -> None:
    """The adapter's VAE (Snake fused, weight norm computed once) against diffusers' own, on the same latents and
    audio. (End to end the random tiny DiT amplifies the 1e-7 differences to 1e-3 over its steps, so the pipeline
    parity above compares with the same swap made in the reference.)"""
    fast, plain = _adapter(tiny_folder)._pipe.vae, _plain_pipe(tiny_folder).vae
    latents = torch.randn(1, 4, 6, generator=torch.Generator().manual_seed(0))
    audio = 0.3 * torch.randn(1, 2, 6 * 1920, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        torch.testing.assert_close(fast.decode(latents).sample, plain.decode(latents).sample, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(fast.encode(audio).latent_dist.mean, plain.encode(audio).latent_dist.mean,
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("options", "task"), [
    ({}, {"task_type": "complete", "complete_track_classes": ["drums", "bass", "guitar", "keyboard"]}),
    ({"task": "lego", "track": "strings"}, {"task_type": "lego", "track_name": "strings"}),
])
def test_generate_equals_the_pipeline_exactly(tiny_folder: Path, reference_pipe, vocal: Path, options, task) -> None:
    adapter = _adapter(tiny_folder, **options)
    request = _request(vocal)
    out = adapter.generate([request])[0]
    assert out.sample_rate == 48_000 and out.audio.shape == (2, 10_080) and out.audio.dtype == np.float32
    np.testing.assert_array_equal(out.audio, _reference(reference_pipe, request, **task))
    assert out.info["instruction"] == reference_pipe._get_task_instruction(
        task["task_type"], task.get("track_name"), task.get("complete_track_classes"))
    assert out.info["src_samples"] == 11_520 and out.info["generated_samples"] == 11_520  # 6 whole frames of 1920
    assert np.abs(out.audio).max() <= 10 ** (-1 / 20) + 1e-6  # the pipeline's -1 dBFS peak (maybe in the cut tail)


def test_window_lengths_the_pipeline_miscounts(tiny_folder: Path, reference_pipe, vocal: Path) -> None:
    """0.25 s = 7 latent frames: diffusers 0.42's prepare_latents recounts ceil(7 / 25 * 25) = 8 frames and its own
    call fails; the adapter draws the same noise itself, so it equals the pipeline given that noise."""
    request = _request(vocal, duration_s=0.25)
    task = {"task_type": "complete", "complete_track_classes": list(ace.DEFAULT_COMPLETE_TRACKS)}
    with pytest.raises(RuntimeError, match="Expected size 7 but got size 8"):
        _reference(reference_pipe, request, **task)
    out = _adapter(tiny_folder).generate([request])[0]
    assert out.audio.shape == (2, 12_000) and out.info["src_samples"] == 7 * 1920
    np.testing.assert_array_equal(out.audio, _reference(reference_pipe, request, own_noise=True, **task))


def test_tasks_and_vocals_change_the_output(tiny_folder: Path, vocal: Path, tmp_path: Path) -> None:
    complete, lego = _adapter(tiny_folder), _adapter(tiny_folder, task="lego")
    request = _request(vocal)
    assert not np.array_equal(complete.generate([request])[0].audio, lego.generate([request])[0].audio)
    other = write_signal(tmp_path / "other.wav", 1.0, seed=8)
    swapped = GenerationRequest(request.item_id, request.seed, request.duration_s, PROMPT, vocal_path=other,
                                start_s=request.start_s)
    assert not np.array_equal(complete.generate([request])[0].audio, complete.generate([swapped])[0].audio)


def test_max_units_stops_the_pipeline_after_k_steps(tiny_folder: Path, reference_pipe, vocal: Path) -> None:
    adapter = ace.AceStep(WeightsChoice("pretrained", source=str(tiny_folder)), num_inference_steps=4)
    request = _request(vocal, seed=5)
    ticks: list[int] = []
    part = adapter.generate([request], max_units=1, on_unit=lambda: ticks.append(1))[0]
    assert ticks == [1] and part.info["units_done"] == 1 and part.info["stopped_early"]
    assert part.audio.shape == (2, 10_080)

    def interrupt(pipe, step, timestep, kwargs):  # the reference stopped the same way, after its first step
        pipe._interrupt = True
        return kwargs

    ref = _reference(reference_pipe, request, interrupt, steps=4, task_type="complete",
                     complete_track_classes=list(ace.DEFAULT_COMPLETE_TRACKS))
    np.testing.assert_array_equal(part.audio, ref)
    full = adapter.generate([request])[0]
    assert full.info["units_done"] == 4 and not np.array_equal(full.audio, part.audio)


def test_output_is_cut_to_the_window_and_needs_a_vocal(tiny_folder: Path, vocal: Path) -> None:
    adapter = _adapter(tiny_folder)
    out = adapter.generate([_request(vocal, duration_s=0.2, start_s=0.0)])[0]
    assert out.audio.shape == (2, 9_600) and out.info["generated_samples"] == 9_600  # exactly 5 frames
    with pytest.raises(ItemError, match="no vocal"):
        adapter.generate([GenerationRequest("none", 1, 0.2, PROMPT)])


# -- counts -----------------------------------------------------------------------------------------------------------
def test_published_counts_are_golden_and_memory_is_sane() -> None:
    adapter = registry.create("ace-step", WeightsChoice("random"))
    counts = adapter.parameter_counts()
    assert counts.by_component == GOLDEN and counts.total == GOLDEN_TOTAL
    assert adapter.memory_estimate_bytes() == int(GOLDEN_TOTAL * 4 * 1.25)  # ~26.8 GiB in float32
    half = registry.create("ace-step", WeightsChoice("random"), dtype="bfloat16")
    half._counts = (counts,)
    assert half.memory_estimate_bytes() == int(GOLDEN_TOTAL * 2 * 1.25)


def test_embedded_configs_are_consistent() -> None:
    cfg = ace.PUBLISHED_CONFIGS
    hop = int(np.prod(cfg.vae["downsampling_ratios"]))
    assert hop == 1920 and cfg.vae["sampling_rate"] / hop == 25  # 25 Hz latents
    assert cfg.transformer["in_channels"] == 3 * cfg.vae["decoder_input_channels"]  # noisy + source + mask
    assert cfg.vae["encoder_hidden_size"] == 2 * cfg.vae["decoder_input_channels"]  # mean and scale
    assert cfg.transformer["encoder_hidden_size"] == cfg.condition_encoder["hidden_size"]
    assert cfg.condition_encoder["text_hidden_dim"] == cfg.text_encoder["hidden_size"]
    assert cfg.condition_encoder["timbre_hidden_dim"] == cfg.vae["decoder_input_channels"]
    assert cfg.transformer["model_version"] == "base" and not cfg.transformer["is_turbo"]
    assert int(np.prod(cfg.audio_tokenizer["fsq_input_levels"])) == 64_000  # ACE-Step's 64k audio codes


def test_counts_come_from_the_folders_configs(tiny_folder: Path) -> None:
    adapter = ace.AceStep(WeightsChoice("pretrained", source=str(tiny_folder)))
    assert adapter.parameter_counts() == ace.count_ace_step_parameters(ace.TINY_CONFIGS)
    assert adapter.parameter_source() == str(tiny_folder)
    # each component's count names the file it was built from
    assert adapter.parameter_sources() == {
        "dit": str(tiny_folder / "transformer" / "config.json"),
        "condition_encoder": str(tiny_folder / "condition_encoder" / "config.json"),
        "text_encoder": str(tiny_folder / "text_encoder" / "config.json"),
        "vae": str(tiny_folder / "vae" / "config.json"),
        "audio_tokenizer": str(tiny_folder / "audio_tokenizer" / "config.json"),
        "audio_detokenizer": str(tiny_folder / "audio_token_detokenizer" / "config.json")}
    assert set(adapter.parameter_sources()) == set(adapter.parameter_counts().by_component)


# -- weights ----------------------------------------------------------------------------------------------------------
def test_hub_cache_snapshot_is_found(tiny_folder: Path, offline_hub: Path, vocal: Path) -> None:
    repo = offline_hub / f"models--{ace.HUB_ID.replace('/', '--')}"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(tiny_folder, repo / "snapshots" / commit)
    adapter = ace.AceStep(WeightsChoice("auto"), num_inference_steps=STEPS)
    assert adapter.status.kind == "pretrained" and "Hugging Face cache" in adapter.status.message
    assert adapter.parameter_counts() == ace.count_ace_step_parameters(ace.TINY_CONFIGS)
    assert adapter.generate([_request(vocal)])[0].audio.shape == (2, 10_080)


def test_random_mode_builds_from_the_embedded_configs(monkeypatch: pytest.MonkeyPatch, vocal: Path) -> None:
    monkeypatch.setattr(ace, "PUBLISHED_CONFIGS", ace.TINY_CONFIGS)  # the same code path, tiny
    adapter = ace.AceStep(WeightsChoice("random"), num_inference_steps=2, seed=7)
    assert adapter.status.kind == "random" and "RANDOM" in adapter.status.message and "seed 7" in adapter.status.source
    out = adapter.generate([_request(vocal)])[0]
    assert out.audio.shape == (2, 10_080) and np.isfinite(out.audio).all()
    assert out.info["weights"] == "random" and out.info["tokenizer"] == ace.STANDIN_TOKENIZER_LABEL


def test_random_weights_are_made_in_the_asked_dtype(monkeypatch: pytest.MonkeyPatch, vocal: Path) -> None:
    # bfloat16 random init never holds a float32 copy (the full model would need 23 GB for it on a 22 GB machine)
    monkeypatch.setattr(ace, "PUBLISHED_CONFIGS", ace.TINY_CONFIGS)
    adapter = ace.AceStep(WeightsChoice("random"), num_inference_steps=3, dtype="bfloat16")
    adapter.load()
    dtypes = {p.dtype for m in adapter._pipe.components.values() if isinstance(m, torch.nn.Module)
              for p in m.parameters()}
    assert dtypes == {torch.bfloat16} and torch.get_default_dtype() == torch.float32
    out = adapter.generate([_request(vocal)], max_units=1)[0]
    assert out.audio.dtype == np.float32 and np.isfinite(out.audio).all() and out.info["units_done"] == 1
    assert out.info["vae"].endswith("convolutions plain (samuel.codec)")  # conftest pins the layout to plain


def test_auto_dtype_is_bf16_where_the_cpu_computes_it_natively(monkeypatch: pytest.MonkeyPatch) -> None:
    import samuel.generate

    assert ace.AceStep(WeightsChoice("random")).dtype_name == "float32"  # conftest: no native bf16
    assert ace.AceStep(WeightsChoice("random"), dtype="bfloat16").dtype_name == "bfloat16"
    monkeypatch.setattr(samuel.generate, "cpu_has_native_bf16", lambda cpuinfo=None: True)
    assert ace.AceStep(WeightsChoice("random")).dtype_name == "bfloat16"
    assert ace.AceStep(WeightsChoice("random"), dtype="float32").dtype_name == "float32"


def test_bf16_distance_from_fp32_dit_and_vae(monkeypatch: pytest.MonkeyPatch, vocal: Path) -> None:
    from baselines.base import PrecisionDistance

    monkeypatch.setattr(ace, "PUBLISHED_CONFIGS", ace.TINY_CONFIGS)
    fast = ace.AceStep(WeightsChoice("random"), num_inference_steps=3, dtype="bfloat16")
    distance = fast.precision_distance(_request(vocal))
    assert isinstance(distance, PrecisionDistance)
    assert list(distance.stages) == ["DiT (first guided call)", "VAE decode"]
    # bf16 keeps 8 significant bits: 15-70 dB per stage, never exact, never noise
    assert all(15.0 < v < 70.0 for v in distance.stages.values()), distance.stages
    assert {p.dtype for p in fast._pipe.transformer.parameters()} == {torch.bfloat16}  # the loaded one untouched
    assert distance.on.endswith("random weights")  # drawn in bf16: no rounding for a copy to miss
    assert ace.AceStep(WeightsChoice("random"), dtype="float32").precision_distance(_request(vocal)) is None
    import baselines.base

    monkeypatch.setattr(baselines.base, "free_bytes", lambda device: 1000)  # no room for the fp32 copies: says so
    with pytest.raises(ace.AdapterError, match="fp32 copies of the DiT and the VAE"):
        fast.precision_distance(_request(vocal))


def test_the_planned_items_dit_call_is_kept_from_its_timed_run(monkeypatch: pytest.MonkeyPatch, vocal: Path) -> None:
    """Planned (what the timing pass does), the first DiT call of the item's own generation is copied then, and the
    distance uses it instead of running the pipeline again up to that call: the same SNRs to the bit."""
    import baselines.base

    monkeypatch.setattr(ace, "PUBLISHED_CONFIGS", ace.TINY_CONFIGS)
    request = _request(vocal)
    expected = ace.AceStep(WeightsChoice("random"), num_inference_steps=3, dtype="bfloat16").precision_distance(request)
    planned = ace.AceStep(WeightsChoice("random"), num_inference_steps=3, dtype="bfloat16")
    planned.plan_precision_distance(request)
    planned.generate([request])  # all three steps: later steps must not change the copied inputs
    reruns = []
    monkeypatch.setattr(baselines.base, "first_call_inputs", lambda *a: reruns.append(1))
    monkeypatch.setattr(ace, "first_call_inputs", lambda *a: reruns.append(1))
    assert planned.precision_distance(request).stages == expected.stages and reruns == []


def test_bf16_distance_of_a_checkpoint_says_its_rounding_is_not_counted(tiny_folder: Path, vocal: Path) -> None:
    fast = ace.AceStep(WeightsChoice("pretrained", source=str(tiny_folder)), num_inference_steps=2, dtype="bfloat16")
    distance = fast.precision_distance(_request(vocal))
    assert distance is not None and all(15.0 < v < 70.0 for v in distance.stages.values()), distance
    assert "copies the loaded bf16 weights, so their rounding from the checkpoint is not counted" in distance.on


def test_ace_steps_own_layout_is_refused_with_the_conversion(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    for sub in ("acestep-v15-base", "vae", "Qwen3-Embedding-0.6B"):
        (root / sub).mkdir(parents=True)
    (root / "acestep-v15-base" / "silence_latent.pt").write_bytes(b"\0")
    for path in (root, root / "acestep-v15-base"):
        with pytest.raises(AdapterError, match=r"ACE-Step's own layout.*convert_ace_step_to_diffusers\.py"):
            ace.pipeline_folder(path)
    with pytest.raises(AdapterError, match=r"no model_index\.json"):
        ace.pipeline_folder(tmp_path)


def test_turbo_and_sft_checkpoints_are_refused(tmp_path: Path) -> None:
    ace.check_base_model(SimpleNamespace(is_turbo=False, model_version="base"), tmp_path)
    for config in (SimpleNamespace(is_turbo=True, model_version="turbo"),
                   SimpleNamespace(is_turbo=False, model_version="sft")):
        with pytest.raises(AdapterError, match=rf"{tmp_path}/transformer/config\.json.*base model"):
            ace.check_base_model(config, tmp_path)


# -- options ----------------------------------------------------------------------------------------------------------
def test_options_and_their_defaults() -> None:
    adapter = registry.create("ace-step")
    assert (adapter.task, adapter.tracks) == ("complete", ace.DEFAULT_COMPLETE_TRACKS)
    assert adapter.instruction == "Complete the input track with DRUMS | BASS | GUITAR | KEYBOARD:"
    assert (adapter.num_inference_steps, adapter.guidance_scale, adapter.shift) == (50, 7.0, 3.0)
    assert adapter.total_units(GenerationRequest("a", 0, 1.0)) == 50 and adapter.timing_unit == "steps"
    assert adapter.default_timing_mode == "extrapolate" and adapter.sample_rate == 48_000
    assert (adapter.conditioning, adapter.uses_vocal, adapter.uses_text) == ("Vocal + Text", True, True)
    lego = registry.create("ace-step", task="lego")
    assert lego.instruction == "Generate the KEYBOARD track based on the audio context:"
    assert registry.create("ace-step", tracks="Strings, brass").tracks == ("strings", "brass")
    assert registry.create("ace-step", task="lego", track="bass").instruction.startswith("Generate the BASS track")


def test_bad_options_fail_fast() -> None:
    with pytest.raises(AdapterError, match=r"unknown task 'cover'; allowed: complete, lego"):
        registry.create("ace-step", task="cover")
    with pytest.raises(AdapterError, match=r"unknown track.*'kazoo'.*woodwinds"):
        registry.create("ace-step", tracks="drums,kazoo")
    with pytest.raises(AdapterError, match="'track' is for task 'lego'"):
        registry.create("ace-step", track="bass")
    with pytest.raises(AdapterError, match="'tracks' is for task 'complete'"):
        registry.create("ace-step", task="lego", tracks="bass")
    with pytest.raises(ValueError, match="unknown options"):
        registry.create("ace-step", steps=3)
    with pytest.raises(ValueError, match="dtype"):
        registry.create("ace-step", dtype="int8")
    with pytest.raises(ValueError, match="num_inference_steps"):
        registry.create("ace-step", num_inference_steps=0)


# -- pure helpers -----------------------------------------------------------------------------------------------------
def test_resample_exact_keeps_length_and_pitch() -> None:
    t = np.arange(44_100 * 3 // 10) / 44_100
    tone = np.stack([np.sin(2 * np.pi * 1000 * t)] * 2).astype(np.float32)
    out = ace.resample_exact(tone, 44_100, 48_000)
    assert out.shape == (2, 14_400) and out.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(out[0] * np.hanning(out.shape[1])))
    assert np.fft.rfftfreq(out.shape[1], 1 / 48_000)[spectrum.argmax()] == pytest.approx(1000, abs=4)
    np.testing.assert_array_equal(ace.resample_exact(tone, 44_100, 44_100), tone)
    np.testing.assert_array_equal(ace.fit_length(out, 10), out[:, :10])
    assert ace.fit_length(out[:, :5], 8)[:, 5:].tolist() == [[0, 0, 0], [0, 0, 0]]


# -- Table II ---------------------------------------------------------------------------------------------------------
def test_table2_has_a_row_without_paper_values() -> None:
    from bench.results import RunResults
    from reports.paper import TABLE2
    from reports.table2 import table2

    assert "ace-step" not in TABLE2  # the paper has no ACE-Step row
    est = {"value": 300.0, "ci_low": 280.0, "ci_high": 320.0, "n": 3, "method": "order statistics"}
    data = {
        "format": "samuel-bench-results/2", "config": {}, "manifest": {"rejected": []},
        "provenance": {"device": {"cpu": "x86_64", "torch_threads": 2}},
        "models": {"ace-step": {
            "spec": "ace-step", "describe": {"display_name": "ACE-Step 1.5", "conditioning": "Vocal + Text"},
            "weights": {"kind": "random"}, "status": "run",
            "params": {"params_total": GOLDEN_TOTAL, "params_by_component": copy.deepcopy(GOLDEN)},
            "timing": {"status": "measured", "seconds": est, "label": "extrapolated from 2 of 50 steps",
                       "rtf": {**est, "value": 6.3}}}},
    }
    table = table2(RunResults.from_json(data, source="t/results.json"))
    cells = dict(zip(table.columns, (c.display for c in table.rows[0]), strict=True))
    assert cells["Model"] == "ACE-Step 1.5" and cells["Conditioning"] == "Vocal + Text"
    assert cells["Parameters (paper)"] == cells["Inference time (paper)"] == cells["Conditioning (paper)"] == "—"


def test_a_bad_vocal_file_is_an_item_error_naming_it(tiny_folder: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    with pytest.raises(ItemError, match=str(bad)):
        _adapter(tiny_folder).generate([GenerationRequest("b", 1, 0.2, PROMPT, vocal_path=bad)])
