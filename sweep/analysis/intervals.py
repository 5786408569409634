"""The intervals of a finished sweep's cells, from the outcomes its evaluations stored.

Reads every cell's outcomes.npz, aligns the cells by image, runs the paired bootstrap with the
task kind's `resample`, and gives each result row its columns: ci_low and ci_high of the
value, relative_ci_low and relative_ci_high of the value relative to original/original.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sweep.analysis.bootstrap import (
    BootstrapOptions,
    Cell,
    percentile_interval,
    relative_replicates,
    replicate_values,
)
from sweep.analysis.outcomes import OUTCOMES_FILE, aligned, read_outcomes
from sweep.store import ArtifactStore

REFERENCE: Cell = ("original", "original")
MEAN_SEED = "mean"  # as in results.csv (sweep/report/tables.py)
INTERVAL_COLUMNS = ("ci_low", "ci_high", "relative_ci_low", "relative_ci_high")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepIntervals:
    """B bootstrap replicates of every cell's metrics, absolute and relative, drawn on the
    same images, keyed (train setting, test setting, seed); with several seeds also their
    mean, keyed (train setting, test setting, "mean"). `relative` is None where the grid has
    no original/original cell."""

    options: BootstrapOptions
    values: dict[tuple, dict[str, np.ndarray]]
    relative: dict[tuple, dict[str, np.ndarray]] | None

    def columns(self, cell: tuple, metric: str) -> dict[str, float]:
        """The interval columns of one result row."""
        low, high = percentile_interval(self.values[cell][metric], self.options.confidence)
        out = {"ci_low": low, "ci_high": high}
        if self.relative is not None:
            low, high = percentile_interval(self.relative[cell][metric], self.options.confidence)
            out |= {"relative_ci_low": low, "relative_ci_high": high}
        return out

    def headline_relative(self, metric: str) -> dict[Cell, np.ndarray]:
        """(train, test) -> relative replicates of the headline rows: the seeds' mean where
        there are several seeds, else the one seed's."""
        if self.relative is None:
            return {}
        seeds = {cell[2] for cell in self.relative}
        label = MEAN_SEED if MEAN_SEED in seeds else next(iter(seeds))
        return {cell[:2]: r[metric] for cell, r in self.relative.items() if cell[2] == label}


def measure_intervals(
    store: ArtifactStore, evaluations: Mapping[tuple, object], resample, options: BootstrapOptions
) -> SweepIntervals | None:
    """The intervals of the cells' evaluations (stages of the evaluate kind, keyed (train
    setting, test setting, seed)), or None with a logged reason: the task kind's metric is
    not resampled, or a cell has no outcomes (it was evaluated before outcomes were stored).

    Every cell of every seed is resampled on the same draws of images. The seeds' mean is
    resampled over seeds too: each replicate also draws the seeds with replacement, so its
    interval holds the training noise that the seeds show beside the test images' noise.
    """
    if resample is None:
        log.info("intervals: this task kind's metrics are not resampled; results.csv has none")
        return None
    cells = {}
    for cell, stage in evaluations.items():
        if not store.has_file("evaluate", stage.key, OUTCOMES_FILE):
            log.warning(
                "intervals: cell %s has no %s in %s; no intervals this run",
                cell,
                OUTCOMES_FILE,
                store.location("evaluate", stage.key, "metrics.json"),
            )
            return None
        cells[cell] = read_outcomes(store.file("evaluate", stage.key, OUTCOMES_FILE))
    outcomes = aligned(cells)
    if not outcomes or not len(next(iter(next(iter(outcomes.values())).values()))):
        log.warning("intervals: no test image is in every cell; no intervals")
        return None
    values = replicate_values(outcomes, resample, options)
    seeds = sorted({cell[2] for cell in values})
    if len(seeds) > 1:
        values |= seed_means(values, seeds, options)
    references = {cell[2]: (*REFERENCE, cell[2]) for cell in values}
    relative = None
    if all(reference in values for reference in references.values()):
        relative = {}
        for label, reference in references.items():
            group = {cell: v for cell, v in values.items() if cell[2] == label}
            relative |= relative_replicates(group, reference)
    return SweepIntervals(options, values, relative)


def seed_means(
    values: Mapping[tuple, Mapping[str, np.ndarray]], seeds: list, options: BootstrapOptions
) -> dict[tuple, dict[str, np.ndarray]]:
    """(train, test, "mean") -> the replicates of the seeds' mean: in replicate b, the mean
    over a draw of the seeds with replacement of each drawn seed's replicate b."""
    rng = np.random.default_rng([options.seed, len(seeds)])  # apart from the images' draws
    drawn = rng.integers(0, len(seeds), size=(options.replicates, len(seeds)))
    rows = np.arange(options.replicates)[:, None]
    out: dict[tuple, dict[str, np.ndarray]] = {}
    for train, test in {cell[:2] for cell in values}:
        metrics = values[(train, test, seeds[0])].keys()
        out[(train, test, MEAN_SEED)] = {
            metric: np.stack([values[(train, test, s)][metric] for s in seeds], axis=1)[
                rows, drawn
            ].mean(1)
            for metric in metrics
        }
    return out


def with_intervals(rows: list[dict], intervals: SweepIntervals | None) -> list[dict]:
    """Result rows (train_setting, test_setting, seed, metric) with their interval columns;
    an undefined bound (a metric undefined in every draw) is left out of the row."""
    if intervals is None:
        return rows
    out = []
    for row in rows:
        cell = (row["train_setting"], row["test_setting"], row["seed"])
        columns = intervals.columns(cell, row["metric"])
        columns["ci_low"], columns["ci_high"] = enclosing(
            columns["ci_low"], columns["ci_high"], row["value"]
        )
        out.append(row | {name: v for name, v in columns.items() if math.isfinite(v)})
    return out


def enclosing(low: float, high: float, value: float, rounding: float = 1e-6) -> tuple:
    """The interval, with a bound that misses the value by rounding alone moved onto it.

    The metric libraries compute a value in float32 and the replicates are float64 sums of
    the outcomes: on a split where every draw gives the same value (one test image), the
    interval is that value in float64 and may miss the float32 value by 1e-9. A real miss
    (a skewed bootstrap distribution) is wider than `rounding` and is kept.
    """
    value = float(value)
    if not (math.isfinite(low) and math.isfinite(high) and math.isfinite(value)):
        return low, high
    tolerance = rounding * max(1.0, abs(value))
    if value < low <= value + tolerance:
        low = value
    if value - tolerance <= high < value:
        high = value
    return low, high
