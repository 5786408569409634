"""The results table: its columns, relative values, seed means, and results.csv.

Written with the package's one CSV writer (`sweep.tables.write_csv`).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from sweep.analysis.intervals import enclosing
from sweep.report.axis import DEFAULT_AXIS, ORIGINAL, SettingAxis
from sweep.tables import write_csv

RESULT_COLUMNS = [
    "task", "model", "codec", "train_setting", "test_setting", "seed",
    "train_dcr", "test_dcr", "train_dcr_raw", "test_dcr_raw",
    "metric", "value", "relative",
    "ci_low", "ci_high", "relative_ci_low", "relative_ci_high",
]  # fmt: skip
# Empty where the task kind's metric has no intervals (sweep/analysis/intervals.py).
OPTIONAL_RESULT_COLUMNS = ("ci_low", "ci_high", "relative_ci_low", "relative_ci_high", "seed")
# The `seed` of the rows that average a sweep's seeds.
MEAN_SEED = "mean"


def headline_rows(rows: list[dict]) -> list[dict]:
    """One row per cell and metric: the seeds' mean where a sweep has several seeds, else its
    one seed's rows (what the heatmaps, comparisons and recommendation read)."""
    means = [row for row in rows if str(row.get("seed")) == MEAN_SEED]
    return means or rows


def with_seed_means(rows: list[dict]) -> list[dict]:
    """The rows, and where they hold several seeds, a row per cell and metric with the seeds'
    mean value (seed "mean")."""
    seeds = {row.get("seed") for row in rows}
    if len(seeds) < 2:
        return rows
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        cell = (row["metric"], row["train_setting"], row["test_setting"])
        groups.setdefault(cell, []).append(row)
    means = []
    for group in groups.values():
        values = [float(row["value"]) for row in group]
        means.append(group[0] | {"seed": MEAN_SEED, "value": float(np.mean(values))})
    return rows + means


DISTORTION_COLUMNS = ["split", "setting", "measure", "median", "p10", "p90", "count", "undefined"]

log = logging.getLogger(__name__)


def add_relative(rows: list[dict]) -> list[dict]:
    """Adds ``relative`` = value / value of the same metric's original/original cell.

    Args:
        rows: Result rows with every ``RESULT_COLUMNS`` key except ``relative``; with several
            seeds, each seed's rows (and their mean's) are relative to their own reference.

    Returns:
        New dicts (the inputs are not modified) with a float ``relative`` key. A metric whose
        original/original value is 0 or not finite (an mAP of 0 after a short training) has
        no relative values: they are NaN, with a warning, and every absolute value is kept.

    Raises:
        ValueError: If a metric has no original/original row.
    """
    references = {
        (row["metric"], row.get("seed")): float(row["value"])
        for row in rows
        if row["train_setting"] == ORIGINAL and row["test_setting"] == ORIGINAL
    }
    out = []
    for row in rows:
        metric = row["metric"]
        reference = references.get((metric, row.get("seed")))
        if reference is None:
            raise ValueError(f"metric {metric!r} has no original/original reference row")
        if reference == 0 or not math.isfinite(reference):
            out.append({**row, "relative": math.nan})
            continue
        relative = float(row["value"]) / reference
        if "relative_ci_low" in row and "relative_ci_high" in row:
            bounds = enclosing(row["relative_ci_low"], row["relative_ci_high"], relative)
            row = row | {"relative_ci_low": bounds[0], "relative_ci_high": bounds[1]}
        out.append({**row, "relative": relative})
    for (metric, _), reference in sorted(references.items(), key=lambda item: str(item[0])):
        if reference == 0 or not math.isfinite(reference):
            log.warning(
                "%s is %r at original/original: relative values are undefined (NaN); the "
                "absolute values are in results.csv",
                metric,
                reference,
            )
    return out


def write_results_csv(rows: list[dict], path: Path, axis: SettingAxis = DEFAULT_AXIS) -> Path:
    """Writes result rows to CSV, sorted by metric, train setting and test setting.

    Args:
        rows: Rows with every ``RESULT_COLUMNS`` key (including ``relative``).
        path: Destination file.
        axis: Orders the settings.

    Returns:
        ``path``.

    Raises:
        KeyError: If a row lacks a column (``relative`` comes from ``add_relative``); nothing
            is written then.
    """
    for row in rows:
        missing = [
            column
            for column in RESULT_COLUMNS
            if column not in row and column not in OPTIONAL_RESULT_COLUMNS
        ]
        if missing:
            raise KeyError(f"result row without {', '.join(missing)} (see add_relative)")
    ordered = sorted(
        rows,
        key=lambda r: (
            r["metric"],
            axis.position(r["train_setting"]),
            axis.position(r["test_setting"]),
            # Each seed in order, their mean last.
            str(r.get("seed")) == MEAN_SEED,
            r.get("seed") if str(r.get("seed")) != MEAN_SEED else 0,
        ),
    )
    return write_csv(ordered, RESULT_COLUMNS, path)
