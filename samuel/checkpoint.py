"""Save and load SAMUeL weights as safetensors with the config in the file's metadata (strict loading)."""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from samuel.atomic import atomic_write
from samuel.config import SAMUeLConfig
from samuel.model import SAMUeL

FORMAT = "samuel-weights/1"
CONFIG_KEY = "samuel_config"
NORM_KEY = "samuel_norm_stats"  # per-channel latent statistics of the training split (JSON)
TRAINING_KEY = "samuel_training"  # steps, EMA or raw, data, versions (JSON); absent: never trained by us


RUN_WEIGHTS = "model.safetensors"  # the weights `samuel train` writes into its run folder for generating


class CheckpointError(ValueError):
    """A weights file that cannot be used, with the file named in the message."""


def resolve_weights_file(path: str | os.PathLike[str]) -> Path:
    """The weights file ``path`` names: the file itself, or a `samuel train` run folder's :data:`RUN_WEIGHTS`.

    A folder without it, or train's resume state (``checkpoint.pt``) given for the weights, is a
    :class:`CheckpointError` that says what was found instead (both read as "no such weights file" before)."""
    path = Path(path)
    if path.is_dir():
        weights = path / RUN_WEIGHTS
        if weights.is_file():
            return weights
        raise CheckpointError(f"{path}: a folder without {RUN_WEIGHTS} (the weights `samuel train` writes into its "
                              "run folder); pass the weights file")
    if path.suffix == ".pt" and path.is_file():
        raise CheckpointError(f"{path}: a torch file, not SAMUeL weights: `samuel train` keeps its resume state in "
                              f"checkpoint.pt and the weights to generate with in {RUN_WEIGHTS} beside it")
    return path


def save_model(model: SAMUeL, path: str | os.PathLike[str], *, extra_metadata: dict[str, str] | None = None) -> Path:
    """Write ``model``'s weights and config to ``path`` atomically (temp file + rename: never half a file).

    The same weights and metadata always give the same bytes (:func:`canonical_safetensors`).
    """
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT, CONFIG_KEY: model.config.to_json(), **(extra_metadata or {})}
    blob = canonical_safetensors(save(tensors, metadata=metadata))
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(blob))


def canonical_safetensors(blob: bytes) -> bytes:
    """The same safetensors file with its JSON header in one canonical order: metadata keys sorted, then the tensor
    entries by data offset. Tensor data are untouched.

    safetensors serialises the metadata from a Rust HashMap, whose order is random per process, so identical weights
    got different bytes (and digests). The format allows any key order; the header stays padded with spaces to a
    multiple of 8 bytes, as safetensors writes it, so tensor data keep their alignment.
    """
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    metadata = header.pop("__metadata__", None)
    ordered: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))} if metadata else {}
    ordered.update(sorted(header.items(), key=lambda item: (item[1]["data_offsets"], item[0])))
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + blob[8 + size :]


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from err


def load_config(path: str | os.PathLike[str]) -> SAMUeLConfig:
    """The file's config, with ``num_frames`` the frames the model was trained on (:func:`trained_num_frames`)."""
    meta = read_metadata(path)
    if CONFIG_KEY not in meta:
        raise CheckpointError(f"{path}: safetensors file has no '{CONFIG_KEY}' metadata; not a SAMUeL checkpoint")
    try:
        config = SAMUeLConfig.from_json(meta[CONFIG_KEY])
    except (ValueError, TypeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: invalid SAMUeL config in metadata ({err})") from err
    frames = trained_num_frames(config, meta.get(TRAINING_KEY))
    if frames != config.num_frames:
        warnings.warn(f"{path}: its config says num_frames={config.num_frames} but its training record says the "
                      f"model was trained on {frames}-frame latents (a `samuel train` from before the config "
                      f"recorded them); using {frames}-frame chunks", stacklevel=2)
        config = dataclasses.replace(config, num_frames=frames)
    return config


def trained_num_frames(config: SAMUeLConfig, training_json: str | None) -> int:
    """The model's context in latent frames: the frames per item of the data its training record names
    (``data.shapes.vocal[2]``), else ``config.num_frames``.

    `samuel train` writes the two equal; weights saved before it did kept the preset's num_frames (64 for the tiny
    preset) whatever the data, and generate would cut chunks of that length. A record that is unreadable or names an
    impossible length (not a positive multiple of the U-Net's downsampling) leaves the config's value.
    """
    try:
        training = json.loads(training_json) if training_json is not None else None
    except json.JSONDecodeError:
        return config.num_frames
    data = training.get("data") if isinstance(training, dict) else None
    shapes = data.get("shapes") if isinstance(data, dict) else None
    vocal = shapes.get("vocal") if isinstance(shapes, dict) else None
    frames = vocal[-1] if isinstance(vocal, list) and len(vocal) == 3 else None
    if type(frames) is not int or frames <= 0 or frames % config.time_downsampling:
        return config.num_frames
    return frames


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> SAMUeL:
    """Build the model from the file's config and load its weights strictly (no missing or unexpected keys)."""
    config = load_config(path)
    model = SAMUeL(config)
    state = load_file(str(path), device=str(device))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not match the config stored with them ({err})") from err
    return model.to(device).eval()


def read_json_metadata(path: str | os.PathLike[str], key: str) -> dict | None:
    """A JSON metadata entry of a weights file, or None when the file has no such key."""
    meta = read_metadata(path)
    if key not in meta:
        return None
    try:
        value = json.loads(meta[key])
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: metadata '{key}' is not valid JSON ({err})") from err
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: metadata '{key}' must be a JSON object")
    return value
