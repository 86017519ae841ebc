"""`samuel` command line.

- `samuel info`: the config and exact parameter counts (meta device, no weights).
- `samuel demo`: one latent from RANDOM weights, timed (efficiency only).
- `samuel prepare SRC -o DST`: stem folders -> latent shards + manifest (the VAE encodes them).
- `samuel train --data DIR --out DIR`: train (also under `torchrun --nproc_per_node N`).
- `samuel generate VOCALS -o OUT`: vocal audio file or folder -> accompaniment audio.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samuel import __version__
from samuel.atomic import atomic_write, disk_full_message, is_disk_full
from samuel.config import MIXING_SCHEDULES, SAMUeLConfig
from samuel.console import one_line_warnings
from samuel.guidance import DEFAULT_GUIDANCE, guided_model_fn
from samuel.model import SAMUeL, fill_zero_init_layers, parameter_counts
from samuel.processes import SIGTERM_EXIT, Terminated, sigterm_as_interrupt
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


def _checked_number(convert: Callable[[str], Any], noun: str, rule: str, ok: Callable[[Any], bool]
                    ) -> Callable[[str], Any]:
    """An argparse type: ``convert(raw)``, refused (a usage error, exit 2) unless ``ok`` holds for it."""
    def parse(raw: str) -> Any:
        try:
            value = convert(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {noun}: {raw!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {raw!r}")
        return value

    return parse


# nan and inf parse as floats, then poison every sample; 0 or fewer steps (or chunks per batch) are never meant
finite_float = _checked_number(float, "a number", "a finite number", math.isfinite)
def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum`` (exit 2 at parse time, not a run that does nothing)."""
    return _checked_number(int, "an integer", f">= {minimum}", lambda value: value >= minimum)


positive_int = _at_least(1)


def _device(raw: str) -> str:
    from samuel.dist import usable_device

    try:
        return usable_device(raw)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def main(argv: list[str] | None = None) -> int:
    one_line_warnings()
    try:
        with sigterm_as_interrupt():
            return _main(argv)
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt as stop:  # generate, prepare: one line instead of a traceback (train stops by itself)
        how = "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted"
        print(f"samuel: {how}. Files already finished are kept (each was written whole); rerun the same "
              "command to resume: it checks and reuses them and does the rest.", file=sys.stderr)
        return SIGTERM_EXIT if isinstance(stop, Terminated) else 130
    except OSError as err:
        if not is_disk_full(err):
            raise
        words = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")]
        resume = (" With `samuel train`, add --resume: it continues from the run folder's checkpoint.pt, written "
                  "whole, when there is one." if words[:1] == ["train"] else "")
        print(disk_full_message(err, " ".join(["samuel", *words[:1]])) + resume, file=sys.stderr)
        return 1


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
    p_demo.add_argument("--steps", type=positive_int, default=None, help="default: 25 dpmpp, 50 ddim, 800 ddpm")
    p_demo.add_argument("--guidance", type=finite_float, default=DEFAULT_GUIDANCE)
    p_demo.add_argument("--seed", type=int, default=0)

    _add_prepare(sub)
    _add_train(sub)
    _add_generate(sub)

    args = parser.parse_args(argv)
    if args.command in ("prepare", "train", "generate"):
        return args.run(args)
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
    steps = DEFAULT_STEPS[args.sampler] if args.steps is None else args.steps
    if steps > config.num_train_timesteps:  # the sampler would refuse it only after the model was built
        parser.error(f"--steps must lie in [1, {config.num_train_timesteps}] (the model's schedule), got {steps}")
    print(f"!! {RANDOM_WEIGHTS_LABEL}", file=sys.stderr)
    record = demo(config, args.out, frames=args.frames, sampler=args.sampler, steps=steps,
                  guidance=args.guidance, seed=args.seed)
    print(f"demo: {record['latent_shape']} latent ({record['audio_seconds_equivalent']} s of audio) with "
          f"{args.sampler} x {steps} steps, guidance {args.guidance}: {record['sampling_s']:.2f} s "
          f"(real-time factor {record['real_time_factor']:.3f}) on {torch.get_num_threads()} CPU threads")
    print(f"wrote {args.out / record['output']} and {args.out / 'demo.json'} [weights: random]")
    return 0


# -- prepare ------------------------------------------------------------------------------------------------------


def _add_prepare(sub: Any) -> None:
    p = sub.add_parser("prepare", help="encode stem folders into latent shards (+ manifest) for training")
    p.add_argument("src", type=Path, help="a folder of song folders (vocals + accompaniment stems), or one song")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder (resumable)")
    p.add_argument("--codec", default=None, help="VAE: HF id, diffusers folder or stable-audio-tools checkpoint "
                   "(default: stabilityai/stable-audio-open-1.0)")
    p.add_argument("--separate", action="store_true", help="split mixture-only folders with Demucs (extra)")
    p.add_argument("--downmix", action="store_true", help="accept files with more than 2 channels (mix to stereo)")
    p.add_argument("--batch-size", type=positive_int, default=4, help="chunks per VAE call")
    p.add_argument("--device", default=None, type=_device,
                   help="cpu, cuda, cuda:N or mps (default: cuda when there is one)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    from samuel.codec import DEFAULT_CODEC, CodecError, OobleckCodec
    from samuel.prepare import SUMMED_STEMS_NOTE, SUMMED_VOCALS_NOTE, prepare

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        codec = OobleckCodec.load(args.codec or DEFAULT_CODEC, device=device)
    except CodecError as err:
        print(f"samuel prepare: {err}", file=sys.stderr)
        return 2
    try:
        manifest = prepare(args.src, args.out, codec, separate=args.separate, downmix=args.downmix,
                           batch_size=args.batch_size, progress=not args.no_progress,
                           log=lambda line: print(line, file=sys.stderr))
    except (OSError, ValueError, RuntimeError) as err:
        print(f"samuel prepare: {err}", file=sys.stderr)
        return 2
    songs = manifest["songs"]
    counts = {s: sum(1 for x in songs if x["status"] == s) for s in ("ok", "skipped", "error")}
    chunks = sum(x.get("n_chunks") or 0 for x in songs if x["status"] == "ok")
    reused = len(manifest["this_run"]["reused"])
    print(f"prepare: {counts['ok']} songs ready ({chunks} chunks; {counts['ok'] - reused} encoded now, {reused} "
          f"reused from an earlier run), {counts['skipped']} skipped, {counts['error']} failed -> "
          f"{args.out / 'manifest.json'}")
    reused_names = set(manifest["this_run"]["reused"])
    for x in songs:
        if x["status"] != "ok":
            print(f"  {x['status']} {x['name']}: {x.get('message') or x.get('reason')}", file=sys.stderr)
        elif x["name"] not in reused_names:  # notes of songs encoded now (a kept song's were shown when it was)
            for note in x.get("notes") or []:
                if not note.startswith((SUMMED_STEMS_NOTE, SUMMED_VOCALS_NOTE)):
                    print(f"  note {x['name']}: {note}", file=sys.stderr)
    return 1 if counts["error"] else 0


# -- train --------------------------------------------------------------------------------------------------------


def _add_train(sub: Any) -> None:
    from samuel.train import PRECISIONS, TrainConfig

    d = TrainConfig()
    p = sub.add_parser("train", help="train SAMUeL on latent pairs (POPDB or `samuel prepare` output)",
                       description="Train SAMUeL. Under `torchrun --nproc_per_node N samuel train ...` it runs "
                       "DistributedDataParallel (gloo on CPU, NCCL on GPU); --batch-size stays the global batch.")
    p.add_argument("--data", type=Path, required=True, help="POPDB folder (latent_vocal.npy, latent_accomp.npy) "
                   "or a `samuel prepare` output folder")
    p.add_argument("--out", type=Path, required=True, help="run folder: checkpoints, logs, loss curve")
    # Run settings default to None, meaning "not given": a fresh run takes TrainConfig's default, a resumed run keeps
    # the stored value (a default of 100 epochs used to retarget every resumed run and so change its LR schedule).
    p.add_argument("--epochs", type=_at_least(1), default=None,
                   help=f"default {d.epochs}; with --resume, the stored run's target unless given")
    p.add_argument("--batch-size", type=_at_least(1), default=None, help=f"global batch (paper: {d.batch_size})")
    p.add_argument("--preset", choices=["paper", "tiny"], default=None, help="default paper")
    p.add_argument("--mixing", choices=MIXING_SCHEDULES)
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint, with its stored settings (only --epochs, "
                   "--max-steps, --device and --no-progress apply)")
    p.add_argument("--lr", type=float, default=None, help=f"default {d.lr}")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="auto (default): bf16 on GPUs with it (else fp16), bf16 on CPUs with native bf16, else fp32")
    p.add_argument("--loss-weighting", choices=["snr", "min-snr", "min-snr-v", "none"], default=None,
                   help=f"default {d.loss_weighting}")
    p.add_argument("--patience", type=_at_least(1), default=None,
                   help=f"early stopping: epochs without a better validation loss, default {d.patience}")
    p.add_argument("--seed", type=int, default=None, help=f"default {d.seed}")
    p.add_argument("--split-seed", type=int, default=None, help=f"default {d.split_seed}")
    p.add_argument("--save-every", type=_at_least(0), default=None,
                   help="also checkpoint every N steps (default: per epoch)")
    p.add_argument("--max-steps", type=_at_least(1), default=None,
                   help="stop after this many optimiser steps in total, leaving a resumable checkpoint")
    p.add_argument("--device", default=None, type=_device,
                   help="cpu, cuda, cuda:N or mps (default: cuda when there is one)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=_run_train)


# argparse dest -> TrainConfig field, for the options that describe the run (stored in its checkpoint)
_TRAIN_SETTINGS = ("epochs", "batch_size", "lr", "precision", "loss_weighting", "patience", "seed", "split_seed",
                   "save_every")


def _print_resume_settings(args: argparse.Namespace, trainer: Any, given: dict[str, Any]) -> None:
    """Say which settings a resumed run uses: the stored ones, except an explicit --epochs."""
    cfg = trainer.cfg
    if args.epochs is None:
        print(f"train: keeping the stored run's target of {cfg.epochs} epochs ({trainer.total_steps} steps of cosine "
              "LR decay); pass --epochs to change it", file=sys.stderr)
    else:
        print(f"train: --epochs {cfg.epochs} given (the stored run's target was {trainer.stored_epochs}): the cosine "
              f"LR decay spans {trainer.total_steps} steps", file=sys.stderr)
    ignored = [f"--{k.replace('_', '-')}" for k in given if k != "epochs"]
    ignored += [f"--{k}" for k in ("preset", "mixing") if getattr(args, k) is not None]
    if ignored:
        print(f"train: ignored with --resume (the stored run's values are kept): {', '.join(ignored)}",
              file=sys.stderr)


def _run_train(args: argparse.Namespace) -> int:
    from samuel.train import init_distributed, shutdown_distributed

    ctx, device = init_distributed(args.device)
    try:
        return _train_in_process_group(args, ctx, device)
    finally:
        shutdown_distributed()  # the Trainer (and its DDP wrapper) is gone by now


def _train_in_process_group(args: argparse.Namespace, ctx: Any, device: Any) -> int:
    from samuel.chunking import HOP_LENGTH, SAMPLE_RATE
    from samuel.data import MANIFEST_FORMAT, DataError, open_latent_dataset
    from samuel.train import BEST_WEIGHTS, CHECKPOINT_NAME, TrainConfig, Trainer, TrainingError, previous_run_files

    given = {key: value for key, value in ((k, getattr(args, k)) for k in _TRAIN_SETTINGS) if value is not None}
    try:
        dataset = open_latent_dataset(args.data)
        if not dataset.complete and ctx.is_main:  # an interrupted `samuel prepare`: say so, then train on what is
            described = dataset.describe()
            print(f"train: {args.data} is an unfinished `samuel prepare` run ({described['groups']} songs, "
                  f"{described['items']} chunks so far); rerun it to finish, or train on these: the split and the "
                  "normalisation would differ once it is finished, and --resume would refuse that data",
                  file=sys.stderr)
        if args.resume:
            trainer = Trainer.resume(args.out, dataset, epochs=args.epochs, device=device, dist_ctx=ctx,
                                     progress=not args.no_progress)
        else:
            found = previous_run_files(args.out)
            if CHECKPOINT_NAME in found:
                raise TrainingError(f"{args.out / CHECKPOINT_NAME}: a run already exists here; pass --resume to "
                                    "continue it or choose another --out")
            if found:  # e.g. killed before its first checkpoint: nothing to resume, and its log would be mixed in
                raise TrainingError(f"{args.out}: holds an earlier run's {', '.join(found)} (no {CHECKPOINT_NAME} to "
                                    "resume from); a new run would append to its log and overwrite its weights: "
                                    "delete them or choose another --out")
            trainer = Trainer(_config(args), TrainConfig(**given), dataset, args.out, device=device, dist_ctx=ctx,
                              progress=not args.no_progress)
    except (DataError, TrainingError, ValueError) as err:
        print(f"samuel train: {err}", file=sys.stderr)
        return 2
    if ctx.is_main:
        resuming = f"; resuming at step {trainer.state.step}" if args.resume else ""
        print(f"train: {len(trainer.train_idx)} train / {len(trainer.val_idx)} validation items, "
              f"{trainer.batches_per_epoch} steps per epoch, precision {trainer.precision}, device {device}, "
              f"{ctx.world_size} process(es){resuming}", file=sys.stderr)
        if not trainer.has_validation:
            unit = "song" if dataset.format == MANIFEST_FORMAT else "item"  # the split never divides a song
            print(f"train: 0 validation items (one {unit} only: nothing to hold out): no early stopping; "
                  f"{BEST_WEIGHTS} gets each finished epoch's EMA weights, so it ends with the last epoch's",
                  file=sys.stderr)
        frames = trainer.model_config.num_frames  # the data's, which the saved config records (samuel.train)
        preset = None if args.resume else _config(args).num_frames
        default = f"; the {args.preset or 'paper'} preset's default is {preset}" if preset not in (None, frames) else ""
        print(f"train: {frames}-frame items ({frames * HOP_LENGTH / SAMPLE_RATE:.2f} s): the model's chunk length, "
              "recorded in its config for generate" + default, file=sys.stderr)
        if args.resume:
            _print_resume_settings(args, trainer, given)
    if args.max_steps is not None and trainer.state.step >= args.max_steps:
        if ctx.is_main:
            print(f"train: the run in {args.out} is already at step {trainer.state.step}, at or past --max-steps "
                  f"{args.max_steps}: nothing to do (a larger --max-steps, or none, continues it)")
        return 0
    reason = trainer.fit(max_steps=args.max_steps)
    if ctx.is_main:
        st = trainer.state
        where = f"{st.epoch} epochs done" + (f", {st.step_in_epoch} of {trainer.batches_per_epoch} steps into epoch "
                                             f"{st.epoch + 1}" if st.step_in_epoch else "")
        best = ("no validation items, no early stopping" if not trainer.has_validation else
                "no epoch validated yet" if st.best_epoch < 0 else
                f"best validation loss {st.best_val:.4g} at epoch {st.best_epoch}")
        print(f"train: {reason} at step {st.step} ({where}); {best}; {_written(args.out)}")
    return 130 if reason == "interrupted" else 0


def _written(out: Path) -> str:
    """What the run folder holds for the user now: the weights to generate with, else only the resume state."""
    from samuel.train import BEST_WEIGHTS, CHECKPOINT_NAME

    if (out / BEST_WEIGHTS).is_file():
        return f"weights in {out / BEST_WEIGHTS}"
    if (out / CHECKPOINT_NAME).is_file():
        return (f"no {BEST_WEIGHTS} yet (it is written when an epoch ends); {out / CHECKPOINT_NAME} holds the state "
                "that --resume continues")
    return f"nothing written in {out}"


# -- generate -----------------------------------------------------------------------------------------------------


def _add_generate(sub: Any) -> None:
    p = sub.add_parser("generate", help="vocal audio (file or folder) -> accompaniment audio")
    p.add_argument("vocals", type=Path, help="a vocal audio file, or a folder of them")
    p.add_argument("-o", "--out", type=Path, required=True, help="output WAV (or folder, for a folder input)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="SAMUeL weights (`samuel train` writes model.safetensors; its run folder names "
                        "them too); default: $SAMUEL_CHECKPOINT")
    p.add_argument("--codec", default=None, help="VAE: HF id, diffusers folder or stable-audio-tools checkpoint "
                   "(default: stabilityai/stable-audio-open-1.0)")
    p.add_argument("--sampler", choices=sorted(SAMPLERS), default="dpmpp")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="default: 25 dpmpp, 50 ddim, 800 ddpm (the paper's)")
    p.add_argument("--guidance", type=finite_float, default=DEFAULT_GUIDANCE)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mix", type=Path, default=None, help="also write vocals + accompaniment here (file or folder)")
    p.add_argument("--batch-size", type=positive_int, default=4, help="chunks per sampler batch (across files)")
    p.add_argument("--downmix", action="store_true", help="accept files with more than 2 channels")
    p.add_argument("--device", default=None, type=_device,
                   help="cpu, cuda, cuda:N or mps (default: cuda when there is one)")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16", "auto"], default="fp32",
                   help="fp32 (default); bf16 runs the U-Net with bf16 weights and the VAE in bf16 (a whole 47.55 s "
                        "clip 3.7x faster than the plain fp32 path on a Zen 4 CPU and 5.8x on an AMX Xeon, the audio "
                        "41 dB SNR from fp32: docs/benchmarks.md); auto: bf16 where the device computes it natively, "
                        "else fp32. The sidecar records what ran")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the U-Net (with --precision bf16: its time-major form, samuel.time_major; the "
                   "first call compiles, 20-60 s on 2 cores, cached on disk after; a smaller last batch is padded "
                   "to the compiled size rather than compiled again)")
    p.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=_run_generate)


def _run_generate(args: argparse.Namespace) -> int:
    from samuel.checkpoint import CheckpointError
    from samuel.codec import DEFAULT_CODEC, CodecError
    from samuel.generate import Accompanist, GenerateSettings, ItemResult, resolve_precision
    from samuel.generate_plan import plan_inputs

    checkpoint = args.checkpoint or (Path(os.environ["SAMUEL_CHECKPOINT"]) if os.environ.get("SAMUEL_CHECKPOINT")
                                     else None)
    if checkpoint is None:
        print("samuel generate: no SAMUeL checkpoint given. Looked for --checkpoint and $SAMUEL_CHECKPOINT. "
              "Train one with `samuel train --data DIR --out RUN` (it writes RUN/model.safetensors) and pass "
              "--checkpoint RUN/model.safetensors.", file=sys.stderr)
        return 2
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        settings = GenerateSettings(sampler=args.sampler, steps=args.steps, guidance=args.guidance, seed=args.seed,
                                    batch_size=args.batch_size, downmix=args.downmix)
        plan = plan_inputs(args.vocals, args.out, args.mix)
        if args.vocals.is_dir():  # what the folder holds besides its inputs, each file accounted for
            print("\n".join(plan.summary()))
        accompanist = Accompanist.load(checkpoint, args.codec or DEFAULT_CODEC, device=device,
                                       precision=resolve_precision(args.precision, device), compile=args.compile)
    except (CheckpointError, CodecError, OSError, ValueError) as err:
        print(f"samuel generate: {err}", file=sys.stderr)
        return 2
    for line in dict.fromkeys(x for x in (accompanist.label(), accompanist.codec_mismatch()) if x is not None):
        print(f"!! {line} ({checkpoint})", file=sys.stderr)  # a random VAE can also be the wrong one: both

    def show(result: Any) -> None:
        if result.status == "ok":
            t = result.timings
            print(f"ok  {result.input} -> {result.output} ({result.seconds:.2f} s audio; encode "
                  f"{t.get('encode_s', 0):.2f} s, sample {t.get('sample_s', 0):.2f} s, "
                  f"decode {t.get('decode_s', 0):.2f} s)" + (f"; {result.message}" if result.message else ""))
        else:
            print(f"{result.status:<8}{result.message}", file=sys.stderr if result.status == "error" else sys.stdout)

    broken = [ItemResult(str(path), "error", message=message) for path, message in plan.broken]
    for result in broken:
        show(result)
    try:
        results = broken + accompanist.run(plan.jobs, settings, overwrite=args.overwrite, progress=not args.no_progress,
                                  on_result=show)
    except ValueError as err:  # settings the model cannot honour (e.g. more steps than its schedule has)
        print(f"samuel generate: {err}", file=sys.stderr)
        return 2
    failed = [r for r in results if r.status == "error"]
    done = sum(r.status == "ok" for r in results)
    skipped = sum(r.status == "skipped" for r in results)
    print(f"generate: {done} written, {skipped} skipped, {len(failed)} failed "
          f"({settings.sampler} x {settings.n_steps} steps, guidance {settings.guidance}, seed {settings.seed})")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
