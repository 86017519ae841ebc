"""Finding weights: a local path, else the Hugging Face cache (never the network), else random init.

Every adapter resolves through :func:`resolve_hub_weights`, so ``--weights auto|pretrained|random`` means the
same everywhere and a miss always produces one message: what was looked for, where, and how to get it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from baselines.base import WeightsChoice, WeightsNotFoundError, WeightsStatus, existing_path
from samuel.codec import hub_cache_dir, hub_offline


@dataclass(frozen=True)
class Resolved:
    """Where weights were found (``folder`` is None for random init) and the status line to report."""

    folder: Path | None
    status: WeightsStatus


def cached_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot folder of ``repo_id`` in the standard hub cache, or None. Never touches the network."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, cache_dir=str(hub_cache_dir()), local_files_only=True))
    except Exception:  # LocalEntryNotFoundError, a malformed id, a broken cache: all mean "not here"
        return None


def resolve_hub_weights(
    choice: WeightsChoice,
    *,
    model: str,
    default_repo: str,
    marker_files: tuple[str, ...],
    how_to_get: str,
    random_seed: int = 0,
) -> Resolved:
    """Resolve weights for ``model`` per ``choice``.

    Args:
        choice: the user's mode and optional source (a local folder or a hub id).
        model: the registry name, for messages.
        default_repo: the hub id looked up when ``choice.source`` is None.
        marker_files: a folder counts as holding the weights when one of these exists in it (e.g. config.json,
            model_index.json).
        how_to_get: the last sentence of the not-found message.
        random_seed: the seed of random init, named in the status.
    """
    if choice.mode == "random":
        return Resolved(None, random_status(model, random_seed, "asked for with --weights random"))
    source = choice.source or default_repo
    looked: list[str] = []
    local = existing_path(source)
    if local is not None:
        if local.is_dir() and any((local / m).exists() for m in marker_files):
            return Resolved(local, _found(model, local, f"local folder {local}"))
        if local.is_file():
            return Resolved(local, _found(model, local, f"local file {local}"))
        looked.append(f"{local} (exists but holds none of {', '.join(marker_files)})")
    else:
        looked.append(f"a local path {source!r} (none)")
        snapshot = cached_snapshot(source) if "/" in source else None
        if snapshot is not None and any((snapshot / m).exists() for m in marker_files):
            return Resolved(snapshot, _found(model, snapshot, f"{source} from the Hugging Face cache"))
        offline = " [HF_HUB_OFFLINE]" if hub_offline() else ""
        looked.append(f"the Hugging Face cache {hub_cache_dir()} for {source!r}{offline}")
    message = (f"{model}: weights not found. Looked for {'; '.join(looked)}. {how_to_get} The network is never "
               "used: download on a machine with access and copy the cache or folder here.")
    if choice.mode == "pretrained":
        raise WeightsNotFoundError(message)
    return Resolved(None, random_status(model, random_seed, f"no pretrained weights found ({'; '.join(looked)})"))


def _found(model: str, path: Path, where: str) -> WeightsStatus:
    return WeightsStatus("pretrained", str(path), f"{model}: pretrained weights, {where}", weights_digest(path))


def random_status(model: str, seed: int, why: str) -> WeightsStatus:
    return WeightsStatus("random", f"random init (seed {seed})",
                         f"{model}: RANDOM weights (real architecture, seed {seed}; {why}); efficiency only")


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pth.tar")


def weights_digest(path: Path, limit_bytes: int = 1 << 20) -> str:
    """A cheap identity of the weights at ``path``: sha256 over each weights file's name, size and first MiB.

    Hashing multi-GB checkpoints whole would cost minutes per run; name + size + head identifies a published
    checkpoint file in practice, and results.json says that this is what the digest covers.
    """
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES))
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.relative_to(path) if f != path else f.name}\0{f.stat().st_size}\0".encode())
        with f.open("rb") as fh:
            h.update(fh.read(limit_bytes))
    return "head-sha256:" + h.hexdigest()
