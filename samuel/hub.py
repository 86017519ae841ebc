"""Finding weights: a local path, else the Hugging Face hub cache, never the network.

One place for what every loader shares: the cache folder and offline mode as the environment says *now*
(huggingface_hub reads HF_HUB_CACHE and HF_HUB_OFFLINE once, at import), the lookup "a local file or folder, else a
cached snapshot of a hub id" with its not-found message, and a cheap identity of the weights found. The codec
(:mod:`samuel.codec_weights`), the generator adapters (:mod:`baselines.weights`) and the embedders use it.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

_TRUE = ("1", "ON", "YES", "TRUE")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pth.tar")


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
    if any((env.get(name) or "").strip().upper() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.HF_HUB_OFFLINE)


def existing_path(source: str | os.PathLike[str] | None) -> Path | None:
    """``source`` as a Path when it names something on disk (a path beats a hub id of the same spelling)."""
    if source is None:
        return None
    path = Path(os.path.expanduser(str(source)))
    return path if path.exists() else None


def cached_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot folder of ``repo_id`` in the standard hub cache, or None. Never touches the network."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, cache_dir=str(hub_cache_dir()), local_files_only=True))
    except Exception:  # LocalEntryNotFoundError, a malformed id, a broken cache: all mean "not here"
        return None


@dataclass(frozen=True)
class WeightsLookup:
    """Where :func:`find_weights` found weights (``path`` None: nowhere), said in words, and every place it looked."""

    path: Path | None
    where: str
    looked: tuple[str, ...]

    def not_found_message(self, model: str, how_to_get: str) -> str:
        """One message for a miss: what was looked for, where, and how to get it."""
        return (f"{model}: weights not found. Looked for {'; '.join(self.looked)}. {how_to_get} The network is never "
                "used: download on a machine with access and copy the cache or folder here.")


_HUB_ID = re.compile(r"^[A-Za-z0-9](?:[\w.-]*[A-Za-z0-9_])?(?:/[A-Za-z0-9](?:[\w.-]*[A-Za-z0-9_])?)?$")
_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".json", ".bin", ".onnx", ".npz")


def looks_like_path(spec: str) -> bool:
    """Whether a weights spec that does not exist was meant as a local path rather than a Hugging Face id
    ("org/name"): it starts with ".", "~" or "/", is no valid hub id, names a weights file, or its first part is a
    folder here ("outputs/vae" where "outputs" exists is a mistyped path, not an organisation on the Hub)."""
    if spec.startswith((".", "~", "/")) or "\\" in spec or (os.sep != "/" and os.sep in spec):
        return True
    if not _HUB_ID.match(spec) or "--" in spec or ".." in spec:
        return True
    if spec.lower().endswith(_FILE_SUFFIXES):
        return True
    return "/" in spec and Path(spec.split("/", 1)[0]).exists()


def find_weights(source: str, marker_files: tuple[str, ...]) -> WeightsLookup:
    """Weights named by ``source``: a local file, a local folder holding one of ``marker_files`` (e.g. config.json,
    model_index.json), or a hub id ("org/name") whose cached snapshot holds one. Never touches the network."""
    local = existing_path(source)
    if local is not None:
        if local.is_dir() and any((local / m).exists() for m in marker_files):
            return WeightsLookup(local, f"local folder {local}", ())
        if local.is_file():
            return WeightsLookup(local, f"local file {local}", ())
        return WeightsLookup(None, "", (f"{local} (exists but holds none of {', '.join(marker_files)})",))
    if looks_like_path(source):  # a path that does not exist: the hub cache holds no such id
        return WeightsLookup(None, "", (f"the local path {source!r} (resolved to {Path(source).expanduser().absolute()}"
                                        "): it does not exist",))
    snapshot = cached_snapshot(source) if "/" in source else None
    if snapshot is not None and any((snapshot / m).exists() for m in marker_files):
        return WeightsLookup(snapshot, f"{source} from the Hugging Face cache", ())
    offline = " [HF_HUB_OFFLINE]" if hub_offline() else ""
    return WeightsLookup(None, "", (f"a local path {source!r} (none)",
                                    f"the Hugging Face cache {hub_cache_dir()} for {source!r}{offline}"))


def weights_digest(path: Path, limit_bytes: int = 1 << 20) -> str:
    """A cheap identity of the weights at ``path``: sha256 over each weights file's name, size and first MiB.

    Hashing multi-GB checkpoints whole would cost minutes per run; name + size + head identifies a published
    checkpoint file in practice, and results.json says that this is what the digest covers (``head-sha256:``).
    """
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES))
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.relative_to(path) if f != path else f.name}\0{f.stat().st_size}\0".encode())
        with f.open("rb") as fh:
            h.update(fh.read(limit_bytes))
    return "head-sha256:" + h.hexdigest()
