"""VOC and COCO mAP recounted on bootstrap draws of test images, from a cell's match tables.

A cell's detections are matched once, when it is evaluated (sweep/analysis/detection_matching.py).
A bootstrap replicate draws test images with repetition; its mAP is the one pycocotools'
`COCOeval.accumulate` would give on the drawn images, which only needs each image's weight
(how often it is drawn) in the running counts of true and false positives:

* per IoU threshold and class, the detections that count (not ignored) are ranked as
  accumulate ranks them: by descending score, ties in image order, then in the image's order;
* precision only peaks at a true positive, so the curve is read at the true positives alone:
  the weighted true positives up to each (a gather of the weights), and the weighted false
  positives ranked before it (a sparse product: each false positive belongs to the span before
  the next true positive; those after the last one never count);
* the precision envelope (the running maximum from the right) is read at the 101 recall
  thresholds (COCO's interpolation), and averaged into AP, then over the classes with objects
  in the replicate into mAP.

A draw of each image once gives the full split's values, equal to torchmetrics'
MeanAveragePrecision; a draw with repetition gives its values on the split with those images
repeated (tests/analysis/test_detection_map.py). One exception, of no statistical weight: where
two detections of one image tie in score, the recount counts a twice-drawn image's copies as
one block at that score, where pycocotools would interleave them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from sweep.analysis.detection_matching import RECALL_THRESHOLDS

EPSILON = np.spacing(1)  # pycocotools' precision: tp / (tp + fp + eps)
# Replicates recounted together: (4 x true positives) arrays stay in the processor's cache;
# at VOC's size 4 to 8 is fastest, 100 is twice as slow (measured per replicate).
BLOCK = 4


@dataclass(frozen=True)
class Ranking:
    """One cell's detections ranked per (IoU threshold, class) group, group g = t * C + k.

    Attributes:
        starts: (groups + 1,) where each group's true positives begin, as rows.
        true_images: (J,) the image of each true positive, in rank order within its group.
        false_before: (J, images) sparse: the false positives of each image ranked after the
            group's previous true positive and before this one.
        objects: (images, classes) regular objects per image and class (recall's denominator).
    """

    thresholds: int
    starts: np.ndarray
    true_images: np.ndarray
    false_before: sparse.csr_matrix
    objects: np.ndarray

    @property
    def classes(self) -> int:
        return self.objects.shape[1]


def rank_detections(outcomes: Mapping[str, np.ndarray]) -> Ranking:
    """The cell's Ranking, from the arrays of `detection_outcomes`."""
    labels = np.asarray(outcomes["labels"])
    images_count = labels.shape[0]
    objects = np.asarray(outcomes["objects_per_class"], dtype=np.float64)
    classes = objects.shape[1]
    image, detection = np.nonzero(labels >= 0)  # image-major, in each image's order
    score = np.asarray(outcomes["scores"])[image, detection]
    order = np.lexsort((detection, image, -score))  # the last key is the first
    image, detection = image[order], detection[order]
    label = labels[image, detection]
    by_class = np.argsort(label, kind="stable")  # keeps the rank within each class
    matched = np.asarray(outcomes["matched"])[image, detection][by_class]  # (D, T)
    ignored = np.asarray(outcomes["ignored"])[image, detection][by_class]
    image, label = image[by_class], label[by_class]
    bounds = np.searchsorted(label, np.arange(classes + 1))
    thresholds = matched.shape[1]
    starts, true_images, rows, columns = [0], [], [], []
    for t in range(thresholds):
        for k in range(classes):
            span = slice(bounds[k], bounds[k + 1])
            counted = ~ignored[span, t]
            hit = matched[span, t][counted]
            where = image[span][counted]
            before = np.cumsum(hit) - hit  # true positives ranked before each detection
            true_images.append(where[hit])
            late = ~hit & (before < hit.sum())  # a false positive before the last true one
            rows.append(starts[-1] + before[late])
            columns.append(where[late])
            starts.append(starts[-1] + int(hit.sum()))
    total = starts[-1]
    rows_all = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    false_before = sparse.csr_matrix(
        (np.ones(len(rows_all)), (rows_all, np.concatenate(columns) if columns else rows_all)),
        shape=(total, images_count),
    )
    return Ranking(
        thresholds=thresholds,
        starts=np.asarray(starts),
        true_images=np.concatenate(true_images).astype(np.int64),
        false_before=false_before,
        objects=objects,
    )


def thresholds_reached(recall: np.ndarray) -> np.ndarray:
    """How many of the 101 recall thresholds each recall value reaches (is at or above),
    exactly as comparing it with each float32 threshold would say: the threshold nearest
    below 100 x recall, and the two above it, are compared."""
    guess = np.clip(np.floor(recall * 100), 0, 100).astype(np.int64)
    padded = np.append(RECALL_THRESHOLDS, np.inf)  # threshold 101: never reached
    return guess + (padded[guess] <= recall) + (padded[guess + 1] <= recall)


def average_precision(ranking: Ranking, counts: np.ndarray) -> np.ndarray:
    """(B, thresholds, classes) AP of the replicates drawn by `counts` (B, images); NaN for a
    class with no regular object among the drawn images.

    Every group at once, columns being the groups' true positives (B, J): running sums per
    group (a running sum of all, less each group's start), the precision envelope per group
    (a running maximum from the right, each group shifted above the ones after it), and for
    each recall threshold the first column that reaches it (a count of those that do not)."""
    weights = np.asarray(counts, dtype=np.float64)
    replicates = weights.shape[0]
    groups = len(ranking.starts) - 1
    lengths = np.diff(ranking.starts)
    group_of_column = np.repeat(np.arange(groups), lengths)
    objects = weights @ ranking.objects  # (B, C)
    out = np.zeros((replicates, groups))
    if len(group_of_column):
        true = running_sums(weights[:, ranking.true_images], ranking.starts)  # (B, J)
        false_weights = np.ascontiguousarray((ranking.false_before @ weights.T).T)
        false = running_sums(false_weights, ranking.starts)
        precision = true / (true + false + EPSILON)
        shift = 2.0 * (groups - 1 - group_of_column)
        envelope = np.maximum.accumulate((precision + shift)[:, ::-1], axis=1)[:, ::-1] - shift
        denominator = objects[:, group_of_column % ranking.classes]  # (B, J)
        with np.errstate(divide="ignore", invalid="ignore"):
            recall = np.where(denominator > 0, true / denominator, 0.0)
        reached = thresholds_reached(recall)  # (B, J) in 0..101
        cells = (np.arange(replicates)[:, None] * groups + group_of_column) * 102 + reached
        histogram = np.bincount(cells.ravel(), minlength=replicates * groups * 102)
        # Columns of each (replicate, group) short of threshold r: the first reaching it.
        first = np.cumsum(histogram.reshape(replicates, groups, 102), axis=2)[..., :101]
        inside = first < lengths[None, :, None]
        columns = np.minimum(ranking.starts[None, :-1, None] + first, len(group_of_column) - 1)
        read = envelope[np.arange(replicates)[:, None, None], columns]
        out = np.where(inside, read, 0.0).mean(axis=2)  # (B, G)
    ap = out.reshape(replicates, ranking.thresholds, ranking.classes)
    return np.where((objects > 0)[:, None, :], ap, np.nan)


def running_sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Running sums along the columns of `values` (B, J), restarting at each group's start."""
    total = np.cumsum(values, axis=1)
    before = np.hstack([np.zeros((values.shape[0], 1)), total])[:, starts[:-1]]  # (B, G)
    return total - np.repeat(before, np.diff(starts), axis=1)


def nan_mean(values: np.ndarray, axis: int) -> np.ndarray:
    """The mean over `axis` of the defined values; NaN (no warning) where none is."""
    defined = np.isfinite(values)
    total = np.where(defined, values, 0.0).sum(axis=axis)
    count = defined.sum(axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def map_metrics(ap: np.ndarray, headline: str) -> dict[str, np.ndarray]:
    """map_50 and map (COCO's mAP@[.5:.95]) of (B, T, C) APs, and per class the headline's AP
    ("per_class/ap": AP@0.5 for VOC, AP@[.5:.95] for COCO)."""
    at_50 = ap[:, 0, :]
    over_thresholds = ap.mean(axis=1)  # a class is defined at every threshold or none
    return {
        "map_50": nan_mean(at_50, axis=1),
        "map": nan_mean(over_thresholds, axis=1),
        "per_class/ap": at_50 if headline == "voc" else over_thresholds,
    }


@dataclass(frozen=True)
class MapResample:
    """The detection kind's resample (sweep/analysis/bootstrap.py's Resampler): rank once per
    cell, then recount per chunk of replicates.

    Args:
        headline: "voc" or "coco": which AP the per-class values are.
    """

    headline: str = "voc"

    def prepare(self, outcomes: Mapping[str, np.ndarray]) -> Ranking:
        return rank_detections(outcomes)

    def recount(self, ranking: Ranking, counts: np.ndarray) -> dict[str, np.ndarray]:
        # A few replicates at a time (BLOCK): each pass over the arrays then runs in cache.
        blocks = [
            average_precision(ranking, counts[start : start + BLOCK])
            for start in range(0, len(counts), BLOCK)
        ]
        return map_metrics(np.concatenate(blocks), self.headline)

    def __call__(self, outcomes: Mapping[str, np.ndarray], counts: np.ndarray) -> dict:
        """Both steps at once (one cell, one chunk)."""
        return self.recount(self.prepare(outcomes), counts)
