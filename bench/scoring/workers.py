"""Per-clip groups computed in worker processes, ahead of the serial pass that stores and reports them.

The per-clip groups that hold no weights (``CLIP``: signal; ``VOCAL_PAIR``: adherence) are pure CPU work on one
clip at a time, so they run in ``N`` spawned processes (``--score-workers``; default one per core when there is at
least :data:`MIN_PARALLEL_AUDIO_S` of audio to score, else none). Groups with weights (``SCORER``: a model in
memory, maybe on a GPU) stay in the parent.

Two stages per view, every model at once: first each needed vocal's features, one job per item (through the
on-disk vocal feature cache), so that no two processes run the same item's pitch tracker; then one job per clip,
carrying the vocal features it reads, for every entry the clip records lack. The results (values, or the error a
group raised) go to :func:`bench.scoring.clips.score_clips`, which stores them through the same cache calls as a
serial pass: records, redone entries, errors and their order are the serial pass's, and so are the values (each
process computes with one BLAS and one ONNX thread, the same code as the parent). A process pool that breaks (a
worker killed) is reported, and the pass computes what is left serially.

Processes are spawned, not forked, and end with the parent however it ends (:func:`samuel.processes.spawn_pool`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bench.cache import Cache, CacheEvent
from bench.scoring.clips import ClipGroup, Computed, ComputedKey, build_group, computed_key
from bench.scoring.config import REFERENCE_MODEL, ScoreConfig
from bench.scoring.inputs import ACCOMPANIMENT, ItemAudio
from bench.scoring.records import Sample
from bench.scoring.registry import CLIP, VOCAL_PAIR, group
from samuel.console import one_line_warnings, prints_one_line_warnings
from samuel.hashing import file_sha256
from samuel.provenance import usable_cores

PARALLEL_KINDS = (CLIP, VOCAL_PAIR)  # no weights: cheap to rebuild in a process, safe to run several at once
# starting the workers costs ~4 s (imports, numba's and onnxruntime's first calls) and a clip ~0.02 s per second of
# audio: under ~5 minutes of audio to score (6 clips of 47.55 s) the workers would not repay their start
MIN_PARALLEL_AUDIO_S = 300.0


def machine_workers() -> int:
    """The cores this process may run on (:func:`samuel.provenance.usable_cores`)."""
    return usable_cores()


def worker_count(requested: int | None, jobs: int, audio_s: float) -> int:
    """Processes for ``jobs`` clip jobs holding ``audio_s`` seconds of audio: ``requested`` (at most one per job),
    or by default one per core (at most one per job) when there is at least :data:`MIN_PARALLEL_AUDIO_S` of
    audio; 1 means serial, in this process."""
    if jobs <= 1:
        return 1
    if requested is not None:
        return max(1, min(requested, jobs))
    return min(machine_workers(), jobs) if audio_s >= MIN_PARALLEL_AUDIO_S else 1


@dataclass(frozen=True)
class _ClipJob:
    sample: Sample
    sha256: str
    view: str
    entries: tuple[tuple[str, str | None], ...]  # (group name, partner item or None)
    vocals: tuple[tuple[tuple[str, str], Any], ...]  # ((feature target, item id), features) the entries read


class ClipWorkers:
    """The worker processes of one score pass (started on first use, closed with the pass)."""

    def __init__(self, requested: int | None, cfg: ScoreConfig, items: ItemAudio, groups: list[ClipGroup],
                 log: Callable[[str], None]) -> None:
        self.requested, self.cfg, self.items, self.log = requested, cfg, items, log
        self.groups = [g for g in groups if g.group.kind in PARALLEL_KINDS]
        self._pool: Any = None
        self.processes = 0  # how many the pool has (0: none started)
        self.broken = False  # the pool failed once: the rest of the pass runs serially

    def __enter__(self) -> ClipWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def prefetch(self, samples: Mapping[str, list[Sample]], groups: list[ClipGroup], cache: Cache,
                 partners: Mapping[str, str], progress: bool = False, view: str = ACCOMPANIMENT
                 ) -> dict[ComputedKey, Computed]:
        """Values (or errors) of every entry of ``groups`` (those without weights) on the clips of every model's
        ``samples`` that ``cache`` lacks, computed in the worker processes, all models in one go; {} when they would
        run serially (then :func:`score_clips` computes them itself)."""
        names = {g.group.name for g in groups}
        wanted = [g for g in self.groups if g.group.name in names]
        every = [sample for model_samples in samples.values() for sample in model_samples]
        jobs = [] if self.broken or not wanted else self._jobs(every, wanted, cache, partners, view)
        if not jobs:
            return {}
        audio_s = sum(float(self.items.item(j.sample.item_id).duration_s) for j in jobs)  # what the jobs read
        n = self.processes or worker_count(self.requested, len(jobs), audio_s)
        if n <= 1:
            return {}
        try:
            pool = self._start(n)
            self._vocal_stage(pool, jobs)
            return self._clip_stage(pool, jobs, progress)
        except Exception as err:  # a broken pool (a worker killed, say): the serial pass computes the rest
            self.log(f"  score workers stopped ({type(err).__name__}: {err}); the rest is computed in this process")
            self.close()
            self.broken = True
            return {}

    # -- the stages ----------------------------------------------------------------------------------------------

    def _jobs(self, samples: list[Sample], groups: list[ClipGroup], cache: Cache, partners: Mapping[str, str],
              view: str) -> list[_ClipJob]:
        """One job per clip with an entry the cache lacks (what cannot even be keyed is left to the serial pass,
        which reports it)."""
        jobs = []
        for sample in samples:
            if sample.item_id not in self.items.items:
                continue
            try:
                clip = self.items.clip(sample, file_sha256(sample.audio), view)
            except (OSError, ValueError):
                continue
            entries: list[tuple[str, str | None]] = []
            partner = partners.get(sample.item_id)
            for g in groups:
                wanted: list[str | None] = [None]
                if sample.model == REFERENCE_MODEL and g.group.anchored and partner is not None:
                    wanted.append(partner)
                for vocal_item in wanted:
                    try:
                        key = g.key(clip, self.items, "group" if vocal_item is None else "anchor", vocal_item)
                    except Exception:  # the serial pass reports it, naming the clip
                        continue
                    if cache.peek(key) is None:
                        entries.append((g.group.name, vocal_item))
            if entries:
                jobs.append(_ClipJob(sample, clip.sha256, view, tuple(entries), ()))
        return jobs

    def _vocal_stage(self, pool: Any, jobs: list[_ClipJob]) -> None:
        """Each needed vocal's features once, in the pool, into this pass's ``items.features``."""
        needed = set()
        for job in jobs:
            for name, partner in job.entries:
                spec = self._spec(name)
                item = partner or job.sample.item_id
                if spec is not None and (spec.target, item) not in self.items.features:
                    needed.add(item)
        for features, events in pool.map(_vocal_job, sorted(needed)):
            self.items.features.update(features)
            if self.items.vocal_cache is not None:
                self.items.vocal_cache.events.extend(events)

    def _clip_stage(self, pool: Any, jobs: list[_ClipJob], progress: bool) -> dict[ComputedKey, Computed]:
        from tqdm import tqdm

        def with_vocals(job: _ClipJob) -> _ClipJob:
            keys = {(spec.target, partner or job.sample.item_id) for name, partner in job.entries
                    if (spec := self._spec(name)) is not None}
            vocals = tuple((k, self.items.features[k]) for k in sorted(keys) if k in self.items.features)
            return _ClipJob(job.sample, job.sha256, job.view, job.entries, vocals)

        out: dict[ComputedKey, Computed] = {}
        results = pool.map(_clip_job, [with_vocals(j) for j in jobs])
        for job, (computed, events) in tqdm(zip(jobs, results, strict=True), total=len(jobs), disable=not progress,
                                            desc=f"score ({self.processes} processes)", leave=False):
            for (name, partner), value in zip(job.entries, computed, strict=True):
                out[computed_key(job.sample, name, partner)] = value
            if self.items.vocal_cache is not None:
                self.items.vocal_cache.events.extend(events)
        return out

    def _spec(self, name: str) -> Any:
        return next((g.vocal for g in self.groups if g.group.name == name), None)

    def _start(self, n: int) -> Any:
        if self._pool is None:
            from samuel.processes import spawn_pool

            cache = self.items.vocal_cache
            self.log(f"  per-clip groups {', '.join(g.group.name for g in self.groups)} in {n} worker processes")
            self._pool = spawn_pool(n, _init, (self.items.items, self.items.crop,
                                               None if cache is None else cache.folder, self.cfg,
                                               [g.group.name for g in self.groups], prints_one_line_warnings()))
            self.processes = n
        return self._pool


# -- in the worker processes -------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init(items: dict[str, Any], crop: Any, vocal_cache_folder: Any, cfg: ScoreConfig, names: list[str],
          one_line: bool = False) -> None:
    """Each worker: one BLAS thread (the processes are the parallelism), the pass's items and its groups; its
    warnings in the parent's format."""
    from threadpoolctl import threadpool_limits

    from bench.scoring.features import VocalFeatureCache

    if one_line:
        one_line_warnings()
    _WORKER["limits"] = threadpool_limits(limits=1)
    cache = None if vocal_cache_folder is None else VocalFeatureCache(vocal_cache_folder)
    _WORKER["items"] = ItemAudio(dict(items), crop=crop, vocal_cache=cache)
    built = [build_group(group(name), cfg, {}, []) for name in names]
    _WORKER["groups"] = {b.group.name: b for b in built if b is not None}


def _new_events(items: ItemAudio, start: int) -> list[CacheEvent]:
    return [] if items.vocal_cache is None else items.vocal_cache.events[start:]


def _vocal_job(item_id: str) -> tuple[dict[tuple[str, str], Any], list[CacheEvent]]:
    """The vocal features of one item for every VOCAL_PAIR group; none when reading or computing fails (the clip
    jobs then fail on it too, and the serial pass reports them)."""
    items: ItemAudio = _WORKER["items"]
    start = 0 if items.vocal_cache is None else len(items.vocal_cache.events)
    out = {}
    for g in _WORKER["groups"].values():
        if g.vocal is not None:
            try:
                out[(g.vocal.target, item_id)] = g.vocal.features(items, item_id)
            except Exception:  # reported by the clip jobs that read it
                continue
    events = _new_events(items, start)
    items.features.clear()  # the parent keeps them
    return out, events


def _clip_job(job: _ClipJob) -> tuple[list[Computed], list[CacheEvent]]:
    """Every entry of one clip: its values, or the error a group raised."""
    items: ItemAudio = _WORKER["items"]
    start = 0 if items.vocal_cache is None else len(items.vocal_cache.events)
    items.features.update(dict(job.vocals))
    out: list[Computed] = []
    try:
        try:
            clip = items.clip(job.sample, job.sha256, job.view)
        except Exception as err:  # as the parent built it, this does not happen; if it does, every entry says so
            return [Computed(None, type(err).__name__, str(err)) for _ in job.entries], []
        for name, partner in job.entries:
            try:
                out.append(Computed(_WORKER["groups"][name].values(clip, items, partner)))
            except Exception as err:  # one bad clip is reported and the pass goes on
                out.append(Computed(None, type(err).__name__, str(err)))
    finally:
        items.features.clear()
    return out, _new_events(items, start)
