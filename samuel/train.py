"""Training SAMUeL (paper section V): AdamW, cosine annealing, SNR-weighted v-loss, CFG dropout, EMA, early stop.

The loop is written so that a run can stop anywhere and resume to the same weights, bit for bit on CPU:

- every random draw of a step (timesteps, noise, condition dropout) comes from one ``torch.Generator`` whose
  state is checkpointed; the epoch's batch order is a pure function of ``(seed, epoch)``;
- the checkpoint holds the model, EMA, optimiser, LR scheduler, grad scaler, generator and global RNG states, the
  epoch, the position inside the epoch and the early-stopping state, and is written atomically;
- ``fit`` first cuts the per-step CSV log back to the state's step (the checkpoint's, on resume), so no row is
  duplicated; the CLI refuses a fresh run into a folder that holds an earlier run's files.

Under ``torchrun --nproc_per_node N`` the same loop runs with DistributedDataParallel. ``--batch-size`` is the
global batch: every rank draws the randomness of the whole batch from the same generator and keeps its own slice
``indices[rank::N]``; the loss is scaled so that DDP's gradient average equals the single-process gradient of
the global batch (tested with 2 gloo processes in tests/test_train.py).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math
import os
import platform
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

import samuel.generate
from samuel import __version__
from samuel.atomic import atomic_write
from samuel.checkpoint import NORM_KEY, RUN_WEIGHTS, TRAINING_KEY, save_model
from samuel.config import SAMUeLConfig
from samuel.data import LatentPairs, compute_norm_stats, split_train_val
from samuel.diffusion import LOSS_WEIGHTINGS, condition_keep_mask, q_sample, v_target, weighted_v_loss
from samuel.model import SAMUeL
from samuel.safe_load import UnsafeCheckpointError, load_weights_only

CHECKPOINT_NAME = "checkpoint.pt"  # full training state, for --resume
BEST_WEIGHTS = RUN_WEIGHTS  # EMA weights at the best validation loss (without validation items, the last epoch's):
# what `samuel generate` loads
LAST_WEIGHTS = "last.safetensors"  # EMA weights at the end of the last finished epoch
RAW_WEIGHTS = "model_raw.safetensors"  # the optimised (non-EMA) weights of the same epoch as BEST_WEIGHTS
LOG_CSV = "train_log.csv"
HISTORY_JSON = "history.json"
CURVE_PNG = "loss_curve.png"
# Everything a run writes into its folder: a fresh run into a folder holding any of them would append to the old
# log or overwrite the old weights, so the CLI refuses it (see previous_run_files)
RUN_FILES = (CHECKPOINT_NAME, BEST_WEIGHTS, LAST_WEIGHTS, RAW_WEIGHTS, LOG_CSV, HISTORY_JSON, CURVE_PNG)
STATE_FORMAT = "samuel-train-state/1"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_VAL_SEED_OFFSET = 1_000_003  # validation noise: its own fixed stream, identical every epoch


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters. Defaults are the paper's where it gives one (section V), else stated here."""

    epochs: int = 100  # the paper trains "one hour on one A100" and gives no epoch count; early stopping ends it
    batch_size: int = 16  # paper: batch 16, "critical for stability with GroupNorm"; global across DDP ranks
    lr: float = 3.5e-4  # paper
    weight_decay: float = 0.01  # AdamW's usual default; the paper gives none
    betas: tuple[float, float] = (0.9, 0.999)
    min_lr_ratio: float = 0.0  # cosine annealing from lr down to lr * min_lr_ratio over all planned steps
    grad_clip: float = 1.0  # global grad-norm clip; the SNR weight reaches ~1.9e4 near t = 0, so spikes happen
    ema_decay: float = 0.999  # with the usual warm-up min(decay, (1 + step) / (10 + step))
    cond_dropout: float = 0.1  # paper: 10% conditioning dropout for classifier-free guidance
    loss_weighting: str = "snr"  # paper Eq. 6; see samuel.diffusion.loss_weight for the options
    precision: str = "auto"  # see resolve_precision
    val_fraction: float = 0.1  # paper: 10% held out
    split_seed: int = 0
    seed: int = 0
    patience: int = 10  # early stopping: epochs without a better validation loss
    save_every: int = 0  # also checkpoint every N optimiser steps (0: at the end of each epoch only)

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if self.patience < 1:  # 0 stopped before the first step, leaving nothing but an exit status of 0
            raise ValueError(f"patience must be >= 1 epoch, got {self.patience}")
        if self.save_every < 0:
            raise ValueError(f"save_every must be >= 0 steps (0: at the end of each epoch only), got {self.save_every}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f"loss_weighting must be one of {LOSS_WEIGHTINGS}, got {self.loss_weighting!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1), got {self.val_fraction}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return cls(**data)


# -- pure helpers ------------------------------------------------------------------------------------------------


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: bf16 on a GPU that has it, else fp16 (with loss scaling); bf16 on a CPU with native bf16 (see
    docs/benchmarks.md for the measured gain), else fp32."""
    if precision != "auto":
        if precision == "fp16" and device.type != "cuda":
            raise ValueError("fp16 training needs a CUDA device (CPU fp16 autocast is slow and unscaled)")
        if precision == "bf16":
            samuel.generate.warn_if_bf16_is_slow("bf16 training", device)
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    # the rule generate uses (AVX512-BF16 or AMX in /proc/cpuinfo), looked up on the module so one pin covers both
    return "bf16" if samuel.generate.cpu_has_native_bf16() else "fp32"


def epoch_order(train_indices: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """The epoch's shuffled training indices: a pure function of (seed, epoch), so a resumed run replays it."""
    return np.random.default_rng([seed, epoch]).permutation(train_indices)


def epoch_batches(order: np.ndarray, batch_size: int, world_size: int = 1) -> list[np.ndarray]:
    """Consecutive batches of ``batch_size``; a last batch smaller than the number of ranks is dropped."""
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [b for b in batches if len(b) >= world_size]


def cosine_lr_factor(step: int, total_steps: int, min_ratio: float = 0.0) -> float:
    """Cosine annealing (Loshchilov & Hutter 2017) without restarts: 1 at step 0 to ``min_ratio`` at the end."""
    progress = min(step, total_steps) / max(total_steps, 1)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def ema_decay_at(step: int, decay: float) -> float:
    """EMA decay with warm-up: early on the average follows the weights closely instead of the random init."""
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * model`` for parameters; persistent buffers (state-dict ones) are copied.

    Non-persistent buffers are derived tables (RoPE, the noise schedule) that each copy rebuilds on demand: the live
    model grows its RoPE tables on the first batch longer than ``config.num_frames`` while the EMA copy grows its own
    only when validation runs, so copying them would fail on the size mismatch.
    """
    ema_params = [p for p in ema.parameters()]
    params = [p.detach() for p in model.parameters()]
    torch._foreach_mul_(ema_params, decay)
    torch._foreach_add_(ema_params, params, alpha=1.0 - decay)
    persistent = model.state_dict(keep_vars=True).keys()
    ema_buffers = dict(ema.named_buffers())
    for name, buffer in model.named_buffers():
        if name in persistent:
            ema_buffers[name].copy_(buffer)


# -- distributed context -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | None = None) -> tuple[DistContext, torch.device]:
    """Start the process group when launched by torchrun (WORLD_SIZE > 1): NCCL on GPUs, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if world <= 1:
        return DistContext(), dev
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistContext(rank, world, local), dev


def shutdown_distributed() -> None:
    """Leave the process group cleanly: wait for every rank, then destroy it.

    Call it only after the last object holding the group (the DDP wrapper inside a Trainer) has been dropped:
    Gloo's worker threads that are still alive when the interpreter finalises abort the process with SIGABRT
    ("terminate called without an active exception"), which is how a rank died in CI while rank 0 was still
    writing the epoch's files.
    """
    import gc

    if not dist.is_initialized():
        return
    dist.barrier()
    gc.collect()  # the DDP reducer's reference cycles go now, not at interpreter exit
    dist.destroy_process_group()


# -- the trainer -------------------------------------------------------------------------------------------------


@dataclass
class TrainState:
    """Everything besides tensors that a resumed run needs to continue exactly."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    best_val: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    epoch_loss_sum: float = 0.0  # running sum of this epoch's step losses (survives a mid-epoch resume)
    history: list[dict[str, Any]] = field(default_factory=list)


class TrainingError(RuntimeError):
    """A training run that cannot start or resume, with the reason (and file) named."""


class Trainer:
    """One training run writing into ``out_dir``; ``fit()`` trains, ``Trainer.resume(...)`` continues one."""

    def __init__(
        self,
        model_config: SAMUeLConfig,
        train_config: TrainConfig,
        dataset: LatentPairs,
        out_dir: str | os.PathLike[str],
        *,
        device: torch.device | str = "cpu",
        dist_ctx: DistContext | None = None,
        progress: bool = True,
    ) -> None:
        dataset.check_frames_multiple(model_config.time_downsampling)
        # The model's context is what it trains on: generate cuts chunks of config.num_frames, so it must be the
        # data's frames per item, not the preset's default (num_frames sizes no parameter, only the RoPE tables).
        model_config = dataclasses.replace(model_config, num_frames=dataset.frames)
        self.model_config, self.cfg, self.dataset = model_config, train_config, dataset
        self.out_dir = Path(out_dir)
        self.device = torch.device(device)
        self.dist = dist_ctx or DistContext()
        self.progress = progress
        self.precision = resolve_precision(train_config.precision, self.device)
        self.state = TrainState()
        self.stored_epochs: int | None = None  # the epoch target of the checkpoint a resumed run started from
        self._stop_requested = False

        self.train_idx, self.val_idx = split_train_val(dataset.groups, train_config.val_fraction,
                                                       train_config.split_seed)
        if len(self.train_idx) == 0:
            raise TrainingError(f"{dataset.describe()['root']}: no training items after the validation split")
        # Statistics from the training split only (the authors used all data, leaking validation).
        self.norm = compute_norm_stats(dataset, self.train_idx)
        self._norm_tensors = {k: torch.tensor(getattr(self.norm, k), dtype=torch.float32).view(1, -1, 1)
                              for k in ("vocal_mean", "vocal_std", "accomp_mean", "accomp_std")}

        torch.manual_seed(train_config.seed)
        self.model = SAMUeL(model_config).to(self.device)
        self.ema = copy.deepcopy(self.model).requires_grad_(False).eval()
        self.ddp: nn.Module = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(self.model, device_ids=ids)
        # fused: one kernel over all parameters (on CPU the per-tensor loop cost more than the tiny model's step)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=train_config.lr, betas=train_config.betas,
                                           weight_decay=train_config.weight_decay, fused=True)
        self.batches_per_epoch = len(epoch_batches(self.train_idx, train_config.batch_size, self.dist.world_size))
        self.total_steps = self.batches_per_epoch * train_config.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: cosine_lr_factor(s, self.total_steps, train_config.min_lr_ratio))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.generator = torch.Generator().manual_seed(train_config.seed)

    # -- data ------------------------------------------------------------------------------------------------
    def _normalised_batch(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        vocal, accomp = self.dataset.read_batch(list(indices))
        nt = self._norm_tensors
        vocal = (vocal - nt["vocal_mean"]) / nt["vocal_std"]
        accomp = (accomp - nt["accomp_mean"]) / nt["accomp_std"]
        return vocal.to(self.device), accomp.to(self.device)

    def _draw(self, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """Timesteps, noise and condition-keep mask for a whole (global) batch, all from ``generator``."""
        c = self.model_config
        t = torch.randint(0, c.num_train_timesteps, (batch,), generator=generator)
        frames = self.dataset.frames
        noise = torch.randn((batch, c.latent_channels, frames), generator=generator)
        keep = condition_keep_mask(batch, self.cfg.cond_dropout, generator)
        return t, noise, keep

    def _autocast(self) -> Any:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    # -- one step ----------------------------------------------------------------------------------------------
    def compute_loss(self, indices: Sequence[int], generator: torch.Generator, *, model: nn.Module | None = None,
                     condition_dropout: bool = True) -> tuple[Tensor, int]:
        """Loss of this rank's slice of the global batch ``indices``, scaled so that the sum over ranks of its
        gradients equals the gradient of the global-batch mean (DDP then averages over ranks: multiply by N).

        Returns (scaled loss for backward, number of local items).
        """
        b = len(indices)
        t, noise, keep = self._draw(b, generator)
        sl = slice(self.dist.rank, None, self.dist.world_size)
        local = np.asarray(indices)[sl]
        t, noise, keep = t[sl].to(self.device), noise[sl].to(self.device), keep[sl].to(self.device)
        if not condition_dropout:
            keep = torch.ones_like(keep)
        vocal, accomp = self._normalised_batch(local)
        abar = self.model.alpha_bar[t]
        x_t = q_sample(accomp, noise, abar)
        with self._autocast():
            v_pred = (model or self.ddp)(x_t, t, vocal, keep_condition=keep)
        loss = weighted_v_loss(v_pred, v_target(accomp, noise, abar), abar, self.cfg.loss_weighting)
        return loss * (len(local) * self.dist.world_size / b), len(local)

    def train_step(self, indices: Sequence[int]) -> dict[str, float]:
        self.ddp.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss, _ = self.compute_loss(indices, self.generator)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        ema_update(self.ema, self.model, ema_decay_at(self.state.step, self.cfg.ema_decay))
        global_loss = self._all_sum(loss.detach().float() / self.dist.world_size)
        return {"loss": global_loss, "grad_norm": float(grad_norm)}

    def _all_sum(self, value: Tensor) -> float:
        if self.dist.enabled:
            value = value.clone()
            dist.all_reduce(value)
        return float(value)

    @torch.no_grad()
    def validate(self) -> float:
        """Mean SNR-weighted v-loss of the EMA weights over the validation split, with the same noise each epoch."""
        if len(self.val_idx) == 0:
            return math.nan
        gen = torch.Generator().manual_seed(self.cfg.seed + _VAL_SEED_OFFSET)
        total, count = torch.zeros((), dtype=torch.float64), 0
        for batch in epoch_batches(self.val_idx, self.cfg.batch_size, 1):
            if len(batch) < self.dist.world_size:  # too few items to give every rank one: pad by repeating
                batch = np.resize(batch, self.dist.world_size)
            loss, _ = self.compute_loss(batch, gen, model=self.ema, condition_dropout=False)
            # loss / world summed over ranks is this batch's mean; weight it by the batch size
            total += loss.double().cpu() / self.dist.world_size * len(batch)
            count += len(batch)
        return self._all_sum(total) / count

    # -- the loop ----------------------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop after the current step with a resumable checkpoint (SIGINT/SIGTERM call this)."""
        self._stop_requested = True

    def fit(self, *, max_steps: int | None = None, on_step: Callable[[Trainer], None] | None = None) -> str:
        """Train until ``epochs`` are done, early stopping, ``max_steps`` total steps or a stop request.

        Returns the reason: "completed", "early-stopped", "max-steps" or "interrupted". Always leaves a resumable
        checkpoint behind. A run already at ``max_steps`` or past it (resumed) returns "max-steps" without a step.
        """
        from tqdm import tqdm

        self.out_dir.mkdir(parents=True, exist_ok=True)
        cfg, st = self.cfg, self.state
        if self.dist.is_main:  # rows past the state's step are from a run that died after them: they run again
            truncate_log(self.out_dir / LOG_CSV, st.step)
        if max_steps is not None and st.step >= max_steps:
            return "max-steps"
        with _stop_on_signals(self):
            while st.epoch < cfg.epochs:
                if st.bad_epochs >= cfg.patience:
                    return "early-stopped"
                batches = epoch_batches(epoch_order(self.train_idx, cfg.seed, st.epoch), cfg.batch_size,
                                        self.dist.world_size)
                bar = tqdm(total=len(batches), initial=st.step_in_epoch, desc=f"epoch {st.epoch + 1}/{cfg.epochs}",
                           disable=not (self.progress and self.dist.is_main), file=sys.stderr, leave=False)
                for b in range(st.step_in_epoch, len(batches)):
                    t0 = time.perf_counter()
                    stats = self.train_step(batches[b])
                    st.step += 1
                    st.step_in_epoch = b + 1
                    st.epoch_loss_sum += stats["loss"]
                    self._log_step(stats, time.perf_counter() - t0)
                    bar.update(1)
                    bar.set_postfix(loss=f"{stats['loss']:.4g}")
                    if on_step is not None:
                        on_step(self)
                    if cfg.save_every and st.step % cfg.save_every == 0:
                        self.save_checkpoint()
                    if self._stop_requested or (max_steps is not None and st.step >= max_steps):
                        bar.close()
                        if not self._stop_requested and st.step_in_epoch == len(batches):
                            # --max-steps on an epoch's last step: validate and export it now (it checkpoints),
                            # or model.safetensors and history.json would stop one epoch short of the steps run
                            self._end_epoch(len(batches))
                        else:
                            self.save_checkpoint()
                        return "interrupted" if self._stop_requested else "max-steps"
                bar.close()
                self._end_epoch(len(batches))
            return "completed"

    @property
    def has_validation(self) -> bool:
        """False when the data are too few to hold any out (one song, or one POPDB item): then nothing stops early
        and :data:`BEST_WEIGHTS` holds the last finished epoch's weights."""
        return len(self.val_idx) > 0

    def _end_epoch(self, n_batches: int) -> None:
        st = self.state
        val = self.validate()
        record = {"epoch": st.epoch + 1, "step": st.step, "lr": self.scheduler.get_last_lr()[0],
                  "train_loss": st.epoch_loss_sum / n_batches if n_batches else None,
                  "val_loss": val if self.has_validation else None}
        st.history.append(record)
        improved = not math.isnan(val) and val < st.best_val
        if improved:
            st.best_val, st.best_epoch, st.bad_epochs = val, st.epoch + 1, 0
        elif self.has_validation:  # a NaN loss (diverged) counts against patience; no validation at all does not
            st.bad_epochs += 1
        st.epoch += 1
        st.step_in_epoch = 0
        st.epoch_loss_sum = 0.0
        if self.dist.is_main:
            if improved or not self.has_validation:  # a diverged (NaN) epoch never replaces the best weights
                self.export(self.out_dir / BEST_WEIGHTS, ema=True)
                self.export(self.out_dir / RAW_WEIGHTS, ema=False)
            self.export(self.out_dir / LAST_WEIGHTS, ema=True)
            atomic_write(self.out_dir / HISTORY_JSON,
                         lambda tmp: Path(tmp).write_text(json.dumps(st.history, indent=2) + "\n"))
            write_loss_curve(self.out_dir / LOG_CSV, st.history, self.out_dir / CURVE_PNG)
        self.save_checkpoint()

    def _log_step(self, stats: dict[str, float], seconds: float) -> None:
        if not self.dist.is_main:
            return
        path = self.out_dir / LOG_CSV
        new = not path.exists()
        with path.open("a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["step", "epoch", "lr", "loss", "grad_norm", "seconds"])
            w.writerow([self.state.step, self.state.epoch + 1, f"{self.scheduler.get_last_lr()[0]:.6e}",
                        f"{stats['loss']:.6e}", f"{stats['grad_norm']:.6e}", f"{seconds:.4f}"])

    # -- weights and checkpoints --------------------------------------------------------------------------------
    def training_metadata(self, *, ema: bool) -> dict[str, Any]:
        st = self.state
        return {
            "weights": "ema" if ema else "raw", "steps": st.step, "epochs_done": st.epoch,
            "best_val_loss": None if math.isinf(st.best_val) else st.best_val, "best_epoch": st.best_epoch,
            "precision": self.precision, "world_size": self.dist.world_size, "train_config": self.cfg.to_dict(),
            "data": self.dataset.describe(), "n_train": len(self.train_idx), "n_val": len(self.val_idx),
            "samuel": __version__, "torch": torch.__version__, "python": platform.python_version(),
        }

    def export(self, path: Path, *, ema: bool) -> Path:
        meta = {NORM_KEY: json.dumps(self.norm.to_dict()),
                TRAINING_KEY: json.dumps(self.training_metadata(ema=ema), default=str)}
        return save_model(self.ema if ema else self.model, path, extra_metadata=meta)

    def save_checkpoint(self) -> None:
        if not self.dist.is_main:
            return
        st = self.state
        payload = {
            "format": STATE_FORMAT,
            "model_config": self.model_config.to_dict(), "train_config": self.cfg.to_dict(),
            "norm_stats": self.norm.to_dict(),
            "split": {"train": self.train_idx.tolist(), "val": self.val_idx.tolist()},
            "model": self.model.state_dict(), "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(), "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(), "state": dataclasses.asdict(st),
        }
        atomic_write(self.out_dir / CHECKPOINT_NAME, lambda tmp: torch.save(payload, tmp))

    @classmethod
    def resume(cls, out_dir: str | os.PathLike[str], dataset: LatentPairs, *, epochs: int | None = None,
               device: torch.device | str = "cpu", dist_ctx: DistContext | None = None,
               progress: bool = True) -> Trainer:
        """Rebuild a run from ``out_dir/checkpoint.pt`` with its stored settings.

        ``epochs=None`` keeps the stored target; a number replaces it, and the cosine LR schedule, which spans all
        planned steps, changes with it. ``stored_epochs`` on the result is the stored target either way.
        """
        path = Path(out_dir) / CHECKPOINT_NAME
        if not path.is_file():
            raise TrainingError(f"{path}: no checkpoint to resume from")
        try:
            payload = load_weights_only(path)
        except UnsafeCheckpointError as err:
            raise TrainingError(f"{path}: refused to resume from a checkpoint that holds Python objects besides "
                                f"tensors and plain data ({err.reason}); samuel train never writes one") from err
        except Exception as err:  # a damaged file: say which
            raise TrainingError(f"{path}: unreadable training checkpoint ({err})") from err
        if not isinstance(payload, dict):
            raise TrainingError(f"{path}: not a SAMUeL training checkpoint (a {type(payload).__name__})")
        if payload.get("format") != STATE_FORMAT:
            raise TrainingError(f"{path}: not a SAMUeL training checkpoint (format {payload.get('format')!r})")
        train_cfg = TrainConfig.from_dict(payload["train_config"])
        if epochs is not None and epochs != train_cfg.epochs:
            train_cfg = dataclasses.replace(train_cfg, epochs=epochs)
        trainer = cls(SAMUeLConfig.from_dict(payload["model_config"]), train_cfg, dataset, out_dir,
                      device=device, dist_ctx=dist_ctx, progress=progress)
        if trainer.train_idx.tolist() != payload["split"]["train"] or trainer.norm.to_dict() != payload["norm_stats"]:
            raise TrainingError(f"{path}: the data differ from the checkpoint's (train/validation split or "
                                "normalisation statistics); resume with the same --data")
        trainer.model.load_state_dict(payload["model"])
        trainer.ema.load_state_dict(payload["ema"])
        trainer.optimizer.load_state_dict(payload["optimizer"])
        trainer.scheduler.load_state_dict(payload["scheduler"])
        trainer.scaler.load_state_dict(payload["scaler"])
        trainer.generator.set_state(payload["generator"])
        torch.set_rng_state(payload["torch_rng"])
        trainer.state = TrainState(**payload["state"])
        trainer.stored_epochs = int(payload["train_config"]["epochs"])
        return trainer


class _stop_on_signals:
    """SIGINT/SIGTERM ask the trainer to stop after the current step (main thread only)."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        import threading

        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, lambda *_: self.trainer.request_stop())

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


# -- logs and plots ----------------------------------------------------------------------------------------------


def previous_run_files(out_dir: str | os.PathLike[str]) -> list[str]:
    """The names of :data:`RUN_FILES` present in ``out_dir``: an earlier run's, which a fresh run must not mix with
    (its log appended to, its weights overwritten). A run killed before its first checkpoint leaves only the log."""
    return [name for name in RUN_FILES if (Path(out_dir) / name).exists()]


def truncate_log(path: Path, step: int) -> None:
    """Drop CSV rows past ``step``: steps that ran after the last checkpoint will run again."""
    if not path.exists():
        return
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= step]  # and no torn row
    if len(kept) != len(rows):
        def write(tmp: str) -> None:
            with open(tmp, "w", newline="") as f:
                csv.writer(f).writerows(kept)

        atomic_write(path, write)


def write_loss_curve(log_csv: Path, history: list[dict[str, Any]], out_png: Path) -> Path:
    """Per-step training loss (light), its running mean, and per-epoch validation loss, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, losses = [], []
    if log_csv.exists():
        with log_csv.open(newline="") as f:
            for row in csv.DictReader(f):
                steps.append(int(row["step"]))
                losses.append(float(row["loss"]))
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    if losses:
        ax.plot(steps, losses, color="tab:blue", alpha=0.3, lw=0.8, label="train (per step)")
        k = max(1, len(losses) // 50)
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1 :], smooth, color="tab:blue", lw=1.5, label=f"train (mean of {k})")
    val = [(h["step"], h["val_loss"]) for h in history if h.get("val_loss") is not None
           and not math.isnan(h["val_loss"])]
    if val:
        ax.plot(*zip(*val, strict=True), "o-", color="tab:orange", label="validation (EMA weights)")
    ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("SNR-weighted v-loss (Eq. 6)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        return atomic_write(out_png, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)
