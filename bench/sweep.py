"""The steps x precision sweep (issue 15): one item generated at each number of sampler steps in each precision,
timed, and compared with fp32.

Two distances per point, both SNRs in dB of the point's audio against an fp32 result of the same item, seed and
weights: against fp32 at the same number of steps (what the precision costs) and against fp32 at the most steps
swept (what fewer steps cost, together with the precision). With random weights these measure the arithmetic only,
and the sweep says so; with trained weights they are a proxy for quality, not a quality score.

Models with a sampler-step knob and a precision knob take part (:data:`SWEEPABLE`). Each precision gets one
adapter, warmed up once (one step and the decode: kernels, compiled Snake), then one timed generation per step
count. Results go to ``DIR/sweep/<model>.json`` (written atomically, keyed by the model key and the sweep
settings, so a rerun with the same settings reuses them and a changed one redoes them); the report plots them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from baselines.base import GenerationRequest, Generator, snr_db
from bench.timing import synchronize

SWEEP_FORMAT = "samuel-bench-sweep/1"
SWEEP_PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class SweepKnobs:
    """The adapter option that sets a model's precision, and each swept precision's value of it (the steps are set
    by :meth:`Generator.set_sampling_steps`)."""

    precision: str
    values: Mapping[str, str]


SWEEPABLE: dict[str, SweepKnobs] = {
    "samuel": SweepKnobs("precision", {"fp32": "fp32", "bf16": "bf16"}),
    "stable-audio-open": SweepKnobs("dtype", {"fp32": "float32", "bf16": "bfloat16"}),
}


@dataclass(frozen=True)
class SweepPoint:
    precision: str
    steps: int
    seconds: float  # one whole generation of the item, wall clock, after the precision's warm-up
    audio_s: float
    snr_vs_fp32_same_steps_db: float | None  # None for fp32 itself
    snr_vs_fp32_most_steps_db: float | None  # None for the reference point itself

    @property
    def rtf(self) -> float:
        return self.seconds / self.audio_s


def sweep_snrs(audio: Mapping[tuple[str, int], np.ndarray]) -> dict[tuple[str, int], tuple[float | None,
                                                                                           float | None]]:
    """Per (precision, steps): (SNR against fp32 at the same steps, SNR against fp32 at the most steps), from the
    generated audio of every point; None where the reference is the point itself or was not generated. Audio of
    different lengths is compared over the common length."""
    fp32_steps = [s for p, s in audio if p == "fp32"]
    most = ("fp32", max(fp32_steps)) if fp32_steps else None
    out: dict[tuple[str, int], tuple[float | None, float | None]] = {}
    for (precision, steps), samples in audio.items():
        same_key = ("fp32", steps)
        same = (None if precision == "fp32" or same_key not in audio else _snr(audio[same_key], samples))
        best = None if most is None or most == (precision, steps) else _snr(audio[most], samples)
        out[(precision, steps)] = (same, best)
    return out


def _snr(reference: np.ndarray, other: np.ndarray) -> float:
    n = min(reference.shape[-1], other.shape[-1])
    return snr_db(reference[..., :n], other[..., :n])


def sweepable_precisions(precisions: Sequence[str], device: str) -> tuple[list[str], dict[str, str]]:
    """(the precisions to sweep on ``device``, {precision left out: why}): bf16 is left out on a CPU without oneDNN's
    bf16 kernels, where it runs on reference loops 75-190x slower than fp32 (one tiny-preset clip took over 15
    minutes; samuel.generate.cpu_bf16_kernels_missing)."""
    from samuel.generate import cpu_bf16_kernels_missing

    left_out: dict[str, str] = {}
    if "bf16" in precisions and str(device).split(":")[0] == "cpu" and (why := cpu_bf16_kernels_missing()):
        left_out["bf16"] = why
    return [p for p in precisions if p not in left_out], left_out


def run_sweep(make_adapter: Callable[[str], Generator], request: GenerationRequest, *, steps: Sequence[int],
              precisions: Sequence[str] = SWEEP_PRECISIONS, log: Callable[[str], None] = print) -> list[SweepPoint]:
    """Generate ``request`` at every step count in every precision (``make_adapter(precision)`` gives a loaded or
    loadable adapter with that precision's option set) and time each; see the module docstring."""
    audio: dict[tuple[str, int], np.ndarray] = {}
    timed: dict[tuple[str, int], tuple[float, float]] = {}
    for precision in precisions:
        adapter = make_adapter(precision)
        try:
            adapter.load()
            adapter.generate([request], max_units=1)  # warm-up: kernels, caches, the compiled Snake
            for n in sorted(set(steps)):
                adapter.set_sampling_steps(n)
                synchronize(adapter.device)  # on a GPU, time the work, not its launch
                start = time.perf_counter()
                out = adapter.generate([request])[0]
                synchronize(adapter.device)
                seconds = time.perf_counter() - start
                audio[(precision, n)] = np.asarray(out.audio, dtype=np.float32)
                timed[(precision, n)] = (seconds, out.duration_s)
                log(f"  sweep {adapter.name}: {precision} x {n} steps: {seconds:.2f} s (RTF "
                    f"{seconds / out.duration_s:.3f})")
        finally:
            adapter.unload()
    snrs = sweep_snrs(audio)
    return [SweepPoint(p, n, round(timed[(p, n)][0], 4), timed[(p, n)][1], *snrs[(p, n)]) for p, n in audio]


def sweep_record(model: str, key: Mapping[str, Any], points: Sequence[SweepPoint], *, request: GenerationRequest,
                 steps: Sequence[int], precisions: Sequence[str], weights: str, provenance: Mapping[str, Any],
                 not_swept: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "format": SWEEP_FORMAT, "model": model, "key": dict(key), "weights": weights,
        "settings": {"steps": sorted(set(steps)), "precisions": list(precisions)},
        "item": {"item_id": request.item_id, "seed": request.seed, "duration_s": request.duration_s},
        "distance": "SNR in dB of the point's audio against fp32 on the same item, seed and weights, at the same "
                    "steps and at the most steps swept" + ("; RANDOM weights: the arithmetic only, not quality"
                                                           if weights == "random" else ""),
        "provenance": dict(provenance),
        "points": [asdict(p) for p in points],
        "not_swept": dict(not_swept or {}),  # precision asked for -> why it was left out on this device
    }


def read_sweep(path: Path) -> dict[str, Any]:
    """A sweep record read back and checked; ValueError naming the file and the problem otherwise."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: unreadable sweep record: {err}") from None
    found = data.get("format") if isinstance(data, dict) else None
    if found != SWEEP_FORMAT:
        raise ValueError(f"{path}: not a sweep record (format {found!r}, expected {SWEEP_FORMAT!r})")
    points = data.get("points")
    if not isinstance(points, list) or not points:
        raise ValueError(f"{path}: a sweep record without points")
    fields = {f: (int, float) for f in ("steps", "seconds", "audio_s")}
    for i, point in enumerate(points):
        if not isinstance(point, dict) or point.get("precision") not in SWEEP_PRECISIONS:
            raise ValueError(f"{path}: point {i} has no known precision")
        for name, kinds in fields.items():
            value = point.get(name)
            if not isinstance(value, kinds) or isinstance(value, bool) or not np.isfinite(value) or value <= 0:
                raise ValueError(f"{path}: point {i}: {name} must be a positive number, got {value!r}")
        for name in ("snr_vs_fp32_same_steps_db", "snr_vs_fp32_most_steps_db"):
            value = point.get(name)
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
                raise ValueError(f"{path}: point {i}: {name} must be a number or null, got {value!r}")
    return data


def read_sweeps(folder: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every sweep record under ``folder`` (a run folder's ``sweep/``), and one message per file that failed."""
    records, problems = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            records.append(read_sweep(path))
        except ValueError as err:
            problems.append(str(err))
    return records, problems
