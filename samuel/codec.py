"""The Stable Audio Open 1.0 VAE ("Oobleck") as SAMUeL's codec: 44.1 kHz stereo <-> 64-channel latents.

One latent frame stands for 2048 samples (strides 2 * 4 * 4 * 8 * 8). The model is diffusers'
``AutoencoderOobleck``; diffusers is imported only when a codec is built, so importing this module is cheap.

:meth:`OobleckCodec.load` takes, in this order:

1. a local diffusers folder with ``config.json`` (a ``save_pretrained`` output, or the ``vae/`` folder of the
   Stable Audio Open repository);
2. a local folder holding such a ``vae/`` folder (a Stable Audio Open snapshot), or a folder holding the
   stable-audio-tools checkpoint ``model.safetensors`` / ``model.ckpt``;
3. a stable-audio-tools checkpoint file (``model.safetensors`` or ``*.ckpt``), whose VAE lives under
   ``pretransform.model.``; its keys are renamed to diffusers' (:func:`sat_to_diffusers_key`) and loaded strictly.
   The architecture comes from ``model_config.json`` beside the file when there is one (the SAO repository ships
   it), else it is read off the tensor shapes;
4. anything else is a Hugging Face id, loaded from subfolder ``vae/`` through the standard cache. Offline mode
   (``HF_HUB_OFFLINE=1``) means no network attempt at all.

Weights that cannot be found raise :class:`CodecNotFoundError` with one message saying what was looked for, where,
and how to get them; weights that are found but unusable raise :class:`CodecError` naming the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import math
import os
import pickle
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from diffusers import AutoencoderOobleck

DEFAULT_CODEC = "stabilityai/stable-audio-open-1.0"  # HF id; the diffusers VAE is in its subfolder "vae"
SAMPLE_RATE = 44_100
HOP_LENGTH = 2048
LATENT_CHANNELS = 64
AUDIO_CHANNELS = 2
# Items per VAE call. The full-size encoder peaks at about 3.6 MB per latent frame in float32 (3.7 GB for one 47.5 s
# chunk of 1024 frames, measured on CPU): one item at a time on CPU, where batching gains nothing, a few on GPUs.
CPU_MAX_BATCH = 1
GPU_MAX_BATCH = 4
SAT_PREFIX = "pretransform.model."  # where a stable-audio-tools diffusion checkpoint keeps its VAE
RANDOM_MARKER = "samuel_codec.json"  # written by save_tiny_random_oobleck so provenance can say "random weights"
SAT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth")

# The smallest Oobleck with the real strides (hop 2048) and 64 latent channels. The encoder cannot be narrower than
# 128 channels: diffusers ties its width to its output, which holds the posterior mean and scale (2 x 64); the
# decoder can, and is 4 wide. About 2.9 M parameters (11.6 MB), nearly all in the encoder.
TINY_OOBLECK_CONFIG: dict[str, Any] = {
    "encoder_hidden_size": 2 * LATENT_CHANNELS,
    "downsampling_ratios": [2, 4, 4, 8, 8],
    "channel_multiples": [1, 1, 1, 1, 1],
    "decoder_channels": 4,
    "decoder_input_channels": LATENT_CHANNELS,
    "audio_channels": AUDIO_CHANNELS,
    "sampling_rate": SAMPLE_RATE,
}

_DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
_DIFFUSERS_INDEX = ("diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.bin.index.json")
_HUB_ID = re.compile(r"^[A-Za-z0-9](?:[\w.-]*[A-Za-z0-9_])?(?:/[A-Za-z0-9](?:[\w.-]*[A-Za-z0-9_])?)?$")


class CodecError(RuntimeError):
    """The codec cannot be loaded or used; the message names the source and the problem."""


class CodecNotFoundError(CodecError):
    """No codec weights where the spec points: the message says what was looked for, where, and how to get them."""


@dataclass(frozen=True)
class _Origin:
    """Where a VAE came from, for :meth:`OobleckCodec.provenance`."""

    resolved: str | None = None
    weights_files: tuple[Path, ...] = ()
    format: str = "diffusers"
    random_weights: bool | None = None
    notes: dict[str, Any] = field(default_factory=dict)


class OobleckCodec:
    """Encode 44.1 kHz stereo to 64-channel latents at 1/2048 the rate, and back.

    Both directions run without autograd, at most ``max_batch`` items per VAE call (default 1 on CPU, 4 elsewhere),
    in ``dtype`` on ``device``, and return float32 tensors on ``device`` that are ordinary tensors (not inference-mode
    ones), so later autograd code may use them.
    """

    def __init__(self, vae: AutoencoderOobleck, source: str, *, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, max_batch: int | None = None,
                 origin: _Origin | None = None) -> None:
        cfg = dict(vae.config)
        problems = _config_problems(cfg)
        if problems:
            raise CodecError(f"the Oobleck VAE from {source} does not fit SAMUeL: {'; '.join(problems)}")
        if not dtype.is_floating_point:
            raise ValueError(f"codec dtype must be a floating type, got {dtype}")
        self.source = source
        self.device = torch.device(device)
        if max_batch is None:
            max_batch = CPU_MAX_BATCH if self.device.type == "cpu" else GPU_MAX_BATCH
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.dtype = dtype
        self.max_batch = int(max_batch)
        self.sample_rate = int(cfg["sampling_rate"])
        self.hop_length = math.prod(cfg["downsampling_ratios"])
        self.latent_channels = int(cfg["decoder_input_channels"])
        self.audio_channels = int(cfg["audio_channels"])
        # nn.Module.to, not diffusers' ModelMixin.to, which warns about casting on every call (even to float32)
        self.vae = torch.nn.Module.to(vae, device=self.device, dtype=dtype).eval().requires_grad_(False)
        self._origin = origin or _Origin()
        self._sha256: str | None = None

    @classmethod
    def load(cls, spec: str | os.PathLike[str] = DEFAULT_CODEC, *, device: str | torch.device = "cpu",
             dtype: torch.dtype = torch.float32, max_batch: int | None = None) -> OobleckCodec:
        """Load the VAE from a folder, a stable-audio-tools checkpoint or a Hugging Face id (module docstring)."""
        source = os.fspath(spec)
        vae, origin = _load_vae(source)
        return cls(vae, source, device=device, dtype=dtype, max_batch=max_batch, origin=origin)

    def encode(self, audio: Tensor) -> Tensor:
        """Audio ``(B, 2, S)``, ``S`` a multiple of 2048, to the posterior mean ``(B, 64, S // 2048)``, float32."""
        _check_batch(audio, "audio", self.audio_channels, "S")
        if audio.shape[-1] % self.hop_length:
            raise ValueError(f"audio length {audio.shape[-1]} is not a multiple of the hop length {self.hop_length}; "
                             "pad or crop it first")
        # The mean, not a sample: latents of the same audio are then the same in every run.
        return self._run(audio, lambda x: self.vae.encode(x).latent_dist.mean,
                         (self.latent_channels, audio.shape[-1] // self.hop_length))

    def decode(self, latents: Tensor) -> Tensor:
        """Latents ``(B, 64, T)`` to audio ``(B, 2, T * 2048)``, float32."""
        _check_batch(latents, "latents", self.latent_channels, "T")
        return self._run(latents, lambda z: self.vae.decode(z).sample,
                         (self.audio_channels, latents.shape[-1] * self.hop_length))

    def _run(self, x: Tensor, step: Callable[[Tensor], Tensor], out_shape: tuple[int, int]) -> Tensor:
        if x.shape[0] == 0:
            return torch.zeros((0, *out_shape), device=self.device)
        parts = []
        with torch.inference_mode():
            for chunk in x.split(self.max_batch):
                parts.append(step(chunk.to(device=self.device, dtype=self.dtype)))
        # Joined outside inference mode: the result is an ordinary tensor that a training step may save for backward.
        out = torch.cat(parts).float()
        if tuple(out.shape[1:]) != out_shape:  # the strides' padding is exact for whole hops; guard anyway
            raise CodecError(f"the VAE from {self.source} returned {tuple(out.shape)}, expected (B, {out_shape[0]}, "
                             f"{out_shape[1]})")
        return out

    def provenance(self) -> dict[str, Any]:
        """Where the weights came from, their sha256 (computed once, on first call) and the VAE config."""
        if self._sha256 is None and self._origin.weights_files:
            self._sha256 = _sha256_of_files(self._origin.weights_files)
        return {
            "codec": "oobleck",
            "source": self.source,
            "resolved": self._origin.resolved,
            "format": self._origin.format,
            "weights_files": [str(p) for p in self._origin.weights_files],
            "weights_sha256": self._sha256,
            "config": _plain_config(self.vae.config),
            "random_weights": self._origin.random_weights,
            "dtype": str(self.dtype).removeprefix("torch."),
            "sample_rate": self.sample_rate,
            "hop_length": self.hop_length,
            **self._origin.notes,
        }


def randomise_snake_(vae: torch.nn.Module, std: float = 0.1) -> torch.nn.Module:
    """Give every Snake layer its own alpha and beta (they start equal, at zero), from the current RNG.

    For random-weight VAEs: the output then depends on every layer, as a trained one's does, and any mix-up of two
    layers in a key mapping changes the output.
    """
    with torch.no_grad():
        for name, param in vae.named_parameters():
            if name.endswith((".alpha", ".beta")):
                param.normal_(0.0, std)
    return vae


def random_oobleck_codec(*, seed: int = 0, device: str | torch.device = "cpu", tiny: bool = False) -> OobleckCodec:
    """The Stable Audio Open VAE architecture (AutoencoderOobleck's defaults) with seeded random weights, or with
    ``tiny`` the :data:`TINY_OOBLECK_CONFIG` twin (real strides and latent width, tiny widths).

    For timing, parameter counts and tests only; its provenance says ``random_weights: True``.
    """
    oobleck = _oobleck_class()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with _quiet_library_warnings():
            vae = randomise_snake_(oobleck(**TINY_OOBLECK_CONFIG) if tiny else oobleck())
    return OobleckCodec(vae, f"random init{' (tiny)' if tiny else ''} (seed {seed})", device=device,
                        origin=_Origin(format="in-memory", random_weights=True, notes={"seed": seed}))


def save_tiny_random_oobleck(path: str | os.PathLike[str], *, seed: int = 0) -> Path:
    """Save a seeded random :data:`TINY_OOBLECK_CONFIG` VAE with ``save_pretrained`` (diffusers format) to ``path``.

    For tests and benchmarks: the real strides, hop and latent width, tiny weights, meaningless sound. A marker file
    makes :meth:`OobleckCodec.provenance` report ``random_weights: True``.
    """
    path = Path(path)
    oobleck = _oobleck_class()
    with torch.random.fork_rng(devices=[]), _quiet_library_warnings():  # seeded without touching the caller's RNG
        torch.manual_seed(seed)
        vae = randomise_snake_(oobleck(**TINY_OOBLECK_CONFIG))
    vae.save_pretrained(path, safe_serialization=True)
    marker = {"random_weights": True, "seed": seed, "made_by": "samuel.codec.save_tiny_random_oobleck"}
    (path / RANDOM_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return path


# ---------------------------------------------------------------------------------------------------------------
# stable-audio-tools key mapping
# ---------------------------------------------------------------------------------------------------------------
# stable-audio-tools builds encoder and decoder as nn.Sequential stacks; diffusers names the same modules:
#   encoder.layers.0 -> conv1; layers.1..N -> block.0..N-1; layers.N+1 -> snake1; layers.N+2 -> conv2
#   decoder.layers.0 -> conv1; layers.1..N -> block.0..N-1; layers.N+1 -> snake1; layers.N+2 -> conv2
#     (decoder.layers.N+3 is the final tanh / identity: no parameters)
# Inside an encoder block: layers.0-2 are the residual units (dilations 1, 3, 9), 3 the snake, 4 the strided conv.
# Inside a decoder block: 0 the snake, 1 the transposed conv, 2-4 the residual units.
# Inside a residual unit: 0 snake, 1 conv (k=7), 2 snake, 3 conv (k=1).
# Snake parameters are (C,) there and (1, C, 1) here.
_ENCODER_BLOCK = ("res_unit1", "res_unit2", "res_unit3", "snake1", "conv1")
_DECODER_BLOCK = ("snake1", "conv_t1", "res_unit1", "res_unit2", "res_unit3")
_RESIDUAL_UNIT = ("snake1", "conv1", "snake2", "conv2")
_PARAM_LEAVES = {
    "weight_g": "weight_g", "weight_v": "weight_v", "bias": "bias", "weight": "weight", "alpha": "alpha",
    "beta": "beta",
    # stable-audio-tools checkpoints saved with torch's parametrization-based weight norm
    "parametrizations.weight.original0": "weight_g", "parametrizations.weight.original1": "weight_v",
}


def sat_to_diffusers_key(key: str, num_blocks: int) -> str | None:
    """Diffusers' ``AutoencoderOobleck`` name for a stable-audio-tools VAE key (without ``pretransform.model.``).

    ``num_blocks`` is the number of strides (5 for Stable Audio Open). Returns None for a key that has no place in
    the diffusers model. Weight-norm parameters come out as ``weight_g`` / ``weight_v``.
    """
    parts = key.split(".")
    if len(parts) < 4 or parts[0] not in ("encoder", "decoder") or parts[1] != "layers" or not parts[2].isdigit():
        return None
    side, index, rest = parts[0], int(parts[2]), parts[3:]
    if index == 0:
        path = ["conv1"]
    elif index == num_blocks + 1:
        path = ["snake1"]
    elif index == num_blocks + 2:
        path = ["conv2"]
    elif 1 <= index <= num_blocks:
        sub = _child(rest, _ENCODER_BLOCK if side == "encoder" else _DECODER_BLOCK)
        if sub is None:
            return None
        path, rest = ["block", str(index - 1), sub], rest[2:]
        if sub.startswith("res_unit"):
            unit = _child(rest, _RESIDUAL_UNIT)
            if unit is None:
                return None
            path, rest = [*path, unit], rest[2:]
    else:
        return None
    leaf = _PARAM_LEAVES.get(".".join(rest))
    return None if leaf is None else ".".join([side, *path, leaf])


def _child(rest: list[str], names: tuple[str, ...]) -> str | None:
    """``names[i]`` for a key tail ``layers.i...`` of an nn.Sequential, else None."""
    if len(rest) < 3 or rest[0] != "layers" or not rest[1].isdigit() or int(rest[1]) >= len(names):
        return None
    return names[int(rest[1])]


def convert_sat_state_dict(state: Mapping[str, Tensor], num_blocks: int) -> tuple[dict[str, Tensor], list[str]]:
    """Rename a stable-audio-tools VAE state dict (prefix removed) to diffusers keys; also the keys with no place."""
    out: dict[str, Tensor] = {}
    unplaced: list[str] = []
    for key, value in state.items():
        new = sat_to_diffusers_key(key, num_blocks)
        if new is None or new in out:
            unplaced.append(key)
            continue
        out[new] = value.reshape(1, -1, 1) if new.endswith((".alpha", ".beta")) else value
    return out, unplaced


# ---------------------------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------------------------
def _load_vae(source: str) -> tuple[AutoencoderOobleck, _Origin]:
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            return _load_diffusers_dir(path)
        if (path / "vae" / "config.json").is_file():
            return _load_diffusers_dir(path / "vae")
        for name in ("model.safetensors", "model.ckpt"):
            if (path / name).is_file():
                return _load_sat_checkpoint(path / name)
        raise CodecNotFoundError(
            f"no Stable Audio Open VAE in the folder {path}: looked for config.json (a diffusers AutoencoderOobleck "
            "folder), vae/config.json (a Stable Audio Open snapshot) and model.safetensors / model.ckpt "
            "(a stable-audio-tools checkpoint)")
    if path.is_file():
        if path.suffix.lower() in SAT_SUFFIXES:
            return _load_sat_checkpoint(path)
        if path.name == "config.json":
            return _load_diffusers_dir(path.parent)
        raise CodecError(f"{path}: not a codec file; expected a stable-audio-tools checkpoint "
                         f"({', '.join(SAT_SUFFIXES)}) or a diffusers folder")
    if _looks_like_path(source):
        raise CodecNotFoundError(
            f"codec path not found: {source!r} (resolved to {path.absolute()}) does not exist. Pass a diffusers "
            "AutoencoderOobleck folder (with config.json), a Stable Audio Open snapshot folder (with vae/), a "
            "stable-audio-tools checkpoint (model.safetensors or *.ckpt) or a Hugging Face id such as "
            f"{DEFAULT_CODEC!r}")
    return _load_from_hub(source)


def _looks_like_path(spec: str) -> bool:
    """Whether a spec that does not exist was meant as a local path rather than a Hugging Face id."""
    if spec.startswith((".", "~", "/")) or "\\" in spec or (os.sep != "/" and os.sep in spec):
        return True
    if not _HUB_ID.match(spec) or "--" in spec or ".." in spec:
        return True
    if spec.lower().endswith((*SAT_SUFFIXES, ".json", ".bin")):
        return True
    # "outputs/vae" whose "outputs" exists here is a mistyped path, not an organisation on the Hub
    return "/" in spec and Path(spec.split("/", 1)[0]).exists()


def _load_diffusers_dir(folder: Path) -> tuple[AutoencoderOobleck, _Origin]:
    config_file = folder / "config.json"
    raw = _read_json(config_file)
    class_name = raw.get("_class_name", "AutoencoderOobleck")
    if class_name != "AutoencoderOobleck":
        raise CodecError(f"{config_file} describes a {class_name}, not the AutoencoderOobleck VAE")
    oobleck = _oobleck_class()
    # Checked before building, so that a wrong config fails fast instead of after allocating a large model.
    problems = _config_problems({**_default_config(oobleck), **raw})
    if problems:
        raise CodecError(f"the Oobleck VAE in {folder} does not fit SAMUeL: {'; '.join(problems)}")
    files = _diffusers_weight_files(folder)
    if not files:
        raise CodecNotFoundError(f"{folder} has config.json but no weights: looked for "
                                 f"{', '.join(_DIFFUSERS_WEIGHTS + _DIFFUSERS_INDEX)}")
    vae = _from_pretrained(oobleck, str(folder), where=str(folder), local_files_only=True)
    return vae, _Origin(resolved=str(folder.absolute()), weights_files=files, format="diffusers",
                        random_weights=_marked_random(folder))


def _from_pretrained(oobleck: Any, name: str, *, where: str, **kwargs: Any) -> AutoencoderOobleck:
    try:
        with _quiet_library_warnings():
            # low_cpu_mem_usage needs accelerate; saying so explicitly spares the user diffusers' warning about it
            vae, info = oobleck.from_pretrained(name, output_loading_info=True,
                                                low_cpu_mem_usage=_accelerate_available(), **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise CodecError(f"could not load the Oobleck VAE from {where}: {err}") from err
    # diffusers only warns about missing or unexpected weights; a half-random codec must not pass silently.
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if bad:
        raise CodecError(f"the Oobleck weights in {where} do not match the config: {_summarize(bad)}")
    return vae


def _diffusers_weight_files(folder: Path) -> tuple[Path, ...]:
    for name in _DIFFUSERS_WEIGHTS:  # the order diffusers prefers
        if (folder / name).is_file():
            return (folder / name,)
    for name in _DIFFUSERS_INDEX:
        if (folder / name).is_file():
            shards = sorted(set(_read_json(folder / name).get("weight_map", {}).values()))
            return tuple(folder / s for s in shards)
    return ()


def _load_from_hub(repo_id: str) -> tuple[AutoencoderOobleck, _Origin]:
    from huggingface_hub import try_to_load_from_cache

    oobleck = _oobleck_class()
    cache, offline = hub_cache_dir(), hub_offline()
    # Explicit cache_dir and local_files_only: huggingface_hub reads HF_HUB_CACHE and HF_HUB_OFFLINE once, at
    # import; these reflect the environment now, and local_files_only=True guarantees no network attempt.
    kwargs: dict[str, Any] = {"subfolder": "vae", "cache_dir": str(cache), "local_files_only": offline}
    try:
        with _quiet_library_warnings():
            raw = oobleck.load_config(repo_id, **kwargs)
    except (OSError, ValueError) as err:  # HF hub errors (gated, not found, offline, no network) are OSErrors
        sat = try_to_load_from_cache(repo_id, "model.safetensors", cache_dir=str(cache))
        if isinstance(sat, str):  # only the stable-audio-tools checkpoint was downloaded; it holds the VAE too
            return _load_sat_checkpoint(Path(sat), notes={"hub_id": repo_id})
        raise CodecNotFoundError(_not_found_message(repo_id, cache, offline, err)) from err
    where = f"{repo_id} (Hugging Face cache {cache}, subfolder vae/)"
    problems = _config_problems({**_default_config(oobleck), **raw})
    if problems:
        raise CodecError(f"the Oobleck VAE of {where} does not fit SAMUeL: {'; '.join(problems)}")
    try:
        vae = _from_pretrained(oobleck, repo_id, where=where, **kwargs)
    except CodecError as err:
        if isinstance(err.__cause__, OSError):  # the config is cached but the weights are not (or cannot be fetched)
            raise CodecNotFoundError(_not_found_message(repo_id, cache, offline, err.__cause__)) from err
        raise
    config_file = try_to_load_from_cache(repo_id, "vae/config.json", cache_dir=str(cache))
    folder = Path(config_file).parent if isinstance(config_file, str) else None
    files = _diffusers_weight_files(folder) if folder else ()
    return vae, _Origin(resolved=str(folder) if folder else None, weights_files=files, format="diffusers",
                        random_weights=_marked_random(folder) if folder else None, notes={"hub_id": repo_id})


def _not_found_message(repo_id: str, cache: Path, offline: bool, err: BaseException) -> str:
    gated = "the repository is gated" if repo_id == DEFAULT_CODEC else "if the repository is gated"
    mode = " [offline mode: HF_HUB_OFFLINE=1]" if offline else ""
    # Online, the hub's reason (gated, unauthorised, no network) is worth a line; offline it is always "not cached".
    first_line = (str(err).strip().splitlines() or [""])[0][:300]
    reason = "" if offline else f" Last error: {type(err).__name__}: {first_line}."
    return (f"Stable Audio Open VAE weights not found for {repo_id!r}. Looked for: a local directory or file of that "
            f"name; the Hugging Face cache at {cache} (subfolder vae/, or a stable-audio-tools model.safetensors)"
            f"{mode}.{reason} To get them: accept the licence at https://huggingface.co/{repo_id} ({gated}), then "
            f"`hf auth login` and `hf download {repo_id} --include 'vae/*'`, or pass --codec /path/to/vae "
            "(a diffusers folder) or /path/to/model.safetensors (stable-audio-tools checkpoint).")


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache as the environment says now (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache)."""
    env = os.environ
    cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if not cache:
        home = env.get("HF_HOME") or os.path.join(
            env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
        cache = os.path.join(home, "hub")
    return Path(os.path.expandvars(os.path.expanduser(cache)))


def hub_offline() -> bool:
    """Offline mode: HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set now, or when huggingface_hub was imported."""
    env = os.environ
    if any((env.get(name) or "").strip().upper() in ("1", "ON", "YES", "TRUE")
           for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.HF_HUB_OFFLINE)


def _load_sat_checkpoint(path: Path, *, notes: dict[str, Any] | None = None) -> tuple[AutoencoderOobleck, _Origin]:
    state = _read_sat_vae_tensors(path)
    config_file = path.parent / "model_config.json"
    if config_file.is_file():
        config, config_from = _config_from_model_config(config_file), str(config_file)
    else:
        config, config_from = _infer_sat_config(state, path), "inferred from the tensor shapes (sampling_rate 44100)"
    problems = _config_problems(config)
    if problems:
        raise CodecError(f"the VAE in {path} (config {config_from}) does not fit SAMUeL: {'; '.join(problems)}")
    converted, unplaced = convert_sat_state_dict(state, len(config["downsampling_ratios"]))
    oobleck = _oobleck_class()
    with _quiet_library_warnings():
        vae = oobleck(**config)
    target = vae.state_dict()
    converted = _match_weight_norm_names(converted, target)
    bad = {
        "missing_keys": sorted(set(target) - set(converted)),
        "unexpected_keys": sorted([SAT_PREFIX + k for k in unplaced] + [k for k in converted if k not in target]),
        "mismatched_keys": [f"{k} {tuple(v.shape)} vs {tuple(target[k].shape)}"
                            for k, v in converted.items() if k in target and v.shape != target[k].shape],
    }
    if any(bad.values()):
        raise CodecError(f"the VAE weights in {path} do not fit an AutoencoderOobleck with config {config} "
                         f"({config_from}): {_summarize({k: v for k, v in bad.items() if v})}")
    vae.load_state_dict(converted, strict=True)
    info = {"sat_config": config_from, **(notes or {})}
    return vae.eval(), _Origin(resolved=str(path.absolute()), weights_files=(path,), format="stable-audio-tools",
                               random_weights=None, notes=info)


def _read_sat_vae_tensors(path: Path) -> dict[str, Tensor]:
    """The VAE tensors of a stable-audio-tools checkpoint, keys without the ``...pretransform.model.`` prefix."""
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            # Only the VAE tensors are read: the rest of the SAO file is ~4.6 GB of diffusion model.
            with safe_open(str(path), framework="pt") as f:
                keys = list(f.keys())
                prefix = _sat_prefix(keys, path)
                return {k[len(prefix):]: f.get_tensor(k) for k in keys if k.startswith(prefix)}
        except (SafetensorError, OSError) as err:
            raise CodecError(f"{path}: not a readable safetensors file ({err})") from err
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # files from the legacy (non-zip) torch.save format cannot be memory-mapped
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's message is a page long; the first sentence after "WeightsUnpickler error:" is the reason
        found = re.search(r"WeightsUnpickler error:[ \t]*([^\n]*)", str(err))
        reason = (found.group(1).split(". ")[0].strip() if found else "") or "not a readable torch checkpoint"
        raise CodecError(f"{path}: cannot be read safely with torch.load(weights_only=True) ({reason[:200]}); it may "
                         "hold Python objects besides tensors, or not be a checkpoint. Use the model.safetensors of "
                         "the same release instead") from err
    except (OSError, RuntimeError, EOFError) as err:
        raise CodecError(f"{path}: not a readable torch checkpoint ({err})") from err
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]  # a Lightning / stable-audio-tools training checkpoint
    if not isinstance(obj, Mapping):
        raise CodecError(f"{path}: expected a state dict, found a {type(obj).__name__}")
    prefix = _sat_prefix(list(obj), path)
    return {k[len(prefix):]: v for k, v in obj.items() if k.startswith(prefix) and isinstance(v, Tensor)}


def _sat_prefix(keys: list[str], path: Path) -> str:
    """The VAE keys' prefix: ``pretransform.model.``, or one wrapper's (e.g. ``diffusion.pretransform.model.``)."""
    prefixes = {k[: k.index(SAT_PREFIX) + len(SAT_PREFIX)] for k in keys if SAT_PREFIX in k}
    if SAT_PREFIX in prefixes:
        return SAT_PREFIX
    if len(prefixes) == 1:
        return prefixes.pop()
    if prefixes:
        raise CodecError(f"{path}: several VAE copies ({', '.join(sorted(prefixes))}); cannot tell which to use")
    tops = sorted({k.split(".", 1)[0] for k in keys})[:8]
    raise CodecError(f"{path}: no Stable Audio Open VAE weights in this checkpoint (no keys starting with "
                     f"'{SAT_PREFIX}'; top-level names: {', '.join(tops) or 'none'}). Expected the stable-audio-tools "
                     "model.safetensors / model.ckpt of Stable Audio Open, or pass a diffusers vae/ folder")


def _config_from_model_config(config_file: Path) -> dict[str, Any]:
    """AutoencoderOobleck kwargs from a stable-audio-tools ``model_config.json`` (``model.pretransform.config``)."""
    raw = _read_json(config_file)
    pretransform = (raw.get("model") or {}).get("pretransform") or {}
    ae = pretransform.get("config") or {}
    enc, dec = ae.get("encoder") or {}, ae.get("decoder") or {}
    if pretransform.get("type") != "autoencoder" or enc.get("type") != "oobleck" or dec.get("type") != "oobleck":
        raise CodecError(f"{config_file}: model.pretransform is not an autoencoder with oobleck encoder and decoder")
    e, d = enc.get("config") or {}, dec.get("config") or {}
    # stable-audio-tools' defaults where a key is absent
    strides, c_mults = e.get("strides", [2, 4, 8, 8]), e.get("c_mults", [1, 2, 4, 8])
    channels, enc_latent, dec_latent = e.get("channels", 128), e.get("latent_dim", 32), d.get("latent_dim", 32)
    problems = []
    if (ae.get("bottleneck") or {}).get("type") != "vae":
        problems.append("the bottleneck must be 'vae'")
    if not (e.get("use_snake") and d.get("use_snake")):
        problems.append("use_snake must be true (diffusers' Oobleck uses Snake activations)")
    if e.get("antialias_activation") or d.get("antialias_activation") or d.get("use_nearest_upsample"):
        problems.append("antialias_activation and use_nearest_upsample are not supported by diffusers' Oobleck")
    if d.get("final_tanh", True):
        problems.append("decoder final_tanh must be false (diffusers' Oobleck decoder has no tanh)")
    if d.get("strides", [2, 4, 8, 8]) != strides or d.get("c_mults", [1, 2, 4, 8]) != c_mults:
        problems.append("encoder and decoder must share strides and c_mults")
    if enc_latent != channels or enc_latent != 2 * dec_latent:
        problems.append(f"encoder latent_dim ({enc_latent}) must equal encoder channels ({channels}) and twice the "
                        f"decoder latent_dim ({dec_latent})")
    if d.get("out_channels", 2) != e.get("in_channels", 2):
        problems.append("encoder in_channels and decoder out_channels differ")
    if problems:
        raise CodecError(f"{config_file}: the VAE cannot be built as diffusers' AutoencoderOobleck: "
                         f"{'; '.join(problems)}")
    return {
        "encoder_hidden_size": channels,
        "downsampling_ratios": list(strides),
        "channel_multiples": list(c_mults),
        "decoder_channels": d.get("channels", 128),
        "decoder_input_channels": dec_latent,
        "audio_channels": e.get("in_channels", 2),
        "sampling_rate": raw.get("sample_rate", SAMPLE_RATE),
    }


def _infer_sat_config(state: Mapping[str, Tensor], path: Path) -> dict[str, Any]:
    """AutoencoderOobleck kwargs read off the conv shapes of a stable-audio-tools VAE state dict."""

    def conv(module: str) -> tuple[int, ...]:
        for leaf in ("weight_v", "parametrizations.weight.original1", "weight"):
            if f"{module}.{leaf}" in state:
                return tuple(state[f"{module}.{leaf}"].shape)
        raise CodecError(f"{path}: cannot infer the VAE architecture: no {SAT_PREFIX}{module}.weight_v; put the "
                         "model's model_config.json next to the checkpoint")

    indices = {int(k.split(".")[2]) for k in state if re.match(r"encoder\.layers\.\d+\.", k)}
    num_blocks = max(indices, default=0) - 2  # conv1, the blocks, snake, conv2
    if num_blocks < 1:
        raise CodecError(f"{path}: the keys under {SAT_PREFIX} are not an Oobleck encoder/decoder")
    hidden, audio_channels, _ = conv("encoder.layers.0")
    ratios, mults = [], []
    for i in range(1, num_blocks + 1):
        out_channels, _, kernel = conv(f"encoder.layers.{i}.layers.4")  # the strided conv: kernel 2 * stride
        ratios.append(kernel // 2)
        mults.append(out_channels // hidden)
    return {
        "encoder_hidden_size": hidden,
        "downsampling_ratios": ratios,
        "channel_multiples": mults,
        "decoder_channels": conv(f"decoder.layers.{num_blocks + 2}")[1],
        "decoder_input_channels": conv("decoder.layers.0")[1],
        "audio_channels": audio_channels,
        "sampling_rate": SAMPLE_RATE,
    }


def _match_weight_norm_names(state: dict[str, Tensor], target: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename weight_g / weight_v to parametrization names when the model uses torch's newer weight norm."""
    if not any(k.endswith("parametrizations.weight.original0") for k in target):
        return state
    leaves = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}
    out = {}
    for key, value in state.items():
        head, _, leaf = key.rpartition(".")
        out[f"{head}.{leaves[leaf]}" if leaf in leaves else key] = value
    return out


# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------
def _config_problems(cfg: Mapping[str, Any]) -> list[str]:
    """What in an AutoencoderOobleck config differs from the Stable Audio Open VAE's interface."""
    problems = []
    ratios = cfg.get("downsampling_ratios") or []
    checks = [
        ("decoder_input_channels (latent channels)", cfg.get("decoder_input_channels"), LATENT_CHANNELS),
        # the encoder emits the posterior mean and scale stacked: twice the latent channels
        ("encoder_hidden_size", cfg.get("encoder_hidden_size"), 2 * LATENT_CHANNELS),
        ("audio_channels", cfg.get("audio_channels"), AUDIO_CHANNELS),
        ("sampling_rate", cfg.get("sampling_rate"), SAMPLE_RATE),
        ("hop (product of downsampling_ratios)", math.prod(ratios) if ratios else None, HOP_LENGTH),
    ]
    for name, got, want in checks:
        if got != want:
            problems.append(f"{name} is {got}, expected {want}")
    return problems


def _check_batch(x: Tensor, name: str, channels: int, length: str) -> None:
    if not isinstance(x, Tensor) or x.ndim != 3 or x.shape[1] != channels:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must have shape (B, {channels}, {length}), got {shape}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"{name} must be floating point, got {x.dtype}")
    if x.shape[-1] == 0:
        raise ValueError(f"{name} is empty along time")


def _oobleck_class() -> Any:
    try:
        from diffusers import AutoencoderOobleck
    except ImportError as err:
        raise CodecError("the codec needs diffusers>=0.30 (AutoencoderOobleck): pip install diffusers") from err
    return AutoencoderOobleck


def _accelerate_available() -> bool:
    from diffusers.utils import is_accelerate_available

    return bool(is_accelerate_available())


def _default_config(oobleck: Any) -> dict[str, Any]:
    """AutoencoderOobleck's constructor defaults, which fill keys that a config.json leaves out."""
    params = inspect.signature(oobleck.__init__).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


@contextlib.contextmanager
def _quiet_library_warnings() -> Iterator[None]:
    # Deprecation chatter between our dependencies, not the user's concern: diffusers' Oobleck uses
    # torch.nn.utils.weight_norm (a warning per layer built), and diffusers passes huggingface_hub an argument
    # that it has deprecated.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*nn\.utils\.weight_norm.*deprecated", category=FutureWarning)
        warnings.filterwarnings("ignore", message=r".*local_dir_use_symlinks.*deprecated", category=UserWarning)
        yield


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CodecError(f"{path}: not a readable JSON file ({err})") from err
    if not isinstance(data, dict):
        raise CodecError(f"{path}: expected a JSON object")
    return data


def _marked_random(folder: Path) -> bool | None:
    marker = folder / RANDOM_MARKER
    if not marker.is_file():
        return None  # unknown: a folder without our marker may hold trained or random weights
    with contextlib.suppress(CodecError):
        return bool(_read_json(marker).get("random_weights"))
    return None


def _sha256_of_files(files: tuple[Path, ...]) -> str:
    """sha256 of one file; of several (shards), sha256 of their ``sha256sum``-style listing."""
    digests = []
    for path in files:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda f=f: f.read(1 << 22), b""):
                h.update(block)
        digests.append((h.hexdigest(), path.name))
    if len(digests) == 1:
        return digests[0][0]
    return hashlib.sha256("".join(f"{d}  {n}\n" for d, n in digests).encode()).hexdigest()


def _plain_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A diffusers FrozenDict config as JSON-ready plain data, without diffusers' private keys."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dict(config).items() if not k.startswith("_")}


def _summarize(bad: Mapping[str, list[str]], show: int = 4) -> str:
    parts = []
    for kind, keys in bad.items():
        more = f", ... ({len(keys) - show} more)" if len(keys) > show else ""
        parts.append(f"{len(keys)} {kind.replace('_', ' ')} ({', '.join(map(str, keys[:show]))}{more})")
    return "; ".join(parts)
