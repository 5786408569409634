"""The intervals of a finished sweep's cells, from the outcomes its evaluations stored.

Reads every cell's outcomes.npz, aligns the cells by image, runs the paired bootstrap with the
task kind's `resample`, and gives each result row its columns: ci_low and ci_high of the
value, relative_ci_low and relative_ci_high of the value relative to original/original.

Which interval, when:

* a metric that is the share of images with a 0/1 outcome (the task kind's
  `proportion_outcomes`, classification's accuracy), one seed's cell: Clopper-Pearson for the
  value and Newcombe's paired score interval for the relative value (proportions.py). The
  percentile bootstrap is degenerate there at the boundary: every image right, or no image
  changing its answer, gives every replicate the same value and a zero-width interval.
* the seeds' mean of any metric, and metrics that are no such share (mIoU, mAcc, mAP): the
  paired bootstrap (bootstrap.py), which resamples seeds too.

And when original/original is no better than chance (the kind's `chance_level`, chance.py),
the sweep says so: a warning, `chance` here, and rows that carry the reason (`at_chance`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from sweep.analysis.bootstrap import (
    BootstrapOptions,
    Cell,
    lower_bound,
    percentile_interval,
    relative_replicates,
    replicate_values,
)
from sweep.analysis.chance import AtChance, ChanceLevel, at_chance
from sweep.analysis.outcomes import OUTCOMES_FILE, aligned, read_outcomes
from sweep.analysis.proportions import LARGEST_TEST_SET, PairedRatio, clopper_pearson
from sweep.store import ArtifactStore

REFERENCE: Cell = ("original", "original")
MEAN_SEED = "mean"  # as in results.csv (sweep/report/tables.py)
INTERVAL_COLUMNS = ("ci_low", "ci_high", "relative_ci_low", "relative_ci_high")
AT_CHANCE = "at_chance"  # a row's note that its metric's original/original is at chance

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BootstrapRatio:
    """A cell's relative value as the paired bootstrap sees it: its B replicates."""

    replicates: np.ndarray
    images: int
    observed: float  # the relative value on the images every cell holds

    method = "paired bootstrap (percentile)"

    def interval(self, confidence: float) -> tuple[float, float]:
        return percentile_interval(self.replicates, confidence)

    def lower_bound(self, confidence: float) -> float:
        return lower_bound(self.replicates, confidence)

    def images_needed(self, threshold: float, confidence: float) -> int | None:
        """About how many test images would lift the lower bound to `threshold`, the
        interval's width shrinking as 1/sqrt(images); None when more images cannot (the
        observed value is not above the threshold). Seeds' noise does not shrink with
        images: for a seeds' mean this is a floor."""
        bound = self.lower_bound(confidence)
        if not (self.images and self.observed > threshold and math.isfinite(bound)):
            return None
        if bound >= threshold:
            return self.images
        needed = math.ceil(
            self.images * ((self.observed - bound) / (self.observed - threshold)) ** 2
        )
        return needed if needed <= LARGEST_TEST_SET else None


@dataclass(frozen=True)
class ExactProportion:
    """One seed's cell of a metric that is a share of images: its hits, and its table of
    paired outcomes against its seed's original/original (None where the grid has none)."""

    hits: int
    images: int
    paired: PairedRatio | None


@dataclass(frozen=True)
class SweepIntervals:
    """B bootstrap replicates of every cell's metrics, absolute and relative, drawn on the
    same images, keyed (train setting, test setting, seed); with several seeds also their
    mean, keyed (train setting, test setting, "mean"). `relative` is None where the grid has
    no original/original cell.

    `points` are the metrics on the images every cell holds (the bootstrap's centre),
    `proportions` the exact evidence of the one-seed cells of share metrics (which then give
    the columns), `chance` the metrics whose original/original is at chance."""

    options: BootstrapOptions
    values: dict[tuple, dict[str, np.ndarray]]
    relative: dict[tuple, dict[str, np.ndarray]] | None
    images: int = 0
    points: dict[tuple, dict[str, float]] = field(default_factory=dict)
    proportions: dict[tuple, dict[str, ExactProportion]] = field(default_factory=dict)
    chance: dict[str, AtChance] = field(default_factory=dict)

    def columns(self, cell: tuple, metric: str) -> dict[str, float]:
        """The interval columns of one result row."""
        confidence = self.options.confidence
        exact = self.proportions.get(cell, {}).get(metric)
        if exact is not None:
            low, high = (float(b) for b in clopper_pearson(exact.hits, exact.images, confidence))
        else:
            low, high = percentile_interval(self.values[cell][metric], confidence)
        out = {"ci_low": low, "ci_high": high}
        if self.relative is not None:
            if exact is not None and cell[:2] == REFERENCE:
                low, high = 1.0, 1.0  # the reference relative to itself: 1 by definition
            elif exact is not None and exact.paired is not None:
                low, high = exact.paired.interval(confidence)
            else:
                low, high = percentile_interval(self.relative[cell][metric], confidence)
            out |= {"relative_ci_low": low, "relative_ci_high": high}
        return out

    def headline_seed(self) -> object:
        """The seed label of the headline rows: "mean" with several seeds, else the one."""
        seeds = {cell[2] for cell in self.values}
        return MEAN_SEED if MEAN_SEED in seeds else next(iter(seeds))

    def headline_relative(self, metric: str) -> dict[Cell, PairedRatio | BootstrapRatio]:
        """(train, test) -> the evidence of the headline rows' relative value: the paired
        table of a share metric's one-seed cells, the bootstrap replicates otherwise (and for
        the seeds' mean). Each has interval, lower_bound, images_needed and method."""
        if self.relative is None:
            return {}
        label, out = self.headline_seed(), {}
        for cell, metrics in self.relative.items():
            if cell[2] != label:
                continue
            exact = self.proportions.get(cell, {}).get(metric)
            if exact is not None and exact.paired is not None:
                out[cell[:2]] = exact.paired
            else:
                reference = self.points[(*REFERENCE, label)][metric]
                observed = self.points[cell][metric] / reference if reference else math.nan
                out[cell[:2]] = BootstrapRatio(metrics[metric], self.images, observed)
        return out


def measure_intervals(
    store: ArtifactStore,
    evaluations: Mapping[tuple, object],
    resample,
    options: BootstrapOptions,
    proportions: Mapping[str, str] | None = None,
    chance_level: Callable[[Mapping[str, np.ndarray]], dict[str, ChanceLevel]] | None = None,
) -> SweepIntervals | None:
    """The intervals of the cells' evaluations (stages of the evaluate kind, keyed (train
    setting, test setting, seed)), or None with a logged reason: the task kind's metric is
    not resampled, or a cell has no outcomes (it was evaluated before outcomes were stored).

    Every cell of every seed is resampled on the same draws of images. The seeds' mean is
    resampled over seeds too: each replicate also draws the seeds with replacement, so its
    interval holds the training noise that the seeds show beside the test images' noise.

    Args:
        proportions: The task kind's `proportion_outcomes`: {metric: the per-image 0/1
            outcome it is the share of}; those metrics' one-seed cells get exact intervals.
        chance_level: The task kind's `chance_level` hook; None: no check for chance.
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
    images = len(next(iter(next(iter(outcomes.values())).values()))) if outcomes else 0
    if not images:
        log.warning("intervals: no test image is in every cell; no intervals")
        return None
    values = replicate_values(outcomes, resample, options)
    points = {
        cell: {m: float(v[0]) for m, v in resample(o, np.ones((1, images))).items() if v.ndim == 1}
        for cell, o in outcomes.items()
    }
    seeds = sorted({cell[2] for cell in values})
    if len(seeds) > 1:
        values |= seed_means(values, seeds, options)
        points |= seed_mean_points(points, seeds)
    references = {cell[2]: (*REFERENCE, cell[2]) for cell in values}
    relative = None
    if all(reference in values for reference in references.values()):
        relative = {}
        for label, reference in references.items():
            group = {cell: v for cell, v in values.items() if cell[2] == label}
            relative |= relative_replicates(group, reference)
    exact = exact_proportions(outcomes, proportions or {})
    intervals = SweepIntervals(options, values, relative, images, points, exact)
    if chance_level is None or relative is None:
        return intervals
    return replace(intervals, chance=chance_verdicts(intervals, outcomes, chance_level))


def exact_proportions(
    outcomes: Mapping[tuple, Mapping[str, np.ndarray]], proportions: Mapping[str, str]
) -> dict[tuple, dict[str, ExactProportion]]:
    """Each one-seed cell's hits of each share metric, paired with its seed's reference."""
    out: dict[tuple, dict[str, ExactProportion]] = {}
    for cell, cell_outcomes in outcomes.items():
        reference = outcomes.get((*REFERENCE, cell[2]))
        for metric, name in proportions.items():
            hits = np.asarray(cell_outcomes[name], dtype=bool)
            paired = None if reference is None else PairedRatio.of(hits, reference[name])
            out.setdefault(cell, {})[metric] = ExactProportion(int(hits.sum()), hits.size, paired)
    return out


def chance_verdicts(
    intervals: SweepIntervals, outcomes: Mapping[tuple, Mapping[str, np.ndarray]], chance_level
) -> dict[str, AtChance]:
    """The metrics whose headline original/original interval does not lie above the chance
    level that the kind's hook finds in the reference's outcomes, each with a warning."""
    label = intervals.headline_seed()
    reference = (*REFERENCE, label)
    truth = outcomes[next(cell for cell in outcomes if cell[:2] == REFERENCE)]
    verdicts = {}
    for metric, level in chance_level(truth).items():
        if metric not in intervals.points[reference]:
            continue
        columns = intervals.columns(reference, metric)
        verdict = at_chance(
            metric, level, intervals.points[reference][metric], columns["ci_low"],
            columns["ci_high"], intervals.options.confidence,
        )  # fmt: skip
        if verdict is not None:
            log.warning("intervals: %s", verdict.reason())
            verdicts[metric] = verdict
    return verdicts


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


def seed_mean_points(
    points: Mapping[tuple, Mapping[str, float]], seeds: list
) -> dict[tuple, dict[str, float]]:
    """(train, test, "mean") -> the seeds' mean of each metric's value."""
    out: dict[tuple, dict[str, float]] = {}
    for train, test in {cell[:2] for cell in points}:
        group = [points[(train, test, seed)] for seed in seeds]
        out[(train, test, MEAN_SEED)] = {m: float(np.mean([g[m] for g in group])) for m in group[0]}
    return out


def with_intervals(rows: list[dict], intervals: SweepIntervals | None) -> list[dict]:
    """Result rows (train_setting, test_setting, seed, metric) with their interval columns;
    an undefined bound (a metric undefined in every draw) is left out of the row. The rows
    of a metric at chance also carry `at_chance`, the heatmap's title line (no column of
    results.csv)."""
    if intervals is None:
        return rows
    out = []
    for row in rows:
        cell = (row["train_setting"], row["test_setting"], row["seed"])
        columns = intervals.columns(cell, row["metric"])
        columns["ci_low"], columns["ci_high"] = enclosing(
            columns["ci_low"], columns["ci_high"], row["value"]
        )
        row = row | {name: v for name, v in columns.items() if math.isfinite(v)}
        verdict = intervals.chance.get(row["metric"])
        out.append(row if verdict is None else row | {AT_CHANCE: verdict.title()})
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
