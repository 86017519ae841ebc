"""results.json as typed, validated objects: what :func:`bench.evaluate.evaluate` writes and the reports read.

    results = RunResults.read(run.results_path)            # or RunResults.from_json(data, source=path)
    for name, model in results.models.items():             # run order
        model.weights.kind, model.params.total, model.timing.seconds.value, model.generation.n_ok, ...
    results.to_json()                                       # the JSON again (evaluate writes it through this)

Reading validates: a field that is required and missing, or present with the wrong type, raises ValueError naming
the file and the field (``…/results.json: field 'models["samuel"].timing.status': missing``), so a damaged or
foreign file is named, never half-used. Writing is exact: an object read from JSON keeps the keys it was read with,
in their order, and the keys no type names (``extra``), so ``from_json(d).to_json() == d``. An object built in code
writes its fields in the order the writers always used.

Formats: ``samuel-bench-results/2`` (current); ``/1`` (runs before the harness core) still loads where its fields
exist: its config, provenance, manifest and model specs may be missing, and it has no model keys, sample ids,
record problems or rejected files (those read as absent or empty).

Free-form content stays a mapping: the run's config beyond the fields the reports read, package versions, a model's
options and its key, and each typed object's ``extra``. Nothing here imports the rest of the package.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

RESULTS_FORMAT = "samuel-bench-results/2"
LEGACY_RESULTS_FORMAT = "samuel-bench-results/1"
READABLE_RESULTS = (LEGACY_RESULTS_FORMAT, RESULTS_FORMAT)
MODEL_STATUSES = ("run", "not run", "failed")
TIMING_STATUSES = ("measured", "not measured")

R = TypeVar("R", bound="JsonRecord")


# -- reading one JSON object ------------------------------------------------------------------------------------


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "str": ("a string", lambda v: isinstance(v, str)),
    "int": ("an integer", _is_int),
    "number": ("a number", _is_number),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "object": ("an object", lambda v: isinstance(v, dict)),
    "list": ("a list", lambda v: isinstance(v, list)),
}


class Fields:
    """One JSON object being read: typed accessors that raise ValueError naming the file (``source``) and the
    field's path when a value is missing or of the wrong type. ``legacy`` marks an older format, whose readers
    relax what it never wrote."""

    def __init__(self, data: Any, source: str, where: str = "", *, legacy: bool = False) -> None:
        self.source, self.where, self.legacy = source, where, legacy
        if not isinstance(data, dict):
            raise ValueError(f"{source}: {self._at(where)}expected an object, got {_describe(data)}")
        self.data: dict[str, Any] = data
        self._taken: set[str] = set()

    @staticmethod
    def _at(path: str) -> str:
        return f"field {path!r}: " if path else ""

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def error(self, key: str, problem: str) -> ValueError:
        return ValueError(f"{self.source}: field {self.path(key)!r}: {problem}")

    def has(self, key: str) -> bool:
        return key in self.data

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.data)

    def value(self, key: str, kind: str, *, required: bool = True, null: bool = False, default: Any = None) -> Any:
        """The value at ``key``, checked to be of ``kind`` (see ``_CHECKS``; ``null`` allows JSON null);
        ``default`` when it is absent and not ``required``."""
        self._taken.add(key)
        if key not in self.data:
            if required:
                raise self.error(key, "missing")
            return default
        v = self.data[key]
        if v is None and null:
            return None
        name, ok = _CHECKS[kind]
        if not ok(v):
            raise self.error(key, f"expected {name}{' or null' if null else ''}, got {_describe(v)}")
        return v

    def choice(self, key: str, choices: tuple[str, ...], *, required: bool = True, default: Any = None) -> Any:
        v = self.value(key, "str", required=required, default=default)
        if key in self.data and v not in choices:
            raise self.error(key, f"expected one of {', '.join(map(repr, choices))}, got {_describe(v)}")
        return v

    def child(self, key: str) -> Fields:
        return Fields(self.data[key], self.source, self.path(key), legacy=self.legacy)

    def record(self, key: str, cls: type[R], *, required: bool = True, null: bool = False) -> R | None:
        """The object at ``key`` read as ``cls``; None when absent (not ``required``) or null (``null``)."""
        if self.value(key, "object", required=required, null=null) is None:
            return None
        return cls.parse(self.child(key))

    def records(self, key: str, cls: type[R], *, required: bool = True) -> tuple[R, ...]:
        """A list of objects, each read as ``cls``; () when absent and not required."""
        items = self.value(key, "list", required=required, default=[])
        return tuple(cls.parse(Fields(v, self.source, f"{self.path(key)}[{i}]", legacy=self.legacy))
                     for i, v in enumerate(items))

    def strings(self, key: str, *, required: bool = True) -> tuple[str, ...]:
        items = self.value(key, "list", required=required, default=[])
        for i, v in enumerate(items):
            if not isinstance(v, str):
                raise self.error(f"{key}[{i}]", f"expected a string, got {_describe(v)}")
        return tuple(items)

    def mapping(self, key: str, kind: str | None = None, *, required: bool = True, null: bool = False,
                default: Any = None) -> dict[str, Any] | None:
        """An object kept as a mapping; with ``kind`` every value is checked (nulls allowed with ``null``)."""
        found = self.value(key, "object", required=required, null=null, default=default)
        if found is not None and kind is not None:
            name, ok = _CHECKS[kind]
            for k, v in found.items():
                if not (ok(v) or (null and v is None)):
                    raise self.error(f"{key}[{k!r}]", f"expected {name}, got {_describe(v)}")
        return found

    def rest(self) -> dict[str, Any]:
        """The keys no accessor has read, verbatim: what the type keeps in ``extra``."""
        return {k: v for k, v in self.data.items() if k not in self._taken}


def _json_value(v: Any) -> Any:
    if isinstance(v, JsonRecord):
        return v.to_json()
    if isinstance(v, tuple):
        return [_json_value(x) for x in v]
    return v


@dataclass(frozen=True)
class JsonRecord:
    """Base of the typed objects: ``extra`` holds the keys no field names; ``json_keys`` the keys (in order) of the
    JSON the object was read from, empty for an object built in code."""

    extra: Mapping[str, Any] = field(default_factory=dict, kw_only=True, repr=False)
    json_keys: tuple[str, ...] = field(default=(), kw_only=True, repr=False, compare=False)

    JSON_FIELDS: ClassVar[tuple[tuple[str, str], ...]] = ()  # (JSON key, attribute), in the writer's order

    @classmethod
    def parse(cls, f: Fields) -> Self:
        raise NotImplementedError

    @classmethod
    def from_json(cls, data: Any, source: str | os.PathLike[str] = "JSON") -> Self:
        """Read ``data`` (a parsed JSON object); ValueError naming ``source`` and the field when it does not fit."""
        return cls.parse(Fields(data, str(source)))

    def _written(self, key: str, value: Any) -> bool:
        """Whether an object built in code writes ``key`` (every field by default)."""
        return True

    def to_json(self) -> dict[str, Any]:
        known = {key: _json_value(getattr(self, attr)) for key, attr in self.JSON_FIELDS}
        if self.json_keys:  # read from JSON: the same keys in the same order
            return {k: known[k] if k in known else self.extra[k] for k in self.json_keys}
        return {**{k: v for k, v in known.items() if self._written(k, v)}, **self.extra}


def _read(cls: type[R], f: Fields, **values: Any) -> R:
    return cls(**values, extra=f.rest(), json_keys=f.keys)


# -- the pieces of a model's entry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredEstimate(JsonRecord):
    """An estimate as stored (:meth:`bench.stats.Estimate.to_dict`): a median or mean with its interval (None or
    NaN bounds when there is none), n and the method that made the interval."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    method: str | None = None
    coverage: float | None = None

    JSON_FIELDS = (("value", "value"), ("ci_low", "ci_low"), ("ci_high", "ci_high"), ("n", "n"),
                   ("method", "method"), ("coverage", "coverage"))

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return _read(cls, f, value=f.value("value", "number", null=True),
                     ci_low=f.value("ci_low", "number", required=False, null=True),
                     ci_high=f.value("ci_high", "number", required=False, null=True),
                     n=f.value("n", "int", required=False, null=True),
                     method=f.value("method", "str", required=False, null=True),
                     coverage=f.value("coverage", "number", required=False, null=True))


@dataclass(frozen=True)
class Weights(JsonRecord):
    """What a model ran with (:meth:`baselines.base.WeightsStatus.to_dict`)."""

    kind: str  # pretrained | random | files
    source: str | None = None
    message: str | None = None
    sha256: str | None = None
    caveat: str | None = None  # why the weights may not be what the row claims (WeightsStatus.caveat)

    JSON_FIELDS = (("kind", "kind"), ("source", "source"), ("message", "message"), ("sha256", "sha256"),
                   ("caveat", "caveat"))

    @property
    def is_random(self) -> bool:
        return self.kind == "random"

    def _written(self, key: str, value: Any) -> bool:
        return key != "caveat" or value is not None  # results.json of a run without one stays as it was

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return _read(cls, f, kind=f.value("kind", "str"), source=f.value("source", "str", required=False, null=True),
                     message=f.value("message", "str", required=False, null=True),
                     sha256=f.value("sha256", "str", required=False, null=True),
                     caveat=f.value("caveat", "str", required=False, null=True))


@dataclass(frozen=True)
class Describe(JsonRecord):
    """A generator's static facts (:meth:`baselines.base.Generator.describe`); an adapter's own extra facts are in
    ``extra``."""

    name: str | None = None
    display_name: str | None = None
    sample_rate: int | None = None
    conditioning: str | None = None
    uses_vocal: bool | None = None
    uses_text: bool | None = None
    timing_unit: str | None = None
    device: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    JSON_FIELDS = (("name", "name"), ("display_name", "display_name"), ("sample_rate", "sample_rate"),
                   ("conditioning", "conditioning"), ("uses_vocal", "uses_vocal"), ("uses_text", "uses_text"),
                   ("timing_unit", "timing_unit"), ("device", "device"), ("options", "options"))

    @classmethod
    def parse(cls, f: Fields) -> Self:
        def text(key: str) -> str | None:
            return f.value(key, "str", required=False, null=True)

        def flag(key: str) -> bool | None:
            return f.value(key, "bool", required=False, null=True)

        return _read(cls, f, name=text("name"), display_name=text("display_name"),
                     sample_rate=f.value("sample_rate", "int", required=False, null=True),
                     conditioning=text("conditioning"), uses_vocal=flag("uses_vocal"), uses_text=flag("uses_text"),
                     timing_unit=text("timing_unit"), device=text("device"),
                     options=f.mapping("options", required=False, default={}))


@dataclass(frozen=True)
class Params(JsonRecord):
    """Exact parameter counts (:meth:`baselines.base.ParamCount.to_dict`)."""

    total: int
    by_component: Mapping[str, int] = field(default_factory=dict)

    JSON_FIELDS = (("params_total", "total"), ("params_by_component", "by_component"))

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return _read(cls, f, total=f.value("params_total", "int"),
                     by_component=f.mapping("params_by_component", "int", required=False, default={}))


@dataclass(frozen=True)
class GenerationError(JsonRecord):
    item_id: str
    message: str | None = None

    JSON_FIELDS = (("item_id", "item_id"), ("message", "message"))

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return _read(cls, f, item_id=f.value("item_id", "str"),
                     message=f.value("message", "str", required=False, null=True))


@dataclass(frozen=True)
class Generation(JsonRecord):
    """What the samples folder held for a model spec when results.json was written
    (:func:`bench.evaluate.merge_generation`)."""

    n_ok: int
    n_error: int
    errors: tuple[GenerationError, ...] = ()
    not_attempted: tuple[str, ...] = ()
    samples: tuple[str, ...] = ()
    sample_ids: Mapping[str, str] = field(default_factory=dict)  # item id -> sample id (/2)
    record_problems: tuple[str, ...] = ()  # attempt-record lines that could not be used (/2)
    redone: tuple[GenerationError, ...] = ()  # samples found damaged and made anew by the last pass (later /2)
    generation_seconds: StoredEstimate | None = None
    unmatched_files: tuple[str, ...] = ()  # an outputs folder's files that match no item, so unused (later /2)
    # item id -> the sample's peak |x| where it exceeds full scale (1.0): stored as float WAV and scored as made,
    # said in Table I's notes (a PCM export or a player clips it) (later /2)
    beyond_full_scale: Mapping[str, float] = field(default_factory=dict)

    JSON_FIELDS = (("n_ok", "n_ok"), ("n_error", "n_error"), ("errors", "errors"),
                   ("not_attempted", "not_attempted"), ("samples", "samples"), ("sample_ids", "sample_ids"),
                   ("record_problems", "record_problems"), ("redone", "redone"),
                   ("generation_seconds", "generation_seconds"), ("unmatched_files", "unmatched_files"),
                   ("beyond_full_scale", "beyond_full_scale"))

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return _read(cls, f, n_ok=f.value("n_ok", "int"), n_error=f.value("n_error", "int"),
                     errors=f.records("errors", GenerationError),
                     not_attempted=f.strings("not_attempted", required=False),
                     samples=f.strings("samples", required=False),
                     sample_ids=f.mapping("sample_ids", "str", required=not f.legacy, default={}),
                     record_problems=f.strings("record_problems", required=not f.legacy),
                     redone=f.records("redone", GenerationError, required=False),
                     generation_seconds=f.record("generation_seconds", StoredEstimate, required=False, null=True),
                     unmatched_files=f.strings("unmatched_files", required=False),
                     beyond_full_scale=f.mapping("beyond_full_scale", "number", required=False, default={}))


@dataclass(frozen=True)
class SkippedItem(JsonRecord):
    item_id: str
    message: str = ""

    JSON_FIELDS = (("item_id", "item_id"), ("message", "message"))

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return _read(cls, f, item_id=f.value("item_id", "str"), message=f.value("message", "str", required=False,
                                                                                  default=""))


@dataclass(frozen=True)
class TimingSetup(JsonRecord):
    """How a model was timed (``ModelTiming.setup``): device, threads, batch size, precision and what cut the
    timing short; weights and memory figures are in ``extra``."""

    device: str | None = None
    threads: int | None = None
    batch_size: int | None = None
    skipped_items: tuple[SkippedItem, ...] = ()
    stopped_early: str | None = None  # why fewer items were timed (--time-budget)
    dtype: str | None = None  # the precision (Generator.precision): "fp32", "bf16 (U-Net under autocast, ...)"
    fp32_distance: str | None = None  # a faster precision's SNRs against fp32 (Generator.precision_distance)
    busy: str | None = None  # other work competed for the CPU while items were timed (bench.timing.busy_note)

    JSON_FIELDS = (("device", "device"), ("threads", "threads"), ("batch_size", "batch_size"),
                   ("skipped_items", "skipped_items"), ("stopped_early", "stopped_early"), ("dtype", "dtype"),
                   ("fp32_distance", "fp32_distance"), ("busy", "busy"))

    def _written(self, key: str, value: Any) -> bool:
        return value is not None and value != []

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return _read(cls, f, device=f.value("device", "str", required=False, null=True),
                     threads=f.value("threads", "int", required=False, null=True),
                     batch_size=f.value("batch_size", "int", required=False, null=True),
                     skipped_items=f.records("skipped_items", SkippedItem, required=False),
                     stopped_early=f.value("stopped_early", "str", required=False, null=True),
                     dtype=f.value("dtype", "str", required=False, null=True),
                     fp32_distance=f.value("fp32_distance", "str", required=False, null=True),
                     busy=f.value("busy", "str", required=False, null=True))


@dataclass(frozen=True)
class TimedItem(JsonRecord):
    """One timed item (``bench.timing.ItemTiming``); units, fit and memory figures are in ``extra``."""

    item_id: str
    seconds: float
    rtf: float
    audio_s: float | None = None
    label: str | None = None

    JSON_FIELDS = (("item_id", "item_id"), ("seconds", "seconds"), ("audio_s", "audio_s"), ("rtf", "rtf"),
                   ("label", "label"))

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return _read(cls, f, item_id=f.value("item_id", "str"), seconds=f.value("seconds", "number"),
                     rtf=f.value("rtf", "number"), audio_s=f.value("audio_s", "number", required=False, null=True),
                     label=f.value("label", "str", required=False, null=True))


@dataclass(frozen=True)
class UnmeasuredRank(JsonRecord):
    file: str
    reason: str | None = None

    JSON_FIELDS = (("file", "file"), ("reason", "reason"))

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return _read(cls, f, file=f.value("file", "str"), reason=f.value("reason", "str", required=False, null=True))


@dataclass(frozen=True)
class Timing(JsonRecord):
    """A model's timing, merged over ranks (:func:`bench.evaluate.merge_timing`, from ``ModelTiming.to_dict``).
    ``unmeasured_ranks`` is None for a record that was never merged; the model, mode, warm-up, per-rank load times
    and peak memory are in ``extra``."""

    status: str  # measured | not measured
    reason: str = ""
    label: str | None = None  # "measured in full" or "measured on k of N steps/frames..."
    load_s: float | None = None
    seconds: StoredEstimate | None = None  # per item
    rtf: StoredEstimate | None = None
    items: tuple[TimedItem, ...] = ()
    setup: TimingSetup = field(default_factory=TimingSetup)
    unmeasured_ranks: tuple[UnmeasuredRank, ...] | None = None

    JSON_FIELDS = (("status", "status"), ("reason", "reason"), ("load_s", "load_s"), ("items", "items"),
                   ("seconds", "seconds"), ("rtf", "rtf"), ("setup", "setup"), ("label", "label"),
                   ("unmeasured_ranks", "unmeasured_ranks"))

    @property
    def measured(self) -> bool:
        return self.status == "measured"

    def _written(self, key: str, value: Any) -> bool:
        return key != "unmeasured_ranks" or value is not None

    @classmethod
    def parse(cls, f: Fields) -> Self:
        status = f.choice("status", TIMING_STATUSES)
        return _read(cls, f, status=status, reason=f.value("reason", "str", required=False, default=""),
                     label=f.value("label", "str", required=False, null=True),
                     load_s=f.value("load_s", "number", required=False, null=True),
                     seconds=f.record("seconds", StoredEstimate, required=status == "measured", null=True),
                     rtf=f.record("rtf", StoredEstimate, required=False, null=True),
                     items=f.records("items", TimedItem, required=False),
                     setup=f.record("setup", TimingSetup, required=False) or TimingSetup(),
                     unmeasured_ranks=(f.records("unmeasured_ranks", UnmeasuredRank)
                                       if f.has("unmeasured_ranks") else None))


# -- one model, the run ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelResult(JsonRecord):
    """One model's entry in results.json (``models[name]``; the name is the key, not a field of the JSON).

    status ``run``: the passes asked for ran (items may still have failed: ``generation.errors``); ``not run``:
    the model could not be built (``reason``); ``failed``: it could not load or run at all (``reason``).
    ``params`` and ``timing`` are None when not counted (a folder of files), not timed, or absent (earlier
    writers left them out when None); an entry with a model key always says what it ran (describe, weights).
    """

    name: str
    spec: str
    status: str = "run"
    reason: str = ""
    describe: Describe | None = None
    weights: Weights | None = None
    model_key: Mapping[str, Any] | None = None  # what makes two runs the same model (sample ids depend on it)
    params: Params | None = None
    generated: bool | None = None  # False: not generated on purpose (random weights), see generation_note
    generation_note: str = ""
    generation: Generation | None = None
    timing: Timing | None = None

    JSON_FIELDS = (("spec", "spec"), ("status", "status"), ("reason", "reason"), ("describe", "describe"),
                   ("weights", "weights"), ("model_key", "model_key"), ("generated", "generated"),
                   ("generation", "generation"), ("params", "params"), ("timing", "timing"),
                   ("generation_note", "generation_note"))

    @property
    def display_name(self) -> str:
        return (self.describe.display_name if self.describe else None) or self.name

    @property
    def weights_kind(self) -> str | None:
        return self.weights.kind if self.weights else None

    @property
    def is_random(self) -> bool:
        return self.weights is not None and self.weights.is_random

    def _written(self, key: str, value: Any) -> bool:
        if key in ("params", "timing"):  # None here says "not counted" / "not timed"
            return self.model_key is not None
        if key in ("reason", "generation_note"):
            return bool(value)
        return key in ("spec", "status") or value is not None

    @classmethod
    def parse(cls, f: Fields, name: str = "") -> Self:
        model_key = f.value("model_key", "object", required=False)
        built = model_key is not None and not f.legacy  # a /2 entry of a model that was built says what it ran
        return _read(
            cls, f, name=name, spec=f.value("spec", "str", required=not f.legacy, default=name),
            status=f.choice("status", MODEL_STATUSES),
            reason=f.value("reason", "str", required=False, default=""),
            describe=f.record("describe", Describe, required=built),
            weights=f.record("weights", Weights, required=built),
            model_key=model_key,
            params=f.record("params", Params, required=False, null=True),
            generated=f.value("generated", "bool", required=False),
            generation_note=f.value("generation_note", "str", required=False, default=""),
            generation=f.record("generation", Generation, required=False),
            timing=f.record("timing", Timing, required=False, null=True))

    @classmethod
    def from_json(cls, data: Any, source: str | os.PathLike[str] = "JSON", name: str = "") -> Self:
        f = Fields(data, str(source), f"models[{name!r}]")
        return cls.parse(f, name)


@dataclass(frozen=True)
class Rejected(JsonRecord):
    """An input file the manifest would not take, and why."""

    path: str
    problem: str

    JSON_FIELDS = (("path", "path"), ("problem", "problem"))

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return _read(cls, f, path=f.value("path", "str"), problem=f.value("problem", "str"))


@dataclass(frozen=True)
class ManifestSummary(JsonRecord):
    """The manifest a run used: where it is, where its items came from, and the files it rejected (/2)."""

    path: str | None = None
    source: str | None = None
    n: int | None = None
    base_seed: int | None = None
    rejected: tuple[Rejected, ...] = ()

    JSON_FIELDS = (("path", "path"), ("source", "source"), ("n", "n"), ("base_seed", "base_seed"),
                   ("rejected", "rejected"))

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return _read(cls, f, path=f.value("path", "str", required=False, null=True),
                     source=f.value("source", "str", required=False, null=True),
                     n=f.value("n", "int", required=False, null=True),
                     base_seed=f.value("base_seed", "int", required=False, null=True),
                     rejected=f.records("rejected", Rejected, required=not f.legacy))


@dataclass(frozen=True)
class RunConfig(JsonRecord):
    """The run's configuration (``EvalConfig.to_dict``): the fields the reports read; every other option is in
    ``extra``, verbatim."""

    timing: str | None = None
    time_items: int | None = None
    time_budget_s: float | None = None

    JSON_FIELDS = (("timing", "timing"), ("time_items", "time_items"), ("time_budget_s", "time_budget_s"))

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return _read(cls, f, timing=f.value("timing", "str", required=False, null=True),
                     time_items=f.value("time_items", "int", required=False, null=True),
                     time_budget_s=f.value("time_budget_s", "number", required=False, null=True))


@dataclass(frozen=True)
class GitState(JsonRecord):
    commit: str | None = None
    dirty: bool | None = None

    JSON_FIELDS = (("commit", "commit"), ("dirty", "dirty"))

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return _read(cls, f, commit=f.value("commit", "str", required=False, null=True),
                     dirty=f.value("dirty", "bool", required=False, null=True))


@dataclass(frozen=True)
class DeviceFacts(JsonRecord):
    """The machine (:func:`samuel.provenance.device_facts`); ``gpu`` only on CUDA."""

    requested: str | None = None
    cpu: str | None = None
    cpu_count: int | None = None
    torch_threads: int | None = None
    gpu: str | None = None

    JSON_FIELDS = (("requested", "requested"), ("cpu", "cpu"), ("cpu_count", "cpu_count"),
                   ("torch_threads", "torch_threads"), ("gpu", "gpu"))

    def _written(self, key: str, value: Any) -> bool:
        return key != "gpu" or value is not None

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return _read(cls, f, requested=f.value("requested", "str", required=False, null=True),
                     cpu=f.value("cpu", "str", required=False, null=True),
                     cpu_count=f.value("cpu_count", "int", required=False, null=True),
                     torch_threads=f.value("torch_threads", "int", required=False, null=True),
                     gpu=f.value("gpu", "str", required=False, null=True))


@dataclass(frozen=True)
class Provenance(JsonRecord):
    """Where the numbers came from (:func:`samuel.provenance.provenance`); also scores.json's."""

    command: str | None = None
    versions: Mapping[str, str | None] | None = None
    git: GitState = field(default_factory=GitState)
    device: DeviceFacts | None = None
    seed: int | None = None
    platform: str | None = None
    started: str | None = None

    JSON_FIELDS = (("command", "command"), ("versions", "versions"), ("git", "git"), ("device", "device"),
                   ("seed", "seed"), ("platform", "platform"), ("started", "started"))

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return _read(cls, f, command=f.value("command", "str", required=False, null=True),
                     versions=f.mapping("versions", "str", required=False, null=True),
                     git=f.record("git", GitState, required=False) or GitState(),
                     device=f.record("device", DeviceFacts, required=False),
                     seed=f.value("seed", "int", required=False, null=True),
                     platform=f.value("platform", "str", required=False, null=True),
                     started=f.value("started", "str", required=False, null=True))


@dataclass(frozen=True)
class RunResults(JsonRecord):
    """results.json: the run's config and provenance, its manifest, and every model in run order."""

    format: str
    config: RunConfig = field(default_factory=RunConfig)
    provenance: Provenance = field(default_factory=Provenance)
    manifest: ManifestSummary = field(default_factory=ManifestSummary)
    models: Mapping[str, ModelResult] = field(default_factory=dict)
    source: str = field(default="", compare=False)  # the file it was read from (not written)

    JSON_FIELDS = (("format", "format"), ("config", "config"), ("provenance", "provenance"),
                   ("manifest", "manifest"), ("models", "models"))

    @property
    def random_models(self) -> set[str]:
        return {name for name, m in self.models.items() if m.is_random}

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        if "models" in out:
            out["models"] = {name: m.to_json() for name, m in self.models.items()}
        return out

    @classmethod
    def parse(cls, f: Fields) -> Self:
        fmt = f.value("format", "str")
        if fmt not in READABLE_RESULTS:
            raise f.error("format", f"{fmt!r} is not a results format this version reads "
                                    f"({', '.join(READABLE_RESULTS)})")
        f.legacy = fmt == LEGACY_RESULTS_FORMAT
        required = not f.legacy
        models = f.value("models", "object")
        return _read(cls, f, format=fmt, config=f.record("config", RunConfig, required=required) or RunConfig(),
                     provenance=f.record("provenance", Provenance, required=required) or Provenance(),
                     manifest=f.record("manifest", ManifestSummary, required=required) or ManifestSummary(),
                     models={name: ModelResult.parse(Fields(entry, f.source, f"models[{name!r}]", legacy=f.legacy),
                                                     name)
                             for name, entry in models.items()},
                     source=f.source)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Self:
        """results.json at ``path``. FileNotFoundError when there is none; ValueError naming the file when it is
        unreadable, not JSON, foreign, or a field is missing or of the wrong type."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: unreadable ({type(err).__name__}: {err})") from None
        return cls.from_json(data, source=path)
