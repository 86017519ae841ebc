"""The paired test's p-value: bench.bootstrap.sign_flip_p_value, Fisher's sign-flip randomisation test.

Golden values counted by hand, the Monte Carlo form against the enumerated one, and simulations with a known
truth: under a symmetric null (two exchangeable models) the test is exact, and against a shift it has the t-test's
power. Seeds are fixed, so the simulated figures quoted are exact for this code; bounds leave about 3 Monte Carlo
SEs.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from bench import bootstrap
from bench.bootstrap import paired_bootstrap_diff, sign_flip_p_value


def test_golden_p_values_counted_by_hand() -> None:
    # d = (1, 2, 3): T = 6; the 8 sign vectors give 6, 4, 2, 0, 0, -2, -4, -6, and two reach |6|
    assert sign_flip_p_value([1.0, 2.0, 3.0]) == (0.25, "sign-flip randomisation test over items, all 8 sign "
                                                         "vectors (exact)")
    # items (1, 1, 2, 3): only all + and all - reach |7| of 16 vectors; by song {a: 1 + 1, b: 2, c: 3} the song sums
    # (2, 2, 3) give 7, 1, 3, -3, 3, -3, -1, -7: still 2 of 8, so p doubles
    assert sign_flip_p_value([1.0, 1.0, 2.0, 3.0])[0] == 2 / 16
    p, how = sign_flip_p_value([1.0, 1.0, 2.0, 3.0], clusters=["a", "a", "b", "c"])
    assert p == 2 / 8 and "over 3 songs" in how
    assert sign_flip_p_value([0.5, -0.5, 0.0, 0.0])[0] == 1.0  # T = 0: every vector reaches it
    p, how = sign_flip_p_value([1.0], clusters=None)
    assert np.isnan(p) and "too few" in how
    assert np.isnan(sign_flip_p_value([1.0, 2.0], clusters=["s", "s"])[0])


def test_ties_from_rounding_still_count() -> None:
    """A flip that reproduces |T| in another summation order must count, or discrete metrics lose p mass."""
    d = np.array([0.1, 0.2, 0.3, 0.6])  # T = 1.2; (+, +, -, +) and (-, -, +, +) give 0.6, not a tie
    # in exact arithmetic only all + and all - reach |1.2|; in floating point 0.1 + 0.2 + 0.3 + 0.6 and a matrix
    # product's order can differ in the last bit
    assert sign_flip_p_value(d)[0] == 2 / 16
    tied = np.array([0.1, 0.2, 0.3, 0.3, 0.1, 0.2])  # flipping (0.1, 0.2, 0.3) against (0.3, 0.1, 0.2) ties
    exact = sum(abs(sum(s * x for s, x in zip(signs, [1, 2, 3, 3, 1, 2], strict=True))) >= 12
                for signs in itertools.product((-1, 1), repeat=6))  # the same in integers
    assert sign_flip_p_value(tied)[0] == exact / 64


def test_random_flips_agree_with_every_flip_and_blocks_do_not_change_them(monkeypatch: pytest.MonkeyPatch) -> None:
    d = np.random.default_rng(5).standard_normal(14) + 0.4
    exact, how = sign_flip_p_value(d)  # 2^14 = 16,384 > 9,999: random flips
    assert "random sign vectors" in how
    enumerated, how = sign_flip_p_value(d, n_flips=2**14)
    assert "all 16384 sign vectors (exact)" in how
    assert exact == pytest.approx(enumerated, abs=3 * np.sqrt(enumerated * (1 - enumerated) / 9999) + 1e-4)
    whole = sign_flip_p_value(d, n_flips=500, seed=3)
    monkeypatch.setattr(bootstrap, "BLOCK_ELEMENTS", 28)  # 2 sign vectors per block
    assert sign_flip_p_value(d, n_flips=500, seed=3) == whole
    assert sign_flip_p_value(d[:8]) == sign_flip_p_value(d[:8], n_flips=9999)  # enumerated in blocks too
    with pytest.raises(ValueError, match="n_flips"):
        sign_flip_p_value(d, n_flips=0)


def test_the_paired_estimate_names_its_test_and_the_bootstrap_test_is_kept() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal(30) + 0.3, rng.standard_normal(30)
    est, p = paired_bootstrap_diff(a, b, 400, seed=2)
    assert "p: sign-flip randomisation test over items, 9999 random sign vectors, seed 2" in est.method
    assert p == sign_flip_p_value(a - b, seed=2)[0]
    boot, p_boot = paired_bootstrap_diff(a, b, 400, seed=2, test="bootstrap")
    assert (boot.value, boot.low, boot.high) == (est.value, est.low, est.high)  # the interval is the same
    assert "p: bootstrap test" in boot.method and p_boot != p
    with pytest.raises(ValueError, match="test must be"):
        paired_bootstrap_diff(a, b, test="t")


def test_exact_under_a_symmetric_null_at_small_n() -> None:
    """Two exchangeable models (d symmetric about 0, Student's t with 3 degrees of freedom: heavy tails), 3,000
    repetitions per n: the 5% test fired 3.8% of the time at n = 6 (p takes steps of 1/32), 4.8% at n = 8 (all 256
    vectors) and 4.6% at n = 40 (2,000 random flips)."""
    rng = np.random.default_rng(31)
    for n in (6, 8, 40):
        rate = np.mean([sign_flip_p_value(rng.standard_t(3, n), 2000, seed=i)[0] < 0.05 for i in range(3000)])
        assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 3000), (n, rate)  # 0.062
        assert rate >= 0.025, (n, rate)  # not a test that never fires


def test_power_against_a_shift_matches_the_t_test() -> None:
    """d ~ N(0.6, 1), n = 20, 1,000 repetitions: the sign-flip test rejected 71.5%, Student's t 71.9% on the same
    data (its power there: 0.72)."""
    rng = np.random.default_rng(41)
    data = rng.standard_normal((1000, 20)) + 0.6
    flips = np.mean([sign_flip_p_value(row, 2000, seed=i)[0] < 0.05 for i, row in enumerate(data)])
    t = np.mean(stats.ttest_1samp(data, 0.0, axis=1).pvalue < 0.05)
    assert abs(flips - t) <= 0.03, (flips, t)
    assert 0.65 <= flips <= 0.79, flips


def test_the_report_reads_back_the_test_and_its_floor_from_the_method_written_here() -> None:
    """The report parses the stored method with bench.bootstrap's own reader: a round trip through the writer."""
    from bench.bootstrap import names_sign_flip_test, sign_flip_floor

    rng = np.random.default_rng(3)
    small, _ = paired_bootstrap_diff(rng.standard_normal(5), np.zeros(5))
    large, _ = paired_bootstrap_diff(rng.standard_normal(30), np.zeros(30))
    songs, _ = paired_bootstrap_diff(rng.standard_normal(8), np.zeros(8), clusters=[0, 0, 1, 1, 2, 2, 3, 3])
    boot, _ = paired_bootstrap_diff(rng.standard_normal(30), np.zeros(30), test="bootstrap")
    assert all(names_sign_flip_test(e.method) for e in (small, large, songs)) and not names_sign_flip_test(boot.method)
    assert sign_flip_floor(small.method) == 2 / 32 and sign_flip_floor(songs.method) == 2 / 16
    assert sign_flip_floor(large.method) is None and sign_flip_floor(boot.method) is None
    assert sign_flip_floor(None) is None and not names_sign_flip_test(None)
