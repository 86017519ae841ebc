"""The responsiveness probe: does each model that claims vocal conditioning hear its vocal? (I/O; the math is in
:mod:`bench.metrics.responsiveness`.)

For a model with ``uses_vocal`` and the first ``--probe N`` items, item i is generated (same seed, same prompt) with

    own       its own vocal window (the generate pass's sample is reused when it is there)
    swapped   item (i + 1) mod N's vocal window: a cyclic derangement, no item keeps its own vocal
    silence   a silent vocal of the item's length
    seed_b    its own vocal with a second seed, for the seed-to-seed distance

and the probe reports the output change (multi-resolution log-spectral distance own vs swapped, against own vs
seed_b, and own vs silence), the responsiveness d_i = A(v_i, y_i) - A(v_i, y'_i) with A the chroma agreement
(:func:`bench.metrics.adherence.chroma_agreement`, over the common span), its mean with a Student-t 95% CI, and a
verdict (:func:`bench.metrics.responsiveness.verdict`).

Random weights: a **plumbing** probe only, on ``PLUMBING_ITEMS`` item(s) with a window of at most
``PLUMBING_WINDOW_S`` seconds, with its own vocal twice (``repeat``: the same request again) and the swapped vocal.
That window is the most active span of the item's vocal window, and the donor's of the donor's
(:func:`plumbing_start`, by :mod:`bench.windows`' activity rule): a vocal window's first second is often a rest, and
two silent spans make identical outputs whatever the plumbing. Any probe skips an item whose vocal equals its
donor's sample for sample (two windows of a song that repeats, a file copied under two names); the plumbing probe
then takes the next item. The plumbing probe
tells whether the vocal reaches the output at all ("plumbing only" when the swapped output differs from the own
one by more than the repeat does, "does not respond to its vocal" otherwise; the repeat keeps a nondeterministic
GPU kernel from passing for a response). Adherence of a random model means nothing, and full-length generations of
a large random model on a CPU would cost hours.

Files:

    DIR/probe/samples/<model>/<item>.<kind>__<sid>[.random].flac (+ .json sidecar)   probe samples, resumable (.wav
                                                                                     beyond full scale)
    DIR/probe/inputs/silence-<frames>.flac                                           the silent vocal
    DIR/probe.json                                                                   per model: items, CIs, verdict

The swapped requests point at the donor item's own vocal file and window (``vocal_path``, ``start_s``), which is
exactly the donor's window with no copy. Probe samples live under DIR/probe, never under DIR/samples: they are not
any model's Table I samples, and ``stale_files`` / ``samuel-eval clean`` leave them alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Self

import numpy as np

from bench.cache import BadEntry, Cache
from bench.manifest import Item, Manifest, item_seed, sample_id
from bench.metrics.responsiveness import (
    NOT_PROBED,
    RESOLUTIONS,
    VERDICTS,
    Verdict,
    log_spectral_distance,
    responsiveness,
    t_mean_ci,
    verdict,
)
from bench.results import Fields, GenerationError, JsonRecord, StoredEstimate, _read
from bench.runfolder import NewSample, RunFolder, SampleRecord, SampleStore
from bench.windows import FRAME_S, active_frames, frame_levels_db, most_active_starts
from samuel.atomic import DiskFull

PROBE_FORMAT = "samuel-bench-probe/1"
PROBE_NAME = "probe.json"
DEFAULT_PROBE_ITEMS = 10
PLUMBING_ITEMS = 1  # random weights: one own/swapped pair shows whether the vocal reaches the output
# seconds: enough to hear whether the vocal arrives, cheap for a large random model (MusicGen-Melody's three
# generations of 50 frames take about 1.5 min on two AMX cores in bf16, at 0.6 s a frame)
PLUMBING_WINDOW_S = 1.0
ADHERENCE_METRIC = "chroma_agreement"
KINDS = ("own", "swapped", "silence", "seed_b")
PLUMBING_KINDS = ("own", "swapped", "repeat")
VOCAL_RATE = 44_100  # GenerationRequest.read_vocal's rate
DISTANCE = (f"multi-resolution log-spectral distance (dB): STFT {'/'.join(map(str, RESOLUTIONS))} samples, hop n/4, "
            "frame-wise RMS of the dB difference, mean over frames and resolutions, floor -80 dB")


def probe_path(run: RunFolder) -> Path:
    return run.root / PROBE_NAME


def probe_folder(run: RunFolder) -> RunFolder:
    """DIR/probe as a run folder of its own: its samples/ hold the probe samples, apart from the run's."""
    return RunFolder(run.root / "probe")


# -- probe.json, typed ---------------------------------------------------------------------------------------------


def _number(f: Fields, key: str) -> float | None:
    return f.value(key, "number", required=False, null=True)


@dataclass(frozen=True)
class ProbeItem(JsonRecord):
    """One probed item: which vocal it was swapped with, the sha256 of each probe sample, the distances (dB), the
    adherence of its own vocal to the own and the swapped outputs, and any kind that failed."""

    item_id: str
    vocal_from: str  # the donor item of the swapped vocal
    samples: Mapping[str, str] = field(default_factory=dict)  # kind -> audio sha256
    identical: bool | None = None  # swapped output == own output, sample for sample
    swap_distance: float | None = None
    seed_distance: float | None = None
    silence_distance: float | None = None
    repeat_distance: float | None = None  # own vs the same request run again (plumbing probe)
    adherence_own: float | None = None
    adherence_swapped: float | None = None
    d: float | None = None  # adherence_own - adherence_swapped; exactly 0 for identical outputs (not scored then)
    errors: Mapping[str, str] = field(default_factory=dict)  # kind -> message
    own_start_s: float | None = None  # the plumbing span's start in the item's vocal file (None: the item's start)
    donor_start_s: float | None = None  # ... and in the donor's

    JSON_FIELDS = (("item_id", "item_id"), ("vocal_from", "vocal_from"), ("samples", "samples"),
                   ("identical", "identical"), ("swap_distance", "swap_distance"),
                   ("seed_distance", "seed_distance"), ("silence_distance", "silence_distance"),
                   ("repeat_distance", "repeat_distance"), ("adherence_own", "adherence_own"),
                   ("adherence_swapped", "adherence_swapped"), ("d", "d"), ("errors", "errors"),
                   ("own_start_s", "own_start_s"), ("donor_start_s", "donor_start_s"))

    @classmethod
    def parse(cls, f: Fields) -> Self:
        return _read(cls, f, item_id=f.value("item_id", "str"), vocal_from=f.value("vocal_from", "str"),
                     own_start_s=_number(f, "own_start_s"), donor_start_s=_number(f, "donor_start_s"),
                     samples=f.mapping("samples", "str", required=False, default={}),
                     identical=f.value("identical", "bool", required=False, null=True),
                     swap_distance=_number(f, "swap_distance"), seed_distance=_number(f, "seed_distance"),
                     silence_distance=_number(f, "silence_distance"),
                     repeat_distance=_number(f, "repeat_distance"), adherence_own=_number(f, "adherence_own"),
                     adherence_swapped=_number(f, "adherence_swapped"), d=_number(f, "d"),
                     errors=f.mapping("errors", "str", required=False, default={}))


@dataclass(frozen=True)
class ModelProbe(JsonRecord):
    """One model's probe: its items, the estimates (mean, 95% CI, n, method) and the verdict with its reason."""

    model: str
    model_key: Mapping[str, Any]
    weights: str
    mode: str  # responsiveness | plumbing
    verdict: str
    reason: str
    items: tuple[ProbeItem, ...] = ()
    responsiveness: StoredEstimate | None = None  # mean d_i = A(v_i, y_i) - A(v_i, y'_i)
    swap_distance: StoredEstimate | None = None
    seed_distance: StoredEstimate | None = None
    silence_distance: StoredEstimate | None = None
    change: StoredEstimate | None = None  # paired swap_distance - seed_distance
    errors: tuple[GenerationError, ...] = ()
    adherence_metric: str = ADHERENCE_METRIC
    distance: str = DISTANCE
    window_s: float | None = None  # the plumbing probe's shortened window

    JSON_FIELDS = (("model", "model"), ("model_key", "model_key"), ("weights", "weights"), ("mode", "mode"),
                   ("verdict", "verdict"), ("reason", "reason"), ("adherence_metric", "adherence_metric"),
                   ("distance", "distance"), ("window_s", "window_s"), ("responsiveness", "responsiveness"),
                   ("swap_distance", "swap_distance"), ("seed_distance", "seed_distance"),
                   ("silence_distance", "silence_distance"), ("change", "change"), ("errors", "errors"),
                   ("items", "items"))

    @classmethod
    def parse(cls, f: Fields) -> Self:
        est = partial(f.record, cls=StoredEstimate, required=False, null=True)
        found = _read(cls, f, model=f.value("model", "str"), model_key=f.mapping("model_key"),
                      weights=f.value("weights", "str"), mode=f.choice("mode", ("responsiveness", "plumbing")),
                      verdict=f.choice("verdict", VERDICTS), reason=f.value("reason", "str"),
                      items=f.records("items", ProbeItem), responsiveness=est("responsiveness"),
                      swap_distance=est("swap_distance"), seed_distance=est("seed_distance"),
                      silence_distance=est("silence_distance"), change=est("change"),
                      errors=f.records("errors", GenerationError, required=False),
                      adherence_metric=f.value("adherence_metric", "str", required=False, default=ADHERENCE_METRIC),
                      distance=f.value("distance", "str", required=False, default=DISTANCE),
                      window_s=_number(f, "window_s"))
        return found


@dataclass(frozen=True)
class ProbeFile(JsonRecord):
    """probe.json: every probed model of the run folder, by name."""

    models: Mapping[str, ModelProbe] = field(default_factory=dict)
    format: str = PROBE_FORMAT

    JSON_FIELDS = (("format", "format"), ("models", "models"))

    @classmethod
    def parse(cls, f: Fields) -> Self:
        fmt = f.value("format", "str")
        if fmt != PROBE_FORMAT:
            raise f.error("format", f"expected {PROBE_FORMAT!r}, got {fmt!r}")
        f.value("models", "object")
        sub = f.child("models")
        models = {name: ModelProbe.parse(sub.child(name)) for name in sub.keys}
        return _read(cls, f, models=models, format=fmt)

    def to_json(self) -> dict[str, Any]:
        return {"format": self.format, "models": {k: v.to_json() for k, v in self.models.items()}}

    @classmethod
    def read(cls, path: Path) -> ProbeFile:
        """probe.json, validated: ValueError naming the file (and the field) when unreadable or foreign;
        FileNotFoundError when there is none."""
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: unreadable ({type(err).__name__}: {err})") from None
        return cls.from_json(data, source=path)

    def current(self, name: str, model_key: Mapping[str, Any] | None) -> ModelProbe | None:
        """The probe of this very model spec (None for another spec's, or none)."""
        found = self.models.get(name)
        return found if found is not None and model_key is not None and dict(found.model_key) == dict(model_key) \
            else None


def read_probe(folder: Path) -> ProbeFile | None:
    """DIR/probe.json, or None when there is none; ValueError naming the file when it is damaged."""
    try:
        return ProbeFile.read(Path(folder) / PROBE_NAME)
    except FileNotFoundError:
        return None


# -- the plan ------------------------------------------------------------------------------------------------------


def probe_pairs(items: Sequence[Item], n: int) -> list[tuple[Item, Item]]:
    """(item, donor) pairs: the first min(n, len(items)) items, item i taking item (i + 1) mod that many's vocal.
    Empty when fewer than 2 items (no derangement). Random weights probe ``PLUMBING_ITEMS`` of them, the first whose
    vocal differs from its donor's (:func:`probe_model`)."""
    m = min(n, len(items))
    if m < 2:
        return []
    return [(items[i], items[(i + 1) % m]) for i in range(m)]


def plumbing_start(item: Item, window_s: float) -> float:
    """Where the plumbing probe's ``window_s`` seconds of ``item`` start in its vocal file: the start of the most
    active span of its vocal window (:func:`bench.windows.most_active_starts` over ``FRAME_S`` frames, gated against
    the window's loudest frame; the earliest among equals, so a vocal that sings from its first frame keeps the
    item's start). ItemError naming the file when the vocal cannot be read."""
    if window_s >= item.duration_s:
        return item.start_s
    levels = frame_levels_db(item.read_vocal().T, round(FRAME_S * VOCAL_RATE))
    starts = most_active_starts(active_frames(levels), max(1, round(window_s / FRAME_S)), 1)
    return round(item.start_s + (starts[0] * FRAME_S if starts else 0.0), 6)


def probe_requests(item: Item, donor: Item, silence: Path, kinds: Sequence[str], window_s: float | None = None,
                   own_start_s: float | None = None, donor_start_s: float | None = None) -> dict[str, Item]:
    """The item as each kind asks for it: same id, prompt and (except seed_b) seed; only the vocal changes. A
    shortened ``window_s`` starts at ``own_start_s`` in the item's vocal and ``donor_start_s`` in the donor's (None:
    at each item's own start)."""
    own = item if window_s is None or window_s >= item.duration_s else replace(
        item, duration_s=window_s, start_s=item.start_s if own_start_s is None else own_start_s)
    variants = {
        "own": own,
        "swapped": replace(own, vocal=donor.vocal, vocal_sha256=donor.vocal_sha256,
                           start_s=donor.start_s if donor_start_s is None else donor_start_s, downmix=donor.downmix),
        "silence": replace(own, vocal=str(silence), vocal_sha256=f"silence:{silence.name}", start_s=0.0,
                           downmix=False),
        "seed_b": replace(own, seed=item_seed(item.seed, 1)),
        "repeat": own,  # the same request; its sample id differs by the kind
    }
    return {k: variants[k] for k in kinds}


def silence_path(run: RunFolder, duration_s: float) -> Path:
    frames = max(1, math.ceil(duration_s * VOCAL_RATE))
    return probe_folder(run).inputs_dir / f"silence-{frames}.flac"


def write_silence(run: RunFolder, duration_s: float) -> Path:
    """A silent stereo 44.1 kHz vocal of ``duration_s`` (atomic; the same file every run)."""
    from samuel.audio import write_audio

    path = silence_path(run, duration_s)
    frames = max(1, math.ceil(duration_s * VOCAL_RATE))
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_audio(path, np.zeros((2, frames), dtype=np.float32), VOCAL_RATE, subtype="PCM_16")
    return path


def current_probe_files(run: RunFolder, manifest: Manifest, model_keys: Mapping[str, Mapping[str, Any] | None]
                        ) -> tuple[set[Path], list[Path]]:
    """What ``samuel-eval clean`` keeps and may remove under DIR/probe: (the samples, audio and sidecar, of every
    current probe entry of the models in ``model_keys`` (name -> model spec) on this manifest's items, plus the
    silence inputs those use; every file under DIR/probe/samples and DIR/probe/inputs). ValueError naming
    probe.json when it is damaged."""
    folder = probe_folder(run)
    present = sorted(p for p in (*folder.sample_files(), *folder.inputs_dir.glob("*")) if p.is_file())
    probe = read_probe(run.root)
    keep: set[Path] = set()
    if probe is None:
        return keep, present
    items = {i.item_id: i for i in manifest.items}
    for name, key in model_keys.items():
        entry = probe.current(name, key)
        if entry is None or key is None:
            continue
        random_weights = entry.mode == "plumbing"
        for row in entry.items:
            item, donor = items.get(row.item_id), items.get(row.vocal_from)
            if item is None or donor is None:
                continue
            window = entry.window_s
            silence = silence_path(run, min(item.duration_s, window or item.duration_s))
            kinds = PLUMBING_KINDS if random_weights else KINDS
            if "silence" in kinds:
                keep.add(silence)
            for kind, probe_item in probe_requests(item, donor, silence, kinds, window, row.own_start_s,
                                                   row.donor_start_s).items():
                sid = sample_id(probe_item, {**key, "probe": kind})
                keep.update(folder.sample_candidates(name, f"{probe_item.item_id}.{kind}", sid, random_weights))
    return keep, present


# -- running it ----------------------------------------------------------------------------------------------------


MakeSample = Callable[[Any, Item], NewSample]  # (adapter, item) -> a checked generation (bench.evaluate.generate_new)


@dataclass
class _Outputs:
    audio: dict[str, tuple[np.ndarray, int]] = field(default_factory=dict)  # kind -> ((C, S), rate)
    sha: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _read_audio(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return data.T, int(rate)


def probe_model(run: RunFolder, adapter: Any, key: dict[str, Any], manifest: Manifest, *, n: int,
                make_sample: MakeSample, own_store: SampleStore | None = None,
                fatal: tuple[type[BaseException], ...] = (), log: Callable[[str], None] = lambda s: None
                ) -> ModelProbe:
    """Probe one loaded adapter on the first ``n`` items of ``manifest``, write its entry into DIR/probe.json and
    return it. Samples are reused when valid (resume); a failing generation is recorded for its item and kind and the
    probe goes on; exceptions of a ``fatal`` type (a model that cannot load) propagate."""
    status = adapter.status
    random_weights = status.is_random
    mode = "plumbing" if random_weights else "responsiveness"
    kinds = PLUMBING_KINDS if random_weights else KINDS
    window = PLUMBING_WINDOW_S if random_weights else None
    pairs = probe_pairs(manifest.items, n)
    previous = _previous(run, adapter.name, key, log)
    store = SampleStore(probe_folder(run), adapter.name, random_weights, key)
    cache: Cache[SampleRecord] = Cache(store.path_for, store)
    rows: list[ProbeItem] = []
    errors: list[GenerationError] = []
    skipped: list[str] = []
    for item, donor in pairs:
        if random_weights and len(rows) >= PLUMBING_ITEMS:
            break
        try:
            starts = (plumbing_start(item, window), plumbing_start(donor, window)) if window else (None, None)
            silence = write_silence(run, min(item.duration_s, window or item.duration_s)) if "silence" in kinds \
                else Path("-")
            requests = probe_requests(item, donor, silence, kinds, window, *starts)
            if np.array_equal(requests["own"].read_vocal(), requests["swapped"].read_vocal()):
                span = f"{window:g} s spans" if window else "windows"
                skipped.append(f"{item.item_id} ({donor.item_id}'s vocal)")
                log(f"  probe: {item.item_id} not probed: its vocal {span} and {donor.item_id}'s are identical, "
                    "so a swap cannot change the output")
                continue
            outputs = _generate(adapter, key, requests, store, cache, own_store, make_sample, fatal)
            row = replace(_score(item, donor, outputs, previous.get(item.item_id), with_adherence=not random_weights),
                          own_start_s=starts[0], donor_start_s=starts[1])
        except fatal:
            raise
        except (KeyboardInterrupt, DiskFull):  # a full disk stops the run (reports.cli)
            raise
        except Exception as err:  # one item's probe failing (an unreadable vocal, a metric on broken audio)
            row = ProbeItem(item.item_id, donor.item_id, errors={"item": f"{type(err).__name__}: {err}"})
        rows.append(row)
        errors += [GenerationError(item.item_id, f"probe {kind}: {message}") for kind, message in row.errors.items()]
    result = summarise(adapter.name, key, status.kind, mode, rows, errors, window, skipped)
    _store(run, result, log)
    return result


def _generate(adapter: Any, key: dict[str, Any], requests: Mapping[str, Item], store: SampleStore,
              cache: Cache[SampleRecord], own_store: SampleStore | None, make_sample: MakeSample,
              fatal: tuple[type[BaseException], ...]) -> _Outputs:
    out = _Outputs()
    for kind, probe_item in requests.items():
        try:
            record, folder = None, store
            if kind == "own" and own_store is not None:  # the generate pass's sample of this very item
                own_key = own_store.key(probe_item.item_id, sample_id(probe_item, key))
                try:
                    record, folder = own_store.read(own_store.path_for(own_key), own_key), own_store
                except (FileNotFoundError, BadEntry):
                    record = None
            if record is None:
                sid = sample_id(probe_item, {**key, "probe": kind})
                record = cache.get(store.key(f"{probe_item.item_id}.{kind}", sid),
                                   partial(make_sample, adapter, probe_item))
                folder = store
            out.audio[kind] = _read_audio(folder.run.record_audio(record))
            out.sha[kind] = record.audio_sha256
        except fatal:
            raise
        except (KeyboardInterrupt, DiskFull):  # a full disk stops the run (reports.cli)
            raise
        except Exception as err:  # that kind only; the others still tell something
            out.errors[kind] = f"{type(err).__name__}: {err}"
    return out


def _score(item: Item, donor: Item, outputs: _Outputs, before: ProbeItem | None, with_adherence: bool) -> ProbeItem:
    """Distances and adherence of one item's outputs; reused from ``before`` when it was made from the very same
    samples (same sha256s) without error."""
    if before is not None and dict(before.samples) == outputs.sha and not before.errors and not outputs.errors \
            and before.vocal_from == donor.item_id:
        return before
    audio = outputs.audio
    own = audio.get("own")
    values: dict[str, Any] = {}
    if own is not None:
        for kind, name in (("swapped", "swap_distance"), ("seed_b", "seed_distance"), ("silence", "silence_distance"),
                           ("repeat", "repeat_distance")):
            if kind in audio:
                other = audio[kind]
                if other[1] != own[1]:
                    raise ValueError(f"item {item.item_id}: {kind} output at {other[1]} Hz, own at {own[1]} Hz")
                values[name] = log_spectral_distance(own[0], other[0])
        if "swapped" in audio:
            values["identical"] = bool(np.array_equal(own[0], audio["swapped"][0]))
        if with_adherence and values.get("identical"):
            values["d"] = 0.0  # A(v, y) - A(v, y): no need to run pYIN
        elif with_adherence and "swapped" in audio:
            from bench.metrics.adherence import accompaniment_features, chroma_agreement, vocal_features

            vocal = _vocal_features(item, vocal_features)
            scores = []
            for kind in ("own", "swapped"):
                value = chroma_agreement(vocal, accompaniment_features(audio[kind][0], audio[kind][1]),
                                         max_mismatch_s=None)
                scores.append(value if math.isfinite(value) else None)
            values["adherence_own"], values["adherence_swapped"] = scores
            if None not in scores:
                values["d"] = scores[0] - scores[1]
    return ProbeItem(item.item_id, donor.item_id, samples=dict(outputs.sha), errors=dict(outputs.errors), **values)


_FEATURES: dict[str, Any] = {}  # pYIN of a vocal window, shared by every model probed in this process
_FEATURES_KEPT = 64


def _vocal_features(item: Item, compute: Callable[[Any, int], Any]) -> Any:
    """The item's vocal features, computed once per process for all the models probed (pYIN is the probe's
    costliest step); keyed by the window's content (vocal sha256, start, duration) and path."""
    key = json.dumps([item.vocal, item.vocal_sha256, item.start_s, item.duration_s, item.downmix])
    if key not in _FEATURES:
        if len(_FEATURES) >= _FEATURES_KEPT:
            _FEATURES.pop(next(iter(_FEATURES)))
        _FEATURES[key] = compute(item.read_vocal(), VOCAL_RATE)
    return _FEATURES[key]


def unchanged(row: ProbeItem) -> bool:
    """Whether the swapped output is the own output: identical, or no further from it than a rerun of the very same
    request (run-to-run noise, e.g. a nondeterministic GPU kernel)."""
    if row.identical:
        return True
    return row.repeat_distance is not None and row.swap_distance is not None \
        and row.swap_distance <= row.repeat_distance


def _estimate(values: Sequence[float | None]) -> StoredEstimate | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    return StoredEstimate.from_json(t_mean_ci(finite).to_dict(), source="probe estimate")


def summarise(model: str, key: Mapping[str, Any], weights: str, mode: str, rows: Sequence[ProbeItem],
              errors: Sequence[GenerationError] = (), window_s: float | None = None,
              skipped: Sequence[str] = ()) -> ModelProbe:
    """The estimates and the verdict over the probed items (pure: no I/O). ``skipped``: items left out because
    their vocal equals their donor's."""
    identical = [unchanged(r) for r in rows if r.identical is not None]
    d = [r.d for r in rows if r.d is not None]
    est = responsiveness(np.array(d), np.zeros(len(d))) if d else None
    found: Verdict = verdict(weights, identical, est if mode == "responsiveness" else None)
    if not rows:
        found = Verdict(NOT_PROBED, "fewer than 2 items: no other item's vocal to swap in" if not skipped else
                        f"every item's vocal equals its donor's, so no swap can change an output: "
                        f"{', '.join(skipped)}")
    change = [r.swap_distance - r.seed_distance for r in rows
              if r.swap_distance is not None and r.seed_distance is not None]
    return ModelProbe(
        model=model, model_key=dict(key), weights=weights, mode=mode, verdict=found.label, reason=found.reason,
        items=tuple(rows),
        responsiveness=StoredEstimate.from_json(est.to_dict(), source="probe estimate") if est is not None else None,
        swap_distance=_estimate([r.swap_distance for r in rows]),
        seed_distance=_estimate([r.seed_distance for r in rows]),
        silence_distance=_estimate([r.silence_distance for r in rows]),
        change=_estimate(change), errors=tuple(errors), window_s=window_s)


def _previous(run: RunFolder, name: str, key: Mapping[str, Any], log: Callable[[str], None]) -> dict[str, ProbeItem]:
    try:
        stored = read_probe(run.root)
    except ValueError as err:
        log(f"  probe: {err}; it is rewritten")
        return {}
    entry = stored.current(name, key) if stored is not None else None
    return {r.item_id: r for r in entry.items} if entry is not None else {}


def _store(run: RunFolder, result: ModelProbe, log: Callable[[str], None]) -> None:
    """Replace this model's entry in DIR/probe.json (atomic)."""
    try:
        stored = read_probe(run.root) or ProbeFile()
    except ValueError as err:
        log(f"  probe: {err}; it is rewritten")
        stored = ProbeFile()
    models = {k: v for k, v in stored.models.items() if k != result.model}
    models[result.model] = result
    run.write_json(probe_path(run), ProbeFile(models).to_json())


def describe_probe(result: ModelProbe) -> str:
    """One log line."""
    parts = [f"probe ({result.mode}, {len(result.items)} items): {result.verdict}: {result.reason}"]
    if result.swap_distance is not None and result.swap_distance.value is not None:
        seed = result.seed_distance.value if result.seed_distance is not None else None
        parts.append(f"swap distance {result.swap_distance.value:.2f} dB"
                     + (f" vs seed-to-seed {seed:.2f} dB" if seed is not None else ""))
    return "; ".join(parts)
