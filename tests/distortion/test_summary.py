"""The per-setting summary: nearest-rank percentiles and bootstrap intervals."""

from __future__ import annotations

import math

import numpy as np

from sweep.distortion.summary import (
    percentile_bounds,
    sorted_column,
    summarize_distortion,
    weighted_median,
)


def records_of(values: list[float | None]) -> list[dict]:
    return [{"distortion": {"ssimulacra2": value}} for value in values]


def test_the_median_of_a_draw_is_numpys_nearest_rank_median_of_it():
    rng = np.random.default_rng(0)
    column = rng.normal(size=40)
    counts = rng.multinomial(40, np.full(40, 1 / 40), size=30)
    order, ordered, _ = sorted_column(column)
    medians = weighted_median(ordered, counts[:, order])
    for row, median in zip(counts, medians, strict=True):
        drawn = np.repeat(column, row)
        assert median == np.percentile(drawn, 50, method="nearest")


def test_intervals_hold_the_estimates_and_narrow_with_more_images():
    rng = np.random.default_rng(1)
    widths = []
    for images in (50, 800):
        stats = summarize_distortion(records_of(list(rng.normal(70, 8, images))), ("ssimulacra2",))
        stats = stats["ssimulacra2"]
        for stat in ("median", "mean"):
            assert stats[f"{stat}_ci_low"] < stats[stat] < stats[f"{stat}_ci_high"]
        widths.append(stats["median_ci_high"] - stats["median_ci_low"])
    assert widths[1] < widths[0] / 2  # about 1/sqrt(16)


def test_the_seed_draws_the_intervals_and_undefined_values_are_left_out():
    values = [float(v) for v in np.random.default_rng(2).normal(size=60)] + [None] * 5
    first, again, other = (
        summarize_distortion(records_of(values), ("ssimulacra2",), seed)["ssimulacra2"]
        for seed in (0, 0, 1)
    )
    assert first == again and first != other
    assert first["count"] == 60 and first["undefined"] == 5


def test_infinite_replicates_give_an_open_bound():
    replicates = np.array([*range(1, 11), *[math.inf] * 90], dtype=float)
    low, high = percentile_bounds(replicates, 0.95)
    assert low == 3.0 and high is None  # rank 2.475 rounded down
    assert percentile_bounds(np.array([math.nan]), 0.95) == (None, None)


def test_a_field_with_no_values_has_no_interval():
    stats = summarize_distortion(records_of([None, None]), ("ssimulacra2",))["ssimulacra2"]
    assert stats == {"count": 0, "undefined": 2}
    assert summarize_distortion([], ("ssimulacra2",)) == {
        "ssimulacra2": {"count": 0, "undefined": 0}
    }
