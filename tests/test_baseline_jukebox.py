"""The Jukebox adapter: pre-generated files, a tiny checkpoint in jukebox-infer's real format, meta-device counts.

The checks every generator passes (missing weights, unit hooks, counts of the loaded model, batch = single, seeds)
are in test_generator_conformance.py."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from tiny_generators import (
    JUKEBOX_TINY,
    JUKEBOX_TINY_HOP,
    quiet_jukebox_infer,
    save_tiny_jukebox,
    tiny_jukebox_modules,
)

from baselines.base import GenerationRequest, ItemError, WeightsChoice
from baselines.jukebox import Jukebox

TINY, TINY_HOP = JUKEBOX_TINY, JUKEBOX_TINY_HOP

# Golden: jukebox-infer 5b_lyrics ("vqvae", "upsampler_level_0", "upsampler_level_1", "prior_5b_lyrics") built on
# the meta device by Jukebox.architecture_on_meta and counted by baselines.base.count_parameters (unique tensors).
GOLDEN_5B_LYRICS = {
    "codec": 1_485_763,
    "prior_top": 5_522_401_200,
    "conditioners": 118_105_600,
    "upsampler_middle": 981_298_176,
    "upsampler_bottom": 981_298_176,
}
GOLDEN_5B_LYRICS_TOTAL = 7_604_588_915


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # jukebox-infer's cache (~/.cache) is empty here
    quiet_jukebox_infer(monkeypatch)


def _request(item: str, seed: int = 0, duration_s: float = 0.1, prompt: str = "", vocal: str | None = None):
    return GenerationRequest(item, seed, duration_s, prompt, Path(vocal) if vocal else None)


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    """A folder in jukebox-infer's layout and format: {"model": state_dict} per file (one with DDP 'module.' keys)."""
    folder = tmp_path_factory.mktemp("jukebox_ckpt")
    return folder, save_tiny_jukebox(folder)


@pytest.fixture(scope="module")
def tiny_pretrained(tiny_checkpoints: tuple[Path, dict[str, dict]]) -> Jukebox:
    adapter = Jukebox(WeightsChoice("pretrained", source=str(tiny_checkpoints[0])), hparams=TINY)
    adapter.load()
    return adapter


# -- outputs folder ------------------------------------------------------------------------------------------------
def test_outputs_folder_mode(tmp_path: Path) -> None:
    folder = tmp_path / "jukebox_outputs"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    soundfile.write(folder / "item-a.wav", rng.uniform(-0.5, 0.5, (4410, 2)).astype(np.float32), 44_100)
    soundfile.write(folder / "sub" / "song_b.flac", rng.uniform(-0.5, 0.5, 2205).astype(np.float32), 22_050)
    soundfile.write(folder / "x.wav", np.zeros((441, 2), np.float32), 44_100)
    soundfile.write(folder / "x.flac", np.zeros((441, 2), np.float32), 44_100)
    soundfile.write(folder / "extra.wav", np.zeros((441, 2), np.float32), 44_100)
    adapter = Jukebox(WeightsChoice("auto", source=str(folder)))
    assert adapter.status.kind == "files" and adapter.status.quality_ok
    assert adapter.total_units(_request("item-a")) is None
    a, b = adapter.generate([_request("item-a"), _request("b", vocal="vocals/song_b.wav")])
    for out in (a, b):
        assert out.audio.shape == (2, 4410) and out.audio.dtype == np.float32 and out.sample_rate == 44_100
    assert adapter._index is not None
    requests = [_request("item-a"), _request("b", vocal="vocals/song_b.wav"), _request("missing"), _request("x")]
    assert [p.name for p in adapter._index.extra(requests)] == ["extra.wav"]
    with pytest.raises(ItemError, match=r"jukebox_outputs.*'missing'"):
        adapter.generate([_request("missing")])
    with pytest.raises(ItemError, match=r"jukebox_outputs.*2 files match item 'x'"):
        adapter.generate([_request("x")])
    assert Jukebox(WeightsChoice("pretrained", source=str(folder))).status.kind == "files"


# -- real checkpoint format ----------------------------------------------------------------------------------------
def test_tiny_checkpoint_loads_exactly(tiny_checkpoints: tuple[Path, dict[str, dict]],
                                       tiny_pretrained: Jukebox) -> None:
    folder, states = tiny_checkpoints
    status = tiny_pretrained.status
    assert status.kind == "pretrained" and status.source == str(folder) and status.sha256.startswith("head-sha256:")
    loaded = [tiny_pretrained._vqvae, *tiny_pretrained._priors]
    for module, name in zip(loaded, ("vqvae", "upsampler_level_0", "upsampler_level_1", "prior_5b_lyrics"),
                            strict=True):
        for key, value in states[name].items():
            assert torch.equal(module.state_dict()[key], value), (name, key)
    # jukebox-infer's cache layout (<root>/jukebox/models/...) resolves too
    cache_root = folder.parent / "cache_root"
    (cache_root / "jukebox").mkdir(parents=True, exist_ok=True)
    link = cache_root / "jukebox" / "models"
    if not link.exists():
        link.symlink_to(folder)
    assert Jukebox(WeightsChoice("pretrained", source=str(cache_root)), hparams=TINY).status.kind == "pretrained"


def test_generate_top_level_prefix(tiny_pretrained: Jukebox) -> None:
    request = _request("song", seed=3, duration_s=0.01)  # 441 samples -> 56 top-level tokens
    assert tiny_pretrained.total_units(request) == 56
    ticks: list[int] = []
    (first,) = tiny_pretrained.generate([request], max_units=5, on_unit=lambda: ticks.append(1))
    assert len(ticks) == 5
    assert first.info["units_done"] == 5 and first.info["partial"] and "top-level" in first.info["timed_units_cover"]
    assert first.audio.shape == (2, 5 * TINY_HOP) and first.audio.dtype == np.float32
    assert np.array_equal(first.audio[0], first.audio[1])
    # more units than the top context (16 tokens): jukebox-infer's windowed sampling (3 windows advancing by
    # 2 tokens), still one tick per new token
    ticks.clear()
    (long,) = tiny_pretrained.generate([request], max_units=20, on_unit=lambda: ticks.append(1))
    assert len(ticks) == 20 and long.audio.shape == (2, 20 * TINY_HOP)


def test_generate_full_pipeline_and_prompt_genre(tiny_pretrained: Jukebox) -> None:
    request = _request("song", seed=1, duration_s=0.002, prompt="An upbeat POP-rock tune")  # 88.2 samples
    ticks: list[int] = []
    (out,) = tiny_pretrained.generate([request], on_unit=lambda: ticks.append(1))
    assert tiny_pretrained.total_units(request) == 12  # ceil(88.2 / 8): sampled to 96 samples, cut to 88
    assert len(ticks) == 12 and not out.info["partial"]
    assert out.audio.shape == (2, 88) and np.isfinite(out.audio).all()
    assert out.info["genre"] == "pop rock"
    assert out.info["upsampler_tokens"] == {"upsampler_bottom": 48, "upsampler_middle": 24}
    with pytest.raises(ItemError, match="too short for Jukebox's upsamplers"):
        tiny_pretrained.generate([_request("short", duration_s=0.0005)])


def test_random_tiny_generates() -> None:
    adapter = Jukebox(WeightsChoice("random"), hparams=TINY)
    (out,) = adapter.generate([_request("r", seed=0, duration_s=0.01)], max_units=3)
    assert out.info["weights"] == "random" and out.audio.shape == (2, 3 * TINY_HOP)
    assert np.abs(out.audio).max() > 0


# -- parameter counts ----------------------------------------------------------------------------------------------
def test_tiny_counts_split_by_component() -> None:
    counts = Jukebox(hparams=TINY).parameter_counts()  # the total is the conformance suite's check; the split here
    vqvae, priors = tiny_jukebox_modules()
    assert counts.by_component["codec"] == sum(p.numel() for p in vqvae.parameters())
    assert counts.by_component["upsampler_bottom"] == sum(p.numel() for p in priors[0].parameters())
    top = priors[2]
    assert counts.by_component["prior_top"] == sum(p.numel() for p in top.prior.parameters())
    assert counts.by_component["conditioners"] == sum(p.numel() for p in top.parameters()) - counts.by_component[
        "prior_top"]


def test_real_5b_lyrics_counts_on_meta() -> None:
    adapter = Jukebox()  # how long this takes is a benchmark's business, not a unit test's (it varies with load)
    vqvae, priors = adapter.architecture_on_meta()
    counts = adapter.parameter_counts()
    assert all(t.is_meta for m in (vqvae, *priors) for t in (*m.parameters(), *m.buffers()))
    assert counts.by_component == GOLDEN_5B_LYRICS and counts.total == GOLDEN_5B_LYRICS_TOTAL
    # parameters fp32 x 1.25 plus the top prior's key/value cache
    assert adapter.memory_estimate_bytes() == int(GOLDEN_5B_LYRICS_TOTAL * 4 * 1.25) + 79 * 2 * 8192 * 1200 * 4


def test_never_imports_torchaudio() -> None:
    assert "torchaudio" not in sys.modules and "torchvision" not in sys.modules
