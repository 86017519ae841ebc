"""Audiobox Aesthetics scoring speed: the real-size model (WavLM base+ and four heads, 94M parameters) with random
weights, on 10 s stereo 44.1 kHz clips (one window each), preprocessing included.

Random weights: speed does not depend on trained values; the scores are meaningless. Run with `nox -s bench`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from baselines.base import WeightsChoice
from bench.metrics.aesthetics import AestheticsScorer, aesthetics_windows

CLIPS = 4  # one forward pass of 4 windows (the scorer's default batch)
RATE = 44_100

pytestmark = [pytest.mark.filterwarnings("ignore:.*weight_norm.*is deprecated:FutureWarning"),
              pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning")]


@pytest.fixture(scope="module")
def scorer() -> AestheticsScorer:
    scorer = AestheticsScorer(WeightsChoice("random"), batch_size=CLIPS)
    scorer.load()
    return scorer


@pytest.fixture(scope="module")
def clips() -> list[tuple[np.ndarray, int]]:
    rng = np.random.default_rng(0)
    return [((0.1 * rng.standard_normal((2, 10 * RATE))).astype(np.float32), RATE) for _ in range(CLIPS)]


def test_score_10s_clips(benchmark, scorer, clips, matmul_gflops, summary):
    windows, masks, _ = aesthetics_windows(*clips[0])
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        scorer._model({"wav": torch.from_numpy(windows[:, None]), "mask": torch.from_numpy(masks[:, None])})
    flops_per_clip = counter.get_total_flops()
    benchmark.pedantic(scorer.score, args=(clips,), rounds=3, warmup_rounds=1)
    median = benchmark.stats.stats.median
    clips_per_s = CLIPS / median
    achieved = flops_per_clip * CLIPS / median / 1e9
    benchmark.extra_info.update(clips_per_s=clips_per_s, audio_s_per_s=10 * clips_per_s, flops_per_clip=flops_per_clip,
                                gflops=achieved, matmul_gflops=matmul_gflops, threads=torch.get_num_threads())
    summary.append(f"audiobox-aesthetics (real size, random weights), 10 s 44.1 kHz stereo clips, batch {CLIPS}: "
                   f"{clips_per_s:.2f} clips/s ({10 * clips_per_s:.1f} s of audio per s), "
                   f"{flops_per_clip / 1e9:.0f} GFLOP per clip, {achieved:.0f} GFLOP/s "
                   f"= {100 * achieved / matmul_gflops:.0f}% of matmul rate")
    assert clips_per_s > 0
