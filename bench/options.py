"""Options declared once: a dataclass field carries its flag(s), help, parser and validation, and the command
line is built from the fields (``add_options``) and read back into the dataclass (``from_namespace``).

A bad value is a usage error (argparse prints the flag and the reason, exit 2), never a traceback and never a
silent change (``--duration 0`` is refused, not read as "the default").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

Kind = Literal["value", "flag", "append"]


class UsageError(ValueError):
    """A value the user gave that cannot be used; the message names the flag."""


@dataclasses.dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    help: str
    kind: Kind = "value"
    parse: Callable[[str], Any] | None = None  # one raw string -> value; ValueError says why it is refused
    combine: Callable[[list[Any]], Any] | None = None  # for "append": the parsed values -> the field's value
    metavar: str | None = None
    choices: Sequence[str] | None = None


def option(default: Any = None, *, flags: Sequence[str], help: str, kind: Kind = "value",
           parse: Callable[[str], Any] | None = None, combine: Callable[[list[Any]], Any] | None = None,
           metavar: str | None = None, choices: Sequence[str] | None = None, factory: Callable[[], Any] | None = None
           ) -> Any:
    """A dataclass field that is also a command-line option."""
    meta = {"option": Option(tuple(flags), help, kind, parse, combine, metavar, tuple(choices) if choices else None)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def options_of(cls: type) -> list[tuple[dataclasses.Field[Any], Option]]:
    return [(f, f.metadata["option"]) for f in dataclasses.fields(cls) if "option" in f.metadata]


def add_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """One argparse argument per option field of ``cls``."""
    for f, opt in options_of(cls):
        kwargs: dict[str, Any] = {"dest": f.name, "help": opt.help}
        if opt.kind == "flag":
            kwargs.update(action="store_true", default=False)
        else:
            if opt.metavar or not opt.choices:  # the flag's name, not the field's (--duration, not DURATION_S)
                kwargs["metavar"] = opt.metavar or opt.flags[0].lstrip("-").upper().replace("-", "_")
            if opt.choices:
                kwargs["choices"] = opt.choices
            if opt.parse is not None:
                kwargs["type"] = _argparse_type(opt.parse)
            if opt.kind == "append":
                kwargs.update(action="append", default=[])
            else:
                kwargs["default"] = argparse.SUPPRESS  # unset -> the dataclass default
        parser.add_argument(*opt.flags, **kwargs)


def from_namespace(cls: type, ns: argparse.Namespace, **extra: Any) -> Any:
    """The dataclass from parsed arguments: unset options keep their defaults, appended values are combined."""
    values: dict[str, Any] = dict(extra)
    for f, opt in options_of(cls):
        if not hasattr(ns, f.name):
            continue
        value = getattr(ns, f.name)
        if opt.kind == "append" and opt.combine is not None:
            try:
                value = opt.combine(value)
            except ValueError as err:
                raise UsageError(f"{opt.flags[0]}: {err}") from None
        values[f.name] = value
    return cls(**values)


def _argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def convert(raw: str) -> Any:
        try:
            return parse(raw)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    convert.__name__ = getattr(parse, "__name__", "value")  # argparse names the type in its messages
    return convert


# -- parsers: raw string -> value, ValueError with the reason ----------------------------------------------------


def positive_int(raw: str) -> int:
    value = _int(raw)
    if value < 1:
        raise ValueError(f"must be a whole number >= 1, got {raw!r}")
    return value


def nonnegative_int(raw: str) -> int:
    value = _int(raw)
    if value < 0:
        raise ValueError(f"must be a whole number >= 0, got {raw!r}")
    return value


def probe_items(raw: str) -> int:
    """--probe N: 0 (off) or at least 2, since each probed item takes another of the N items' vocal."""
    value = nonnegative_int(raw)
    if value == 1:
        raise ValueError("must be 0 (off) or >= 2, got '1': each probed item takes the vocal of another of the N "
                         "items, so one item has none to swap in")
    return value


def any_int(raw: str) -> int:
    return _int(raw)


def positive_seconds(raw: str) -> float:
    value = _float(raw)
    if not value > 0:
        raise ValueError(f"must be a number of seconds > 0, got {raw!r}")
    return value


def nonnegative_seconds(raw: str) -> float:
    value = _float(raw)
    if value < 0:
        raise ValueError(f"must be a number of seconds >= 0, got {raw!r}")
    return value


def budget_seconds(raw: str) -> float:
    """A timing budget: seconds > 0, or -1 for the automatic default."""
    value = _float(raw)
    if value != -1 and not value > 0:
        raise ValueError(f"must be seconds > 0, or -1 for the default, got {raw!r}")
    return value


def csv(raw: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in raw.split(",") if p.strip())
    if not parts:
        raise ValueError("needs at least one name")
    return parts


def step_counts(raw: str) -> tuple[int, ...]:
    """"10,25,50" -> (10, 25, 50): sampler step counts, each >= 1, at least one."""
    values = tuple(positive_int(part) for part in csv(raw))
    return tuple(sorted(set(values)))


def precisions(raw: str) -> tuple[str, ...]:
    values = csv(raw)
    unknown = [v for v in values if v not in ("fp32", "bf16")]
    if unknown:
        raise ValueError(f"precisions are fp32 and bf16, got {', '.join(unknown)}")
    return values


def device(raw: str) -> str:
    from samuel.dist import usable_device

    return usable_device(raw)


def path(raw: str) -> Path:
    if not raw:
        raise ValueError("needs a path")
    return Path(raw)


def name_value(raw: str) -> tuple[str, str]:
    name, sep, rest = raw.partition("=")
    if not sep or not name or not rest:
        raise ValueError(f"takes NAME=VALUE, got {raw!r}")
    return name, rest


def pairs(values: list[tuple[str, str]]) -> dict[str, str]:
    return dict(values)


def model_options(values: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """``samuel.steps=10`` -> {"samuel": {"steps": 10}} (values parsed as JSON when they parse)."""
    out: dict[str, dict[str, Any]] = {}
    for key, raw in values:
        model, dot, opt = key.partition(".")
        if not dot or not model or not opt:
            raise ValueError(f"takes MODEL.KEY=VALUE, got {key}={raw!r}")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(model, {})[opt] = value
    return out


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"must be a whole number, got {raw!r}") from None


def _float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {raw!r}")
    return value
