"""The test images that change: per-image scores of each kind, counts with exact intervals,
the images that fall most."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from sweep.analysis.changed_images import (
    IOU_TOLERANCE,
    answer,
    cell_changes,
    clopper_pearson,
    image_iou,
    image_scores,
    most_affected,
    truth,
)


def classifier(correct, label=None) -> dict:
    correct = np.asarray(correct, dtype=bool)
    label = np.zeros(correct.size, int) if label is None else np.asarray(label)
    return {"label": label, "prediction": np.where(correct, label, 1), "correct": correct}


def test_flips_from_right_to_wrong_and_back_are_counted_with_exact_intervals():
    reference = image_scores(classifier([1, 1, 1, 1, 0, 0, 1, 0, 1, 1]))
    cell = image_scores(classifier([1, 0, 0, 1, 1, 0, 1, 0, 0, 1]))
    changes = cell_changes(reference, cell, 0.95)
    assert (changes["images"], changes["worse"], changes["better"]) == (10, 3, 1)
    exact = binomtest(3, 10).proportion_ci(0.95, method="exact")
    assert changes["worse_ci_low"] == pytest.approx(10 * exact.low)
    assert changes["worse_ci_high"] == pytest.approx(10 * exact.high)
    assert changes["mean_change"] == pytest.approx(-0.2)
    assert changes["most_affected"] == 1 and changes["largest_fall"] == 1.0


def test_no_change_still_has_an_interval_above_zero():
    """A percentile bootstrap of a count of 0 gives [0, 0]; 0 of 20 allows up to 3.3."""
    reference = image_scores(classifier(np.ones(20)))
    changes = cell_changes(reference, reference, 0.95)
    assert changes["worse"] == 0 and changes["worse_ci_low"] == 0.0
    assert changes["worse_ci_high"] == pytest.approx(20 * (1 - 0.025 ** (1 / 20)))
    assert changes["most_affected"] == -1
    assert clopper_pearson(1, 1, 0.95) == pytest.approx((0.025, 1.0))
    assert all(math.isnan(b) for b in clopper_pearson(0, 0, 0.95))


def test_an_image_iou_is_its_own_mean_over_its_classes():
    confusion = np.zeros((3, 3, 3), int)
    confusion[0] = [[8, 2, 0], [0, 0, 0], [0, 0, 0]]  # class 0: 8/10, class 1 predicted: 0
    confusion[1] = [[5, 0, 0], [0, 5, 0], [0, 0, 0]]
    iou = image_iou(confusion)
    assert iou[0] == pytest.approx(0.4) and iou[1] == 1.0 and math.isnan(iou[2])
    scores = image_scores({"confusion": confusion})
    assert scores.measure == "iou" and scores.tolerance == IOU_TOLERANCE
    assert answer({"confusion": confusion}, 0, []) == "IoU 0.40"


def test_a_segmentation_image_changes_only_beyond_the_tolerance():
    def image(hit: int) -> np.ndarray:  # two classes of 100 pixels, `hit` of class 0 right
        return np.array([[hit, 100 - hit], [0, 100]])

    reference = image_scores({"confusion": np.stack([image(100), image(100), image(100)])})
    cell = image_scores({"confusion": np.stack([image(99), image(50), image(100)])})
    changes = cell_changes(reference, cell, 0.95)
    # Image 0 falls by 0.01 (within the tolerance), image 1 by 0.42.
    assert changes["worse"] == 1 and changes["most_affected"] == 1
    assert changes["largest_fall"] == pytest.approx(1 - (0.5 + 100 / 150) / 2)


def test_detection_images_lose_matched_objects():
    found = {"found": np.array([3, 2, 0]), "objects": np.array([3, 2, 1])}
    fewer = {"found": np.array([1, 2, 0]), "objects": np.array([3, 2, 1])}
    changes = cell_changes(image_scores(found), image_scores(fewer), 0.95)
    assert changes["measure"] == "found" and changes["worse"] == 1 and changes["better"] == 0
    assert changes["largest_fall"] == 2.0
    assert answer(fewer, 0, []) == "found 1/3"


def test_cells_of_different_kinds_are_not_compared():
    with pytest.raises(ValueError, match="cannot compare"):
        cell_changes(
            image_scores(classifier([1, 0])),
            image_scores({"found": np.array([1, 0]), "objects": np.array([1, 1])}),
            0.95,
        )


def test_the_most_affected_images_fall_at_most_settings_first_each_once():
    reference = image_scores(classifier([1, 1, 1, 1, 0]))
    cells = {
        "1": image_scores(classifier([1, 1, 0, 1, 1])),  # image 2 flips from setting 1 on
        "4": image_scores(classifier([0, 1, 0, 1, 1])),  # image 0 from setting 4 on
        "15": image_scores(classifier([0, 0, 0, 1, 1])),  # image 1 at 15 only
    }
    affected = most_affected(reference, cells, 5)
    assert [(a.index, a.test_setting, a.total_fall) for a in affected] == [
        (2, "1", 3.0),
        (0, "4", 2.0),
        (1, "15", 1.0),
    ]  # image 4 got better and image 3 never changed: neither is shown
    assert len(most_affected(reference, cells, 2)) == 2
    # A model trained at 4 shows image 2, lost at 1, 4 and 15 alike, at its own setting.
    assert [a.test_setting for a in most_affected(reference, cells, 5, "4")] == ["4", "4", "15"]
    assert most_affected(reference, {}, 3) == []


def test_answers_name_the_classes():
    outcomes = classifier([1, 0], label=[2, 2])
    names = ["cat", "dog", "fox"]
    assert answer(outcomes, 0, names) == "fox" and answer(outcomes, 1, names) == "dog"
    assert truth(outcomes, 1, names) == "fox" and truth({"confusion": None}, 0, names) == ""
