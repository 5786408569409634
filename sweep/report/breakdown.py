"""What one number per cell hides: each class's metric and the test images that change.

Reads every cell's outcomes (as the intervals do), then writes per_class.csv and its figure
(per_class.py) and changed_images.csv with a gallery per trained model (changed_images.py).
Cells without outcomes (evaluated before outcomes were stored) give neither, with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sweep.analysis.changed_images import image_scores, most_affected
from sweep.analysis.intervals import REFERENCE, SweepIntervals
from sweep.analysis.outcomes import OUTCOMES_FILE, aligned, read_outcomes
from sweep.analysis.per_class import (
    ClassesHurt,
    classes_hurt_first,
    exact_class_intervals,
    full_set_values,
    per_class_rows,
)
from sweep.codecs.base import ORIGINAL
from sweep.data.pixels import read_pixels
from sweep.report.axis import SettingAxis
from sweep.report.changed_images import (
    GALLERY_IMAGES,
    ImageOf,
    changed_rows,
    gallery_name,
    plot_gallery,
    write_changed_csv,
)
from sweep.report.per_class import PER_CLASS_FIGURE, plot_classes_losing_most, write_per_class_csv
from sweep.spec import Sweep
from sweep.stages.encode import encoded_files, encoded_sources
from sweep.stages.graph import SweepPlan
from sweep.store import ArtifactStore

log = logging.getLogger(__name__)


@dataclass
class Breakdown:
    """The files written, for the parent run (by name) and each model's child run (by train
    setting), and the classes hurt first (None without per-class values)."""

    parent: dict[str, Path] = field(default_factory=dict)
    children: dict[str, list[Path]] = field(default_factory=dict)
    hurt: ClassesHurt | None = None


def read_cells(
    store: ArtifactStore, evaluations: Mapping[tuple, object]
) -> tuple[list[str], dict[tuple, dict[str, np.ndarray]]] | None:
    """(sources, {cell: outcomes}) of every cell, aligned on the images all cells hold;
    None when a cell has no outcomes or no image is in every cell."""
    cells = {}
    for cell, stage in evaluations.items():
        if not store.has_file("evaluate", stage.key, OUTCOMES_FILE):
            return None  # the intervals have said which cell, and why
        cells[cell] = read_outcomes(store.file("evaluate", stage.key, OUTCOMES_FILE))
    sources = sorted(set.intersection(*(set(s) for s, _ in cells.values()))) if cells else []
    if not sources:
        return None
    return sources, aligned(cells)


def write_breakdown(
    sweep: Sweep,
    plan: SweepPlan,
    intervals: SweepIntervals | None,
    out: Path,
    axis: SettingAxis,
    image_of: ImageOf | None = None,
) -> Breakdown:
    """per_class.csv and its figure, changed_images.csv and the galleries, in `out`;
    `image_of` reads a test image at a test setting (default: from the plan's encodes)."""
    breakdown = Breakdown()
    read = read_cells(sweep.store, plan.replicate_evaluations)
    if read is None:
        log.info("per class and changed images: some cell has no outcomes; none this run")
        return breakdown
    sources, outcomes = read
    test_settings = sorted(plan.test_settings, key=axis.position)
    if intervals is not None and sweep.task.resample is not None:
        exact = exact_class_intervals(
            outcomes, sweep.task.proportion_outcomes, sweep.intervals.confidence
        )
        full = full_set_values(sweep.task.resample, outcomes)
        rows = per_class_rows(full, intervals, plan.class_names, exact)
        if rows:
            breakdown.parent["per_class.csv"] = write_per_class_csv(rows, out)
            figure = plot_classes_losing_most(rows, test_settings, out / PER_CLASS_FIGURE)
            if figure is not None:
                breakdown.parent[PER_CLASS_FIGURE] = figure
            breakdown.hurt = classes_hurt_first(rows, test_settings)
    scores = {cell: image_scores(o) for cell, o in outcomes.items()}
    if any(s is None for s in scores.values()):
        log.info("changed images: this task kind's outcomes score no image; none this run")
        return breakdown
    rows = changed_rows(scores, sources, sweep.intervals.confidence)
    breakdown.parent["changed_images.csv"] = write_changed_csv(rows, out)
    image_of = image_of or TestImages(sweep.store, plan)
    breakdown.children = write_galleries(
        plan, sources, outcomes, scores, out, test_settings, image_of
    )
    return breakdown


def write_galleries(
    plan: SweepPlan,
    sources: list[str],
    outcomes: Mapping[tuple, Mapping[str, np.ndarray]],
    scores: Mapping[tuple, object],
    out: Path,
    test_settings: list[str],
    image_of: ImageOf,
) -> dict[str, list[Path]]:
    """changed_images_<train setting>.png of each trained model (first seed) that answers
    some test image worse than original/original; by train setting."""
    seed = plan.seeds[0]
    reference = (*REFERENCE, seed)
    galleries = {}
    for train in plan.trains:
        cells = {
            test: (train, test, seed)
            for test in test_settings
            if (train, test, seed) in scores and (train, test, seed) != reference
        }
        affected = most_affected(
            scores[reference], {t: scores[c] for t, c in cells.items()}, GALLERY_IMAGES, train
        )
        if not affected:
            log.info("changed images: the model trained at %s answers no image worse", train)
            continue
        path = plot_gallery(
            affected,
            train,
            sources,
            outcomes[reference],
            {t: outcomes[c] for t, c in cells.items()},
            plan.class_names,
            image_of,
            out / gallery_name(train),
        )
        galleries[train] = [path]
    return galleries


class TestImages:
    """A test image's pixels at a test setting, by its source path (each setting's encode
    records read once)."""

    def __init__(self, store: ArtifactStore, plan: SweepPlan) -> None:
        self.store, self.encodes = store, plan.encodes
        self.locations: dict[str, dict[str, str]] = {}

    def __call__(self, setting: str, source: str) -> np.ndarray:
        if setting not in self.locations:
            stage = self.encodes.get(("test", setting)) or self.encodes[("test", ORIGINAL)]
            files = encoded_files(self.store, stage)
            self.locations[setting] = dict(
                zip(encoded_sources(self.store, stage), (f.path for f in files), strict=True)
            )
        return read_pixels(self.locations[setting][source])
