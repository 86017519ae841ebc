"""SAMUeL behind the generator interface: a checkpoint from `samuel train` plus the Stable Audio Open VAE.

Weights: ``--weights-path samuel=runs/x/model.safetensors`` (there is no published checkpoint: train your own) and
the VAE from the ``codec`` option (a Hugging Face id read from the cache, a diffusers folder or a
stable-audio-tools checkpoint; see :mod:`samuel.codec`). The row counts as pretrained only when the checkpoint
carries a training record and the VAE was found and is not marked random (the marker of
samuel.codec.save_tiny_random_oobleck); anything else runs the real architecture with random weights and is labelled
so. Timing units are sampler steps (one guided forward each).

The vocal is the item's window ``[start_s, start_s + duration_s)`` (:meth:`GenerationRequest.read_vocal`), so the
accompaniment lasts as long as that window, whatever the length of the vocal file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from baselines.base import (
    AdapterError,
    GeneratedAudio,
    GenerationRequest,
    Generator,
    ParamCount,
    PrecisionDistance,
    WeightsNotFoundError,
    WeightsStatus,
    count_parameters,
    snr_db,
)
from samuel.codec_spec import RANDOM_MARKER
from samuel.hub import cached_snapshot, existing_path, weights_digest

SAMPLE_RATE = 44_100
DISTANCE_FRAMES = 64  # latent frames (2.97 s) compared in fp32 by precision_distance
HOW_TO_GET = ("No SAMUeL weights are published: train a checkpoint with `samuel train` (README) and pass "
              "--weights-path samuel=RUN/model.safetensors.")


def _codec_speed(codec: Any) -> dict[str, Any]:
    """How the codec ran (dtype, fast layers, compiled Snake, convolution layout, tiles); a stand-in codec may not
    say."""
    provenance = codec.provenance()
    keys = ("dtype", "fast_layers", "compiled_snake", "conv_layout", "tile_frames")
    return {k: provenance[k] for k in keys if k in provenance}


class _StopSampling(Exception):
    """Raised from the wrapped model function after ``max_units`` steps (timing extrapolation)."""


class SAMUeLGenerator(Generator):
    name = "samuel"
    display_name = "SAMUeL"
    sample_rate = SAMPLE_RATE
    conditioning = "Vocal melody"
    uses_vocal = True
    timing_unit = "steps"
    default_timing_mode = "full"

    def __init__(self, weights: Any = None, *, device: str = "cpu", **options: Any) -> None:
        from samuel.codec import DEFAULT_CODEC

        # preset "tiny": SAMUeLConfig.tiny() and the tiny random VAE, random weights only (tests, CI smoke runs)
        options = {"codec": DEFAULT_CODEC, "sampler": "dpmpp", "steps": None, "guidance": 3.0,
                   "precision": "auto", "seed": 0, "preset": "paper", **options}
        if options["preset"] not in ("paper", "tiny"):
            raise ValueError(f"samuel preset must be 'paper' or 'tiny', got {options['preset']!r}")
        # codec_mismatch "refuse" (unset): a checkpoint whose training record names another VAE than the codec
        # option fails to load (samuel.generate.training_codec_mismatch); "allow": it runs, each sample records it.
        # Not a default entry: options are part of sample ids, and earlier samples must stay valid.
        if options.get("codec_mismatch", "refuse") not in ("refuse", "allow"):
            raise ValueError(f"samuel codec_mismatch must be 'refuse' or 'allow', got {options['codec_mismatch']!r}")
        super().__init__(weights, device=device, **options)
        if self.options["preset"] == "tiny":  # a test architecture: its row must not read as the paper's model
            self.display_name = "SAMUeL (tiny preset)"
        from samuel.generate import resolve_precision

        # "auto" (the default): bf16 where the device computes it natively, else fp32 (samuel.generate)
        self.resolved_precision = resolve_precision(str(self.options["precision"]), device)
        self._accompanist: Any = None

    # -- weights -------------------------------------------------------------------------------------------
    def _codec_location(self) -> Path | None:
        spec = str(self.options["codec"])
        local = existing_path(spec)
        if local is not None:
            return local
        snapshot = cached_snapshot(spec) if "/" in spec else None
        if snapshot is not None and ((snapshot / "vae" / "config.json").exists()
                                     or (snapshot / "model.safetensors").exists()):
            return snapshot
        return None

    @staticmethod
    def _codec_marked_random(location: Path) -> bool:
        """Whether the VAE at ``location`` (a diffusers folder, or a Stable Audio Open snapshot with its ``vae/``)
        is marked random by samuel.codec.save_tiny_random_oobleck; a checkpoint file carries no marker."""
        from samuel.codec_weights import marked_random

        return location.is_dir() and any(marked_random(folder) for folder in (location, location / "vae"))

    def _vae_config(self) -> dict[str, Any] | None:
        """The config of the VAE the codec option names when it is a diffusers folder (``config.json``, or
        ``vae/config.json`` in a Stable Audio Open snapshot); None otherwise (a stable-audio-tools checkpoint of the
        published VAE: the SAO defaults)."""
        import json

        location = self._codec_location()
        if location is None:
            return None
        folder = location.parent if location.is_file() and location.name == "config.json" else location
        for path in (folder / "config.json", folder / "vae" / "config.json"):
            if path.is_file():
                try:
                    raw = json.loads(path.read_text())
                except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
                    raise AdapterError(f"samuel: the codec config {path} is not readable JSON ({err})") from err
                return {k: v for k, v in raw.items() if not k.startswith("_")}
        return None

    def resolve_weights(self) -> WeightsStatus:
        seed = self.options["seed"]
        arch = "tiny preset" if self.options["preset"] == "tiny" else "paper architecture and SAO VAE architecture"
        random_msg = f"samuel: RANDOM weights ({arch}, seed {seed}; {{}}); efficiency only"
        if self.weights.mode == "random" or self.options["preset"] == "tiny":
            why = "--weights random" if self.weights.mode == "random" else "the tiny preset runs random weights only"
            return WeightsStatus("random", f"random init (seed {seed})", random_msg.format(why))
        problems: list[str] = []
        checkpoint = existing_path(self.weights.source)
        if self.weights.source is None:
            problems.append("no checkpoint given")
        elif checkpoint is None:
            problems.append(f"checkpoint {self.weights.source!r} not found")
        else:
            from samuel.checkpoint import CheckpointError, resolve_weights_file

            try:
                checkpoint = resolve_weights_file(checkpoint)  # a `samuel train` run folder: its model.safetensors
            except CheckpointError as err:
                problems.append(f"checkpoint not found: {err}")
            else:
                if not self._trained(checkpoint):
                    problems.append(f"checkpoint {checkpoint} has no training record (untrained weights)")
        codec = self._codec_location()
        if codec is None:
            from samuel.hub import hub_cache_dir

            problems.append(f"Stable Audio Open VAE {self.options['codec']!r} not found (looked for a local path of "
                            f"that name and for that id in the Hugging Face cache {hub_cache_dir()})")
        elif self._codec_marked_random(codec):  # trained U-Net, random VAE: the output is no quality result
            problems.append(f"the VAE at {codec} has random weights (its {RANDOM_MARKER} says so)")
        if not problems:
            assert checkpoint is not None
            mismatch = self._codec_mismatch(checkpoint)
            if mismatch is not None and self.options.get("codec_mismatch", "refuse") != "allow":
                raise AdapterError(f"samuel: {mismatch}. Pass codec=PATH (the VAE the checkpoint was trained with), "
                                   "or --option samuel.codec_mismatch=allow when both hold the same weights in "
                                   "another file format")
            message = f"samuel: trained checkpoint {checkpoint}, VAE from {codec}"
            return WeightsStatus("pretrained", str(checkpoint),
                                 message if mismatch is None else f"{message}; {mismatch} (codec_mismatch=allow)",
                                 weights_digest(checkpoint), caveat=mismatch)
        why = "; ".join(problems)
        if self.weights.mode == "pretrained":
            raise WeightsNotFoundError(f"samuel: {why}. {HOW_TO_GET} The VAE: accept the licence at "
                                       "https://huggingface.co/stabilityai/stable-audio-open-1.0 and download it "
                                       "(see `samuel generate --help`), or pass codec=PATH.")
        return WeightsStatus("random", f"random init (seed {seed})", random_msg.format(why))

    def _codec_mismatch(self, checkpoint: Path) -> str | None:
        """samuel.generate.training_codec_mismatch of the checkpoint's training record and the codec option's
        weights files, before anything is loaded: the row's status says it, so that every table and record does.
        It reads the files load_vae loads (samuel.codec_weights.vae_weight_files), so the load does not hash the
        VAE's weights again to check."""
        from samuel.checkpoint import TRAINING_KEY, read_json_metadata
        from samuel.codec_spec import CodecError
        from samuel.codec_weights import vae_weight_files
        from samuel.generate import training_codec_mismatch
        from samuel.hashing import files_sha256

        try:
            files = vae_weight_files(str(self.options["codec"]))
            training = read_json_metadata(checkpoint, TRAINING_KEY)
        except (CodecError, OSError, ValueError):
            return None  # the load names what is wrong with either file
        if not files:
            return None  # a VAE without weights files: the load says so
        return training_codec_mismatch(training, {"source": str(self.options["codec"]),
                                                  "weights_sha256": files_sha256(files)})

    @staticmethod
    def _trained(checkpoint: Path) -> bool:
        from samuel.checkpoint import TRAINING_KEY, read_json_metadata

        try:
            training = read_json_metadata(checkpoint, TRAINING_KEY)
        except Exception:
            return False
        return bool(training and training.get("steps", 0) > 0)

    # -- lifecycle -----------------------------------------------------------------------------------------
    def _load(self) -> None:
        import torch

        from samuel.codec import random_oobleck_codec
        from samuel.generate import Accompanist, codec_dtype
        from samuel.model import SAMUeL, fill_zero_init_layers

        precision = self.resolved_precision
        if self.status.kind == "pretrained":
            self._accompanist = Accompanist.load(self.status.source, self.options["codec"], device=self.device,
                                                 precision=precision)
            return
        seed = int(self.options["seed"])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = fill_zero_init_layers(SAMUeL(self._config()), seed=seed)
        dtype = codec_dtype(precision, self.device)
        codec = random_oobleck_codec(seed=seed, device=self.device, tiny=self.options["preset"] == "tiny",
                                     dtype=dtype, compiled_snake=dtype == torch.bfloat16)
        self._accompanist = Accompanist(model, codec, None,
                                        checkpoint_info={"random": True, "seed": seed, "trained": False},
                                        device=self.device, precision=precision)

    def _model_config(self) -> Any:
        """The config of the model this row runs: the loaded one, else the checkpoint's, else the preset's."""
        if self._accompanist is not None:
            return self._accompanist.model.config
        if self.status.kind == "pretrained":
            from samuel.checkpoint import load_config

            return load_config(self.status.source)
        return self._config()

    def _config(self) -> Any:
        from samuel.config import SAMUeLConfig

        return SAMUeLConfig.tiny() if self.options["preset"] == "tiny" else SAMUeLConfig()

    def _unload(self) -> None:
        self._accompanist = None

    def _settings(self, seed: int) -> Any:
        from samuel.generate import GenerateSettings

        return GenerateSettings(sampler=self.options["sampler"], steps=self.options["steps"],
                                guidance=float(self.options["guidance"]), seed=seed, batch_size=1)

    # -- generation ----------------------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest], *, max_units: int | None = None,
                 on_unit: Callable[[], None] | None = None) -> list[GeneratedAudio]:
        self.load()
        return [self._one(r, max_units, on_unit) for r in requests]

    def _one(self, request: GenerationRequest, max_units: int | None,
             on_unit: Callable[[], None] | None) -> GeneratedAudio:
        import torch

        from samuel.chunking import join_chunks, valid_frames

        vocal = request.read_vocal()  # the item's window [start_s, start_s + duration_s), (2, S) at 44.1 kHz
        settings = self._settings(request.seed)
        done = 0

        def wrap(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
            def counted(x: Any, t: Any) -> Any:
                nonlocal done
                if max_units is not None and done >= max_units:
                    raise _StopSampling
                out = fn(x, t)
                done += 1
                if on_unit is not None:
                    on_unit()
                return out

            return counted

        acc = self._accompanist
        info: dict[str, Any] = {"sampler": settings.sampler, "steps": settings.n_steps, "guidance": settings.guidance,
                                "seed": request.seed, "weights": self.status.kind, "precision": self.precision(),
                                "codec": _codec_speed(acc.codec)}
        if self.status.caveat is not None:  # allowed (codec_mismatch=allow): every sample says it
            info["codec_mismatch"] = self.status.caveat
        try:
            audio, timings = acc.accompany(vocal, settings, key=request.item_id, wrap_model_fn=wrap)
        except _StopSampling:
            # Timing extrapolation: the decode still runs once, on latents of the right size and over the frames a
            # generation keeps, so that its fixed cost is in the measured time; noise, not zeros, which the codec
            # would decode once per tile length (samuel.codec.tiled). The audio is not a generation and is marked so.
            plan = acc.chunk_plan(vocal.shape[1], settings)
            frames = acc.model.config.num_frames
            noise = torch.randn(len(plan), acc.model.config.latent_channels, frames,
                                generator=torch.Generator().manual_seed(request.seed))
            audio = acc.codec.decode(noise, keep_frames=valid_frames(plan)).numpy()
            audio, timings = join_chunks(audio, plan), {}
            info["truncated"] = f"stopped after {done} of {self.total_units(request)} steps (timing only)"
        info.update({"units_done": done, "timings": {k: round(v, 4) for k, v in timings.items()}})
        return GeneratedAudio(np.ascontiguousarray(audio, dtype=np.float32), SAMPLE_RATE, info)

    # -- measurement ---------------------------------------------------------------------------------------
    def output_seconds(self, request: GenerationRequest) -> float:
        """The vocal window's length: the accompaniment lasts as long as the vocal, and a song that ends inside the
        item gives a shorter window (before, a 20 s window was counted as 47.55 s: with the tiny preset's 2.97 s
        chunks "measured on 200 of 475 steps" for a run that made all 200). From the header; the item's duration
        when the file cannot say (generating it then names the problem)."""
        from samuel.audio import window_samples

        if request.vocal_path is None:
            return request.duration_s
        try:
            return window_samples(request.vocal_path, request.start_s, request.duration_s) / SAMPLE_RATE
        except (ValueError, OSError):  # AudioError is a ValueError
            return request.duration_s

    def total_units(self, request: GenerationRequest) -> int:
        from samuel.chunking import CHUNK_FRAMES, DEFAULT_OVERLAP_FRAMES, HOP_LENGTH

        samples = round(self.output_seconds(request) * SAMPLE_RATE)
        frames = self._model_config().num_frames  # a checkpoint may be trained at another length than the preset's
        chunk = frames * HOP_LENGTH
        hop = chunk - frames * DEFAULT_OVERLAP_FRAMES // CHUNK_FRAMES * HOP_LENGTH
        chunks = 1 if samples <= chunk else 1 + math.ceil((samples - chunk) / hop)
        return chunks * self._settings(0).n_steps

    def precision(self) -> str:
        precision = self.resolved_precision
        if precision == "fp32":
            return "fp32"
        from samuel.generate import codec_dtype

        vae = str(codec_dtype(precision, self.device)).removeprefix("torch.")
        return f"{precision} (U-Net in bf16, VAE in {vae})"

    def set_sampling_steps(self, steps: int) -> None:
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        self.options["steps"] = int(steps)

    def precision_distance(self, request: GenerationRequest) -> PrecisionDistance | None:
        """bf16/fp16 against fp32, stage by stage: the VAE encoding the first :data:`DISTANCE_FRAMES` latent frames
        of ``request``'s vocal, the guided U-Net on those latents (the rest of its window N(0, I); x_t N(0, I) at
        the middle timestep, seeded), and the VAE decoding the fp32 latents. The fp32 side has the same weights: the
        fp32 U-Net (the bf16 twin's original), the codec loaded again in fp32 (seconds on a 2-core CPU)."""
        import torch

        if self.resolved_precision == "fp32":
            return None
        self.load()
        acc = self._accompanist
        fast_codec, model = acc.codec, acc.model
        exact_codec = self._fp32_codec()
        frames = min(DISTANCE_FRAMES, model.config.num_frames)
        vocal = request.read_vocal()[:, : frames * exact_codec.hop_length]
        audio = torch.zeros(1, exact_codec.audio_channels, frames * exact_codec.hop_length)
        audio[0, :, : vocal.shape[1]] = torch.from_numpy(np.ascontiguousarray(vocal[: exact_codec.audio_channels]))
        latents = exact_codec.encode(audio)
        stages = {"VAE encode": snr_db(latents, fast_codec.encode(audio))}
        gen = torch.Generator().manual_seed(int(self.options["seed"]))
        vocal_latents = torch.randn(1, model.config.latent_channels, model.config.num_frames, generator=gen)
        vocal_latents[..., :frames] = latents
        if acc.norm is not None:
            vocal_latents = acc.norm.normalise_vocal(vocal_latents)
        x_t = torch.randn(vocal_latents.shape, generator=gen).to(acc.device)
        t = torch.full((1,), model.config.num_train_timesteps // 2, dtype=torch.long, device=acc.device)
        guidance = self._settings(0).guidance
        with torch.inference_mode():
            exact = acc.model_fn(vocal_latents.to(acc.device), guidance, precision="fp32")(x_t, t)
            fast = acc.model_fn(vocal_latents.to(acc.device), guidance)(x_t, t)
        stages["U-Net (guided)"] = snr_db(exact.float().cpu(), fast.float().cpu())
        stages["VAE decode"] = snr_db(exact_codec.decode(latents), fast_codec.decode(latents))
        seconds = frames * exact_codec.hop_length / exact_codec.sample_rate
        return PrecisionDistance(stages, f"{seconds:.2f} s of item {request.item_id!r}; U-Net at the middle "
                                         f"timestep; {self.status.kind} weights")

    def _fp32_codec(self) -> Any:
        import torch

        from samuel.codec import OobleckCodec, random_oobleck_codec

        if self.status.kind == "pretrained":
            return OobleckCodec.load(self.options["codec"], device=self.device, dtype=torch.float32)
        return random_oobleck_codec(seed=int(self.options["seed"]), device=self.device,
                                    tiny=self.options["preset"] == "tiny", dtype=torch.float32)

    def parameter_source(self) -> str:
        preset = self.options["preset"]
        vae = ("the tiny test VAE" if preset == "tiny" else
               "the Stable Audio Open VAE (diffusers' AutoencoderOobleck defaults, or the codec option's config)")
        if self.status.kind == "pretrained":
            return f"the config saved in the checkpoint {self.status.source}; {vae}"
        built = "SAMUeLConfig.tiny()" if preset == "tiny" else "SAMUeLConfig()"
        return f"{built} (preset {preset!r}: the paper's architecture, samuel/config.py); {vae}"

    def _count_parameters(self) -> ParamCount:
        import torch
        from diffusers import AutoencoderOobleck

        from samuel.codec import TINY_OOBLECK_CONFIG
        from samuel.model import SAMUeL

        config = self._model_config()
        vae_config = self._vae_config() if self.status.kind == "pretrained" else None
        with torch.device("meta"):
            model = SAMUeL(config)
            if self.options["preset"] == "tiny":
                vae = AutoencoderOobleck(**TINY_OOBLECK_CONFIG)
            elif vae_config is not None:
                vae = AutoencoderOobleck.from_config(vae_config)
            else:
                vae = AutoencoderOobleck()  # its defaults are the SAO VAE
        rest = [m for n, m in model.named_children() if n != "vocal_encoder"]
        holder = torch.nn.ParameterList([p for _, p in model.named_parameters(recurse=False)])
        return count_parameters({"codec": vae, "vocal_encoder": model.vocal_encoder, "unet": [*rest, holder]})
