"""changed_images.csv and the galleries of the test images that change most, per model.

Every cell is compared with original/original of its seed, image by image
(`sweep.analysis.changed_images`): how many test images get worse and better, with exact
intervals. A gallery per trained model (its first seed), changed_images_<train setting>.png,
shows the test images it answers worse on most: the original image with original/original's
answer beside the image at the test setting where it falls most, with this model's answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import matplotlib

# Reports are produced on headless workers; never let pyplot pick an interactive backend.
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sweep.analysis.changed_images import (  # noqa: E402
    AffectedImage,
    ImageScores,
    answer,
    cell_changes,
    truth,
)
from sweep.analysis.intervals import REFERENCE  # noqa: E402
from sweep.figures import save_figure  # noqa: E402
from sweep.tables import write_csv  # noqa: E402

CHANGED_COLUMNS = [
    "train_setting", "test_setting", "seed", "measure", "images",
    "worse", "worse_ci_low", "worse_ci_high", "better", "better_ci_low", "better_ci_high",
    "mean_change", "largest_fall", "most_affected",
]  # fmt: skip
CHANGED_FILE = "changed_images.csv"
# Test images per gallery.
GALLERY_IMAGES = 6
# The answers' colours in a classification gallery.
RIGHT, WRONG = "#1a7f37", "#b2182b"

log = logging.getLogger(__name__)

ImageOf = Callable[[str, str], np.ndarray]  # (test setting, source) -> (H, W[, 3]) uint8


def changed_rows(
    scores: Mapping[tuple, ImageScores], sources: list[str], confidence: float
) -> list[dict]:
    """One row per cell other than original/original: its changes against original/original
    of the same seed, the most affected image named by its source (empty where none fell)."""
    rows = []
    for cell, cell_scores in scores.items():
        reference = scores.get((*REFERENCE, cell[2]))
        if reference is None or cell[:2] == REFERENCE:
            continue
        changes = cell_changes(reference, cell_scores, confidence)
        worst = changes.pop("most_affected")
        rows.append(
            {"train_setting": cell[0], "test_setting": cell[1], "seed": cell[2]}
            | changes
            | {"most_affected": sources[worst] if worst >= 0 else None}
        )
    return rows


def write_changed_csv(rows: list[dict], out_dir: Path) -> Path:
    return write_csv(rows, CHANGED_COLUMNS, Path(out_dir) / CHANGED_FILE)


def gallery_name(train_setting: str) -> str:
    return f"changed_images_{train_setting}.png"


def plot_gallery(
    affected: list[AffectedImage],
    train_setting: str,
    sources: list[str],
    reference: Mapping[str, np.ndarray],
    cells: Mapping[str, Mapping[str, np.ndarray]],
    class_names: list[str],
    image_of: ImageOf,
    path: Path,
) -> Path:
    """The gallery of one model: a row per affected image, the original with
    original/original's answer on the left, the image at its test setting with this model's
    answer on the right.

    Args:
        affected: `most_affected` of the model's cells.
        train_setting: The model's train setting.
        sources: Each test image's source path, in the outcomes' order.
        reference: original/original's outcomes.
        cells: This model's outcomes by test setting.
        class_names: The classes in label order.
        image_of: Pixels of a test image at a test setting.
        path: Where the PNG goes.
    """
    fig, axes = plt.subplots(
        len(affected), 2, figsize=(7.0, 3.1 * len(affected)), squeeze=False, layout="constrained"
    )
    for row, image in enumerate(affected):
        left, right = axes[row]
        source = sources[image.index]
        shown = [
            (left, REFERENCE[1], reference, "original/original"),
            (right, image.test_setting, cells[image.test_setting],
             f"train {train_setting}, test {image.test_setting}"),
        ]  # fmt: skip
        for ax, setting, outcomes, cell_name in shown:
            show_image(ax, image_of, setting, source)
            said = answer(outcomes, image.index, class_names)
            color = "black"
            if "correct" in outcomes:
                color = RIGHT if outcomes["correct"][image.index] else WRONG
            ax.set_title(f"{cell_name}\n{said}", fontsize=9, color=color)
        label = truth(reference, image.index, class_names)
        left.set_ylabel(
            (f"truth: {label}\n" if label else "") + Path(source).name[-32:], fontsize=8
        )
    fig.suptitle(
        f"Test images that the model trained at {train_setting} answers worse on most",
        fontsize=10,
    )
    return save_figure(fig, path)


def show_image(ax, image_of: ImageOf, setting: str, source: str) -> None:
    """A test image's pixels without ticks, or a word where they cannot be read."""
    ax.set_xticks([])
    ax.set_yticks([])
    try:
        pixels = image_of(setting, source)
    except (OSError, ValueError) as error:  # a report draws what it can
        log.warning("gallery: cannot read %s at %s: %s", source, setting, error)
        ax.text(0.5, 0.5, "unreadable", ha="center", va="center", transform=ax.transAxes)
        return
    ax.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None)
