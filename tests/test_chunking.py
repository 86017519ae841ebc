"""samuel.chunking: the chunk plan, zero padding, equal-power joins and the training policy (pure NumPy, fast)."""

from __future__ import annotations

import numpy as np
import pytest

from samuel.chunking import (
    CHUNK_SAMPLES,
    DEFAULT_OVERLAP_FRAMES,
    HOP_LENGTH,
    SAMPLE_RATE,
    equal_power_fades,
    join_chunks,
    plan_chunks,
    split_chunks,
    training_chunk_starts,
)


def test_constants_match_the_paper():
    assert CHUNK_SAMPLES == 1024 * 2048 == 2_097_152
    assert CHUNK_SAMPLES / SAMPLE_RATE == pytest.approx(47.55, abs=0.01)
    assert DEFAULT_OVERLAP_FRAMES * HOP_LENGTH / SAMPLE_RATE == pytest.approx(5.94, abs=0.01)


# ------------------------------------------------------------------------------------------------------ plan


def test_plan_shorter_than_one_chunk():
    plan = plan_chunks(300, 1000, 100)
    assert plan.starts == (0,) and len(plan) == 1
    assert plan.valid(0) == 300  # the mask: the rest of the chunk is silence padding
    assert (plan.total, plan.chunk, plan.overlap) == (300, 1000, 100)


def test_plan_exactly_one_chunk():
    plan = plan_chunks(1000, 1000, 100)
    assert plan.starts == (0,) and plan.valid(0) == 1000


def test_plan_one_sample_more_than_a_chunk():
    plan = plan_chunks(1001, 1000, 100)
    assert plan.starts == (0, 900)
    assert [plan.valid(i) for i in range(2)] == [1000, 101]  # the last chunk holds the overlap plus one sample


def test_plan_long_input():
    total, chunk, overlap = 10 * 1000 + 123, 1000, 100
    plan = plan_chunks(total, chunk, overlap)
    hop = chunk - overlap
    assert len(plan) == 12  # 1 + ceil((10123 - 1000) / 900)
    assert plan.starts == tuple(k * hop for k in range(12))
    assert plan.starts[-1] + chunk >= total  # the last chunk covers the end ...
    assert plan.starts[-2] + chunk < total  # ... and one chunk fewer would not: the count is minimal
    assert plan.valid(11) == total - 11 * hop == 223
    assert all(plan.valid(i) == chunk for i in range(11))


@pytest.mark.parametrize(("chunk", "overlap"), [(64, 8), (64, 0), (50, 25), (7, 6)])
def test_plan_properties_over_many_lengths(chunk, overlap):
    hop = chunk - overlap
    for total in range(1, 8 * chunk):
        plan = plan_chunks(total, chunk, overlap)
        n = len(plan)
        assert plan.starts == tuple(k * hop for k in range(n))
        assert plan.starts[-1] + chunk >= total, total
        assert n == 1 or plan.starts[-2] + chunk < total, total  # minimal
        if n > 1:  # the last chunk always holds more than the overlap, so every crossfade is whole
            assert plan.valid(n - 1) > overlap
        covered = np.zeros(total, dtype=bool)
        for i, start in enumerate(plan.starts):
            covered[start : start + plan.valid(i)] = True
        assert covered.all()


def test_plan_default_is_paper_chunks_with_128_frame_overlap():
    total = 10 * 60 * SAMPLE_RATE  # ten minutes
    plan = plan_chunks(total)
    assert plan.chunk == CHUNK_SAMPLES and plan.overlap == 128 * HOP_LENGTH
    assert len(plan) == 1 + -(-(total - CHUNK_SAMPLES) // (CHUNK_SAMPLES - 128 * HOP_LENGTH)) == 15


@pytest.mark.parametrize(("total", "chunk", "overlap"), [(0, 10, 2), (-5, 10, 2), (5, 10, 10), (5, 10, 11),
                                                         (5, 10, -1), (5, 0, 0)])
def test_plan_rejects_bad_inputs(total, chunk, overlap):
    with pytest.raises(ValueError, match="must"):
        plan_chunks(total, chunk, overlap)


# ------------------------------------------------------------------------------------------------------ split


def test_split_pads_with_zeros():
    audio = np.arange(1, 2 * 25 + 1, dtype=np.float32).reshape(2, 25)
    plan = plan_chunks(25, 10, 2)  # starts 0, 8, 16
    chunks = split_chunks(audio, plan)
    assert chunks.shape == (3, 2, 10) and chunks.dtype == np.float32
    for i, start in enumerate(plan.starts):
        v = plan.valid(i)
        np.testing.assert_array_equal(chunks[i, :, :v], audio[:, start : start + v])
        assert not chunks[i, :, v:].any()  # silence past the end
    assert plan.valid(2) == 9 and chunks[2, 0, 9] == 0


def test_split_short_input_is_one_padded_chunk():
    audio = np.ones((2, 3), dtype=np.float64)
    chunks = split_chunks(audio, plan_chunks(3, 8, 2))
    np.testing.assert_array_equal(chunks, [[[1, 1, 1, 0, 0, 0, 0, 0]] * 2])
    assert chunks.dtype == np.float64


@pytest.mark.parametrize("shape", [(25,), (2, 24), (2, 26), (1, 2, 25)])
def test_split_rejects_wrong_shapes(shape):
    with pytest.raises(ValueError, match=r"audio must be \(channels, 25\)"):
        split_chunks(np.zeros(shape, np.float32), plan_chunks(25, 10, 2))


# ------------------------------------------------------------------------------------------------------ join


@pytest.mark.parametrize("n", [1, 2, 7, 128, 16384])
def test_equal_power_fades(n):
    fade_out, fade_in = equal_power_fades(n)
    assert fade_out.shape == fade_in.shape == (n,)
    np.testing.assert_allclose(fade_out**2 + fade_in**2, 1.0, rtol=0, atol=1e-15)  # constant power everywhere
    np.testing.assert_allclose(fade_in, fade_out[::-1], atol=1e-15)  # symmetric
    assert (np.diff(fade_out) < 0).all() and (np.diff(fade_in) > 0).all()  # monotonic
    assert 0 < fade_in[0] <= fade_in[-1] < 1  # no sample has a gain of exactly 0 or 1 (half-sample offset)


def test_join_reproduces_chunks_outside_overlaps_and_crossfades_inside():
    rng = np.random.default_rng(0)
    total, chunk, overlap = 3 * 40 + 17, 40, 8
    plan = plan_chunks(total, chunk, overlap)
    chunks = rng.standard_normal((len(plan), 2, chunk)).astype(np.float32)
    out = join_chunks(chunks, plan)
    assert out.shape == (2, total) and out.dtype == np.float32
    fade_out, fade_in = equal_power_fades(overlap)
    for i, start in enumerate(plan.starts):
        head = 0 if i == 0 else overlap  # the first `overlap` samples of a later chunk are crossfaded
        end = plan.starts[i + 1] if i + 1 < len(plan) else total  # the next chunk's crossfade starts there
        np.testing.assert_array_equal(out[:, start + head : end], chunks[i, :, head : end - start])
        if i > 0:
            expected = chunks[i - 1, :, chunk - overlap :] * fade_out + chunks[i, :, :overlap] * fade_in
            np.testing.assert_allclose(out[:, start : start + overlap], expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("total", "chunk", "overlap"), [(5, 16, 4), (16, 16, 4), (17, 16, 4), (1000, 16, 4),
                                                         (1000, 16, 0), (999, 16, 15)])
def test_join_length_is_total(total, chunk, overlap):
    plan = plan_chunks(total, chunk, overlap)
    chunks = np.ones((len(plan), 2, chunk), dtype=np.float32)
    out = join_chunks(chunks, plan)
    assert out.shape == (2, total) and np.isfinite(out).all()


def test_split_then_join_of_a_short_input_is_exact():
    audio = np.random.default_rng(1).standard_normal((2, 300)).astype(np.float32)
    plan = plan_chunks(300, 1024, 128)
    np.testing.assert_array_equal(join_chunks(split_chunks(audio, plan), plan), audio)  # padding cut back off


def test_join_with_no_overlap_concatenates():
    audio = np.random.default_rng(2).standard_normal((2, 95)).astype(np.float32)
    plan = plan_chunks(95, 10, 0)
    np.testing.assert_array_equal(join_chunks(split_chunks(audio, plan), plan), audio)


def test_equal_power_keeps_the_variance_of_independent_chunks():
    # Chunks are generated independently, so across an overlap two uncorrelated signals are mixed. Equal-power
    # fades keep their variance (loudness) at 1 over the whole overlap; a linear crossfade would dip to 0.5
    # (-3 dB) in the middle. This is why join_chunks uses sine/cosine fades.
    chunk, overlap, realisations = 512, 256, 4096
    plan = plan_chunks(2 * chunk - overlap, chunk, overlap)
    chunks = np.random.default_rng(3).standard_normal((2, realisations, chunk)).astype(np.float32)
    out = join_chunks(chunks, plan)
    var = out[:, plan.starts[1] : plan.starts[1] + overlap].astype(np.float64).var(axis=0)  # per position
    blocks = var.reshape(-1, 32).mean(axis=1)  # 32 positions x 4096 realisations each: ~0.4% sampling error
    assert np.abs(blocks - 1).max() < 0.03, blocks

    w = (np.arange(overlap) + 0.5) / overlap
    linear = chunks[0, :, chunk - overlap :] * (1 - w) + chunks[1, :, :overlap] * w
    linear_blocks = linear.astype(np.float64).var(axis=0).reshape(-1, 32).mean(axis=1)
    assert linear_blocks.min() < 0.55  # the dip equal power avoids


def test_identical_chunks_are_not_reproduced_exactly_inside_the_overlap():
    # The documented price of equal power: correlated content (the same signal in both chunks) is boosted by up
    # to cos + sin = sqrt(2) at the middle of the overlap. Generated chunks are independent, so this is rare.
    plan = plan_chunks(24, 16, 8)
    out = join_chunks(split_chunks(np.ones((1, 24), np.float64), plan), plan)
    fade_out, fade_in = equal_power_fades(8)
    np.testing.assert_allclose(out[0, 8:16], fade_out + fade_in)
    assert out[0, 8:16].max() == pytest.approx(np.sqrt(2), abs=0.01)
    np.testing.assert_array_equal(out[0, :8], 1.0)
    np.testing.assert_array_equal(out[0, 16:], 1.0)


@pytest.mark.parametrize("shape", [(3, 2, 10), (2, 2, 11), (2, 10), (2, 2, 2, 10)])
def test_join_rejects_wrong_shapes(shape):
    plan = plan_chunks(15, 10, 2)  # 2 chunks of 10
    with pytest.raises(ValueError, match=r"chunks must be \(2, channels, 10\)"):
        join_chunks(np.zeros(shape, np.float32), plan)


# --------------------------------------------------------------------------------------------------- training


@pytest.mark.parametrize(("total", "chunk", "starts"), [
    (0, 4, []), (3, 4, []), (4, 4, [0]), (7, 4, [0]), (8, 4, [0, 4]), (12, 4, [0, 4, 8]), (13, 4, [0, 4, 8]),
    (CHUNK_SAMPLES - 1, CHUNK_SAMPLES, []), (CHUNK_SAMPLES, CHUNK_SAMPLES, [0]),
    (100 * SAMPLE_RATE, CHUNK_SAMPLES, [0, CHUNK_SAMPLES]),  # 100 s: two 47.55 s chunks, the 4.9 s tail dropped
])
def test_training_chunk_starts_drop_the_tail(total, chunk, starts):
    assert training_chunk_starts(total, chunk) == starts


def test_training_chunk_starts_default_chunk():
    assert training_chunk_starts(3 * CHUNK_SAMPLES + 1) == [0, CHUNK_SAMPLES, 2 * CHUNK_SAMPLES]


@pytest.mark.parametrize(("total", "chunk"), [(10, 0), (10, -4), (-1, 4)])
def test_training_chunk_starts_rejects_bad_inputs(total, chunk):
    with pytest.raises(ValueError, match="must"):
        training_chunk_starts(total, chunk)
