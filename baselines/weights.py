"""``--weights auto|pretrained|random`` for every adapter: :func:`samuel.hub.find_weights`, then a status.

Every adapter resolves through :func:`resolve_hub_weights`, so the three modes mean the same everywhere and a miss
always produces one message (:meth:`samuel.hub.WeightsLookup.not_found_message`): what was looked for, where, and
how to get it. Where to look (a local path, else the Hugging Face cache, never the network) lives in
:mod:`samuel.hub`; this module maps the result onto the adapters' :class:`~baselines.base.WeightsStatus`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baselines.base import AdapterError, WeightsChoice, WeightsNotFoundError, WeightsStatus
from samuel.hub import find_weights, weights_digest


@dataclass(frozen=True)
class Resolved:
    """Where weights were found (``folder`` is None for random init) and the status line to report."""

    folder: Path | None
    status: WeightsStatus


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
    found = find_weights(choice.source or default_repo, marker_files)
    if found.path is not None:
        return Resolved(found.path, WeightsStatus("pretrained", str(found.path),
                                                  f"{model}: pretrained weights, {found.where}",
                                                  weights_digest(found.path)))
    if choice.mode == "pretrained":
        raise WeightsNotFoundError(found.not_found_message(model, how_to_get))
    return Resolved(None, random_status(model, random_seed,
                                        f"no pretrained weights found ({'; '.join(found.looked)})"))


def random_status(model: str, seed: int, why: str) -> WeightsStatus:
    return WeightsStatus("random", f"random init (seed {seed})",
                         f"{model}: RANDOM weights (real architecture, seed {seed}; {why}); efficiency only")


def read_json_object(path: Path, model: str) -> dict[str, Any]:
    """A config file of a weights folder as a dict; :class:`AdapterError` naming ``model`` and the file when it
    cannot be read or is not a JSON object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise AdapterError(f"{model}: {path} is not a readable JSON file ({err})") from err
    if not isinstance(data, dict):
        raise AdapterError(f"{model}: {path}: expected a JSON object")
    return data
