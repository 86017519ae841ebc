"""The lazy registry of FAD embedders: ``"name": "module:Class"`` strings, imported only when chosen.

Names are fadtk's model names, so they double as the model keys of fadtk's statistics files.
"""

from __future__ import annotations

from typing import Any

from baselines.base import WeightsChoice
from bench.embedders.base import Embedder
from samuel.registry import LazyRegistry


class UnknownEmbedderError(ValueError):
    pass


_EMBEDDERS = LazyRegistry("embedder", Embedder, UnknownEmbedderError)
EMBEDDERS = _EMBEDDERS.targets  # read-only view; add entries with register_embedder


def register_embedder(name: str, target: str) -> None:
    """Register ``name`` -> ``"module:Class"``. A name registered twice (to another target) is a programming error."""
    _EMBEDDERS.register(name, target)


for _name, _target in {
    "vggish": "bench.embedders.vggish:VGGish",
    "clap-laion-audio": "bench.embedders.clap:ClapLaionAudio",
    "clap-laion-music": "bench.embedders.clap:ClapLaionMusic",
    "encodec-emb": "bench.embedders.encodec:EncodecEmb",
}.items():
    register_embedder(_name, _target)


def embedder_names() -> list[str]:
    """Every registered embedder, in registration order."""
    return _EMBEDDERS.names()


def resolve_embedder_class(name: str) -> type[Embedder]:
    """Import and return the class registered as ``name`` (the backend's import happens only here)."""
    return _EMBEDDERS.resolve(name)


def get_embedder(name: str, weights: WeightsChoice | None = None, device: str = "cpu", **options: Any) -> Embedder:
    """Build the embedder registered as ``name`` (cheap: nothing is loaded, no file is read)."""
    return resolve_embedder_class(name)(weights, device=device, **options)
