"""How far apart two results can land: spread over seeds, paired bootstrap intervals, and how
many decimals a number deserves.

The rules the report follows, defined once here:

* **Spread over seeds**: the mean over seeds of each seed's mean over the images, and the sample
  standard deviation (``ddof=1``) of those per-seed means; undefined (NaN) with one seed.
* **Paired difference** of two architectures on a set of images: per image, each architecture's
  value (already averaged over its seeds) and their difference; the mean of those differences
  and its 95% confidence interval from :func:`scipy.stats.bootstrap` (BCa, 9,999 resamples, a
  fixed random seed, so the same inputs always give the same interval). Fewer than
  :data:`MIN_IMAGES_FOR_CI` images give no interval (NaN), and the reason says so.
* **Told apart**: two architectures are told apart only when the interval of their paired
  difference excludes 0 *and*, with two or more seeds each, their ``mean +- std`` ranges over
  seeds do not overlap. Otherwise they cannot be told apart, and the reason says which test failed.
* **Decimals follow the uncertainty**: a number is printed to the decimal of the second
  significant digit of its uncertainty (the half-width of its interval, or its spread over seeds):
  ``0.034`` -> 3 decimals, ``0.34`` -> 2, ``3.4`` -> 1, ``34`` -> 0. Where no uncertainty is known
  (one seed, too few images, an exact result), the metric's customary decimals are used.
  An uncertainty below ``10**-MAX_DECIMALS`` counts as none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
N_RESAMPLES = 9999
BOOTSTRAP_SEED = 0
MIN_IMAGES_FOR_CI = 3  # with 1 image there is nothing to resample; with 2, the "interval" is just the two values
SIGNIFICANT_DIGITS = 2
MAX_DECIMALS = 8  # below 10**-MAX_DECIMALS an uncertainty counts as none (rounding noise)


@dataclass(frozen=True)
class SeedSpread:
    """A metric over seeds: the mean of the per-seed values, their standard deviation (NaN with
    one seed) and the number of seeds."""

    mean: float
    std: float
    n: int


def seed_spread(values: Sequence[float]) -> SeedSpread:
    """Mean, sample standard deviation (``ddof=1``) and count of one value per seed."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return SeedSpread(math.nan, math.nan, 0)
    if array.size == 1:
        return SeedSpread(float(array[0]), math.nan, 1)
    with np.errstate(invalid="ignore"):  # an infinite value (an image reproduced exactly) has no spread
        return SeedSpread(float(array.mean()), float(array.std(ddof=1)), int(array.size))


@dataclass(frozen=True)
class PairedDifference:
    """The mean per-image difference ``a - b`` and its confidence interval (NaN where there is
    none, ``reason`` then saying why), over ``n`` images."""

    mean: float
    low: float
    high: float
    n: int
    reason: str = ""

    @property
    def has_interval(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly on one side of 0 (False without an interval)."""
        return self.has_interval and (self.low > 0 or self.high < 0)

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2 if self.has_interval else math.nan


def mean_interval(
    values: Sequence[float] | np.ndarray,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """The ``confidence`` bootstrap interval of the mean of ``values`` (BCa, by
    :func:`scipy.stats.bootstrap`, seeded); ``(nan, nan)`` with fewer than :data:`MIN_IMAGES_FOR_CI`
    values. Equal values (to float rounding) have no spread: their interval is that value (scipy's
    BCa is undefined there; the percentile interval is exact)."""
    array = np.asarray(values, dtype=float)
    if array.size < MIN_IMAGES_FOR_CI:
        return math.nan, math.nan
    spread = np.ptp(array) > 1e-12 * max(1.0, float(np.abs(array).max()))  # beyond float rounding
    method = "BCa" if spread else "percentile"
    result = stats.bootstrap((array,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                             method=method, vectorized=True, rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired_difference(a: pd.Series, b: pd.Series, confidence: float = CONFIDENCE) -> PairedDifference:
    """``a - b`` image by image (both indexed by image name; only the images both have), its mean and
    the bootstrap interval of that mean. An image that one of them reproduces exactly (an infinite
    PSNR) has no finite difference and is left out, as the reason says."""
    a, b = a.align(b, join="inner")
    differences = (a - b).to_numpy(dtype=float)
    finite = differences[np.isfinite(differences)]
    notes = []
    if finite.size < differences.size:
        notes.append(f"{differences.size - finite.size} image(s) with an infinite or missing value left out")
    if finite.size == 0:
        return PairedDifference(math.nan, math.nan, math.nan, 0, "; ".join([*notes, "no image in common"]))
    if finite.size < MIN_IMAGES_FOR_CI:
        notes.append(f"no interval: {finite.size} image(s), a bootstrap needs at least {MIN_IMAGES_FOR_CI}")
    low, high = mean_interval(finite, confidence)
    return PairedDifference(float(finite.mean()), low, high, int(finite.size), "; ".join(notes))


@dataclass(frozen=True)
class Verdict:
    """Whether a higher-ranked architecture can be told apart from the next one, and why (in words)."""

    told_apart: bool
    reason: str


def spreads_overlap(a: SeedSpread, b: SeedSpread) -> bool | None:
    """Whether the ranges ``mean +- std`` over seeds of ``a`` and ``b`` overlap; None when either has
    fewer than two seeds (its spread is unknown)."""
    if a.n < 2 or b.n < 2 or math.isnan(a.std) or math.isnan(b.std):
        return None
    return abs(a.mean - b.mean) <= a.std + b.std


def neighbour_verdict(difference: PairedDifference, a: SeedSpread, b: SeedSpread, unit: str = "dB") -> Verdict:
    """The rule of the module docstring, for ``a`` ranked just above ``b``: told apart when the
    interval of their paired difference excludes 0 and, with two or more seeds, their ranges over
    seeds do not overlap. ``reason`` says why, in words (to follow "told apart:" or "cannot be told
    apart:")."""
    if not difference.has_interval:
        return Verdict(False, difference.reason or "no interval of the per-image difference")
    ci = format_interval(difference.low, difference.high)
    if not difference.excludes_zero:
        return Verdict(False, f"the {confidence_words()} interval of the per-image difference, {ci} {unit}, includes 0")
    overlap = spreads_overlap(a, b)
    if overlap:
        return Verdict(False, f"the {confidence_words()} interval of the per-image difference, {ci} {unit}, "
                              f"excludes 0, but their ranges over seeds overlap ({format_spread(a)} and "
                              f"{format_spread(b)} {unit})")
    seeds = "; the spread over seeds is unknown (one seed)" if overlap is None else \
        ", and their ranges over seeds do not overlap"
    return Verdict(True, f"{format_difference(difference)} {unit} per image ({confidence_words()} interval){seeds}")


def confidence_words(confidence: float = CONFIDENCE) -> str:
    return f"{confidence:.0%}"


# --- decimals that follow the uncertainty ------------------------------------------------------

def decimals_for(uncertainty: float, default: int = 2) -> int:
    """Decimals that keep :data:`SIGNIFICANT_DIGITS` significant digits of ``uncertainty`` (between 0
    and :data:`MAX_DECIMALS`); ``default`` when the uncertainty is unknown, zero or infinite."""
    if uncertainty is None or not math.isfinite(uncertainty) or uncertainty < 10.0**-MAX_DECIMALS:
        return default
    uncertainty = float(f"{uncertainty:.6g}")  # 0.00999999999 is 0.01: float noise must not add a decimal
    return int(min(MAX_DECIMALS, max(0, SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(uncertainty)))))


def _number(value: float, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = f"{value:.{decimals}f}"
    return "0" + text[2:] if text.startswith("-0") and float(text) == 0 else text  # no "-0.00"


def format_estimate(value: float, uncertainty: float, default: int = 2) -> str:
    """``value`` to the decimals its ``uncertainty`` allows (see :func:`decimals_for`)."""
    return _number(value, decimals_for(uncertainty, default))


def format_spread(spread: SeedSpread, default: int = 2) -> str:
    """``mean +- std`` over seeds, decimals following the std; the mean alone with one seed."""
    if spread.n < 2 or math.isnan(spread.std):
        return _number(spread.mean, default)
    decimals = decimals_for(spread.std, default)
    return f"{_number(spread.mean, decimals)} ± {_number(spread.std, decimals)}"


def format_interval(low: float, high: float, default: int = 2) -> str:
    """``[low, high]`` to the decimals of the half-width; empty when there is no interval."""
    if math.isnan(low) or math.isnan(high):
        return ""
    decimals = decimals_for((high - low) / 2, default)
    return f"[{_number(low, decimals)}, {_number(high, decimals)}]"


def format_difference(difference: PairedDifference, default: int = 2) -> str:
    """``+0.42 [0.31, 0.55]``: the mean difference and its interval, to the interval's decimals; the
    mean alone (default decimals) without an interval."""
    if math.isnan(difference.mean):
        return ""
    decimals = decimals_for(difference.half_width, default)
    text = _number(difference.mean, decimals)
    text = f"+{text}" if math.isinf(difference.mean) or float(text) > 0 else text
    return f"{text} {format_interval(difference.low, difference.high, default)}".rstrip()
