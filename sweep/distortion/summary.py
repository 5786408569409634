"""The per-setting summary of measured distortion: percentiles and bootstrap intervals.

Each setting's images are a sample of its split (`distortion.sample`), so its median and mean
carry a 95% percentile-bootstrap interval over the measured images (Efron & Tibshirani, 1993,
section 13.3). The replicates are drawn as multinomial counts by
`sweep.analysis.bootstrap.replicate_counts` with the distortion seed over the images measured
without error; every setting of a split measures the same images, so where none failed, each
setting's replicates draw the same multisets of them.
"""

from __future__ import annotations

import math

import numpy as np

from sweep.analysis.bootstrap import BootstrapOptions, replicate_counts

CONFIDENCE = 0.95
REPLICATES = 1000
# Statistics with an interval, and the names of their bounds in a field's stats.
INTERVAL_STATS = ("median", "mean")
INTERVAL_FIELDS = tuple(f"{stat}_ci_{side}" for stat in INTERVAL_STATS for side in ("low", "high"))


def summarize_distortion(records: list[dict], fields: tuple[str, ...], seed: int = 0) -> dict:
    """Per field: median, 10th and 90th percentiles, mean, counts, and the intervals of the
    median and the mean (`median_ci_low`, `median_ci_high`, `mean_ci_low`, `mean_ci_high`).

    None values are left out and counted ("undefined"), except PSNR's None, which means
    identical images: it counts as infinite ("identical") and a percentile or bound that lands
    on it is None. The mean is over the finite values. The worse tail of PSNR, SSIM and
    SSIMULACRA 2 is p10; of Butteraugli, p90. Images that could not be measured (an "error"
    in their record) count as undefined.
    """
    summary = {}
    measured = [record for record in records if "error" not in record]
    columns = {}
    for name in fields:
        values = [record["distortion"][name] for record in measured]
        if name == "psnr":
            column = np.array([math.inf if v is None else v for v in values], dtype=np.float64)
        else:
            column = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
        present = column[~np.isnan(column)]
        stats = {"count": int(present.size), "undefined": len(records) - int(present.size)}
        if name == "psnr":
            stats["identical"] = int(np.isinf(column).sum())
        if present.size:
            for label, q in (("median", 50), ("p10", 10), ("p90", 90)):
                # The nearest rank, so that infinity never mixes into an interpolation.
                stats[label] = finite_or_none(np.percentile(present, q, method="nearest"))
            finite = present[np.isfinite(present)]
            stats["mean"] = float(finite.mean()) if finite.size else None
            columns[name] = column
        summary[name] = stats
    for name, bounds in bootstrap_intervals(columns, seed).items():
        summary[name] |= bounds
    return summary


def bootstrap_intervals(columns: dict[str, np.ndarray], seed: int) -> dict[str, dict]:
    """{field: {median_ci_low, median_ci_high, mean_ci_low, mean_ci_high}} of (N,) columns of
    one setting's images (NaN: undefined, left out of each replicate; inf: identical images).

    Every field is resampled with the same draws of images.
    """
    if not columns:
        return {}
    images = len(next(iter(columns.values())))
    options = BootstrapOptions(replicates=REPLICATES, seed=seed, confidence=CONFIDENCE)
    replicates: dict[str, dict[str, list[np.ndarray]]] = {
        name: {"median": [], "mean": []} for name in columns
    }
    prepared = {name: sorted_column(column) for name, column in columns.items()}
    for counts in replicate_counts(images, options):
        for name, (order, ordered, finite) in prepared.items():
            weights = counts[:, order]  # (rows, present images), in value order
            replicates[name]["median"].append(weighted_median(ordered, weights))
            replicates[name]["mean"].append(weighted_mean(ordered, weights, finite))
    intervals = {}
    for name, by_stat in replicates.items():
        bounds = {}
        for stat, chunks in by_stat.items():
            low, high = percentile_bounds(np.concatenate(chunks), CONFIDENCE)
            bounds[f"{stat}_ci_low"], bounds[f"{stat}_ci_high"] = low, high
        intervals[name] = bounds
    return intervals


def sorted_column(column: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions of the present values in value order, those values, which are finite)."""
    present = np.flatnonzero(~np.isnan(column))
    order = present[np.argsort(column[present], kind="stable")]
    ordered = column[order]
    return order, ordered, np.isfinite(ordered)


def weighted_median(ordered: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(rows,) medians of each row's multiset (`weights`: how often each sorted value is
    drawn), by the nearest rank as `np.percentile(..., 50, method="nearest")`; NaN for an
    empty row."""
    cumulative = np.cumsum(weights, axis=1)
    total = cumulative[:, -1]
    rank = np.around(0.5 * (total - 1))  # 0-based, half to even as NumPy's "nearest"
    position = (cumulative > rank[:, None]).argmax(axis=1)
    return np.where(total > 0, ordered[position], np.nan)


def weighted_mean(ordered: np.ndarray, weights: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """(rows,) means of the finite values of each row's multiset; NaN where there are none."""
    weights = weights[:, finite]
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights @ ordered[finite]) / total


def percentile_bounds(replicates: np.ndarray, confidence: float) -> tuple[float | None, ...]:
    """The two-sided percentile interval of the replicates, by rank (the lower bound rounded
    down, the upper up), so that infinite replicates give an infinite (None) bound instead of
    being dropped; NaN replicates (empty draws) are left out. None when there are none."""
    kept = replicates[~np.isnan(replicates)]
    if kept.size == 0:
        return None, None
    tail = (1 - confidence) / 2 * 100
    low = np.percentile(kept, tail, method="lower")
    high = np.percentile(kept, 100 - tail, method="higher")
    return finite_or_none(low), finite_or_none(high)


def finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
