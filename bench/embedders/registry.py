"""The lazy registry of FAD embedders: ``"name": "module:Class"`` strings, imported only when chosen.

Names are fadtk's model names, so they double as the model keys of fadtk's statistics files.
"""

from __future__ import annotations

import difflib
import importlib
from types import MappingProxyType
from typing import Any

from baselines.base import WeightsChoice
from bench.embedders.base import Embedder

_REGISTRY: dict[str, str] = {}
EMBEDDERS = MappingProxyType(_REGISTRY)  # read-only view; add entries with register_embedder


class UnknownEmbedderError(ValueError):
    pass


def register_embedder(name: str, target: str) -> None:
    """Register ``name`` -> ``"module:Class"``. A name registered twice (to another target) is a programming error."""
    if name in _REGISTRY and _REGISTRY[name] != target:
        raise ValueError(f"embedder {name!r} is already registered as {_REGISTRY[name]!r}")
    if ":" not in target:
        raise ValueError(f"target must be 'module:Class', got {target!r}")
    _REGISTRY[name] = target


for _name, _target in {
    "vggish": "bench.embedders.vggish:VGGish",
    "clap-laion-audio": "bench.embedders.clap:ClapLaionAudio",
    "clap-laion-music": "bench.embedders.clap:ClapLaionMusic",
    "encodec-emb": "bench.embedders.encodec:EncodecEmb",
}.items():
    register_embedder(_name, _target)


def embedder_names() -> list[str]:
    """Every registered embedder, in registration order."""
    return list(_REGISTRY)


def _unknown(name: str) -> UnknownEmbedderError:
    close = difflib.get_close_matches(name, embedder_names(), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return UnknownEmbedderError(f"unknown embedder {name!r}.{hint} Known: {', '.join(embedder_names())}.")


def resolve_embedder_class(name: str) -> type[Embedder]:
    """Import and return the class registered as ``name`` (the backend's import happens only here)."""
    if name not in _REGISTRY:
        raise _unknown(name)
    module_name, _, cls_name = _REGISTRY[name].partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    if not (isinstance(cls, type) and issubclass(cls, Embedder)):
        raise TypeError(f"{_REGISTRY[name]} is not an Embedder")
    return cls


def get_embedder(name: str, weights: WeightsChoice | None = None, device: str = "cpu", **options: Any) -> Embedder:
    """Build the embedder registered as ``name`` (cheap: nothing is loaded, no file is read)."""
    return resolve_embedder_class(name)(weights, device=device, **options)
