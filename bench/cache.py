"""One cache primitive for every expensive, resumable result: ``cache.get(key, compute)``.

A :class:`Key` is the content hash of the inputs plus the identity of what computes them (a model spec, a scorer
and its checkpoint, a timing protocol and machine). A stored entry carries its key; on read it is validated by its
:class:`Store` (readable, well-formed, made for this very key). A missing entry is computed; a torn, foreign or
stale one is recomputed, never served, and named in :attr:`Cache.events` so a run can say what it redid. A JSON
entry also carries the checksum of its values (:func:`values_checksum`), so one edited by hand since it was written
is named and recomputed too. Writes are atomic (temp file + rename), so an interrupt leaves the old entry or the new
one, never half of one.

Samples (:class:`bench.runfolder.SampleStore`: audio, then sidecar), per-clip scores, embeddings and timings all
go through it, each with its own store and folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")
ENTRY_FORMAT = "samuel-bench-cache/1"


class BadEntry(Exception):
    """A stored entry that cannot be used (torn, unreadable, foreign, made for another key): it is recomputed."""


@dataclass(frozen=True)
class Key:
    """What a cached value depends on: ``kind`` names the cache, ``content`` hashes the inputs' bytes, ``identity``
    says what computes the value (JSON-able)."""

    kind: str
    content: str
    identity: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The key as plain JSON types (what a stored entry carries and is compared with)."""
        return json.loads(json.dumps({"kind": self.kind, "content": self.content, "identity": self.identity},
                                     sort_keys=True, default=str))

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON of the key: 64 hex characters."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()


class Store(Protocol[T]):
    """How one kind of value lives on disk. ``read`` raises :class:`BadEntry` (or FileNotFoundError) when the entry
    at ``path`` is not a valid value for ``key``."""

    def read(self, path: Path, key: Key) -> T: ...

    def write(self, path: Path, key: Key, value: Any) -> T | None:
        """Store ``value`` for ``key`` at ``path`` atomically; may return the stored form (what a later read gives),
        which :meth:`Cache.get` then returns in place of ``value``."""


def values_checksum(value: Any) -> str:
    """sha256 of the canonical JSON of a stored value (keys sorted, no spaces, NaN kept as NaN): stored beside the
    value and compared on read, so that an entry edited after it was written is redone, not served."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def check_values(value: Any, stored_checksum: Any) -> None:
    """Raise :class:`BadEntry` unless ``stored_checksum`` is :func:`values_checksum` of ``value`` (as read)."""
    if stored_checksum is None:
        raise BadEntry("written without a checksum of its values (an older samuel-bench), so it cannot be checked")
    if stored_checksum != values_checksum(value):
        raise BadEntry("its values were changed after they were written (their checksum differs)")


def as_plain_json(value: Any) -> Any:
    """``value`` as a JSON round trip gives it back (tuples as lists, numpy scalars as numbers): the form a later
    read sees, and so the form its checksum is taken of."""
    return json.loads(json.dumps(value, default=_json_default, allow_nan=True))


class JsonStore:
    """A JSON value inside ``{"format", "key", "value", "value_sha256"}``; an entry whose key differs is stale, one
    whose values no longer match their checksum was edited."""

    def __init__(self, validate: Callable[[Any], None] | None = None) -> None:
        self.validate = validate  # raises ValueError/KeyError/TypeError for a malformed value

    def read(self, path: Path, key: Key) -> Any:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise BadEntry(f"unreadable ({type(err).__name__}: {err})") from None
        if not isinstance(data, dict) or data.get("format") != ENTRY_FORMAT or "value" not in data:
            raise BadEntry("not a samuel-bench cache entry")
        if data.get("key") != key.to_json():
            raise BadEntry("made for another key (stale)")
        check_values(data["value"], data.get("value_sha256"))
        if self.validate is not None:
            try:
                self.validate(data["value"])
            except (ValueError, KeyError, TypeError) as err:
                raise BadEntry(f"malformed value ({err})") from None
        return data["value"]

    def write(self, path: Path, key: Key, value: Any) -> None:
        from samuel.atomic import atomic_write

        plain = as_plain_json(value)
        text = json.dumps({"format": ENTRY_FORMAT, "key": key.to_json(), "value": plain,
                           "value_sha256": values_checksum(plain)}, indent=1, allow_nan=True) + "\n"
        atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    return str(o)


@dataclass(frozen=True)
class CacheEvent:
    path: Path
    outcome: str  # "reused" | "computed" | "redone"
    reason: str = ""  # for "redone": what was wrong with the stored entry


@dataclass
class Cache(Generic[T]):
    """``get(key, compute)`` over entries at ``path_for(key)`` kept by ``store``."""

    path_for: Callable[[Key], Path]
    store: Store[T]
    events: list[CacheEvent] = field(default_factory=list)

    def get(self, key: Key, compute: Callable[[], T]) -> T:
        """The stored value for ``key`` when valid; else ``compute()``, stored atomically, then returned."""
        path = self.path_for(key)
        try:
            value = self.store.read(path, key)
        except FileNotFoundError:
            outcome, reason = "computed", ""
        except BadEntry as err:
            outcome, reason = "redone", str(err)
        else:
            self.events.append(CacheEvent(path, "reused"))
            return value
        value = compute()
        stored = self.store.write(path, key, value)
        self.events.append(CacheEvent(path, outcome, reason))
        return value if stored is None else stored

    def peek(self, key: Key) -> T | None:
        """The stored value when valid, else None (nothing is computed or written)."""
        try:
            return self.store.read(self.path_for(key), key)
        except (FileNotFoundError, BadEntry):
            return None

    def redone(self) -> list[CacheEvent]:
        """Entries that were on disk but could not be used and were recomputed."""
        return [e for e in self.events if e.outcome == "redone"]
