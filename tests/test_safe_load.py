"""Weights-only unpickling on every loading path, even with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 set.

Each test saves a checkpoint whose pickle would create a marker file when unpickled unsafely, loads it through one
of our paths with the variable set, and checks for a clear error and no marker. The first test shows that the
same file does run code through a plain ``torch.load`` under that variable, so the others can fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from samuel.safe_load import UnsafeCheckpointError, check_torch_version, load_weights_only


class _TouchOnLoad:
    """Unpickling this calls ``open(marker, "w")``: a stand-in for any code a crafted checkpoint could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def _crafted(path: Path, marker: Path, **extra: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {"w": torch.zeros(2)}, **extra, "payload": _TouchOnLoad(marker)}, path)
    return path


@pytest.fixture
def unsafe_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    monkeypatch.delenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", raising=False)


def test_the_crafted_file_runs_code_through_a_plain_torch_load(tmp_path: Path, unsafe_env: None) -> None:
    path, marker = _crafted(tmp_path / "evil.pt", tmp_path / "marker"), tmp_path / "marker"
    with pytest.warns(UserWarning, match="TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"):
        torch.load(path)  # what jukebox-infer's load_checkpoint does
    assert marker.exists()


def test_load_weights_only_refuses_whatever_the_environment_says(tmp_path: Path, unsafe_env: None) -> None:
    path, marker = _crafted(tmp_path / "evil.pt", tmp_path / "marker"), tmp_path / "marker"
    with pytest.raises(UnsafeCheckpointError, match=r"evil\.pt: refused to unpickle .*GLOBAL") as info:
        load_weights_only(path)
    assert "open" in info.value.reason
    with pytest.raises(UnsafeCheckpointError):
        load_weights_only(path, mmap=True)
    assert not marker.exists()
    # a checkpoint of tensors and plain containers still loads, mmap or not
    torch.save({"w": torch.arange(3.0), "step": 7, "names": ["a", "b"]}, tmp_path / "ok.pt")
    for mmap in (False, True):
        got = load_weights_only(tmp_path / "ok.pt", mmap=mmap)
        assert got["step"] == 7 and got["names"] == ["a", "b"] and torch.equal(got["w"], torch.arange(3.0))


def test_old_torch_is_refused() -> None:
    with pytest.raises(RuntimeError, match=r"torch 2\.5\.1 is older than 2\.6"):
        check_torch_version("2.5.1")
    check_torch_version("2.6.0+cpu")
    check_torch_version("10.0.0")


def test_codec_checkpoint_path(tmp_path: Path, unsafe_env: None) -> None:
    from samuel.codec import CodecError, OobleckCodec

    marker = tmp_path / "marker"
    path = _crafted(tmp_path / "model.ckpt", marker)
    with pytest.raises(CodecError, match=r"model\.ckpt: cannot be read safely .*GLOBAL"):
        OobleckCodec.load(path)
    assert not marker.exists()


def test_training_resume_path(tmp_path: Path, unsafe_env: None) -> None:
    import numpy as np

    from samuel.data import open_latent_dataset, write_latent_pair
    from samuel.train import CHECKPOINT_NAME, Trainer, TrainingError

    rng = np.random.default_rng(0)
    write_latent_pair(tmp_path / "data", *rng.standard_normal((2, 4, 64, 16)).astype(np.float32))
    marker = tmp_path / "marker"
    _crafted(tmp_path / "run" / CHECKPOINT_NAME, marker, format="samuel-train-state/1")
    with pytest.raises(TrainingError, match=r"checkpoint\.pt: refused to resume .*GLOBAL"):
        Trainer.resume(tmp_path / "run", open_latent_dataset(tmp_path / "data"), progress=False)
    assert not marker.exists()


def test_samuel_weights_path(tmp_path: Path, unsafe_env: None) -> None:
    """SAMUeL weights are safetensors, never a pickle: a pickle under that name is not read as one."""
    from samuel.checkpoint import CheckpointError, load_model

    marker = tmp_path / "marker"
    path = _crafted(tmp_path / "model.safetensors", marker)
    with pytest.raises(CheckpointError, match=r"model\.safetensors: not a readable safetensors file"):
        load_model(path)
    assert not marker.exists()


def test_jukebox_adapter_path(tmp_path: Path, unsafe_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The adapter reads the checkpoints itself; jukebox-infer's own torch.load (unsafe under the variable) is never
    reached."""
    import jukebox_infer.make_models as mm

    from baselines.base import AdapterError, WeightsChoice
    from baselines.jukebox import Jukebox, checkpoint_names

    def no_jukebox_infer_load(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"jukebox-infer opened a checkpoint itself: {args}")

    monkeypatch.setattr(mm, "load_checkpoint", no_jukebox_infer_load)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    marker = tmp_path / "marker"
    for name, rel in checkpoint_names("5b_lyrics").items():
        if not name.startswith("url:"):
            _crafted(tmp_path / "ckpt" / rel, marker, step=1)
    adapter = Jukebox(WeightsChoice("pretrained", source=str(tmp_path / "ckpt")))
    assert adapter.status.kind == "pretrained"
    with pytest.raises(AdapterError, match=r"jukebox: .*vqvae\.pth\.tar: refused to unpickle .*GLOBAL"):
        adapter.load()
    assert not marker.exists()
