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
INTERVAL_COLUMNS = ("ci_low", "ci_high", "relative_ci_low", "relative_ci_high")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepIntervals:
    """B bootstrap replicates of every cell's metrics, absolute and relative (None where the
    grid has no original/original cell), drawn on the same images."""

    options: BootstrapOptions
    values: dict[Cell, dict[str, np.ndarray]]
    relative: dict[Cell, dict[str, np.ndarray]] | None

    def columns(self, cell: Cell, metric: str) -> dict[str, float]:
        """The interval columns of one result row."""
        low, high = percentile_interval(self.values[cell][metric], self.options.confidence)
        out = {"ci_low": low, "ci_high": high}
        if self.relative is not None:
            low, high = percentile_interval(self.relative[cell][metric], self.options.confidence)
            out |= {"relative_ci_low": low, "relative_ci_high": high}
        return out


def measure_intervals(
    store: ArtifactStore, evaluations: Mapping[Cell, object], resample, options: BootstrapOptions
) -> SweepIntervals | None:
    """The intervals of the cells' evaluations (stages of the evaluate kind), or None with a
    logged reason: the task kind's metric is not resampled, or a cell has no outcomes (it was
    evaluated before outcomes were stored)."""
    if resample is None:
        log.info("intervals: this task kind's metrics are not resampled; results.csv has none")
        return None
    cells = {}
    for cell, stage in evaluations.items():
        path = store.path("evaluate", stage.key) / OUTCOMES_FILE
        if not path.is_file():
            log.warning("intervals: cell %s has no %s; no intervals this run", cell, path)
            return None
        cells[cell] = read_outcomes(path)
    outcomes = aligned(cells)
    if not outcomes or not len(next(iter(next(iter(outcomes.values())).values()))):
        log.warning("intervals: no test image is in every cell; no intervals")
        return None
    values = replicate_values(outcomes, resample, options)
    relative = relative_replicates(values, REFERENCE) if REFERENCE in values else None
    return SweepIntervals(options, values, relative)


def with_intervals(rows: list[dict], intervals: SweepIntervals | None) -> list[dict]:
    """Result rows (train_setting, test_setting, metric) with their interval columns; NaN-free:
    an undefined bound (a metric undefined in every draw) is left out of the row."""
    if intervals is None:
        return rows
    out = []
    for row in rows:
        columns = intervals.columns((row["train_setting"], row["test_setting"]), row["metric"])
        out.append(row | {name: v for name, v in columns.items() if math.isfinite(v)})
    return out
