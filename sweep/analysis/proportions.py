"""Intervals for the share of test images with a 0/1 outcome (a classifier's hits), valid at
the boundary: when every test image is right, or when no image changes its answer.

The percentile bootstrap cannot see past its sample there: 20 images all right give every
replicate 100%, so it reports [100, 100]. These intervals can:

* ``clopper_pearson``: the exact interval of one proportion (Clopper & Pearson, Biometrika
  26:404, 1934), from the beta quantiles. Its coverage is at least the nominal level for every
  true proportion, which is what a cell's "surely" needs; Wilson's is closer to nominal on
  average but dips below it near 0 and 1 (Brown, Cai & DasGupta, Stat Sci 16:101, 2001),
  exactly where a good classifier's accuracy lies. 20 of 20 right: [83.2%, 100%] at 95%.
* ``wilson``: the score interval of one proportion (Wilson, JASA 22:209, 1927), the building
  block of Newcombe's paired interval.
* ``paired_difference``: the score interval for the difference of two proportions measured
  on the same images, "method 10" of Newcombe, "Improved confidence intervals for the
  difference between binomial proportions based on paired data", Stat Med 17:2635-2650
  (1998): square-and-add of the two Wilson intervals, with the correlation of the two
  proportions estimated from the 2x2 table of paired outcomes. Only the discordant images
  (right in one cell, wrong in the other) move the difference; the concordant ones set how
  sure it is. With no discordant image it still has a width, which shrinks as 1/n.
* ``PairedRatio``: a cell's proportion relative to the reference cell's, from that interval.

Every function takes numpy arrays or scalars and broadcasts; counts may be fractional (the
images-needed search scales a table's counts to other sizes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta, norm

LARGEST_TEST_SET = 10**9  # the images-needed search gives up beyond this many test images
PAIRED_METHOD = "Newcombe score interval of the paired difference (1998, method 10)"


def two_sided_z(confidence: float) -> float:
    """The standard normal quantile of a two-sided interval at `confidence`."""
    return float(norm.ppf(1 - (1 - confidence) / 2))


def clopper_pearson(hits, n, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The exact (Clopper-Pearson) interval of hits / n: 0 below when no image is a hit, 1
    above when every one is; NaN where n is 0."""
    hits, n = np.asarray(hits, dtype=np.float64), np.asarray(n, dtype=np.float64)
    tail = (1 - confidence) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(hits > 0, beta.ppf(tail, hits, n - hits + 1), 0.0)
        high = np.where(hits < n, beta.ppf(1 - tail, hits + 1, n - hits), 1.0)
    undefined = n <= 0
    return np.where(undefined, np.nan, low), np.where(undefined, np.nan, high)


def wilson(hits, n, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval of hits / n (NaN where n is 0)."""
    hits, n = np.asarray(hits, dtype=np.float64), np.asarray(n, dtype=np.float64)
    z = two_sided_z(confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = hits / n
        shrink = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / shrink
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / shrink
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def paired_difference(
    both, first_only, second_only, neither, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's method 10 interval for p1 - p2, the difference of two proportions measured
    on the same n images.

    Args:
        both: Images with the outcome in both measurements (right in both cells).
        first_only: Images with it in the first only (p1 = (both + first_only) / n).
        second_only: Images with it in the second only (p2 = (both + second_only) / n).
        neither: Images with it in neither.
        confidence: Two-sided level.

    Returns:
        (low, high), within [-1, 1]; NaN where there is no image.
    """
    a, b, c, d = (np.asarray(x, dtype=np.float64) for x in (both, first_only, second_only, neither))
    n = a + b + c + d
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = (a + b) / n, (a + c) / n
        l1, u1 = wilson(a + b, n, confidence)
        l2, u2 = wilson(a + c, n, confidence)
        # The correlation of the two proportions (phi of the 2x2 table), with Newcombe's
        # correction: a positive association is reduced by n/2 and never below 0; 0 where a
        # margin is empty.
        margins = (a + b) * (c + d) * (a + c) * (b + d)
        association = a * d - b * c
        corrected = np.where(
            association > n / 2, association - n / 2, np.where(association < 0, association, 0.0)
        )
        psi = np.where(margins > 0, corrected / np.sqrt(margins), 0.0)
        below = np.sqrt(np.maximum(
            (p1 - l1) ** 2 - 2 * psi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0
        ))  # fmt: skip
        above = np.sqrt(np.maximum(
            (p2 - l2) ** 2 - 2 * psi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2, 0.0
        ))  # fmt: skip
    difference = p1 - p2
    return np.clip(difference - below, -1.0, 1.0), np.clip(difference + above, -1.0, 1.0)


@dataclass(frozen=True)
class PairedRatio:
    """A cell's share of hits relative to the reference cell's, on the same images, from the
    2x2 table of their paired outcomes.

    The interval is Newcombe's interval of the difference p_cell - p_reference divided by the
    observed reference proportion: 1 + [low, high] / p_reference, within [0, 1 / p_reference]
    (a cell can neither lose more than every hit nor win more than every image). Dividing by
    the observed p_reference treats it as known: its own sampling noise is left out, which is
    small beside the difference's wherever the relative metric is worth reading (a reference
    near chance is flagged apart, sweep/analysis/chance.py). The Monte Carlo test of
    tests/analysis/test_proportions.py measures the coverage this gives at 20 images.
    """

    both: float  # images right in the cell and in the reference
    cell_only: float  # right in the cell, wrong in the reference
    reference_only: float  # wrong in the cell, right in the reference
    neither: float

    method = PAIRED_METHOD

    @classmethod
    def of(cls, cell_hits: np.ndarray, reference_hits: np.ndarray) -> PairedRatio:
        """The table of two aligned per-image hit arrays (one row per image in both)."""
        cell, reference = np.asarray(cell_hits, bool), np.asarray(reference_hits, bool)
        return cls(
            both=int(np.sum(cell & reference)),
            cell_only=int(np.sum(cell & ~reference)),
            reference_only=int(np.sum(~cell & reference)),
            neither=int(np.sum(~cell & ~reference)),
        )

    @property
    def images(self) -> float:
        return self.both + self.cell_only + self.reference_only + self.neither

    @property
    def reference_share(self) -> float:
        return (self.both + self.reference_only) / self.images if self.images else math.nan

    @property
    def relative(self) -> float:
        """The observed ratio, p_cell / p_reference (NaN when the reference has no hit)."""
        hits = self.both + self.reference_only
        return (self.both + self.cell_only) / hits if hits else math.nan

    def interval(self, confidence: float, images: float | None = None) -> tuple[float, float]:
        """The two-sided interval of the ratio; `images` scales the table to that many test
        images at the same shares (what a larger test set would give if it looked alike)."""
        scale = 1.0 if images is None else images / self.images
        reference = self.reference_share
        if not reference > 0:
            return (math.nan, math.nan)
        low, high = paired_difference(
            self.both * scale, self.cell_only * scale, self.reference_only * scale,
            self.neither * scale, confidence,
        )  # fmt: skip
        ratio = np.clip(1 + np.array([low, high]) / reference, 0.0, 1 / reference)
        return (float(ratio[0]), float(ratio[1]))

    def lower_bound(self, confidence: float, images: float | None = None) -> float:
        """The one-sided lower bound at `confidence`: the lower end of the two-sided interval
        at 2 * confidence - 1 (its other tail is not claimed)."""
        return self.interval(2 * confidence - 1, images)[0]

    def images_needed(self, threshold: float, confidence: float) -> int | None:
        """About how many test images, at the same shares of the table, would give a lower
        bound of at least `threshold`; None when more images cannot (the observed ratio is not
        above the threshold) or it would take more than LARGEST_TEST_SET."""
        if not self.images or not self.relative > threshold:
            return None
        if self.lower_bound(confidence) >= threshold:
            return int(self.images)
        low, high = int(self.images), int(self.images)
        while self.lower_bound(confidence, high) < threshold:
            low, high = high, high * 2
            if high > LARGEST_TEST_SET:
                return None
        while high - low > 1:  # the bound grows with the images: bisect to the first enough
            middle = (low + high) // 2
            if self.lower_bound(confidence, middle) >= threshold:
                high = middle
            else:
                low = middle
        return high
