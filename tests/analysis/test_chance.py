"""Chance levels: what a model that learnt nothing scores, by the task kinds' own rules."""

from __future__ import annotations

import numpy as np
import pytest

from sweep.analysis.chance import (
    ChanceLevel,
    at_chance,
    classification_chance,
    segmentation_chance,
)
from sweep.tasks.segmentation import resample_segmentation


def test_a_classifier_at_chance_scores_the_majority_class_share():
    chance = classification_chance({"label": np.array([2, 2, 2, 0, 1, 2, 0, 1])})
    assert chance["accuracy"].level == 0.5
    assert "label, 2, of 3 classes" in chance["accuracy"].meaning


def per_image_confusions(truth_pixels: list[np.ndarray], predict) -> np.ndarray:
    """(N, C, C) confusions of images whose truth pixels are given, rows the truth."""
    out = []
    for truth in truth_pixels:
        classes = truth.shape[0]
        out.append(np.stack([predict(count, classes) for count in truth]))
    return np.array(out)


def metrics_of(confusion: np.ndarray) -> dict[str, float]:
    """mIoU and mAcc of per-image confusions on the full set, as the segmentation kind
    computes them."""
    metrics = resample_segmentation({"confusion": confusion}, np.ones((1, len(confusion))))
    return {name: float(metrics[name][0]) for name in ("miou", "macc")}


def test_a_segmenter_at_chance_is_the_better_of_majority_and_uniform_guessing():
    # Two images, 4 classes, one absent from the truth; background dominates.
    truth = [np.array([900.0, 60.0, 40.0, 0.0]), np.array([800.0, 150.0, 50.0, 0.0])]
    majority = per_image_confusions(truth, lambda count, c: np.eye(c)[0] * count)
    uniform = per_image_confusions(truth, lambda count, c: np.full(c, count / c))
    chance = segmentation_chance({"confusion": majority})
    expected_miou = max(metrics_of(majority)["miou"], metrics_of(uniform)["miou"])
    assert chance["miou"].level == pytest.approx(expected_miou)
    assert chance["miou"].meaning == "predicting the most frequent class everywhere"
    assert chance["macc"].level == pytest.approx(metrics_of(majority)["macc"])  # 1/3
    # Balanced classes: guessing uniformly beats always answering one of them.
    balanced = [np.array([100.0, 100.0, 100.0])]
    uniform = per_image_confusions(balanced, lambda count, c: np.full(c, count / c))
    chance = segmentation_chance({"confusion": uniform})
    assert chance["miou"].level == pytest.approx(metrics_of(uniform)["miou"])  # 1/(2C-1)
    assert chance["miou"].level == pytest.approx(1 / 5)
    assert chance["miou"].meaning == "predicting a uniformly random class"


def test_the_reference_is_at_chance_unless_its_interval_lies_above_it():
    level = ChanceLevel(1 / 6, "always answering one class")
    verdict = at_chance("accuracy", level, 0.18, 0.13, 0.23, 0.95)
    assert verdict is not None and "16.7%" in verdict.reason()
    assert "[13.0, 23.0]" in verdict.reason()
    assert at_chance("accuracy", level, 0.08, 0.05, 0.12, 0.95) is not None  # below chance
    assert at_chance("accuracy", level, 0.5, 0.45, 0.55, 0.95) is None
    assert at_chance("accuracy", level, 0.5, float("nan"), float("nan"), 0.95) is None
