"""ACE-Step 1.5 behind the :class:`~baselines.base.Generator` interface: the vocal (and the text prompt) to a 48 kHz
stereo accompaniment, through diffusers' ``AceStepPipeline``.

The pipeline: a Qwen3-Embedding-0.6B text encoder (the caption through the whole model, the lyrics through its
token embeddings only), a condition encoder (text projector, lyric encoder, timbre encoder, the learned null
condition of classifier-free guidance), a flow-matching DiT over 64-channel latents at 25 Hz, the 48 kHz Oobleck
VAE (one latent frame = 1920 samples), the optional 5 Hz audio tokenizer / detokenizer pair (used only by the
``cover`` task), and a flow-matching Euler scheduler fed ACE-Step's shifted sigmas.

**Tasks.** ``task="complete"`` (default): the vocal is the source audio, VAE-encoded into the DiT's context, and the
instruction is "Complete the input track with DRUMS | BASS | GUITAR | KEYBOARD:" (option ``tracks``, default
:data:`DEFAULT_COMPLETE_TRACKS`, the rhythm section plus harmony that an accompaniment of a sung melody is made of).
``task="lego"``: "Generate the KEYBOARD track based on the audio context:" (option ``track``, default
:data:`DEFAULT_LEGO_TRACK`: one track, and the keyboard carries the harmony); the whole window is generated. Track
names are ACE-Step's own list (:data:`TRACK_NAMES`, acestep/constants.py). Both tasks are "base model only" in
ACE-Step's documentation (docs/en/INFERENCE.md, Tutorial.md: turbo and sft do text2music, repaint and cover), so a
turbo or sft checkpoint is refused at load time.

**Sampling defaults** (the base model's, from the ACE-Step Tutorial's DiT table and the acestep-v15-xl-base-diffusers
model card: 50 steps, CFG on): ``num_inference_steps=50``, ``guidance_scale=7.0`` (APG guidance in the pipeline),
``shift=3.0``. The vocal's posterior sample in the VAE draws from torch's global stream, so each request runs under
``torch.manual_seed(seed)`` (forked: the caller's stream is untouched) as well as with a seeded CPU generator for the
initial noise; the same seed gives the same output. The noise is drawn by the adapter exactly as the pipeline draws
it and passed in as ``latents`` (:func:`initial_noise`: a float rounding in diffusers 0.42 miscounts some window
lengths otherwise).

**Audio.** ``read_vocal()`` gives the item's window at 44.1 kHz stereo; it is resampled with soxr to the VAE's rate
(48 kHz) to exactly ``round(S * 48000 / 44100)`` samples, zero-padded to whole latent frames of 1920 samples (the
VAE encodes whole frames only) and given as ``src_audio``; the DiT generates as many frames. The output
(peak-normalised to -1 dBFS by the pipeline) is cut to ``round(duration_s * 48000)`` samples.

**Weights**, through :func:`baselines.weights.resolve_hub_weights` (never the network): a local diffusers pipeline
folder (``model_index.json``) or the hub id :data:`HUB_ID` in the Hugging Face cache, loaded with
``AceStepPipeline.from_pretrained(folder, local_files_only=True)``. ACE-Step's own layout (``acestep-v15-*/`` with
``model.safetensors`` and ``silence_latent.pt``, ``vae/``, ``Qwen3-Embedding-0.6B/``) is refused with the conversion
command. ``random`` (or ``auto`` with nothing found): the published architecture from the embedded configs below,
seeded; efficiency only.

**Timing.** One unit is one denoising step (one DiT forward on a batch of 2 with guidance, one Euler step).
``max_units=k`` stops the pipeline's loop after step ``k`` through its ``callback_on_step_end`` (``_interrupt``), and
the pipeline then decodes those latents once, as it does after a full run. Text encoding and the VAE encode of the
vocal happen once per call, before the first step.
"""

from __future__ import annotations

import contextlib
import copy
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from baselines.base import (
    AdapterError,
    DenoiserCalls,
    GeneratedAudio,
    GenerationRequest,
    Generator,
    ItemError,
    ParamCount,
    PrecisionDistance,
    WeightsChoice,
    WeightsStatus,
    copy_fits,
    count_parameters,
    dit_and_vae_distance,
    first_call_inputs,
    resolve_dtype_option,
)
from baselines.weights import Resolved, read_json_object, resolve_hub_weights
from samuel.codec import randomise_snake_, speed_up_pipeline_vae_
from samuel.hub import hub_cache_dir

# The official diffusers-layout base checkpoint (complete and lego need the base model). ACE-Step also publishes
# acestep-v15-xl-sft-diffusers and acestep-v15-xl-turbo-diffusers (not usable for these tasks) and the 2B
# checkpoints in ACE-Step's own layout (ACE-Step/Ace-Step1.5, ACE-Step/acestep-v15-base).
HUB_ID = "ACE-Step/acestep-v15-xl-base-diffusers"
SAMPLE_RATE = 48_000
VOCAL_RATE = 44_100  # what GenerationRequest.read_vocal returns
TEXT_TOKENIZER_REPO = "Qwen/Qwen3-Embedding-0.6B"
HOW_TO_GET = (
    f"Run `hf download {HUB_ID}` (the diffusers layout: model_index.json, transformer/, condition_encoder/, "
    "text_encoder/, tokenizer/, vae/, scheduler/, and the audio tokenizer pair), or point the weights source at a "
    "local AceStepPipeline folder. A checkpoint in ACE-Step's own layout (ACE-Step/acestep-v15-base) converts with "
    "diffusers' scripts/convert_ace_step_to_diffusers.py.")

TASKS = ("complete", "lego")
# acestep/constants.py TRACK_NAMES (ACE-Step 1.5): the tracks lego / extract / complete know.
TRACK_NAMES = ("woodwinds", "brass", "fx", "synth", "strings", "percussion", "keyboard", "guitar", "bass", "drums",
               "backing_vocals", "vocals")
DEFAULT_COMPLETE_TRACKS = ("drums", "bass", "guitar", "keyboard")
DEFAULT_LEGO_TRACK = "keyboard"
DEFAULT_STEPS = 50
DEFAULT_GUIDANCE = 7.0
DEFAULT_SHIFT = 3.0
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_OPTIONS = ("task", "track", "tracks", "num_inference_steps", "guidance_scale", "shift", "dtype", "seed", "dit_layers")
# Depth mode (bench.timing): on a CPU the 32-block DiT does not fit in float32 (about 27 GiB with activations) and
# one bfloat16 step takes many minutes, so a random-weight run is timed with 2 blocks (one sliding-window and one
# full-attention block, the pattern's period) and one call at 4, and scaled up.
TIMING_BLOCKS = 2

STANDIN_TOKENIZER_LABEL = ("byte-level stand-in tokenizer (one id per UTF-8 byte, not Qwen3's BPE; no Qwen3 "
                           "tokenizer offline): random weights only")


@dataclass(frozen=True)
class AceStepConfigs:
    """The constructor arguments of each pipeline component (diffusers / transformers names) and where they are
    from. ``audio_tokenizer`` / ``audio_token_detokenizer`` are None for a checkpoint without them."""

    transformer: dict[str, Any]  # AceStepTransformer1DModel
    condition_encoder: dict[str, Any]  # AceStepConditionEncoder
    text_encoder: dict[str, Any]  # transformers config (model_type qwen3) of the Qwen3Model
    vae: dict[str, Any]  # AutoencoderOobleck
    audio_tokenizer: dict[str, Any] | None  # AceStepAudioTokenizer
    audio_token_detokenizer: dict[str, Any] | None  # AceStepAudioTokenDetokenizer
    scheduler: dict[str, Any] = field(default_factory=dict)  # FlowMatchEulerDiscreteScheduler
    source: str = ""
    component_sources: dict[str, str] = field(default_factory=dict)  # count component -> where its config is from


# ---------------------------------------------------------------------------------------------------------------
# The published architecture of ACE-Step/acestep-v15-xl-base-diffusers (ACE-Step 1.5 XL base), embedded so that
# random init and parameter counts need no download. No file of that repository could be read here (no network);
# each value's source:
# * transformer/config.json: hidden_size 2560, intermediate_size 9728, num_hidden_layers 32, num_attention_heads
#   32, encoder_hidden_size 2048 are stated on the repository's model card ("hidden_size=2560, 32 layers, 32 heads;
#   encoder_hidden_size=2048 on the condition encoder"). num_key_value_heads 8, head_dim 128, in_channels 192,
#   audio_acoustic_hidden_dim 64, patch_size 2, rope_theta 1e6, rms_norm_eps 1e-6, sliding_window 128, alternating
#   sliding/full layer_types, attention_bias false: shared with the 2B checkpoints (acestep-v15-base/config.json of
#   ACE-Step/acestep-v15-base, model_type "acestep", as quoted key by key in public ports), confirmed for the XL by
#   independent re-implementations that parse this repository's transformer/config.json (candle and Swift ports:
#   "hidden 2560, FFN 9728, heads 32, kv 8, head_dim 128, 32 blocks, patch 2, in_channels 192"). is_turbo false and
#   model_version "base": what diffusers' converter writes for a base checkpoint (scripts/convert_ace_step_to_
#   diffusers.py copies is_turbo / model_version from the upstream config).
# * condition_encoder/config.json: hidden_size 2048, intermediate_size 6144, 16 heads, 8 kv heads, head_dim 128
#   (the XL's encoder_* values, equal to the 2B model's), text_hidden_dim 1024, timbre_hidden_dim 64, 8 lyric and
#   4 timbre encoder layers, rope_theta 1e6, sliding_window 128: the upstream config keys the converter maps.
# * text_encoder/config.json: Qwen/Qwen3-Embedding-0.6B's config.json (copied verbatim by the converter): vocab
#   151669, hidden 1024, intermediate 3072, 28 layers, 16 heads, 8 kv heads, head_dim 128, rope_theta 1e6, rms
#   1e-6, tied embeddings, no sliding window; loaded as transformers' Qwen3Model (the class model_index.json names).
# * vae/config.json: ACE-Step/Ace-Step1.5 vae/config.json (the same file in every ACE-Step 1.5 release): encoder
#   128 channels, channel_multiples [1, 2, 4, 8, 16], downsampling_ratios [2, 4, 4, 6, 10] (hop 1920), decoder 128
#   channels, 64 latent channels, stereo, 48000 Hz.
# * audio_tokenizer/ and audio_token_detokenizer/: NOT FOUND for the XL repository. The values are the 2B base
#   config's (acestep-v15-base/config.json: pool_window_size 5, fsq_dim 2048, fsq_input_levels [8, 8, 8, 5, 5, 5],
#   one quantizer, 2 attention-pooler layers) at the encoder width 2048 / 6144 / 16 heads / 8 kv heads / 128, on
#   the assumption that the XL shares the 2B model's encoder side as it does for the condition encoder.
# * scheduler/scheduler_config.json: FlowMatchEulerDiscreteScheduler with num_train_timesteps 1 and shift 1.0 (the
#   AceStepPipeline docstring: the pipeline computes the shifted sigmas itself).
# With real weights found, every count comes from that folder's own configs instead.
# ---------------------------------------------------------------------------------------------------------------
_ATTN = {"num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "rope_theta": 1_000_000.0,
         "attention_bias": False, "attention_dropout": 0.0, "rms_norm_eps": 1e-6, "sliding_window": 128}
XL_BASE_TRANSFORMER: dict[str, Any] = {
    **_ATTN, "num_attention_heads": 32, "hidden_size": 2560, "intermediate_size": 9728, "num_hidden_layers": 32,
    "in_channels": 192, "audio_acoustic_hidden_dim": 64, "patch_size": 2, "encoder_hidden_size": 2048,
    "is_turbo": False, "model_version": "base",
}
XL_BASE_CONDITION_ENCODER: dict[str, Any] = {
    **_ATTN, "hidden_size": 2048, "intermediate_size": 6144, "text_hidden_dim": 1024, "timbre_hidden_dim": 64,
    "num_lyric_encoder_hidden_layers": 8, "num_timbre_encoder_hidden_layers": 4,
}
QWEN3_EMBEDDING_06B: dict[str, Any] = {
    "model_type": "qwen3", "vocab_size": 151669, "hidden_size": 1024, "intermediate_size": 3072,
    "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
    "hidden_act": "silu", "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1_000_000.0,
    "attention_bias": False, "attention_dropout": 0.0, "tie_word_embeddings": True, "use_sliding_window": False,
    "bos_token_id": 151643, "eos_token_id": 151643,
}
ACE_STEP_VAE: dict[str, Any] = {
    "encoder_hidden_size": 128, "downsampling_ratios": [2, 4, 4, 6, 10], "channel_multiples": [1, 2, 4, 8, 16],
    "decoder_channels": 128, "decoder_input_channels": 64, "audio_channels": 2, "sampling_rate": SAMPLE_RATE,
}
_POOLER = {**_ATTN, "hidden_size": 2048, "intermediate_size": 6144, "audio_acoustic_hidden_dim": 64,
           "pool_window_size": 5, "num_attention_pooler_hidden_layers": 2}
XL_BASE_AUDIO_TOKENIZER: dict[str, Any] = {**_POOLER, "fsq_dim": 2048, "fsq_input_levels": [8, 8, 8, 5, 5, 5],
                                           "fsq_input_num_quantizers": 1}
XL_BASE_AUDIO_DETOKENIZER: dict[str, Any] = dict(_POOLER)
ACE_STEP_SCHEDULER: dict[str, Any] = {"num_train_timesteps": 1, "shift": 1.0}

PUBLISHED_CONFIGS = AceStepConfigs(
    XL_BASE_TRANSFORMER, XL_BASE_CONDITION_ENCODER, QWEN3_EMBEDDING_06B, ACE_STEP_VAE, XL_BASE_AUDIO_TOKENIZER,
    XL_BASE_AUDIO_DETOKENIZER, ACE_STEP_SCHEDULER,
    source=f"embedded published configs of {HUB_ID} (see baselines/ace_step.py for each value's source)",
    component_sources={
        "dit": f"{HUB_ID} transformer/config.json: width, depth and heads from its model card; the rest shared with "
               "the 2B base config and confirmed by ports that parse the XL file",
        "condition_encoder": "the upstream config's encoder_* keys (equal in the 2B and XL models), as diffusers' "
                             "converter maps them",
        "text_encoder": "Qwen/Qwen3-Embedding-0.6B config.json (copied verbatim by diffusers' converter)",
        "audio_tokenizer": "NOT FOUND for the XL: the 2B base config's values at the encoder width (an assumption)",
        "audio_detokenizer": "NOT FOUND for the XL: the 2B base config's values at the encoder width (an "
                             "assumption)",
        "vae": "ACE-Step/Ace-Step1.5 vae/config.json (the same file in every ACE-Step 1.5 release)",
    })

# The tiny random twin, for tests: the same classes at the real rate and hop (48 kHz, 1920 samples, 25 Hz), so the
# adapter's resampling and window arithmetic are exercised as they are at full size; 4 latent channels, width 16.
_TINY_ATTN = {"num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8, "rope_theta": 10_000.0,
              "attention_bias": False, "attention_dropout": 0.0, "rms_norm_eps": 1e-6, "sliding_window": 8}
_TINY_POOLER = {**_TINY_ATTN, "hidden_size": 16, "intermediate_size": 32, "audio_acoustic_hidden_dim": 4,
                "pool_window_size": 5, "num_attention_pooler_hidden_layers": 1}
TINY_CONFIGS = AceStepConfigs(
    transformer={**_TINY_ATTN, "hidden_size": 24, "intermediate_size": 48, "num_hidden_layers": 2,
                 "in_channels": 12, "audio_acoustic_hidden_dim": 4, "patch_size": 2, "encoder_hidden_size": 16,
                 "is_turbo": False, "model_version": "base"},
    condition_encoder={**_TINY_ATTN, "hidden_size": 16, "intermediate_size": 32, "text_hidden_dim": 16,
                       "timbre_hidden_dim": 4, "num_lyric_encoder_hidden_layers": 1,
                       "num_timbre_encoder_hidden_layers": 1},
    text_encoder={"model_type": "qwen3", "vocab_size": 300, "hidden_size": 16, "intermediate_size": 32,
                  "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8,
                  "max_position_embeddings": 512, "rms_norm_eps": 1e-6, "rope_theta": 10_000.0,
                  "tie_word_embeddings": True, "use_sliding_window": False},
    vae={"encoder_hidden_size": 8, "downsampling_ratios": [2, 4, 4, 6, 10], "channel_multiples": [1, 1, 1, 1, 1],
         "decoder_channels": 4, "decoder_input_channels": 4, "audio_channels": 2, "sampling_rate": SAMPLE_RATE},
    audio_tokenizer={**_TINY_POOLER, "fsq_dim": 16, "fsq_input_levels": [4, 4, 4], "fsq_input_num_quantizers": 1},
    audio_token_detokenizer=dict(_TINY_POOLER),
    scheduler=ACE_STEP_SCHEDULER,
    source="tiny test configs",
)


# ---------------------------------------------------------------------------------------------------------------
# pure helpers
# ---------------------------------------------------------------------------------------------------------------
def task_instruction(task: str, tracks: Sequence[str]) -> str:
    """The instruction ACE-Step 1.5 trained each task with (acestep/constants.py TASK_INSTRUCTIONS), as
    AceStepPipeline builds it: track names upper-cased, several joined by " | "."""
    if task == "complete":
        return f"Complete the input track with {' | '.join(t.upper() for t in tracks)}:"
    if task == "lego":
        return f"Generate the {tracks[0].upper()} track based on the audio context:"
    raise AdapterError(f"ace-step: unknown task {task!r}; allowed: {', '.join(TASKS)}")


def resample_exact(audio: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """(C, S) float32 at ``rate`` -> (C, round(S * target / rate)) at ``target_rate`` (soxr, very high quality),
    cut or zero-padded to that exact length."""
    import soxr

    if rate == target_rate:
        return np.ascontiguousarray(audio, dtype=np.float32)
    target = round(Fraction(audio.shape[1] * target_rate, rate))
    out = soxr.resample(np.ascontiguousarray(audio.T, dtype=np.float32), rate, target_rate, quality="VHQ").T
    return fit_length(np.asarray(out, dtype=np.float32), target)


def fit_length(audio: np.ndarray, samples: int) -> np.ndarray:
    """(C, S) cut or zero-padded at the end to (C, samples)."""
    if audio.shape[1] >= samples:
        return np.ascontiguousarray(audio[:, :samples], dtype=np.float32)
    pad = np.zeros((audio.shape[0], samples - audio.shape[1]), np.float32)
    return np.ascontiguousarray(np.concatenate([audio, pad], axis=1), dtype=np.float32)


def _parse_tracks(value: Any) -> tuple[str, ...]:
    items = value.replace("|", ",").split(",") if isinstance(value, str) else list(value)
    tracks = tuple(str(t).strip().lower() for t in items if str(t).strip())
    unknown = [t for t in tracks if t not in TRACK_NAMES]
    if not tracks or unknown:
        raise AdapterError(f"ace-step: unknown track(s) {unknown or [value]}; ACE-Step knows {', '.join(TRACK_NAMES)}")
    return tracks


class AceStep(Generator):
    """ACE-Step 1.5 (diffusers' AceStepPipeline), conditioned on the vocal (the source audio) and the text prompt.

    Options: ``task`` ("complete" or "lego"), ``tracks`` (complete: comma-separated or a list, default drums, bass,
    guitar, keyboard), ``track`` (lego: default keyboard), ``num_inference_steps`` (50), ``guidance_scale`` (7.0),
    ``shift`` (3.0), ``dtype`` ("auto": bfloat16 where the device computes it natively, as ACE-Step runs on a GPU, else
    float32 (:func:`baselines.base.resolve_dtype_option`); on a CPU with random weights the harness times it in
    depth mode whatever the dtype, :func:`bench.timing.depth_reason`; or a name), ``seed`` (0: the seed of random init)
    and ``dit_layers`` (random weights only: the DiT cut to this many blocks, for the harness's depth timing).
    """

    name = "ace-step"
    display_name = "ACE-Step 1.5"
    sample_rate = SAMPLE_RATE
    conditioning = "Vocal + Text"
    uses_vocal = True
    uses_text = True
    timing_unit = "steps"
    random_draw = "Qwen3 text encoder drawn once (transformers' initialisation; baselines.random_init)"
    # Every step costs the same DiT forward (a batch of 2 with guidance over the window's latents), so a few timed
    # steps extrapolate; a full 50-step run of the 5B DiT on a CPU takes hours.
    default_timing_mode = "extrapolate"

    def __init__(self, weights: WeightsChoice | None = None, *, device: str = "cpu", **options: Any) -> None:
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ValueError(f"{self.name}: unknown options {unknown}; known: {list(_OPTIONS)}")
        super().__init__(weights, device=device, **options)
        self.task = str(options.get("task", "complete"))
        if self.task not in TASKS:
            raise AdapterError(f"{self.name}: unknown task {self.task!r}; allowed: {', '.join(TASKS)}")
        if self.task == "complete":
            if "track" in options:
                raise AdapterError(f"{self.name}: option 'track' is for task 'lego'; task 'complete' takes 'tracks'")
            self.tracks = _parse_tracks(options.get("tracks", DEFAULT_COMPLETE_TRACKS))
        else:
            if "tracks" in options:
                raise AdapterError(f"{self.name}: option 'tracks' is for task 'complete'; task 'lego' takes one "
                                   "'track'")
            self.tracks = _parse_tracks([options.get("track", DEFAULT_LEGO_TRACK)])
            if len(self.tracks) != 1:
                raise AdapterError(f"{self.name}: task 'lego' makes one track, got {list(self.tracks)}")
        self.num_inference_steps = int(options.get("num_inference_steps", DEFAULT_STEPS))
        self.guidance_scale = float(options.get("guidance_scale", DEFAULT_GUIDANCE))
        self.shift = float(options.get("shift", DEFAULT_SHIFT))
        self.dtype_name = resolve_dtype_option(str(options.get("dtype", "auto")), device)
        self.init_seed = int(options.get("seed", 0))
        self.dit_layers = None if options.get("dit_layers") is None else int(options["dit_layers"])
        if self.dit_layers is not None and self.dit_layers < 1:
            raise ValueError(f"dit_layers must be at least 1, got {self.dit_layers}")
        if self.num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be at least 1, got {self.num_inference_steps}")
        if self.shift <= 0 or self.guidance_scale < 0:
            raise ValueError(f"shift must be > 0 and guidance_scale >= 0, got {self.shift}, {self.guidance_scale}")
        if self.dtype_name not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype_name!r}")
        self.instruction = task_instruction(self.task, self.tracks)
        self._resolved: Resolved | None = None
        self._pipe: Any = None
        self._load_info: dict[str, Any] = {}
        self._last_call: tuple[tuple[Any, ...], dict[str, Any], float] | None = None  # DiT inputs, calls per step
        # the planned item's first DiT call (plan_precision_distance), copied when a generation of it made the call
        self._planned_call: tuple[str, tuple[tuple[Any, ...], dict[str, Any]]] | None = None

    # -- weights -------------------------------------------------------------------------------------------
    def resolve_weights(self) -> WeightsStatus:
        self._resolved = resolve_hub_weights(self.weights, model=self.name, default_repo=HUB_ID,
                                             marker_files=("model_index.json",), how_to_get=HOW_TO_GET,
                                             random_seed=self.init_seed)
        return self._resolved.status

    def _folder(self) -> Path | None:
        _ = self.status
        if self._resolved is None:  # a status set from outside: resolve again for the path
            self.resolve_weights()
        assert self._resolved is not None
        return self._resolved.folder

    # -- lifecycle -----------------------------------------------------------------------------------------
    def _load(self) -> None:
        folder = self._folder()
        dtype = _DTYPES[self.dtype_name]
        if folder is None:
            tokenizer, tokenizer_label = qwen_tokenizer_or_standin()
            configs = self.configs()
            pipe = build_random_pipeline(configs, seed=self.init_seed, tokenizer=tokenizer, dtype=dtype)
            self._load_info = {"tokenizer": tokenizer_label, "configs": configs.source}
        else:
            if self.dit_layers is not None:
                raise AdapterError(f"{self.name}: option dit_layers cuts a random-weight DiT for timing; weights "
                                   f"were found at {folder}")
            path = pipeline_folder(folder)
            pipe = load_diffusers_pipeline(path)
            self._load_info = {"tokenizer": type(pipe.tokenizer).__name__, "configs": str(path)}
        check_base_model(pipe.transformer.config, folder)
        pipe.set_progress_bar_config(disable=True)
        # weights load in float32 and are cast only when asked (diffusers warns about every cast); random ones are
        # made in the asked dtype already
        same = dtype == torch.float32 or folder is None
        self._pipe = pipe.to(self.device) if same else pipe.to(self.device, dtype)
        # an Oobleck VAE too: the fast layers of SAMUeL's codec
        self._load_info["vae"] = speed_up_pipeline_vae_(self._pipe.vae, dtype)
        self._load_info["model_version"] = getattr(pipe.transformer.config, "model_version", None)

    def _unload(self) -> None:
        self._pipe = None
        self._last_call = None
        self._planned_call = None

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
        # no samuel.heap here: diffusers' pipeline runs the VAE over the whole clip, untiled, and there the heap's
        # fragmentation doubled the peak memory (ACE-Step in fp32 was killed for memory on a 24 GiB machine)
        return [self._generate_one(r, max_units, on_unit) for r in requests]

    def pipeline_kwargs(self, request: GenerationRequest, src_audio: torch.Tensor) -> dict[str, Any]:
        """The arguments of ``AceStepPipeline.__call__`` for ``request`` (besides the generator and callback): the
        parity tests call the pipeline with exactly these."""
        kwargs: dict[str, Any] = {
            "prompt": request.prompt, "lyrics": "", "audio_duration": float(request.duration_s),
            "num_inference_steps": self.num_inference_steps, "guidance_scale": self.guidance_scale,
            "shift": self.shift, "task_type": self.task, "src_audio": src_audio, "output_type": "pt",
        }
        if self.task == "complete":
            kwargs["complete_track_classes"] = list(self.tracks)
        else:
            kwargs["track_name"] = self.tracks[0]
        return kwargs

    def source_audio(self, request: GenerationRequest) -> torch.Tensor:
        """The item's vocal window at the VAE's rate, zero-padded to whole latent frames, (2, S) float32
        (:class:`ItemError` naming a bad file). The VAE encodes ``floor(S / hop)`` frames, so without the padding
        the last partial frame of the window would get no latent and come back as silence."""
        vae = self._pipe.vae.config
        hop = int(np.prod(vae.downsampling_ratios))
        vocal = resample_exact(request.read_vocal(), VOCAL_RATE, int(vae.sampling_rate))
        return torch.from_numpy(fit_length(vocal, -(-vocal.shape[1] // hop) * hop))

    def _generate_one(self, request: GenerationRequest, max_units: int | None,
                      on_unit: Callable[[], None] | None) -> GeneratedAudio:
        pipe = self._pipe
        sr = int(pipe.vae.config.sampling_rate)
        if not request.duration_s > 0:
            raise ItemError(f"{self.name}: item {request.item_id!r} asks for {request.duration_s} s")
        src = self.source_audio(request)
        steps = self.num_inference_steps
        stop_after = steps if max_units is None else min(max_units, steps)
        done = 0

        def step_end(p: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
            nonlocal done
            done += 1
            if on_unit is not None:
                on_unit()
            if done >= stop_after and stop_after < steps:
                p._interrupt = True  # the pipeline breaks out of its loop and decodes these latents
            return callback_kwargs

        captured: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        planned = (self._distance_request is not None and self._planned_call is None
                   and request.item_id == self._distance_request.item_id)

        def capture(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if not captured:  # the first DiT call's inputs, for denoiser_call_seconds
                captured.append((args, dict(kwargs)))
                if planned:  # and for precision_distance: copied before later steps can change them in place
                    self._planned_call = (request.item_id, (_cloned(args), {k: _cloned(v) for k, v in kwargs.items()}))
            else:
                captured.append(((), {}))  # only counted

        hook = pipe.transformer.register_forward_pre_hook(capture, with_kwargs=True)
        try:
            with _quiet(), seeded(int(request.seed), self.device) as generator:
                latents = initial_noise(pipe, src.shape[1], generator)
                audio = pipe(**self.pipeline_kwargs(request, src), generator=generator, latents=latents,
                             callback_on_step_end=step_end).audios[0]
        except (ValueError, RuntimeError) as err:
            raise ItemError(f"{self.name}: item {request.item_id!r} failed: {err}") from err
        finally:
            hook.remove()
        if captured and done:
            self._last_call = (*captured[0], len(captured) / done)
        made = audio.detach().float().cpu().numpy()
        out = fit_length(made, round(request.duration_s * sr))
        info = {
            "task": self.task, "instruction": self.instruction, "tracks": list(self.tracks),
            "num_inference_steps": steps, "units_done": done, "stopped_early": done < steps,
            "guidance_scale": self.guidance_scale, "shift": self.shift, "seed": int(request.seed),
            "dtype": self.dtype_name, "weights": self.status.kind, "generated_samples": int(made.shape[1]),
            "vocal_resampled_to": sr, "src_samples": int(src.shape[1]), **self._load_info,
        }
        return GeneratedAudio(out, sr, info)

    # -- measurement ---------------------------------------------------------------------------------------
    def configs(self) -> AceStepConfigs:
        """The architecture: the weights folder's configs, or the embedded published ones (with ``dit_layers``,
        the DiT cut to that many blocks)."""
        configs = configs_for_weights(self._folder())
        return configs if self.dit_layers is None else at_depth(configs, self.dit_layers)

    def _count_parameters(self) -> ParamCount:
        return count_ace_step_parameters(self.configs())

    def parameter_source(self) -> str:
        """Where the counts' architecture comes from: the weights folder, or the embedded published configs (whose
        every value's source is stated in this module)."""
        return self.configs().source

    def parameter_sources(self) -> dict[str, str]:
        return dict(self.configs().component_sources)

    # -- depth timing (bench.timing) -------------------------------------------------------------------------
    def timing_depths(self) -> tuple[int, int] | None:
        if self.dit_layers is not None or not self.status.is_random:
            return None  # already cut, or real weights (a cut checkpoint is not the model the user has)
        full = int(self.configs().transformer["num_hidden_layers"])
        return (TIMING_BLOCKS, full) if TIMING_BLOCKS < full else None

    def at_depth(self, layers: int) -> AceStep:
        return AceStep(WeightsChoice("random"), device=self.device, **{**self.options, "dit_layers": layers})

    def denoiser_call_seconds(self, depths: Sequence[int], repeats: int = 3) -> DenoiserCalls:
        """One DiT call per depth (random blocks; everything else about the call as in the last generation: its
        batch with guidance, the window's latents and the encoder states), median of ``repeats`` after one
        warm-up call each.

        The depths are timed in interleaved rounds, each round every depth once, in alternating order: a block's
        cost is the difference of two depths' times, and this VM's speed drifts over tens of seconds. Timed one
        depth after the other, two main-job runs on one VM read 0.89 and 1.38 s per block (call times at 2 and 4
        blocks 3.81 / 5.60 s against 2.88 / 5.64 s), which moved the full-depth time by 46%."""
        if self._last_call is None or self._pipe is None:
            raise RuntimeError(f"{self.name}: generate once before timing the denoiser")
        args, kwargs, calls_per_step = self._last_call
        base = dict(self._pipe.transformer.config)
        dtype = _DTYPES[self.dtype_name]
        own = len(self._pipe.transformer.layers)
        dits = {int(d): self._pipe.transformer if d == own else build_transformer(base, d, dtype).to(self.device)
                for d in depths}
        times: dict[int, list[float]] = {d: [] for d in dits}

        def call(depth: int) -> float:
            _sync(self.device)
            t0 = time.perf_counter()
            dits[depth](*args, **kwargs)
            _sync(self.device)
            return time.perf_counter() - t0

        with torch.inference_mode():
            for depth in dits:  # warm-up
                call(depth)
            for r in range(repeats):
                for depth in list(dits) if r % 2 == 0 else list(reversed(dits)):
                    times[depth].append(call(depth))
        dits.clear()  # the deeper copy: freed before the next model loads
        return DenoiserCalls({d: float(np.median(t)) for d, t in times.items()}, calls_per_step)

    def total_units(self, request: GenerationRequest) -> int | None:
        return self.num_inference_steps

    def bytes_per_param(self) -> int:
        return 4 if self.dtype_name == "float32" else 2

    def precision(self) -> str:
        return {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(self.dtype_name, self.dtype_name)

    def precision_distance(self, request: GenerationRequest) -> PrecisionDistance | None:
        """bf16/fp16 against fp32: the DiT's first guided call of ``request`` (its inputs copied when the timing
        pass generated the planned item, :meth:`plan_precision_distance`; else one step generated to capture them)
        run again by an fp32 copy of the same DiT, and the VAE decoding seeded N(0, I) latent frames,
        again against an fp32 copy (baselines.base.dit_and_vae_distance). The copies need the DiT's and the VAE's
        parameters in fp32 beside the loaded ones: in depth mode (the DiT cut to a few blocks) that is small; a full
        5B DiT whose fp32 copy does not fit says so instead."""
        if self.dtype_name == "float32":
            return None
        self.load()
        dit, vae = self._pipe.transformer, self._pipe.vae
        fits, need, have = copy_fits(4 * sum(p.numel() for p in (*dit.parameters(), *vae.parameters())), self.device)
        if not fits:
            raise AdapterError(f"{self.name}: comparing with fp32 needs fp32 copies of the DiT and the VAE "
                               f"({need / 2**30:.1f} GiB with 25% headroom); {have / 2**30:.1f} GiB free on "
                               f"{self.device}")
        if self._planned_call is not None and self._planned_call[0] == request.item_id:
            call = self._planned_call[1]  # taken in the timed run of this item: the same seed, the same inputs
        else:
            call = first_call_inputs(dit, lambda: self._generate_one(request, max_units=1, on_unit=None))
        if call is None:
            raise AdapterError(f"{self.name}: the pipeline never called its transformer")
        blocks = f"DiT at {len(dit.layers)} blocks; " if self.dit_layers is not None else ""
        # random weights are drawn in the asked dtype; a checkpoint is rounded to it on load, which a copy cannot see
        rounding = "" if self.status.is_random else (f"; the fp32 side copies the loaded {self.precision()} weights, "
                                                     "so their rounding from the checkpoint is not counted")
        with torch.inference_mode(), _quiet():
            return dit_and_vae_distance(dit, copy.deepcopy(dit).float(), call, vae, copy.deepcopy(vae).float(),
                                        seed=self.init_seed, device=self.device, item_id=request.item_id,
                                        weights=f"{blocks}{self.status.kind} weights{rounding}")


def _cloned(value: Any) -> Any:
    """``value`` with every tensor in it (nested in tuples and lists too) copied."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_cloned(v) for v in value)
    return value


@contextlib.contextmanager
def seeded(seed: int, device: str = "cpu") -> Iterator[torch.Generator]:
    """Torch's global streams seeded with ``seed`` inside (restored after), and a CPU generator seeded with it for
    the initial noise (the same noise on every device: the pipeline draws on the generator's device)."""
    devices = [torch.device(device).index or 0] if str(device).startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield torch.Generator("cpu").manual_seed(seed)


def initial_noise(pipe: Any, src_samples: int, generator: torch.Generator) -> torch.Tensor:
    """The pipeline's initial noise for a source of ``src_samples`` (whole latent frames), drawn as its
    ``prepare_latents`` draws it (``randn_tensor`` of (1, frames, acoustic dim) from ``generator`` in the DiT's dtype).

    Passed in as ``latents`` because diffusers 0.42 recomputes the frame count there as
    ``ceil(frames / 25 * 25)`` in floating point, which is one too many for 70 of the first 1300 counts (7, 14, 28,
    55...: 0.28 s windows and many real ones) and then fails on a shape mismatch in the DiT.
    """
    from diffusers.utils.torch_utils import randn_tensor

    hop = int(np.prod(pipe.vae.config.downsampling_ratios))
    shape = (1, src_samples // hop, int(pipe.transformer.config.audio_acoustic_hidden_dim))
    return randn_tensor(shape, generator=generator, device=pipe._execution_device, dtype=pipe.transformer.dtype)


def at_depth(configs: AceStepConfigs, layers: int) -> AceStepConfigs:
    """``configs`` with the DiT cut to its first ``layers`` blocks (the sliding/full attention pattern kept)."""
    transformer = {**configs.transformer, "num_hidden_layers": layers}
    if transformer.get("layer_types"):
        transformer["layer_types"] = list(transformer["layer_types"])[:layers]
    cut = f"DiT cut to {layers} of {configs.transformer['num_hidden_layers']} blocks for timing"
    sources = {**configs.component_sources, "dit": f"{configs.component_sources.get('dit', configs.source)}; {cut}"}
    return replace(configs, transformer=transformer, source=f"{configs.source}; {cut}", component_sources=sources)


def build_transformer(config: Mapping[str, Any], layers: int, dtype: torch.dtype) -> Any:
    """A random-init AceStepTransformer1DModel of ``config`` (a loaded model's config) with ``layers`` blocks."""
    from diffusers.models.transformers.ace_step_transformer import AceStepTransformer1DModel

    keep = {k: v for k, v in config.items() if not k.startswith("_")}
    keep["num_hidden_layers"] = layers
    if keep.get("layer_types"):
        keep["layer_types"] = list(keep["layer_types"])[:layers]
    with _quiet(), _default_dtype(dtype):
        return AceStepTransformer1DModel(**keep).eval().requires_grad_(False)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def check_base_model(config: Any, folder: Path | None) -> None:
    """complete and lego are base-model tasks (ACE-Step's docs); a turbo or sft DiT is refused, naming the file."""
    version = getattr(config, "model_version", None)
    if bool(getattr(config, "is_turbo", False)) or version not in (None, "base"):
        where = f"{folder}/transformer/config.json" if folder is not None else "the embedded config"
        raise AdapterError(f"ace-step: {where} describes a {version or 'turbo'} checkpoint; the complete and lego "
                           f"tasks need ACE-Step 1.5's base model (ACE-Step documents them as base-only): use "
                           f"{HUB_ID}")


# ---------------------------------------------------------------------------------------------------------------
# building, loading, counting
# ---------------------------------------------------------------------------------------------------------------
def text_encoder_config(config: dict[str, Any]) -> Any:
    from transformers import AutoConfig

    rest = {k: v for k, v in config.items() if k not in ("model_type", "architectures", "transformers_version",
                                                           "torch_dtype", "dtype") and not k.startswith("_")}
    return AutoConfig.for_model(config.get("model_type", "qwen3"), **rest)


def build_components(configs: AceStepConfigs, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """The models of the pipeline (on the current default device: ``with torch.device("meta")`` for counts), their
    parameters made in ``dtype`` (random init in bfloat16 never holds a float32 copy: 23 GB at full size)."""
    from diffusers import AutoencoderOobleck
    from diffusers.models.transformers.ace_step_transformer import AceStepTransformer1DModel
    from diffusers.pipelines.ace_step.modeling_ace_step import (
        AceStepAudioTokenDetokenizer,
        AceStepAudioTokenizer,
        AceStepConditionEncoder,
    )
    from transformers import AutoModel

    from baselines.random_init import built_with_one_draw

    with _quiet(), _default_dtype(dtype):
        parts: dict[str, Any] = {
            "transformer": AceStepTransformer1DModel(**configs.transformer),
            "condition_encoder": AceStepConditionEncoder(**configs.condition_encoder),
            # drawn once (transformers' own initialisation; baselines.random_init): the Qwen3 encoder's 596M weights
            "text_encoder": built_with_one_draw(
                lambda: AutoModel.from_config(text_encoder_config(configs.text_encoder), dtype=dtype)),
            "vae": AutoencoderOobleck(**configs.vae),
        }
        if configs.audio_tokenizer is not None:
            parts["audio_tokenizer"] = AceStepAudioTokenizer(**configs.audio_tokenizer)
        if configs.audio_token_detokenizer is not None:
            parts["audio_token_detokenizer"] = AceStepAudioTokenDetokenizer(**configs.audio_token_detokenizer)
    return parts


COMPONENT_NAMES = {"transformer": "dit", "condition_encoder": "condition_encoder", "text_encoder": "text_encoder",
                   "audio_tokenizer": "audio_tokenizer", "audio_token_detokenizer": "audio_detokenizer",
                   "vae": "vae"}


def component_counts(parts: dict[str, Any]) -> ParamCount:
    """Exact counts per component (:data:`COMPONENT_NAMES`); absent optional parts count 0. Buffers (the condition
    encoder's silence latent) are not parameters."""
    return count_parameters({label: parts[key] if parts.get(key) is not None else []
                             for key, label in COMPONENT_NAMES.items()})


def count_ace_step_parameters(configs: AceStepConfigs) -> ParamCount:
    """Exact parameter counts of the architecture in ``configs``, built on the meta device (nothing allocated)."""
    with torch.device("meta"):
        parts = build_components(configs)
    return component_counts(parts)


def build_random_pipeline(configs: AceStepConfigs, *, seed: int = 0, tokenizer: Any = None,
                          dtype: torch.dtype = torch.float32) -> Any:
    """An AceStepPipeline of ``configs`` with seeded random weights in ``dtype`` (the caller's RNG is left
    untouched); ``tokenizer`` defaults to :func:`byte_tokenizer`."""
    from diffusers import AceStepPipeline, FlowMatchEulerDiscreteScheduler

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        parts = build_components(configs, dtype)
        randomise_snake_(parts["vae"])  # Snake alpha / beta start equal (zero): give each layer its own
    for module in parts.values():  # as from_pretrained leaves them: no dropout, no autograd
        module.eval().requires_grad_(False)
    return AceStepPipeline(scheduler=FlowMatchEulerDiscreteScheduler(**configs.scheduler),
                           tokenizer=tokenizer or byte_tokenizer(), **parts)


def byte_tokenizer(model_max_length: int = 2048) -> Any:
    """A deterministic stand-in for Qwen3's tokenizer, saveable offline: one id per UTF-8 byte (ids 0-255, inside
    Qwen3's vocabulary), ``<|endoftext|>`` (id 256) as a special token that also pads, as Qwen3's does.

    For random weights and tests only: the ids mean nothing, and a byte per token makes prompts about 4 times
    longer than Qwen3's BPE does (the text encoder's share of a step is small either way).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {char: i for i, char in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab["<|endoftext|>"] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   model_max_length=model_max_length)


def qwen_tokenizer_or_standin() -> tuple[Any, str]:
    """Qwen3-Embedding-0.6B's tokenizer from the Hugging Face cache when it is there (no network), else
    :func:`byte_tokenizer`."""
    from transformers import AutoTokenizer

    try:
        with _quiet():
            tok = AutoTokenizer.from_pretrained(TEXT_TOKENIZER_REPO, cache_dir=str(hub_cache_dir()),
                                                local_files_only=True)
        return tok, f"{TEXT_TOKENIZER_REPO} tokenizer (Hugging Face cache)"
    except Exception:  # not cached (OSError) or unreadable: the stand-in will do for random weights
        return byte_tokenizer(), STANDIN_TOKENIZER_LABEL


def is_ace_step_native_layout(path: Path) -> bool:
    """ACE-Step's own checkpoint layout: ``acestep-v15-*/config.json`` beside ``vae/`` (or that DiT folder)."""
    if not path.is_dir():
        return False
    dit_folder = (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    if (path / "silence_latent.pt").is_file() or dit_folder:
        return not (path / "model_index.json").is_file()
    return any(p.is_dir() and p.name.startswith("acestep-v15") for p in path.iterdir())


def pipeline_folder(path: Path) -> Path:
    """The diffusers pipeline folder at ``path`` (a folder or its model_index.json); ACE-Step's own layout or
    anything else raises :class:`AdapterError` saying what to do."""
    if path.is_file() and path.name == "model_index.json":
        return path.parent
    if path.is_dir() and (path / "model_index.json").is_file():
        return path
    if is_ace_step_native_layout(path):
        root = path.parent if (path / "silence_latent.pt").is_file() else path
        raise AdapterError(
            f"ace-step: {path} is a checkpoint in ACE-Step's own layout, not a diffusers AceStepPipeline folder. "
            f"Convert it with diffusers' scripts/convert_ace_step_to_diffusers.py --checkpoint_dir {root} "
            "--dit_config acestep-v15-base --output_dir OUT --dtype fp32 and use OUT, or download the diffusers "
            f"release: `hf download {HUB_ID}`")
    raise AdapterError(f"ace-step: {path} is not a diffusers AceStepPipeline folder (no model_index.json)")


def load_diffusers_pipeline(folder: Path) -> Any:
    """``AceStepPipeline.from_pretrained(folder, local_files_only=True)`` with clear errors."""
    from diffusers import AceStepPipeline

    index = _read_json(folder / "model_index.json")
    if index.get("_class_name", "AceStepPipeline") != "AceStepPipeline":
        raise AdapterError(f"ace-step: {folder}/model_index.json describes a {index['_class_name']}, not an "
                           "AceStepPipeline")
    try:
        with _quiet():
            pipe = AceStepPipeline.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, RuntimeError, KeyError, ImportError, TypeError) as err:
        raise AdapterError(f"ace-step: could not load the diffusers pipeline in {folder}: {err}") from err
    return pipe


def configs_for_weights(path: Path | None) -> AceStepConfigs:
    """The architecture behind ``path``: a diffusers folder's component configs, else the embedded configs (also
    for ACE-Step's own layout, which loading refuses)."""
    if path is None:
        return PUBLISHED_CONFIGS
    folder = path.parent if path.is_file() else path
    if (folder / "model_index.json").is_file():
        return configs_from_diffusers_folder(folder)
    return PUBLISHED_CONFIGS


def configs_from_diffusers_folder(folder: Path) -> AceStepConfigs:
    """Each component's config.json in a diffusers AceStepPipeline folder; the optional audio tokenizer pair only
    where model_index.json lists it."""
    index = _read_json(folder / "model_index.json")

    def read(sub: str, name: str = "config.json", keep: tuple[str, ...] = ()) -> dict[str, Any]:
        raw = _read_json(folder / sub / name)
        return {k: v for k, v in raw.items() if not k.startswith("_") or k in keep}

    def optional(sub: str) -> dict[str, Any] | None:
        listed = (index.get(sub) or [None, None])[1] is not None
        return read(sub) if listed and (folder / sub / "config.json").is_file() else None

    scheduler_cfg = folder / "scheduler" / "scheduler_config.json"
    scheduler = read("scheduler", "scheduler_config.json") if scheduler_cfg.is_file() else ACE_STEP_SCHEDULER
    tokenizer, detokenizer = optional("audio_tokenizer"), optional("audio_token_detokenizer")
    subs = {"transformer": True, "condition_encoder": True, "text_encoder": True, "vae": True,
            "audio_tokenizer": tokenizer is not None, "audio_token_detokenizer": detokenizer is not None}
    return AceStepConfigs(read("transformer"), read("condition_encoder"), read("text_encoder"), read("vae"),
                          tokenizer, detokenizer, scheduler, source=str(folder),
                          component_sources={COMPONENT_NAMES[sub]: str(folder / sub / "config.json")
                                             for sub, present in subs.items() if present})


def _read_json(path: Path) -> dict[str, Any]:
    return read_json_object(path, "ace-step")


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    saved = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(saved)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # diffusers' Oobleck builds with the deprecated torch.nn.utils.weight_norm (a warning per layer); nothing for
    # the user to act on.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*nn\.utils\.weight_norm.*deprecated", category=FutureWarning)
        yield
