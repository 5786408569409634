"""The breakdown of a finished grid, read from the outcomes its evaluations stored."""

from __future__ import annotations

import csv
from types import MappingProxyType, SimpleNamespace

import numpy as np

from sweep.analysis.bootstrap import BootstrapOptions
from sweep.analysis.intervals import measure_intervals
from sweep.analysis.outcomes import write_outcomes
from sweep.report.axis import SettingAxis
from sweep.report.breakdown import write_breakdown
from sweep.store import ArtifactStore
from sweep.tasks.classification import resample_accuracy
from tests.analysis.test_per_class import CLASSES, classifier_grid

AXIS = SettingAxis("distance", {"original": 0.0, "1": 1.0, "4": 4.0, "15": 15.0})
TASK = SimpleNamespace(
    resample=resample_accuracy, proportion_outcomes=MappingProxyType({"accuracy": "correct"})
)


def finished_grid(tmp_path, hurt: str = "dog", drop: tuple | None = None):
    """A store with the outcomes of the original-trained model's cells and of a model
    trained at 4 (tested at original and 4), in shuffled image orders as encodes give."""
    store = ArtifactStore(tmp_path / "store")
    grid = classifier_grid(hurt=hurt)
    grid[("4", "original", 0)] = grid[("original", "1", 0)]
    grid[("4", "4", 0)] = grid[("original", "4", 0)]
    sources = [f"test/{i:03d}.png" for i in range(len(grid[("original", "original", 0)]["label"]))]
    evaluations = {}
    rng = np.random.default_rng(0)
    for number, (cell, outcomes) in enumerate(grid.items()):
        key = f"cell{number}"
        order = rng.permutation(len(sources))
        if cell != drop:
            folder = store.path("evaluate", key)
            folder.mkdir(parents=True)
            write_outcomes(folder, [sources[i] for i in order],
                           {name: values[order] for name, values in outcomes.items()})  # fmt: skip
        evaluations[cell] = SimpleNamespace(key=key)
    plan = SimpleNamespace(
        replicate_evaluations=evaluations,
        test_settings=["original", "1", "4", "15"],
        class_names=CLASSES,
        seeds=[0],
        trains={"original": None, "4": None},
    )
    sweep = SimpleNamespace(store=store, task=TASK, intervals=BootstrapOptions(replicates=300))
    intervals = measure_intervals(store, evaluations, resample_accuracy, sweep.intervals,
                                  TASK.proportion_outcomes)  # fmt: skip
    return sweep, plan, intervals


def read_csv(path) -> list[dict]:
    with path.open() as stream:
        return list(csv.DictReader(stream))


def test_the_breakdown_writes_per_class_changed_images_and_a_gallery_per_model(tmp_path):
    sweep, plan, intervals = finished_grid(tmp_path, hurt="owl")
    read = []

    def image_of(setting, source):
        read.append((setting, source))
        return np.zeros((4, 4, 3), np.uint8)

    out = tmp_path / "report"
    out.mkdir()
    breakdown = write_breakdown(sweep, plan, intervals, out, AXIS, image_of)
    assert set(breakdown.parent) == {"per_class.csv", "per_class_worst.png", "changed_images.csv"}
    per_class = read_csv(breakdown.parent["per_class.csv"])
    assert len(per_class) == 6 * len(CLASSES)
    assert breakdown.hurt.test_setting == "4" and breakdown.hurt.rows[0]["class_name"] == "owl"
    changed = {(r["train_setting"], r["test_setting"]): r
               for r in read_csv(breakdown.parent["changed_images.csv"])}  # fmt: skip
    assert len(changed) == 5 and ("original", "original") not in changed
    # Setting 4 costs owl 60% of its hits (about 32 images) and each other class one.
    assert int(changed[("original", "4")]["worse"]) > int(changed[("original", "1")]["worse"])
    assert changed[("4", "4")]["worse"] == changed[("original", "4")]["worse"]
    assert {s: [p.name for p in paths] for s, paths in breakdown.children.items()} == {
        "original": ["changed_images_original.png"],
        "4": ["changed_images_4.png"],
    }
    # Every affected image is read at the reference's setting and at its own, by its source.
    assert {setting for setting, _ in read} <= {"original", "1", "4", "15"}
    assert all(source.startswith("test/") for _, source in read)


def test_a_cell_without_outcomes_gives_no_breakdown(tmp_path):
    sweep, plan, intervals = finished_grid(tmp_path, drop=("original", "15", 0))
    assert intervals is None
    breakdown = write_breakdown(sweep, plan, intervals, tmp_path, AXIS, lambda *_: None)
    assert breakdown.parent == {} and breakdown.children == {} and breakdown.hurt is None
