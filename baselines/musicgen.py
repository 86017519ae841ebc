"""MusicGen (Copet et al., 2023) through transformers: small / medium / large from text, melody from vocal + text.

Rows of the paper's Table II. What each adapter really conditions on is recorded in ``conditioning``:
``musicgen-small``, ``-medium`` and ``-large`` get the text prompt only ("Text description"; the paper's table says
"Vocal + Text" for every MusicGen row, but these checkpoints have no audio input); ``musicgen-melody`` gets the
vocal's chroma and the text prompt ("Vocal + Text").

**Weights.** :func:`baselines.weights.resolve_hub_weights` with marker ``config.json`` finds a local folder or the
cached ``facebook/musicgen-*`` snapshot, loaded with ``from_pretrained(folder, local_files_only=True)``; the text
tokenizer comes from the same folder (``AutoTokenizer``). With ``--weights random`` (or ``auto`` and nothing
found) the real architecture is built from the published hyper-parameters embedded below, seeded with
``torch.manual_seed(0)``, EnCodec's codebooks drawn too (transformers leaves them zero: :func:`draw_codebooks_`);
there is no T5 vocabulary then, so prompts are tokenized by :class:`HashTokenizer` (one id per word: the right
kind of input for timing, meaningless for quality, as random weights are anyway).

**Generation.** One request at a time: ``torch.manual_seed(request.seed)`` and then transformers' own
``generate`` (sampling with ``do_sample=True, guidance_scale=3.0, top_k=250``, audiocraft's defaults, all
options of the adapter). Requests are not batched: sampling draws from one global random stream, so a batch of
items with different seeds could not reproduce each item's single run.

**Duration.** ``frames = int(duration_s * frame_rate)`` audio frames (50 Hz; audiocraft's rounding), generated in
one pass of ``frames + num_codebooks - 1`` autoregressive steps (the delay pattern offsets codebook k by k steps;
transformers strips those pads again, so the audio has exactly ``frames * 640`` samples at 32 kHz). MusicGen was
trained on 30 s; audiocraft extends longer outputs with overlapping 30 s windows re-prompted by their last 20 s,
which is **not** used here. transformers' sinusoidal positions extend themselves past 30 s (1500 frames), so the
47.55 s default runs as a single 2380-step sequence: an extrapolation in length the model never saw in training.
For musicgen-melody the vocal is the item's window ``[start_s, start_s + duration_s)`` (``read_vocal``), of which
the chroma condition covers the first 30 s only (``chroma_length`` = 235 frames; audiocraft's windows would slide
the chroma along); it is used as it is, without the Demucs stem split audiocraft applies to full mixes (the input
already is a vocal stem).

**Timing hooks.** A unit is one autoregressive step (one frame of all codebooks). ``on_unit`` is called from a
``StoppingCriteria`` that transformers runs once after each sampled step (after a device synchronize on CUDA,
so the timestamp is the step's end). ``max_units`` caps ``max_new_tokens`` (the output then holds
``max_units - num_codebooks + 1`` frames); a cap below ``2 * num_codebooks - 2`` steps, too short for
transformers' delay pattern, stops from the criterion instead and returns an empty (channels, 0) array.
:meth:`total_units` is ``frames + num_codebooks - 1``.

**Precision, KV cache, compilation** (:class:`InferenceSettings`, options ``dtype``, ``cache_implementation`` and
``compile``). T5, the decoder and the projections run in ``dtype`` (float32, bfloat16, float16); EnCodec always
decodes in fp32, as in audiocraft, whose 16-bit autocast covers the LM and not the compression model (decoding is
one pass per clip, so this costs little). ``cache_implementation="static"`` preallocates the decoder's
self-attention cache for the whole run (``StaticCache``): transformers 5.24's
``MusicgenForConditionalGeneration.generate`` ignores ``generate(cache_implementation=...)`` (it never prepares a
cache; the decoder makes a ``DynamicCache``), so the adapter passes the cache object itself, sized for the full
generation even when ``max_units`` cuts it (a timed prefix then pays each step's full-length attention, as the whole
run does). That ``generate`` also runs its prefill twice (once in ``generate``, again in ``_sample``); a passed
cache would keep the first one's entry and shift every position by one, so :func:`_passed_cache` empties it at the
start of each prefill. In fp32 the tokens then equal the dynamic cache's; in bf16 the two attentions round
differently (logits one bf16 step apart), so greedy tokens match and a sampled token on a boundary of the draw can
differ (tests/test_baseline_musicgen.py). ``cache_implementation="preallocated"`` is the dynamic cache's attention
(over the filled positions only) on storage allocated once for the whole run, passed the same way
(:func:`preallocated_layer_class`): the dynamic cache concatenates, copying its whole self into a new tensor at each
step, which on a 2-core CPU took a bf16 frame of musicgen-small from 75 to 148 ms over a 47.55 s run, and the static
cache attends over every preallocated position from the first step. Its outputs equal the dynamic cache's, bit for
bit in either dtype (the same values attended in the same order; tests/test_baseline_musicgen.py).
``compile=True`` (static cache only) has transformers run each decoding step through ``torch.compile`` (its
``CompileConfig``; the prefill stays eager), which it does by itself only on a GPU: the first generation compiles
(26-52 s for small and medium in a fresh process on a 2-core CPU; inductor's cache on disk makes a later process's
about 11 s), a later request of another length compiles again, and the harness's warm-up generation takes that time
out of the items' times. The step does not compile whole: transformers 5.24's sinusoidal position embedding branches
on the cache length (a tensor), so dynamo breaks the graph there, specialises that piece on each length and
recompiles it each step until its recompile limit (8), after which it runs eager (and says so in the log); the
decoder layers around it run compiled (docs/benchmarks.md, fifteenth pass). Without ``compile`` the adapter passes
``disable_compile``, so a static cache on a GPU runs uncompiled, as labelled.
``prepack=True`` (CPU, ``compile`` off) replaces each ``nn.Linear`` of the decoder (attention, feed-forward,
output heads) by a prepacked linear (:func:`prepack_linears`): its weight reordered once at load into oneDNN's
blocked layout (``mkldnn._reorder_linear_weight``), applied with ``mkldnn._linear_pointwise``. A decoding step
multiplies two rows (classifier-free guidance) by every weight, so it is bound by reading the decoder from memory;
on an AMX Xeon forty bf16 1024 x 4096 weights took 24.8 ms as ``nn.Linear`` and 16.8 ms prepacked (13.6 against
20.0 GB/s; fp32 gained nothing), the outputs were bit-identical to ``nn.Linear``'s (every shape tried, and whole
greedy generations), and a bf16 frame of musicgen-small ran 1.12-1.17x faster (docs/benchmarks.md, sixteenth
pass). ``auto`` turns it on for bf16 on a CPU without ``compile`` (inductor cannot lower the prepacked op).
``auto`` (the default) takes :func:`default_inference` for the device (docs/benchmarks.md).

**Presets.** ``preset="tiny"`` (random weights only) builds :func:`tiny_config`: the real classes and code path
at toy width (EnCodec at the real 32 kHz and hop of 640, 4 codebooks of 64 codes, a 2-layer decoder), for smoke runs
such as ``python -m bench.gpu_bench --quick``; ``published`` (the default) is the real architecture.

**Parameters.** Counted on the meta device with :func:`baselines.base.count_parameters`, per component: ``codec``
(EnCodec 32 kHz), ``text_encoder`` (T5-base encoder, its embedding counted once), ``lm`` (the decoder: codebook
embeddings, transformer, the ``num_codebooks`` output heads), ``enc_to_dec_proj`` (T5 768 -> decoder width) and,
for melody, ``audio_enc_to_dec_proj`` (12 chroma bins -> decoder width). EnCodec's codebooks are buffers, not
parameters, in both transformers and audiocraft (4 x 2048 x 128 = 1,048,576 values), so they are not in the counts.
"""

from __future__ import annotations

import functools
import json
import re
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from baselines.base import (
    AdapterError,
    GeneratedAudio,
    GenerationRequest,
    Generator,
    ItemError,
    ParamCount,
    PrecisionDistance,
    WeightsStatus,
    copy_fits,
    count_parameters,
    snr_db,
)
from baselines.chroma import ChromaSettings, melody_chroma, to_model_rate
from baselines.weights import resolve_hub_weights

TOKENIZER_FILES = ("tokenizer.json", "spiece.model")  # the T5 vocabulary, fast or sentencepiece form
DEFAULT_DURATION_S = 47.55  # SAMUeL's chunk length: every model gets the same duration
RANDOM_SEED = 0

# ---- published configurations ----------------------------------------------------------------------------------
# T5-base (the `t5-base` checkpoint MusicGen's conversion scripts load as the text encoder): d_model 768, 12 layers
# of 12 heads x 64, relu FFN 3072, 32128-token vocabulary. Only the encoder is used (T5EncoderModel).
T5_BASE: dict[str, Any] = {
    "vocab_size": 32128, "d_model": 768, "d_kv": 64, "d_ff": 3072, "num_layers": 12, "num_heads": 12,
    "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128, "feed_forward_proj": "relu",
    "layer_norm_epsilon": 1e-6, "dropout_rate": 0.1, "is_encoder_decoder": True,
}
# facebook/encodec_32khz: the overrides of transformers' convert_encodec_checkpoint_to_pytorch.py ("encodec_32khz")
# on EncodecConfig's defaults. Hop 8*5*4*4 = 640 samples -> 50 Hz; 2.2 kbps / (50 Hz * 11 bits) -> 4 codebooks.
ENCODEC_32KHZ: dict[str, Any] = {
    "sampling_rate": 32_000, "audio_channels": 1, "upsampling_ratios": [8, 5, 4, 4], "target_bandwidths": [2.2],
    "num_filters": 64, "codebook_size": 2048, "use_causal_conv": False, "normalize": False,
    "use_conv_shortcut": False, "hidden_size": 128, "num_residual_layers": 1, "num_lstm_layers": 2,
    "norm_type": "weight_norm", "kernel_size": 7, "last_kernel_size": 7, "residual_kernel_size": 3,
    "dilation_growth_rate": 2, "compress": 2, "pad_mode": "reflect", "trim_right_ratio": 1.0,
}
# Decoders: hidden size and layers from transformers' convert_musicgen_transformers.py / convert_musicgen_melody_
# transformers.py (ffn = 4 x hidden, tie_word_embeddings False); heads from audiocraft's config/model/lm/
# model_scale/{small,medium,large}.yaml (16 / 24 / 32; heads do not change the parameter count). Vocabulary 2048
# codes + 1 pad/start token (2048), 4 codebooks, positions 2048 (sinusoidal, extended on demand).
_DECODER_COMMON: dict[str, Any] = {
    "vocab_size": 2048, "max_position_embeddings": 2048, "num_codebooks": 4, "audio_channels": 1,
    "activation_function": "gelu", "pad_token_id": 2048, "bos_token_id": 2048, "tie_word_embeddings": False,
}
DECODERS: dict[str, dict[str, Any]] = {
    "small": {**_DECODER_COMMON, "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
              "ffn_dim": 4096},
    "medium": {**_DECODER_COMMON, "hidden_size": 1536, "num_hidden_layers": 48, "num_attention_heads": 24,
               "ffn_dim": 6144},
    "large": {**_DECODER_COMMON, "hidden_size": 2048, "num_hidden_layers": 48, "num_attention_heads": 32,
              "ffn_dim": 8192},
    "melody": {**_DECODER_COMMON, "hidden_size": 1536, "num_hidden_layers": 48, "num_attention_heads": 24,
               "ffn_dim": 6144},
}
# MusicgenMelodyConfig: 12 chroma bins, at most 235 chroma frames (30 s at 32 kHz / hop 4096, + 1).
MELODY_EXTRA: dict[str, Any] = {"num_chroma": 12, "chroma_length": 235}


def published_config(size: str) -> Any:
    """The transformers config of facebook/musicgen-``size`` (small, medium, large, melody) from the values above."""
    from transformers import EncodecConfig, T5Config

    if size == "melody":
        from transformers import MusicgenMelodyConfig, MusicgenMelodyDecoderConfig

        decoder = MusicgenMelodyDecoderConfig(**DECODERS[size])
        return MusicgenMelodyConfig(text_encoder=T5Config(**T5_BASE).to_dict(),
                                    audio_encoder=EncodecConfig(**ENCODEC_32KHZ).to_dict(),
                                    decoder=decoder.to_dict(), **MELODY_EXTRA)
    from transformers import MusicgenConfig, MusicgenDecoderConfig

    decoder = MusicgenDecoderConfig(**DECODERS[size])
    return MusicgenConfig(text_encoder=T5Config(**T5_BASE).to_dict(),
                          audio_encoder=EncodecConfig(**ENCODEC_32KHZ).to_dict(), decoder=decoder.to_dict())


PRESETS = ("published", "tiny")
TINY_CODES = 64  # codes per codebook of the tiny preset; the pad / start token is 64


def tiny_config(melody: bool = False) -> Any:
    """The tiny preset: T5 (2 layers, 16 wide, a 12-word vocabulary), EnCodec at 32 kHz with the real hop of 640 and
    4 codebooks of 64 codes, a 2-layer decoder 24 wide over 64 codes + pad 64."""
    from transformers import EncodecConfig, T5Config

    t5 = T5Config(vocab_size=12, d_model=16, d_kv=4, d_ff=32, num_layers=2, num_heads=4,
                  relative_attention_num_buckets=8, relative_attention_max_distance=16)
    codec = EncodecConfig(sampling_rate=32_000, upsampling_ratios=[8, 5, 4, 4], target_bandwidths=[2.2],
                          num_filters=4, hidden_size=16, codebook_size=TINY_CODES, num_lstm_layers=1,
                          use_causal_conv=False, use_conv_shortcut=False)
    decoder = {"vocab_size": TINY_CODES, "hidden_size": 24, "num_hidden_layers": 2, "num_attention_heads": 2,
               "ffn_dim": 48, "num_codebooks": 4, "pad_token_id": TINY_CODES, "bos_token_id": TINY_CODES,
               "max_position_embeddings": 64}
    if melody:
        from transformers import MusicgenMelodyConfig, MusicgenMelodyDecoderConfig

        return MusicgenMelodyConfig(text_encoder=t5.to_dict(), audio_encoder=codec.to_dict(),
                                    decoder=MusicgenMelodyDecoderConfig(**decoder).to_dict(), chroma_length=20)
    from transformers import MusicgenConfig, MusicgenDecoderConfig

    return MusicgenConfig(text_encoder=t5.to_dict(), audio_encoder=codec.to_dict(),
                          decoder=MusicgenDecoderConfig(**decoder).to_dict())


def model_class(melody: bool) -> Any:
    if melody:
        from transformers import MusicgenMelodyForConditionalGeneration

        return MusicgenMelodyForConditionalGeneration
    from transformers import MusicgenForConditionalGeneration

    return MusicgenForConditionalGeneration


def component_counts(model: Any) -> ParamCount:
    """Exact parameter counts of a Musicgen(Melody)ForConditionalGeneration, per component (see module doc)."""
    components: dict[str, Any] = {"codec": model.audio_encoder, "text_encoder": model.text_encoder,
                                  "lm": model.decoder}
    for name in ("enc_to_dec_proj", "audio_enc_to_dec_proj"):
        if getattr(model, name, None) is not None:
            components[name] = getattr(model, name)
    counts = count_parameters(components)
    rest = count_parameters({"all": model}).total - counts.total
    if rest:  # a parameter outside the named parts would make the split lie
        raise AdapterError(f"{type(model).__name__}: {rest} parameters outside {list(components)}")
    return counts


@dataclass(frozen=True)
class SamplingSettings:
    """audiocraft's MusicGen defaults (``set_generation_params``): top-k 250 sampling, CFG scale 3."""

    do_sample: bool = True
    guidance_scale: float = 3.0
    top_k: int = 250
    top_p: float = 0.0  # 0: off (audiocraft's default); transformers reads 1.0 as off
    temperature: float = 1.0

    def generate_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"do_sample": self.do_sample, "guidance_scale": self.guidance_scale,
                                  "top_k": self.top_k, "temperature": self.temperature}
        if self.top_p > 0:
            kwargs["top_p"] = self.top_p
        return kwargs


DTYPES = ("float32", "bfloat16", "float16")
CACHE_IMPLEMENTATIONS = ("dynamic", "static", "preallocated")
_SHORT_DTYPE = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
# The cache ``auto`` takes on a CPU: the preallocated one (docs/benchmarks.md, sixteenth pass: whole 47.55 s
# generations of musicgen-small, bf16, AMX Xeon, 2 cores). The dynamic cache copies itself at every step (a frame
# grew from 75 to 148 ms over the run) and the static cache attends over all its positions from the first step; the
# preallocated one does neither and gives the dynamic cache's outputs. (Before the sixteenth pass this was the
# dynamic cache: on a Zen 4 EPYC the static one had been slower in both dtypes.)
DEFAULT_CACHE = "preallocated"
# On CUDA transformers' dynamic cache, until bench/gpu_bench.py has timed the others there (it times all three).
DEFAULT_CACHE_CUDA = "dynamic"
# Whether ``auto`` compiles the decoding step (which needs the static cache). Off: see default_inference.
DEFAULT_COMPILE = False


def default_inference(device: str) -> tuple[str, str, bool]:
    """(dtype, cache, compile) that ``auto`` takes on ``device``: bfloat16 where the device computes it natively (a
    CPU with AVX512-BF16 or AMX, a CUDA GPU that supports it: :func:`samuel.generate.resolve_precision`, as SAMUeL's
    and Stable Audio Open's ``auto``), else float32 (bf16 emulated is no faster); the preallocated cache on a CPU
    (:data:`DEFAULT_CACHE`), the dynamic one elsewhere; not compiled. (``prepack`` follows from these:
    :meth:`InferenceSettings.resolved`.)

    ``compile`` stays off. On an AMX Xeon a compiled static cache ran whole 47.55 s generations of musicgen-small
    1.15-1.19x faster than the dynamic cache (docs/benchmarks.md, "Speed, eighth pass"; 1.39x by the harness's
    estimate in the fifteenth), but compiling took 26-52 s per model in a fresh process, for each of the main job's
    four MusicGens, against the 12 frames per item it times; one model per process, the compiled step beat the same
    static cache uncompiled by only 1.08x (small and medium), and in the sixteenth pass it lost to the static cache
    with prepacked linears, which cannot be compiled (92 against 87 ms a frame)."""
    from samuel.generate import resolve_precision

    dtype = "bfloat16" if resolve_precision("auto", device) == "bf16" else "float32"
    return dtype, (DEFAULT_CACHE if _on_cpu(device) else DEFAULT_CACHE_CUDA), DEFAULT_COMPILE


def _on_cpu(device: str) -> bool:
    """``cpu`` or ``cpu:N``."""
    return str(device).split(":")[0] == "cpu"


@dataclass(frozen=True)
class InferenceSettings:
    """The decoder's numeric precision, KV cache and compilation; ``auto`` takes :func:`default_inference` for the
    device. ``compile``: the decoder step through ``torch.compile``, as transformers' ``generate`` does on a GPU for a
    static cache (``CompileConfig``; on other devices the adapter asks for it explicitly); it needs the static cache,
    which ``cache_implementation="auto"`` then takes."""

    dtype: str = "auto"  # float32 | bfloat16 | float16 | auto
    cache_implementation: str = "auto"  # dynamic | static | preallocated | auto
    compile: bool | str = "auto"  # True | False | auto
    prepack: bool | str = "auto"  # True | False | auto: the decoder's linears prepacked for oneDNN (CPU)

    def __post_init__(self) -> None:
        if self.dtype not in (*DTYPES, "auto"):
            raise AdapterError(f"dtype must be one of {[*DTYPES, 'auto']}, got {self.dtype!r}")
        if self.cache_implementation not in (*CACHE_IMPLEMENTATIONS, "auto"):
            raise AdapterError(f"cache_implementation must be one of {[*CACHE_IMPLEMENTATIONS, 'auto']}, "
                               f"got {self.cache_implementation!r}")
        if not (isinstance(self.compile, bool) or self.compile == "auto"):
            raise AdapterError(f"compile must be true, false or auto, got {self.compile!r}")
        if self.compile is True and self.cache_implementation not in ("static", "auto"):
            raise AdapterError("compile needs cache_implementation=static (transformers compiles the decoder step "
                               "only over a static cache)")
        if not (isinstance(self.prepack, bool) or self.prepack == "auto"):
            raise AdapterError(f"prepack must be true, false or auto, got {self.prepack!r}")
        if self.prepack is True and self.compile is True:
            raise AdapterError("prepack and compile exclude each other (inductor cannot lower oneDNN's prepacked "
                               "linear); pick one")
        if self.prepack is True and self.dtype == "float16":
            raise AdapterError("prepack takes dtype bfloat16 or float32 (oneDNN's CPU linear)")

    def resolved(self, device: str) -> InferenceSettings:
        """Every field concrete for ``device`` (``cuda:1`` -> the ``cuda`` default)."""
        dtype, cache, compiled = default_inference(device)
        if self.compile != "auto":
            compiled = bool(self.compile)
        elif self.cache_implementation not in ("static", "auto"):
            compiled = False  # asked for another cache than the static one: nothing to compile for
        if self.cache_implementation != "auto":
            cache = self.cache_implementation
        elif compiled:
            cache = "static"
        dtype = dtype if self.dtype == "auto" else self.dtype  # auto is never float16: __post_init__ checked
        if self.prepack == "auto":
            prepacked = _on_cpu(device) and dtype == "bfloat16" and not compiled and prepack_available(dtype)
        elif self.prepack and not _on_cpu(device):
            raise AdapterError(f"prepack is a CPU path (oneDNN); the device is {device}")
        elif self.prepack and (why := prepack_unavailable_reason(dtype)) is not None:
            raise AdapterError(f"prepack asked for, but {why}; drop the option (auto leaves it off here)")
        else:
            prepacked = self.prepack
        return InferenceSettings(dtype, cache, compiled, prepacked)

    @property
    def label(self) -> str:
        """As Table II's Precision column shows it, e.g. ``bf16 (EnCodec in fp32), static KV cache, compiled``."""
        codec = "" if self.dtype == "float32" else " (EnCodec in fp32)"
        compiled = ", compiled" if self.compile is True else ""
        prepacked = ", oneDNN prepacked linears" if self.prepack is True else ""
        return (f"{_SHORT_DTYPE.get(self.dtype, self.dtype)}{codec}, {self.cache_implementation} KV cache"
                f"{compiled}{prepacked}")


def prepack_available(dtype: str = "float32") -> bool:
    """Whether oneDNN's prepacked linear runs here for ``dtype`` (:func:`prepack_unavailable_reason`)."""
    return prepack_unavailable_reason(dtype) is None


@functools.cache
def prepack_unavailable_reason(dtype: str) -> str | None:
    """Why oneDNN's prepacked linear (``mkldnn._reorder_linear_weight``) cannot run for ``dtype`` on this CPU, or
    None when it can. Tried on a 16 x 16 weight: oneDNN's bf16 path needs AVX512BW/VL/DQ or AVX-NE-CONVERT, and on an
    AVX2-only CPU (an EPYC VM here) the reorder raises where the flags say nothing torch exposes."""
    import torch

    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")):
        return "this torch has no oneDNN prepacked linear (mkldnn._reorder_linear_weight)"
    try:
        torch.ops.mkldnn._reorder_linear_weight(torch.zeros(16, 16, dtype=getattr(torch, dtype)), 2)
    except RuntimeError as error:
        return f"oneDNN cannot prepack a {dtype} linear on this CPU ({str(error).splitlines()[0]})"
    return None


@functools.cache
def prepacked_linear_class() -> Any:
    """The ``torch.nn.Module`` class :func:`prepack_linears` puts in place of ``nn.Linear`` (made on first use, so
    that importing this module does not import torch)."""
    import torch

    class PrepackedLinear(torch.nn.Module):
        """``linear`` (y = x W^T + b) with W reordered once into oneDNN's blocked layout for ``rows`` rows per call
        (a hint: any count runs). The reordered weight is an opaque oneDNN tensor, not a parameter: the module is for
        inference on a CPU, and moving or casting it afterwards is not supported."""

        def __init__(self, linear: torch.nn.Linear, rows: int) -> None:
            super().__init__()
            self.in_features, self.out_features = linear.in_features, linear.out_features
            self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), rows)
            self.packed_bias = None if linear.bias is None else linear.bias.detach()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            rows = x.reshape(-1, self.in_features)
            y = torch.ops.mkldnn._linear_pointwise(rows, self.packed_weight, self.packed_bias, "none", [], "")
            return y.view(*x.shape[:-1], self.out_features)

        def extra_repr(self) -> str:
            bias = self.packed_bias is not None
            return f"in_features={self.in_features}, out_features={self.out_features}, bias={bias}"

    return PrepackedLinear


def prepack_linears(module: Any, rows: int = 2) -> int:
    """Replace every ``nn.Linear`` under ``module`` by a :func:`prepacked_linear_class` module of the same weights
    (``module`` already on the CPU in its final dtype); returns how many were replaced. Exactly ``nn.Linear``: a
    subclass may be read by its owner through ``.weight`` (``nn.MultiheadAttention``'s ``out_proj``), which the
    packed module does not have."""
    import torch

    cls = prepacked_linear_class()
    replaced = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear:
                setattr(parent, name, cls(child, rows))
                replaced += 1
    return replaced


def kv_cache_bytes(config: Any, steps: int, bytes_per_value: int) -> int:
    """Self-attention keys and values for ``steps`` positions, two rows (classifier-free guidance runs the
    conditional and unconditional rows as one batch of 2): layers x (keys, values) x 2 rows x positions x width."""
    decoder = config.decoder
    return decoder.num_hidden_layers * 2 * 2 * steps * decoder.hidden_size * bytes_per_value


@functools.cache
def preallocated_layer_class() -> Any:
    """The cache layer of ``cache_implementation="preallocated"`` (made on first use: transformers is imported
    lazily). See :func:`self_attention_cache`."""
    import torch
    from transformers.cache_utils import DynamicLayer

    class PreallocatedLayer(DynamicLayer):
        """transformers' ``DynamicLayer`` (attention over the filled positions only, the mask sized as for it) whose
        keys and values are the filled prefix of storage allocated once for ``max_cache_len`` positions: an update
        writes the new positions in place instead of concatenating (a copy of the whole cache per step). When the
        keys were replaced (a batch reorder) or a run outgrows the storage, it concatenates as ``DynamicLayer``
        does. ``reset`` empties the layer and keeps the storage (transformers' ``generate`` prefills twice, resetting
        in between: :func:`_passed_cache`)."""

        def __init__(self, max_cache_len: int) -> None:
            super().__init__()
            self.max_cache_len = max_cache_len
            self._storage: tuple[torch.Tensor, torch.Tensor] | None = None

        def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
            super().lazy_initialization(key_states, value_states)
            shapes = [(*states.shape[:2], self.max_cache_len, states.shape[-1]) for states in (key_states,
                                                                                            value_states)]
            if self._storage is None or [tuple(t.shape) for t in self._storage] != shapes or any(
                    t.dtype != key_states.dtype or t.device != key_states.device for t in self._storage):
                self._storage = tuple(torch.empty(shape, dtype=key_states.dtype, device=key_states.device)
                                      for shape in shapes)
            self.keys, self.values = (t[:, :, :0] for t in self._storage)

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
                   ) -> tuple[torch.Tensor, torch.Tensor]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            keys, values = self._storage
            start = self.keys.shape[-2]
            end = start + key_states.shape[-2]
            ours = self.keys.untyped_storage().data_ptr() == keys.untyped_storage().data_ptr()
            if end > self.max_cache_len or not ours or self.keys.shape[:2] != keys.shape[:2]:
                return super().update(key_states, value_states, *args, **kwargs)
            keys[:, :, start:end] = key_states
            values[:, :, start:end] = value_states
            self.keys, self.values = keys[:, :, :end], values[:, :, :end]
            return self.keys, self.values

    return PreallocatedLayer


def self_attention_cache(config: Any, kind: str, max_cache_len: int) -> Any:
    """The decoder's self-attention cache of ``kind`` for a run of ``max_cache_len`` positions: transformers'
    ``DynamicCache`` (grown by concatenating each step), ``StaticCache`` (allocated at once; every step attends over
    all ``max_cache_len`` positions, the unfilled ones masked) or, ``preallocated``, a ``Cache`` of
    :func:`preallocated_layer_class` layers: the dynamic cache's attention and outputs, storage allocated once."""
    from transformers.cache_utils import Cache, DynamicCache, StaticCache

    if kind == "dynamic":
        return DynamicCache(config=config)
    if kind == "static":
        return StaticCache(config=config, max_cache_len=max_cache_len)
    if kind == "preallocated":
        layer = preallocated_layer_class()
        return Cache(layers=[layer(max_cache_len) for _ in range(config.num_hidden_layers)])
    raise ValueError(f"cache kind must be one of {CACHE_IMPLEMENTATIONS}, got {kind!r}")


@contextmanager
def _passed_cache(model: Any, kind: str, max_cache_len: int) -> Iterator[dict[str, Any]]:
    """``generate`` keyword arguments that run ``model`` on a self-attention cache of ``kind``
    (:func:`self_attention_cache`) sized for ``max_cache_len`` positions (see the module doc: transformers 5.24
    ignores ``cache_implementation`` here and prefills twice, so the cache is emptied at the start of every
    prefill)."""
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    config = model.decoder.config
    cache = EncoderDecoderCache(self_attention_cache(config, kind, max_cache_len), DynamicCache(config=config))
    prefill = model._prefill

    def prefill_from_empty(*args: Any, **kwargs: Any) -> Any:
        cache.reset()
        return prefill(*args, **kwargs)

    model._prefill = prefill_from_empty  # an instance attribute, removed again below
    try:
        yield {"cache": cache}
    finally:
        del model._prefill


class HashTokenizer:
    """Stand-in for the T5 tokenizer when the weights are random and no vocabulary is at hand: one id per word
    (crc32 of the lower-cased word, in [2, vocab)), then </s> (id 1), right-padded with 0, like T5. Deterministic,
    so random-weight runs are reproducible; timing sees about T5's sequence length (T5 splits a little finer)."""

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size

    def ids(self, text: str) -> list[int]:
        words = re.findall(r"\w+|[^\w\s]", text.lower())
        return [2 + zlib.crc32(w.encode()) % (self.vocab_size - 2) for w in words] + [1]

    def __call__(self, texts: Sequence[str], **_: Any) -> dict[str, Any]:
        import torch

        rows = [self.ids(t) for t in texts]
        width = max(len(r) for r in rows)
        input_ids = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            input_ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        return {"input_ids": input_ids, "attention_mask": mask}


def _first_step(model: Any, inputs: dict[str, Any], dtype: Any) -> tuple[Any, Any]:
    """(text encoder states, first-step conditional logits) of ``model`` on ``inputs``, both float32 on the CPU."""
    import torch

    floats = {k: v.to(dtype) if v.is_floating_point() else v for k, v in inputs.items()}
    start = torch.full((model.decoder.num_codebooks, 1), model.generation_config.decoder_start_token_id,
                       device=inputs["input_ids"].device)
    with torch.no_grad():
        text = model.text_encoder(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        logits = model(**floats, decoder_input_ids=start).logits
    return text.last_hidden_state.float().cpu(), logits.float().cpu()


def _synchronize(device: Any) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class _Stopped(Exception):
    """Raised by :class:`_UnitHook` to end a run shorter than transformers' delay pattern allows."""


def _unit_hook(on_unit: Callable[[], None] | None, stop_after: int | None) -> Any:
    """A transformers StoppingCriteria that never stops generation itself: it counts steps, calls ``on_unit`` once
    per step, and raises :class:`_Stopped` after ``stop_after`` steps when given."""
    import torch
    from transformers import StoppingCriteria

    class _UnitHook(StoppingCriteria):
        def __init__(self) -> None:
            self.steps = 0

        def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
            self.steps += 1
            if on_unit is not None:
                if input_ids.is_cuda:
                    torch.cuda.synchronize(input_ids.device)
                on_unit()
            if stop_after is not None and self.steps >= stop_after:
                raise _Stopped
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    return _UnitHook()


class _MusicGen(Generator):
    """Shared by the four rows; subclasses set ``size`` and the class attributes."""

    size: ClassVar[str] = ""
    melody: ClassVar[bool] = False
    sample_rate = 32_000
    uses_text = True
    timing_unit = "frames"
    default_timing_mode = "extrapolate"
    random_draw = "drawn once (transformers' initialisation; baselines.random_init)"

    def __init__(self, weights: Any = None, *, device: str = "cpu", **options: Any) -> None:
        super().__init__(weights, device=device, **options)
        sampling_fields, inference_fields = set(SamplingSettings.__dataclass_fields__), set(
            InferenceSettings.__dataclass_fields__)
        unknown = set(options) - sampling_fields - inference_fields - {"preset"}
        if unknown:
            raise AdapterError(f"{self.name}: unknown options {sorted(unknown)}; "
                               f"known: {sorted(sampling_fields | inference_fields | {'preset'})}")
        self.preset = str(options.get("preset", "published"))
        if self.preset not in PRESETS:
            raise AdapterError(f"{self.name}: preset must be one of {list(PRESETS)}, got {self.preset!r}")
        self.sampling = SamplingSettings(**{k: v for k, v in options.items() if k in sampling_fields})
        try:
            asked = InferenceSettings(**{k: v for k, v in options.items() if k in inference_fields})
        except AdapterError as err:
            raise AdapterError(f"{self.name}: {err}") from None
        self.inference = asked.resolved(device)
        self._inference_chosen_by = {f: "option" if options.get(f, "auto") != "auto" else f"auto on {device}"
                                     for f in inference_fields}
        self._folder: Path | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._chroma: ChromaSettings | None = None
        self._compute_dtype: Any = None  # torch dtype of everything but EnCodec, set by _load
        self._exact_first_step: tuple[str, tuple[Any, Any]] | None = None  # fp32 side, taken at load

    @property
    def default_repo(self) -> str:
        return f"facebook/musicgen-{self.size}"

    # -- weights ---------------------------------------------------------------------------------------------
    def resolve_weights(self) -> WeightsStatus:
        if self.preset == "tiny":
            return WeightsStatus("random", f"random init (seed {RANDOM_SEED})",
                                 f"{self.name}: RANDOM weights (tiny preset: the real code path at toy width, for "
                                 "smoke runs); efficiency only")
        resolved = resolve_hub_weights(
            self.weights, model=self.name, default_repo=self.default_repo, marker_files=("config.json",),
            how_to_get=(f"Get them with `huggingface-cli download {self.default_repo}` (the model, its T5 "
                        f"tokenizer and processor files), or pass `--weights-path {self.name}=FOLDER` for a folder "
                        "holding them."),
            random_seed=RANDOM_SEED)
        self._folder = resolved.folder
        return resolved.status

    def config(self) -> Any:
        """The folder's config when weights were found, else the embedded published one (or the tiny preset's)."""
        status = self.status
        if status.kind == "pretrained" and self._folder is not None:
            return model_class(self.melody).config_class.from_pretrained(str(self._folder))
        return tiny_config(self.melody) if self.preset == "tiny" else published_config(self.size)

    def parameter_source(self) -> str:
        if self.preset == "tiny":
            return f"the tiny preset (baselines.musicgen.tiny_config), not {self.default_repo}"
        return super().parameter_source()

    def bytes_per_param(self) -> int:
        return 4 if self.inference.dtype == "float32" else 2

    def precision(self) -> str:
        return self.inference.label

    def memory_estimate_bytes(self) -> int:
        """The parameters (EnCodec's in fp32, the rest in ``dtype``) + 25%, plus the self-attention KV cache of a
        47.55 s generation (both caches reach it: the dynamic one by growing, the static one at once; 0.94 GB for
        small in fp32, 3.7 GB for large)."""
        counts = self.parameter_counts()
        assert counts is not None
        codec = counts.by_component["codec"]
        weights = (counts.total - codec) * self.bytes_per_param() + codec * 4
        config = self.config()
        steps = int(DEFAULT_DURATION_S * config.audio_encoder.frame_rate) + config.decoder.num_codebooks
        return int(weights * 1.25) + kv_cache_bytes(config, steps, self.bytes_per_param())

    def precision_distance(self, request: GenerationRequest) -> PrecisionDistance | None:
        """bf16/fp16 against fp32 on ``request``'s prompt (and vocal, for melody), stage by stage: the text
        encoder's states and the decoder's first-step logits (from the start token, conditional). The fp32 side is
        the fp32 model the load built before casting it, run then on the planned request
        (:meth:`plan_precision_distance`), so weight rounding counts too. For another request it is the model built
        again in fp32 (the same seed, or the same folder), which needs the fp32 model's memory on top of the loaded
        one (an :class:`AdapterError` says so when it is not there)."""
        import torch

        if self.inference.dtype == "float32":
            return None
        self.load()
        inputs = self._inputs(request)
        fast = _first_step(self._model, inputs, self._compute_dtype)
        if self._exact_first_step is not None and self._exact_first_step[0] == request.item_id:
            exact = self._exact_first_step[1]  # taken at load, before the cast (the same weights, unrounded)
        else:
            counts = self.parameter_counts()
            assert counts is not None
            fits, need, have = copy_fits(counts.total * 4, self.device)
            if not fits:
                raise AdapterError(f"{self.name}: comparing with fp32 needs a second, fp32 copy of the model "
                                   f"({need / 2**30:.1f} GiB with 25% headroom); {have / 2**30:.1f} GiB free on "
                                   f"{self.device}")
            exact_model = self._fp32_model()
            try:
                exact = _first_step(exact_model, inputs, torch.float32)
            finally:
                del exact_model
        stages = {"text encoder": snr_db(exact[0], fast[0]), "decoder logits, first step": snr_db(exact[1], fast[1])}
        return PrecisionDistance(stages, f"the prompt of item {request.item_id!r}; {self.status.kind} weights")

    def unit_growth_seconds(self, total_units: int) -> tuple[float, float] | None:
        """One bare decoder step with 1 and with ``total_units - 1`` positions cached (:meth:`decoder_step_seconds`):
        the harness adds that growth to the frames it extrapolates (bench.stats.extrapolate_growing_units)."""
        if total_units < 3:
            return None
        steps = self.decoder_step_seconds([1, total_units - 1])
        return steps[1], steps[total_units - 1]

    def decoder_step_seconds(self, positions: Sequence[int], repeats: int = 3, text_tokens: int = 8
                             ) -> dict[int, float]:
        """Median seconds of one autoregressive decoder step (all codebooks, the classifier-free guidance batch of
        2) with ``p`` positions already in the self-attention cache, for each ``p`` in ``positions``, in this
        adapter's dtype and cache kind (a static cache sized for a 47.55 s run). The caches hold zeros (timing does
        not depend on the values), so a late step costs seconds, not the minutes of generating up to it;
        the logits processors and sampling (the same for every configuration) are not included. For melody the
        positions include its conditioning prefix (it has no cross-attention). Loads the model."""
        import time

        import torch
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        self.load()
        decoder, config = self._model.decoder, self._model.decoder.config
        head_dim = config.hidden_size // config.num_attention_heads
        dtype, device = self._compute_dtype, self._model.device
        full = int(DEFAULT_DURATION_S * self._frame_rate) + self._codebook_delays() + 1

        def states(length: int) -> torch.Tensor:  # (batch 2, heads, length, head_dim)
            return torch.zeros(2, config.num_attention_heads, length, head_dim, device=device, dtype=dtype)

        # text-conditioned decoders cross-attend (over the cached text states); melody's conditioning is a prefix
        encoder = None if self.melody else torch.zeros(2, text_tokens, config.hidden_size, device=device, dtype=dtype)
        tokens = torch.full((2 * config.num_codebooks, 1), 7, device=device)
        seconds: dict[int, float] = {}
        for position in positions:
            if not 1 <= position < full:
                raise ValueError(f"position must be in [1, {full}), got {position}")
            own = self_attention_cache(config, self.inference.cache_implementation, full)
            cache = EncoderDecoderCache(own, DynamicCache(config=config))
            for layer in range(config.num_hidden_layers):
                own.update(states(position), states(position), layer)
                if encoder is not None:
                    cache.cross_attention_cache.update(states(text_tokens), states(text_tokens), layer)
                    cache.is_updated[layer] = True
            times = []
            with torch.no_grad():
                for i in range(repeats + 1):
                    _synchronize(device)
                    t0 = time.perf_counter()
                    decoder(input_ids=tokens, encoder_hidden_states=encoder, cache=cache, use_cache=True)
                    _synchronize(device)
                    if i:  # the first call warms up
                        times.append(time.perf_counter() - t0)
                    own.crop(-1)  # back to `position` entries for the next call
            seconds[int(position)] = float(np.median(times))
        return seconds

    def _count_parameters(self) -> ParamCount:
        import torch

        config = self.config()
        with torch.device("meta"):
            model = model_class(self.melody)(config)
        return component_counts(model)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def _load(self) -> None:
        import torch

        dtype = getattr(torch, self.inference.dtype)
        self._model = self._fp32_model()
        if self.status.kind == "pretrained" and self._folder is not None:
            self._tokenizer = self._load_tokenizer(self._folder)
            self._chroma = _chroma_settings(self._folder) if self.melody else None
        else:
            self._tokenizer = HashTokenizer(self._model.config.text_encoder.vocab_size)
            self._chroma = ChromaSettings() if self.melody else None
        self._compute_dtype = dtype  # the inputs are made as the cast model will get them (melody's chroma)
        self._exact_first_step = self._first_step_before_cast(dtype)
        # weights drawn or stored in fp32, then rounded: one set of weights per seed whatever the dtype
        self._model.to(self.device, dtype).eval()
        self._model.audio_encoder.float()  # EnCodec decodes in fp32 (module doc)
        if self.inference.prepack:
            from samuel.heap import return_free_heap

            # two rows per decoding step: the conditional and unconditional halves of classifier-free guidance
            prepack_linears(self._model.decoder, rows=2)
            return_free_heap()  # the replaced weights are freed, but glibc would keep them resident

    def _first_step_before_cast(self, dtype: Any) -> tuple[str, tuple[Any, Any]] | None:
        """(item id, :func:`_first_step` in fp32) of the planned request (:meth:`plan_precision_distance`), taken
        while the model is still the fp32 one the cast is about to round; None when nothing is planned, the model
        runs in fp32, or the item cannot be read (the comparison then builds its fp32 copy)."""
        import torch

        request = self._distance_request
        if request is None or dtype == torch.float32:
            return None
        t0 = time.perf_counter()
        try:
            exact = _first_step(self._model, self._inputs(request), torch.float32)
        except ItemError:
            return None
        finally:
            self.fp32_reference_s = time.perf_counter() - t0
        return request.item_id, exact

    def _fp32_model(self) -> Any:
        """The model in fp32 on the device: from the weights folder, or drawn with the fixed seed (the caller's RNG
        untouched), the start and pad tokens set as the conversion scripts set them."""
        import torch

        cls = model_class(self.melody)
        if self.status.kind == "pretrained" and self._folder is not None:
            model = cls.from_pretrained(str(self._folder), local_files_only=True, dtype=torch.float32)
        else:
            model = build_random_model(cls, self.config(), self.device)
            pad = model.config.decoder.pad_token_id
            model.generation_config.decoder_start_token_id = pad
            model.generation_config.pad_token_id = pad
        return model.to(self.device, torch.float32).eval()

    def _load_tokenizer(self, folder: Path) -> Any:
        from transformers import AutoTokenizer

        # Checked by hand: given a folder with no vocabulary, transformers 5 builds an empty T5 tokenizer that maps
        # every word to <unk> instead of failing.
        vocab_files = [name for name in TOKENIZER_FILES if (folder / name).is_file()]
        problem = f"none of {', '.join(TOKENIZER_FILES)} is there"
        if vocab_files:
            try:
                return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            except Exception as err:  # OSError, ValueError...: all mean the files are not usable
                problem = f"loading {', '.join(vocab_files)} failed: {type(err).__name__}: {err}"
        raise AdapterError(
            f"{self.name}: {folder} holds the model but no usable text tokenizer ({problem}; "
            "`MusicgenProcessor.save_pretrained` writes them). Copy the tokenizer files of "
            f"{self.default_repo} (tokenizer.json, spiece.model, tokenizer_config.json, special_tokens_map.json) "
            "into it.")

    def _unload(self) -> None:
        self._model = None
        self._tokenizer = None
        self._exact_first_step = None

    # -- generation ------------------------------------------------------------------------------------------
    @property
    def _frame_rate(self) -> int:
        config = self._model.config if self._model is not None else self.config()
        return int(config.audio_encoder.frame_rate)

    def _codebook_delays(self) -> int:
        """Steps the delay pattern adds: one per codebook after the first (per channel for stereo)."""
        config = self._model.config if self._model is not None else self.config()
        decoder = config.decoder
        per_channel = decoder.num_codebooks // 2 if decoder.audio_channels == 2 else decoder.num_codebooks
        return per_channel - 1

    def frames(self, request: GenerationRequest) -> int:
        """Audio frames of a full generation: ``int(duration * frame_rate)``, at least 1."""
        duration = request.duration_s or DEFAULT_DURATION_S
        return max(1, int(duration * self._frame_rate))

    def total_units(self, request: GenerationRequest) -> int:
        return self.frames(request) + self._codebook_delays()

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        max_units: int | None = None,
        on_unit: Callable[[], None] | None = None,
    ) -> list[GeneratedAudio]:
        self.load()
        return [self._generate_one(r, max_units, on_unit) for r in requests]

    def _prefix_length(self, inputs: dict[str, Any]) -> int:
        """Positions the decoder's self-attention cache holds before the first frame (melody: the conditioning)."""
        return 0

    @contextmanager
    def _cache(self, total: int, min_steps: int, inputs: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The cache keyword arguments of ``generate``: none for the dynamic cache (transformers' default), else a
        static cache sized for the whole generation (``total`` steps), whatever ``max_units`` cut."""
        if self.inference.cache_implementation == "dynamic":
            yield {}
            return
        with _passed_cache(self._model, self.inference.cache_implementation,
                           max(total, min_steps) + 1 + self._prefix_length(inputs)) as kwargs:
            yield kwargs

    def _compile_kwargs(self) -> dict[str, Any]:
        """``generate`` keyword arguments for ``compile``: transformers compiles the step itself for a static cache,
        on a GPU only unless the ``CompileConfig`` allows every device (its ``_compile_all_devices``); without
        ``compile`` it is told not to, so that a static cache on a GPU runs as labelled."""
        if not self.inference.compile:
            return {"disable_compile": True}
        from transformers import CompileConfig

        # mode "default": transformers' "reduce-overhead" is CUDA graphs, which a CPU does not have
        config = CompileConfig(mode="default" if str(self.device).startswith("cpu") else "reduce-overhead")
        config._compile_all_devices = True
        return {"compile_config": config}

    def _inputs(self, request: GenerationRequest) -> dict[str, Any]:
        text = self._tokenizer([request.prompt], padding=True, return_tensors="pt")
        return {"input_ids": text["input_ids"].to(self.device),
                "attention_mask": text["attention_mask"].to(self.device)}

    def _generate_one(self, request: GenerationRequest, max_units: int | None,
                      on_unit: Callable[[], None] | None) -> GeneratedAudio:
        import torch
        from transformers import StoppingCriteriaList

        inputs = self._inputs(request)
        total = self.total_units(request)
        steps = total if max_units is None else max(1, min(total, max_units))
        min_steps = 2 * self._codebook_delays()  # transformers builds no delay pattern below this
        hook = _unit_hook(on_unit, stop_after=steps if steps < min_steps else None)
        torch.manual_seed(request.seed)
        try:
            with torch.no_grad(), self._cache(total, min_steps, inputs) as cache_kwargs:
                values = self._model.generate(**inputs, **self.sampling.generate_kwargs(), **cache_kwargs,
                                              **self._compile_kwargs(), max_new_tokens=max(steps, min_steps),
                                              stopping_criteria=StoppingCriteriaList([hook]))
            audio = values[0].float().cpu().numpy()  # (channels, samples)
        except _Stopped:
            audio = np.zeros((self._model.config.decoder.audio_channels, 0), dtype=np.float32)
        rate = int(self._model.config.audio_encoder.sampling_rate)
        info = {
            "seed": request.seed, "prompt": request.prompt, "conditioning": self.conditioning,
            "duration_s": request.duration_s or DEFAULT_DURATION_S, "frame_rate": self._frame_rate,
            "frames": self.frames(request), "units_total": total, "units_done": hook.steps,
            "truncated": steps < total, "text_tokens": int(inputs["attention_mask"].sum()),
            "sampling": asdict(self.sampling), "extension": "none (single pass; audiocraft's windowing not used)",
            "weights": self.status.kind, "precision": self.precision(),
            "inference": {**asdict(self.inference), "chosen_by": dict(self._inference_chosen_by)},
        }
        if "input_features" in inputs:
            info["chroma_frames"] = int(inputs["input_features"].shape[1])
            info["vocal_path"] = str(request.vocal_path)
            info["vocal_window_s"] = [request.start_s, request.start_s + request.duration_s]
        return GeneratedAudio(np.ascontiguousarray(audio, dtype=np.float32), rate, info)


def build_random_model(cls: Any, config: Any, device: Any) -> Any:
    """``cls(config)`` with seeded random weights (the caller's RNG untouched), drawn once: the text encoder and
    the decoder by transformers' own initialisation alone (:func:`baselines.random_init.built_with_one_draw`;
    MusicGen-Large built 1.4x faster), EnCodec as its constructor draws it (transformers' draw misses its
    weight-normed convolutions, which keep torch's default), then its codebooks (:func:`draw_codebooks_`)."""
    import torch

    from baselines.random_init import built_with_one_draw

    def encodec_as_drawn_before(model: Any) -> None:
        model.audio_encoder = type(model.audio_encoder)(model.config.audio_encoder)
        draw_codebooks_(model)

    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(RANDOM_SEED)
        return built_with_one_draw(lambda: cls(config), encodec_as_drawn_before)


def draw_codebooks_(model: Any) -> None:
    """Draw EnCodec's codebook vectors N(0, 1) in place (random weights). transformers initialises these buffers
    to zeros (k-means fills them in training), so every code would decode to the same sound: a random MusicGen's
    audio would then not depend on its tokens at all, and the plumbing probe found MusicGen-Melody "does not respond
    to its vocal" although its logits did (docs/benchmarks.md). Decoding costs the same either way."""
    for layer in model.audio_encoder.quantizer.layers:
        layer.codebook.embed.normal_()


def _chroma_settings(folder: Path) -> ChromaSettings:
    """The feature extractor's settings from the folder's preprocessor_config.json, defaults where absent."""
    path = folder / "preprocessor_config.json"
    if not path.exists():
        return ChromaSettings()
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise AdapterError(f"{path}: unreadable feature extractor config ({err})") from err
    defaults = ChromaSettings()
    return ChromaSettings(sampling_rate=int(raw.get("sampling_rate", defaults.sampling_rate)),
                          n_fft=int(raw.get("n_fft", defaults.n_fft)),
                          hop_length=int(raw.get("hop_length", defaults.hop_length)),
                          num_chroma=int(raw.get("feature_size", defaults.num_chroma)),
                          chunk_length=int(raw.get("chunk_length", defaults.chunk_length)))


class MusicGenSmall(_MusicGen):
    name = "musicgen-small"
    display_name = "MusicGen - Small"
    size = "small"
    conditioning = "Text description"


class MusicGenMedium(_MusicGen):
    name = "musicgen-medium"
    display_name = "MusicGen - Medium"
    size = "medium"
    conditioning = "Text description"


class MusicGenLarge(_MusicGen):
    name = "musicgen-large"
    display_name = "MusicGen - Large"
    size = "large"
    conditioning = "Text description"


class MusicGenMelody(_MusicGen):
    """Vocal + text: the vocal's chroma (first 30 s, one-hot per 128 ms frame) and the prompt."""

    name = "musicgen-melody"
    display_name = "MusicGen - Melody"
    size = "melody"
    melody = True
    conditioning = "Vocal + Text"
    uses_vocal = True

    def vocal_chroma(self, request: GenerationRequest) -> Any:
        """(1, frames, 12) ``input_features`` of the item's vocal window (:meth:`GenerationRequest.read_vocal`);
        :class:`ItemError` naming the file if it is missing or bad."""
        if request.vocal_path is None:
            raise ItemError(f"{self.name}: item {request.item_id!r} has no vocal file (melody conditions on it)")
        settings = self._chroma or ChromaSettings()
        wav = to_model_rate(request.read_vocal(), 44_100, settings.sampling_rate)
        return melody_chroma([wav], settings)

    def _prefix_length(self, inputs: dict[str, Any]) -> int:
        """The chroma (repeated or cut to ``chroma_length`` frames) and the text tokens, prepended to the frames."""
        return int(self._model.config.chroma_length) + int(inputs["input_ids"].shape[1])

    def _inputs(self, request: GenerationRequest) -> dict[str, Any]:
        inputs = super()._inputs(request)
        inputs["input_features"] = self.vocal_chroma(request).to(self.device, self._compute_dtype)
        return inputs

