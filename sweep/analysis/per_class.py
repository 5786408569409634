"""Each class's metric in every cell, with its interval, relative to original/original.

The contract with the task kinds is one key: a kind's ``resample(outcomes, counts)`` returns,
beside its (B,) metrics, ``"per_class/<metric>"`` -> (B, C) replicates, C classes, NaN where
a class is undefined in a draw (classification ``per_class/accuracy``, segmentation
``per_class/iou``, detection ``per_class/ap`` at the headline IoU). The intervals
(`sweep.analysis.intervals.measure_intervals`) carry these keys like any metric, paired and
relative to original/original replicate by replicate; the full-set values are the same
resample with every test image drawn once (`full_set_values`). A kind without the key has no
per-class table. A per-class metric that is a share of images (classification's accuracy: the
kind's `proportion_outcomes`) gets exact intervals in one seed's cells, as results.csv does
(`exact_class_intervals`); the seeds' mean and the other metrics the percentile bootstrap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from sweep.analysis.bootstrap import percentile_interval
from sweep.analysis.intervals import MEAN_SEED, REFERENCE, SweepIntervals, enclosing
from sweep.analysis.proportions import PairedRatio, clopper_pearson

PER_CLASS = "per_class/"

Resample = Callable[[Mapping[str, np.ndarray], np.ndarray], dict[str, np.ndarray]]


def per_class_key(metric: str) -> str:
    """The resample's key of a metric's per-class replicates: "per_class/accuracy"."""
    return f"{PER_CLASS}{metric}"


def per_class_metrics(keys: Iterable[str]) -> list[str]:
    """The metrics that have per-class replicates among a resample's keys."""
    return sorted(key.removeprefix(PER_CLASS) for key in keys if key.startswith(PER_CLASS))


def full_set_values(
    resample: Resample, outcomes: Mapping[tuple, Mapping[str, np.ndarray]]
) -> dict[tuple, dict[str, np.ndarray]]:
    """{cell: {metric: (C,)}}: each class's metric on the whole test split (every image
    drawn once), for every per-class metric the resample returns; with several seeds also
    the seeds' mean, keyed (train, test, "mean"), as results.csv averages them."""
    out = {}
    for cell, cell_outcomes in outcomes.items():
        images = len(next(iter(cell_outcomes.values())))
        drawn = resample(cell_outcomes, np.ones((1, images), dtype=np.int64))
        out[cell] = {
            metric: np.asarray(drawn[per_class_key(metric)][0], dtype=np.float64)
            for metric in per_class_metrics(drawn)
        }
    seeds = sorted({cell[2] for cell in out}, key=str)
    if len(seeds) > 1:
        for train, test in {cell[:2] for cell in out}:
            first = out[(train, test, seeds[0])]
            out[(train, test, MEAN_SEED)] = {
                metric: np.mean([out[(train, test, s)][metric] for s in seeds], axis=0)
                for metric in first
            }
    return out


def exact_class_intervals(
    outcomes: Mapping[tuple, Mapping[str, np.ndarray]],
    proportions: Mapping[str, str],
    confidence: float,
) -> dict[tuple, dict[str, float]]:
    """(cell, metric, class index) -> interval columns of the per-class metrics that are a
    share of the class's images with a 0/1 outcome (the kind's `proportion_outcomes`, with
    the images' "label"), for one seed's cells: Clopper-Pearson for the value, Newcombe's
    paired interval for the relative value, as results.csv has them (proportions.py). They
    stay valid where a class's images are all right or none changes its answer, where the
    percentile bootstrap gives a zero-width interval."""
    out: dict[tuple, dict[str, float]] = {}
    for cell, cell_outcomes in outcomes.items():
        reference = outcomes.get((*REFERENCE, cell[2]))
        if "label" not in cell_outcomes:
            continue
        label = np.asarray(cell_outcomes["label"])
        for metric, name in proportions.items():
            hits = np.asarray(cell_outcomes[name], dtype=bool)
            for index in np.unique(label):
                chosen = label == index
                low, high = clopper_pearson(hits[chosen].sum(), chosen.sum(), confidence)
                columns = {"ci_low": float(low), "ci_high": float(high)}
                if reference is not None and cell[:2] == REFERENCE:
                    columns |= {"relative_ci_low": 1.0, "relative_ci_high": 1.0}
                elif reference is not None:
                    paired = PairedRatio.of(hits[chosen], np.asarray(reference[name])[chosen])
                    bounds = paired.interval(confidence)
                    columns |= {"relative_ci_low": bounds[0], "relative_ci_high": bounds[1]}
                out[(cell, metric, int(index))] = columns
    return out


def per_class_rows(
    full: Mapping[tuple, Mapping[str, np.ndarray]],
    intervals: SweepIntervals,
    class_names: list[str],
    exact: Mapping[tuple, Mapping[str, float]] | None = None,
) -> list[dict]:
    """One row per cell (train setting, test setting, seed), per-class metric and class: the
    class's value with its interval, and relative to the same seed's original/original value
    of the same class, with the interval of the paired ratio: the percentile bootstrap's of
    the shared replicates, or where `exact` has a (cell, metric, class) the columns it holds
    (`exact_class_intervals`). Bounds undefined in every draw (a class absent from the test
    split) are left out of the row."""
    confidence = intervals.options.confidence
    exact = exact or {}
    rows = []
    for cell, metrics in full.items():
        reference = full.get((*REFERENCE, cell[2]), {})
        for metric, values in metrics.items():
            key = per_class_key(metric)
            replicates = intervals.values[cell][key]
            relative = None if intervals.relative is None else intervals.relative[cell][key]
            for index, value in enumerate(values):
                base = reference[metric][index] if metric in reference else math.nan
                row = {
                    "train_setting": cell[0],
                    "test_setting": cell[1],
                    "seed": cell[2],
                    "class_index": index,
                    "class_name": class_names[index] if index < len(class_names) else str(index),
                    "metric": metric,
                    "value": float(value),
                    "relative": float(value / base) if base and math.isfinite(base) else math.nan,
                }
                low, high = percentile_interval(replicates[:, index], confidence)
                row["ci_low"], row["ci_high"] = enclosing(low, high, value)
                if relative is not None:
                    bounds = percentile_interval(relative[:, index], confidence)
                    row["relative_ci_low"], row["relative_ci_high"] = bounds
                row |= exact.get((cell, metric, index), {})
                rows.append({k: v for k, v in row.items() if not _undefined(v)})
    return rows


def _undefined(value) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def headline_seed(rows: list[dict]):
    """The seed whose rows the figures read: the seeds' mean where there are several."""
    seeds = [row["seed"] for row in rows]
    return MEAN_SEED if MEAN_SEED in seeds else (seeds[0] if seeds else None)


def losing_most(rows: list[dict], train: str, test: str, count: int) -> list[dict]:
    """The `count` classes of the cell (train, test) with the lowest relative value, the
    lowest first (headline seed; classes without a relative value are left out)."""
    seed = headline_seed(rows)
    cell = [
        row
        for row in rows
        if (row["train_setting"], row["test_setting"]) == (train, test)
        and row["seed"] == seed
        and "relative" in row
    ]
    return sorted(cell, key=lambda row: (row["relative"], row["class_index"]))[:count]


def surely_hurt(row: dict) -> bool:
    """Whether a class's relative interval lies wholly below 100%."""
    return row.get("relative_ci_high", math.inf) < 1


@dataclass(frozen=True)
class ClassesHurt:
    """The classes hurt first as the test setting grows, for a model trained on originals:
    at `test_setting`, the first in the order of compression where some class's relative
    interval lies below 100% (`surely` True), else at the most compressed one (`surely`
    False: no class is surely hurt anywhere); `rows` lowest relative value first."""

    test_setting: str
    surely: bool
    rows: list[dict]


def classes_hurt_first(
    rows: list[dict], test_settings: list[str], count: int = 3, train: str = "original"
) -> ClassesHurt | None:
    """The classes hurt first (see `ClassesHurt`); None without a compressed test setting
    or without relative values.

    Args:
        rows: `per_class_rows`.
        test_settings: The test settings in the order of compression, original first.
        count: How many classes to name at most.
        train: The train setting whose row is read.
    """
    compressed = [s for s in test_settings if s != REFERENCE[1]]
    for setting in compressed:
        hurt = [row for row in losing_most(rows, train, setting, len(rows)) if surely_hurt(row)]
        if hurt:
            return ClassesHurt(setting, True, hurt[:count])
    for setting in reversed(compressed):
        lowest = losing_most(rows, train, setting, count)
        if lowest:
            return ClassesHurt(setting, False, lowest)
    return None
