"""Stable Audio Open 1.0 behind the :class:`~baselines.base.Generator` interface: text prompt to 44.1 kHz stereo.

The model is diffusers' ``StableAudioPipeline``: a T5-base text encoder, a projection model (text and the start /
end seconds into the DiT's conditioning space), a 1.06 B parameter DiT denoising 64-channel latents of 1024 frames,
the Oobleck VAE (one latent frame = 2048 samples) and a DPM-Solver++ (2nd order, SDE) scheduler. Every call denoises
the full 1024-frame window (47.55 s) and crops the audio to the requested duration, so the cost of one step does not
depend on the duration asked for.

Weights, through :func:`baselines.weights.resolve_hub_weights` (never the network):

* a local diffusers pipeline folder (``model_index.json`` and its subfolders), or the hub id
  ``stabilityai/stable-audio-open-1.0`` in the Hugging Face cache; loaded with ``from_pretrained(local_files_only)``;
* a stable-audio-tools checkpoint (``model.safetensors`` / ``model.ckpt``, or a folder with ``model_config.json``):
  recognised, and its ``model_config.json`` gives exact parameter counts, but it is not converted at load time (the
  T5 encoder is not in that file, and the DiT key mapping cannot be checked here against a real file): loading
  raises :class:`AdapterError` saying how to convert it or where the diffusers folders of the same release are;
* ``random`` (or ``auto`` with nothing found): the real architecture from the embedded published configs below,
  seeded; efficiency only.

Timing: one unit is one denoising step (one DiT forward on a batch of 2 with guidance, one scheduler step).
``max_units=k`` runs the pipeline with its full schedule and stops it after step ``k``, then decodes those latents
with the VAE once, so each step costs what it costs in a full run and the decode is included once.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from baselines.base import (
    AdapterError,
    GeneratedAudio,
    GenerationRequest,
    Generator,
    ItemError,
    ParamCount,
    PrecisionDistance,
    WeightsChoice,
    WeightsStatus,
    cast_like,
    count_parameters,
    distance_of_outputs,
    dit_and_vae_distance,
    dit_and_vae_outputs,
    first_call_inputs,
    is_out_of_memory,
    resolve_dtype_option,
)
from baselines.weights import Resolved, read_json_object, resolve_hub_weights
from samuel.codec import randomise_snake_, speed_up_pipeline_vae_, tile_decode_
from samuel.codec_weights import SAT_PREFIX, SAT_SUFFIXES
from samuel.hub import hub_cache_dir

HUB_ID = "stabilityai/stable-audio-open-1.0"
SAMPLE_RATE = 44_100
HOW_TO_GET = (
    f"The repository {HUB_ID} is gated: log in to Hugging Face and accept its licence (the Stability AI Community "
    f"License) on https://huggingface.co/{HUB_ID}, then run `hf auth login` and `hf download {HUB_ID}` (the "
    "diffusers layout: model_index.json and its subfolders), or point the weights source at a local diffusers "
    "pipeline folder.")

# Sampling defaults: those of StableAudioPipeline.__call__ (diffusers 0.42: num_inference_steps=100,
# guidance_scale=7.0, no negative prompt), which is also what the model card's diffusers example uses apart from
# its 200 steps and its negative prompt. stable-audio-tools' gradio defaults are 100 steps and cfg 7.0 as well.
DEFAULT_STEPS = 100
DEFAULT_GUIDANCE = 7.0
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_OPTIONS = ("num_inference_steps", "guidance_scale", "negative_prompt", "dtype", "seed")

SCHEDULER_STANDIN_NOTE = ("not the published CosineDPMSolverMultistepScheduler (which needs torchsde); the step "
                          "cost is the DiT's either way")
STANDIN_TOKENIZER_LABEL = ("byte-level stand-in tokenizer (one id per UTF-8 byte, not T5's sentencepiece; "
                           "no T5 tokenizer offline): random weights only")


@dataclass(frozen=True)
class StableAudioConfigs:
    """The constructor arguments of each pipeline component (diffusers / transformers names)."""

    transformer: dict[str, Any]  # StableAudioDiTModel
    vae: dict[str, Any]  # AutoencoderOobleck
    text_encoder: dict[str, Any]  # transformers T5Config of the T5EncoderModel
    projection: dict[str, Any]  # StableAudioProjectionModel
    scheduler: dict[str, Any] = field(default_factory=dict)  # CosineDPMSolverMultistepScheduler
    tokenizer_max_length: int = 128

    def max_duration_s(self) -> float:
        """The longest audio one call makes: ``sample_size`` latent frames times the VAE hop."""
        hop = int(np.prod(self.vae["downsampling_ratios"]))
        return self.transformer["sample_size"] * hop / self.vae["sampling_rate"]


# ---------------------------------------------------------------------------------------------------------------
# The published configs of stabilityai/stable-audio-open-1.0, embedded so that random init and parameter counts
# need no download. Sources, which agree with each other:
# * the stable-audio-tools model_config.json shipped in the repository (sample_size 2097152, sample_rate 44100;
#   diffusion dit: io_channels 64, embed_dim 1536, depth 24, num_heads 24, cond_token_dim 768, global_cond_dim 1536;
#   conditioning: t5-base with max_length 128, seconds_start / seconds_total numbers in [0, 512], cond_dim 768;
#   pretransform: oobleck, channels 128, c_mults [1, 2, 4, 8, 16], strides [2, 4, 4, 8, 8], latent_dim 64), mapped to
#   diffusers' arguments exactly as diffusers' scripts/convert_stable_audio.py does (see
#   configs_from_sat_model_config, which tests check against these dicts);
# * the class defaults of StableAudioDiTModel, AutoencoderOobleck and CosineDPMSolverMultistepScheduler in
#   diffusers 0.42, which diffusers set to this model's values;
# * the repository's scheduler/scheduler_config.json (CosineDPMSolverMultistepScheduler, sigma_min 0.3,
#   sigma_max 500, sigma_data 1.0, exponential schedule, v-prediction, solver_order 2, midpoint);
# * google-t5/t5-base's config.json for the text encoder (the repository's text_encoder/ is t5-base's encoder).
# ---------------------------------------------------------------------------------------------------------------
SAO_TRANSFORMER_CONFIG: dict[str, Any] = {
    "sample_size": 1024,  # latent frames: 2097152 samples / hop 2048
    "in_channels": 64,
    "num_layers": 24,
    "attention_head_dim": 64,  # embed_dim 1536 / 24 heads
    "num_attention_heads": 24,
    "num_key_value_attention_heads": 12,  # cond_token_dim 768 / head dim 64
    "out_channels": 64,
    "cross_attention_dim": 768,
    "time_proj_dim": 256,
    "global_states_input_dim": 1536,  # the start and end seconds embeddings, 768 each
    "cross_attention_input_dim": 768,
}
SAO_VAE_CONFIG: dict[str, Any] = {
    "encoder_hidden_size": 128,
    "downsampling_ratios": [2, 4, 4, 8, 8],  # hop 2048
    "channel_multiples": [1, 2, 4, 8, 16],
    "decoder_channels": 128,
    "decoder_input_channels": 64,
    "audio_channels": 2,
    "sampling_rate": SAMPLE_RATE,
}
SAO_TEXT_ENCODER_CONFIG: dict[str, Any] = {  # t5-base (encoder only is built)
    "vocab_size": 32128,
    "d_model": 768,
    "d_kv": 64,
    "d_ff": 3072,
    "num_layers": 12,
    "num_heads": 12,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "dropout_rate": 0.1,
    "layer_norm_epsilon": 1e-6,
    "feed_forward_proj": "relu",
    "is_encoder_decoder": True,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
}
SAO_PROJECTION_CONFIG: dict[str, Any] = {
    "text_encoder_dim": 768,
    "conditioning_dim": 768,  # equal to the T5 width: the text projection is the identity
    "min_value": 0,
    "max_value": 512,
}
SAO_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "sigma_data": 1.0,
    "sigma_max": 500.0,
    "sigma_min": 0.3,
    "sigma_schedule": "exponential",
    "solver_order": 2,
    "solver_type": "midpoint",
    "final_sigmas_type": "zero",
    "euler_at_final": False,
    "lower_order_final": True,
    "rho": 7.0,
}
SAO_CONFIGS = StableAudioConfigs(SAO_TRANSFORMER_CONFIG, SAO_VAE_CONFIG, SAO_TEXT_ENCODER_CONFIG,
                                 SAO_PROJECTION_CONFIG, SAO_SCHEDULER_CONFIG, tokenizer_max_length=128)

# The tiny random twin, for tests: the same classes, 8-sample hop, 16 latent frames at 64 Hz (2 s at most).
TINY_CONFIGS = StableAudioConfigs(
    transformer={"sample_size": 16, "in_channels": 4, "num_layers": 2, "attention_head_dim": 8,
                 "num_attention_heads": 2, "num_key_value_attention_heads": 1, "out_channels": 4,
                 "cross_attention_dim": 8, "time_proj_dim": 8, "global_states_input_dim": 16,
                 "cross_attention_input_dim": 8},
    vae={"encoder_hidden_size": 8, "downsampling_ratios": [2, 4], "channel_multiples": [1, 2], "decoder_channels": 4,
         "decoder_input_channels": 4, "audio_channels": 2, "sampling_rate": 64},
    text_encoder={"vocab_size": 259, "d_model": 16, "d_kv": 8, "d_ff": 32, "num_layers": 2, "num_heads": 2,
                  "relative_attention_num_buckets": 8, "relative_attention_max_distance": 16, "dropout_rate": 0.0,
                  "feed_forward_proj": "relu", "is_encoder_decoder": True, "pad_token_id": 0, "eos_token_id": 1,
                  "decoder_start_token_id": 0},
    projection={"text_encoder_dim": 16, "conditioning_dim": 8, "min_value": 0, "max_value": 32},
    scheduler=SAO_SCHEDULER_CONFIG,
    tokenizer_max_length=48,
)


class StableAudioOpen(Generator):
    """Stable Audio Open 1.0 (diffusers' StableAudioPipeline), conditioned on the request's text prompt.

    Options: ``num_inference_steps`` (100), ``guidance_scale`` (7.0), ``negative_prompt`` (None), ``dtype``
    ("auto": bfloat16 where the device computes it natively, a CPU with AVX512-BF16 or AMX or a GPU that supports
    it, else float32; or "float32" / "bfloat16" / "float16") and ``seed`` (0: the seed of random init).
    """

    name = "stable-audio-open"
    display_name = "Stable Audio Open"
    sample_rate = SAMPLE_RATE
    conditioning = "Text description"
    uses_text = True
    timing_unit = "steps"
    # Every step runs the DiT on the same 1024-frame window whatever the duration, so a few timed steps extrapolate
    # exactly; a full 100-step run on a CPU takes many minutes.
    default_timing_mode = "extrapolate"

    def __init__(self, weights: WeightsChoice | None = None, *, device: str = "cpu", **options: Any) -> None:
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ValueError(f"{self.name}: unknown options {unknown}; known: {list(_OPTIONS)}")
        super().__init__(weights, device=device, **options)
        self.num_inference_steps = int(options.get("num_inference_steps", DEFAULT_STEPS))
        self.guidance_scale = float(options.get("guidance_scale", DEFAULT_GUIDANCE))
        self.negative_prompt: str | None = options.get("negative_prompt")
        self.dtype_name = resolve_dtype_option(str(options.get("dtype", "auto")), device)
        self.init_seed = int(options.get("seed", 0))
        if self.num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be at least 1, got {self.num_inference_steps}")
        if self.dtype_name not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype_name!r}")
        self._resolved: Resolved | None = None
        self._pipe: Any = None
        self._load_info: dict[str, Any] = {}
        # (item id, its first DiT call's fp32 inputs, dit_and_vae_outputs in fp32), taken at load before the cast
        self._exact_first_call: tuple[str, Any, tuple[Any, Any]] | None = None

    # -- weights -------------------------------------------------------------------------------------------
    def resolve_weights(self) -> WeightsStatus:
        # model_config.json too, so that a folder holding only the stable-audio-tools checkpoint is found (and then
        # refused with instructions at load time) rather than reported as missing.
        self._resolved = resolve_hub_weights(self.weights, model=self.name, default_repo=HUB_ID,
                                             marker_files=("model_index.json", "model_config.json"),
                                             how_to_get=HOW_TO_GET, random_seed=self.init_seed)
        return self._resolved.status

    def _folder(self) -> Path | None:
        _ = self.status  # resolves once
        if self._resolved is None:  # a status set from outside: resolve again for the path
            self.resolve_weights()
        assert self._resolved is not None
        return self._resolved.folder

    # -- lifecycle -----------------------------------------------------------------------------------------
    def _load(self) -> None:
        folder = self._folder()
        dtype = _DTYPES[self.dtype_name]
        if folder is None:
            tokenizer, tokenizer_label = t5_tokenizer_or_standin(SAO_CONFIGS.tokenizer_max_length)
            pipe = build_random_pipeline(SAO_CONFIGS, seed=self.init_seed, tokenizer=tokenizer)
            self._load_info = {"tokenizer": tokenizer_label, "configs": "embedded stable-audio-open-1.0 configs"}
        else:
            pipe = load_diffusers_pipeline(pipeline_folder(folder))
            self._load_info = {"tokenizer": type(pipe.tokenizer).__name__, "configs": str(pipeline_folder(folder))}
        pipe.set_progress_bar_config(disable=True)
        self._exact_first_call = self._fp32_side_before_cast(pipe, dtype)
        # weights load in float32; cast only when asked (diffusers warns about every cast, even a no-op one)
        self._pipe = pipe.to(self.device) if dtype == torch.float32 else pipe.to(self.device, dtype)
        # the VAE's fast layers, as in SAMUeL's codec (Snake fused, compiled in bf16, weight norm computed once;
        # equal within 1e-6): a third of every item's decode on a CPU was the unfused Snake
        self._load_info["scheduler"] = type(pipe.scheduler).__name__
        self._load_info["vae"] = f"{speed_up_pipeline_vae_(self._pipe.vae, dtype)}; {tile_decode_(self._pipe.vae)}"
        if type(pipe.scheduler).__name__ != "CosineDPMSolverMultistepScheduler":
            self._load_info["scheduler_note"] = SCHEDULER_STANDIN_NOTE

    def _fp32_side_before_cast(self, pipe: Any, dtype: torch.dtype) -> tuple[str, Any, tuple[Any, Any]] | None:
        """The fp32 side of :meth:`precision_distance` for the planned request (:meth:`plan_precision_distance`),
        on ``pipe`` while it still holds the fp32 weights the cast is about to round (moved to the device in fp32
        for it, so a GPU holds the fp32 weights for a moment): its first DiT call's inputs and
        :func:`baselines.base.dit_and_vae_outputs` (diffusers' own VAE). None when nothing is planned, the model runs
        in fp32, or the item cannot run or the device runs out of memory; the comparison then builds its fp32 copy
        (16 s of random init for the real model, and its memory) and reports what fails there."""
        request = self._distance_request
        if request is None or dtype == torch.float32:
            return None
        t0 = time.perf_counter()
        self._pipe = pipe.to(self.device)
        try:
            call = first_call_inputs(pipe.transformer, lambda: self._generate_one(request, max_units=1, on_unit=None))
            if call is None:
                return None
            with torch.inference_mode(), _quiet():
                outputs = dit_and_vae_outputs(pipe.transformer, call, pipe.vae, seed=self.init_seed,
                                              device=self.device)
        except ItemError:
            return None
        except (MemoryError, RuntimeError) as err:
            if not is_out_of_memory(err):
                raise
            return None
        finally:
            self._pipe = None
            self.fp32_reference_s = time.perf_counter() - t0
        return request.item_id, call, outputs

    def _unload(self) -> None:
        self._pipe = None
        self._exact_first_call = None

    # -- generation ----------------------------------------------------------------------------------------
    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        max_units: int | None = None,
        on_unit: Callable[[], None] | None = None,
    ) -> list[GeneratedAudio]:
        if max_units is not None and max_units < 1:
            raise ValueError(f"max_units must be at least 1, got {max_units}")
        self.load()
        # samuel.heap only around the VAE's tiles (tile_decode_): over the whole pipeline, untiled parts included,
        # the heap's fragmentation doubled the peak memory (ACE-Step in fp32 was killed for memory on 24 GiB)
        return [self._generate_one(r, max_units, on_unit) for r in requests]

    def _generate_one(self, request: GenerationRequest, max_units: int | None,
                      on_unit: Callable[[], None] | None) -> GeneratedAudio:
        pipe = self._pipe
        sr = int(pipe.vae.config.sampling_rate)
        max_s = pipe.transformer.config.sample_size * pipe.vae.hop_length / sr
        if not 0 < request.duration_s <= max_s:
            raise ItemError(f"{self.name}: item {request.item_id!r} asks for {request.duration_s} s; the model makes "
                            f"between 0 and {max_s:.4f} s per call (its {pipe.transformer.config.sample_size} latent "
                            f"frames of {pipe.vae.hop_length} samples at {sr} Hz)")
        steps = self.num_inference_steps
        stop_after = steps if max_units is None else min(max_units, steps)
        done = 0
        stopped_latents: list[torch.Tensor] = []

        def step_end(step: int, timestep: Any, latents: torch.Tensor) -> None:
            nonlocal done
            done += 1
            if on_unit is not None:
                on_unit()
            if done >= stop_after and stop_after < steps:
                stopped_latents.append(latents)
                raise _StopDenoising

        # A CPU generator: the same seed gives the same initial noise on every device (the pipeline draws on the
        # generator's device and moves the noise).
        generator = torch.Generator("cpu").manual_seed(int(request.seed))
        try:
            with _quiet():
                audio = pipe(prompt=request.prompt, negative_prompt=self.negative_prompt,
                             audio_end_in_s=float(request.duration_s), num_inference_steps=steps,
                             guidance_scale=self.guidance_scale, generator=generator, callback=step_end,
                             callback_steps=1, output_type="pt").audios[0]
        except _StopDenoising:
            # What the pipeline does after its loop (decode, crop from 0 to int(end * sr)), on the latents of the
            # last step run.
            with torch.inference_mode():
                audio = pipe.vae.decode(stopped_latents[0]).sample[0, :, : int(float(request.duration_s) * sr)]
        except (ValueError, RuntimeError) as err:
            raise ItemError(f"{self.name}: item {request.item_id!r} failed: {err}") from err
        out = np.ascontiguousarray(audio.detach().float().cpu().numpy(), dtype=np.float32)
        info = {
            "num_inference_steps": steps, "units_done": done, "stopped_early": done < steps,
            "guidance_scale": self.guidance_scale, "negative_prompt": self.negative_prompt,
            "audio_end_in_s": float(request.duration_s), "seed": int(request.seed), "dtype": self.dtype_name,
            "weights": self.status.kind, **self._load_info,
        }
        return GeneratedAudio(out, sr, info)

    # -- measurement ---------------------------------------------------------------------------------------
    def _count_parameters(self) -> ParamCount:
        return count_sao_parameters(configs_for_weights(self._folder()))

    def total_units(self, request: GenerationRequest) -> int | None:
        return self.num_inference_steps

    def bytes_per_param(self) -> int:
        return 4 if self.dtype_name == "float32" else 2

    def precision(self) -> str:
        return {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(self.dtype_name, self.dtype_name)

    def set_sampling_steps(self, steps: int) -> None:
        if steps < 1:
            raise ValueError(f"num_inference_steps must be at least 1, got {steps}")
        self.num_inference_steps = self.options["num_inference_steps"] = int(steps)

    def precision_distance(self, request: GenerationRequest) -> PrecisionDistance | None:
        """bf16/fp16 against fp32: the DiT's first guided call of ``request`` and the VAE decoding seeded N(0, I)
        latent frames (baselines.base.dit_and_vae_distance). For the planned request the fp32 side was taken at load
        from the fp32 weights before the cast (:meth:`_fp32_side_before_cast`): the fp32 pipeline's inputs to that
        call, given to the loaded DiT as its own pipeline holds them (their dtypes), so weight rounding counts too.
        For another request the same weights are built or loaded again in fp32 and run on the loaded pipeline's
        inputs. The fp32 DiT call takes about 30 s on a 2-core CPU."""
        if self.dtype_name == "float32":
            return None
        self.load()
        call = first_call_inputs(self._pipe.transformer,
                                 lambda: self._generate_one(request, max_units=1, on_unit=None))
        if call is None:
            raise AdapterError(f"{self.name}: the pipeline never called its transformer")
        weights = f"{self.status.kind} weights"
        if self._exact_first_call is not None and self._exact_first_call[0] == request.item_id:
            _, exact_call, exact_outputs = self._exact_first_call
            with torch.inference_mode(), _quiet():
                fast = dit_and_vae_outputs(self._pipe.transformer, cast_like(exact_call, call), self._pipe.vae,
                                           seed=self.init_seed, device=self.device)
            return distance_of_outputs(exact_outputs, fast, item_id=request.item_id, weights=weights,
                                       inputs=" (its fp32 inputs, cast as this precision holds them)")
        exact = self._fp32_pipeline()
        with torch.inference_mode(), _quiet():
            return dit_and_vae_distance(self._pipe.transformer, exact.transformer,
                                        call, self._pipe.vae, exact.vae,
                                        seed=self.init_seed, device=self.device, item_id=request.item_id,
                                        weights=weights)

    def _fp32_pipeline(self) -> Any:
        folder = self._folder()
        if folder is None:
            tokenizer, _ = t5_tokenizer_or_standin(SAO_CONFIGS.tokenizer_max_length)
            pipe = build_random_pipeline(SAO_CONFIGS, seed=self.init_seed, tokenizer=tokenizer)
        else:
            pipe = load_diffusers_pipeline(pipeline_folder(folder))
        pipe = pipe.to(self.device)
        speed_up_pipeline_vae_(pipe.vae, torch.float32)  # as _load sets up an fp32 pipeline
        tile_decode_(pipe.vae)
        return pipe


class _StopDenoising(Exception):
    """Raised from the step callback once ``max_units`` steps have run."""


# ---------------------------------------------------------------------------------------------------------------
# building, loading, counting
# ---------------------------------------------------------------------------------------------------------------
def build_components(configs: StableAudioConfigs) -> dict[str, Any]:
    """The four models of the pipeline (on the current default device: ``with torch.device("meta")`` for counts)."""
    from diffusers import AutoencoderOobleck, StableAudioDiTModel
    from diffusers.pipelines.stable_audio.modeling_stable_audio import StableAudioProjectionModel
    from transformers import T5Config, T5EncoderModel

    with _quiet():
        return {
            "vae": AutoencoderOobleck(**configs.vae),
            "text_encoder": T5EncoderModel(T5Config(**configs.text_encoder)),
            "transformer": StableAudioDiTModel(**configs.transformer),
            "projection_model": StableAudioProjectionModel(**configs.projection),
        }


def count_sao_parameters(configs: StableAudioConfigs) -> ParamCount:
    """Exact parameter counts of the architecture in ``configs``, built on the meta device (nothing allocated)."""
    with torch.device("meta"):
        parts = build_components(configs)
    return count_parameters({"codec": parts["vae"], "text_encoder": parts["text_encoder"],
                             "dit": parts["transformer"], "projection": parts["projection_model"]})


def make_scheduler(config: dict[str, Any]) -> Any:
    """The published scheduler (CosineDPMSolverMultistepScheduler, which needs ``torchsde``); without torchsde, the
    scheduler diffusers' conversion script built (EDM DPM-Solver++ SDE with the same sigmas, order and
    v-prediction; generation info then carries :data:`SCHEDULER_STANDIN_NOTE`). A scheduler step is a negligible
    share of a step's cost next to the DiT."""
    from diffusers.utils import is_torchsde_available

    if is_torchsde_available():
        from diffusers import CosineDPMSolverMultistepScheduler

        return CosineDPMSolverMultistepScheduler(**config)
    from diffusers import EDMDPMSolverMultistepScheduler

    keys = ("sigma_min", "sigma_max", "sigma_data", "sigma_schedule", "num_train_timesteps", "prediction_type",
            "rho", "solver_order", "solver_type", "lower_order_final", "euler_at_final", "final_sigmas_type")
    kwargs = {k: config[k] for k in keys if k in config}
    return EDMDPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++", **kwargs)


def build_random_pipeline(configs: StableAudioConfigs, *, seed: int = 0, tokenizer: Any = None) -> Any:
    """A StableAudioPipeline of ``configs`` with seeded random weights (the caller's RNG is left untouched).

    ``tokenizer`` defaults to :func:`byte_tokenizer`; the scheduler is :func:`make_scheduler`'s.
    """
    from diffusers import StableAudioPipeline

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        parts = build_components(configs)
        randomise_snake_(parts["vae"])
    for module in parts.values():  # as from_pretrained leaves them: no dropout, no autograd
        module.eval().requires_grad_(False)
    return StableAudioPipeline(scheduler=make_scheduler(configs.scheduler),
                               tokenizer=tokenizer or byte_tokenizer(configs.tokenizer_max_length), **parts)


def byte_tokenizer(model_max_length: int = 128) -> Any:
    """A deterministic stand-in for T5's tokenizer, saveable offline: one id per UTF-8 byte (ids 3-258, inside
    T5's vocabulary of 32128), ``<pad>`` 0, ``</s>`` 1 appended as T5 does, ``<unk>`` 2.

    For random weights only: the pipeline pads every prompt to ``model_max_length`` tokens, so the text encoder's
    cost is that of the real tokenizer; the ids mean nothing.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for char in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[char] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=model_max_length)


def t5_tokenizer_or_standin(model_max_length: int) -> tuple[Any, str]:
    """T5-base's tokenizer from the Hugging Face cache when it is there (no network), else :func:`byte_tokenizer`."""
    from transformers import AutoTokenizer

    for repo in ("google-t5/t5-base", "t5-base"):
        try:
            with _quiet():
                tok = AutoTokenizer.from_pretrained(repo, cache_dir=str(hub_cache_dir()), local_files_only=True,
                                                    model_max_length=model_max_length)
            return tok, f"{repo} tokenizer (Hugging Face cache)"
        except Exception:  # not cached (OSError), or unreadable: the stand-in will do for random weights
            continue
    return byte_tokenizer(model_max_length), STANDIN_TOKENIZER_LABEL


def pipeline_folder(path: Path) -> Path:
    """The diffusers pipeline folder at ``path`` (a folder or its model_index.json); a stable-audio-tools checkpoint
    or anything else raises :class:`AdapterError` saying what to do."""
    if path.is_file() and path.name == "model_index.json":
        return path.parent
    if path.is_dir() and (path / "model_index.json").is_file():
        return path
    if is_sat_checkpoint(path):
        raise AdapterError(sat_message(path))
    raise AdapterError(f"stable-audio-open: {path} is neither a diffusers StableAudioPipeline folder "
                       f"(model_index.json) nor a stable-audio-tools checkpoint ({', '.join(SAT_SUFFIXES)}, or a "
                       "folder with model_config.json and model.safetensors)")


def is_sat_checkpoint(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() in SAT_SUFFIXES
    return path.is_dir() and (path / "model_config.json").is_file()


def sat_message(path: Path) -> str:
    folder = path if path.is_dir() else path.parent
    return (
        f"stable-audio-open: {path} is a stable-audio-tools checkpoint (keys model.model.* for the DiT, "
        f"conditioner.conditioners.* for the seconds embedders, {SAT_PREFIX}* for the VAE). This adapter runs the "
        "diffusers pipeline and does not convert that format at load time: the checkpoint does not hold the T5 text "
        "encoder (stable-audio-tools fetches t5-base separately). Either download the diffusers folders of the "
        f"same release (`hf download {HUB_ID}`: model_index.json, transformer/, vae/, text_encoder/, tokenizer/, "
        "projection_model/, scheduler/) and point the weights source at that folder, or convert with diffusers' "
        f"scripts/convert_stable_audio.py --model_folder_path {folder} --use_safetensors --save_directory OUT "
        "(it needs model_config.json beside the checkpoint and t5-base) and use OUT.")


def load_diffusers_pipeline(folder: Path) -> Any:
    """``StableAudioPipeline.from_pretrained(folder, local_files_only=True)`` with clear errors."""
    from diffusers import StableAudioPipeline
    from diffusers.utils import is_torchsde_available

    index = _read_json(folder / "model_index.json")
    if index.get("_class_name", "StableAudioPipeline") != "StableAudioPipeline":
        raise AdapterError(f"stable-audio-open: {folder}/model_index.json describes a {index['_class_name']}, "
                           "not a StableAudioPipeline")
    scheduler_class = (index.get("scheduler") or [None, None])[1]
    if scheduler_class == "CosineDPMSolverMultistepScheduler" and not is_torchsde_available():
        raise AdapterError(f"stable-audio-open: the scheduler of {folder} (CosineDPMSolverMultistepScheduler, the "
                           "published one) needs the torchsde package: pip install torchsde")
    try:
        with _quiet():
            # float32 as saved; the caller casts with .to(device, dtype) (the keyword for a load dtype differs
            # between diffusers versions)
            pipe = StableAudioPipeline.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, RuntimeError, KeyError, ImportError) as err:
        raise AdapterError(f"stable-audio-open: could not load the diffusers pipeline in {folder}: {err}") from err
    return pipe


def configs_for_weights(path: Path | None) -> StableAudioConfigs:
    """The architecture behind ``path``: a diffusers folder's component configs, a stable-audio-tools
    model_config.json (beside a checkpoint file or in its folder), else the embedded published configs."""
    if path is None:
        return SAO_CONFIGS
    folder = path.parent if path.is_file() else path
    if (folder / "model_index.json").is_file():
        return configs_from_diffusers_folder(folder)
    if (folder / "model_config.json").is_file():
        return configs_from_sat_model_config(_read_json(folder / "model_config.json"))
    return SAO_CONFIGS  # a lone checkpoint file: assumed to be Stable Audio Open 1.0 (loading says otherwise)


def configs_from_diffusers_folder(folder: Path) -> StableAudioConfigs:
    def read(sub: str, name: str = "config.json") -> dict[str, Any]:
        raw = _read_json(folder / sub / name)
        return {k: v for k, v in raw.items() if not k.startswith("_")}

    text = read("text_encoder")
    for key in ("architectures", "transformers_version", "model_type", "dtype", "torch_dtype"):
        text.pop(key, None)
    tokenizer_cfg = folder / "tokenizer" / "tokenizer_config.json"
    max_length = int(_read_json(tokenizer_cfg).get("model_max_length", 128)) if tokenizer_cfg.is_file() else 128
    scheduler_cfg = folder / "scheduler" / "scheduler_config.json"
    scheduler = read("scheduler", "scheduler_config.json") if scheduler_cfg.is_file() else SAO_SCHEDULER_CONFIG
    return StableAudioConfigs(read("transformer"), read("vae"), text, read("projection_model"), scheduler,
                              tokenizer_max_length=max_length)


def configs_from_sat_model_config(raw: dict[str, Any]) -> StableAudioConfigs:
    """Diffusers' configs from a stable-audio-tools ``model_config.json``, mapped as diffusers'
    scripts/convert_stable_audio.py maps them. Only the T5-base text encoder (the published one) is known here."""
    try:
        model = raw["model"]
        dit = model["diffusion"]["config"]
        pre = model["pretransform"]["config"]
        enc, dec = pre["encoder"]["config"], pre["decoder"]["config"]
        cond = {c["id"]: c["config"] for c in model["conditioning"]["configs"]}
        t5_name = cond["prompt"]["t5_model_name"]
        head_dim = dit["embed_dim"] // dit["num_heads"]
        transformer = {
            "sample_size": int(raw["sample_size"]) // int(pre["downsampling_ratio"]),
            "in_channels": dit["io_channels"], "num_layers": dit["depth"], "attention_head_dim": head_dim,
            "num_attention_heads": dit["num_heads"], "num_key_value_attention_heads": dit["cond_token_dim"] // head_dim,
            "out_channels": dit["io_channels"], "cross_attention_dim": dit["cond_token_dim"], "time_proj_dim": 256,
            "global_states_input_dim": dit["global_cond_dim"], "cross_attention_input_dim": dit["cond_token_dim"],
        }
        vae = {
            "encoder_hidden_size": enc["channels"], "downsampling_ratios": list(enc["strides"]),
            "channel_multiples": list(enc["c_mults"]), "decoder_channels": dec["channels"],
            "decoder_input_channels": dec["latent_dim"], "audio_channels": pre["io_channels"],
            "sampling_rate": raw["sample_rate"],
        }
        projection = {"text_encoder_dim": SAO_TEXT_ENCODER_CONFIG["d_model"],
                      "conditioning_dim": model["conditioning"]["cond_dim"],
                      "min_value": cond["seconds_start"]["min_val"], "max_value": cond["seconds_start"]["max_val"]}
        max_length = int(cond["prompt"].get("max_length", 128))
    except (KeyError, TypeError, ZeroDivisionError) as err:
        raise AdapterError(f"stable-audio-open: model_config.json is not a stable-audio-tools DiT text-to-audio "
                           f"config like Stable Audio Open's (missing or bad {err})") from err
    if t5_name not in ("t5-base", "google-t5/t5-base"):
        raise AdapterError(f"stable-audio-open: model_config.json uses text encoder {t5_name!r}; only t5-base (Stable "
                           "Audio Open 1.0's) is known to this adapter")
    return StableAudioConfigs(transformer, vae, dict(SAO_TEXT_ENCODER_CONFIG), projection,
                              dict(SAO_SCHEDULER_CONFIG), tokenizer_max_length=max_length)


def _read_json(path: Path) -> dict[str, Any]:
    return read_json_object(path, "stable-audio-open")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # diffusers' Oobleck builds with the deprecated torch.nn.utils.weight_norm (a warning per layer); nothing for
    # the user to act on.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*nn\.utils\.weight_norm.*deprecated", category=FutureWarning)
        yield
