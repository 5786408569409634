"""The audit's tables (every file, the anomalies, value counts, bits per pixel) and headline
numbers, written with the project's one CSV writer (``sweep.report.tables.write_csv``)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np

from sweep.audit.categories import ALL, SPLITS, splits_of, value_key
from sweep.audit.records import AUDIT_COLUMNS, FileAudit, anomalies
from sweep.tables import write_csv

FILE_COLUMNS = [*AUDIT_COLUMNS, "anomalies"]
ANOMALY_COLUMNS = ["split", "path", "reason"]
SUMMARY_MEASURES = ("format", "jpeg_quality", "jpeg_subsampling", "jpeg_progressive", "mode")
SUMMARY_COLUMNS = ["split", "measure", "value", "count"]
BPP_COLUMNS = ["split", "count", "mean", "median", "p10", "p90"]


def write_files_csv(records: list[FileAudit], path: Path) -> Path:
    """Writes every record (``AUDIT_COLUMNS`` plus ``"; "``-joined ``anomalies``) to CSV."""
    rows = (
        {**{c: getattr(r, c) for c in AUDIT_COLUMNS}, "anomalies": "; ".join(anomalies(r))}
        for r in records
    )
    return write_csv(rows, FILE_COLUMNS, path)


def write_anomalies_csv(records: list[FileAudit], path: Path) -> Path:
    """Writes one ``split, path, reason`` row per reason of every anomalous file."""
    rows = (
        {"split": r.split, "path": r.path, "reason": reason}
        for r in records
        for reason in anomalies(r)
    )
    return write_csv(rows, ANOMALY_COLUMNS, path)


def summary_rows(records: list[FileAudit]) -> list[dict[str, object]]:
    """Counts of each value of each ``SUMMARY_MEASURES`` field, per split and over all files.

    Records whose field is None (e.g. the JPEG quality of a PNG, the mode of an unreadable
    file) are left out of that measure's counts, so each measure counts the files it applies to.

    Returns:
        Rows keyed by ``SUMMARY_COLUMNS``; splits ordered train, test, others, ``"all"``.
    """
    rows: list[dict[str, object]] = []
    groups = [(s, [r for r in records if r.split == s]) for s in splits_of(records)]
    for split, members in [*groups, (ALL, records)]:
        if not members:
            continue
        for measure in SUMMARY_MEASURES:
            counts = Counter(getattr(r, measure) for r in members)
            counts.pop(None, None)
            for value in sorted(counts, key=value_key):
                rows.append(
                    {"split": split, "measure": measure, "value": value, "count": counts[value]}
                )
    return rows


def bits_per_pixel_rows(records: list[FileAudit]) -> list[dict[str, object]]:
    """Count, mean, median, 10th and 90th percentile of bits per pixel per split and overall.

    Returns:
        Rows keyed by ``BPP_COLUMNS``; statistics are NaN for a split without any readable
        file.
    """
    rows: list[dict[str, object]] = []
    for split in [*splits_of(records), ALL]:
        values = np.array(
            [
                r.bits_per_pixel
                for r in records
                if (split == ALL or r.split == split) and r.bits_per_pixel is not None
            ],
            dtype=float,
        )
        if values.size:
            p10, median, p90 = np.percentile(values, [10, 50, 90])
            stats = [float(values.mean()), float(median), float(p10), float(p90)]
        else:
            stats = [math.nan] * 4
        rows.append(dict(zip(BPP_COLUMNS, [split, int(values.size), *stats], strict=True)))
    return rows


def write_summary_csv(records: list[FileAudit], path: Path) -> Path:
    """Writes ``summary_rows`` to CSV."""
    return write_csv(summary_rows(records), SUMMARY_COLUMNS, path)


def write_bits_per_pixel_csv(records: list[FileAudit], path: Path) -> Path:
    """Writes ``bits_per_pixel_rows`` to CSV."""
    return write_csv(bits_per_pixel_rows(records), BPP_COLUMNS, path)


def summarize(records: list[FileAudit]) -> dict[str, float]:
    """Headline numbers for MLflow metrics, per split (train and test always) and ``"all"``.

    Keys are ``"<split>/<name>"`` with name one of ``files``, ``unreadable``, ``anomalies``
    (files with at least one reason), ``format_mismatch``, ``jpeg_share`` (fraction of the
    split's files whose content is JPEG, unreadable ones included; NaN without files) and
    ``median_quality`` (of the JPEGs with a quality estimate; NaN if none).
    """
    out: dict[str, float] = {}
    splits = list(SPLITS) + [s for s in splits_of(records) if s not in SPLITS]
    for split in [*splits, ALL]:
        members = [r for r in records if split == ALL or r.split == split]
        qualities = [r.jpeg_quality for r in members if r.jpeg_quality is not None]
        jpegs = sum(r.format == "jpeg" for r in members)
        out[f"{split}/files"] = float(len(members))
        out[f"{split}/unreadable"] = float(sum(bool(r.error) for r in members))
        out[f"{split}/anomalies"] = float(sum(bool(anomalies(r)) for r in members))
        out[f"{split}/format_mismatch"] = float(sum(bool(r.format_mismatch) for r in members))
        out[f"{split}/jpeg_share"] = jpegs / len(members) if members else math.nan
        out[f"{split}/median_quality"] = float(np.median(qualities)) if qualities else math.nan
    return out
