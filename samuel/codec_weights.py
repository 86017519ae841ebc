"""Finding and converting the Stable Audio Open VAE's weights for :class:`samuel.codec.OobleckCodec`.

:func:`load_vae` takes, in this order:

1. a local diffusers folder with ``config.json`` (a ``save_pretrained`` output, or the ``vae/`` folder of the
   Stable Audio Open repository);
2. a local folder holding such a ``vae/`` folder (a Stable Audio Open snapshot), or a folder holding the
   stable-audio-tools checkpoint ``model.safetensors`` / ``model.ckpt``;
3. a stable-audio-tools checkpoint file (``model.safetensors`` or ``*.ckpt``), whose VAE lives under
   ``pretransform.model.``; its keys are renamed to diffusers' (:func:`sat_to_diffusers_key`) and loaded strictly.
   The architecture comes from ``model_config.json`` beside the file when there is one (the SAO repository ships
   it), else it is read off the tensor shapes. A ``.ckpt`` is read weights-only
   (:func:`samuel.safe_load.load_weights_only`);
4. anything else is a Hugging Face id, loaded from subfolder ``vae/`` through the standard cache
   (:mod:`samuel.hub`). Offline mode (``HF_HUB_OFFLINE=1``) means no network attempt at all.

Weights that cannot be found raise :class:`~samuel.codec_spec.CodecNotFoundError` with one message saying what was
looked for, where, and how to get them; weights that are found but unusable raise
:class:`~samuel.codec_spec.CodecError` naming the file. diffusers, huggingface_hub and safetensors are imported only
when a VAE is loaded.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor

from samuel.codec_spec import (
    DEFAULT_CODEC,
    RANDOM_MARKER,
    SAMPLE_RATE,
    CodecError,
    CodecNotFoundError,
    CodecOrigin,
    config_problems,
    oobleck_class,
    quiet_library_warnings,
)
from samuel.hub import hub_cache_dir, hub_offline, looks_like_path
from samuel.safe_load import UnsafeCheckpointError, load_weights_only

if TYPE_CHECKING:
    from diffusers import AutoencoderOobleck

SAT_PREFIX = "pretransform.model."  # where a stable-audio-tools diffusion checkpoint keeps its VAE
SAT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth")
_DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
_DIFFUSERS_INDEX = ("diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.bin.index.json")


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
@dataclass(frozen=True)
class VaeLocation:
    """Where :func:`load_vae` finds a VAE, before anything is read: its format and file or folder."""

    format: str  # "diffusers" (a folder with config.json), "stable-audio-tools" (a checkpoint file) or "hub"
    path: Path | None  # the diffusers folder or the checkpoint file; None for a Hugging Face id


def locate_vae(source: str) -> VaeLocation:
    """The VAE ``source`` names (module docstring, steps 1-4), found by file names alone; raises as
    :func:`load_vae` does for a local path that holds no VAE."""
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            return VaeLocation("diffusers", path)
        if (path / "vae" / "config.json").is_file():
            return VaeLocation("diffusers", path / "vae")
        for name in ("model.safetensors", "model.ckpt"):
            if (path / name).is_file():
                return VaeLocation("stable-audio-tools", path / name)
        raise CodecNotFoundError(
            f"no Stable Audio Open VAE in the folder {path}: looked for config.json (a diffusers AutoencoderOobleck "
            "folder), vae/config.json (a Stable Audio Open snapshot) and model.safetensors / model.ckpt "
            "(a stable-audio-tools checkpoint)")
    if path.is_file():
        if path.suffix.lower() in SAT_SUFFIXES:
            return VaeLocation("stable-audio-tools", path)
        if path.name == "config.json":
            return VaeLocation("diffusers", path.parent)
        raise CodecError(f"{path}: not a codec file; expected a stable-audio-tools checkpoint "
                         f"({', '.join(SAT_SUFFIXES)}) or a diffusers folder")
    if looks_like_path(source):
        raise CodecNotFoundError(
            f"codec path not found: {source!r} (resolved to {path.absolute()}) does not exist. Pass a diffusers "
            "AutoencoderOobleck folder (with config.json), a Stable Audio Open snapshot folder (with vae/), a "
            "stable-audio-tools checkpoint (model.safetensors or *.ckpt) or a Hugging Face id such as "
            f"{DEFAULT_CODEC!r}")
    return VaeLocation("hub", None)


def load_vae(source: str) -> tuple[AutoencoderOobleck, CodecOrigin]:
    """The VAE named by ``source`` (a folder, a checkpoint file or a hub id; module docstring) and its origin."""
    where = locate_vae(source)
    if where.format == "hub":
        return _load_from_hub(source)
    assert where.path is not None
    if where.format == "diffusers":
        return _load_diffusers_dir(where.path)
    return _load_sat_checkpoint(where.path)


def vae_weight_files(source: str) -> tuple[Path, ...]:
    """The weights files :func:`load_vae` would load for ``source`` (its ``CodecOrigin.weights_files``, whose
    sha256 a checkpoint's training record keeps), found without loading anything; () when there are none (a hub id
    not in the cache, a folder with a config but no weights)."""
    where = locate_vae(source)
    if where.format == "diffusers":
        assert where.path is not None
        return _diffusers_weight_files(where.path)
    if where.format == "stable-audio-tools":
        assert where.path is not None
        return (where.path,)
    from huggingface_hub import try_to_load_from_cache

    cache = str(hub_cache_dir())
    config = try_to_load_from_cache(source, "vae/config.json", cache_dir=cache)
    if isinstance(config, str):  # as _load_from_hub: the vae/ folder first, else the stable-audio-tools file
        return _diffusers_weight_files(Path(config).parent)
    sat = try_to_load_from_cache(source, "model.safetensors", cache_dir=cache)
    return (Path(sat),) if isinstance(sat, str) else ()


def _load_diffusers_dir(folder: Path) -> tuple[AutoencoderOobleck, CodecOrigin]:
    config_file = folder / "config.json"
    raw = _read_json(config_file)
    class_name = raw.get("_class_name", "AutoencoderOobleck")
    if class_name != "AutoencoderOobleck":
        raise CodecError(f"{config_file} describes a {class_name}, not the AutoencoderOobleck VAE")
    oobleck = oobleck_class()
    # Checked before building, so that a wrong config fails fast instead of after allocating a large model.
    problems = config_problems({**_default_config(oobleck), **raw})
    if problems:
        raise CodecError(f"the Oobleck VAE in {folder} does not fit SAMUeL: {'; '.join(problems)}")
    files = _diffusers_weight_files(folder)
    if not files:
        raise CodecNotFoundError(f"{folder} has config.json but no weights: looked for "
                                 f"{', '.join(_DIFFUSERS_WEIGHTS + _DIFFUSERS_INDEX)}")
    vae = _from_pretrained(oobleck, str(folder), where=str(folder), local_files_only=True)
    return vae, CodecOrigin(resolved=str(folder.absolute()), weights_files=files, format="diffusers",
                        random_weights=marked_random(folder))


def _from_pretrained(oobleck: Any, name: str, *, where: str, **kwargs: Any) -> AutoencoderOobleck:
    try:
        with quiet_library_warnings():
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


def _load_from_hub(repo_id: str) -> tuple[AutoencoderOobleck, CodecOrigin]:
    from huggingface_hub import try_to_load_from_cache

    oobleck = oobleck_class()
    cache, offline = hub_cache_dir(), hub_offline()
    # Explicit cache_dir and local_files_only: huggingface_hub reads HF_HUB_CACHE and HF_HUB_OFFLINE once, at
    # import; these reflect the environment now, and local_files_only=True guarantees no network attempt.
    kwargs: dict[str, Any] = {"subfolder": "vae", "cache_dir": str(cache), "local_files_only": offline}
    try:
        with quiet_library_warnings():
            raw = oobleck.load_config(repo_id, **kwargs)
    except (OSError, ValueError) as err:  # HF hub errors (gated, not found, offline, no network) are OSErrors
        sat = try_to_load_from_cache(repo_id, "model.safetensors", cache_dir=str(cache))
        if isinstance(sat, str):  # only the stable-audio-tools checkpoint was downloaded; it holds the VAE too
            return _load_sat_checkpoint(Path(sat), notes={"hub_id": repo_id})
        raise CodecNotFoundError(_not_found_message(repo_id, cache, offline, err)) from err
    where = f"{repo_id} (Hugging Face cache {cache}, subfolder vae/)"
    problems = config_problems({**_default_config(oobleck), **raw})
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
    return vae, CodecOrigin(resolved=str(folder) if folder else None, weights_files=files, format="diffusers",
                        random_weights=marked_random(folder) if folder else None, notes={"hub_id": repo_id})


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


def _load_sat_checkpoint(path: Path, *, notes: dict[str, Any] | None = None) -> tuple[AutoencoderOobleck, CodecOrigin]:
    state = _read_sat_vae_tensors(path)
    config_file = path.parent / "model_config.json"
    if config_file.is_file():
        config, config_from = _config_from_model_config(config_file), str(config_file)
    else:
        config, config_from = _infer_sat_config(state, path), "inferred from the tensor shapes (sampling_rate 44100)"
    problems = config_problems(config)
    if problems:
        raise CodecError(f"the VAE in {path} (config {config_from}) does not fit SAMUeL: {'; '.join(problems)}")
    converted, unplaced = convert_sat_state_dict(state, len(config["downsampling_ratios"]))
    oobleck = oobleck_class()
    with quiet_library_warnings():
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
    return vae.eval(), CodecOrigin(resolved=str(path.absolute()), weights_files=(path,), format="stable-audio-tools",
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
            obj = load_weights_only(path, mmap=True)
        except RuntimeError:  # files from the legacy (non-zip) torch.save format cannot be memory-mapped
            obj = load_weights_only(path)
    except UnsafeCheckpointError as err:
        raise CodecError(f"{path}: cannot be read safely with torch.load(weights_only=True) ({err.reason}); it may "
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
def _accelerate_available() -> bool:
    from diffusers.utils import is_accelerate_available

    return bool(is_accelerate_available())


def _default_config(oobleck: Any) -> dict[str, Any]:
    """AutoencoderOobleck's constructor defaults, which fill keys that a config.json leaves out."""
    params = inspect.signature(oobleck.__init__).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CodecError(f"{path}: not a readable JSON file ({err})") from err
    if not isinstance(data, dict):
        raise CodecError(f"{path}: expected a JSON object")
    return data


def marked_random(folder: Path) -> bool | None:
    """Whether ``folder`` holds VAE weights marked random by :func:`samuel.codec.save_tiny_random_oobleck` (True),
    marked otherwise (False), or carries no readable marker (None: trained or random, nobody said)."""
    marker = folder / RANDOM_MARKER
    if not marker.is_file():
        return None  # unknown: a folder without our marker may hold trained or random weights
    with contextlib.suppress(CodecError):
        return bool(_read_json(marker).get("random_weights"))
    return None


def _summarize(bad: Mapping[str, list[str]], show: int = 4) -> str:
    parts = []
    for kind, keys in bad.items():
        more = f", ... ({len(keys) - show} more)" if len(keys) > show else ""
        parts.append(f"{len(keys)} {kind.replace('_', ' ')} ({', '.join(map(str, keys[:show]))}{more})")
    return "; ".join(parts)
