"""mAP from match tables equals torchmetrics' MeanAveragePrecision, on the full split and on
a draw of images with repetition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sweep.analysis.detection_chance import detection_chance
from sweep.analysis.detection_map import MapResample, average_precision, rank_detections
from sweep.analysis.detection_matching import (
    IOU_THRESHOLDS,
    RECALL_THRESHOLDS,
    ImageDetections,
    detection_outcomes,
)
from sweep.tasks.detection import mean_average_precision

CLASSES = 4


def generated_images(count: int, seed: int = 0, ties: bool = True) -> list[ImageDetections]:
    """Objects of four classes (some crowd), found with jitter, missed, doubled, mislabelled,
    plus false positives; scores continuous, with `ties` two exactly tied in each image."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        objects = int(rng.integers(0, 6))
        corner = rng.uniform(0, 200, size=(objects, 2))
        size = rng.uniform(8, 120, size=(objects, 2))
        truth = np.concatenate([corner, corner + size], axis=1).astype(np.float32)
        truth_labels = rng.integers(0, CLASSES, size=objects)
        crowd = rng.random(objects) < 0.15
        boxes, labels = [], []
        for box, label in zip(truth, truth_labels, strict=True):
            for _ in range(int(rng.choice([0, 1, 1, 1, 2]))):  # missed, found, found twice
                jitter = rng.normal(0, 0.12, size=4) * np.tile(box[2:] - box[:2], 2)
                boxes.append(box + jitter)
                labels.append(label if rng.random() > 0.1 else rng.integers(0, CLASSES))
        for _ in range(int(rng.integers(0, 5))):  # false positives anywhere
            corner = rng.uniform(0, 250, size=2)
            boxes.append(np.concatenate([corner, corner + rng.uniform(5, 80, size=2)]))
            labels.append(rng.integers(0, CLASSES))
        scores = rng.random(len(boxes)).astype(np.float32)
        if ties and len(scores) > 2:
            scores[1] = scores[0]  # a tie: the stable sorts must keep the order
        images.append(
            ImageDetections(
                boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
                scores=scores,
                labels=np.asarray(labels, dtype=np.int64),
                truth_boxes=truth,
                truth_labels=truth_labels,
                crowd=crowd,
            )
        )
    return images


def torchmetrics_values(images: list[ImageDetections]) -> dict[str, float]:
    metric = mean_average_precision()
    metric.class_metrics = True
    metric.update(
        [
            {
                "boxes": torch.from_numpy(i.boxes),
                "scores": torch.from_numpy(i.scores),
                "labels": torch.from_numpy(i.labels),
            }
            for i in images
        ],
        [
            {
                "boxes": torch.from_numpy(i.truth_boxes),
                "labels": torch.from_numpy(i.truth_labels),
                "iscrowd": torch.from_numpy(i.crowd.astype(np.int64)),
            }
            for i in images
        ],
    )
    values = metric.compute()
    per_class = dict(zip(values["classes"].tolist(), values["map_per_class"].tolist(), strict=True))
    return {"map_50": values["map_50"].item(), "map": values["map"].item(), **{
        f"class/{k}": v for k, v in per_class.items()
    }}  # fmt: skip


def test_the_thresholds_are_torchmetrics_float32_ones():
    assert IOU_THRESHOLDS.tolist() == torch.linspace(0.5, 0.95, 10).tolist()
    assert RECALL_THRESHOLDS.tolist() == torch.linspace(0.0, 1.0, 101).tolist()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_full_split_gives_torchmetrics_map_50_map_and_per_class_ap(seed):
    images = generated_images(80, seed)
    expected = torchmetrics_values(images)
    outcomes = detection_outcomes(images, CLASSES)
    values = MapResample("coco")(outcomes, np.ones((1, len(images))))
    assert values["map_50"][0] == pytest.approx(expected["map_50"], abs=1e-6)
    assert values["map"][0] == pytest.approx(expected["map"], abs=1e-6)
    for k in range(CLASSES):
        assert values["per_class/ap"][0, k] == pytest.approx(expected[f"class/{k}"], abs=1e-6)
    assert 0.05 < expected["map"] < 0.95  # a case with something to get wrong


def test_a_draw_with_repetition_equals_the_split_with_those_images_repeated():
    """Without tied scores: where two detections of an image tie, the recount counts a drawn
    image's copies as one block at that score, and pycocotools interleaves them."""
    images = generated_images(50, seed=3, ties=False)
    rng = np.random.default_rng(4)
    counts = rng.multinomial(len(images), np.full(len(images), 1 / len(images)), size=3)
    ranking = rank_detections(detection_outcomes(images, CLASSES))
    ap = average_precision(ranking, counts)
    for row, draw in enumerate(counts):
        repeated = [image for image, times in zip(images, draw, strict=True) for _ in range(times)]
        expected = torchmetrics_values(repeated)
        got = MapResample("coco").recount(ranking, draw[None, :])
        assert got["map_50"][0] == pytest.approx(expected["map_50"], abs=1e-6)
        assert got["map"][0] == pytest.approx(expected["map"], abs=1e-6)
        assert np.nanmean(ap[row, 0]) == pytest.approx(expected["map_50"], abs=1e-6)


def test_a_class_missing_from_a_draw_is_undefined_not_zero():
    images = generated_images(30, seed=5)
    outcomes = detection_outcomes(images, CLASSES)
    holding = np.flatnonzero(outcomes["objects_per_class"][:, 2] > 0)
    counts = np.ones((1, len(images)))
    counts[0, holding] = 0
    ap = average_precision(rank_detections(outcomes), counts)
    assert np.isnan(ap[0, :, 2]).all()
    assert np.isfinite(ap[0, :, 0]).all()


def test_crowd_regions_are_neither_found_nor_missed():
    truth = np.array([[0, 0, 100, 100], [200, 200, 300, 300]], dtype=np.float32)
    image = ImageDetections(
        boxes=np.array([[210, 210, 290, 290], [0, 0, 100, 100]], dtype=np.float32),
        scores=np.array([0.9, 0.5], dtype=np.float32),
        labels=np.array([0, 0]),
        truth_boxes=truth,
        truth_labels=np.array([0, 0]),
        crowd=np.array([False, True]),
    )
    outcomes = detection_outcomes([image], 1)
    # The first detection lies inside the crowd region (IoU over its own area is 1): ignored.
    assert outcomes["ignored"][0, 0].all() and not outcomes["matched"][0, 0].any()
    assert outcomes["matched"][0, 1].all()
    assert outcomes["objects"].tolist() == [1] and outcomes["found"].tolist() == [1]
    values = MapResample()(outcomes, np.ones((1, 1)))
    assert values["map"][0] == pytest.approx(1.0)


def test_the_prior_detector_finds_objects_that_always_sit_in_one_place_and_few_others():
    """The chance level of detection (sweep/analysis/detection_chance.py)."""
    same_place = [
        ImageDetections(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros(0, np.float32),
            labels=np.zeros(0, np.int64),
            truth_boxes=np.array([[10, 10, 90, 90]], np.float32),
            truth_labels=np.array([0]),
            crowd=np.array([False]),
        )
        for i in range(10)
    ]
    chance = detection_chance(detection_outcomes(same_place, 2))
    # One class, always in the same place: the prior detector finds every object.
    assert chance["map_50"].level == pytest.approx(1.0)
    scattered = detection_chance(detection_outcomes(generated_images(60, seed=6), CLASSES))
    assert 0 <= scattered["map_50"].level < 0.2
    assert scattered["map"].level <= scattered["map_50"].level
