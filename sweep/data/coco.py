"""COCO detection JSON, in the layout of the COCO 2017 archives.

    <root>/annotations/instances_train2017.json     images, annotations, categories
    <root>/annotations/instances_val2017.json
    <root>/train2017/<file_name>                     images (re-encoded)
    <root>/val2017/<file_name>

The split names (`train2017`, `val2017`) are options, for datasets exported under others: split
`name` is read from `annotations/instances_<name>.json` and the folder `<name>/`.

* Categories come from the training file. Their ids (COCO's 80 run from 1 to 90 with gaps)
  become contiguous labels in id order; `class_names()` lists the names in label order and
  `category_labels()` maps id -> label. The test file's categories must agree by id and name.
* Boxes are COCO's [x, y, width, height] in pixels from the image's top-left corner, which is
  the targets' convention of pixel edges: the target box is [x, y, x + width, y + height].
  A box may leave its image by up to BOX_TOLERANCE pixels (rounding in exports) and is clipped
  to it; one that leaves it further, or has a negative size, is an error naming the file and
  the annotation id. A box of zero width or height marks no region: it is left out and
  counted (`dropped_boxes()`; COCO 2017's training file has two, ids 918 and 2206849).
* `iscrowd` regions are carried like VOC's difficult objects (`difficult: true`): training
  leaves them out, and evaluation neither finds nor misses them, as COCO's own protocol does.
* Images without annotations are kept (an empty target): detections on them are false
  positives, as in COCO's evaluation.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from functools import cached_property
from pathlib import Path

from upath import UPath

from sweep.data.base import DatasetError, DatasetReader, ImageItem
from sweep.data.class_coverage import check_test_classes, class_counts, log_skipped
from sweep.data.classes import UNKNOWN_OPTION, unknown_class_policy
from sweep.data.coco_document import (
    annotation_ids,
    check_same_categories,
    load_annotation_file,
    parse_categories,
    parse_images,
)
from sweep.data.roots import dataset_root
from sweep.errors import OptionError

log = logging.getLogger(__name__)

# How far (pixels) a box may leave its image and be clipped rather than refused.
BOX_TOLERANCE = 1.0
# How many annotation ids a message lists before it says "and N more".
LISTED_IDS = 10


class CocoReader(DatasetReader):
    """Reads COCO instance annotations and pairs each image with its boxes.

    Args:
        root: The folder (or object-store URL) holding annotations/ and the image folders
            (the COCO 2017 archives unpacked into one folder).
        train_split: Name of the train split: annotations/instances_<name>.json and <name>/.
        test_split: Name of the test split.
        unknown_classes: "error": an annotation whose category is not among the training
            file's categories is an error naming the file and the annotation id; "skip": it is
            left out and counted (`skipped_objects`).
    """

    def __init__(
        self,
        root: str | Path,
        train_split: str = "train2017",
        test_split: str = "val2017",
        unknown_classes: str = "error",
    ) -> None:
        self.root = dataset_root(root)
        self.splits = {
            "train": split_name(train_split, "task.train_split"),
            "test": split_name(test_split, "task.test_split"),
        }
        self.unknown_classes = unknown_class_policy(unknown_classes)
        self._skipped: dict[str, Counter[str]] = {}
        self._dropped: dict[str, list[int]] = {}

    def annotation_file(self, split: str) -> Path | UPath:
        return self.root / "annotations" / f"instances_{self.splits[split]}.json"

    def image_folder(self, split: str) -> Path | UPath:
        return self.root / self.splits[split]

    def prepare(self) -> None:
        super().prepare()
        for split in ("train", "test"):
            for path in (self.annotation_file(split), self.image_folder(split)):
                if not self.files.exists(path):
                    raise DatasetError(
                        f"{path} is missing: task=coco expects the COCO layout "
                        f"annotations/instances_<split>.json and <split>/<file_name> under "
                        f"task.root, with the splits task.train_split={self.splits['train']} "
                        f"and task.test_split={self.splits['test']} (set them for a dataset "
                        f"exported under other names)"
                    )
        self.class_names()

    # ---- categories -----------------------------------------------------------------------

    @cached_property
    def _categories(self) -> dict[int, str]:
        """The training file's categories, id -> name, in id order; logged once."""
        path = self.annotation_file("train")
        categories = parse_categories(self._document("train"), path)
        if not categories:
            raise DatasetError(f"{path} lists no categories: the classes come from them")
        log.info(
            "%s: %d categories, labels in id order: %s",
            path,
            len(categories),
            ", ".join(
                f"{cid}->{label} {name}" for label, (cid, name) in enumerate(categories.items())
            ),
        )
        return categories

    def class_names(self) -> list[str]:
        return list(self._categories.values())

    def category_labels(self) -> dict[int, int]:
        """COCO category id -> label (the index into `class_names()`)."""
        return {category: label for label, category in enumerate(self._categories)}

    # ---- what was left out ----------------------------------------------------------------

    def skipped_objects(self) -> dict[str, dict[str, int]]:
        """Annotations left out by unknown_classes=skip: {split: {category: count}}, for the
        splits read so far; a category missing from the test file's list is named 'id <n>'."""
        return {split: dict(counts) for split, counts in self._skipped.items()}

    def dropped_boxes(self) -> dict[str, list[int]]:
        """Ids of the annotations left out for a box of zero width or height, per split."""
        return {split: list(ids) for split, ids in self._dropped.items()}

    # ---- listing ----------------------------------------------------------------------------

    def _document(self, split: str) -> dict:
        """The split's annotation file as loaded JSON.

        Kept only until the split is listed: the class names and the items of a split share
        one load (COCO's training file is about 450 MB), and none is held afterwards.
        """
        documents = self.__dict__.setdefault("_documents", {})
        if split not in documents:
            documents[split] = load_annotation_file(self.annotation_file(split))
        return documents[split]

    def read_split(self, split: str) -> list[ImageItem]:
        path = self.annotation_file(split)
        document = self._document(split)
        images = parse_images(document, path)
        targets = self._targets(split, document, images)
        items = []
        for image_id, (file_name, _, _) in images.items():
            relpath = f"{self.splits[split]}/{file_name}"
            try:
                image = self.resolve(relpath)
            except DatasetError as error:
                raise DatasetError(f"{path}: image id {image_id}: {error}") from None
            if not self.files.is_file(image):
                raise DatasetError(f"{path}: image id {image_id}: {image} does not exist")
            items.append(ImageItem(relpath, targets[image_id]))
        if not items:
            raise DatasetError(f"{path} lists no images")
        self.__dict__["_documents"].pop(split, None)
        if split == "test":
            names = self.class_names()
            train = class_counts(self.items("train"), names)
            check_test_classes(str(path), train, class_counts(items, names))
        return items

    def _targets(
        self, split: str, document: dict, images: dict[int, tuple[str, int, int]]
    ) -> dict[int, dict]:
        """image id -> target of a split's annotations: boxes checked, categories mapped,
        crowds flagged; what is left out is counted and logged."""
        path = self.annotation_file(split)
        labels = self.category_labels()
        own = parse_categories(document, path)
        if split != "train":
            check_same_categories(own, self._categories, path, self.annotation_file("train"))
        targets = {image_id: empty_target() for image_id in images}
        skipped: Counter[str] = Counter()
        dropped: list[int] = []
        seen: set[int] = set()
        for annotation in document.get("annotations") or []:
            aid, image_id, category = annotation_ids(annotation, path)
            if aid in seen:
                raise DatasetError(f"{path}: annotation id {aid} appears twice: ids are unique")
            seen.add(aid)
            if image_id not in images:
                raise DatasetError(
                    f"{path}: annotation id {aid} refers to image_id {image_id}, which the "
                    f"file's images do not list"
                )
            file_name, width, height = images[image_id]
            where = f"{path}: annotation id {aid} (image '{file_name}', {width}x{height})"
            if category not in labels:
                if self.unknown_classes == "error":
                    raise DatasetError(
                        f"{where}: category_id {category} is not one of the {len(labels)} "
                        f"categories of {self.annotation_file('train')} (ids "
                        f"{list(labels)}): add it there, or set {UNKNOWN_OPTION}=skip to leave "
                        f"such annotations out"
                    )
                skipped[own.get(category, f"id {category}")] += 1
                continue
            box = checked_box(annotation.get("bbox"), width, height, where)
            if box is None:
                dropped.append(aid)
                continue
            target = targets[image_id]
            target["boxes"].append(box)
            target["labels"].append(labels[category])
            target["difficult"].append(crowd_flag(annotation.get("iscrowd", 0), where))
        self._skipped[split], self._dropped[split] = skipped, dropped
        log_skipped(str(path), split, skipped, f"the categories of {self.annotation_file('train')}")
        if dropped:
            log.warning(
                "%s: %d annotation(s) with a box of zero width or height left out (they mark "
                "no region): ids %s",
                path,
                len(dropped),
                listed_ids(dropped),
            )
        return targets


def split_name(name: str, option: str) -> str:
    """A split name as a plain folder name (it names a folder and a file under the root)."""
    name = str(name)
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise OptionError(
            f"'{name}' is not a folder name: give the split's name as in "
            f"annotations/instances_<name>.json and <name>/ (e.g. train2017, val2017)",
            option=option,
        )
    return name


def empty_target() -> dict:
    return {"boxes": [], "labels": [], "difficult": []}


def checked_box(bbox: object, width: int, height: int, where: str) -> list[float] | None:
    """[x1, y1, x2, y2] in pixel edges of a COCO [x, y, width, height] box, clipped to its
    image; None for a box of zero width or height.

    Raises:
        DatasetError: Naming `where` (file and annotation id) for a box that is not four
            finite numbers, has a negative size, or leaves the image by more than
            BOX_TOLERANCE pixels.
    """
    numbers = isinstance(bbox, list | tuple) and len(bbox) == 4
    if not numbers or not all(is_number(v) and math.isfinite(v) for v in bbox):
        raise DatasetError(f"{where}: bbox must be [x, y, width, height] in pixels, got {bbox!r}")
    x, y, w, h = (float(v) for v in bbox)
    if w < 0 or h < 0:
        raise DatasetError(
            f"{where}: bbox {list(bbox)} has a negative width or height; COCO boxes are "
            f"[x, y, width, height]: fix or remove the annotation"
        )
    x1, y1, x2, y2 = x, y, x + w, y + h
    over = max(-x1, -y1, x2 - width, y2 - height)  # the furthest a side leaves the image
    if over > BOX_TOLERANCE:
        raise DatasetError(
            f"{where}: bbox {list(bbox)} ([x, y, width, height]) spans x {x1:g}..{x2:g}, "
            f"y {y1:g}..{y2:g}, beyond the {width}x{height} image by more than "
            f"{BOX_TOLERANCE:g} px: fix or remove the annotation (a box written as "
            f"[x1, y1, x2, y2] looks like this)"
        )
    x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
    y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
    if x2 <= x1 or y2 <= y1:
        return None
    return [x1, y1, x2, y2]


def crowd_flag(value: object, where: str) -> bool:
    """`iscrowd` as a bool: 0 or 1 (or false or true)."""
    if isinstance(value, bool) or (is_number(value) and value in (0, 1)):
        return bool(value)
    raise DatasetError(f"{where}: iscrowd must be 0 or 1, got {value!r}")


def is_number(value: object) -> bool:
    """An int or a float; not a bool (JSON's true is no coordinate)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def listed_ids(ids: list[int]) -> str:
    """The first LISTED_IDS ids, and how many more."""
    shown = ", ".join(str(i) for i in ids[:LISTED_IDS])
    return shown + (f" and {len(ids) - LISTED_IDS} more" if len(ids) > LISTED_IDS else "")
