"""One prepared GPU benchmark (issue 15, target 6): ``python -m bench.gpu_bench --out results.json [--quick]``.

What it times, every model with random weights at its real size (``RANDOM_WEIGHTS_LABEL``: efficiency only):

- **samuel**: the U-Net forward (B = 2, the guided pair, 1024 frames), one guided sampler step, and a whole 47.55 s
  clip through the ``samuel`` adapter (VAE encode, 25 DPM-Solver++ steps, decode), in fp32 and bf16;
- **musicgen-small**: fp32 / bf16 x dynamic / static KV cache (baselines.musicgen.InferenceSettings): frames
  (one token per codebook, 4 codebooks) per second over the first ``k`` frames, seconds per 47.55 s extrapolated
  from them (a lower bound: later frames attend over a longer cache), one decoder step at the first and the last
  position (the whole run estimated from the two: linear in the position), and one full 47.55 s run of the
  device's default configuration;
- **stable-audio-open**: seconds per DiT step (median over ``k`` steps) and per 47.55 s clip (100 steps), fp16
  and fp32;
- **ace-step**: seconds per step and per 47.55 s clip (50 steps, the ``complete`` task on a vocal), bf16.

Timing reuses the harness (:func:`bench.timing.time_one`: the device synchronised around each item and, for a
truncated run, each unit; peak memory from the allocator). Each figure is a median over ``--repeats`` runs after
a warm-up. Each model, and each configuration inside it, runs in its own ``try``: a failure is written down with
its traceback and the rest go on. The JSON (device name, torch / CUDA / cuDNN versions, git commit, settings) is
rewritten atomically after every model, so a run cut short keeps what it finished.

``--quick`` shrinks everything (tiny presets, a few steps and frames, one repeat) for a smoke run; with
``--device cpu`` it is what tests/test_gpu_bench.py runs. Quick figures are not measurements of anything.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from baselines.base import RANDOM_WEIGHTS_LABEL, GenerationRequest, Generator, WeightsChoice
from bench.timing import ItemTiming, synchronize, time_one

SCHEMA = "samuel-bench/gpu-bench/1"
MODELS = ("samuel", "musicgen-small", "stable-audio-open", "ace-step")
CLIP_S = 47.55  # SAMUeL's chunk: the same duration for every model
PROMPT = "upbeat pop with guitar, bass and drums"
# musicgen-small's configurations, (dtype, cache): transformers' defaults first, the ratios are against it
MUSICGEN_CONFIGS = (("float32", "dynamic", False), ("bfloat16", "dynamic", False), ("bfloat16", "static", False),
                    ("float32", "static", False), ("bfloat16", "static", True), ("float32", "preallocated", False),
                    ("bfloat16", "preallocated", False))


def musicgen_config_name(dtype: str, cache: str, compiled: bool) -> str:
    """``bfloat16 static compiled``: a MUSICGEN_CONFIGS entry as the results name it."""
    return f"{dtype} {cache}" + (" compiled" if compiled else "")


@dataclass(frozen=True)
class Plan:
    """How much to run. :meth:`make` picks the full or the quick (smoke-run) sizes."""

    device: str
    quick: bool
    repeats: int  # timed runs per figure (after a warm-up); the figure is their median
    warmup: bool  # warm each adapter up before timing it (off in quick mode: its figures mean nothing anyway)
    samuel_preset: str  # "paper" or "tiny"
    samuel_precisions: tuple[str, ...]
    samuel_clip_s: float
    musicgen_preset: str  # "published" or "tiny"
    musicgen_clip_s: float
    musicgen_frames: int  # k: frames timed per run for the per-frame figure
    sao_clip_s: float
    sao_steps: int  # a whole clip's steps
    sao_timed_steps: int  # k: steps timed per run for the per-step figure
    sao_dtypes: tuple[str, ...]
    ace_clip_s: float
    ace_steps: int
    ace_timed_steps: int
    ace_dtype: str

    @classmethod
    def make(cls, device: str, *, quick: bool, repeats: int | None = None) -> Plan:
        cuda = device.startswith("cuda")
        half = "bfloat16" if cuda else "float32"  # ACE-Step's 16-bit dtype on a GPU; fp32 on a CPU smoke run
        if quick:  # on a CPU fp32 only: bf16 compiles SAMUeL's Snake kernel first, which takes longer than the rest
            return cls(device=device, quick=True, repeats=repeats or 1, warmup=False, samuel_preset="tiny",
                       samuel_precisions=("fp32", "bf16") if cuda else ("fp32",), samuel_clip_s=2.0,
                       musicgen_preset="tiny", musicgen_clip_s=0.5, musicgen_frames=8, sao_clip_s=1.5, sao_steps=4,
                       sao_timed_steps=2, sao_dtypes=("float16",) if cuda else ("float32",), ace_clip_s=0.5,
                       ace_steps=3, ace_timed_steps=2, ace_dtype=half)
        return cls(device=device, quick=False, repeats=repeats or 3, warmup=True, samuel_preset="paper",
                   samuel_precisions=("fp32", "bf16"), samuel_clip_s=CLIP_S, musicgen_preset="published",
                   musicgen_clip_s=CLIP_S, musicgen_frames=100, sao_clip_s=CLIP_S, sao_steps=100, sao_timed_steps=10,
                   sao_dtypes=("float16", "float32") if cuda else ("float32",), ace_clip_s=CLIP_S, ace_steps=50,
                   ace_timed_steps=5, ace_dtype=half)


# ---- timing helpers -------------------------------------------------------------------------------------------------
def median_seconds(fn: Callable[[], Any], device: str, repeats: int, warmup: int = 1) -> dict[str, Any]:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` calls, the device synchronised
    before and after each."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "times_s": times, "warmup_calls": warmup}


def attempt(fn: Callable[[], dict[str, Any]], device: str) -> dict[str, Any]:
    """``{"status": "ok", **fn()}``, or ``{"status": "failed", "error", "traceback"}`` when it raises; memory is
    given back either way, so the next model starts clean."""
    t0 = time.perf_counter()
    try:
        entry = {"status": "ok", **fn()}
        json.dumps(entry, allow_nan=False)  # a NaN or inf figure fails here, as this entry, not the whole file
    except Exception as err:  # a benchmark reports every failure and goes on with the next model
        entry = {"status": "failed", "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
    finally:
        gc.collect()
        if device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()
    entry["wall_s"] = time.perf_counter() - t0
    return entry


def timed_items(adapter: Generator, request: GenerationRequest, plan: Plan, *, units: int | None
                ) -> dict[str, Any]:
    """Load (timed), warm up on two units, then ``plan.repeats`` timed items through :func:`time_one`: whole
    generations (``units`` None) or the first ``units`` units, extrapolated to the whole."""
    t0 = time.perf_counter()
    adapter.load()
    synchronize(adapter.device)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    if plan.warmup:
        adapter.generate([request], max_units=2)
    warmup_s = time.perf_counter() - t0
    mode = "full" if units is None else "extrapolate"
    items = [time_one(adapter, GenerationRequest(f"{request.item_id}-{i}", request.seed + i, request.duration_s,
                                                 request.prompt, request.vocal_path), mode, units)
             for i in range(plan.repeats)]
    return {"load_s": load_s, "warmup_s": warmup_s, **summarise(items)}


def summarise(items: Sequence[ItemTiming]) -> dict[str, Any]:
    """Medians over the timed items (and each item as the harness records it)."""
    out: dict[str, Any] = {
        "seconds_per_clip": statistics.median(i.seconds for i in items),
        "rtf": statistics.median(i.rtf for i in items),
        "peak_memory_bytes": max(i.peak_memory_bytes for i in items), "memory_kind": items[0].memory_kind,
        "label": items[0].label, "n": len(items),
        "items": [{**asdict(i), "label": i.label} for i in items],
    }
    for key in items[0].fit:  # median_step_s / median_frame_s of an extrapolation
        out[key] = statistics.median(i.fit[key] for i in items)
    return out


def failed_parts(entry: dict[str, Any]) -> list[str]:
    """The configurations inside a model's entry (``{"fp32": {"status": ...}, ...}`` one level down) that failed."""
    return [f"{group}/{name}" for group, value in entry.items() if isinstance(value, dict)
            for name, part in value.items() if isinstance(part, dict) and part.get("status") == "failed"]


def write_vocal(path: Path, seconds: float) -> Path:
    """A stereo 44.1 kHz stand-in vocal (a gliding tone, gated like phrases): the vocal-conditioned models need a
    file; random weights make its content irrelevant to the timing."""
    from samuel.audio import write_audio

    rate = 44_100
    t = np.arange(math.ceil(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * (220 + 40 * np.sin(2 * np.pi * 0.25 * t)) * t) * (np.sin(2 * np.pi * 0.5 * t) > 0)
    return write_audio(path, np.stack([tone, tone]).astype(np.float32), rate)


# ---- the models -----------------------------------------------------------------------------------------------------
def bench_samuel(plan: Plan, workdir: Path) -> dict[str, Any]:
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from baselines.samuel_adapter import SAMUeLGenerator
    from samuel.config import SAMUeLConfig
    from samuel.guidance import guided_model_fn
    from samuel.model import SAMUeL, fill_zero_init_layers, low_precision_twin

    config = SAMUeLConfig.tiny() if plan.samuel_preset == "tiny" else SAMUeLConfig()
    torch.manual_seed(0)
    model = fill_zero_init_layers(SAMUeL(config)).eval().to(plan.device)
    gen = torch.Generator().manual_seed(0)
    shape = (2, config.latent_channels, config.num_frames)
    x, vocal = (torch.randn(shape, generator=gen).to(plan.device) for _ in range(2))
    t = torch.tensor([400, 400], device=plan.device)
    # attention on the math backend while counting: FlopCounterMode does not see the fused attention kernels
    with torch.inference_mode(), FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        model(x, t, vocal)
    flops = counter.get_total_flops()
    twin = low_precision_twin(model, torch.bfloat16)  # what --precision bf16 runs (samuel.generate.Accompanist.twin)
    vocal_path = write_vocal(workdir / "vocal.wav", plan.samuel_clip_s)
    request = GenerationRequest("samuel", 0, plan.samuel_clip_s, PROMPT, vocal_path)
    out: dict[str, Any] = {"weights": "random", "preset": plan.samuel_preset, "frames": config.num_frames,
                           "forward_flops": flops, "precisions": {}}
    for precision in plan.samuel_precisions:
        def figures(precision: str = precision) -> dict[str, Any]:
            bf16 = precision == "bf16"
            step_fn = guided_model_fn(model, vocal[:1], guidance=3.0, denoiser=twin if bf16 else None)
            net, xs, vocals = (twin, x.bfloat16(), vocal.bfloat16()) if bf16 else (model, x, vocal)

            def forward() -> None:
                with torch.inference_mode():
                    net(xs, t, vocals)

            def step() -> None:
                with torch.inference_mode():
                    step_fn(x[:1], t[:1])

            fwd = median_seconds(forward, plan.device, max(plan.repeats, 3), warmup=int(plan.warmup))
            adapter = SAMUeLGenerator(WeightsChoice("random"), device=plan.device, precision=precision,
                                      preset=plan.samuel_preset)
            try:
                clip = timed_items(adapter, request, plan, units=None)
            finally:
                adapter.unload()
            return {"forward_b2": {**fwd, "tflops": flops / fwd["median_s"] / 1e12},
                    "guided_step": median_seconds(step, plan.device, max(plan.repeats, 3), warmup=int(plan.warmup)),
                    "clip": {**clip, "sampler": "dpmpp", "steps": adapter.total_units(request),
                             "precision_label": adapter.precision()}}

        out["precisions"][precision] = attempt(figures, plan.device)
    return out


def bench_musicgen(plan: Plan, workdir: Path) -> dict[str, Any]:
    from baselines.musicgen import MusicGenSmall, default_inference

    request = GenerationRequest("musicgen", 0, plan.musicgen_clip_s, PROMPT)
    default = default_inference(plan.device)
    out: dict[str, Any] = {"weights": "random", "preset": plan.musicgen_preset, "configs": {},
                           "default_config": musicgen_config_name(*default), "frames_timed": plan.musicgen_frames}
    # a quick (smoke) run leaves the compiled one out: compiling costs as much for the tiny preset as for the real one
    for dtype, cache, compiled in (c for c in MUSICGEN_CONFIGS if not (plan.quick and c[2])):
        def figures(dtype: str = dtype, cache: str = cache, compiled: bool = compiled) -> dict[str, Any]:
            adapter = MusicGenSmall(WeightsChoice("random"), device=plan.device, dtype=dtype,
                                    cache_implementation=cache, compile=compiled, preset=plan.musicgen_preset)
            try:
                timed = timed_items(adapter, request, plan, units=plan.musicgen_frames)
                codebooks = adapter.config().decoder.num_codebooks
                frames_per_s = 1 / timed["median_frame_s"]
                total = adapter.total_units(request)
                steps = adapter.decoder_step_seconds((1, total - 1), repeats=max(plan.repeats, 3))
                result = {**timed, "precision_label": adapter.precision(), "frames_per_s": frames_per_s,
                          "tokens_per_s": frames_per_s * codebooks, "codebooks": codebooks, "steps_total": total,
                          "decoder_step_s_by_position": steps,
                          "whole_run_estimate_s": (steps[1] + steps[total - 1]) / 2 * total,
                          "whole_run_estimate_method": "mean of the decoder step at the first and last position x "
                                                       "steps (linear in the position; logits processors and "
                                                       "sampling excluded)"}
                if compiled:  # the bare steps run uncompiled; a static cache's step does not grow with the position
                    result.update(decoder_step_note="bare decoder steps run uncompiled: the static cache's growth",
                                  whole_run_estimate_s=timed["median_frame_s"] * total,
                                  whole_run_estimate_method="the compiled generation's median frame x steps (a "
                                                            "static cache's step does not grow with the position; "
                                                            "logits processors and sampling included)")
                if (dtype, cache, compiled) == default:  # the device's default, also timed whole
                    full = [time_one(adapter, request, "full", None) for _ in range(max(1, plan.repeats - 2))]
                    result["full_run"] = summarise(full)
                return result
            finally:
                adapter.unload()

        out["configs"][musicgen_config_name(dtype, cache, compiled)] = attempt(figures, plan.device)
    base = out["configs"].get("float32 dynamic", {})
    for entry in out["configs"].values():
        if entry["status"] == "ok" and base.get("status") == "ok":
            entry["frame_speedup_vs_fp32_dynamic"] = base["median_frame_s"] / entry["median_frame_s"]
            entry["whole_run_speedup_vs_fp32_dynamic"] = (base["whole_run_estimate_s"]
                                                          / entry["whole_run_estimate_s"])
    return out


def _tiny_folder(module: Any, folder: Path) -> Path:
    """The adapter module's tiny random pipeline saved in the published layout (quick mode only)."""
    if not (folder / "model_index.json").exists():
        module.build_random_pipeline(module.TINY_CONFIGS, seed=0).save_pretrained(folder)
    return folder


def _weights(plan: Plan, module: Any, folder: Path) -> WeightsChoice:
    """Random real-size weights; in quick mode the module's tiny random twin, loaded as a folder (its status then
    says "pretrained": the folder's weights are random all the same, and the JSON says so)."""
    if plan.quick:
        return WeightsChoice("pretrained", source=str(_tiny_folder(module, folder)))
    return WeightsChoice("random")


def bench_stable_audio(plan: Plan, workdir: Path) -> dict[str, Any]:
    from baselines import stable_audio
    from baselines.stable_audio import StableAudioOpen

    request = GenerationRequest("sao", 0, plan.sao_clip_s, PROMPT)
    weights = _weights(plan, stable_audio, workdir / "sao-tiny")
    out: dict[str, Any] = {"weights": "random", "preset": "tiny" if plan.quick else "published", "dtypes": {}}
    for dtype in plan.sao_dtypes:
        def figures(dtype: str = dtype) -> dict[str, Any]:
            adapter = StableAudioOpen(weights, device=plan.device, dtype=dtype, num_inference_steps=plan.sao_steps)
            try:
                steps = timed_items(adapter, request, plan, units=plan.sao_timed_steps)
                clip = summarise([time_one(adapter, request, "full", None) for _ in range(plan.repeats)])
                return {"precision_label": adapter.precision(), "steps_per_clip": plan.sao_steps,
                        "seconds_per_step": steps["median_step_s"], "step_timing": steps, "clip": clip}
            finally:
                adapter.unload()

        out["dtypes"][dtype] = attempt(figures, plan.device)
    return out


def bench_ace_step(plan: Plan, workdir: Path) -> dict[str, Any]:
    from baselines import ace_step
    from baselines.ace_step import AceStep

    vocal_path = write_vocal(workdir / "ace-vocal.wav", plan.ace_clip_s)
    request = GenerationRequest("ace", 0, plan.ace_clip_s, PROMPT, vocal_path)
    adapter = AceStep(_weights(plan, ace_step, workdir / "ace-tiny"), device=plan.device, dtype=plan.ace_dtype,
                      num_inference_steps=plan.ace_steps)
    try:
        steps = timed_items(adapter, request, plan, units=plan.ace_timed_steps)
        clip = summarise([time_one(adapter, request, "full", None) for _ in range(plan.repeats)])
        return {"weights": "random", "preset": "tiny" if plan.quick else "published",
                "precision_label": adapter.precision(), "task": adapter.task, "steps_per_clip": plan.ace_steps,
                "seconds_per_step": steps["median_step_s"], "step_timing": steps, "clip": clip}
    finally:
        adapter.unload()


BENCHES: dict[str, Callable[[Plan, Path], dict[str, Any]]] = {
    "samuel": bench_samuel, "musicgen-small": bench_musicgen, "stable-audio-open": bench_stable_audio,
    "ace-step": bench_ace_step,
}


# ---- the run --------------------------------------------------------------------------------------------------------
def environment(device: str) -> dict[str, Any]:
    """What the figures ran on: device name and memory, torch / CUDA / cuDNN versions, packages, git commit."""
    import torch

    from samuel.provenance import RUN_PACKAGES, cpu_name, git_state, package_versions

    env: dict[str, Any] = {"device": device, "cpu": cpu_name(), "torch": torch.__version__,
                           "cuda": torch.version.cuda, "torch_threads": torch.get_num_threads(),
                           "versions": package_versions(RUN_PACKAGES), "git": git_state()}
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        env.update({"device_name": props.name, "device_memory_bytes": int(props.total_memory),
                    "capability": f"{props.major}.{props.minor}", "cudnn": torch.backends.cudnn.version(),
                    "tf32_matmul": torch.backends.cuda.matmul.allow_tf32})
    else:
        env["device_name"] = cpu_name()
    return env


def write_results(path: Path, results: dict[str, Any]) -> None:
    """The JSON, atomically (a reader never sees half a file); non-finite numbers are refused, not written."""
    from samuel.atomic import atomic_write

    text = json.dumps(results, indent=2, allow_nan=False) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def run(models: Sequence[str], plan: Plan, out: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every model in turn, each in its own ``try``; the JSON is rewritten after each one."""
    results: dict[str, Any] = {
        "schema": SCHEMA, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": " ".join(sys.argv),
        "weights_label": RANDOM_WEIGHTS_LABEL, "quick": plan.quick,
        "note": ("quick mode: tiny presets, a few steps; a smoke run, not a measurement" if plan.quick else
                 "random weights at real sizes; medians over repeats after a warm-up; device synchronised"),
        "plan": asdict(plan), "environment": environment(plan.device), "models": {},
    }
    write_results(out, results)
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as tmp:
        for name in models:
            log(f"gpu_bench: {name} ...")
            workdir = Path(tmp) / name
            workdir.mkdir()
            entry = attempt(lambda name=name, workdir=workdir: BENCHES[name](plan, workdir), plan.device)
            parts = failed_parts(entry)
            if entry["status"] == "ok" and parts:
                entry.update(status="partial", failed_parts=parts)
            results["models"][name] = entry
            why = {"failed": f": {entry.get('error')}", "partial": f": failed {', '.join(parts)}"}
            log(f"gpu_bench: {name} {entry['status']} in {entry['wall_s']:.1f} s{why.get(entry['status'], '')}")
            write_results(out, results)
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the results JSON (written atomically)")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny presets and few steps: a smoke run")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per figure (default 3; quick 1)")
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in MODELS]
    if unknown or not args.models:
        parser.error(f"--models: unknown {unknown}; choose from {', '.join(MODELS)}" if unknown else
                     "--models: none given")
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            parser.error(f"--device {args.device}: torch {torch.__version__} sees no CUDA device "
                         "(use --device cpu for a smoke run)")
    elif args.device != "cpu":
        parser.error(f"--device must be cuda, cuda:N or cpu, got {args.device!r}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan.make(args.device, quick=args.quick, repeats=args.repeats)
    results = run(args.models, plan, args.out)
    failed = [name for name, entry in results["models"].items() if entry["status"] != "ok"]
    print(f"gpu_bench: wrote {args.out}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
