"""The harness passes over one output folder: prepare -> params -> generate -> time -> results.json.

Folder layout (everything written atomically; a rerun skips what exists, so an interrupted run resumes):

    DIR/manifest.json                       the N matched items
    DIR/inputs/                             the embedded synthetic set, when no --vocals was given
    DIR/samples/<model>/<item>__<sid>.flac  one output per (model, item); `.random` before .flac for random weights
    DIR/samples/<model>/<item>__<sid>.json  its provenance (written after the audio: both present = done)
    DIR/records/<model>.rank<R>.jsonl       one line per item and attempt (ok / skipped / error)
    DIR/timing/<model>.rank<R>.json         the timing protocol's per-item figures
    DIR/results.json                        merged results with provenance (rank 0)

Under ``torchrun`` every rank takes a disjoint slice of the manifest (items r, r + W, ...) for generation and
timing and writes its own record files; rank 0 waits for all (a barrier) and merges.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from baselines import registry
from baselines.base import (
    RANDOM_WEIGHTS_LABEL,
    AdapterError,
    GenerationRequest,
    Generator,
    ItemError,
    WeightsChoice,
    WeightsMode,
)
from bench.manifest import MANIFEST_NAME, Item, Manifest, folder_manifest, safe_name, sample_id, synthetic_manifest
from bench.progress import Stages
from bench.stats import median_ci
from bench.timing import TimingMode, time_model

RESULTS_NAME = "results.json"
RESULTS_FORMAT = "samuel-bench-results/1"
SAMPLE_SUBTYPE = "PCM_24"  # FLAC keeps [-1, 1]: clipping is measured and recorded before writing


@dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on; it travels into results.json."""

    out: Path
    models: tuple[str, ...]
    n: int = 100
    weights: WeightsMode = "auto"
    weights_paths: dict[str, str] = field(default_factory=dict)  # model -> local path or hub id
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> adapter options
    vocals: Path | None = None
    references: Path | None = None
    prompt: str | None = None
    duration_s: float | None = None
    seed: int = 0
    timing: str = "auto"  # auto | full | extrapolate
    time_items: int = 6  # items timed per model (6 is the fewest that give a 95% CI for a median)
    time_budget_s: float | None = -1.0  # per model; -1: auto (200 s on CPU, none on GPU); None: no budget
    units: int | None = None  # k for extrapolate
    generate_random: bool = False  # also write samples from random-weight models (labelled; never scored)
    retime: bool = False  # re-time models whose stored timing matches (default: reuse it on resume)
    device: str = "cpu"
    passes: tuple[str, ...] = ("params", "generate", "time")
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        d = {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}
        d["models"], d["passes"] = list(self.models), list(self.passes)
        return d


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_dist() -> Dist:
    """Under torchrun (WORLD_SIZE > 1): a gloo process group for the barrier before rank 0 merges."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return Dist(dist.get_rank(), world)


def rank_device(device: str, env: dict[str, str] | None = None) -> str:
    """Under torchrun, plain ``cuda`` means this rank's own GPU, ``cuda:LOCAL_RANK``; an explicit index or the CPU
    is kept as given."""
    env = os.environ if env is None else env
    if device == "cuda" and int(env.get("WORLD_SIZE", "1")) > 1:
        return f"cuda:{int(env.get('LOCAL_RANK', '0'))}"
    return device


def barrier(d: Dist) -> None:
    if d.world > 1:
        import torch.distributed as dist

        dist.barrier()


def finish_dist(d: Dist) -> None:
    if d.world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()


# -- prepare --------------------------------------------------------------------------------------------------


def prepare_manifest(cfg: RunConfig, log: Callable[[str], None]) -> Manifest:
    """The run's manifest: reused when DIR/manifest.json exists (a resume), else built and written."""
    path = cfg.out / MANIFEST_NAME
    if path.exists():
        manifest = Manifest.read(path)
        log(f"manifest: reusing {path} ({len(manifest.items)} items, {manifest.source})")
        if len(manifest.items) != cfg.n:
            log(f"manifest: note: --n {cfg.n} differs from the existing manifest's {len(manifest.items)} items; "
                "the manifest wins (use a new --out for another n)")
        return manifest
    from bench.synthetic import DEFAULT_DURATION_S

    duration = cfg.duration_s or DEFAULT_DURATION_S
    if cfg.vocals is not None:
        kwargs = {"prompt": cfg.prompt} if cfg.prompt else {}
        manifest = folder_manifest(cfg.vocals, cfg.n, references=cfg.references, duration_s=duration,
                                   base_seed=cfg.seed, **kwargs)
    else:
        log(f"manifest: writing the embedded synthetic set ({cfg.n} items, {duration:.2f} s) to {cfg.out / 'inputs'}")
        manifest = synthetic_manifest(cfg.out / "inputs", cfg.n, duration_s=duration, base_seed=cfg.seed)
    manifest.write(path)
    return manifest


# -- adapters -------------------------------------------------------------------------------------------------


def build_adapter(spec: str, cfg: RunConfig) -> Generator:
    name = registry.parse_outputs_spec(spec)[0] if spec.startswith(registry.OUTPUTS_PREFIX) else spec
    choice = WeightsChoice(cfg.weights, cfg.weights_paths.get(name))
    return registry.create(spec, choice, device=cfg.device, **cfg.model_options.get(name, {}))


def model_key(adapter: Generator) -> dict[str, Any]:
    """What makes two runs of a model the same model for sample ids: name, weights, options."""
    s = adapter.status
    return {"name": adapter.name, "weights": s.kind, "weights_source": s.source if s.kind != "random" else None,
            "weights_sha256": s.sha256, "options": {k: str(v) for k, v in sorted(adapter.options.items())}}


# -- generate -------------------------------------------------------------------------------------------------


def sample_paths(out: Path, model: str, item: Item, sid: str, random_weights: bool) -> tuple[Path, Path]:
    stem = f"{item.item_id}__{sid}{'.random' if random_weights else ''}"
    folder = out / "samples" / safe_name(model)
    return folder / f"{stem}.flac", folder / f"{stem}.json"


def append_record(path: Path, record: dict[str, Any]) -> None:
    """One JSON line per attempt, flushed and synced: an interrupt loses at most the line being written, and
    :func:`read_records` skips a torn last line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(record, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_records(paths: list[Path]) -> list[dict[str, Any]]:
    out = []
    for path in paths:
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by an interrupt; its item is redone or found done on resume
    return out


def generate_pass(adapter: Generator, items: tuple[Item, ...], cfg: RunConfig, d: Dist,
                  log: Callable[[str], None]) -> dict[str, int]:
    """Write one sample per item for this rank; skip what exists; record every attempt. Returns counts."""
    from samuel.atomic import atomic_write
    from samuel.audio import write_audio

    counts = {"ok": 0, "skipped": 0, "error": 0}
    random_weights = adapter.status.is_random
    key = model_key(adapter)
    records = cfg.out / "records" / f"{safe_name(adapter.name)}.rank{d.rank}.jsonl"
    todo = []
    for item in items:
        sid = sample_id(item, key)
        audio_path, meta_path = sample_paths(cfg.out, adapter.name, item, sid, random_weights)
        if audio_path.exists() and meta_path.exists():
            counts["skipped"] += 1
            append_record(records, {"model": adapter.name, "item_id": item.item_id, "sample_id": sid,
                                    "status": "skipped", "path": str(audio_path)})
        else:
            todo.append((item, sid, audio_path, meta_path))
    bar = _bar(len(todo), f"generate {adapter.name}", cfg.progress and d.main)
    for item, sid, audio_path, meta_path in todo:
        record: dict[str, Any] = {"model": adapter.name, "item_id": item.item_id, "sample_id": sid,
                                  "weights": adapter.status.kind}
        try:
            t0 = time.perf_counter()
            out = adapter.generate([item.request()])[0]
            seconds = time.perf_counter() - t0
            audio = out.audio.astype(np.float32)
            peak = float(np.abs(audio).max()) if audio.size else 0.0
            clipped = float(np.mean(np.abs(audio) > 1.0)) if audio.size else 0.0
            write_audio(audio_path, audio, out.sample_rate, subtype=SAMPLE_SUBTYPE)
            meta = {**record, "path": audio_path.name, "sample_rate": out.sample_rate,
                    "duration_s": out.duration_s, "seconds": seconds, "rtf": seconds / max(out.duration_s, 1e-9),
                    "peak_abs": peak, "clipped_share_before_write": clipped, "item": item.key(),
                    "seed": item.seed, "prompt": item.prompt, "vocal": item.vocal, "info": out.info,
                    "model_key": key, "label": RANDOM_WEIGHTS_LABEL if random_weights else None}
            atomic_write(meta_path, lambda tmp, m=meta: Path(tmp).write_text(json.dumps(m, indent=1, default=str)))
            record.update(status="ok", path=str(audio_path), seconds=seconds)
            counts["ok"] += 1
        except (ItemError, AdapterError, ValueError, OSError) as err:
            record.update(status="error", message=str(err))
            counts["error"] += 1
            log(f"  {adapter.name}: {err}")
        except Exception as err:  # a model failing inside one item (out of memory, a shape bug): that item only
            record.update(status="error", message=f"{type(err).__name__}: {err}")
            counts["error"] += 1
            log(f"  {adapter.name}: item {item.item_id}: {type(err).__name__}: {err}")
            _release_memory()
        append_record(records, record)
        bar.update(1)
    bar.close()
    return counts


def _bar(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, file=sys.stderr, leave=False)


# -- time -----------------------------------------------------------------------------------------------------


def timing_mode(adapter: Generator, cfg: RunConfig) -> TimingMode:
    if cfg.timing in ("full", "extrapolate"):
        return cfg.timing  # type: ignore[return-value]
    return adapter.default_timing_mode


def timing_identity(adapter: Generator, items: tuple[Item, ...], cfg: RunConfig) -> dict[str, Any]:
    """What a stored timing must match to be reused on resume: the model, the protocol, the items, the machine."""
    import torch

    return {"model": model_key(adapter), "mode": timing_mode(adapter, cfg), "units": cfg.units,
            "budget_s": time_budget(cfg), "items": [i.key() for i in items], "device": cfg.device,
            "threads": torch.get_num_threads(), "torch": torch.__version__}


def time_pass(adapter: Generator, items: tuple[Item, ...], cfg: RunConfig, d: Dist,
              log: Callable[[str], None]) -> dict[str, Any]:
    """Time the model, or reuse this rank's stored timing when its identity matches (a resumed run does not
    re-time a finished model; --retime forces it). A model is timed whole: an interrupted model is re-timed."""
    path = cfg.out / "timing" / f"{safe_name(adapter.name)}.rank{d.rank}.json"
    identity = timing_identity(adapter, items, cfg)
    if not cfg.retime:
        try:
            stored = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            stored = {}
        if stored.get("identity") == json.loads(json.dumps(identity, default=str)):
            log(f"  time: reusing {path.name} (same model, protocol, items and machine; --retime re-times)")
            return {**stored, "reused": True}
    requests: list[GenerationRequest] = [i.request() for i in items]
    timing = time_model(adapter, requests, mode=timing_mode(adapter, cfg), k=cfg.units,
                        budget_s=time_budget(cfg), log=log)
    data = {**timing.to_dict(), "identity": identity}
    _write_json(path, data)
    return data


CPU_TIME_BUDGET_S = 200.0  # keeps `samuel-eval --models all --n 100` on a 2-core CPU near 30 minutes


def time_budget(cfg: RunConfig) -> float | None:
    if cfg.time_budget_s is not None and cfg.time_budget_s < 0:
        return None if cfg.device.startswith("cuda") else CPU_TIME_BUDGET_S
    return cfg.time_budget_s


def _write_json(path: Path, data: Any) -> Path:
    from samuel.atomic import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=1, default=str) + "\n"))


# -- provenance and merge -------------------------------------------------------------------------------------


def provenance(cfg: RunConfig, argv: list[str] | None = None) -> dict[str, Any]:
    """Versions, git commit and dirty flag, device, threads, seeds and the exact command."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    versions: dict[str, str | None] = {"python": platform.python_version(), "torch": torch.__version__}
    # installed distribution metadata: no package is imported just to read its version
    for dist in ("samuel-bench", "numpy", "transformers", "diffusers", "huggingface-hub", "jukebox-infer",
                 "soundfile", "soxr", "scipy", "torchsde"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = None
    device = {"requested": cfg.device, "cpu": cpu_name(),
              "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if cfg.device.startswith("cuda") and torch.cuda.is_available():
        device["gpu"] = torch.cuda.get_device_name(torch.device(cfg.device))
    return {"command": " ".join(argv if argv is not None else sys.argv), "versions": versions, "git": git_state(),
            "device": device, "seed": cfg.seed, "platform": platform.platform(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo on Linux; platform.processor() is empty there)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_state() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": dirty if commit else None}


def merge_timing(model: str, out: Path) -> dict[str, Any] | None:
    """Every rank's timing file for ``model`` -> one record with the median and CI over all timed items."""
    files = sorted((out / "timing").glob(f"{safe_name(model)}.rank*.json"))
    parts = [json.loads(p.read_text()) for p in files]
    if not parts:
        return None
    measured = [p for p in parts if p["status"] == "measured"]
    if not measured:
        return parts[0]
    merged = dict(measured[0])
    # a rank that could not measure (e.g. out of memory on its GPU) is named, not silently left out of the pool
    merged["unmeasured_ranks"] = [{"file": f.name, "reason": p.get("reason")}
                                  for f, p in zip(files, parts, strict=True) if p["status"] != "measured"]
    merged["items"] = [i for p in measured for i in p["items"]]
    merged["load_s"] = max(p["load_s"] for p in measured)  # the slowest rank's; each rank loads its own copy
    merged["load_s_per_rank"] = [p["load_s"] for p in measured]
    merged["seconds"] = median_ci([i["seconds"] for i in merged["items"]]).to_dict()
    merged["rtf"] = median_ci([i["rtf"] for i in merged["items"]]).to_dict()
    merged["peak_memory_bytes"] = max(i["peak_memory_bytes"] for i in merged["items"])
    merged["ranks"] = len(parts)
    return merged


def merge_generation(model: str, out: Path, manifest: Manifest) -> dict[str, Any]:
    """The latest record of each item (a resumed run appends; the last word counts), and what is missing."""
    latest: dict[str, dict[str, Any]] = {}
    for rec in read_records(sorted((out / "records").glob(f"{safe_name(model)}.rank*.jsonl"))):
        latest[rec["item_id"]] = rec
    ok = [r for r in latest.values() if r["status"] in ("ok", "skipped")]
    errors = [{"item_id": r["item_id"], "message": r.get("message")} for r in latest.values()
              if r["status"] == "error"]
    missing = [i.item_id for i in manifest.items if i.item_id not in latest]
    times = [r["seconds"] for r in latest.values() if r.get("status") == "ok" and r.get("seconds") is not None]
    return {"n_ok": len(ok), "n_error": len(errors), "errors": errors, "not_attempted": missing,
            "samples": sorted(r["path"] for r in ok if r.get("path")),
            "generation_seconds": median_ci(times).to_dict() if times else None}


def write_results(cfg: RunConfig, manifest: Manifest, models: dict[str, dict[str, Any]], prov: dict[str, Any]
                  ) -> Path:
    for name, entry in models.items():
        if "time" in cfg.passes:
            entry["timing"] = merge_timing(name, cfg.out)
        if "generate" in cfg.passes and entry.get("generated"):
            entry["generation"] = merge_generation(name, cfg.out, manifest)
    data = {"format": RESULTS_FORMAT, "config": cfg.to_dict(), "provenance": prov,
            "manifest": {"path": str(cfg.out / MANIFEST_NAME), "source": manifest.source, "n": len(manifest.items),
                         "base_seed": manifest.base_seed},
            "models": models}
    return _write_json(cfg.out / RESULTS_NAME, data)


# -- the whole run ----------------------------------------------------------------------------------------------


def run(cfg: RunConfig, log: Callable[[str], None] | None = None, argv: list[str] | None = None,
        stages: Stages | None = None) -> dict[str, Any]:
    """All passes for every model; returns the merged results (rank 0) or this rank's summary. ``stages`` (rank 0)
    gets one stage per model."""
    d = init_dist()
    if (device := rank_device(cfg.device)) != cfg.device:
        cfg = replace(cfg, device=device)
        import torch

        torch.cuda.set_device(device)
    say = log or (lambda s: print(s, file=sys.stderr))
    if not d.main:
        say = lambda s: None  # noqa: E731 (only rank 0 talks)
    cfg.out.mkdir(parents=True, exist_ok=True)
    if d.main:
        manifest = prepare_manifest(cfg, say)
    barrier(d)
    if not d.main:
        manifest = Manifest.read(cfg.out / MANIFEST_NAME)
    prov = provenance(cfg, argv)
    models: dict[str, dict[str, Any]] = {}
    mine = manifest.shard(d.rank, d.world)
    for i, spec in enumerate(cfg.models):
        if stages is not None and d.main:
            stages.start(f"model {i + 1}/{len(cfg.models)} {spec}: {', '.join(cfg.passes)}")
        else:
            say(f"[{i + 1}/{len(cfg.models)}] {spec}")
        entry: dict[str, Any] = {"spec": spec}
        models[spec] = entry
        try:
            adapter = build_adapter(spec, cfg)
            status = adapter.status
        except AdapterError as err:
            entry.update(status="not run", reason=str(err))
            say(f"  not run: {err}")
            continue
        name = adapter.name
        if name != spec:
            models[name] = models.pop(spec)
        entry.update(describe=adapter.describe(), weights=status.to_dict(), status="run")
        say(f"  {status.message}")
        if "params" in cfg.passes:
            counts = adapter.parameter_counts()
            entry["params"] = counts.to_dict() if counts else None
        if "generate" in cfg.passes:
            if status.quality_ok or cfg.generate_random:
                entry["generated"] = True
                counts_g = generate_pass(adapter, mine, cfg, d, say)
                say(f"  generate: {counts_g['ok']} written, {counts_g['skipped']} already there, "
                    f"{counts_g['error']} failed")
            else:
                entry["generated"] = False
                entry["generation_note"] = ("random weights: no samples generated for scoring (efficiency only; "
                                            "--generate-random writes labelled samples anyway)")
        if "time" in cfg.passes:
            adapter.unload()  # the protocol times loading from scratch
            _release_memory()
            k = max(1, min(cfg.time_items, len(mine)))
            timing = time_pass(adapter, mine[:k], cfg, d, say)
            if timing["status"] != "measured":
                say(f"  time: not measured: {timing['reason']}")
            elif (s := timing["seconds"]) is not None:
                low, high = s["ci_low"], s["ci_high"]
                ci = "no 95% CI (n < 6)" if low is None or math.isnan(low) else f"95% CI [{low:.2f}, {high:.2f}]"
                say(f"  time: median {s['value']:.2f} s per item ({ci}, n={s['n']}; {timing['label']}); "
                    f"load {timing['load_s']:.1f} s")
        adapter.unload()
        _release_memory()
    barrier(d)
    result: dict[str, Any] = {"models": models}
    if d.main:
        path = write_results(cfg, manifest, models, prov)
        result = json.loads(path.read_text())
        say(f"results: {path}")
    finish_dist(d)
    return result


def _release_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        pass
