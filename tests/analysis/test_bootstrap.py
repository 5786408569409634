"""The paired bootstrap: intervals that agree with theory, and pairing that pays."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.stats import binomtest

from sweep.analysis.bootstrap import (
    BootstrapOptions,
    lower_bound,
    percentile_interval,
    relative_replicates,
    replicate_counts,
    replicate_values,
)
from sweep.analysis.outcomes import aligned, read_outcomes, write_outcomes
from sweep.tasks.classification import resample_accuracy


def hits(correct: int, images: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros(images, dtype=bool)
    out[rng.choice(images, correct, replace=False)] = True
    return out


def test_the_bootstrap_interval_of_an_accuracy_agrees_with_the_binomial_one():
    outcomes = {("original", "original"): {"correct": hits(700, 1000)}}
    values = replicate_values(outcomes, resample_accuracy, BootstrapOptions(replicates=4000))
    low, high = percentile_interval(values[("original", "original")]["accuracy"], 0.95)
    exact = binomtest(700, 1000).proportion_ci(0.95, method="exact")
    assert low == pytest.approx(exact.low, abs=0.006)
    assert high == pytest.approx(exact.high, abs=0.006)
    assert low < 0.7 < high


def test_the_paired_interval_of_two_correlated_cells_is_narrower_than_the_unpaired_one():
    """Cell b is cell a with 3% of its images flipped: their difference is small and sure
    when both are resampled on the same images, and swamped by noise when not."""
    a = hits(600, 800)
    b = a.copy()
    b[np.random.default_rng(1).choice(800, 24, replace=False)] ^= True
    cells = {("original", "original"): {"correct": a}, ("4", "4"): {"correct": b}}
    paired = replicate_values(cells, resample_accuracy, BootstrapOptions(seed=0))
    difference = paired[("4", "4")]["accuracy"] - paired[("original", "original")]["accuracy"]
    alone = {cell: {cell: o} for cell, o in cells.items()}
    unpaired = [
        replicate_values(alone[cell], resample_accuracy, BootstrapOptions(seed=seed))[cell]
        for seed, cell in enumerate(cells)
    ]
    unpaired_difference = unpaired[1]["accuracy"] - unpaired[0]["accuracy"]
    width = np.subtract(*percentile_interval(difference, 0.95)[::-1])
    unpaired_width = np.subtract(*percentile_interval(unpaired_difference, 0.95)[::-1])
    assert width < unpaired_width / 3
    # The relative value pairs the same way.
    ratio = relative_replicates(paired, ("original", "original"))[("4", "4")]["accuracy"]
    low, high = percentile_interval(ratio, 0.95)
    assert low <= b.mean() / a.mean() <= high and high - low < 0.05


def test_replicates_are_seeded_and_do_not_depend_on_the_chunk_size():
    options = BootstrapOptions(replicates=250, seed=3)
    by_100 = np.concatenate(list(replicate_counts(40, options, chunk=100)))
    by_7 = np.concatenate(list(replicate_counts(40, options, chunk=7)))
    assert by_100.shape == (250, 40) and (by_100.sum(1) == 40).all()
    # The same seed gives the same draws; a chunk is a view of the same stream.
    again = np.concatenate(list(replicate_counts(40, options, chunk=100)))
    np.testing.assert_array_equal(by_100, again)
    assert by_7.shape == by_100.shape


def test_the_lower_bound_is_one_sided():
    replicates = np.linspace(0, 1, 1001)
    assert lower_bound(replicates, 0.95) == pytest.approx(0.05)
    assert percentile_interval(replicates, 0.95) == pytest.approx((0.025, 0.975))
    assert np.isnan(lower_bound(np.array([np.nan]), 0.95))


def test_bad_options_name_themselves():
    with pytest.raises(ValueError, match="at least 2"):
        BootstrapOptions(replicates=1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        BootstrapOptions(confidence=95)


def test_outcomes_round_trip_and_align_by_image(tmp_path, caplog):
    a = tmp_path / "a"
    a.mkdir()
    write_outcomes(a, ["x.jpg", "y.jpg", "z.jpg"], {"correct": np.array([True, False, True])})
    sources, outcomes = read_outcomes(a / "outcomes.npz")
    assert sources == ["x.jpg", "y.jpg", "z.jpg"]
    other = (["z.jpg", "x.jpg"], {"correct": np.array([False, False])})
    with caplog.at_level(logging.WARNING):
        cells = aligned({"a": (sources, outcomes), "b": other})
    assert "1 of 3 test images" in caplog.text
    np.testing.assert_array_equal(cells["a"]["correct"], [True, True])  # x, z
    np.testing.assert_array_equal(cells["b"]["correct"], [False, False])
    with pytest.raises(ValueError, match="2 rows for 3 images"):
        write_outcomes(a, ["x", "y", "z"], {"correct": np.array([True, False])})
