"""The test images that change their answer between original/original and another cell.

A score per test image, read from the outcomes every evaluation stores (the names say the
task kind, so this module needs none):

* ``correct`` (classification): 1 for a right answer, 0 for a wrong one; an image gets
  worse when it flips from right to wrong, better when it flips from wrong to right;
* ``confusion`` (segmentation, (N, C, C)): the image's own mean IoU over the classes with a
  union in it; worse when it falls by more than `IOU_TOLERANCE`;
* ``found`` and ``objects`` (detection): the ground-truth objects matched at IoU 0.5, of the
  image's non-crowd objects; worse when it loses a match.

The counts of worse and better images come with exact (Clopper-Pearson) intervals: the
number of changed images is binomial in the test images, and the exact interval stays valid
where a percentile bootstrap of a count collapses (no image changed gives [0, 0]).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta

# A segmentation image "changes" when its IoU moves by more than this (a pixel or two moves
# every image's IoU a little).
IOU_TOLERANCE = 0.05
# Counts (hits, matched objects) change by whole steps.
COUNT_TOLERANCE = 0.5


@dataclass(frozen=True)
class ImageScores:
    """One score per test image (higher is better), its name, and the change that counts."""

    measure: str
    scores: np.ndarray  # (N,) float, NaN where an image has none (no labelled pixel)
    tolerance: float


def image_scores(outcomes: Mapping[str, np.ndarray]) -> ImageScores | None:
    """The per-image scores of a cell's outcomes; None for outcomes of no known kind."""
    if "correct" in outcomes:
        return ImageScores("correct", np.asarray(outcomes["correct"], float), COUNT_TOLERANCE)
    if "found" in outcomes:
        return ImageScores("found", np.asarray(outcomes["found"], float), COUNT_TOLERANCE)
    if "confusion" in outcomes:
        return ImageScores("iou", image_iou(outcomes["confusion"]), IOU_TOLERANCE)
    return None


def image_iou(confusion: np.ndarray) -> np.ndarray:
    """(N,) each image's mean IoU over the classes with a union in it (labelled or
    predicted there), from (N, C, C) confusion counts; NaN for an image with no labelled
    pixel."""
    confusion = np.asarray(confusion, dtype=np.float64)
    diagonal = np.diagonal(confusion, axis1=1, axis2=2)
    union = confusion.sum(2) + confusion.sum(1) - diagonal
    defined = union > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(defined, diagonal / union, 0.0).sum(1) / defined.sum(1)
    return np.where(confusion.sum((1, 2)) > 0, iou, np.nan)


def answer(outcomes: Mapping[str, np.ndarray], index: int, class_names: list[str]) -> str:
    """What a cell answered on one test image, in words: the predicted class, the image's
    IoU, or its matched objects."""
    if "correct" in outcomes:  # in the order of `image_scores`
        return class_name(int(outcomes["prediction"][index]), class_names)
    if "found" in outcomes:
        return f"found {int(outcomes['found'][index])}/{int(outcomes['objects'][index])}"
    if "confusion" in outcomes:
        return f"IoU {image_iou(outcomes['confusion'][index : index + 1])[0]:.2f}"
    return ""


def truth(outcomes: Mapping[str, np.ndarray], index: int, class_names: list[str]) -> str:
    """The image's ground truth in words where it is one label (classification), else ""."""
    if "correct" in outcomes:
        return class_name(int(outcomes["label"][index]), class_names)
    return ""


def class_name(index: int, class_names: list[str]) -> str:
    return class_names[index] if 0 <= index < len(class_names) else str(index)


def clopper_pearson(successes: int, trials: int, confidence: float) -> tuple[float, float]:
    """The exact two-sided interval of a binomial proportion; NaNs without trials."""
    if trials == 0:
        return (math.nan, math.nan)
    tail = (1 - confidence) / 2
    low = 0.0 if successes == 0 else float(beta.ppf(tail, successes, trials - successes + 1))
    high = (
        1.0 if successes == trials else float(beta.ppf(1 - tail, successes + 1, trials - successes))
    )
    return (low, high)


def cell_changes(reference: ImageScores, cell: ImageScores, confidence: float) -> dict:
    """How many test images got worse and better from the reference cell to this one (the
    same images in the same order), each count with its exact interval (the images times
    the Clopper-Pearson interval of the share), the mean change of the score, and the image
    that fell most (its position, or -1 where none fell).

    Raises:
        ValueError: If the cells do not score the same images the same way.
    """
    if reference.measure != cell.measure or reference.scores.shape != cell.scores.shape:
        raise ValueError(
            f"cannot compare {cell.measure} of {cell.scores.shape[0]} images with "
            f"{reference.measure} of {reference.scores.shape[0]}"
        )
    change = cell.scores - reference.scores
    scored = np.isfinite(change)
    images = int(scored.sum())
    out: dict = {"images": images, "measure": cell.measure}
    for name, changed in (
        ("worse", scored & (change < -cell.tolerance)),
        ("better", scored & (change > cell.tolerance)),
    ):
        count = int(changed.sum())
        low, high = clopper_pearson(count, images, confidence)
        out |= {name: count, f"{name}_ci_low": low * images, f"{name}_ci_high": high * images}
    out["mean_change"] = float(change[scored].mean()) if images else math.nan
    falls = np.where(scored, change, np.inf)
    worst = int(np.argmin(falls)) if images else -1
    fell = images and falls[worst] < -cell.tolerance
    out["largest_fall"] = float(-falls[worst]) if fell else 0.0
    out["most_affected"] = worst if fell else -1
    return out


@dataclass(frozen=True)
class AffectedImage:
    """A test image that a model answers worse on, at the test setting where it falls most
    (the least compressed of equal falls)."""

    index: int
    test_setting: str
    fall: float  # the reference's score minus this cell's
    total_fall: float  # summed over the test settings: what ranks the images


def most_affected(
    reference: ImageScores,
    cells: Mapping[str, ImageScores],
    count: int,
    preferred: str | None = None,
) -> list[AffectedImage]:
    """The `count` test images that fall most from the reference, over every test setting
    of one model (`cells` by test setting, in the order of compression): ranked by their
    fall summed over the settings (an image wrong at every setting before one wrong at the
    strongest only), then by how early they fall, then by position; each image once, at the
    setting where it falls most: `preferred` among equal falls (the model's own train
    setting: both splits stored compressed), else the least compressed."""
    if not cells:
        return []
    settings = list(cells)
    falls = np.stack([reference.scores - cells[s].scores for s in settings])  # (T, N)
    falls = np.where(np.isfinite(falls), falls, 0.0)
    falls = np.where(falls > reference.tolerance, falls, 0.0)
    total = falls.sum(0)
    first = np.where((falls > 0).any(0), (falls > 0).argmax(0), len(settings))
    candidates = np.flatnonzero(total > 0)
    ranked = sorted(candidates, key=lambda i: (-total[i], first[i], i))[:count]
    shown = []
    for i in ranked:
        setting = settings[int(falls[:, i].argmax())]
        if preferred in cells and falls[settings.index(preferred), i] == falls[:, i].max():
            setting = preferred
        shown.append(AffectedImage(int(i), setting, float(falls[:, i].max()), float(total[i])))
    return shown
