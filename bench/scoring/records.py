"""What the score pass reads and writes: samples in, per-clip records (the cache), scores.json out.

A **per-clip record** (``RunFolder.clip_record_path``) holds every computed group of one clip and, on the reference
row, the shuffled-pairs anchor::

    {"format": "samuel-bench-clip-record/2", "model", "item_id", "sample_id", "sample_sha256",
     "groups":  {"adherence": {"key": <bench.cache.Key JSON>, "values": {"chroma_agreement": 0.41, ...},
                               "values_sha256": <bench.cache.values_checksum of values>}, ...},
     "anchors": {"adherence": {"key": ..., "values": {...}, "values_sha256": ...}}}

:class:`RecordStore` is the :class:`bench.cache.Store` behind ``Cache.get(key, compute)`` for these entries: it
validates the whole record on every read, serves a group only when its stored key equals the asked key (sample
content, scorer identity, metric versions, the item's window) and its values still match their checksum (a value
edited by hand is redone, not averaged in), and keeps the other groups when it writes one. A torn, foreign or
older-format record raises :class:`~bench.cache.BadEntry`, so the cache recomputes it and lists
it among the redone entries that scores.json reports.

scores.json lists each model's clips with their values: :func:`read_clip_values` returns exactly those rows, so a
record left on disk by an earlier run (another sample, another item, another --metrics) never reaches a figure.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cache import BadEntry, Key, as_plain_json, check_values, values_checksum
from bench.results import Fields, Provenance
from bench.runfolder import RunFolder

SCORES_FORMAT = "samuel-bench-scores/2"
READABLE_SCORES_FORMATS = ("samuel-bench-scores/1", SCORES_FORMAT)  # /1: no per-clip rows (rescore for figures)
RECORD_FORMAT = "samuel-bench-clip-record/2"
SECTIONS = {"group": "groups", "anchor": "anchors"}  # Key.kind prefix -> record section


@dataclass(frozen=True)
class Sample:
    """One generated (or copied) clip of the current run: the caller's list, never a glob of samples/.

    The vocal and reference it is scored against come from the manifest item ``item_id`` (read through the item's
    window), never from the sample.
    """

    model: str
    item_id: str
    sample_id: str
    audio: Path
    weights: str  # pretrained | files | random
    # the lowest rate its audio had before the 44.1 kHz the scorers read (a file row's source file, a model's output
    # rate); None: the stored file's own rate. Signal metrics need it: spectral flatness is undefined below 32 kHz
    source_rate: int | None = None

    @property
    def random(self) -> bool:
        return self.weights == "random"


# -- per-clip records ---------------------------------------------------------------------------------------------


def clip_key(kind: str, sample: Sample, sha256: str, identity: dict[str, Any]) -> Key:
    """The cache key of one group (``kind="group:NAME"``) or anchor (``"anchor:NAME"``) of one clip."""
    if kind.partition(":")[0] not in SECTIONS:
        raise ValueError(f"clip entry kind must start with one of {sorted(SECTIONS)}, got {kind!r}")
    clip = {"model": sample.model, "item_id": sample.item_id, "sample_id": sample.sample_id}
    return Key(kind, sha256, {"clip": clip, **identity})


def record_path_for(run: RunFolder, view: str = "accompaniment") -> Callable[[Key], Path]:
    """``Cache.path_for`` of clip records: the clip named in the key's identity. The ``mix`` view's records live in
    a ``mix/`` folder beside the model's (``scores/<model>/mix/``), so the two views never overwrite each other."""
    if view == "accompaniment":
        return lambda key: run.clip_record_path(**key.identity["clip"])

    def path(key: Key) -> Path:
        plain = run.clip_record_path(**key.identity["clip"])
        return plain.parent / view / plain.name

    return path


def validate_record(record: Any) -> None:
    """Raise ValueError unless ``record`` is a well-formed clip record of this format."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    if record.get("format") != RECORD_FORMAT:
        raise ValueError(f"format {record.get('format', 'unversioned')!r}, expected {RECORD_FORMAT!r}")
    for field in ("model", "item_id", "sample_id", "sample_sha256"):
        if not isinstance(record.get(field), str):
            raise ValueError(f"field {field!r} missing or not a string")
    for section in SECTIONS.values():
        entries = record.get(section)
        if not isinstance(entries, dict):
            raise ValueError(f"section {section!r} missing")
        for name, entry in entries.items():
            if not (isinstance(entry, dict) and isinstance(entry.get("key"), dict)
                    and isinstance(entry.get("values"), dict)):
                raise ValueError(f"{section}.{name}: needs a key and values")
            for k, v in entry["values"].items():
                if not (isinstance(v, (int, float)) and not isinstance(v, bool)):
                    raise ValueError(f"{section}.{name}.{k}: not a number ({v!r})")


class RecordStore:
    """The :class:`bench.cache.Store` of per-clip records: one file per clip, one entry per group or anchor."""

    def read(self, path: Path, key: Key) -> dict[str, float]:
        record = self._read_valid(path)  # FileNotFoundError and BadEntry pass through
        clip = key.identity["clip"]
        if any(record[f] != clip[f] for f in ("model", "item_id", "sample_id")):
            raise BadEntry("the record of another clip")
        if record["sample_sha256"] != key.content:
            raise BadEntry("made for other audio (the sample was rewritten)")
        section, name = _section(key)
        entry = record[section].get(name)
        if entry is None:
            raise FileNotFoundError(path)  # not computed yet: a plain miss
        if entry["key"] != key.to_json():
            raise BadEntry(f"{section}.{name} made for another key (stale)")
        try:
            check_values(entry["values"], entry.get("values_sha256"))
        except BadEntry as err:
            raise BadEntry(f"{section}.{name}: {err}") from None
        return {k: float(v) for k, v in entry["values"].items()}

    def write(self, path: Path, key: Key, value: dict[str, float]) -> None:
        from samuel.atomic import atomic_write

        clip = key.identity["clip"]
        try:
            record = self._read_valid(path)
            if record["sample_sha256"] != key.content or any(record[f] != clip[f] for f in clip):
                raise BadEntry("replaced")
        except (FileNotFoundError, BadEntry):  # a fresh record: nothing in the old one belongs to this audio
            record = {"format": RECORD_FORMAT, **clip, "sample_sha256": key.content,
                      **{s: {} for s in SECTIONS.values()}}
        section, name = _section(key)
        values = as_plain_json(dict(value))
        record[section][name] = {"key": key.to_json(), "values": values, "values_sha256": values_checksum(values)}
        text = json.dumps(record, indent=1, allow_nan=True) + "\n"
        atomic_write(path, lambda tmp: Path(tmp).write_text(text))

    @staticmethod
    def _read_valid(path: Path) -> dict[str, Any]:
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            raise
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise BadEntry(f"unreadable ({type(err).__name__}: {err})") from None
        try:
            validate_record(record)
        except ValueError as err:
            raise BadEntry(f"not a current clip record ({err})") from None
        return record


def _section(key: Key) -> tuple[str, str]:
    prefix, _, name = key.kind.partition(":")
    return SECTIONS[prefix], name


# -- scores.json -----------------------------------------------------------------------------------------------------


def _scores_path(run_or_path: RunFolder | str | os.PathLike[str]) -> Path:
    if isinstance(run_or_path, RunFolder):
        return run_or_path.scores_path
    path = Path(run_or_path)
    return RunFolder(path).scores_path if path.is_dir() else path


def read_scores(run_or_path: RunFolder | str | os.PathLike[str]) -> dict[str, Any] | None:
    """scores.json of a run folder (or the file itself); None when the run is not scored yet.

    Raises:
        ValueError: naming the file: it is unreadable, not JSON (a torn write), or not a samuel-bench scores file.
    """
    path = _scores_path(run_or_path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: unreadable ({type(err).__name__}: {err}); score the run again to rewrite it"
                         ) from None
    fmt = data.get("format") if isinstance(data, dict) else None
    if fmt not in READABLE_SCORES_FORMATS:
        raise ValueError(f"{path}: not a samuel-bench scores file (format {fmt!r})")
    return data


@dataclass(frozen=True)
class ScoreError:
    """A clip (or group) that could not be scored: ``{"item_id", "group", "message"}``, or a plain message."""

    item_id: str = ""
    group: str = ""
    message: str = ""

    @classmethod
    def parse(cls, value: Any, f: Fields, where: str) -> ScoreError:
        if isinstance(value, str):
            return cls(message=value)
        e = Fields(value, f.source, where)
        return cls(e.value("item_id", "str", required=False, default=""),
                   e.value("group", "str", required=False, null=True) or "", e.value("message", "str"))


@dataclass(frozen=True)
class PairedDifference:
    """A model minus the baseline on the items both have: ``estimate`` is the stored difference (mean, CI, n,
    method) as :func:`reports.table1.estimate_cell` formats it. ``p_holm`` is the p-value Holm-adjusted over
    ``family`` (None in a scores.json from before the adjustment)."""

    versus: str
    p_value: float | None
    estimate: Mapping[str, Any]
    p_holm: float | None = None
    family: str = ""

    @classmethod
    def parse(cls, d: Fields, versus: str = "") -> PairedDifference:
        return cls(d.value("versus", "str", required=False, default=versus) or versus,
                   d.value("p_value", "number", required=False, null=True), d.data,
                   d.value("p_holm", "number", required=False, null=True),
                   d.value("family", "str", required=False, default=""))


@dataclass(frozen=True)
class SetPairedDifference:
    """A set statistic (FAD, KAD, APA) of one model minus another's on the same resamples, per embedder."""

    embedder: str
    metric: str
    difference: PairedDifference


@dataclass(frozen=True)
class ModelScores:
    """One model's entry in scores.json, as the report reads it."""

    name: str
    weights: str  # pretrained | files | random
    per_clip: Mapping[str, Mapping[str, Any]]  # 'group.key' -> stored estimate
    paired: Mapping[str, PairedDifference]  # 'group.key' -> difference to the baseline
    errors: tuple[ScoreError, ...]
    set_paired: tuple[SetPairedDifference, ...] = ()  # sets.EMBEDDER.paired, in stored order

    @property
    def is_random(self) -> bool:
        return self.weights == "random"


@dataclass(frozen=True)
class Scores:
    """A light typed view of scores.json (validated: ValueError naming the file and the field). The tables and
    figures that read the document itself (Table I, the per-clip rows) take ``data``."""

    format: str
    config: Mapping[str, Any] | None
    provenance: Provenance
    scorers: Mapping[str, Any]
    models: Mapping[str, ModelScores]
    notes: tuple[str, ...]
    data: Mapping[str, Any] = dataclasses.field(repr=False, compare=False)
    source: str = dataclasses.field(default="", compare=False)

    @classmethod
    def from_json(cls, data: Any, source: str | os.PathLike[str] = "scores.json") -> Scores:
        f = Fields(data, str(source))
        fmt = f.value("format", "str")
        if fmt not in READABLE_SCORES_FORMATS:
            raise f.error("format", f"{fmt!r} is not a scores format this version reads "
                                    f"({', '.join(READABLE_SCORES_FORMATS)})")
        models = {}
        for name in f.mapping("models"):  # type: ignore[union-attr]
            m = Fields(f.data["models"][name], f.source, f"models[{name!r}]")
            paired = {}
            for metric in m.mapping("paired", "object", required=False, default={}):  # type: ignore[union-attr]
                d = Fields(m.data["paired"][metric], f.source, m.path(f"paired[{metric!r}]"))
                paired[metric] = PairedDifference.parse(d)
            errors = tuple(ScoreError.parse(e, m, m.path(f"errors[{i}]"))
                           for i, e in enumerate(m.value("errors", "list", required=False, default=[])))
            models[name] = ModelScores(name, m.value("weights", "str"),
                                       m.mapping("per_clip", "object", required=False, default={}), paired, errors,
                                       _set_paired(m))
        provenance = f.record("provenance", Provenance, required=False) or Provenance()
        return cls(fmt, f.mapping("config", required=False), provenance,
                   f.mapping("scorers", required=False, default={}), models,  # type: ignore[arg-type]
                   f.strings("notes", required=False), data, f.source)


def _set_paired(m: Fields) -> tuple[SetPairedDifference, ...]:
    """``sets.EMBEDDER.paired.METRIC`` of one model: either one difference (with ``versus``) or one per other
    model (``{versus: difference}``)."""
    out = []
    for embedder, entry in (m.mapping("sets", "object", required=False, default={}) or {}).items():
        e = Fields(entry, m.source, m.path(f"sets[{embedder!r}]"))
        for metric, by in (e.mapping("paired", "object", required=False, default={}) or {}).items():
            where = e.path(f"paired[{metric!r}]")
            pairs = [("", by)] if "value" in by else sorted(by.items())
            for versus, d in pairs:  # Fields raises, naming the field, unless d is an object
                d_fields = Fields(d, m.source, f"{where}[{versus!r}]" if versus else where)
                out.append(SetPairedDifference(embedder, metric, PairedDifference.parse(d_fields, versus)))
    return tuple(out)


def read_clip_values(run_or_path: RunFolder | str | os.PathLike[str] | dict[str, Any],
                     current: Iterable[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """The per-clip values of the last score pass as tidy rows, for figures and outlier lists:
    ``model, item_id, sample_id, weights, metric ('group.key'), value``, finite values only.

    The rows are the clips scores.json lists (the samples that pass scored, with the values its means came from);
    ``current``, a set of ``(model, sample_id)``, narrows them further. A scores.json of format /1 lists no clips:
    it gives no rows (rescore to get them).

    Args:
        run_or_path: a run folder, scores.json, or its content already read.
        current: keep only these clips; None keeps every clip scores.json lists.
    """
    scores = run_or_path if isinstance(run_or_path, dict) else read_scores(run_or_path)
    if not scores:
        return []
    keep = None if current is None else set(current)
    rows: list[dict[str, Any]] = []
    for model, entry in sorted((scores.get("models") or {}).items()):
        weights = entry.get("weights", "pretrained")
        for clip in entry.get("clips") or []:
            if keep is not None and (model, clip["sample_id"]) not in keep:
                continue
            for metric, v in sorted((clip.get("values") or {}).items()):
                if isinstance(v, (int, float)) and math.isfinite(v):
                    rows.append({"model": model, "item_id": clip["item_id"], "sample_id": clip["sample_id"],
                                 "weights": weights, "metric": metric, "value": float(v)})
    return rows


RANDOM_NOT_SCORED = "samples from RANDOM weights are not scored (--score-random scores them, labelled)"


def notes_of_run(notes: Iterable[Any], current: Mapping[str, CurrentSamples | None],
                 random_models: Iterable[str]) -> list[Any]:
    """scores.json's notes less "MODEL: samples from RANDOM weights are not scored" for a model that is no longer
    one of this run's random-weight models with samples (the score pass wrote it for the models it saw)."""
    keep = {f"{m}: {RANDOM_NOT_SCORED}" for m in random_models if current.get(m) is None or current.get(m)}
    return [n for n in notes if not (isinstance(n, str) and n.endswith(RANDOM_NOT_SCORED)) or n in keep]


# item id -> (sample id, the audio's sha256 as its sidecar records it, or None where unreadable)
CurrentSamples = Mapping[str, tuple[str, str | None]]
MAX_STALE_ITEMS_NAMED = 5


def stale_scores(scores: Mapping[str, Any], current: Mapping[str, CurrentSamples | None],
                 random_models: Iterable[str] = ()) -> list[str]:
    """Why ``scores`` (scores.json) does not describe this run's samples, one line per model; [] when it does.

    A model's row is current when its clips (and the items its score errors name) are exactly the run's current
    samples of that model: the same items, sample ids and, where both record it, audio sha256. ``current`` maps
    every model of this run to its samples (results.json's ``sample_ids``; None where results.json does not
    record them, an older run: not compared); ``random_models``: those with random weights, whose samples the score
    pass skips unless its config says ``score_random``. A row without ``clips`` (scores format /1) is not compared.
    """
    score_random = bool((scores.get("config") or {}).get("score_random"))
    random = set(random_models)
    scored = scores.get("models") or {}
    reasons = []
    for model, entry in scored.items():
        if model not in current:
            reasons.append(f"{model}: scored, but not a model of this run")
            continue
        now, clips = current[model], entry.get("clips") if isinstance(entry, dict) else None
        if now is None or not isinstance(clips, list):
            continue
        if why := _row_differs([c for c in clips if isinstance(c, dict)], entry.get("errors") or [], now):
            reasons.append(f"{model}: {why}")
    for model, now in current.items():
        if model not in scored and now and (score_random or model not in random):
            reasons.append(f"{model}: {len(now)} sample(s), none scored")
    return reasons


def _row_differs(clips: list[dict[str, Any]], errors: list[Any], now: CurrentSamples) -> str:
    """What differs between one row's scored clips and the model's current samples ('' when nothing does)."""
    scored = {str(c.get("item_id")) for c in clips}
    scored |= {str(e["item_id"]) for e in errors if isinstance(e, dict) and e.get("item_id")}
    changed = []
    for clip in clips:
        item = str(clip.get("item_id"))
        if item in now:
            sid, sha = now[item]
            if clip.get("sample_id") != sid or (clip.get("sha256") and sha and clip.get("sha256") != sha):
                changed.append(item)
    parts = []
    for what, ids in (("items no longer in the run", sorted(scored - set(now))),
                      ("samples never scored", sorted(set(now) - scored)),
                      ("samples made anew since", sorted(changed))):
        if ids:
            more = f" and {len(ids) - MAX_STALE_ITEMS_NAMED} more" if len(ids) > MAX_STALE_ITEMS_NAMED else ""
            parts.append(f"{what}: {', '.join(ids[:MAX_STALE_ITEMS_NAMED])}{more}")
    if not parts:
        return ""
    return f"scored {len(scored)} item(s), the run has {len(now)} sample(s); " + "; ".join(parts)


def run_samples(run: RunFolder, results: Any) -> dict[str, CurrentSamples | None]:
    """Every model of results.json (a :class:`bench.results.RunResults`) -> its current samples, with each audio's
    sha256 read from the sample's sidecar (not recomputed; None where the sidecar is unreadable); None for a model
    whose results.json records no sample ids (written before it did)."""
    out: dict[str, CurrentSamples | None] = {}
    for name, entry in results.models.items():
        gen = entry.generation
        if gen is None:
            out[name] = {}
            continue
        if not gen.sample_ids and gen.n_ok:
            out[name] = None
            continue
        out[name] = {item: (sid, _recorded_sha256(run.sample_paths(name, item, sid, entry.is_random)[1]))
                     for item, sid in gen.sample_ids.items()}
    return out


def _recorded_sha256(sidecar: Path) -> str | None:
    try:
        sha = json.loads(sidecar.read_text()).get("audio_sha256")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    return sha if isinstance(sha, str) else None


def read_current_scores(run: RunFolder, results: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """scores.json (None before the score pass) and why it does not describe results.json's current samples
    (:func:`stale_scores`; [] when it does). Raises ValueError naming scores.json when it cannot be read."""
    scores = read_scores(run)
    if scores is None:
        return None, []
    current, random = run_samples(run, results), results.random_models
    if isinstance(scores.get("notes"), list):
        scores = {**scores, "notes": notes_of_run(scores["notes"], current, random)}
    return scores, stale_scores(scores, current, random)
