"""The lazy registry of generators: ``"name": "module:Class"`` strings, imported only when chosen.

``--models all`` means every name registered here. ``outputs:NAME=DIR`` is not registered: it wraps a folder of
any system's pre-generated files under the row name NAME (see :mod:`baselines.files`).
"""

from __future__ import annotations

from typing import Any

from baselines.base import Generator, WeightsChoice
from samuel.registry import LazyRegistry


class UnknownModelError(ValueError):
    pass


_GENERATORS = LazyRegistry("model", Generator, UnknownModelError)


def register(name: str, target: str) -> None:
    """Register ``name`` -> ``"module:Class"``. A name registered twice is a programming error."""
    _GENERATORS.register(name, target)


for _name, _target in {
    "samuel": "baselines.samuel_adapter:SAMUeLGenerator",
    "musicgen-small": "baselines.musicgen:MusicGenSmall",
    "musicgen-medium": "baselines.musicgen:MusicGenMedium",
    "musicgen-large": "baselines.musicgen:MusicGenLarge",
    "musicgen-melody": "baselines.musicgen:MusicGenMelody",
    "stable-audio-open": "baselines.stable_audio:StableAudioOpen",
    "ace-step": "baselines.ace_step:AceStep",
    "jukebox": "baselines.jukebox:Jukebox",
    "reference": "baselines.files:ReferenceAccompaniments",
}.items():
    register(_name, _target)

OUTPUTS_PREFIX = "outputs:"
PLUGINS_ENV = "SAMUEL_EVAL_GENERATORS"


def register_from_env(value: str | None = None) -> None:
    """Register generators named in ``SAMUEL_EVAL_GENERATORS="name=module:Class,name2=module2:Class2"``, so a user
    (or a test) can add an adapter without editing this file; it takes part in ``--models all`` too."""
    import os

    for entry in (value if value is not None else os.environ.get(PLUGINS_ENV, "")).split(","):
        if entry.strip():
            name, sep, target = entry.strip().partition("=")
            if not sep:
                raise ValueError(f"{PLUGINS_ENV}: write name=module:Class, got {entry!r}")
            register(name.strip(), target.strip())


register_from_env()


def names() -> list[str]:
    """Every registered generator, in registration order (what ``--models all`` runs)."""
    return _GENERATORS.names()


def _suggest(name: str) -> str:
    return (f"unknown model {name!r}.{_GENERATORS.hint(name)} Known: {', '.join(names())}, or outputs:NAME=DIR "
            "for a folder of pre-generated files.")


def expand(spec: str) -> list[str]:
    """A comma-separated ``--models`` value -> model specs; ``all`` -> every registered name. Order is kept and
    duplicates are dropped. Unknown names raise with suggestions."""
    out: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        for item in names() if part == "all" else [part]:
            if not item.startswith(OUTPUTS_PREFIX) and item not in _GENERATORS:
                raise UnknownModelError(_suggest(item))
            if item.startswith(OUTPUTS_PREFIX):
                parse_outputs_spec(item)  # fail early on a malformed spec
            if item not in out:
                out.append(item)
    if not out:
        raise UnknownModelError("no model given; use --models all or a comma-separated list")
    return out


def parse_outputs_spec(spec: str) -> tuple[str, str]:
    """``outputs:NAME=DIR`` -> (NAME, DIR)."""
    body = spec[len(OUTPUTS_PREFIX):]
    name, sep, folder = body.partition("=")
    if not sep or not name.strip() or not folder.strip():
        raise UnknownModelError(f"{spec!r}: write outputs:NAME=DIR (a row name and a folder of audio files)")
    if name.strip() in _GENERATORS:
        raise UnknownModelError(f"{spec!r}: {name.strip()!r} is a registered model; pick another row name")
    return name.strip(), folder.strip()


def resolve_class(name: str) -> type[Generator]:
    """Import and return the class registered as ``name`` (the heavy import happens only here)."""
    if name not in _GENERATORS:
        raise UnknownModelError(_suggest(name))
    return _GENERATORS.resolve(name)


def create(spec: str, weights: WeightsChoice | None = None, *, device: str = "cpu", **options: Any) -> Generator:
    """Build the adapter for a model spec (cheap: nothing is loaded)."""
    if spec.startswith(OUTPUTS_PREFIX):
        from baselines.files import PregeneratedOutputs

        name, folder = parse_outputs_spec(spec)
        return PregeneratedOutputs(name, folder)
    return resolve_class(spec)(weights, device=device, **options)
