"""Per-image outcomes of an evaluation: stored beside its metrics, read back aligned by image.

An evaluation stores what a resample needs (its task kind says what: a classifier each
image's label, prediction and hit; a segmenter each image's confusion matrix) in
``outcomes.npz``, one row per test image, with each image's source path in the dataset.
Cells are aligned by that path, so a resample draws the same images in every cell even where
a setting's encode left a file out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

OUTCOMES_FILE = "outcomes.npz"
SOURCE = "source"

log = logging.getLogger(__name__)


def write_outcomes(out_dir: Path, sources: list[str], outcomes: Mapping[str, np.ndarray]) -> Path:
    """Writes outcomes.npz (compressed: per-image confusion matrices are mostly zeros).

    Raises:
        ValueError: If an array's first axis is not one row per source, or a name is taken.
    """
    if SOURCE in outcomes:
        raise ValueError(f"an outcome may not be called {SOURCE!r}")
    for name, values in outcomes.items():
        if len(values) != len(sources):
            raise ValueError(f"outcome {name!r} has {len(values)} rows for {len(sources)} images")
    path = Path(out_dir) / OUTCOMES_FILE
    with path.open("wb") as stream:  # the stage's folder is written atomically as a whole
        np.savez_compressed(stream, **{SOURCE: np.asarray(sources, dtype=str)}, **outcomes)
    return path


def read_outcomes(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """(sources, {name: per-image array}) of an outcomes.npz."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    return arrays.pop(SOURCE).tolist(), arrays


def aligned(
    cells: Mapping[object, tuple[list[str], Mapping[str, np.ndarray]]],
) -> dict[object, dict[str, np.ndarray]]:
    """The cells' outcomes restricted to the images every cell holds, in one order.

    An image missing from some cell (quarantined at one setting) is left out of all, with a
    warning that says how many, so that every replicate compares the same images.
    """
    source_sets = [set(sources) for sources, _ in cells.values()]
    common = set.intersection(*source_sets) if source_sets else set()
    everything = set.union(*source_sets) if source_sets else set()
    if len(common) < len(everything):
        log.warning(
            "%d of %d test images are not in every cell (left out of an encode); the "
            "intervals resample the %d that are",
            len(everything) - len(common),
            len(everything),
            len(common),
        )
    order = sorted(common)
    out = {}
    for cell, (sources, outcomes) in cells.items():
        position = {source: i for i, source in enumerate(sources)}
        rows = np.fromiter((position[s] for s in order), dtype=np.int64, count=len(order))
        out[cell] = {name: values[rows] for name, values in outcomes.items()}
    return out
