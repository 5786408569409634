"""Per-class values with intervals: the resamples' per-class keys, rows, the classes hurt."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sweep.analysis.bootstrap import BootstrapOptions, relative_replicates, replicate_values
from sweep.analysis.intervals import SweepIntervals
from sweep.analysis.per_class import (
    classes_hurt_first,
    exact_class_intervals,
    full_set_values,
    losing_most,
    per_class_key,
    per_class_metrics,
    per_class_rows,
)
from sweep.tasks.classification import per_class_accuracy, resample_accuracy
from sweep.tasks.segmentation import resample_segmentation

CLASSES = ["cat", "dog", "fox", "owl"]
OPTIONS = BootstrapOptions(replicates=400, seed=0)


def test_per_class_accuracy_is_each_class_share_of_hits_in_each_draw():
    rng = np.random.default_rng(0)
    label = rng.integers(0, 4, 50)
    label[label == 2] = 3  # class 2 has no test image: NaN, whatever the draw
    correct = rng.random(50) < 0.7
    counts = rng.multinomial(50, np.full(50, 1 / 50), size=7)
    drawn = per_class_accuracy(label, correct.astype(float), counts)
    assert drawn.shape == (7, 4)
    for b in range(7):
        for c in (0, 1, 3):
            weights = counts[b] * (label == c)
            expected = (weights * correct).sum() / weights.sum() if weights.sum() else math.nan
            assert drawn[b, c] == pytest.approx(expected, nan_ok=True)
        assert math.isnan(drawn[b, 2])


def test_the_full_set_values_are_the_resample_with_every_image_once():
    label = np.array([0, 0, 1, 1, 1, 2])
    correct = np.array([True, False, True, True, False, True])
    outcomes = {("original", "original", 0): {"label": label, "correct": correct}}
    full = full_set_values(resample_accuracy, outcomes)
    np.testing.assert_allclose(full[("original", "original", 0)]["accuracy"], [0.5, 2 / 3, 1.0])
    assert per_class_metrics(resample_accuracy(outcomes[("original", "original", 0)],
                                               np.ones((1, 6), int))) == ["accuracy"]  # fmt: skip


def test_per_class_iou_of_a_draw_is_diagonal_over_union_of_the_summed_confusions():
    rng = np.random.default_rng(1)
    confusion = rng.integers(0, 20, (5, 3, 3))
    confusion[:, 2, :] = 0
    confusion[:, :, 2] = 0  # class 2 never labelled nor predicted: no IoU
    counts = np.array([[1, 1, 1, 1, 1], [3, 0, 0, 2, 0]])
    drawn = resample_segmentation({"confusion": confusion}, counts)[per_class_key("iou")]
    for b in range(2):
        summed = np.tensordot(counts[b], confusion, axes=1).astype(float)
        union = summed.sum(0) + summed.sum(1) - np.diag(summed)
        for c in (0, 1):
            assert drawn[b, c] == pytest.approx(summed[c, c] / union[c])
        assert math.isnan(drawn[b, 2])


def classifier_grid(hurt: str = "dog", images_per_class: int = 60) -> dict:
    """Outcomes of a grid where compression at test setting "4" and beyond costs class
    `hurt` most of its hits and the other classes one hit each at most."""
    rng = np.random.default_rng(2)
    label = np.repeat(np.arange(len(CLASSES)), images_per_class)
    base = rng.random(label.size) < 0.9
    cells = {}
    for test, loss in (("original", 0.0), ("1", 0.02), ("4", 0.6), ("15", 0.8)):
        correct = base.copy()
        victims = np.flatnonzero((label == CLASSES.index(hurt)) & base)
        correct[victims[: int(loss * victims.size)]] = False
        if test != "original":  # every other class loses one hit
            for c in range(len(CLASSES)):
                if CLASSES[c] != hurt:
                    correct[np.flatnonzero((label == c) & base)[0]] = False
        cells[("original", test, 0)] = {"label": label, "correct": correct,
                                        "prediction": np.where(correct, label, 0)}  # fmt: skip
    return cells


def intervals_of(outcomes: dict) -> SweepIntervals:
    values = replicate_values(outcomes, resample_accuracy, OPTIONS)
    return SweepIntervals(OPTIONS, values, relative_replicates(values, ("original", "original", 0)))


def test_per_class_rows_have_intervals_around_values_and_relative_to_the_same_class():
    outcomes = classifier_grid()
    rows = per_class_rows(full_set_values(resample_accuracy, outcomes), intervals_of(outcomes),
                          CLASSES)  # fmt: skip
    assert len(rows) == 4 * len(CLASSES)
    dog = next(r for r in rows if r["test_setting"] == "4" and r["class_name"] == "dog")
    reference = next(r for r in rows if r["test_setting"] == "original" and r["class_index"] == 1)
    assert dog["relative"] == pytest.approx(dog["value"] / reference["value"])
    assert dog["ci_low"] <= dog["value"] <= dog["ci_high"]
    assert dog["relative_ci_low"] <= dog["relative"] <= dog["relative_ci_high"] < 1
    assert reference["relative"] == 1.0 and reference["relative_ci_low"] == 1.0


def test_the_hurt_class_tops_the_list_of_classes_losing_most():
    outcomes = classifier_grid(hurt="fox")
    rows = per_class_rows(full_set_values(resample_accuracy, outcomes), intervals_of(outcomes),
                          CLASSES)  # fmt: skip
    for test in ("4", "15"):
        worst = losing_most(rows, "original", test, 2)
        assert [r["class_name"] for r in worst][0] == "fox"
        assert worst[0]["relative"] < worst[1]["relative"]
    hurt = classes_hurt_first(rows, ["original", "1", "4", "15"])
    # Setting 1 costs fox 2% of its hits: not surely; setting 4 costs 60%.
    assert hurt.test_setting == "4" and hurt.surely
    assert [r["class_name"] for r in hurt.rows] == ["fox"]


def test_without_a_sure_loss_the_lowest_classes_at_the_strongest_setting_are_named():
    outcomes = {cell: o for cell, o in classifier_grid().items() if cell[1] in ("original", "1")}
    rows = per_class_rows(full_set_values(resample_accuracy, outcomes), intervals_of(outcomes),
                          CLASSES)  # fmt: skip
    hurt = classes_hurt_first(rows, ["original", "1"], count=2)
    assert not hurt.surely and hurt.test_setting == "1" and len(hurt.rows) == 2
    assert classes_hurt_first(rows, ["original"]) is None


def test_the_seeds_mean_is_the_mean_of_the_seeds_values():
    grid = classifier_grid()
    outcomes = {(*cell[:2], seed): o for cell, o in grid.items() for seed in (0, 1)}
    outcomes[("original", "4", 1)] = grid[("original", "original", 0)]
    full = full_set_values(resample_accuracy, outcomes)
    np.testing.assert_allclose(
        full[("original", "4", "mean")]["accuracy"],
        (full[("original", "4", 0)]["accuracy"] + full[("original", "original", 0)]["accuracy"])
        / 2,
    )


def test_a_class_all_right_and_unchanged_gets_exact_intervals_of_nonzero_width():
    """Every image of one class right at both settings: the bootstrap says [100, 100] for
    its accuracy and its relative value; the exact intervals do not."""
    label = np.repeat([0, 1], 30)
    perfect = np.ones(60, bool)
    perfect[30:40] = False  # class 1 has misses; class 0 none
    outcomes = {
        ("original", test, 0): {"label": label, "correct": perfect} for test in ("original", "1")
    }
    full = full_set_values(resample_accuracy, outcomes)
    intervals = intervals_of(outcomes)
    bootstrap = per_class_rows(full, intervals, CLASSES)
    exact = exact_class_intervals(outcomes, {"accuracy": "correct"}, 0.95)
    rows = per_class_rows(full, intervals, CLASSES, exact)
    pick = [r for r in rows if (r["test_setting"], r["class_index"]) == ("1", 0)]
    naive = [r for r in bootstrap if (r["test_setting"], r["class_index"]) == ("1", 0)]
    assert naive[0]["ci_low"] == 1.0 and naive[0]["relative_ci_low"] == 1.0
    assert pick[0]["ci_low"] == pytest.approx(0.025 ** (1 / 30))  # Clopper-Pearson, 30 of 30
    assert pick[0]["relative_ci_low"] < 1.0 <= pick[0]["relative_ci_high"]
    reference = [r for r in rows if r["test_setting"] == "original"]
    assert all(r["relative_ci_low"] == r["relative_ci_high"] == 1.0 for r in reference)
