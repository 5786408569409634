"""PASCAL VOC 2012 semantic segmentation.

    <root>/JPEGImages/<id>.jpg                          camera images (re-encoded)
    <root>/SegmentationClass/<id>.png                   palette masks (never re-encoded)
    <root>/ImageSets/Segmentation/{train,val}.txt       one image id per line

`root` is the VOC2012 folder (a VOCdevkit folder holding VOC2012/ works too). The test split of
the sweep is `val`. The masks' palette indices are the class ids: 0 background, 1..20 the object
classes, 255 the object borders and difficult regions (ignored). A dataset in this layout with
its own classes names them with `task.reader.classes` (a list or a file, in index order).
The root is a local folder or an object store's URL (sweep/data/roots.py).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from upath import UPath

from sweep.data.base import DatasetError, DatasetReader, ImageItem
from sweep.data.classes import class_list
from sweep.data.masks import check_label_mask, class_index_label_ids
from sweep.data.roots import dataset_root, files_of

VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
# The sweep's split names -> VOC image-set files.
SPLIT_FILES = {"train": "train", "test": "val"}


class VocSegmentationReader(DatasetReader):
    """Reads the VOC 2012 segmentation image sets; each item's mask is its palette PNG.

    Each item's target is `{"label_ids": [0, ..., 20]}` (palette index = class), so the
    segmentation task maps VOC masks like any other: every index that is no class is ignored.

    Args:
        root: The VOC2012 folder, or a VOCdevkit folder that holds VOC2012/ (or the URL of
            either on an object store).
        classes: Class names in palette-index order: None for VOC's 21 (background first), a
            list, or a file of one name a line. Masks hold indices, not names, so the classes
            cannot be discovered.
    """

    def __init__(self, root: str | Path, classes: str | list[str] | None = None) -> None:
        root = dataset_root(root)
        files = files_of(root)
        # VOCdevkit/VOC2012 is how the archive unpacks; accept either level.
        if not files.is_dir(root / "JPEGImages") and files.is_dir(root / "VOC2012" / "JPEGImages"):
            root = root / "VOC2012"
        self.root = root
        self.classes = class_list(
            classes,
            default=VOC_CLASSES,
            discover_refusal="VOC segmentation masks hold class indices, not names",
        )

    def prepare(self) -> None:
        super().prepare()
        for path in (
            self.root / "JPEGImages",
            self.root / "SegmentationClass",
            *(self._split_file(split) for split in SPLIT_FILES),
        ):
            if not self.files.exists(path):
                raise DatasetError(
                    f"{path} is missing: task=voc_seg expects the VOC 2012 layout "
                    f"{self.root}/JPEGImages/<id>.jpg, SegmentationClass/<id>.png and "
                    f"ImageSets/Segmentation/{{train,val}}.txt"
                )
        self.class_names()  # a class file fails here, before any work

    def _split_file(self, split: str) -> Path | UPath:
        return self.root / "ImageSets" / "Segmentation" / f"{SPLIT_FILES[split]}.txt"

    def class_names(self) -> list[str]:
        return self._classes

    @cached_property
    def _classes(self) -> list[str]:
        names = self.classes.load()
        class_index_label_ids(names)  # 255 is the border: at most 255 classes
        return names

    def read_split(self, split: str) -> list[ImageItem]:
        listing = self._split_file(split)
        target = {"label_ids": class_index_label_ids(self.class_names())}
        # The lines are checked up to the first refusal, then the masks of the lines before it
        # (many at once from a store), so the first bad line is the one named.
        listed, refusal = [], None
        for number, line in enumerate(listing.read_text().splitlines(), start=1):
            image_id = line.strip()
            if not image_id:
                continue
            try:
                try:
                    image = self.resolve(f"JPEGImages/{image_id}.jpg")
                    mask = self.resolve(f"SegmentationClass/{image_id}.png")
                except DatasetError as error:
                    raise DatasetError(f"{listing}:{number}: {error}") from None
                if not self.files.is_file(image):
                    raise DatasetError(f"{listing}:{number}: {image} does not exist")
            except DatasetError as error:
                refusal = error
                break
            listed.append((number, image_id, image, mask))

        def checked(entry: tuple[int, str, Path | UPath, Path | UPath]) -> ImageItem:
            number, image_id, image, mask = entry
            try:
                check_label_mask(image, mask, self.files)
            except DatasetError as error:
                raise DatasetError(f"{listing}:{number}: {error}") from None
            return ImageItem(
                relpath=f"JPEGImages/{image_id}.jpg",
                target=target,
                mask=f"SegmentationClass/{image_id}.png",
            )

        items = self.files.map(checked, listed)
        if refusal is not None:
            raise refusal
        if not items:
            raise DatasetError(f"{listing} lists no images")
        return items
