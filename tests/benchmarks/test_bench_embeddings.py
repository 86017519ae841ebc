"""FAD embedding speed: real-size architectures with random weights (speed does not depend on trained values).

One 10 s stereo 44.1 kHz clip through ``Embedder.embed`` (mono mix, soxr resampling, 16-bit rounding, the model):

- VGGish (16 kHz, 10 examples of 0.96 s), and its numpy log-mel front end alone;
- CLAP, fadtk windowing (10 s windows every 1 s: 10 windows per 10 s clip): HTSAT-tiny (clap-laion-audio) and
  HTSAT-base (clap-laion-music), built random with a minimal text tower (never used for audio);
- EnCodec 24 kHz encoder (750 latent frames).

Set-up (random init, no file) is timed once per model and reported beside. Run with `nox -s bench`.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from baselines.base import WeightsChoice
from bench.embedders import Embedder, get_embedder
from bench.embedders.features import prepare_waveform, vggish_examples

CLIP_SECONDS = 10.0
RATE = 44_100
ROUNDS = {"vggish": 3, "clap-laion-audio": 2, "clap-laion-music": 1, "encodec-emb": 3}  # ~10-20 s per model


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    gen = np.random.default_rng(0)
    return (gen.standard_normal((2, round(CLIP_SECONDS * RATE))) * 0.1).astype(np.float32)


def _loaded(name: str) -> tuple[Embedder, float]:
    t0 = time.perf_counter()
    embedder = get_embedder(name, WeightsChoice("random"))
    embedder.load()
    return embedder, time.perf_counter() - t0


def test_vggish_front_end(benchmark, clip, summary):
    waveform = prepare_waveform(clip, RATE, 16_000)
    examples = benchmark(vggish_examples, waveform)
    assert examples.shape == (10, 96, 64)
    summary.append(f"vggish log-mel front end (numpy), {CLIP_SECONDS:g} s clip: "
                   f"{benchmark.stats.stats.median * 1e3:.1f} ms")


@pytest.mark.parametrize("name", list(ROUNDS))
def test_embed_10s_clip(benchmark, clip, summary, name):
    embedder, setup_s = _loaded(name)
    out = benchmark.pedantic(embedder.embed, args=(clip, RATE), rounds=ROUNDS[name], warmup_rounds=1 if
                             ROUNDS[name] > 1 else 0)
    assert out.ndim == 2 and out.shape[1] == embedder.dim and np.all(np.isfinite(out))
    median = benchmark.stats.stats.median
    benchmark.extra_info.update({"setup_s": setup_s, "frames": out.shape[0], "realtime_factor": CLIP_SECONDS / median})
    summary.append(f"embed {name} (real size, random init), {CLIP_SECONDS:g} s clip -> {out.shape[0]} x "
                   f"{out.shape[1]}: {median:.2f} s ({CLIP_SECONDS / median:.1f}x real time; set-up {setup_s:.1f} s)")
