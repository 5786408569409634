"""Cost of the detection bootstrap (B = 1000) per cell at PASCAL VOC's size, against the metric.

A generated cell the size of VOC 2012's validation split (5,823 images, about 2.4 objects and
10 detections each, 20 classes; ~13% of objects found twice, ~25% missed, the rest false
positives of any class), timed in CPU seconds, fastest of `rounds`, one thread:

* baseline: torchmetrics' MeanAveragePrecision (pycocotools) of the cell, once, as each
  evaluation computes it;
* the match tables, once per cell, as the evaluation stores them (`detection_outcomes`);
* the bootstrap: ranking the cell once and recounting B = 1000 replicates.

Reported: seconds per cell of each, the bootstrap of a 12 x 12 grid (144 cells), and the
speed-up over recomputing the metric per replicate (B x the baseline).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from sweep.analysis.bootstrap import BootstrapOptions, replicate_values
from sweep.analysis.detection_map import MapResample
from sweep.analysis.detection_matching import ImageDetections, detection_outcomes
from sweep.tasks.detection import compute_metrics, mean_average_precision

IMAGES = 5_823
CLASSES = 20
OBJECTS_PER_IMAGE = 2.4
DETECTIONS_PER_IMAGE = 10
REPLICATES = 1000
GRID_CELLS = 144
ROUNDS = 2


def voc_sized_cell(seed: int = 0) -> list[ImageDetections]:
    """One cell's detections and truth, shaped like a trained detector's on VOC."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(IMAGES):
        objects = max(1, int(rng.poisson(OBJECTS_PER_IMAGE)))
        corner = rng.uniform(0, 300, size=(objects, 2))
        truth = np.concatenate([corner, corner + rng.uniform(20, 200, (objects, 2))], 1)
        labels = rng.integers(0, CLASSES, objects)
        boxes, found, scores = [], [], []
        for box, label in zip(truth, labels, strict=True):
            for _ in range(int(rng.choice([0, 1, 1, 1, 2], p=[0.25, 0.25, 0.25, 0.12, 0.13]))):
                boxes.append(box + rng.normal(0, 0.08, 4) * np.tile(box[2:] - box[:2], 2))
                found.append(label)
                scores.append(rng.beta(5, 2))
        while len(boxes) < DETECTIONS_PER_IMAGE:
            corner = rng.uniform(0, 400, size=2)
            boxes.append(np.concatenate([corner, corner + rng.uniform(10, 150, 2)]))
            found.append(rng.integers(0, CLASSES))
            scores.append(rng.beta(2, 5))
        images.append(
            ImageDetections(
                boxes=np.asarray(boxes, np.float32),
                scores=np.asarray(scores, np.float32),
                labels=np.asarray(found, np.int64),
                truth_boxes=truth.astype(np.float32),
                truth_labels=labels,
                crowd=rng.random(objects) < 0.05,  # VOC's difficult objects
            )
        )
    return images


def fastest(work, rounds: int) -> tuple[float, object]:
    """CPU seconds of the fastest of `rounds` runs of `work()`, and its last result."""
    best, result = float("inf"), None
    for _ in range(rounds):
        started = time.process_time()
        result = work()
        best = min(best, time.process_time() - started)
    return best, result


def torchmetrics_map(images: list[ImageDetections]) -> dict:
    metric = mean_average_precision()
    metric.update(
        [
            {"boxes": torch.from_numpy(i.boxes), "scores": torch.from_numpy(i.scores),
             "labels": torch.from_numpy(i.labels)}
            for i in images
        ],
        [
            {"boxes": torch.from_numpy(i.truth_boxes), "labels": torch.from_numpy(i.truth_labels),
             "iscrowd": torch.from_numpy(i.crowd.astype(np.int64))}
            for i in images
        ],
    )  # fmt: skip
    return compute_metrics(metric)


def run(rounds: int = ROUNDS, images: int | None = None) -> dict:
    torch.set_num_threads(1)
    cell = voc_sized_cell()[:images]
    metric_s, reference = fastest(lambda: torchmetrics_map(cell), rounds)
    tables_s, outcomes = fastest(lambda: detection_outcomes(cell, CLASSES), rounds)
    options = BootstrapOptions(replicates=REPLICATES)
    resample = MapResample("voc")
    bootstrap_s, values = fastest(
        lambda: replicate_values({("a", "a"): outcomes}, resample, options), rounds
    )
    full = resample(outcomes, np.ones((1, len(cell))))
    replicates = values[("a", "a")]["map_50"]
    return {
        "images": len(cell),
        "detections": int(np.isfinite(outcomes["scores"]).sum()),
        "replicates": REPLICATES,
        "metric_seconds": metric_s,
        "match_tables_seconds": tables_s,
        "bootstrap_seconds_per_cell": bootstrap_s,
        "grid_cells": GRID_CELLS,
        "grid_bootstrap_minutes": GRID_CELLS * bootstrap_s / 60,
        "speedup_over_recomputing": REPLICATES * metric_s / bootstrap_s,
        "map_50": reference["map_50"],
        "map_50_recounted": float(full["map_50"][0]),
        "map_50_interval": [float(np.percentile(replicates, q)) for q in (2.5, 97.5)],
    }


def report(result: dict) -> str:
    low, high = result["map_50_interval"]
    baseline = result["metric_seconds"]
    tables, bootstrap = result["match_tables_seconds"], result["bootstrap_seconds_per_cell"]
    return (
        f"detection bootstrap at VOC size ({result['images']:,} images, "
        f"{result['detections']:,} detections, B = {result['replicates']}), CPU s per cell: "
        f"torchmetrics mAP once {baseline:.2f} (baseline, 1.00), match tables {tables:.2f} "
        f"({tables / baseline:.2f}), bootstrap {bootstrap:.2f} ({bootstrap / baseline:.2f}); "
        f"a 12 x 12 grid's bootstrap {result['grid_bootstrap_minutes']:.1f} min; "
        f"{result['speedup_over_recomputing']:.0f}x faster than recomputing mAP per replicate; "
        f"mAP@0.5 {result['map_50']:.4f} (recounted {result['map_50_recounted']:.4f}) "
        f"[{low:.4f}, {high:.4f}]"
    )
