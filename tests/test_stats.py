"""The report's statistics on data whose answer is known: spread over seeds, paired bootstrap
intervals (scipy's), when two architectures can be told apart, and decimals that follow the
uncertainty."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from superres.stats import (
    MIN_IMAGES_FOR_CI,
    N_RESAMPLES,
    PairedDifference,
    SeedSpread,
    decimals_for,
    format_difference,
    format_estimate,
    format_interval,
    format_spread,
    mean_interval,
    neighbour_verdict,
    paired_difference,
    seed_spread,
    spreads_overlap,
)

IMAGES = [f"img{i:02d}" for i in range(20)]


def series(values) -> pd.Series:
    return pd.Series(values, index=IMAGES[: len(values)], dtype=float)


def test_seed_spread_is_the_mean_and_sample_std_of_the_per_seed_values():
    spread = seed_spread([33.0, 33.2, 33.4])
    assert spread.mean == pytest.approx(33.2) and spread.std == pytest.approx(0.2) and spread.n == 3  # ddof=1
    one = seed_spread([33.0])
    assert one.mean == 33.0 and math.isnan(one.std) and one.n == 1
    assert seed_spread([]).n == 0


def test_a_clear_difference_has_an_interval_that_excludes_zero_and_holds_the_mean():
    rng = np.random.default_rng(1)
    base = rng.normal(30, 2, 20)
    better = base + 0.5 + rng.normal(0, 0.1, 20)  # +0.5 dB on every image, a little noise
    difference = paired_difference(series(better), series(base))
    assert difference.n == 20 and difference.reason == ""
    assert difference.low < difference.mean < difference.high
    assert difference.low > 0.4 and difference.high < 0.6 and difference.excludes_zero
    # paired: the spread between images (2 dB) does not hide a consistent 0.5 dB gain
    assert difference.half_width < 0.1


def test_the_interval_is_scipys_bootstrap_seeded_and_reproducible():
    values = np.array([0.3, -0.1, 0.5, 0.2, 0.8, 0.1, 0.4])
    low, high = mean_interval(values)
    assert (low, high) == mean_interval(values)  # the same inputs, the same interval
    expected = scipy_stats.bootstrap((values,), np.mean, n_resamples=N_RESAMPLES, method="BCa",
                                     rng=np.random.default_rng(0)).confidence_interval
    assert (low, high) == pytest.approx((expected.low, expected.high))


def test_only_the_images_both_have_are_paired_and_infinite_values_are_left_out_with_a_reason():
    a = pd.Series([31.0, 32.0, np.inf, 30.0, 33.0], index=["a", "b", "c", "d", "e"])
    b = pd.Series([30.0, 31.5, 35.0, 29.0, 32.0, 99.0], index=["a", "b", "c", "d", "e", "only_b"])
    difference = paired_difference(a, b)
    assert difference.n == 4 and difference.mean == pytest.approx(0.875)
    assert "1 image(s) with an infinite or missing value left out" in difference.reason


@pytest.mark.parametrize("n", [1, 2])
def test_one_or_two_images_give_no_interval_and_say_why(n):
    difference = paired_difference(series([31.0, 34.0][:n]), series([30.0, 30.5][:n]))
    assert difference.n == n and not math.isnan(difference.mean)
    assert math.isnan(difference.low) and math.isnan(difference.high) and not difference.has_interval
    assert f"{n} image(s)" in difference.reason and str(MIN_IMAGES_FOR_CI) in difference.reason
    verdict = neighbour_verdict(difference, SeedSpread(32.0, 0.01, 3), SeedSpread(30.0, 0.01, 3))
    assert not verdict.told_apart and f"{n} image(s)" in verdict.reason  # a big gap, but nothing to judge it by


def test_identical_models_cannot_be_told_apart():
    values = series([30.0, 31.5, 29.0, 33.0, 28.5])
    difference = paired_difference(values, values.copy())
    assert difference.mean == 0 and (difference.low, difference.high) == (0, 0)  # no spread: the interval is 0
    verdict = neighbour_verdict(difference, SeedSpread(30.4, 0.1, 3), SeedSpread(30.4, 0.1, 3))
    assert not verdict.told_apart and "includes 0" in verdict.reason


def test_a_difference_within_the_noise_cannot_be_told_apart():
    rng = np.random.default_rng(2)
    base = rng.normal(30, 2, 8)
    difference = paired_difference(series(base + rng.normal(0, 0.5, 8)), series(base))
    assert difference.low < 0 < difference.high
    assert not neighbour_verdict(difference, SeedSpread(30.1, 0.1, 3), SeedSpread(30.0, 0.1, 3)).told_apart


def test_told_apart_needs_the_interval_to_exclude_zero_and_the_seed_ranges_not_to_overlap():
    clear = PairedDifference(0.5, 0.4, 0.6, 20)
    apart = neighbour_verdict(clear, SeedSpread(33.0, 0.1, 5), SeedSpread(32.5, 0.1, 5))
    assert apart.told_apart and "do not overlap" in apart.reason and "[0.40, 0.60]" in apart.reason
    # the images agree, but another seed could land on the other side: not told apart
    noisy = neighbour_verdict(clear, SeedSpread(33.0, 0.4, 5), SeedSpread(32.5, 0.3, 5))
    assert not noisy.told_apart and "ranges over seeds overlap" in noisy.reason
    # one seed: the spread is unknown, the interval decides, and the reason says so
    single = neighbour_verdict(clear, SeedSpread(33.0, math.nan, 1), SeedSpread(32.5, math.nan, 1))
    assert single.told_apart and "unknown (one seed)" in single.reason
    assert spreads_overlap(SeedSpread(1, 0.5, 2), SeedSpread(2, 0.5, 2)) is True  # touching ranges overlap
    assert spreads_overlap(SeedSpread(1, 0.4, 2), SeedSpread(2, 0.5, 2)) is False
    assert spreads_overlap(SeedSpread(1, math.nan, 1), SeedSpread(2, 0.5, 2)) is None


@pytest.mark.parametrize(("uncertainty", "decimals"), [(0.034, 3), (0.34, 2), (3.4, 1), (34.0, 0), (340.0, 0),
                                                       (0.1, 2), (0.099, 3), (0.00012, 5)])
def test_decimals_keep_two_significant_digits_of_the_uncertainty(uncertainty, decimals):
    assert decimals_for(uncertainty) == decimals


@pytest.mark.parametrize("unknown", [math.nan, 0.0, math.inf, 1e-12])
def test_without_an_uncertainty_the_default_decimals_are_used(unknown):
    assert decimals_for(unknown, default=4) == 4


def test_numbers_are_printed_to_the_decimals_of_their_uncertainty():
    assert format_spread(SeedSpread(33.48561, 0.0512, 5)) == "33.486 ± 0.051"
    assert format_spread(SeedSpread(33.48561, 0.27, 5)) == "33.49 ± 0.27"
    assert format_spread(SeedSpread(33.48561, 1.3, 5)) == "33.5 ± 1.3"
    assert format_spread(SeedSpread(33.48561, math.nan, 1)) == "33.49"  # one seed: the usual 2 decimals
    assert format_spread(SeedSpread(0.88868, math.nan, 1), default=4) == "0.8887"
    assert format_estimate(1.47271, 0.0061) == "1.4727"
    assert format_interval(0.31234, 0.55321) == "[0.31, 0.55]"
    assert format_interval(math.nan, math.nan) == ""
    assert format_difference(PairedDifference(0.4271, 0.3123, 0.5532, 9)) == "+0.43 [0.31, 0.55]"
    assert format_difference(PairedDifference(-0.004, -0.0312, 0.0231, 9)) == "-0.004 [-0.031, 0.023]"
    assert format_difference(PairedDifference(0.0001, -0.2, 0.2, 9)) == "0.00 [-0.20, 0.20]"  # never "-0.00"
    assert format_difference(PairedDifference(1.5, math.nan, math.nan, 2)) == "+1.50"
