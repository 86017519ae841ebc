"""`samuel` command line: `samuel info` (config and exact parameter counts) and `samuel demo` (random weights)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samuel import __version__
from samuel.atomic import atomic_write
from samuel.config import MIXING_SCHEDULES, SAMUeLConfig
from samuel.guidance import DEFAULT_GUIDANCE, guided_model_fn
from samuel.model import SAMUeL, fill_zero_init_layers, parameter_counts
from samuel.samplers import DEFAULT_STEPS, SAMPLERS, sample

AUTHORS_PARAMS = 15_571_904  # the authors' public model (HaysonC/SAMUeL-GEN), counted from its code
RANDOM_WEIGHTS_LABEL = "RANDOM WEIGHTS: untrained architecture; output is noise, not a quality result"


def _config(args: argparse.Namespace) -> SAMUeLConfig:
    config = SAMUeLConfig.tiny() if args.preset == "tiny" else SAMUeLConfig()
    if args.mixing:
        config = dataclasses.replace(config, mixing=args.mixing)
    return config


def info(config: SAMUeLConfig) -> dict[str, Any]:
    """Config and exact parameter counts, built on the meta device (no memory, no weights)."""
    with torch.device("meta"):
        model = SAMUeL(config)
    total, by_component = parameter_counts(model)
    return {
        "model": "samuel",
        "version": __version__,
        "params_total": total,
        "params_by_component": by_component,
        "params_reference": {"paper": "about 15M", "authors_code": AUTHORS_PARAMS},
        "config": config.to_dict(),
    }


def _print_info(report: dict[str, Any]) -> None:
    print(f"SAMUeL {report['version']}: {report['params_total']:,} parameters "
          f"(paper: about 15M; authors' code: {AUTHORS_PARAMS:,})")
    width = max(len(k) for k in report["params_by_component"])
    for name, n in report["params_by_component"].items():
        print(f"  {name:<{width}}  {n:>12,}  {100 * n / report['params_total']:5.1f}%")
    print("config:")
    for key, value in report["config"].items():
        print(f"  {key} = {value}")


def synthetic_vocal_latent(frames: int, channels: int = 64, seed: int = 0) -> torch.Tensor:
    """A deterministic stand-in vocal latent for the demo: smooth per-channel curves with phrase-like gaps.

    It exercises the code path only; it is not an encoded recording (the codec arrives with issue 3).
    """
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(frames, dtype=torch.float32)
    freqs = torch.rand(channels, 1, generator=gen) * 0.2
    phase = torch.rand(channels, 1, generator=gen) * 6.283
    phrases = (torch.sin(t / 40.0) > -0.3).float()  # vocal phrases separated by rests
    return (torch.sin(freqs * t + phase) * phrases).unsqueeze(0)


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object, so numpy does not append ".npy" to the temp name
        np.save(f, array)


def demo(config: SAMUeLConfig, out: Path, *, frames: int, sampler: str, steps: int, guidance: float,
         seed: int) -> dict[str, Any]:
    """Generate one accompaniment latent from a synthetic vocal with a random-weight model, and time it."""
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    model = fill_zero_init_layers(SAMUeL(config), seed=seed).eval()
    build_s = time.perf_counter() - t0
    vocal = synthetic_vocal_latent(frames, config.latent_channels, seed)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    with torch.inference_mode():
        latent = sample(guided_model_fn(model, vocal, guidance), vocal.shape, model.alpha_bar, sampler=sampler,
                        steps=steps, generator=gen)
    sample_s = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    latent_path = out / "demo_accompaniment_latent.random-weights.npy"
    atomic_write(latent_path, lambda tmp: _save_npy(tmp, latent.numpy()))
    seconds = frames * 2048 / 44100
    record = {
        "weights": "random",
        "label": RANDOM_WEIGHTS_LABEL,
        "output": latent_path.name,
        "latent_shape": list(latent.shape),
        "audio_seconds_equivalent": round(seconds, 3),
        "sampler": sampler, "steps": steps, "guidance": guidance, "seed": seed,
        "model_build_s": round(build_s, 4),
        "sampling_s": round(sample_s, 4),
        "real_time_factor": round(sample_s / seconds, 5),
        "finite": bool(torch.isfinite(latent).all()),
        "provenance": {
            "samuel": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "device": "cpu", "threads": torch.get_num_threads(), "machine": platform.machine(),
            "config": config.to_dict(),
        },
    }
    atomic_write(out / "demo.json", lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2) + "\n"))
    return record


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="samuel", description=__doc__)
    parser.add_argument("--version", action="version", version=f"samuel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p_info = sub.add_parser("info", help="print the config and exact parameter counts")
    p_info.add_argument("--json", action="store_true", help="machine-readable output")
    p_info.add_argument("--preset", choices=["paper", "tiny"], default="paper")
    p_info.add_argument("--mixing", choices=MIXING_SCHEDULES)

    p_demo = sub.add_parser("demo", help="generate one latent with RANDOM weights (efficiency demo only)")
    p_demo.add_argument("--out", type=Path, default=Path("samuel-demo"))
    p_demo.add_argument("--preset", choices=["paper", "tiny"], default="paper")
    p_demo.add_argument("--mixing", choices=MIXING_SCHEDULES)
    p_demo.add_argument("--frames", type=int, default=1024, help="latent frames (1024 = 47.55 s); multiple of 8")
    p_demo.add_argument("--sampler", choices=sorted(SAMPLERS), default="dpmpp")
    p_demo.add_argument("--steps", type=int, default=None, help="default: 25 dpmpp, 50 ddim, 800 ddpm")
    p_demo.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    p_demo.add_argument("--seed", type=int, default=0)

    args = parser.parse_args(argv)
    if args.command == "info":
        report = info(_config(args))
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            _print_info(report)
        return 0

    config = _config(args)
    if args.frames <= 0 or args.frames % config.time_downsampling:
        parser.error(f"--frames must be a positive multiple of {config.time_downsampling}, got {args.frames}")
    steps = args.steps or DEFAULT_STEPS[args.sampler]
    print(f"!! {RANDOM_WEIGHTS_LABEL}", file=sys.stderr)
    record = demo(config, args.out, frames=args.frames, sampler=args.sampler, steps=steps,
                  guidance=args.guidance, seed=args.seed)
    print(f"demo: {record['latent_shape']} latent ({record['audio_seconds_equivalent']} s of audio) with "
          f"{args.sampler} x {steps} steps, guidance {args.guidance}: {record['sampling_s']:.2f} s "
          f"(real-time factor {record['real_time_factor']:.3f}) on {torch.get_num_threads()} CPU threads")
    print(f"wrote {args.out / record['output']} and {args.out / 'demo.json'} [weights: random]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
