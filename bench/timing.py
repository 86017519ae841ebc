"""The timing protocol: load (timed apart), warm up, then time each item with the device synchronised.

Per item: wall time, real-time factor (time / audio duration) and peak memory. ``full`` times whole generations;
``extrapolate`` runs k units (diffusion steps or autoregressive frames), timestamps each, and scales up by the
median unit time (:func:`bench.stats.extrapolate_steps`) -- the record says "measured on k of N steps/frames",
and for frames that it is a lower bound (later frames attend over a longer cache). ``depth`` (a model too big or
too slow to time whole here, with random weights) times it with its denoiser cut to a few identical blocks and
scales up by one block's measured cost (:func:`time_model_by_depth`). Over items: the median with a
distribution-free 95% CI, and the device, dtype, batch size and thread count.

Contention: each item's timing also reads the machine's CPU counters (``/proc/stat``) and this process's CPU
time, and records how many cores' worth of other work ran beside it (:func:`contention_cores`). An item during
which other work took more than ``BUSY_CORES`` of the cores this process uses, or the hypervisor stole that much,
makes the model's timing "busy": said in the log, in ``setup["busy"]`` and in Table II, and re-timed by the next
run rather than reused. The protocol asks for an idle machine; this is how a run shows it had one.

Peak memory: on CUDA the allocator's peak (``max_memory_allocated``, reset per item); on CPU the process's
resident set sampled every 5 ms by a thread, reported as the peak and as the rise over the level before the item
(the CPU has no allocator counter to reset, so the rise is the honest per-item figure).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from baselines.base import GenerationRequest, Generator, ItemError, is_out_of_memory
from bench.stats import (
    Estimate,
    extrapolate_depth,
    extrapolate_growing_units,
    extrapolate_steps,
    median_ci,
    median_ci_ranks,
)

TimingMode = Literal["full", "extrapolate", "depth"]
# k for --timing extrapolate. Steps: the first also holds set-up, so 3 give 2 clean step times (each DiT step of
# Stable Audio Open costs ~30 s on a 2-core CPU). Frames: 12 give 11 clean frame times. On this CPU MusicGen's
# totals from k = 12 were 2-9% below those from k = 24 (later frames cost more: both are lower bounds), at half the
# cost (docs/benchmarks.md).
DEFAULT_UNITS = {"steps": 3, "frames": 12}
GiB = 1024**3
# Contention flag: cores' worth of other work (beyond the cores this process leaves idle) plus hypervisor steal
# during an item. On this project's idle 2-core VM 30 spans of 1.2 s read 0.000-0.085 (median 0.004); beside a
# process spinning a quarter of one core 0.20-0.22, half 0.35-0.37, a whole one 0.55-0.63 (it gets about two
# thirds of a core beside two busy threads) (tests/benchmarks/test_bench_contention.py, docs/benchmarks.md).
BUSY_CORES = 0.2
MIN_LOAD_WALL_S = 1.0  # /proc/stat counts in 10 ms ticks: shorter items are not judged


def rss_bytes() -> int:
    """Resident set size of this process now."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import psutil

        return int(psutil.Process().memory_info().rss)


def available_bytes(device: str) -> int:
    """Memory a model could still use: free GPU memory on CUDA, MemAvailable plus our own RSS on CPU."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available) + rss_bytes()


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(torch.device(device))


@dataclass
class PeakMemory:
    peak_bytes: int = 0
    rise_bytes: int = 0
    kind: str = ""


@contextmanager
def track_peak_memory(device: str, interval_s: float = 0.005) -> Iterator[PeakMemory]:
    result = PeakMemory()
    if device.startswith("cuda"):
        import torch

        dev = torch.device(device)
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
        yield result
        result.peak_bytes = int(torch.cuda.max_memory_allocated(dev))
        result.rise_bytes = result.peak_bytes - int(before)
        result.kind = "cuda max_memory_allocated"
        return
    before = rss_bytes()
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(interval_s):
            peak[0] = max(peak[0], rss_bytes())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        peak[0] = max(peak[0], rss_bytes())
        result.peak_bytes, result.rise_bytes, result.kind = peak[0], peak[0] - before, "process RSS (sampled 5 ms)"


def contention_cores(busy_s: float, own_s: float, steal_s: float, wall_s: float, cores: int, threads: int
                     ) -> dict[str, float]:
    """How much other work competed with a timed span (pure). Over ``wall_s`` seconds the machine's ``cores`` were
    busy for ``busy_s`` CPU-seconds (all processes, steal excluded), this process used ``own_s`` of them with
    ``threads`` threads, and the hypervisor stole ``steal_s``:

        other      = max(0, busy_s - own_s) / wall_s         cores' worth of other processes' work
        spare      = max(0, cores - threads)                  cores this process leaves idle
        contention = max(0, other - spare) + steal_s / wall_s

    Other work that fits on the spare cores does not compete; what exceeds them, and steal, does."""
    if not (wall_s > 0 and cores >= 1 and threads >= 1):
        raise ValueError(f"wall_s > 0, cores >= 1 and threads >= 1 needed, got {wall_s}, {cores}, {threads}")
    other = max(0.0, busy_s - own_s) / wall_s
    steal = max(0.0, steal_s) / wall_s
    contention = max(0.0, other - max(0, cores - threads)) + steal
    return {"other_cores": round(other, 4), "steal_cores": round(steal, 4), "contention_cores": round(contention, 4)}


def machine_cpu_seconds(stat_text: str | None = None) -> tuple[float, float, int] | None:
    """(busy CPU-seconds since boot excluding steal, steal CPU-seconds, CPUs counted) from ``/proc/stat``
    (``stat_text``: its contents, for tests); None where it cannot be read (not Linux). Guest time is already
    inside user time, so it is not added again."""
    try:
        if stat_text is None:
            with open("/proc/stat") as f:
                stat_text = f.read()
        lines = stat_text.splitlines()
        fields = lines[0].split()
        if fields[0] != "cpu":
            return None
        ticks = [int(x) for x in fields[1:9]] + [0] * max(0, 9 - len(fields))
        cpus = sum(1 for line in lines[1:] if line.startswith("cpu") and line[3:4].isdigit())
    except (OSError, ValueError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks[:8]
    hz = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / hz, steal / hz, max(1, cpus)


@contextmanager
def watch_cpu_load(threads: int) -> Iterator[dict[str, float]]:
    """Fill the yielded dict with :func:`contention_cores` of the span (plus ``wall_s``, ``cores``, ``threads``);
    left empty where ``/proc/stat`` cannot be read or the span is shorter than ``MIN_LOAD_WALL_S``."""
    load: dict[str, float] = {}
    before, own0, t0 = machine_cpu_seconds(), time.process_time(), time.perf_counter()
    yield load
    after, own1, wall = machine_cpu_seconds(), time.process_time(), time.perf_counter() - t0
    if before is None or after is None or wall < MIN_LOAD_WALL_S:
        return
    load.update(contention_cores(after[0] - before[0], own1 - own0, after[1] - before[1], wall, after[2],
                                 max(1, threads)))
    load.update({"wall_s": round(wall, 3), "cores": after[2], "threads": threads})


def busy_note(items: Sequence[ItemTiming]) -> str | None:
    """The model's busy flag from its items' loads (None: every judged item was idle enough)."""
    busy = [i for i in items if i.cpu_load and i.cpu_load["contention_cores"] > BUSY_CORES]
    if not busy:
        return None
    worst = max(busy, key=lambda i: i.cpu_load["contention_cores"])
    cores = int(worst.cpu_load["cores"])
    return (f"{len(busy)} of {len(items)} items were timed while other work competed for the CPU (up to "
            f"{worst.cpu_load['contention_cores']:.2f} of {cores} cores, item {worst.item_id}; flagged above "
            f"{BUSY_CORES:g}): not an idle machine's times; the next run re-times them")


@dataclass
class ItemTiming:
    item_id: str
    seconds: float  # full-generation time: measured, or extrapolated from the measured prefix
    measured_s: float
    audio_s: float  # duration of the audio a full generation produces
    rtf: float
    units_done: int | None = None
    units_total: int | None = None
    unit: str | None = None
    note: str = ""  # the adapter's timing_note: what the timed units leave out
    fit: dict[str, float] = field(default_factory=dict)
    peak_memory_bytes: int = 0
    memory_rise_bytes: int = 0
    memory_kind: str = ""
    depth: str = ""  # depth mode: what was cut and scaled, e.g. "denoiser at 2 of 32 blocks, scaled to 32"
    growth: bool = False  # frames extrapolated with the cache growth of a bare decoder step added
    cpu_load: dict[str, float] = field(default_factory=dict)  # watch_cpu_load's figures ({} when not judged)

    @property
    def label(self) -> str:
        note = f"; {self.note}" if self.note else ""
        if self.units_done is None or self.units_done == self.units_total:
            return f"measured in full{note}"
        bound = ""
        if self.unit == "frames":
            bound = (" (later frames: the median frame plus one bare decoder step's growth between the first and the "
                     "last cache position, linear)" if self.growth else " (lower bound: cache growth not extrapolated)")
        depth = f", {self.depth}" if self.depth else ""
        return f"measured on {self.units_done} of {self.units_total} {self.unit}{depth}{bound}{note}"


@dataclass
class ModelTiming:
    model: str
    status: str  # "measured" | "not measured"
    reason: str = ""
    load_s: float | None = None
    warmup_s: float | None = None
    items: list[ItemTiming] = field(default_factory=list)
    seconds: Estimate | None = None
    rtf: Estimate | None = None
    mode: str = "full"
    setup: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["items"] = [{**asdict(i), "label": i.label} for i in self.items]
        d["seconds"] = self.seconds.to_dict() if self.seconds else None
        d["rtf"] = self.rtf.to_dict() if self.rtf else None
        d["label"] = self.items[0].label if self.items else None
        return d


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def time_one(adapter: Generator, request: GenerationRequest, mode: TimingMode, k: int | None,
             growth: tuple[float, float] | None = None) -> ItemTiming:
    """Time one request per the protocol (the adapter is loaded and warmed up); ``growth``: the adapter's
    :meth:`Generator.unit_growth_seconds`, which an extrapolation over frames then adds."""
    stamps: list[float] = []
    total = adapter.total_units(request)
    limit = None
    if mode == "extrapolate" and total is not None:
        limit = min(k or DEFAULT_UNITS[adapter.timing_unit or "steps"], total)

    def on_unit() -> None:
        if limit is not None:  # only an extrapolation uses the timestamps; a full run is not synchronised per step
            synchronize(adapter.device)
        stamps.append(time.perf_counter())

    synchronize(adapter.device)
    with track_peak_memory(adapter.device) as memory, watch_cpu_load(_threads()) as load:
        start = time.perf_counter()
        out = adapter.generate([request], max_units=limit, on_unit=on_unit)[0]
        synchronize(adapter.device)
        measured = time.perf_counter() - start
    done = len(stamps) if total is not None else None
    seconds, fit = measured, {}
    if limit is not None and done is not None and done < total:
        deltas = [b - a for a, b in itertools.pairwise(stamps)]  # the first unit also holds set-up
        fit = {f"median_{(adapter.timing_unit or 'steps').rstrip('s')}_s": float(np.median(deltas))}
        if growth is not None:
            seconds = extrapolate_growing_units(measured, deltas, done, total, *growth)
            fit.update({"bare_step_first_s": growth[0], "bare_step_last_s": growth[1]})
        else:
            seconds = extrapolate_steps(measured, deltas, done, total)
    audio_s = adapter.output_seconds(request) if limit is not None else out.duration_s
    return ItemTiming(request.item_id, seconds, measured, audio_s, seconds / audio_s, done, total,
                      unit=adapter.timing_unit, note=adapter.timing_note, fit=fit, peak_memory_bytes=memory.peak_bytes,
                      memory_rise_bytes=memory.rise_bytes, memory_kind=memory.kind, growth=growth is not None,
                      cpu_load=dict(load))


MIN_TIMED_ITEMS = 2
CI_MIN_ITEMS = next(n for n in range(1, 100) if median_ci_ranks(n) is not None)  # 6 at 95%
CI_GRACE = 1.5  # the timing budget stretches to this many times itself when that reaches CI_MIN_ITEMS


def budget_reaches_ci(timed: int, want: int, spent_s: float, budget_s: float) -> bool:
    """Whether a model whose timing budget is spent after ``timed`` items goes on to :data:`CI_MIN_ITEMS`: fewer
    were timed, that many were asked for, and at the pace so far they fit in :data:`CI_GRACE` x the budget.

    Without it a model whose items take just over budget / 6 (SAMUeL's 25-35 s against 150 s on a slow VM) would
    lose its confidence interval to a 5th item that ended the budget; a slow model (50 s items) still stops."""
    return timed < CI_MIN_ITEMS <= want and spent_s / timed * CI_MIN_ITEMS <= CI_GRACE * budget_s


def depth_reason(adapter: Generator, mode: TimingMode, need: int, have: int) -> str | None:
    """Why ``adapter`` is timed in depth mode (:func:`time_model_by_depth`), or None when it is timed whole.

    Depth mode when asked for, and by default (``extrapolate``) for a model that offers it (random weights only:
    :meth:`Generator.timing_depths`) when the whole model does not fit in ``have`` bytes, or when it runs on a CPU:
    its blocks are identical, so two of them timed and scaled give the full-depth time, while a whole-model pass
    costs hours there (ACE-Step's 4.2B DiT in bf16 fits in 24 GiB, yet on two AMX cores its probe ran over 10
    minutes without finishing a 2 s window; docs/benchmarks.md)."""
    if mode == "depth":
        return "asked for (--timing depth)"
    if mode != "extrapolate" or adapter.timing_depths() is None:
        return None
    if need > have:
        return (f"the whole model does not fit: needs about {need / GiB:.1f} GiB, {have / GiB:.1f} GiB available "
                f"on {adapter.device}")
    if str(adapter.device).split(":")[0] == "cpu":
        return "random weights on a CPU: two of the denoiser's identical blocks are timed and scaled to full depth"
    return None


def time_model(adapter: Generator, requests: Sequence[GenerationRequest], *, mode: TimingMode, k: int | None = None,
               n_items: int | None = None, budget_s: float | None = None, log: Callable[[str], None] = print
               ) -> ModelTiming:
    """The whole protocol for one model. Never raises for a model that cannot run or an item that fails: it says
    why instead.

    ``requests`` are candidates in order: ``n_items`` of them are timed (all when None); an item that fails
    (:class:`ItemError`, e.g. an unreadable vocal) is skipped, named in ``setup["skipped_items"]``, and the next
    candidate takes its place. ``budget_s``: stop timing further items once the timed items have taken this long
    (at least :data:`MIN_TIMED_ITEMS` are always timed, and :data:`CI_MIN_ITEMS` when :func:`budget_reaches_ci`);
    the result says so, and n says how many were timed.
    """
    try:
        return _time_whole(adapter, requests, mode=mode, k=k, n_items=n_items, budget_s=budget_s, log=log)
    finally:  # used or not (no item ran, out of memory): a later load (a sweep, a rerun) does not take it again
        adapter.plan_precision_distance(None)


def _time_whole(adapter: Generator, requests: Sequence[GenerationRequest], *, mode: TimingMode, k: int | None,
                n_items: int | None, budget_s: float | None, log: Callable[[str], None]) -> ModelTiming:
    """:func:`time_model`'s protocol, the precision-distance plan left to the caller to clear."""
    result = ModelTiming(adapter.name, "not measured", mode=mode)
    result.setup = {"device": adapter.device, "threads": _threads(), "batch_size": 1,
                    "dtype": adapter.precision(),
                    "weights": adapter.status.kind}
    if adapter.parameter_counts() is None:
        result.reason = "audio files made elsewhere: no inference to time"
        return result
    need, have = adapter.memory_estimate_bytes(), available_bytes(adapter.device)
    result.setup.update({"memory_needed_bytes": need, "memory_available_bytes": have})
    why_depth = depth_reason(adapter, mode, need, have)
    if why_depth is not None:
        return time_model_by_depth(adapter, requests, k=k, n_items=n_items, budget_s=budget_s, log=log,
                                   why=why_depth)
    if need > have:
        result.reason = (f"does not fit: needs about {need / GiB:.1f} GiB ({adapter.bytes_per_param() * 8}-bit "
                         f"weights + 25%), {have / GiB:.1f} GiB available on {adapter.device}")
        return result
    want = len(requests) if n_items is None else min(n_items, len(requests))
    skipped: list[dict[str, str]] = result.setup.setdefault("skipped_items", [])
    try:
        first = next(iter(requests), None)
        if not adapter.loaded:  # the fp32 side of the precision distance is taken at load, on the first item
            adapter.plan_precision_distance(first)
        t0, fresh = time.perf_counter(), not adapter.loaded
        adapter.load()
        synchronize(adapter.device)
        result.load_s = time.perf_counter() - t0
        if fresh and adapter.fp32_reference_s > 0:  # not loading: the comparison with fp32 (recorded beside it)
            result.load_s -= adapter.fp32_reference_s
            result.setup["fp32_reference_at_load_s"] = round(adapter.fp32_reference_s, 3)
        t0 = time.perf_counter()
        warm_k = None if mode == "full" else 2
        for request in requests:  # warm-up (kernels, caches, allocator) on the first item that runs
            try:
                adapter.generate([request], max_units=warm_k)
                break
            except ItemError as err:
                skipped.append({"item_id": request.item_id, "message": str(err)})
        else:
            result.reason = f"no item could be generated ({len(skipped)} failed; the first: {skipped[0]['message']})"
            return result
        result.warmup_s = time.perf_counter() - t0
        growth = None
        if mode == "extrapolate" and adapter.timing_unit == "frames":
            total = adapter.total_units(next(r for r in requests if r.item_id not in {s["item_id"] for s in skipped}))
            growth = adapter.unit_growth_seconds(total) if total else None
            if growth is not None:
                result.setup["unit_growth_s"] = {"first": growth[0], "last": growth[1]}
                if not growth[1] >= growth[0]:  # noise beyond the growth (a busy machine): a sum that can go negative
                    result.setup["unit_growth_s"]["not_used"] = (
                        f"one bare decoder step timed {growth[1]:.4f} s with {total - 1} positions cached, faster "
                        f"than with 1 ({growth[0]:.4f} s): timing noise larger than the cache's growth; the frames "
                        "are extrapolated without it, a lower bound")
                    log(f"  time {adapter.name}: {result.setup['unit_growth_s']['not_used']}")
                    growth = None
        spent = 0.0
        for request in requests:
            if len(result.items) >= want:
                break
            if any(s["item_id"] == request.item_id for s in skipped):
                continue
            if budget_s is not None and len(result.items) >= MIN_TIMED_ITEMS and spent >= budget_s:
                if budget_reaches_ci(len(result.items), want, spent, budget_s):  # checked again after each item
                    if "budget_stretched" not in result.setup:
                        result.setup["budget_stretched"] = (
                            f"the {budget_s:.0f} s timing budget was spent after {len(result.items)} items; "
                            f"timing went on toward {CI_MIN_ITEMS}, the fewest with a 95% CI, while their pace "
                            f"projected at most {CI_GRACE:g}x the budget")
                        log(f"  time {adapter.name}: {result.setup['budget_stretched']}")
                else:
                    result.setup["stopped_early"] = (f"timed {len(result.items)} of {want} items: the per-model "
                                                     f"timing budget of {budget_s:.0f} s was spent (--time-budget)")
                    log(f"  time {adapter.name}: {result.setup['stopped_early']}")
                    break
            try:
                item = time_one(adapter, request, mode, k, growth)
            except ItemError as err:
                skipped.append({"item_id": request.item_id, "message": str(err)})
                continue
            spent += item.measured_s
            result.items.append(item)
            contention = item.cpu_load.get("contention_cores", 0.0)
            busy = f"; BUSY: other work took {contention:.2f} cores" if contention > BUSY_CORES else ""
            log(f"  time {adapter.name} {len(result.items)}/{want}: {item.seconds:.2f} s ({item.label}), "
                f"RTF {item.rtf:.3f}{busy}")
    except (MemoryError, RuntimeError) as err:
        if not is_out_of_memory(err):
            raise
        result.reason = f"ran out of memory: {(str(err).splitlines() or [''])[0]}"
        return result
    if not result.items:
        result.reason = f"no item could be timed ({len(skipped)} failed)"
        return result
    result.status = "measured"
    note = busy_note(result.items)
    if note is not None:
        result.setup["busy"] = note
        log(f"  time {adapter.name}: {note}")
    result.seconds = median_ci([i.seconds for i in result.items])
    result.rtf = median_ci([i.rtf for i in result.items])
    record_precision_distance(result, adapter, next(r for r in requests if r.item_id == result.items[0].item_id),
                              log)
    return result


def record_precision_distance(result: ModelTiming, adapter: Generator, request: GenerationRequest,
                              log: Callable[[str], None]) -> None:
    """A model timed in a faster precision than fp32 gets its distance from fp32 beside its time
    (:meth:`Generator.precision_distance`, on ``request``): ``setup["fp32_distance"]`` (the label Table II shows)
    and ``setup["fp32_distance_db"]`` (the figures). A failure to compare is recorded, never raised."""
    try:
        distance = adapter.precision_distance(request)
    except Exception as err:  # the times stand; only the comparison is missing, and says why
        result.setup["fp32_distance"] = f"not measured: {type(err).__name__}: {err}"
        log(f"  time {adapter.name}: distance from fp32 not measured: {err}")
        return
    if distance is None:
        return
    result.setup["fp32_distance"] = distance.label()
    result.setup["fp32_distance_db"] = distance.to_dict()
    log(f"  time {adapter.name}: {adapter.precision()} {distance.label()}")


DEPTH_REPEATS = 3  # timed denoiser calls per depth (after one warm-up call)


def time_model_by_depth(adapter: Generator, requests: Sequence[GenerationRequest], *, k: int | None,
                        n_items: int | None, budget_s: float | None, log: Callable[[str], None], why: str
                        ) -> ModelTiming:
    """Depth mode, for a model too big or too slow to time whole here (random weights; timing does not depend on
    them): time whole generations (k steps, extrapolated) with the denoiser cut to ``layers`` of its identical
    blocks, time one denoiser call at ``layers`` and ``2 * layers`` blocks on the inputs of the last generation,
    and scale each item up to full depth (:func:`bench.stats.extrapolate_depth`). Everything outside the block stack
    runs at its real size. Memory: the full model's estimate; the measured peak is the cut model's."""
    depths = adapter.timing_depths()
    result = ModelTiming(adapter.name, "not measured", mode="depth")
    if depths is None:
        result.reason = "this model has no reduced-depth timing (--timing depth): use full or extrapolate"
        return result
    layers, full = depths
    log(f"  time {adapter.name}: depth mode ({why}): the denoiser at {layers} of {full} blocks, scaled up")
    shallow = adapter.at_depth(layers)
    try:
        timed = time_model(shallow, requests, mode="extrapolate", k=k, n_items=n_items, budget_s=budget_s, log=log)
        if timed.status != "measured":
            timed.mode, timed.reason = "depth", f"at {layers} of {full} blocks: {timed.reason}"
            return timed
        calls = shallow.denoiser_call_seconds((layers, 2 * layers), repeats=DEPTH_REPEATS)
    finally:
        shallow.unload()
    try:
        scaled = [extrapolate_depth(item.seconds, calls.seconds, calls.calls_per_step, item.units_total or 1,
                                    layers, full) for item in timed.items]
    except ValueError as err:  # the cut model's times are not the model's: kept apart, never as its figures
        timed.setup["cut_model_items"] = [{**asdict(i), "label": i.label} for i in timed.items]
        timed.items, timed.seconds, timed.rtf = [], None, None
        timed.status, timed.mode, timed.reason = "not measured", "depth", f"depth mode: {err}"
        return timed
    for item, (seconds, per_block) in zip(timed.items, scaled, strict=True):
        item.fit.update({"seconds_at_depth": item.seconds, "block_call_s": per_block,
                         "calls_per_step": calls.calls_per_step,
                         **{f"call_s_{d}_blocks": s for d, s in sorted(calls.seconds.items())}})
        item.seconds, item.rtf = seconds, seconds / item.audio_s
        item.depth = f"denoiser at {layers} of {full} blocks, scaled to {full} (random weights)"
    timed.mode = "depth"
    timed.setup.update({
        "depth": {"layers": layers, "full_layers": full, "why": why, "call_seconds": calls.seconds,
                  "calls_per_step": calls.calls_per_step, "repeats": DEPTH_REPEATS},
        "memory_needed_bytes": adapter.memory_estimate_bytes(),
        "memory_note": f"peak memory measured with the denoiser at {layers} of {full} blocks; the full model "
                       "needs memory_needed_bytes",
    })
    timed.seconds = median_ci([i.seconds for i in timed.items])
    timed.rtf = median_ci([i.rtf for i in timed.items])
    for item in timed.items:
        log(f"  time {adapter.name} {item.item_id}: {item.seconds:.1f} s at full depth ({item.label}), "
            f"RTF {item.rtf:.2f}")
    return timed
