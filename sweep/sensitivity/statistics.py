"""Means and bootstrap intervals over images of per-image maps, and the summaries drawn from
them: sensitivity by frequency radius and the high-frequency share.

Intervals are percentile bootstraps over images (the unit the maps are sampled by): resample
the n images with replacement, average, repeat; the 2.5th and 97.5th percentiles of the
resampled means bound a 95% interval. Resamples are seeded, so a report is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
SIDE = 8
# Frequency (i, j) -> radius sqrt(i^2 + j^2), rounded to the nearest whole number: 11 rings.
RADIUS = np.rint(np.hypot(*np.meshgrid(np.arange(SIDE), np.arange(SIDE), indexing="ij")))
RINGS = np.unique(RADIUS)
# The coefficients beyond the anti-diagonal (i + j >= 8): the highest 28 of 64 frequencies,
# those JPEG's standard tables quantise most coarsely.
HIGH = np.add.outer(np.arange(SIDE), np.arange(SIDE)) >= SIDE


@dataclass(frozen=True)
class Estimate:
    """A mean over images with its bootstrap interval (arrays of one shape)."""

    value: np.ndarray
    low: np.ndarray
    high: np.ndarray


def bootstrap(per_image: np.ndarray, resamples: int, seed: int = 0) -> Estimate:
    """Mean over axis 0 and its percentile bootstrap interval; no interval (NaN) when
    resamples is 0 or there is one image."""
    per_image = np.asarray(per_image, dtype=np.float64)
    value = per_image.mean(axis=0)
    count = len(per_image)
    if resamples == 0 or count < 2:
        nan = np.full_like(value, np.nan)
        return Estimate(value, nan, nan.copy())
    rng = np.random.default_rng(seed)
    # (resamples, n) index draws -> resampled means, without materialising resampled arrays.
    draws = rng.integers(0, count, size=(resamples, count))
    weights = np.zeros((resamples, count))
    np.add.at(weights, (np.arange(resamples)[:, None], draws), 1.0 / count)
    means = weights @ per_image.reshape(count, -1)
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail], axis=0)
    return Estimate(value, low.reshape(value.shape), high.reshape(value.shape))


def radius_profiles(per_image: np.ndarray) -> np.ndarray:
    """(n, 3, 8, 8) -> (n, 3, rings): each image's mean sensitivity on each frequency ring."""
    return np.stack([per_image[..., RADIUS == ring].mean(axis=-1) for ring in RINGS], axis=-1)


def high_frequency_share(per_image: np.ndarray) -> np.ndarray:
    """(n, 3, 8, 8) -> (n, 3): the part of each channel's total sensitivity on the HIGH
    frequencies (0 where a map is all zeros)."""
    total = per_image.sum(axis=(-2, -1))
    high = per_image[..., HIGH].sum(axis=-1)
    return np.divide(high, total, out=np.zeros_like(total), where=total > 0)
