"""MusicGen (Copet et al., 2023) through transformers: small / medium / large from text, melody from vocal + text.

Rows of the paper's Table II. What each adapter really conditions on is recorded in ``conditioning``:
``musicgen-small``, ``-medium`` and ``-large`` get the text prompt only ("Text description"; the paper's table says
"Vocal + Text" for every MusicGen row, but these checkpoints have no audio input); ``musicgen-melody`` gets the
vocal's chroma and the text prompt ("Vocal + Text").

**Weights.** :func:`baselines.weights.resolve_hub_weights` with marker ``config.json`` finds a local folder or the
cached ``facebook/musicgen-*`` snapshot, loaded with ``from_pretrained(folder, local_files_only=True)``; the text
tokenizer comes from the same folder (``AutoTokenizer``). With ``--weights random`` (or ``auto`` and nothing
found) the real architecture is built from the published hyper-parameters embedded below, seeded with
``torch.manual_seed(0)``; there is no T5 vocabulary then, so prompts are tokenized by :class:`HashTokenizer`
(one id per word: the right kind of input for timing, meaningless for quality, as random weights are anyway).

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

**Parameters.** Counted on the meta device with :func:`baselines.base.count_parameters`, per component: ``codec``
(EnCodec 32 kHz), ``text_encoder`` (T5-base encoder, its embedding counted once), ``lm`` (the decoder: codebook
embeddings, transformer, the ``num_codebooks`` output heads), ``enc_to_dec_proj`` (T5 768 -> decoder width) and,
for melody, ``audio_enc_to_dec_proj`` (12 chroma bins -> decoder width). EnCodec's codebooks are buffers, not
parameters, in both transformers and audiocraft (4 x 2048 x 128 = 1,048,576 values), so they are not in the counts.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Sequence
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
    WeightsStatus,
    count_parameters,
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

    def __init__(self, weights: Any = None, *, device: str = "cpu", **options: Any) -> None:
        super().__init__(weights, device=device, **options)
        known = {f for f in SamplingSettings.__dataclass_fields__}
        unknown = set(options) - known
        if unknown:
            raise AdapterError(f"{self.name}: unknown options {sorted(unknown)}; known: {sorted(known)}")
        self.sampling = SamplingSettings(**options)
        self._folder: Path | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._chroma: ChromaSettings | None = None

    @property
    def default_repo(self) -> str:
        return f"facebook/musicgen-{self.size}"

    # -- weights ---------------------------------------------------------------------------------------------
    def resolve_weights(self) -> WeightsStatus:
        resolved = resolve_hub_weights(
            self.weights, model=self.name, default_repo=self.default_repo, marker_files=("config.json",),
            how_to_get=(f"Get them with `huggingface-cli download {self.default_repo}` (the model, its T5 "
                        f"tokenizer and processor files), or pass `--weights-path {self.name}=FOLDER` for a folder "
                        "holding them."),
            random_seed=RANDOM_SEED)
        self._folder = resolved.folder
        return resolved.status

    def config(self) -> Any:
        """The folder's config when weights were found, else the embedded published one."""
        status = self.status
        if status.kind == "pretrained" and self._folder is not None:
            return model_class(self.melody).config_class.from_pretrained(str(self._folder))
        return published_config(self.size)

    def _count_parameters(self) -> ParamCount:
        import torch

        config = self.config()
        with torch.device("meta"):
            model = model_class(self.melody)(config)
        return component_counts(model)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def _load(self) -> None:
        import torch

        status = self.status
        cls = model_class(self.melody)
        if status.kind == "pretrained" and self._folder is not None:
            folder = self._folder
            self._model = cls.from_pretrained(str(folder), local_files_only=True)
            self._tokenizer = self._load_tokenizer(folder)
            self._chroma = _chroma_settings(folder) if self.melody else None
        else:
            config = published_config(self.size)
            with torch.random.fork_rng(devices=[]), torch.device(self.device):  # seeded; caller's RNG untouched
                torch.manual_seed(RANDOM_SEED)
                self._model = cls(config)
            pad = config.decoder.pad_token_id  # as the conversion scripts set them
            self._model.generation_config.decoder_start_token_id = pad
            self._model.generation_config.pad_token_id = pad
            self._tokenizer = HashTokenizer(config.text_encoder.vocab_size)
            self._chroma = ChromaSettings() if self.melody else None
        self._model.to(self.device).eval()

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
            with torch.no_grad():
                values = self._model.generate(**inputs, **self.sampling.generate_kwargs(),
                                              max_new_tokens=max(steps, min_steps),
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
            "weights": self.status.kind,
        }
        if "input_features" in inputs:
            info["chroma_frames"] = int(inputs["input_features"].shape[1])
            info["vocal_path"] = str(request.vocal_path)
            info["vocal_window_s"] = [request.start_s, request.start_s + request.duration_s]
        return GeneratedAudio(np.ascontiguousarray(audio, dtype=np.float32), rate, info)


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

    def _inputs(self, request: GenerationRequest) -> dict[str, Any]:
        inputs = super()._inputs(request)
        inputs["input_features"] = self.vocal_chroma(request).to(self.device, self._model.dtype)
        return inputs

