"""Per-image match tables of a detector, as COCO's evaluation matches, in numpy.

A detection evaluation keeps, per test image, its detections (box, score, label) and its
ground truth (box, label, crowd flag), and the match tables derived from them: at each IoU
threshold, whether each detection is a true positive, and whether it is ignored (matched to a
crowd region, or beyond the 100 a class may have per image). Recounting those tables with
weights per image (sweep/analysis/detection_map.py) is the bootstrap of mAP, with no
matching in the loop.

The matching is pycocotools' `COCOeval.evaluateImg` (area range "all", at most 100 detections
per image and class) as torchmetrics' MeanAveragePrecision drives it, step for step:

* boxes reach pycocotools as float32 (x, y, w, h), converted from xyxy in float32 (torchvision's
  `box_convert`), and their IoU is computed in float64 as its C `bbIou` computes it; against a
  crowd region, the IoU is the intersection over the detection's own area;
* per image and class, detections are taken by descending score (a stable sort: ties keep their
  order) and ground truth with the crowd regions last;
* each detection in turn takes, among the ground truth not yet matched (crowd regions always
  remain), the one of highest IoU at or above the threshold (the last of equals), preferring a
  regular object to a crowd region.

The IoU thresholds are torchmetrics' (0.5:0.05:0.95, float32 values).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def float32_linspace(start: float, end: float, steps: int) -> np.ndarray:
    """`torch.linspace(start, end, steps).tolist()` in numpy: float32 values from a fused
    multiply-add, forwards from `start` in the first half and backwards from `end` after."""
    first, last = np.float32(start), np.float32(end)
    step = np.float64((last - first) / np.float32(steps - 1))
    index = np.arange(steps)
    forwards = (np.float64(first) + step * index).astype(np.float32)
    backwards = (np.float64(last) - step * (steps - 1 - index)).astype(np.float32)
    return np.where(index < steps // 2, forwards, backwards).astype(np.float64)


# torchmetrics' defaults: float32 values (0.55 is 0.550000011...), as pycocotools gets them.
IOU_THRESHOLDS = float32_linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = float32_linspace(0.0, 1.0, 101)
MAX_DETECTIONS = 100  # per image and class, COCO's last maxDets


@dataclass(frozen=True)
class ImageDetections:
    """One test image's detections and ground truth, labels 0-based (the dataset's classes).

    boxes are (n, 4) xyxy pixel edges; `crowd` marks regions that are neither found nor missed
    (COCO's crowd, VOC's difficult objects)."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    truth_boxes: np.ndarray
    truth_labels: np.ndarray
    crowd: np.ndarray


def xywh(boxes: np.ndarray) -> np.ndarray:
    """(n, 4) float64 (x, y, w, h) of float32 xyxy boxes, the width and height in float32."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    sizes = boxes[:, 2:] - boxes[:, :2]  # float32, as box_convert
    return np.concatenate([boxes[:, :2], sizes], axis=1).astype(np.float64)


def box_ious(detections: np.ndarray, truth: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """(d, g) IoU of xywh boxes as pycocotools' bbIou: over the detection's area for a crowd."""
    dx, dy, dw, dh = (detections[:, None, i] for i in range(4))
    gx, gy, gw, gh = (truth[None, :, i] for i in range(4))
    width = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    height = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    intersection = np.where((width > 0) & (height > 0), width * height, 0.0)
    detection_area = dw * dh
    union = np.where(crowd[None, :], detection_area, detection_area + gw * gh - intersection)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(intersection > 0, intersection / union, 0.0)


def last_best(ious: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row (threshold): the last column of highest IoU among the allowed ones, and
    whether there is one. `ious` (g,) against `allowed` (t, g)."""
    masked = np.where(allowed, ious[None, :], -1.0)
    reverse = masked[:, ::-1]
    column = masked.shape[1] - 1 - np.argmax(reverse, axis=1)
    return column, masked.max(axis=1, initial=-1.0) >= 0


def match_class(
    ious: np.ndarray, crowd: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy matching of one image's detections of one class, in score order.

    Args:
        ious: (d, g) IoU of the detections (by descending score) and ground truth (crowd last).
        crowd: (g,) crowd flags.
        thresholds: (t,) IoU thresholds.

    Returns:
        (t, d) true positives, (t, d) detections matched to a crowd region (ignored), and
        (t, g) regular objects matched.
    """
    count, objects = ious.shape
    floor = np.minimum(thresholds, 1 - 1e-10)[:, None]  # (t, 1)
    matched_truth = np.zeros((len(thresholds), objects), dtype=bool)
    positive = np.zeros((len(thresholds), count), dtype=bool)
    ignored = np.zeros((len(thresholds), count), dtype=bool)
    rows = np.arange(len(thresholds))
    for index in range(count):
        reach = ious[index][None, :] >= floor  # (t, g)
        regular, found = last_best(ious[index], reach & ~matched_truth & ~crowd[None, :])
        # Which crowd region does not matter: crowd regions stay available.
        _, found_crowd = last_best(ious[index], reach & crowd[None, :])
        positive[:, index] = found
        ignored[:, index] = ~found & found_crowd
        matched_truth[rows[found], regular[found]] = True
    return positive, ignored, matched_truth


def match_image(
    image: ImageDetections, thresholds: np.ndarray = IOU_THRESHOLDS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An image's match tables, in the order of its detections.

    Returns:
        (d, t) true positives; (d, t) ignored (on a crowd region, or past the 100 of a class);
        (g,) regular objects found at the first threshold (IoU 0.5).
    """
    detections, truth = xywh(image.boxes), xywh(image.truth_boxes)
    labels = np.asarray(image.labels).reshape(-1)
    truth_labels = np.asarray(image.truth_labels).reshape(-1)
    crowd = np.asarray(image.crowd, dtype=bool).reshape(-1)
    scores = np.asarray(image.scores, dtype=np.float32).reshape(-1)
    positive = np.zeros((len(labels), len(thresholds)), dtype=bool)
    ignored = np.zeros((len(labels), len(thresholds)), dtype=bool)
    found = np.zeros(len(truth_labels), dtype=bool)
    for label in np.unique(labels):
        ranked = np.flatnonzero(labels == label)
        ranked = ranked[np.argsort(-scores[ranked], kind="mergesort")]
        ignored[ranked[MAX_DETECTIONS:]] = True
        ranked = ranked[:MAX_DETECTIONS]
        objects = np.flatnonzero(truth_labels == label)
        objects = objects[np.argsort(crowd[objects], kind="mergesort")]
        if len(objects) == 0:
            continue
        ious = box_ious(detections[ranked], truth[objects], crowd[objects])
        hit, on_crowd, matched = match_class(ious, crowd[objects], thresholds)
        positive[ranked] = hit.T
        ignored[ranked] = on_crowd.T
        found[objects] = matched[0]
    return positive, ignored, found


def padded(arrays: Sequence[np.ndarray], fill, dtype, tail: tuple = ()) -> np.ndarray:
    """(images, longest, *tail) array of per-image arrays, padded with `fill`."""
    longest = max((len(a) for a in arrays), default=0)
    out = np.full((len(arrays), longest, *tail), fill, dtype=dtype)
    for row, values in enumerate(arrays):
        out[row, : len(values)] = np.asarray(values, dtype=dtype).reshape(len(values), *tail)
    return out


def detection_outcomes(images: Sequence[ImageDetections], num_classes: int) -> dict:
    """outcomes.npz's arrays of a detection evaluation, one row per image.

    Detections and ground truth padded to the image with most (labels -1 and scores NaN
    where padding), the match tables (`matched`, `ignored`: (images, detections, thresholds)),
    the regular objects per class (`objects_per_class`: (images, classes)), and per image the
    regular objects (`objects`) and how many of them a detection found at IoU 0.5 (`found`).
    """
    tables = [match_image(image) for image in images]
    thresholds = len(IOU_THRESHOLDS)
    counts = np.zeros((len(images), num_classes), dtype=np.int32)
    for row, image in enumerate(images):
        regular = np.asarray(image.truth_labels).reshape(-1)[~np.asarray(image.crowd, bool)]
        np.add.at(counts[row], regular.astype(np.int64), 1)
    return {
        "boxes": padded([i.boxes for i in images], np.nan, np.float32, (4,)),
        "scores": padded([i.scores for i in images], np.nan, np.float32),
        "labels": padded([i.labels for i in images], -1, np.int32),
        "truth_boxes": padded([i.truth_boxes for i in images], np.nan, np.float32, (4,)),
        "truth_labels": padded([i.truth_labels for i in images], -1, np.int32),
        "crowd": padded([i.crowd for i in images], False, bool),
        "matched": padded([t[0] for t in tables], False, bool, (thresholds,)),
        "ignored": padded([t[1] for t in tables], True, bool, (thresholds,)),
        "objects_per_class": counts,
        "objects": counts.sum(axis=1),
        "found": np.array([int(t[2].sum()) for t in tables], dtype=np.int32),
    }
