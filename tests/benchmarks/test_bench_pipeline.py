"""Training step, codec and full `samuel generate` timings (issue 3), real-size architectures with random weights.

- training: one optimiser step of the paper model at batch 16, T = 1024, fp32 and bf16 autocast;
- codec: the Stable Audio Open VAE at its real size (diffusers' default AutoencoderOobleck config is the SAO
  config; tests/test_codec.py checks that), random init, encode and decode of a 5.94 s excerpt, per second of audio;
- pipeline: one 47.55 s vocal through `Accompanist.run` (load, encode, sample, decode, write), with the share of
  each stage taken from the same run.

Run with `nox -s bench`. Nothing here is a quality result.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from samuel import SAMUeLConfig
from samuel.audio import write_audio
from samuel.chunking import CHUNK_SAMPLES, HOP_LENGTH, SAMPLE_RATE
from samuel.codec import OobleckCodec
from samuel.data import write_latent_pair
from samuel.generate import Accompanist, GenerateSettings
from samuel.model import SAMUeL, fill_zero_init_layers
from samuel.train import TrainConfig, Trainer

CODEC_FRAMES = 128  # 5.94 s: long enough that per-second cost is linear, short enough to run in seconds


@pytest.fixture(scope="module")
def real_size_codec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from diffusers import AutoencoderOobleck

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("oobleck-real-size")
    AutoencoderOobleck().save_pretrained(path)  # defaults = the Stable Audio Open VAE architecture, random init
    return path


@pytest.fixture(scope="module")
def codec(real_size_codec_dir: Path) -> OobleckCodec:
    return OobleckCodec.load(real_size_codec_dir)


@pytest.fixture(scope="module")
def latent_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gen = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("latents")
    write_latent_pair(path, gen.standard_normal((20, 64, 1024), dtype=np.float32),
                      gen.standard_normal((20, 64, 1024), dtype=np.float32))
    return path


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_train_step_batch16(benchmark, latent_data, tmp_path, precision, summary):
    """One AdamW step (forward, backward, clip, step, EMA) of the paper model, global batch 16, T = 1024."""
    from samuel.data import open_latent_dataset

    trainer = Trainer(SAMUeLConfig(), TrainConfig(batch_size=16, precision=precision), open_latent_dataset(latent_data),
                      tmp_path, progress=False)
    batch = trainer.train_idx[:16]
    benchmark.pedantic(trainer.train_step, args=(batch,), rounds=3, warmup_rounds=1)
    median = benchmark.stats.stats.median
    summary.append(f"train step, batch 16, T=1024, {precision}: {median:.2f} s "
                   f"({16 * 1024 * HOP_LENGTH / SAMPLE_RATE / median:.0f} s of audio per s)")


def test_codec_encode_per_second(benchmark, codec, summary):
    audio = torch.randn(1, 2, CODEC_FRAMES * HOP_LENGTH, generator=torch.Generator().manual_seed(0)) * 0.1
    benchmark.pedantic(codec.encode, args=(audio,), rounds=3, warmup_rounds=1)
    seconds = CODEC_FRAMES * HOP_LENGTH / SAMPLE_RATE
    per_s = benchmark.stats.stats.median / seconds
    benchmark.extra_info["seconds_per_audio_second"] = per_s
    summary.append(f"codec encode (SAO VAE size, random init): {per_s:.3f} s per second of audio "
                   f"({per_s * CHUNK_SAMPLES / SAMPLE_RATE:.1f} s per 47.55 s chunk)")


def test_codec_decode_per_second(benchmark, codec, summary):
    latents = torch.randn(1, 64, CODEC_FRAMES, generator=torch.Generator().manual_seed(0))
    benchmark.pedantic(codec.decode, args=(latents,), rounds=3, warmup_rounds=1)
    seconds = CODEC_FRAMES * HOP_LENGTH / SAMPLE_RATE
    per_s = benchmark.stats.stats.median / seconds
    benchmark.extra_info["seconds_per_audio_second"] = per_s
    summary.append(f"codec decode (SAO VAE size, random init): {per_s:.3f} s per second of audio "
                   f"({per_s * CHUNK_SAMPLES / SAMPLE_RATE:.1f} s per 47.55 s chunk)")


def test_generate_one_chunk_stage_shares(benchmark, real_size_codec_dir, tmp_path, summary):
    """A 47.55 s vocal through the whole pipeline: where the time goes (codec vs U-Net), one round."""
    torch.manual_seed(0)
    model = fill_zero_init_layers(SAMUeL(SAMUeLConfig())).eval()
    accompanist = Accompanist(model, OobleckCodec.load(real_size_codec_dir), None,
                              checkpoint_info={"trained": False, "path": "random init"})
    t = np.arange(CHUNK_SAMPLES) / SAMPLE_RATE
    vocal = (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0)).astype(np.float32)
    src = write_audio(tmp_path / "vocal.wav", np.stack([vocal, vocal]))
    settings = GenerateSettings(sampler="dpmpp", steps=25)
    results: list = []

    def run() -> None:
        results[:] = accompanist.run([(src, tmp_path / "out.wav", None)], settings, overwrite=True, progress=False)

    t0 = time.perf_counter()
    benchmark.pedantic(run, rounds=1, warmup_rounds=0)
    total = time.perf_counter() - t0
    assert results[0].status == "ok", results[0].message
    timings = results[0].timings
    codec_s = timings["encode_s"] + timings["decode_s"]
    benchmark.extra_info.update(timings)
    summary.append(
        f"generate 47.55 s (dpmpp 25 + CFG, fp32): total {total:.1f} s; encode {timings['encode_s']:.1f} s, "
        f"U-Net sampling {timings['sample_s']:.1f} s, decode {timings['decode_s']:.1f} s, "
        f"load {timings['load_s']:.2f} s, write {timings['write_s']:.2f} s -> codec {100 * codec_s / total:.0f}%, "
        f"U-Net {100 * timings['sample_s'] / total:.0f}%")
