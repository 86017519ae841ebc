"""Adherence metrics cost (issue 5): seconds per 10 s (vocal, accompaniment) item, from 44.1 kHz audio.

The per-item cost is the features of both sides (resampling, the vocal's pitch, CQT chroma, onsets) and the four
scores, once per pitch tracker: swift-f0 (the default since issue 15) and pYIN (the default before; runs saved
before issue 15 measured it under this benchmark's unparametrised name). The shuffled anchor reuses the features, so
it adds only the scores. Run with `nox -s bench`.
"""

from __future__ import annotations

import time

import pytest

from bench.metrics import adherence as ad
from bench.metrics.pitch import DEFAULT_PITCH_TRACKER, PITCH_TRACKERS
from bench.synthetic import SAMPLE_RATE, item_meta, render_accompaniment, render_vocal

ITEM_S = 10.0


@pytest.fixture(scope="module")
def item():
    meta = item_meta(0, ITEM_S)
    return render_vocal(meta, 0), render_accompaniment(meta, 0)  # (S,) mono and (2, S) stereo, 44.1 kHz


def _one_item(vocal, accompaniment, tracker: str) -> ad.AdherenceScores:
    return ad.score_pair(ad.vocal_features(vocal, SAMPLE_RATE, tracker),
                         ad.accompaniment_features(accompaniment, SAMPLE_RATE))


@pytest.mark.parametrize("tracker", PITCH_TRACKERS)
def test_adherence_per_10s_item(benchmark, item, summary, tracker):
    """Features of both sides and all four scores for one 10 s synthetic item, with ``tracker`` for the vocal."""
    vocal, accompaniment = item
    scores = benchmark.pedantic(_one_item, args=(vocal, accompaniment, tracker), rounds=3, warmup_rounds=1)
    assert scores.reasons == () and scores.chroma_agreement > 0 and scores.rhythm_agreement > 0
    # the split between the sides: medians of 3 more runs each
    vf, vocal_s = _median_time(ad.vocal_features, vocal, SAMPLE_RATE, tracker)
    af, accompaniment_s = _median_time(ad.accompaniment_features, accompaniment, SAMPLE_RATE)
    _, scores_s = _median_time(ad.score_pair, vf, af)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(seconds_per_item=median, item_s=ITEM_S, vocal_s=vocal_s,
                                accompaniment_s=accompaniment_s, scores_s=scores_s, pitch_tracker=tracker)
    default = " (the default)" if tracker == DEFAULT_PITCH_TRACKER else ""
    summary.append(f"adherence, one {ITEM_S:.0f} s item ({tracker}{default}, chroma, onsets, 4 scores): {median:.2f} s "
                   f"(vocal features {vocal_s:.2f} s, accompaniment {accompaniment_s:.2f} s, "
                   f"scores {1e3 * scores_s:.1f} ms)")


def _median_time(fn, *args, reps: int = 3):
    times, out = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - t0)
    return out, sorted(times)[reps // 2]
