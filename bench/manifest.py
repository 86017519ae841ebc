"""The manifest: N matched items (vocal, prompt, seed, duration, reference) that every model receives.

A sample's id is a hash of the item (its fields and its vocal file's content), the model spec (name, weights
kind and digest, options) and the seed, so outputs of different runs line up, a changed input never reuses an
old output, and a resumed run finds exactly what is already done.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from baselines.base import GenerationRequest
from baselines.files import FILE_EXTENSIONS
from bench.synthetic import DEFAULT_DURATION_S, SET_VERSION, write_synthetic_set
from samuel.generate import file_sha256

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "samuel-bench-manifest/1"
DEFAULT_PROMPT = "instrumental pop accompaniment with bass, pad and drums"


class ManifestError(ValueError):
    pass


@dataclass(frozen=True)
class Item:
    item_id: str
    vocal: str  # path to the vocal stem
    prompt: str
    seed: int
    duration_s: float
    reference: str | None = None  # path to the true accompaniment, when known
    vocal_sha256: str = ""
    meta: str | None = None  # path to a JSON of known facts (key, tempo, beats) for synthetic items

    def request(self) -> GenerationRequest:
        return GenerationRequest(self.item_id, self.seed, self.duration_s, self.prompt, Path(self.vocal),
                                 Path(self.reference) if self.reference else None)

    def key(self) -> dict[str, Any]:
        """What identifies the item's content (paths are not part of it: a moved folder keeps its ids)."""
        return {"item_id": self.item_id, "prompt": self.prompt, "seed": self.seed,
                "duration_s": round(self.duration_s, 6), "vocal_sha256": self.vocal_sha256}


@dataclass(frozen=True)
class Manifest:
    items: tuple[Item, ...]
    source: str  # "synthetic (set v1)" or the vocals folder
    base_seed: int

    def to_dict(self) -> dict[str, Any]:
        return {"format": MANIFEST_FORMAT, "source": self.source, "base_seed": self.base_seed,
                "items": [asdict(i) for i in self.items]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        if data.get("format") != MANIFEST_FORMAT:
            raise ManifestError(f"not a samuel-bench manifest (format {data.get('format')!r})")
        return cls(tuple(Item(**i) for i in data["items"]), data["source"], int(data["base_seed"]))

    def write(self, path: Path) -> Path:
        from samuel.atomic import atomic_write

        return atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(self.to_dict(), indent=1) + "\n"))

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
            raise ManifestError(f"{path}: unreadable manifest ({err})") from err

    def shard(self, rank: int, world: int) -> tuple[Item, ...]:
        """Rank ``rank``'s disjoint slice (items rank, rank + world, ...); together they cover every item once."""
        return self.items[rank::world]


def item_seed(base_seed: int, index: int) -> int:
    """A 31-bit seed per item, the same for every model (matched generation)."""
    digest = hashlib.sha256(f"samuel-bench\0{base_seed}\0{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") >> 1


def sample_id(item: Item, model_key: dict[str, Any]) -> str:
    """Hash of the item's content, the model spec and the seed: 16 hex characters."""
    blob = json.dumps({"item": item.key(), "model": model_key}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def synthetic_manifest(folder: Path, n: int, *, duration_s: float = DEFAULT_DURATION_S, base_seed: int = 0
                       ) -> Manifest:
    """Write (or reuse) the embedded synthetic set under ``folder`` and describe it."""
    metas = write_synthetic_set(folder, n, duration_s)
    items = []
    for i, meta in enumerate(metas):
        vocal = folder / "vocals" / f"{meta.item_id}.flac"
        items.append(Item(meta.item_id, str(vocal), meta.prompt, item_seed(base_seed, i), duration_s,
                          str(folder / "accompaniment" / f"{meta.item_id}.flac"), file_sha256(vocal),
                          str(folder / "meta" / f"{meta.item_id}.json")))
    return Manifest(tuple(items), f"synthetic (set v{SET_VERSION}, {n} items)", base_seed)


def folder_manifest(vocals: Path, n: int | None, *, references: Path | None = None, prompt: str = DEFAULT_PROMPT,
                    duration_s: float = DEFAULT_DURATION_S, base_seed: int = 0) -> Manifest:
    """Items from a folder of vocal files (sorted by name, the first ``n``); references matched by stem."""
    if not vocals.is_dir():
        raise ManifestError(f"{vocals}: no such folder of vocal files")
    files = sorted(p for p in vocals.rglob("*") if p.is_file() and p.suffix.lower() in FILE_EXTENSIONS)
    if not files:
        raise ManifestError(f"{vocals}: no audio files ({' '.join(FILE_EXTENSIONS)})")
    refs: dict[str, Path] = {}
    if references is not None:
        if not references.is_dir():
            raise ManifestError(f"{references}: no such folder of reference accompaniments")
        refs = {p.stem.lower(): p for p in sorted(references.rglob("*"))
                if p.is_file() and p.suffix.lower() in FILE_EXTENSIONS}
    items: list[Item] = []
    seen: set[str] = set()
    for i, path in enumerate(files[:n] if n else files):
        item_id = safe_name(path.relative_to(vocals).with_suffix("").as_posix().replace("/", "__"))
        if item_id in seen:
            raise ManifestError(f"{path}: two vocal files map to item id {item_id!r}; rename one")
        seen.add(item_id)
        ref = refs.get(path.stem.lower())
        items.append(Item(item_id, str(path), prompt, item_seed(base_seed, i), duration_s,
                          str(ref) if ref else None, file_sha256(path)))
    return Manifest(tuple(items), str(vocals), base_seed)


def safe_name(name: str) -> str:
    """A file-name-safe form of an item id or model name: odd characters become '_'."""
    out = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return out.strip("._") or "item"


def requests_for(items: Sequence[Item]) -> list[GenerationRequest]:
    return [i.request() for i in items]
