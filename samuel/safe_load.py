"""The one way this project unpickles a torch checkpoint: weights-only, whatever the environment says.

``torch.load`` runs arbitrary code from a pickle unless its weights-only unpickler is in force (tensors, plain
containers and an allowlist of types only). Two things can turn that off without the caller noticing:

- ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` makes every ``torch.load`` that does not pass ``weights_only`` unsafe;
- torch before 2.6 defaults to ``weights_only=False``.

An explicit ``weights_only=True`` is honoured whatever the environment says from torch 2.6 on (its
``torch/serialization.py``: the variable "can only override if callsite did not explicitly set weights_only"),
so :func:`load_weights_only` always passes it and refuses to run on an older torch. Third-party code that calls
``torch.load`` itself (jukebox-infer) must be handed the result of this function instead of a path.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Sequence
from typing import Any

import torch

MIN_TORCH = (2, 6)  # the first torch whose explicit weights_only=True the environment cannot override


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint that holds Python objects besides tensors and plain containers: refused, nothing executed.

    ``reason`` is torch's one-line reason (e.g. ``Unsupported global: GLOBAL os.system ...``).
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _torch_version(version: str) -> tuple[int, int]:
    found = re.match(r"(\d+)\.(\d+)", version)
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def check_torch_version(version: str | None = None) -> None:
    """Raise if the installed torch (or ``version``) could let the environment turn weights-only loading off."""
    version = version or torch.__version__
    if _torch_version(version) < MIN_TORCH:
        raise RuntimeError(f"torch {version} is older than {'.'.join(map(str, MIN_TORCH))}: its torch.load can be "
                           "made to unpickle arbitrary objects; refusing to read checkpoints. Install torch>=2.6 "
                           "(pyproject.toml)")


def load_weights_only(path: str | os.PathLike[str], *, map_location: Any = "cpu", mmap: bool = False,
                      safe_globals: Sequence[Any] = ()) -> Any:
    """``torch.load(path, weights_only=True)`` that no environment variable can make unsafe.

    Args:
        path: a file written by ``torch.save``.
        map_location: as in ``torch.load``.
        mmap: memory-map the file (zip-format checkpoints only; torch raises RuntimeError for legacy ones).
        safe_globals: extra types the weights-only unpickler may build (``torch.serialization.safe_globals``),
            e.g. NumPy arrays; never a callable that can run code.

    Raises:
        UnsafeCheckpointError: the file holds objects outside the allowlist; its message names the file and why.
        OSError, RuntimeError, EOFError: as ``torch.load`` for unreadable or damaged files.
    """
    check_torch_version()
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            # weights_only=True explicitly, never left to the default: see the module docstring
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        # torch's message is a page long; the first sentence after "WeightsUnpickler error:" is the reason
        found = re.search(r"WeightsUnpickler error:[ \t]*([^\n]*)", str(err))
        reason = ((found.group(1).split(". ")[0].strip() if found else "") or "not a readable torch checkpoint")[:200]
        raise UnsafeCheckpointError(
            f"{os.fspath(path)}: refused to unpickle with torch.load(weights_only=True) ({reason}); the file holds "
            "Python objects besides tensors and plain containers, which could run code when loaded, or it is not "
            "a checkpoint", reason) from None
