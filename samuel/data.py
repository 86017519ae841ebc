"""Paired latent datasets (memory-mapped), the train/validation split by song, and normalisation statistics.

No audio and no codec here: this module reads what ``samuel prepare`` (or the paper's Kaggle set) wrote.

Two on-disk formats are accepted by :func:`open_latent_dataset`:

- **POPDB** (the Kaggle set "encodedsongs" the paper trained on): a directory with ``latent_vocal.npy`` and
  ``latent_accomp.npy``, each ``(N, 64, 1024)``, paired by index. It carries no song information, so every item
  is its own group (a split cannot keep the chunks of one song together; that is a limit of the data).
- **samuel-latents/1** (``samuel prepare`` output): ``manifest.json`` listing one shard directory per song, each
  holding the same two files. Items concatenate across shards in manifest order; the group of an item is the
  position of its song in the manifest.

Arrays are opened with ``np.load(mmap_mode="r")`` and never read whole: items are copied out (and converted to
float32) only when asked for, so a dataset larger than RAM works.
"""

from __future__ import annotations

import json
import math
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from samuel.atomic import atomic_write

VOCAL_FILE = "latent_vocal.npy"
ACCOMP_FILE = "latent_accomp.npy"
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "samuel-latents/1"
POPDB_FORMAT = "popdb"
LATENT_CHANNELS = 64
# What a model's training record keeps of the VAE that made its latents (`samuel prepare`'s manifest "codec").
CODEC_RECORD_KEYS = ("source", "format", "weights_sha256", "random_weights")
# A channel whose std falls below this is (near) constant, e.g. silent or unused: dividing by its tiny std would
# blow rounding noise up into huge values. 1e-5 is far below the O(0.1-1) spread of real latent channels, so the
# floor only ever touches degenerate channels.
STD_FLOOR = 1e-5
# Each memory map holds a duplicated file descriptor; with thousands of song shards an unbounded cache would run
# into the usual 1024-descriptor limit, so only the most recently used shards stay mapped.
MAX_OPEN_SHARDS = 128


class DataError(ValueError):
    """A latent dataset that cannot be used; the message names the file and the problem."""


# --------------------------------------------------------------------------------------------------- file level


def _open_npy(path: Path, channels: int) -> np.ndarray:
    """Memory-map one latent file and check it is a 3-D float array of ``channels`` channels."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataError(f"{path}: not a readable .npy file ({err})") from err
    if not isinstance(array, np.ndarray):  # an .npz archive also loads, as a mapping of arrays
        raise DataError(f"{path}: is an .npz archive, expected a single .npy array")
    if array.ndim != 3:
        raise DataError(f"{path}: expected a 3-D array (items, channels, frames), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise DataError(f"{path}: dtype {array.dtype}; latents must be floating point (float16/32/64)")
    if array.shape[1] != channels:
        hint = (f"; it looks time-major (items, frames, channels): save it as (items, {channels}, frames), e.g. "
                "np.swapaxes(a, 1, 2)" if array.shape[2] == channels else "")
        raise DataError(f"{path}: {array.shape[1]} channels (shape {array.shape}); expected {channels}{hint}")
    if array.shape[2] == 0:
        raise DataError(f"{path}: zero frames per item (shape {array.shape})")
    return array


def open_pair(directory: str | os.PathLike[str], channels: int = LATENT_CHANNELS) -> tuple[np.ndarray, np.ndarray]:
    """Memory-map ``latent_vocal.npy`` and ``latent_accomp.npy`` in ``directory`` and check that they pair up.

    Zero items is allowed here (the caller decides); everything else that would make the pair unusable raises
    :class:`DataError`.
    """
    directory = Path(directory)
    vocal_path, accomp_path = directory / VOCAL_FILE, directory / ACCOMP_FILE
    missing = [p for p in (vocal_path, accomp_path) if not p.is_file()]
    if missing:
        raise DataError(f"{missing[0]}: no such file (a latent pair needs both {VOCAL_FILE} and {ACCOMP_FILE})")
    vocal, accomp = _open_npy(vocal_path, channels), _open_npy(accomp_path, channels)
    if vocal.shape != accomp.shape:
        raise DataError(
            f"{directory}: {VOCAL_FILE} is {vocal.shape} but {ACCOMP_FILE} is {accomp.shape}: "
            + ("pairs are matched by index, so N must agree" if vocal.shape[0] != accomp.shape[0]
               else "paired items must have the same (channels, frames)")
        )
    return vocal, accomp


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object, so numpy does not append ".npy" to the temp name
        np.save(f, array, allow_pickle=False)


def write_latent_pair(directory: str | os.PathLike[str], vocal: np.ndarray, accomp: np.ndarray) -> None:
    """Write ``latent_vocal.npy`` and ``latent_accomp.npy`` (float32, ``(N, C, T)``) into ``directory``.

    Each file is written atomically. The pair as a whole is not, so readers that must know a pair is complete
    (``samuel prepare``'s resume) also check both files' shapes against what they expect.
    """
    vocal = np.ascontiguousarray(vocal, dtype=np.float32)
    accomp = np.ascontiguousarray(accomp, dtype=np.float32)
    if vocal.ndim != 3 or vocal.shape != accomp.shape:
        raise ValueError(f"vocal and accompaniment latents must both be (N, C, T) and equal, got "
                         f"{vocal.shape} and {accomp.shape}")
    directory = Path(directory)
    atomic_write(directory / ACCOMP_FILE, lambda tmp: _save_npy(tmp, accomp))
    atomic_write(directory / VOCAL_FILE, lambda tmp: _save_npy(tmp, vocal))


# ----------------------------------------------------------------------------------------------------- dataset


class LatentPairs(Dataset):
    """Paired (vocal, accompaniment) latents, memory-mapped (never read whole into RAM).

    Build it with :func:`open_latent_dataset`. Items are ``(C, T)`` float32 tensors, copied out of the maps.

    Attributes:
        root: the directory opened.
        format: ``"popdb"`` or ``"samuel-latents/1"``.
        channels: latent channels C (64 for the Stable Audio Open VAE).
        frames: frames per item T (1024 = 47.55 s for both known formats).
        groups: ``(N,)`` int64 song id per item; for POPDB (no song information) each item is its own group.
        complete: False when the ``samuel prepare`` run that wrote the directory was interrupted.
    """

    def __init__(
        self,
        root: Path,
        format: str,
        shard_dirs: Sequence[Path],
        counts: Sequence[int],
        groups: np.ndarray,
        channels: int,
        frames: int,
        dtypes: tuple[str, str],
    ) -> None:
        self.root = root
        self.format = format
        self.channels = channels
        self.frames = frames
        self.groups = np.asarray(groups, dtype=np.int64)
        self._shard_dirs = list(shard_dirs)
        self._offsets = np.concatenate([[0], np.cumsum(np.asarray(counts, dtype=np.int64))])
        self._dtypes = dtypes
        self._maps: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.complete = True  # False for a `samuel prepare` run that was interrupted (its manifest says so)
        self.codec: dict[str, Any] | None = None  # the VAE that made the latents, where the folder records it

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers started by spawn pickle the dataset; a pickled memmap would be the whole array.
        state = self.__dict__.copy()
        state["_maps"] = OrderedDict()
        return state

    def memmaps(self, shard: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The raw memory-mapped ``(vocal, accomp)`` arrays of one shard (POPDB has a single shard)."""
        if shard in self._maps:
            self._maps.move_to_end(shard)
            return self._maps[shard]
        pair = open_pair(self._shard_dirs[shard], self.channels)
        expected = (int(self._offsets[shard + 1] - self._offsets[shard]), self.channels, self.frames)
        if pair[0].shape != expected:  # the files changed on disk since the dataset was opened
            raise DataError(f"{self._shard_dirs[shard]}: latents are now {pair[0].shape}, were {expected} at open")
        self._maps[shard] = pair
        if len(self._maps) > MAX_OPEN_SHARDS:
            self._maps.popitem(last=False)
        return pair

    def check_frames_multiple(self, multiple: int) -> None:
        """Raise :class:`DataError` naming the latent file when T, the frames per item, is not a multiple of
        ``multiple`` (SAMUeL's U-Net downsamples time by 8, so it takes multiples of 8 only)."""
        if self.frames % multiple == 0:
            return
        first = self._shard_dirs[0] / VOCAL_FILE
        where = first if len(self._shard_dirs) == 1 else f"{first} (and every other shard of {self.root})"
        cut = self.frames // multiple * multiple
        fix = f"cut the items to {cut} frames" if cut else f"items need at least {multiple} frames"
        raise DataError(f"{where}: {self.frames} frames per item; the model needs a multiple of {multiple} (its U-Net "
                        f"downsamples time by {multiple}): {fix}, or encode the audio with `samuel prepare` "
                        "(1024-frame chunks)")

    def locate(self, index: int) -> tuple[Path, int]:
        """(shard directory, index within that shard's files) of dataset item ``index``."""
        shard, local = self._split(np.asarray([index]))
        return self._shard_dirs[int(shard[0])], int(local[0])

    def _split(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(self)
        if indices.ndim != 1:
            raise IndexError(f"indices must be 1-D, got shape {indices.shape}")
        bad = (indices < -n) | (indices >= n)
        if bad.any():
            raise IndexError(f"index {int(indices[bad][0])} out of range for {n} items")
        indices = np.where(indices < 0, indices + n, indices)
        shard = np.searchsorted(self._offsets, indices, side="right") - 1
        return shard, indices - self._offsets[shard]

    def read_numpy(self, indices: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`read_batch`, as float32 NumPy arrays."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        shard, local = self._split(idx)
        vocal = np.empty((len(idx), self.channels, self.frames), dtype=np.float32)
        accomp = np.empty_like(vocal)
        for s in np.unique(shard):  # one fancy-indexed read per shard; assignment converts the dtype
            where = np.flatnonzero(shard == s)
            v, a = self.memmaps(int(s))
            vocal[where] = v[local[where]]
            accomp[where] = a[local[where]]
        return vocal, accomp

    def read_batch(self, indices: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(vocal, accomp), each ``(B, C, T)`` float32, in the order of ``indices`` (repeats allowed)."""
        vocal, accomp = self.read_numpy(indices)
        return torch.from_numpy(vocal), torch.from_numpy(accomp)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        vocal, accomp = self.read_numpy([int(index)])
        return torch.from_numpy(vocal[0]), torch.from_numpy(accomp[0])

    def describe(self) -> dict[str, Any]:
        n = len(self)
        return {
            "root": str(Path(self.root).resolve()),
            "format": self.format,
            "items": n,
            "shards": len(self._shard_dirs),
            "groups": int(np.unique(self.groups).size),
            "complete": self.complete,
            "shapes": {"vocal": [n, self.channels, self.frames], "accomp": [n, self.channels, self.frames]},
            "dtype": {"vocal": self._dtypes[0], "accomp": self._dtypes[1]},
            # A model trained on these latents only works with this VAE; generate compares it with the one it loads.
            "codec": self.codec,
        }


def _joined(names: set[str]) -> str:
    return "/".join(sorted(names))


def _open_popdb(root: Path, channels: int) -> LatentPairs:
    vocal, accomp = open_pair(root, channels)
    if vocal.shape[0] == 0:
        raise DataError(f"{root / VOCAL_FILE}: zero items (shape {vocal.shape})")
    n = vocal.shape[0]
    dataset = LatentPairs(root, POPDB_FORMAT, [root], [n], np.arange(n, dtype=np.int64), channels,
                          vocal.shape[2], (str(vocal.dtype), str(accomp.dtype)))
    dataset._maps[0] = (vocal, accomp)
    return dataset


def _open_manifest(root: Path, channels: int) -> LatentPairs:
    path = root / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not a readable JSON manifest ({err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise DataError(f"{path}: format {got!r}, expected {MANIFEST_FORMAT!r}")
    shard_dirs, counts, song_ids, frames, vocal_dtypes, accomp_dtypes = [], [], [], set(), set(), set()
    songs = manifest.get("songs")
    if not isinstance(songs, list):
        raise DataError(f"{path}: no 'songs' list")
    for song_id, song in enumerate(songs):
        if not isinstance(song, dict):
            raise DataError(f"{path}: song entry {song_id} is not an object")
        if song.get("status") != "ok" or not song.get("n_chunks"):
            continue  # skipped and failed songs have no shard
        if not isinstance(song.get("shard"), str) or not isinstance(song["n_chunks"], int):
            raise DataError(f"{path}: song entry {song_id} ({song.get('name')!r}) lacks a shard path or chunk count")
        shard = root / song["shard"]
        redo = f"; rerun `samuel prepare {manifest.get('src') or 'SRC'} -o {root}` to redo this song's shard"
        if not shard.is_dir():
            raise DataError(f"{path}: song {song.get('name')!r} points at shard {shard}, which does not exist{redo}")
        try:
            vocal, accomp = open_pair(shard, channels)
        except DataError as err:
            raise DataError(f"{err}{redo}") from err
        if vocal.shape[0] != song["n_chunks"]:
            raise DataError(f"{shard / VOCAL_FILE}: {vocal.shape[0]} items but {path} says {song['n_chunks']}{redo}")
        shard_dirs.append(shard)
        counts.append(vocal.shape[0])
        song_ids.append(song_id)
        frames.add(vocal.shape[2])
        vocal_dtypes.add(str(vocal.dtype))
        accomp_dtypes.add(str(accomp.dtype))
    if not shard_dirs:
        raise DataError(f"{path}: zero items (no song with status 'ok' and chunks)")
    if len(frames) > 1:
        raise DataError(f"{path}: shards disagree on frames per item ({sorted(frames)}); items cannot be batched")
    groups = np.repeat(np.asarray(song_ids, dtype=np.int64), counts)
    dataset = LatentPairs(root, MANIFEST_FORMAT, shard_dirs, counts, groups, channels, frames.pop(),
                          (_joined(vocal_dtypes), _joined(accomp_dtypes)))
    dataset.complete = bool(manifest.get("complete", True))
    codec = manifest.get("codec")
    if isinstance(codec, dict):
        dataset.codec = {k: codec.get(k) for k in CODEC_RECORD_KEYS}
    return dataset


def open_latent_dataset(root: str | os.PathLike[str], *, channels: int = LATENT_CHANNELS) -> LatentPairs:
    """Open a POPDB directory or a ``samuel prepare`` output directory (or its ``manifest.json``).

    Values are not scanned for NaN/inf here (that would read every byte); :func:`compute_norm_stats` checks them.
    """
    root = Path(root)
    if root.is_file() and root.name == MANIFEST_FILE:
        root = root.parent
    if not root.is_dir():
        raise DataError(f"{root}: no such dataset directory")
    if (root / MANIFEST_FILE).is_file():
        return _open_manifest(root, channels)
    if (root / VOCAL_FILE).exists() or (root / ACCOMP_FILE).exists():
        return _open_popdb(root, channels)
    raise DataError(f"{root}: neither {MANIFEST_FILE} (samuel prepare output) nor {VOCAL_FILE} + {ACCOMP_FILE} "
                    "(POPDB) found")


# ------------------------------------------------------------------------------------------------------- split


def split_train_val(
    groups: np.ndarray, val_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split item indices into (train, validation) by group, so no song has chunks on both sides.

    Validation gets ``round(val_fraction * n_groups)`` groups (at least 1 when ``val_fraction > 0`` and there are
    at least 2 groups; never all of them), drawn by ``numpy.random.default_rng(seed).permutation`` over the sorted
    unique groups: the same seed gives the same split on any machine. Both arrays are sorted int64 indices.
    """
    groups = np.asarray(groups)
    if groups.ndim != 1:
        raise ValueError(f"groups must be 1-D, got shape {groups.shape}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}")
    unique = np.unique(groups)  # sorted, so the draw does not depend on item order
    n_val = round(val_fraction * unique.size)
    if val_fraction > 0 and unique.size >= 2:
        n_val = max(n_val, 1)
    n_val = min(n_val, max(unique.size - 1, 0))  # training always keeps at least one group
    val_groups = np.random.default_rng(seed).permutation(unique)[:n_val]
    is_val = np.isin(groups, val_groups)
    return np.flatnonzero(~is_val).astype(np.int64), np.flatnonzero(is_val).astype(np.int64)


# ----------------------------------------------------------------------------------------------- normalisation


def _floats(values: Sequence[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class NormStats:
    """Per-channel mean and std of vocal and accompaniment latents; normalise as ``(x - mean) / std``."""

    vocal_mean: tuple[float, ...]
    vocal_std: tuple[float, ...]
    accomp_mean: tuple[float, ...]
    accomp_std: tuple[float, ...]
    n_items: int
    source: str

    def __post_init__(self) -> None:
        for name in ("vocal_mean", "vocal_std", "accomp_mean", "accomp_std"):
            object.__setattr__(self, name, _floats(getattr(self, name)))  # JSON lists back to tuples
        lengths = {len(self.vocal_mean), len(self.vocal_std), len(self.accomp_mean), len(self.accomp_std)}
        if len(lengths) != 1:
            raise ValueError(f"NormStats fields must all have one length per channel, got lengths {sorted(lengths)}")
        if not all(s > 0 and math.isfinite(s) for s in self.vocal_std + self.accomp_std):
            raise ValueError("NormStats std values must be positive and finite")
        if not all(math.isfinite(m) for m in self.vocal_mean + self.accomp_mean):
            raise ValueError("NormStats mean values must be finite")

    @property
    def channels(self) -> int:
        return len(self.vocal_mean)

    def to_dict(self) -> dict[str, Any]:
        return {
            "vocal_mean": list(self.vocal_mean),
            "vocal_std": list(self.vocal_std),
            "accomp_mean": list(self.accomp_mean),
            "accomp_std": list(self.accomp_std),
            "n_items": self.n_items,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NormStats:
        fields = ("vocal_mean", "vocal_std", "accomp_mean", "accomp_std", "n_items", "source")
        missing, unknown = sorted(set(fields) - set(data)), sorted(set(data) - set(fields))
        if missing or unknown:
            raise ValueError(f"NormStats: missing keys {missing}, unknown keys {unknown}")
        return cls(**{k: data[k] for k in fields})

    def _per_channel(self, values: tuple[float, ...], x: torch.Tensor) -> torch.Tensor:
        if x.ndim not in (2, 3) or x.shape[-2] != self.channels:
            raise ValueError(f"expected (B, {self.channels}, T) or ({self.channels}, T), got {tuple(x.shape)}")
        dtype = x.dtype if x.is_floating_point() else torch.float32
        return torch.tensor(values, dtype=dtype, device=x.device).unsqueeze(-1)  # (C, 1) broadcasts over T

    def normalise_vocal(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self._per_channel(self.vocal_mean, x)) / self._per_channel(self.vocal_std, x)

    def normalise_accomp(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self._per_channel(self.accomp_mean, x)) / self._per_channel(self.accomp_std, x)

    def denormalise_accomp(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._per_channel(self.accomp_std, x) + self._per_channel(self.accomp_mean, x)


class _Moments:
    """Per-channel count, mean and sum of squared deviations, merged block by block (Chan et al.).

    Each block is reduced two-pass in float64 and merged exactly, so the result does not suffer the cancellation
    of ``E[x^2] - E[x]^2`` when a channel's mean is large against its spread.
    """

    def __init__(self, channels: int) -> None:
        self.n = 0
        self.mean = np.zeros(channels, dtype=np.float64)
        self.m2 = np.zeros(channels, dtype=np.float64)

    def add(self, block: np.ndarray) -> None:
        """``block``: (B, C, T), reduced over items and time."""
        x = block.astype(np.float64, copy=False)
        n_b = x.shape[0] * x.shape[2]
        if n_b == 0:
            return
        mean_b = x.mean(axis=(0, 2))
        m2_b = np.square(x - mean_b[None, :, None]).sum(axis=(0, 2))
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + np.square(delta) * (self.n * n_b / n)
        self.n = n

    def std(self) -> np.ndarray:
        """Population std (ddof 0, like ``numpy.std``), floored at :data:`STD_FLOOR`."""
        return np.maximum(np.sqrt(self.m2 / self.n), STD_FLOOR)


def compute_norm_stats(dataset: LatentPairs, indices: Sequence[int] | np.ndarray, *,
                       items_per_read: int = 64) -> NormStats:
    """Per-channel mean and std over items and time, for vocals and accompaniment separately.

    Pass the training indices only. The authors computed their statistics over all data, so information from
    the validation split leaked into training; statistics over the training split alone avoid that.

    The data are streamed ``items_per_read`` items at a time from the memory maps (in float64), so memory stays
    bounded. Raises :class:`DataError` naming the item (and its file) on the first NaN or inf met.
    """
    idx = np.sort(np.asarray(indices, dtype=np.int64).reshape(-1))  # sorted: sequential reads from the maps
    if idx.size == 0:
        raise ValueError("compute_norm_stats needs at least one item index")
    if items_per_read < 1:
        raise ValueError(f"items_per_read must be >= 1, got {items_per_read}")
    vocal_moments, accomp_moments = _Moments(dataset.channels), _Moments(dataset.channels)
    for start in range(0, idx.size, items_per_read):
        block = idx[start : start + items_per_read]
        vocal, accomp = dataset.read_numpy(block)
        for name, values, moments in ((VOCAL_FILE, vocal, vocal_moments), (ACCOMP_FILE, accomp, accomp_moments)):
            finite = np.isfinite(values).all(axis=(1, 2))
            if not finite.all():
                item = int(block[np.argmin(finite)])
                shard, local = dataset.locate(item)
                raise DataError(f"{shard / name}: item {local} (dataset item {item}) contains NaN or inf")
            moments.add(values)
    return NormStats(
        vocal_mean=_floats(vocal_moments.mean),
        vocal_std=_floats(vocal_moments.std()),
        accomp_mean=_floats(accomp_moments.mean),
        accomp_std=_floats(accomp_moments.std()),
        n_items=int(idx.size),
        source=f"{dataset.root} ({idx.size} of {len(dataset)} items)",
    )
