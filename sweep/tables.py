"""The package's one CSV writer.

Every table (results, distortion, quarantine, conversions, the codec comparison, the budget
and the dataset audit) goes through `write_csv`, so they all format numbers the same way and
are all written atomically.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from sweep.store import atomic_write


def csv_cell(value: object) -> object:
    """None as an empty cell, floats (numpy's too) with ``repr`` so they round-trip exactly."""
    if value is None:
        return ""
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return value


def write_csv(rows: Iterable[Mapping[str, object]], columns: Sequence[str], path: Path) -> Path:
    """Writes dict rows under a header of ``columns``, atomically (a header only when empty).

    Args:
        rows: One mapping per row; keys outside ``columns`` are ignored, and a missing key or
            None gives an empty cell.
        columns: Header and column order.
        path: Destination file (UTF-8, ``\\r\\n`` line ends as the csv module writes them).

    Returns:
        ``path``.
    """

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(columns)
            writer.writerows([csv_cell(row.get(column)) for column in columns] for row in rows)

    return atomic_write(path, write)
