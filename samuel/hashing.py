"""File hashing: the one sha256 of a file's bytes that sample ids, sidecars, caches and weights digests use."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

_BLOCK = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks: 64 hex characters."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def files_sha256(files: Sequence[str | os.PathLike[str]]) -> str:
    """sha256 of one file; of several (shards), sha256 of their ``sha256sum``-style listing (name: the file's)."""
    digests = [(file_sha256(path), os.path.basename(path)) for path in files]
    if len(digests) == 1:
        return digests[0][0]
    return hashlib.sha256("".join(f"{d}  {n}\n" for d, n in digests).encode()).hexdigest()
