"""Cityscapes fine annotations, and any dataset laid out like them.

    <root>/leftImg8bit/{train,val}/<city>/<name>_leftImg8bit.png     camera images (re-encoded)
    <root>/gtFine/{train,val}/<city>/<name>_gtFine_labelIds.png      label ids (never re-encoded)

The test split of the sweep is `val` (the official test labels are not public). Label ids become
the 19 training classes through the table of cityscapesScripts' `labels.py` (the `trainId`
column); every other id (void, and the classes evaluated by no benchmark) is ignored (255).
The root is a local folder or an object store's URL (sweep/data/roots.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sweep.data.base import SPLITS, DatasetError, DatasetReader, ImageItem
from sweep.data.masks import checked_mask_item, lookup_table
from sweep.data.roots import dataset_root
from sweep.errors import OptionError

# cityscapesScripts labels.py: the labelId of trainId 0..18, in trainId order.
CITYSCAPES_LABEL_IDS: tuple[int, ...] = (
    7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33,
)  # fmt: skip
CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)  # fmt: skip
# The sweep's split names -> Cityscapes folders.
SPLIT_FOLDERS = {"train": "train", "test": "val"}
IMAGE_SUFFIX = "_leftImg8bit.png"
MASK_SUFFIX = "_gtFine_labelIds.png"


class CityscapesReader(DatasetReader):
    """Pairs every camera image with its label-id mask; the label table is configurable.

    Each item's target is `{"label_ids": [...]}`: the raw mask id of each training class, in
    class order. The segmentation task maps masks with it, so the reader that knows the dataset
    also decides how its masks are read, and the table is part of the dataset fingerprint.

    Args:
        root: Folder (or object-store URL) holding leftImg8bit/ and gtFine/.
        classes: Training class names (default: the 19 Cityscapes classes).
        label_ids: Raw mask id of each class in `classes` (default: the official trainId table);
            every other id is ignored.
    """

    def __init__(
        self,
        root: str | Path,
        classes: Sequence[str] = CITYSCAPES_CLASSES,
        label_ids: Sequence[int] = CITYSCAPES_LABEL_IDS,
    ) -> None:
        self.root = dataset_root(root)
        self.classes = list(classes)
        self.label_ids = [int(i) for i in label_ids]
        if len(self.classes) != len(self.label_ids):
            raise OptionError(
                f"{len(self.classes)} classes but {len(self.label_ids)} label ids: "
                f"give one label id per class",
                option="task.reader.label_ids",
            )
        try:
            lookup_table(self.label_ids)
        except ValueError as error:
            raise OptionError(str(error), option="task.reader.label_ids") from None

    def prepare(self) -> None:
        super().prepare()
        for folder in ("leftImg8bit", "gtFine"):
            for split in SPLITS:
                path = self.root / folder / SPLIT_FOLDERS[split]
                if not self.files.is_dir(path):
                    raise DatasetError(
                        f"{path} is missing: the Cityscapes layout is "
                        f"{self.root}/leftImg8bit/{{train,val}}/<city>/*{IMAGE_SUFFIX} with "
                        f"{self.root}/gtFine/{{train,val}}/<city>/*{MASK_SUFFIX}"
                    )

    def class_names(self) -> list[str]:
        return self.classes

    def read_split(self, split: str) -> list[ImageItem]:
        folder = SPLIT_FOLDERS[split]
        images = self.root / "leftImg8bit" / folder
        target = {"label_ids": self.label_ids}
        pairs = []
        for image in sorted(self.files.glob(images, f"*/*{IMAGE_SUFFIX}")):
            city, name = image.parent.name, image.name[: -len(IMAGE_SUFFIX)]
            pairs.append((image, self.root / "gtFine" / folder / city / f"{name}{MASK_SUFFIX}"))
        # Headers are read many at once from an object store.
        items = self.files.map(
            lambda pair: checked_mask_item(self.root, *pair, target, self.files), pairs
        )
        if not items:
            raise DatasetError(f"{images} holds no <city>/*{IMAGE_SUFFIX} images")
        return items
