"""Per-pixel label masks: read as raw label indices, mapped to training classes by a table.

A mask file holds one label index per pixel: a greyscale PNG (Cityscapes `*_labelIds.png`) or a
palette PNG whose palette indices are the labels (VOC `SegmentationClass/*.png`). The indices are
read as they are stored, never through an RGB conversion, which would turn them into colours.
A dataset's labels become training classes through a 256-entry lookup table: the raw id of each
class, in class order; every other id becomes IGNORE_INDEX and counts in no loss or metric.
Masks are only ever resized with nearest-neighbour sampling, so no pixel gets an in-between label.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from upath import UPath

from sweep.data.base import DatasetError, ImageItem
from sweep.data.roots import DISK_FILES, DatasetFiles
from sweep.store.locations import read_location
from sweep.store.objects import is_url

# The "don't care" label of Cityscapes, VOC and mmsegmentation.
IGNORE_INDEX = 255
# Pillow modes whose samples are label indices as stored (P: palette indices).
INDEX_MODES = ("L", "P")


def lookup_table(label_ids: Sequence[int]) -> np.ndarray:
    """A (256,) uint8 table: raw label id -> training class index, IGNORE_INDEX elsewhere.

    Args:
        label_ids: The raw id of training class 0, 1, ...; each in 0..254, no repeats.

    Raises:
        ValueError: On an id out of range, a repeated id, or more than 255 classes.
    """
    ids = [int(i) for i in label_ids]
    if not ids or len(ids) > IGNORE_INDEX:
        raise ValueError(f"label_ids must list 1 to {IGNORE_INDEX} ids, got {len(ids)}")
    if any(not 0 <= i < IGNORE_INDEX for i in ids):
        raise ValueError(f"label ids must be in 0..{IGNORE_INDEX - 1}, got {ids}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"label ids repeat: {ids}")
    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    table[ids] = np.arange(len(ids), dtype=np.uint8)
    return table


def class_index_label_ids(classes: Sequence[str], ignore_index: int = IGNORE_INDEX) -> list[int]:
    """The label ids of masks that store class indices (class i is the value i): 0..N-1.

    Args:
        classes: The class names, in index order.
        ignore_index: The mask value of pixels in no class (0..255); no class may have it.

    Raises:
        DatasetError: Naming task.reader.classes when the N classes would reach the ignore
            index.
    """
    if len(classes) > ignore_index:
        raise DatasetError(
            f"task.reader.classes names {len(classes)} classes, so masks would hold the values "
            f"0..{len(classes) - 1}, which reach the ignore index {ignore_index}: at most "
            f"{ignore_index} classes, or another task.reader.ignore_index",
            option="task.reader.classes",
        )
    return list(range(len(classes)))


def read_label_mask(path: str | Path | UPath) -> np.ndarray:
    """The raw label index of every pixel, as a (H, W) uint8 array, from a file or (for a
    URL) an object-store's object.

    Raises:
        DatasetError: If the file is not a single-channel 8-bit label image (an RGB colour
            rendering such as Cityscapes' `*_color.png`, for example); the message names it.
    """
    try:
        with Image.open(io.BytesIO(read_location(str(path))) if is_url(path) else path) as image:
            if image.mode not in INDEX_MODES:
                raise DatasetError(
                    f"{path}: a label mask must be a single-channel 8-bit image of label "
                    f"indices (PNG mode L, or P with the palette index as the label), not mode "
                    f"{image.mode}; for Cityscapes use *_gtFine_labelIds.png, not *_color.png"
                )
            # np.asarray of a P image gives the palette indices, not the colours.
            return np.asarray(image, dtype=np.uint8).copy()
    except (OSError, SyntaxError, ValueError) as error:
        # Listing reads only the header: a mask truncated after it fails here, in training.
        raise DatasetError(f"{path}: the label mask cannot be decoded ({error})") from None


def read_training_mask(path: str | Path | UPath, table: np.ndarray) -> np.ndarray:
    """The training class of every pixel (IGNORE_INDEX where the label is not a class)."""
    return table[read_label_mask(path)]


def check_label_mask(
    image_path: Path | UPath, mask_path: Path | UPath, files: DatasetFiles = DISK_FILES
) -> None:
    """Checks from the headers that a mask exists, holds label indices, and fits its image.

    An image whose header cannot be read is left to the bad-image policy (the sweep decodes
    every image once and quarantines the unreadable ones); a bad mask is an error here.
    `files` are the dataset root's (`DatasetReader.files`), which know what exists and read
    headers from a disk or an object store.

    Raises:
        DatasetError: Naming both files when the sizes differ, or the mask when it is missing,
            unreadable or not a label image.
    """
    if not files.is_file(mask_path):
        raise DatasetError(f"{mask_path} is missing: it is the label mask of {image_path}")
    try:
        mode, mask_size = files.image_header(mask_path)
    except (OSError, SyntaxError, ValueError) as error:
        raise DatasetError(f"{mask_path}: not a readable label mask ({error})") from None
    if mode not in INDEX_MODES:
        read_label_mask(mask_path)  # raises the explanation
    try:
        _, image_size = files.image_header(image_path)
    except (OSError, SyntaxError, ValueError):
        return
    if mask_size != image_size:
        raise DatasetError(
            f"{mask_path} is {mask_size[0]}x{mask_size[1]} but its image {image_path} is "
            f"{image_size[0]}x{image_size[1]}: a label mask must have its image's size"
        )


def checked_mask_item(
    root: Path | UPath,
    image: Path | UPath,
    mask: Path | UPath,
    target: dict,
    files: DatasetFiles = DISK_FILES,
) -> ImageItem:
    """An image of a segmentation split with its label mask, both named relative to the
    dataset root, after `check_label_mask`."""
    check_label_mask(image, mask, files)
    return ImageItem(
        relpath=image.relative_to(root).as_posix(),
        target=target,
        mask=mask.relative_to(root).as_posix(),
    )
