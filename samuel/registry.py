"""A lazy ``"name": "module:Class"`` registry: the class is imported only when its name is chosen.

One mechanism for every registry in the project (generators in :mod:`baselines.registry`, FAD embedders in
:mod:`bench.embedders.registry`): registering a name twice to another target is a programming error, and an
unknown name gets close-match suggestions. It lives at the bottom layer so that every layer above can use it.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


def import_target(target: str) -> Any:
    """Import ``"module:attribute"`` and return the attribute (the heavy import happens only here)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"target must be 'module:attribute', got {target!r}")
    return getattr(importlib.import_module(module_name), attr)


def close_matches_hint(name: str, names: list[str]) -> str:
    """' Did you mean ...?' for names close to ``name``, or ''."""
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


class LazyRegistry:
    """Names -> ``"module:Class"`` targets of subclasses of ``base``; unknown names raise ``unknown_error``."""

    def __init__(self, kind: str, base: type, unknown_error: type[Exception]) -> None:
        self.kind = kind
        self.base = base
        self.unknown_error = unknown_error
        self._targets: dict[str, str] = {}
        self.targets: Mapping[str, str] = MappingProxyType(self._targets)  # read-only view

    def register(self, name: str, target: str) -> None:
        if name in self._targets and self._targets[name] != target:
            raise ValueError(f"{self.kind} {name!r} is already registered as {self._targets[name]!r}")
        if ":" not in target:
            raise ValueError(f"target must be 'module:Class', got {target!r}")
        self._targets[name] = target

    def names(self) -> list[str]:
        """Every registered name, in registration order."""
        return list(self._targets)

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def hint(self, name: str) -> str:
        """' Did you mean ...?' for close names, or ''."""
        return close_matches_hint(name, self.names())

    def unknown(self, name: str) -> Exception:
        return self.unknown_error(f"unknown {self.kind} {name!r}.{self.hint(name)} Known: {', '.join(self.names())}.")

    def resolve(self, name: str) -> type:
        """Import and return the class registered as ``name`` (the heavy import happens only here)."""
        if name not in self._targets:
            raise self.unknown(name)
        cls = import_target(self._targets[name])
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise TypeError(f"{self._targets[name]} is not a {self.base.__name__}")
        return cls
