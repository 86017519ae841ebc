"""Training: pure schedule helpers (golden values), bit-exact resume, DDP gradient parity, outputs, bad inputs."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from samuel.checkpoint import NORM_KEY, TRAINING_KEY, load_model, read_json_metadata
from samuel.cli import main as cli_main
from samuel.config import SAMUeLConfig
from samuel.data import DataError, open_latent_dataset, write_latent_pair
from samuel.train import (
    BEST_WEIGHTS,
    CHECKPOINT_NAME,
    CURVE_PNG,
    HISTORY_JSON,
    LAST_WEIGHTS,
    LOG_CSV,
    DistContext,
    TrainConfig,
    Trainer,
    TrainingError,
    cosine_lr_factor,
    ema_decay_at,
    ema_update,
    epoch_batches,
    epoch_order,
    shutdown_distributed,
)

FRAMES = 16  # the tiny model takes any multiple of 8 frames; short clips keep these tests fast


def synthetic_pairs(n: int, frames: int = FRAMES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Smooth per-channel curves; the accompaniment is a fixed nonlinear function of the vocal (learnable)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)
    f = rng.uniform(0.05, 0.3, size=(n, 64, 1))
    ph = rng.uniform(0, 2 * np.pi, size=(n, 64, 1))
    vocal = np.sin(f * t + ph)
    accomp = 0.8 * np.cos(2 * f * t + ph) + 0.3 * vocal
    return vocal.astype(np.float32), accomp.astype(np.float32)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    write_latent_pair(tmp_path / "data", *synthetic_pairs(8))
    return tmp_path / "data"


def small_config(**overrides: object) -> TrainConfig:
    base: dict[str, object] = {"epochs": 2, "batch_size": 3, "lr": 1e-3, "precision": "fp32", "patience": 100}
    base.update(overrides)
    return TrainConfig(**base)  # type: ignore[arg-type]


# -- pure helpers -----------------------------------------------------------------------------------------------


def test_cosine_lr_golden() -> None:
    assert cosine_lr_factor(0, 100) == 1.0
    assert cosine_lr_factor(50, 100) == pytest.approx(0.5)
    assert cosine_lr_factor(100, 100) == pytest.approx(0.0)
    assert cosine_lr_factor(25, 100, 0.1) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert cosine_lr_factor(500, 100) == pytest.approx(0.0)  # clamped past the end


def test_ema_decay_warmup_golden() -> None:
    assert ema_decay_at(0, 0.999) == pytest.approx(0.1)
    assert ema_decay_at(90, 0.999) == pytest.approx(0.91)
    assert ema_decay_at(10**6, 0.999) == 0.999


def test_ema_update_formula() -> None:
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    expected = 0.9 * a.weight.detach().clone() + 0.1 * b.weight.detach()
    ema_update(a, b, 0.9)
    torch.testing.assert_close(a.weight.detach(), expected)


class _WithBuffers(torch.nn.Module):
    def __init__(self, table_len: int) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.register_buffer("count", torch.zeros(1))  # persistent: state, copied into the EMA
        self.register_buffer("table", torch.zeros(table_len), persistent=False)  # derived, rebuilt per copy


def test_ema_update_copies_state_buffers_and_leaves_derived_tables() -> None:
    """The live model's derived table has grown (a longer batch) and the EMA's has not: no copy, no size error."""
    ema, model = _WithBuffers(4), _WithBuffers(8)
    model.count.fill_(5.0)
    ema_update(ema, model, 0.9)
    assert float(ema.count) == 5.0
    assert ema.table.shape == (4,)


def test_epoch_order_is_a_seeded_permutation() -> None:
    idx = np.arange(10)
    a, b = epoch_order(idx, 0, 3), epoch_order(idx, 0, 3)
    np.testing.assert_array_equal(a, b)
    assert sorted(a.tolist()) == idx.tolist()
    assert not np.array_equal(a, epoch_order(idx, 0, 4))  # a new order each epoch
    assert not np.array_equal(a, epoch_order(idx, 1, 3))


def test_epoch_batches_keeps_a_partial_batch_unless_too_small_for_the_ranks() -> None:
    order = np.arange(7)
    assert [len(b) for b in epoch_batches(order, 3)] == [3, 3, 1]
    assert [len(b) for b in epoch_batches(order, 3, world_size=2)] == [3, 3]


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp8")
    with pytest.raises(ValueError, match="loss_weighting"):
        TrainConfig(loss_weighting="l1")
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="patience must be >= 1 epoch, got 0"):
        TrainConfig(patience=0)
    with pytest.raises(ValueError, match="save_every"):
        TrainConfig(save_every=-1)


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--patience", "0", "argument --patience: must be >= 1, got '0'"),
    ("--patience", "-1", "argument --patience: must be >= 1, got '-1'"),
    ("--max-steps", "0", "argument --max-steps: must be >= 1, got '0'"),
    ("--epochs", "two", "argument --epochs: not an integer: 'two'"),
])
def test_cli_refuses_counts_that_cannot_run_at_parse_time(tmp_path: Path, option: str, value: str, message: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    # --patience 0 exited 0 after "early-stopped at step 0", having written nothing
    with pytest.raises(SystemExit) as exit_:
        cli_main(["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "run"), option, value])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


# -- a whole run ------------------------------------------------------------------------------------------------


def _state(out: Path) -> dict[str, object]:
    return torch.load(out / CHECKPOINT_NAME, weights_only=True)


def _assert_same_tensors(a: object, b: object, where: str = "") -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _assert_same_tensors(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where  # type: ignore[arg-type]
        for i, (x, y) in enumerate(zip(a, b, strict=True)):  # type: ignore[call-overload]
            _assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _log_rows(out: Path) -> list[list[str]]:
    with (out / LOG_CSV).open(newline="") as f:
        return [row[:5] for row in csv.reader(f)]  # drop the wall-clock column


def test_interrupted_then_resumed_run_is_bit_exact(data_dir: Path, tmp_path: Path) -> None:
    """Stop mid-epoch (step 2 of 3) and again by a stop request in epoch 2; the resumed run ends identical."""
    dataset = open_latent_dataset(data_dir)
    cfg = small_config(epochs=3, save_every=2)
    whole = Trainer(SAMUeLConfig.tiny(), cfg, dataset, tmp_path / "whole", progress=False)
    assert whole.fit() == "completed"

    part = Trainer(SAMUeLConfig.tiny(), cfg, dataset, tmp_path / "part", progress=False)
    assert part.fit(max_steps=2) == "max-steps"
    part = Trainer.resume(tmp_path / "part", dataset, progress=False)
    assert part.state.step == 2 and part.state.step_in_epoch == 2

    def stop_at_5(trainer: Trainer) -> None:
        if trainer.state.step == 5:
            trainer.request_stop()  # what SIGINT / SIGTERM call

    assert part.fit(on_step=stop_at_5) == "interrupted"
    part = Trainer.resume(tmp_path / "part", dataset, progress=False)
    assert part.fit() == "completed"

    a, b = _state(tmp_path / "whole"), _state(tmp_path / "part")
    for key in ("model", "ema", "optimizer", "scheduler", "generator", "torch_rng", "state"):
        _assert_same_tensors(a[key], b[key], key)
    assert _log_rows(tmp_path / "whole") == _log_rows(tmp_path / "part")  # no duplicated or missing step
    for name in (BEST_WEIGHTS, LAST_WEIGHTS):
        ma, mb = load_model(tmp_path / "whole" / name), load_model(tmp_path / "part" / name)
        _assert_same_tensors(ma.state_dict(), mb.state_dict(), name)


def test_max_steps_on_an_epochs_last_step_validates_that_epoch(data_dir: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`--max-steps 3` with 3 steps per epoch ran the whole epoch but returned before validating it: history.json
    and model.safetensors stopped one epoch short, and the CLI said "(epoch 0)". Now the epoch is ended (validated,
    exported, checkpointed) before the stop, and a resumed run still equals an uninterrupted one bit for bit."""
    dataset = open_latent_dataset(data_dir)
    cfg = small_config(epochs=2)
    whole = Trainer(SAMUeLConfig.tiny(), cfg, dataset, tmp_path / "whole", progress=False)
    assert whole.fit() == "completed"

    part = Trainer(SAMUeLConfig.tiny(), cfg, dataset, tmp_path / "part", progress=False)
    steps = part.batches_per_epoch
    assert part.fit(max_steps=steps) == "max-steps"
    history = json.loads((tmp_path / "part" / HISTORY_JSON).read_text())
    assert [(h["epoch"], h["step"]) for h in history] == [(1, steps)]
    assert read_json_metadata(tmp_path / "part" / BEST_WEIGHTS, TRAINING_KEY)["steps"] == steps
    part = Trainer.resume(tmp_path / "part", dataset, progress=False)
    assert (part.state.epoch, part.state.step_in_epoch) == (1, 0)
    assert part.fit() == "completed"
    a, b = _state(tmp_path / "whole"), _state(tmp_path / "part")
    for key in ("model", "ema", "optimizer", "scheduler", "generator", "torch_rng", "state"):
        _assert_same_tensors(a[key], b[key], key)
    assert _log_rows(tmp_path / "whole") == _log_rows(tmp_path / "part")

    out = tmp_path / "cli"
    assert cli_main(["train", "--data", str(data_dir), "--out", str(out), "--preset", "tiny", "--epochs", "2",
                     "--batch-size", "3", "--precision", "fp32", "--max-steps", str(steps), "--no-progress"]) == 0
    assert f"max-steps at step {steps} (1 epochs done); best validation loss" in capsys.readouterr().out


def test_run_writes_weights_logs_and_curve(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    trainer = Trainer(SAMUeLConfig.tiny(), small_config(epochs=2), open_latent_dataset(data_dir), out,
                      progress=False)
    trainer.fit()
    history = json.loads((out / HISTORY_JSON).read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert all(math.isfinite(h["val_loss"]) and math.isfinite(h["train_loss"]) for h in history)
    assert (out / CURVE_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = _log_rows(out)
    assert rows[0] == ["step", "epoch", "lr", "loss", "grad_norm"]
    assert [int(r[0]) for r in rows[1:]] == list(range(1, trainer.state.step + 1))

    meta = read_json_metadata(out / BEST_WEIGHTS, TRAINING_KEY)
    assert meta is not None and meta["weights"] == "ema" and meta["steps"] >= 1
    norm = read_json_metadata(out / BEST_WEIGHTS, NORM_KEY)
    assert norm is not None and norm == trainer.norm.to_dict()
    # the shipped weights are the EMA, which differ from the optimised ones
    ema, raw = load_model(out / BEST_WEIGHTS), trainer.model
    assert any(not torch.equal(p, q) for p, q in zip(ema.state_dict().values(), raw.state_dict().values(),
                                                       strict=True))


def test_a_run_folder_names_its_weights_and_the_resume_state_is_not_taken_for_them(data_dir: Path,
                                                                                   tmp_path: Path) -> None:
    # `samuel generate --checkpoint runs/x` (the folder) and `--checkpoint runs/x/checkpoint.pt` both said
    # "no such weights file" or "not a readable safetensors file"
    from samuel.checkpoint import CheckpointError, resolve_weights_file

    out = tmp_path / "run"
    Trainer(SAMUeLConfig.tiny(), small_config(epochs=1), open_latent_dataset(data_dir), out, progress=False).fit()
    assert resolve_weights_file(out) == out / BEST_WEIGHTS
    assert resolve_weights_file(out / LAST_WEIGHTS) == out / LAST_WEIGHTS
    with pytest.raises(CheckpointError, match=r"resume state in checkpoint\.pt and the weights to generate with "
                                              r"in model\.safetensors beside it"):
        resolve_weights_file(out / CHECKPOINT_NAME)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"a folder without model\.safetensors"):
        resolve_weights_file(tmp_path / "empty")
    assert resolve_weights_file(tmp_path / "nowhere.safetensors") == tmp_path / "nowhere.safetensors"  # loaders say


def test_cli_on_a_full_disk_says_so_and_how_to_go_on(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # a full disk ended `samuel train` with a 20-line traceback ending in "OSError: [Errno 28] No space left on device"
    import errno

    import samuel.checkpoint
    from samuel.atomic import DiskFull

    def full(path, write):
        raise DiskFull(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(samuel.checkpoint, "atomic_write", full)
    out = tmp_path / "run"
    assert cli_main(["train", "--data", str(data_dir), "--out", str(out), "--preset", "tiny", "--epochs", "1",
                     "--batch-size", "3", "--precision", "fp32", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert f"samuel train: no space left on the device writing {out / BEST_WEIGHTS}" in err
    assert "add --resume" in err and "Traceback" not in err


def test_trains_on_latents_longer_than_the_presets_clip(tmp_path: Path) -> None:
    """Latents twice the tiny preset's num_frames (as the paper preset on 2048-frame latents): the live model grows
    its RoPE tables at the first step, the EMA copy at validation; both steps and validation run."""
    config = SAMUeLConfig.tiny()
    frames = 2 * config.num_frames
    write_latent_pair(tmp_path / "data", *synthetic_pairs(4, frames=frames))
    trainer = Trainer(config, small_config(epochs=1), open_latent_dataset(tmp_path / "data"), tmp_path / "run",
                      progress=False)
    assert trainer.fit() == "completed" and trainer.state.step == 1
    assert math.isfinite(trainer.state.history[-1]["val_loss"])
    assert trainer.model.rope_cos.shape[0] == frames and trainer.ema.rope_cos.shape[0] == frames
    assert load_model(tmp_path / "run" / LAST_WEIGHTS).config == dataclasses.replace(config, num_frames=frames)


def test_saved_config_records_the_trained_frames_and_generate_cuts_chunks_of_them(data_dir: Path,
                                                                                tmp_path: Path) -> None:
    """The tiny preset (num_frames 64) trained on 16-frame latents: the weights said num_frames 64, so generate cut
    64-frame chunks (2.97 s) for a model that had only seen 16 frames."""
    from samuel.chunking import HOP_LENGTH
    from samuel.generate import Accompanist, GenerateSettings

    out = tmp_path / "run"
    Trainer(SAMUeLConfig.tiny(), small_config(epochs=1), open_latent_dataset(data_dir), out, progress=False).fit()
    model = load_model(out / BEST_WEIGHTS)
    assert model.config.num_frames == FRAMES != SAMUeLConfig.tiny().num_frames
    assert read_json_metadata(out / BEST_WEIGHTS, TRAINING_KEY)["data"]["shapes"]["vocal"] == [8, 64, FRAMES]
    plan = Accompanist(model, None, None, checkpoint_info={}).chunk_plan(10 * 44100, GenerateSettings())
    assert plan.chunk == FRAMES * HOP_LENGTH


def test_weights_saved_before_the_config_recorded_the_trained_frames_use_them_with_a_warning(tmp_path: Path) -> None:
    from samuel.checkpoint import load_config, save_model
    from samuel.model import SAMUeL

    record = {"steps": 5, "data": {"shapes": {"vocal": [5, 64, FRAMES], "accomp": [5, 64, FRAMES]}}}
    path = save_model(SAMUeL(SAMUeLConfig.tiny()), tmp_path / "old.safetensors",
                      extra_metadata={TRAINING_KEY: json.dumps(record)})
    with pytest.warns(UserWarning, match=rf"old\.safetensors: its config says num_frames=64 but its training "
                                         rf"record says the model was trained on {FRAMES}-frame latents"):
        assert load_model(path).config.num_frames == FRAMES
    record["data"]["shapes"]["vocal"] = [5, 64, 100]  # not a length the model can take: the record is not trusted
    path = save_model(SAMUeL(SAMUeLConfig.tiny()), tmp_path / "odd.safetensors",
                      extra_metadata={TRAINING_KEY: json.dumps(record)})
    assert load_config(path).num_frames == 64


def test_without_validation_items_nothing_stops_early_and_the_last_epochs_weights_are_kept(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # one POPDB item: validate() gave NaN, every epoch counted as a bad one, and the run "early-stopped" after
    # --patience epochs ("best validation loss inf at epoch -1"), without a word at the start
    write_latent_pair(tmp_path / "one", *synthetic_pairs(1))
    out = tmp_path / "run"
    assert cli_main(["train", "--data", str(tmp_path / "one"), "--out", str(out), "--preset", "tiny", "--epochs", "4",
                     "--patience", "2", "--batch-size", "1", "--precision", "fp32", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert ("train: 0 validation items (one item only: nothing to hold out): no early stopping; model.safetensors "
            "gets each finished epoch's EMA weights, so it ends with the last epoch's") in captured.err
    assert "completed at step 4 (4 epochs done); no validation items, no early stopping" in captured.out
    history = json.loads((out / HISTORY_JSON).read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4] and all(h["val_loss"] is None for h in history)
    meta = read_json_metadata(out / BEST_WEIGHTS, TRAINING_KEY)
    assert meta["epochs_done"] == 4 and meta["n_val"] == 0 and meta["best_val_loss"] is None


def test_a_diverged_validation_loss_counts_against_patience_and_keeps_the_best_weights(data_dir: Path,
                                                                                     tmp_path: Path) -> None:
    out = tmp_path / "run"
    trainer = Trainer(SAMUeLConfig.tiny(), small_config(epochs=3, patience=1), open_latent_dataset(data_dir), out,
                      progress=False)
    trainer.fit(max_steps=3)  # epoch 1, validated
    best = (out / BEST_WEIGHTS).read_bytes()
    trainer.validate = lambda: math.nan  # type: ignore[method-assign]
    assert trainer.fit() == "early-stopped" and trainer.state.epoch == 2
    assert (out / BEST_WEIGHTS).read_bytes() == best and (out / LAST_WEIGHTS).read_bytes() != best


def test_norm_stats_come_from_the_training_split_only(data_dir: Path, tmp_path: Path) -> None:
    dataset = open_latent_dataset(data_dir)
    trainer = Trainer(SAMUeLConfig.tiny(), small_config(), dataset, tmp_path / "run", progress=False)
    _vocal, accomp = dataset.read_batch(trainer.train_idx)
    np.testing.assert_allclose(trainer.norm.accomp_mean, accomp.double().mean(dim=(0, 2)).numpy(), rtol=1e-6)
    assert set(trainer.train_idx).isdisjoint(trainer.val_idx) and len(trainer.val_idx) == 1


def test_bf16_autocast_step_runs(data_dir: Path, tmp_path: Path) -> None:
    trainer = Trainer(SAMUeLConfig.tiny(), small_config(precision="bf16"), open_latent_dataset(data_dir),
                      tmp_path / "run", progress=False)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    stats = trainer.train_step(trainer.train_idx[:3])
    assert math.isfinite(stats["loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))


# -- bad inputs -------------------------------------------------------------------------------------------------


def test_resume_without_a_checkpoint_names_the_file(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match=r"checkpoint\.pt: no checkpoint"):
        Trainer.resume(tmp_path / "nothing", open_latent_dataset(data_dir))


def test_resume_with_other_data_is_refused(data_dir: Path, tmp_path: Path) -> None:
    trainer = Trainer(SAMUeLConfig.tiny(), small_config(), open_latent_dataset(data_dir), tmp_path / "run",
                      progress=False)
    trainer.fit(max_steps=1)
    other = tmp_path / "other"
    vocal, accomp = synthetic_pairs(8, seed=1)
    write_latent_pair(other, vocal, accomp)
    with pytest.raises(TrainingError, match="same --data"):
        Trainer.resume(tmp_path / "run", open_latent_dataset(other))


def test_cli_refuses_to_overwrite_a_run_and_reports_bad_data(data_dir: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--data", str(data_dir), "--out", str(tmp_path / "run"), "--preset", "tiny", "--epochs", "1",
            "--batch-size", "3", "--precision", "fp32", "--no-progress"]
    assert cli_main(args) == 0
    assert cli_main(args) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert cli_main([*args, "--resume", "--epochs", "2"]) == 0
    assert json.loads((tmp_path / "run" / HISTORY_JSON).read_text())[-1]["epoch"] == 2

    bad = tmp_path / "bad"
    write_latent_pair(bad, *synthetic_pairs(4))
    np.save(bad / "latent_accomp.npy", np.zeros((3, 64, FRAMES), np.float32))
    assert cli_main(["train", "--data", str(bad), "--out", str(tmp_path / "r2"), "--preset", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "latent_accomp.npy" in err and "(4, 64, 16)" in err and "(3, 64, 16)" in err


def test_latents_whose_frames_the_unet_cannot_halve_are_named_at_open(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # T=100 ended in a traceback from inside fit: "x_t has T=100 frames; ..." without the file
    write_latent_pair(tmp_path / "data", *synthetic_pairs(4, frames=100))
    with pytest.raises(DataError, match=r"data/latent_vocal\.npy: 100 frames per item; the model needs a multiple "
                                        r"of 8 .*cut the items to 96 frames"):
        Trainer(SAMUeLConfig.tiny(), small_config(), open_latent_dataset(tmp_path / "data"), tmp_path / "run")
    assert cli_main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--preset", "tiny",
                     "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "latent_vocal.npy: 100 frames per item" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_fresh_run_into_an_earlier_runs_folder_is_refused_and_a_resumed_one_cuts_the_log(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a run killed (-9) before its first checkpoint left train_log.csv; the rerun appended its steps 1..N to it, and a
    # folder whose checkpoint.pt was deleted had its model.safetensors overwritten: the guard looked at checkpoint.pt
    out = tmp_path / "run"
    args = ["train", "--data", str(data_dir), "--out", str(out), "--preset", "tiny", "--epochs", "1",
            "--batch-size", "3", "--precision", "fp32", "--no-progress"]
    out.mkdir()
    (out / LOG_CSV).write_text("step,epoch,lr,loss,grad_norm,seconds\n1,1,1e-3,2.0,1.0,0.1\n2,1,1e-3,1.9,1.0,0.1\n")
    before = (out / LOG_CSV).read_bytes()
    assert cli_main(args) == 2
    assert (f"{out}: holds an earlier run's train_log.csv (no checkpoint.pt to resume from); a new run would append "
            "to its log and overwrite its weights: delete them or choose another --out") in capsys.readouterr().err
    assert (out / LOG_CSV).read_bytes() == before and sorted(p.name for p in out.iterdir()) == [LOG_CSV]

    (out / LOG_CSV).unlink()
    assert cli_main(args) == 0
    (out / CHECKPOINT_NAME).unlink()
    weights = (out / BEST_WEIGHTS).read_bytes()
    assert cli_main(args) == 2
    assert "holds an earlier run's model.safetensors, last.safetensors" in capsys.readouterr().err
    assert (out / BEST_WEIGHTS).read_bytes() == weights

    # a resumed run drops the rows a run wrote after its last checkpoint (killed between checkpoints)
    part = tmp_path / "part"
    Trainer(SAMUeLConfig.tiny(), small_config(), open_latent_dataset(data_dir), part, progress=False).fit(max_steps=2)
    with (part / LOG_CSV).open("a") as f:
        f.write("3,1,1e-3,1.8,1.0,0.1\n4,2,1e-3,1.7,1.0,0.1\n")
    assert cli_main(["train", "--data", str(data_dir), "--out", str(part), "--resume", "--max-steps", "3",
                     "--no-progress"]) == 0
    assert [r[0] for r in _log_rows(part)[1:]] == ["1", "2", "3"]


def test_cli_says_what_it_wrote_and_does_nothing_past_max_steps(data_dir: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    # "weights in RUN" was printed with no model.safetensors there, and `--resume --max-steps 1` on a run at step 2
    # trained a third step
    out = tmp_path / "run"
    common = ["train", "--data", str(data_dir), "--out", str(out), "--no-progress"]
    assert cli_main([*common, "--preset", "tiny", "--batch-size", "3", "--precision", "fp32", "--max-steps", "2"]) == 0
    printed = capsys.readouterr().out
    assert (f"no model.safetensors yet (it is written when an epoch ends); {out / CHECKPOINT_NAME} holds the state "
            "that --resume continues") in printed
    assert "no epoch validated yet" in printed and "inf at epoch -1" not in printed  # not the sentinels
    assert not (out / BEST_WEIGHTS).exists()
    state = (out / CHECKPOINT_NAME).read_bytes()
    assert cli_main([*common, "--resume", "--max-steps", "1"]) == 0
    assert (f"train: the run in {out} is already at step 2, at or past --max-steps 1: nothing to do"
            in capsys.readouterr().out)
    assert (out / CHECKPOINT_NAME).read_bytes() == state and len(_log_rows(out)) == 3
    resumed = Trainer.resume(out, open_latent_dataset(data_dir), progress=False)  # the library's fit alike
    assert resumed.fit(max_steps=1) == "max-steps" and resumed.state.step == 2
    assert cli_main([*common, "--resume", "--max-steps", "3"]) == 0
    printed = capsys.readouterr().out
    assert "max-steps at step 3 (1 epochs done); best validation loss" in printed
    assert printed.rstrip().endswith(f"; weights in {out / BEST_WEIGHTS}")


def test_cli_resume_keeps_the_stored_epoch_target(data_dir: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`--resume` without --epochs keeps the run's target (and so its LR schedule); other run options are ignored
    and the log says so; an explicit --epochs replaces the target."""
    out = tmp_path / "run"
    common = ["train", "--data", str(data_dir), "--out", str(out), "--no-progress"]
    assert cli_main([*common, "--preset", "tiny", "--epochs", "3", "--batch-size", "3", "--precision", "fp32",
                     "--max-steps", "2"]) == 0
    captured = capsys.readouterr()
    assert "max-steps at step 2 (0 epochs done, 2 of 3 steps into epoch 1)" in captured.out
    assert (f"train: {FRAMES}-frame items (0.74 s): the model's chunk length, recorded in its config for generate; "
            "the tiny preset's default is 64") in captured.err
    assert cli_main([*common, "--resume", "--max-steps", "4", "--lr", "0.5", "--preset", "paper"]) == 0
    err = capsys.readouterr().err
    assert "keeping the stored run's target of 3 epochs (9 steps of cosine LR decay)" in err
    assert "ignored with --resume (the stored run's values are kept): --lr, --preset" in err
    state = _state(out)
    assert state["train_config"]["epochs"] == 3 and state["train_config"]["lr"] == TrainConfig().lr
    # 7 training items in batches of 3: 3 steps per epoch, 9 in all; the LR after step 4 is on that cosine
    lr = state["scheduler"]["_last_lr"][0]
    assert lr == pytest.approx(TrainConfig().lr * cosine_lr_factor(4, 9))

    assert cli_main([*common, "--resume", "--max-steps", "5", "--epochs", "4"]) == 0
    assert "--epochs 4 given (the stored run's target was 3): the cosine LR decay spans 12 steps" in (
        capsys.readouterr().err)
    assert _state(out)["train_config"]["epochs"] == 4


# -- DistributedDataParallel ------------------------------------------------------------------------------------


def _ddp_worker(rank: int, world: int, init_file: str, data: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        trainer = Trainer(SAMUeLConfig.tiny(), small_config(batch_size=4), open_latent_dataset(data),
                          Path(out) / f"rank{rank}", dist_ctx=DistContext(rank, world, rank), progress=False)
        batch = trainer.train_idx[:4]
        loss, _ = trainer.compute_loss(batch, torch.Generator().manual_seed(123))
        loss.backward()  # DDP averages the gradients across ranks here
        grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
        torch.save(grads, Path(out) / f"grads{rank}.pt")
        del trainer  # drop the DDP wrapper before the group goes (see samuel.train.shutdown_distributed)
    finally:
        shutdown_distributed()


def test_ddp_gradients_match_a_single_process_run(data_dir: Path, tmp_path: Path) -> None:
    """2 gloo processes, 2 items each, equal the single-process gradient of the same 4-item global batch."""
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(data_dir), str(tmp_path)), nprocs=2, join=True)
    single = Trainer(SAMUeLConfig.tiny(), small_config(batch_size=4), open_latent_dataset(data_dir),
                     tmp_path / "single", progress=False)
    loss, _ = single.compute_loss(single.train_idx[:4], torch.Generator().manual_seed(123))
    loss.backward()
    expected = {n: p.grad for n, p in single.model.named_parameters() if p.grad is not None}
    for rank in (0, 1):
        got = torch.load(tmp_path / f"grads{rank}.pt", weights_only=True)
        assert got.keys() == expected.keys()
        for name in expected:
            torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.slow
def test_torchrun_two_processes_trains_like_one(data_dir: Path, tmp_path: Path) -> None:
    """`torchrun --nproc_per_node 2 samuel train` (gloo) ends with the weights of the single-process run."""
    common = ["--data", str(data_dir), "--preset", "tiny", "--epochs", "1", "--batch-size", "4",
              "--precision", "fp32", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # --standalone: a free rendezvous port, so concurrent test processes never collide on torchrun's 29500
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "samuel.cli", "train", "--out", str(tmp_path / "ddp"), *common],
                         env=env, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert cli_main(["train", "--out", str(tmp_path / "one"), *common]) == 0
    a, b = load_model(tmp_path / "ddp" / LAST_WEIGHTS), load_model(tmp_path / "one" / LAST_WEIGHTS)
    # Adam's first steps divide by sqrt(v): an element whose gradient is near 0 takes an update that depends on the
    # summation order (allreduce of two half-batches vs one batch), so a rare element may differ by a fraction of
    # one step (seen: 1 element of 12,288 by 2.4e-5 on AMD EPYC, lr 3.5e-4). A real fault (no allreduce, wrong
    # averaging, other data) moves most elements by about lr.
    lr = TrainConfig().lr  # the CLI's default, which both runs use
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        d = (p.float() - q.float()).abs()
        off = int((d > 1e-5).sum())
        assert off <= max(1, p.numel() // 1000) and float(d.max()) < 0.25 * lr, (name, off, float(d.max()))
    meta = read_json_metadata(tmp_path / "ddp" / LAST_WEIGHTS, TRAINING_KEY)
    assert meta is not None and meta["world_size"] == 2


# -- learning ---------------------------------------------------------------------------------------------------


def _uniform_v_loss(trainer: Trainer, n_t: int = 64) -> float:
    """Unweighted v-loss (paper Eq. 5) of the raw weights on the training items, averaged over ``n_t`` timesteps
    spread evenly over [0, 799], with fixed noise: the same number before and after training."""
    from samuel.diffusion import q_sample, v_target

    vocal, accomp = trainer._normalised_batch(trainer.train_idx)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for step in torch.linspace(0, trainer.model_config.num_train_timesteps - 1, n_t).round().long().tolist():
        t = torch.full((len(accomp),), step)
        noise = torch.randn(accomp.shape, generator=gen)
        abar = trainer.model.alpha_bar[t]
        with torch.no_grad():
            v = trainer.model(q_sample(accomp, noise, abar), t, vocal)
        losses.append(float((v - v_target(accomp, noise, abar)).pow(2).mean()))
    return float(np.mean(losses))


@pytest.mark.slow
def test_tiny_preset_overfits_four_pairs_loss_down_10x(tmp_path: Path) -> None:
    """4 synthetic pairs (3 in the training split), tiny preset, 2,500 steps with cosine decay: the uniform-t v-loss
    falls more than 10x (measured, docs/design.md "Training on four pairs"). The model has to learn both parts
    of v: the accompaniment, memorised from the vocal, and the noise, passed through from x_t with a t-dependent
    gain."""
    torch.set_num_threads(1)  # the figure in docs/design.md is single-threaded; results do not depend on it
    write_latent_pair(tmp_path / "d", *synthetic_pairs(4))
    steps = 2500
    trainer = Trainer(SAMUeLConfig.tiny(), small_config(batch_size=4, lr=2e-3, loss_weighting="none",
                                                        epochs=steps), open_latent_dataset(tmp_path / "d"),
                      tmp_path / "run", progress=False)
    before = _uniform_v_loss(trainer)
    for _ in range(steps):  # one batch per epoch: the cosine schedule spans all the steps
        trainer.train_step(trainer.train_idx)
        trainer.state.step += 1
    after = _uniform_v_loss(trainer)
    print(f"four pairs: uniform v-loss {before:.4f} -> {after:.4f} ({before / after:.1f}x)")
    assert before / after > 10.0, (before, after)
