"""Audiobox Aesthetics (Tjandra et al. 2025, arXiv:2502.05139): four learned 1-10 scores per clip.

PQ production quality, PC production complexity, CE content enjoyment, CU content usefulness (the model's name;
the SAMUeL paper calls the same axis "Content Unity"). Meta's model code is used from the ``audiobox-aesthetics``
package (``audiobox_aesthetics.model``), installed with ``--no-deps`` because its ``infer`` module needs
torchaudio; that module is never imported here. What ``infer.AesPredictor.forward`` does is reproduced instead:

1. mono (channel mean) at 16 kHz. The reference resamples with ``torchaudio.functional.resample``'s defaults,
   a short Hann-windowed sinc (-1.8 dB at 7 kHz; tones above 8 kHz alias in: see :mod:`bench.resample`). soxr is
   the default here; ``resampler="torchaudio-default"`` is our re-implementation of the reference's. Both are
   linear, so mixing down before resampling, as done here, equals the reference's resample-then-mix (and its
   ``read_wav`` mixes down first anyway when it reads a file);
2. non-overlapping 10 s windows, the last one zero-padded to 10 s with a mask marking its real samples;
3. one forward pass per window (fp32: the reference's bf16 autocast never switches on, see docs), each axis mapped
   back to the 1-10 scale with the checkpoint's ``target_transform`` (``pred * std + mean``);
4. a clip's score per axis is the mean of its window scores weighted by each window's real length.

Steps 1-2 are :func:`aesthetics_windows`, a pure function; :class:`AestheticsScorer` owns weights and the model.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from baselines.base import WeightsChoice, WeightsStatus
from baselines.weights import resolve_hub_weights
from bench.resample import DEFAULT_RESAMPLER, check_resampler, describe_resampler, resample
from samuel.audio import resampled_length

AXES: tuple[str, ...] = ("PQ", "PC", "CE", "CU")
MODEL_NAME = "audiobox-aesthetics"
HUB_REPO = "facebook/audiobox-aesthetics"
SAMPLE_RATE = 16_000  # the WavLM encoder's rate
WINDOW_S = 10  # infer.py: make_inference_batch(wavs, hop_size=10, window_size=10)
WINDOW_SAMPLES = WINDOW_S * SAMPLE_RATE
# The nine model_cfg keys infer.AesPredictor passes from a package-format checkpoint to AesMultiOutput.
PTH_CONFIG_KEYS = ("proj_num_layer", "proj_ln", "proj_act_fn", "proj_dropout", "nth_layer", "use_weighted_layer_sum",
                   "precision", "normalize_embed", "output_dim")
HF_FILES = ("config.json", "model.safetensors")
PTH_NAME = "checkpoint.pt"  # the package's own file name (audiobox_aesthetics.utils.DEFAULT_CKPT_FNAME)
HOW_TO_GET = (f"Get it with `huggingface-cli download {HUB_REPO}` (into the standard cache), or pass a folder "
              f"holding {' + '.join(HF_FILES)} or the package's {PTH_NAME} "
              "(https://dl.fbaipublicfiles.com/audiobox-aesthetics/checkpoint.pt) as the weights source.")


def aesthetics_windows(audio: np.ndarray, rate: int, resampler: str = DEFAULT_RESAMPLER,
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut a clip into the model's input windows, as the reference does.

    Args:
        audio: (channels, samples) or (samples,) float audio at ``rate``.
        rate: sample rate in Hz.
        resampler: a :data:`bench.resample.RESAMPLERS` name, used when ``rate`` is not 16 kHz.

    Returns:
        ``windows`` (N, 160000) float32 mono 16 kHz, zero-padded at the end; ``masks`` (N, 160000) bool, True on
        real samples; ``seconds`` (N,) float64, each window's real length, the weights of the clip's average.
    """
    mono = _mono_16k(audio, rate, resampler)  # (S,)
    n = -(-mono.shape[0] // WINDOW_SAMPLES)
    windows = np.zeros((n, WINDOW_SAMPLES), np.float32)
    windows.reshape(-1)[: mono.shape[0]] = mono  # windows are contiguous and do not overlap (hop = window)
    masks = np.zeros((n, WINDOW_SAMPLES), bool)
    masks.reshape(-1)[: mono.shape[0]] = True
    seconds = masks.sum(axis=1) / SAMPLE_RATE
    return windows, masks, seconds


def _mono_16k(audio: np.ndarray, rate: int, resampler: str = DEFAULT_RESAMPLER) -> np.ndarray:
    """(channels, samples) or (samples,) at ``rate`` -> channel mean at 16 kHz, float32.

    Its length is round(samples * 16000 / rate) with soxr, and torchaudio's ceil rule
    (:func:`bench.resample.sinc_output_length`) with the torchaudio methods, as the reference gives.
    """
    check_resampler(resampler)
    x = np.asarray(audio)
    if x.ndim not in (1, 2):
        raise ValueError(f"audio must be (channels, samples) or (samples,), got {x.ndim} dimensions {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"audio must be float samples, got dtype {x.dtype}")
    x = x.reshape(1, -1) if x.ndim == 1 else x
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"audio is empty: shape {x.shape} (channels, samples)")
    if x.shape[0] > x.shape[1]:
        raise ValueError(f"audio has more channels than samples, shape {x.shape}: pass (channels, samples), "
                         "not (samples, channels)")
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or rate <= 0:
        raise ValueError(f"rate must be a positive integer in Hz, got {rate!r}")
    finite = np.isfinite(x)
    if not finite.all():
        frame = int(np.argmin(finite.all(axis=0)))
        kind = "NaN" if np.isnan(x[:, frame]).any() else "infinite"
        raise ValueError(f"audio holds {kind} samples, the first at {frame / rate:.3f} s (sample {frame})")
    mono = x.astype(np.float32, copy=False).mean(axis=0, dtype=np.float64).astype(np.float32)
    if rate == SAMPLE_RATE:
        return mono
    out = resample(mono, int(rate), SAMPLE_RATE, resampler)
    # soxr can be a sample off at exact halves; the sinc methods already give the reference's (torchaudio's) length
    target = resampled_length(mono.shape[0], int(rate), SAMPLE_RATE) if resampler == "soxr" else out.shape[0]
    if target == 0:
        raise ValueError(f"audio is empty at 16 kHz: {mono.shape[0]} samples at {rate} Hz round to none")
    return out[:target] if out.shape[0] >= target else np.pad(out, (0, target - out.shape[0]))


class AestheticsScorer:
    """PQ, PC, CE and CU per clip with Meta's Audiobox Aesthetics model.

    Construction is cheap; weights are resolved on first use of :attr:`status` and loaded by :meth:`load` (or the
    first :meth:`score`). Weights mode ``auto`` means ``pretrained`` here: a quality score from random weights is
    meaningless, so random init happens only when asked for (``WeightsChoice("random")``, for speed measurements),
    and its status says RANDOM.

    Args:
        weights: a local folder (``config.json`` + ``model.safetensors``, or ``checkpoint.pt``), a package-format
            checkpoint file, or a hub id looked up in the Hugging Face cache only; default ``facebook/audiobox-
            aesthetics``.
        device: torch device of the model.
        batch_size: windows (10 s each) per forward pass; memory grows with it, scores do not change.
        random_seed: seed of random init.
        resampler: how clips are brought to 16 kHz, a :data:`bench.resample.RESAMPLERS` name: ``"soxr"``
            (default) or ``"torchaudio-default"`` (what the package's ``infer.py`` CLI uses: the choice that
            reproduces its numbers). Named in :meth:`identity`.
    """

    def __init__(self, weights: WeightsChoice | None = None, *, device: str = "cpu", batch_size: int = 4,
                 random_seed: int = 0, resampler: str = DEFAULT_RESAMPLER) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.resampler = check_resampler(resampler)
        self.weights = weights or WeightsChoice()
        self.device = device
        self.batch_size = batch_size
        self.random_seed = random_seed
        self._model: Any = None  # audiobox_aesthetics.model.aes.AesMultiOutput once loaded
        self._target_transform: dict[str, dict[str, float]] | None = None

    # -- weights -------------------------------------------------------------------------------------------
    @cached_property
    def _resolved(self) -> tuple[Path | None, WeightsStatus]:
        mode = "random" if self.weights.mode == "random" else "pretrained"
        resolved = resolve_hub_weights(WeightsChoice(mode, self.weights.source), model=MODEL_NAME,
                                       default_repo=HUB_REPO, marker_files=("model.safetensors", PTH_NAME),
                                       how_to_get=HOW_TO_GET, random_seed=self.random_seed)
        return (None if resolved.folder is None else checkpoint_file(resolved.folder)), resolved.status

    @property
    def status(self) -> WeightsStatus:
        """The weights scores rest on (resolved on first use; looks, does not load). Raises
        :class:`~baselines.base.WeightsNotFoundError` when no checkpoint is found."""
        return self._resolved[1]

    def identity(self) -> dict[str, Any]:
        """What determines the scores, for cache keys and provenance: weights, checkpoint file and digest,
        preprocessing, package version. Cheap: nothing is loaded."""
        from importlib.metadata import version

        path, status = self._resolved
        return {
            "metric": MODEL_NAME,
            "axes": list(AXES),
            "weights": status.to_dict(),
            "checkpoint_file": None if path is None else str(path),
            "package": f"audiobox-aesthetics=={version('audiobox-aesthetics')}",
            "preprocessing": {"channels": "mean", "sample_rate": SAMPLE_RATE,
                              "resampler": describe_resampler(self.resampler), "window_s": WINDOW_S, "hop_s": WINDOW_S,
                              "last_window": "zero-padded, masked", "average": "weighted by real window length"},
            "precision": "fp32",
        }

    # -- model ---------------------------------------------------------------------------------------------
    def load(self) -> None:
        """Build the model and load the checkpoint (idempotent)."""
        if self._model is not None:
            return
        path, _ = self._resolved
        model, transform = (random_model(self.random_seed) if path is None
                            else load_pth(path) if path.suffix != ".safetensors" else load_hf_folder(path.parent))
        self._model = model.to(self.device).eval()
        self._target_transform = transform

    def unload(self) -> None:
        self._model = None

    def score(self, clips: Sequence[tuple[np.ndarray, int]]) -> list[dict[str, float]]:
        """Scores per clip, in order: ``{"PQ": ..., "PC": ..., "CE": ..., "CU": ...}``.

        Args:
            clips: ``(audio, rate)`` pairs; audio (channels, samples) or (samples,) float at any rate.
        """
        import torch

        self.load()
        assert self._target_transform is not None
        totals = np.zeros((len(clips), len(AXES)))  # sum over windows of score * seconds
        seconds = np.zeros(len(clips))
        for clip_ids, windows, masks, weights in _batches(clips, self.batch_size, self.resampler):
            batch = {"wav": torch.from_numpy(windows[:, None]).to(self.device),  # (B, 1, 160000)
                     "mask": torch.from_numpy(masks[:, None]).to(self.device)}
            with torch.inference_mode(), _quiet_reference():
                preds = self._model(batch)  # {axis: (B,)} in the normalised space
            for j, axis in enumerate(AXES):
                t = self._target_transform[axis]
                scores = preds[axis].double().cpu().numpy() * t["std"] + t["mean"]
                np.add.at(totals[:, j], clip_ids, scores * weights)
            np.add.at(seconds, clip_ids, weights)
        means = totals / seconds[:, None]  # (clips, axes); every clip has >= 1 window, so seconds > 0
        return [{axis: float(v) for axis, v in zip(AXES, row, strict=True)} for row in means]


def _batches(clips: Sequence[tuple[np.ndarray, int]], batch_size: int, resampler: str = DEFAULT_RESAMPLER,
             ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Windows of all clips, ``batch_size`` at a time: (clip ids, windows, masks, seconds). Clips are cut as they
    come, so memory holds one clip's windows plus one batch, however many clips there are."""
    pending: list[tuple[int, np.ndarray, np.ndarray, float]] = []
    for i, (audio, rate) in enumerate(clips):
        try:
            windows, masks, seconds = aesthetics_windows(audio, rate, resampler)
        except ValueError as err:
            raise ValueError(f"clip {i}: {err}") from None
        pending.extend((i, w, m, s) for w, m, s in zip(windows, masks, seconds, strict=True))
        while len(pending) >= batch_size:
            yield _stack(pending[:batch_size])
            del pending[:batch_size]
    if pending:
        yield _stack(pending)


def _stack(items: list[tuple[int, np.ndarray, np.ndarray, float]]) -> tuple[np.ndarray, ...]:
    ids, windows, masks, seconds = zip(*items, strict=True)
    return np.array(ids), np.stack(windows), np.stack(masks), np.array(seconds)


@contextmanager
def _quiet_reference() -> Iterator[None]:
    """Silence the package's known-harmless warnings, and keep the global numpy RNG as it was: WavLM's encoder
    draws ``np.random.random()`` per layer for layerdrop even in eval mode, which would shift other code's draws."""
    state = np.random.get_state()  # noqa: NPY002 (the legacy global RNG is the one the package draws from)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*weight_norm.*is deprecated")
            warnings.filterwarnings("ignore", message=".*mismatched key_padding_mask and attn_mask")
            yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


# -- checkpoints -------------------------------------------------------------------------------------------------
def checkpoint_file(found: Path) -> Path:
    """The file to load from a resolved path: the file itself, else a folder's ``model.safetensors`` (with its
    config.json; preferred because it needs no pickle), else its ``checkpoint.pt``."""
    if found.is_file():
        return found
    if (found / "model.safetensors").is_file():
        return found / "model.safetensors"
    return found / PTH_NAME


def load_hf_folder(folder: Path) -> tuple[Any, dict[str, dict[str, float]]]:
    """A Hugging Face format folder (``config.json`` + ``model.safetensors``, as ``AesMultiOutput.save_pretrained``
    writes it for ``from_pretrained``) -> (model, target_transform). Every weight must match."""
    import dataclasses
    import json

    from audiobox_aesthetics.model.aes import AesMultiOutput
    from safetensors.torch import load_model

    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder} holds model.safetensors but no config.json (the model's settings and "
                                "score normalisation)")
    config = json.loads(config_path.read_text())
    # The keys the hub mixin would pass on: AesMultiOutput's own settings (card metadata, if any, is not one).
    settings = {f.name for f in dataclasses.fields(AesMultiOutput) if f.init}
    with _quiet_reference():
        model = AesMultiOutput(**{k: v for k, v in config.items() if k in settings})
    load_model(model, folder / "model.safetensors", strict=True, device="cpu")
    return model, _target_transform(config.get("target_transform"), config_path)


def load_pth(path: Path) -> tuple[Any, dict[str, dict[str, float]]]:
    """A checkpoint in the package's format (``{"state_dict", "model_cfg", "target_transform"}``, weights under
    ``model.``) -> (model, target_transform), built as ``infer.AesPredictor.setup_model`` builds it."""
    import torch
    from audiobox_aesthetics.model.aes import AesMultiOutput

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain containers only
    except Exception as err:
        raise ValueError(f"{path}: not a readable audiobox-aesthetics checkpoint ({type(err).__name__}: {err})") \
            from None
    parts = ("state_dict", "model_cfg", "target_transform")
    missing = [k for k in parts if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise ValueError(f"{path}: not an audiobox-aesthetics checkpoint, it lacks {', '.join(missing)}")
    absent = [k for k in PTH_CONFIG_KEYS if k not in ckpt["model_cfg"]]
    if absent:
        raise ValueError(f"{path}: model_cfg lacks {', '.join(absent)}")
    config = {k: ckpt["model_cfg"][k] for k in PTH_CONFIG_KEYS}
    with _quiet_reference():
        model = AesMultiOutput(**config, target_transform=ckpt["target_transform"])
    model.load_state_dict({re.sub("^model.", "", k): v for k, v in ckpt["state_dict"].items()})  # strict
    return model, _target_transform(ckpt["target_transform"], path)


def random_model(seed: int) -> tuple[Any, dict[str, dict[str, float]]]:
    """The real architecture with random weights (seeded, global RNG untouched) and an identity score transform:
    for speed measurements only."""
    import torch
    from audiobox_aesthetics.model.aes import AXES_NAME, AesMultiOutput

    identity = {axis: {"mean": 0.0, "std": 1.0} for axis in AXES_NAME}
    with torch.random.fork_rng(devices=[]), _quiet_reference():
        torch.manual_seed(seed)
        model = AesMultiOutput(target_transform=identity)
    return model, identity


def _target_transform(raw: Any, where: Path) -> dict[str, dict[str, float]]:
    if not isinstance(raw, dict) or any(not isinstance(raw.get(a), dict) or {"mean", "std"} - raw[a].keys()
                                        for a in AXES):
        raise ValueError(f"{where}: target_transform must give mean and std for each of {', '.join(AXES)} (it maps "
                         f"the model's outputs back to the 1-10 scale), got {raw!r}")
    return {a: {"mean": float(raw[a]["mean"]), "std": float(raw[a]["std"])} for a in AXES}

