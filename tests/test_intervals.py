"""The 95% intervals: the World Models tables' bootstrap against the textbook normal one, which it approaches on large
samples; `play`'s Student's t against its formula."""
import numpy as np
import pytest
from scipy import stats

from wmlib.intervals import mean_interval, paired_difference, t_interval


def normal_interval(x):
    half = 1.96 * np.std(x) / np.sqrt(len(x))
    return np.mean(x) - half, np.mean(x) + half, half


def test_mean_interval_matches_the_normal_one_for_a_large_sample():
    x = np.random.default_rng(0).normal(500, 200, 2000)
    low, high = mean_interval(x)
    ref_low, ref_high, half = normal_interval(x)
    assert low == pytest.approx(ref_low, abs=0.1 * half) and high == pytest.approx(ref_high, abs=0.1 * half)
    assert mean_interval([7.0, 7.0]) == (7.0, 7.0)
    assert mean_interval(x) == (low, high)  # seeded


def test_paired_difference_resamples_pairs():
    rng = np.random.default_rng(1)
    tracks = rng.normal(0, 300, 1000)  # what both agents share on a track (its difficulty)
    x, y = tracks + 50 + rng.normal(0, 30, 1000), tracks + rng.normal(0, 30, 1000)
    d = paired_difference(x, y)
    ref_low, ref_high, half = normal_interval(x - y)
    assert d["mean_difference"] == pytest.approx(np.mean(x - y))
    assert d["low"] == pytest.approx(ref_low, abs=0.1 * half) and d["high"] == pytest.approx(ref_high, abs=0.1 * half)
    # the shared part cancels: far narrower than the interval of the difference of two unpaired means
    assert d["high"] - d["low"] < 0.2 * (2 * 1.96 * np.hypot(np.std(x), np.std(y)) / np.sqrt(1000))
    assert d["n"] == 1000 and d["share_higher"] == pytest.approx(np.mean(x > y)) and d["share_higher"] > 0.85


def test_paired_difference_needs_the_same_episodes():
    with pytest.raises(ValueError, match="same episodes"):
        paired_difference([1.0, 2.0], [1.0, 2.0, 3.0])


def test_t_interval_is_students_t():
    r = [3.0, 5.0, 10.0, 4.0]
    half = stats.t.ppf(0.975, 3) * np.std(r, ddof=1) / np.sqrt(4)
    assert t_interval(r) == pytest.approx((5.5 - half, 5.5 + half))
    assert t_interval([7.0]) == (7.0, 7.0) and t_interval([2.0, 2.0]) == (2.0, 2.0)
