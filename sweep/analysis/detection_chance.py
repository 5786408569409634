"""A detector at chance: the mAP of one that answers every image the same, without looking.

The "prior detector" gives every test image, for every class in the test truth, that class's
median box (the median of each corner over the class's regular objects), scored by the class's
share of the objects. It knows where each class tends to be and how often it occurs, and
nothing of the image: where objects are large and centred, it finds some of them at IoU 0.5,
and its mAP is the level a trained detector must beat; where they are small and scattered, it
is near 0, as an untrained detector's is. Its mAP is computed the way the cells' is (the same
matching and recount, sweep/analysis/detection_map.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sweep.analysis.chance import ChanceLevel
from sweep.analysis.detection_map import MapResample
from sweep.analysis.detection_matching import ImageDetections, detection_outcomes

MEANING = "a detector answering every image with each class's median box, without looking"


def prior_detections(outcomes: Mapping[str, np.ndarray]) -> list[ImageDetections]:
    """Every test image with the prior detector's detections and its own truth."""
    labels = np.asarray(outcomes["truth_labels"])
    boxes = np.asarray(outcomes["truth_boxes"])
    crowd = np.asarray(outcomes["crowd"], dtype=bool)
    regular = (labels >= 0) & ~crowd
    classes = np.unique(labels[regular])
    medians = np.array([np.median(boxes[regular & (labels == k)], axis=0) for k in classes])
    shares = np.array([np.mean(labels[regular] == k) for k in classes], dtype=np.float32)
    images = []
    for row in range(len(labels)):
        present = labels[row] >= 0
        images.append(
            ImageDetections(
                boxes=medians.astype(np.float32).reshape(-1, 4),
                scores=shares,
                labels=classes,
                truth_boxes=boxes[row][present],
                truth_labels=labels[row][present],
                crowd=crowd[row][present],
            )
        )
    return images


def detection_chance(outcomes: Mapping[str, np.ndarray]) -> dict[str, ChanceLevel]:
    """{"map_50", "map"}: the prior detector's, on original/original's test truth."""
    labels = np.asarray(outcomes["truth_labels"])
    if not ((labels >= 0) & ~np.asarray(outcomes["crowd"], dtype=bool)).any():
        return {}
    classes = int(np.asarray(outcomes["objects_per_class"]).shape[1])
    prior = detection_outcomes(prior_detections(outcomes), classes)
    values = MapResample()(prior, np.ones((1, len(labels))))
    return {
        metric: ChanceLevel(float(np.nan_to_num(values[metric][0])), MEANING)
        for metric in ("map_50", "map")
    }
