"""A baseline at chance: when original/original is no better than a model that learnt nothing,
the grid cannot say what compression costs, and the report says so instead of recommending.

A task kind's `chance_level` hook (sweep/tasks/base.py) gives each metric's chance level from
the reference cell's per-image outcomes; the levels depend on the test truth alone, so any
seed's reference gives the same. The reference "is at chance" when its interval does not lie
above the level: it holds it, or lies below it (a model that learnt to be wrong).

* classification: accuracy at chance is the majority class's share of the test labels (a
  model that always answers the most frequent class scores it; on balanced classes, 1/C).
* segmentation: mIoU and mAcc at chance are the better of predicting the most frequent class
  everywhere and predicting a class uniformly at random, from the summed confusion matrix
  by the rules of `SegmentationMetrics` (mIoU over the classes with a union, mAcc over the
  classes in the truth).
* detection: no level yet (the hook's default, None, skips the check).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChanceLevel:
    """A metric's value for a model that learnt nothing, and how it is reached."""

    level: float
    meaning: str  # e.g. "the most frequent class's share of the test labels"


@dataclass(frozen=True)
class AtChance:
    """original/original's interval of a metric does not lie above its chance level."""

    metric: str
    chance: ChanceLevel
    value: float  # original/original's value on the images every cell holds
    low: float
    high: float
    confidence: float

    def reason(self) -> str:
        """Why the grid cannot answer, in one sentence."""
        return (
            f"original/original's {self.metric} {self.value:.1%} "
            f"[{self.low * 100:.1f}, {self.high * 100:.1f}] ({self.confidence:.0%} interval) "
            f"is not above its chance level {self.chance.level:.1%} ({self.chance.meaning}): "
            f"the model does no better than chance, so the grid cannot say what compression "
            f"costs; train it (train.epochs) or pick a model that learns this task"
        )

    def title(self) -> str:
        """The heatmap's title line."""
        return (
            f"the grid cannot answer: original/original {self.value:.1%} is at chance "
            f"({self.chance.level:.1%})"
        )

    def as_json(self) -> dict:
        return {
            "metric": self.metric,
            "chance_level": self.chance.level,
            "meaning": self.chance.meaning,
            "reference_value": self.value,
            "reference_ci_low": self.low,
            "reference_ci_high": self.high,
            "confidence": self.confidence,
        }


def at_chance(
    metric: str, chance: ChanceLevel, value: float, low: float, high: float, confidence: float
) -> AtChance | None:
    """The verdict when the reference's interval [low, high] does not lie above the chance
    level, else None (an undefined interval says nothing: None)."""
    if not np.isfinite(low) or low > chance.level:
        return None
    return AtChance(metric, chance, value, low, high, confidence)


def classification_chance(outcomes: Mapping[str, np.ndarray]) -> dict[str, ChanceLevel]:
    """{"accuracy": the most frequent label's share of the test images} from a classifier's
    outcomes (its per-image "label")."""
    labels = np.asarray(outcomes["label"])
    if labels.size == 0:
        return {}
    classes, counts = np.unique(labels, return_counts=True)
    top = int(np.argmax(counts))
    return {
        "accuracy": ChanceLevel(
            float(counts[top] / labels.size),
            f"always answering the most frequent test label, {classes[top]}, of "
            f"{len(classes)} classes",
        )
    }


def segmentation_chance(outcomes: Mapping[str, np.ndarray]) -> dict[str, ChanceLevel]:
    """{"miou", "macc"}: the better of the most frequent class everywhere and a uniformly
    random class, from a segmenter's per-image "confusion" (N, C, C), rows the truth."""
    confusion = np.asarray(outcomes["confusion"], dtype=np.float64).sum(0)
    truth = confusion.sum(1)  # labelled pixels per class
    total, classes = truth.sum(), len(truth)
    if total <= 0:
        return {}
    present = int(np.count_nonzero(truth))
    # The most frequent class everywhere: its IoU is its share of the pixels (its union is
    # every pixel), every other class in the truth scores 0; its recall is 1, the others' 0.
    majority_iou = truth.max() / total / present
    # A class drawn uniformly per pixel, in expectation: class k's intersection is t_k / C and
    # its union T / C + t_k - t_k / C; every class is predicted, so every one has a union.
    uniform_iou = float(np.sum(truth / (total + (classes - 1) * truth)) / classes)
    majority, uniform = "the most frequent class everywhere", "a uniformly random class"
    miou_how = majority if majority_iou >= uniform_iou else uniform
    return {
        "miou": ChanceLevel(max(majority_iou, uniform_iou), f"predicting {miou_how}"),
        # Recall 1 on one of the classes in the truth beats 1 / C on each (C >= present).
        "macc": ChanceLevel(1 / present, f"predicting {majority}"),
    }
