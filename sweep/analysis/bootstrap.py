"""A paired bootstrap over test images: an interval for every cell and every relative value.

Every cell of a sweep is evaluated on the same test images (each encoded at its setting).
Each replicate draws one multiset of those images, as multinomial counts (how often each
image is drawn), and every cell's metric is recomputed on that same multiset. Because the
draw is shared, what two cells have in common cancels in their ratio or difference: the
interval of a cell relative to original/original is far narrower than the two cells'
intervals would suggest apart (Efron & Tibshirani, "An Introduction to the Bootstrap", 1993,
ch. 13; the percentile interval, section 13.3).

A metric enters through its task kind's ``resample``: per-image outcomes and a (B, N) matrix
of counts in, (B,) replicate values out. Accuracy is a weighted mean of per-image hits;
mIoU and mAcc are recomputed from the weighted sum of per-image confusion matrices; mAP is a
weighted recount of match tables ranked once per cell (a ``Resampler`` with a ``prepare``
step, sweep/analysis/detection_map.py).

What the interval covers: the sampling of test images, given the trained models. Training
noise (the seed) is what ``seeds`` replicates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from sweep.errors import OptionError

Cell = tuple[str, str]  # (train setting, test setting)
Resample = Callable[[Mapping[str, np.ndarray], np.ndarray], dict[str, np.ndarray]]
# Replicate counts are kept between cells up to this many entries (VOC's test split at B =
# 1000 is 5.8 M); past it, each cell draws them again from the same seed.
KEPT_COUNTS = 64_000_000


class Resampler(Protocol):
    """A resample with a step done once per cell (ranking detections, say) before the
    recount of each chunk of replicates."""

    def prepare(self, outcomes: Mapping[str, np.ndarray]) -> Any: ...

    def recount(self, prepared: Any, counts: np.ndarray) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class BootstrapOptions:
    """The `intervals` config group: replicates B, the seed of the draws, and the two-sided
    confidence of the reported intervals (a recommendation's bound is one-sided)."""

    replicates: int = 1000
    seed: int = 0
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.replicates < 2:
            raise OptionError(f"must be at least 2, got {self.replicates}", "intervals.replicates")
        if not 0 < self.confidence < 1:
            raise OptionError(
                f"must lie between 0 and 1 (0.95 for 95%), got {self.confidence}",
                "intervals.confidence",
            )


def replicate_counts(
    images: int, options: BootstrapOptions, chunk: int = 100
) -> Iterator[np.ndarray]:
    """(≤chunk, images) int arrays, B rows in all: how often each image is drawn per replicate.

    Seeded and drawn in the same order whatever the chunk, so the same options give the same
    replicates; chunks bound the memory at large test splits (25,250 images x 100 rows)."""
    rng = np.random.default_rng(options.seed)
    uniform = np.full(images, 1.0 / images)
    remaining = options.replicates
    while remaining > 0:
        rows = min(chunk, remaining)
        yield rng.multinomial(images, uniform, size=rows)
        remaining -= rows


def replicate_values(
    outcomes: Mapping[Cell, Mapping[str, np.ndarray]],
    resample: Resample | Resampler,
    options: BootstrapOptions,
) -> dict[Cell, dict[str, np.ndarray]]:
    """Every cell's metrics under the same B draws of test images: {cell: {metric: (B,)}}
    (a per-class metric, "per_class/<name>", is (B, classes)).

    A `Resampler` prepares each cell once; a plain resample function recomputes from the
    outcomes per chunk.

    Raises:
        ValueError: If the cells do not hold the same number of images (align them first
            with ``outcomes.aligned``).
    """
    sizes = {len(next(iter(o.values()))) for o in outcomes.values()}
    if len(sizes) != 1:
        raise ValueError(f"cells hold different numbers of images ({sorted(sizes)}); align them")
    images = sizes.pop()
    kept = (
        list(replicate_counts(images, options))
        if images * options.replicates <= (KEPT_COUNTS)
        else None
    )
    out = {}
    for cell, cell_outcomes in outcomes.items():
        if hasattr(resample, "recount"):
            prepared, recount = resample.prepare(cell_outcomes), resample.recount
        else:
            prepared, recount = cell_outcomes, resample
        parts: dict[str, list[np.ndarray]] = {}
        for counts in kept if kept is not None else replicate_counts(images, options):
            for metric, values in recount(prepared, counts).items():
                parts.setdefault(metric, []).append(values)
        out[cell] = {metric: np.concatenate(chunks) for metric, chunks in parts.items()}
    return out


def percentile_interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    """The two-sided percentile interval of finite replicates; NaNs when there are none."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return (float(low), float(high))


def lower_bound(replicates: np.ndarray, confidence: float) -> float:
    """The one-sided lower confidence bound: the (1 - confidence) quantile of the replicates."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return float("nan")
    return float(np.percentile(finite, (1 - confidence) * 100))


def relative_replicates(
    values: Mapping[Cell, Mapping[str, np.ndarray]], reference: Cell
) -> dict[Cell, dict[str, np.ndarray]]:
    """Each cell's replicates divided by the reference cell's in the same replicate (the
    paired ratio); NaN where the reference replicate is 0."""
    base = values[reference]
    out = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for cell, metrics in values.items():
            out[cell] = {
                metric: np.where(base[metric] != 0, replicate / base[metric], np.nan)
                for metric, replicate in metrics.items()
            }
    return out
