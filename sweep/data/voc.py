"""Pascal VOC detection: JPEGImages/, Annotations/*.xml and ImageSets/Main/<list>.txt.

Box convention: VOC files hold 1-based, inclusive pixel indices (xmin = 1 is the first column,
xmax = width the last). Targets hold 0-based pixel-edge coordinates, the convention of
torchvision and COCO: x1 = xmin - 1, y1 = ymin - 1, x2 = xmax, y2 = ymax (as detectron2 reads
VOC), so that a box covering the whole image is [0, 0, width, height].

Boxes refer to the stored pixels. The sweep's pixel reader applies EXIF orientation, which would
move every box of a rotated photograph; VOC's JPEGs carry no orientation, and the bad-image
check counts any file that does under `exif_orientation` in conversions.csv.

The root is a local folder or an object store's URL (sweep/data/roots.py); from a store, the
annotation files are fetched many at once.
"""

from __future__ import annotations

import io
import logging
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from upath import UPath

from sweep.data.base import DatasetError, DatasetReader, ImageItem
from sweep.data.class_coverage import check_test_classes, class_counts, log_skipped
from sweep.data.classes import (
    DISCOVER,
    checked_class_names,
    class_list,
    unknown_class_message,
    unknown_class_policy,
)
from sweep.data.roots import dataset_root, is_object_path
from sweep.store.locations import read_location

log = logging.getLogger(__name__)

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
BOX_TAGS = ("xmin", "ymin", "xmax", "ymax")


@dataclass(frozen=True)
class VocObject:
    """One <object> of an annotation file, before its class becomes a label.

    Attributes:
        where: The file and object number, for messages.
        name: The class name as written.
        box: [x1, y1, x2, y2] in 0-based pixel edges.
        difficult: The <difficult> flag.
    """

    where: str
    name: str
    box: list[float]
    difficult: bool


class VocReader(DatasetReader):
    """Reads a VOC-layout folder; 'train' and 'test' are two image sets of ImageSets/Main.

    VOC 2012's test annotations are not public, so its 'val' set is the usual test split.
    Objects marked `difficult` stay in the target with `difficult: true`: the detection task
    trains without them and evaluates them as in the VOC protocol (neither found nor missed).

    Args:
        root: The folder (or object-store URL) holding JPEGImages/, Annotations/ and
            ImageSets/ (VOCdevkit/VOC2012).
        classes: Class names in label order: None for the 20 VOC classes in their standard
            order, a list, a file of one name a line, or "discover" for the sorted names of
            the training annotations (see sweep/data/classes.py).
        train_list: Image set of the train split (ImageSets/Main/<train_list>.txt).
        test_list: Image set of the test split.
        unknown_classes: "error": an object of another class is an error naming its
            annotation file; "skip": it is left out and counted (`skipped_objects`).
    """

    def __init__(
        self,
        root: str | Path,
        classes: str | list[str] | None = None,
        train_list: str = "train",
        test_list: str = "val",
        unknown_classes: str = "error",
    ) -> None:
        self.root = dataset_root(root)
        self.classes = class_list(classes, default=VOC_CLASSES)
        self.lists = {"train": train_list, "test": test_list}
        self.unknown_classes = unknown_class_policy(unknown_classes)
        self._skipped: dict[str, Counter[str]] = {}

    def list_file(self, split: str) -> Path | UPath:
        return self.root / "ImageSets" / "Main" / f"{self.lists[split]}.txt"

    def prepare(self) -> None:
        super().prepare()
        for path in (
            self.root / "JPEGImages",
            self.root / "Annotations",
            self.list_file("train"),
            self.list_file("test"),
        ):
            if not self.files.exists(path):
                raise DatasetError(
                    f"{path} is missing: task=voc expects the Pascal VOC layout (JPEGImages/, "
                    f"Annotations/<id>.xml, ImageSets/Main/{self.lists['train']}.txt and "
                    f"{self.lists['test']}.txt) under task.root, e.g. VOCdevkit/VOC2012"
                )
        self.class_names()  # a class file or discovery fails here, before any work

    def class_names(self) -> list[str]:
        return self._classes

    @cached_property
    def _classes(self) -> list[str]:
        if not self.classes.discover:
            return self.classes.load()
        found = sorted({o.name for _, objects in self._annotations("train") for o in objects})
        try:
            checked_class_names(found, f"the training annotations of {self.list_file('train')}")
        except ValueError as error:
            raise DatasetError(
                f"task.reader.classes={DISCOVER}: {error}; give the classes as a list or a file",
                option="task.reader.classes",
            ) from None
        log.info(
            "task.reader.classes=%s: %d classes in the training annotations of %s, in label "
            "order: %s",
            DISCOVER,
            len(found),
            self.list_file("train"),
            found,
        )
        return found

    @cached_property
    def _labels(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self._classes)}

    def skipped_objects(self) -> dict[str, dict[str, int]]:
        """Objects left out by unknown_classes=skip: {split: {class name: count}}, for the
        splits read so far (empty counts when nothing was left out)."""
        return {split: dict(counts) for split, counts in self._skipped.items()}

    def read_split(self, split: str) -> list[ImageItem]:
        skipped: Counter[str] = Counter()
        items = [
            ImageItem(relpath, self._target(objects, skipped))
            for relpath, objects in self._annotations(split)
        ]
        self._skipped[split] = skipped
        log_skipped(f"task.root {self.root}", split, skipped)
        if split == "test":
            names = self.class_names()
            train = class_counts(self.items("train"), names)
            check_test_classes(f"task.root {self.root}", train, class_counts(items, names))
        return items

    def _annotations(self, split: str) -> list[tuple[str, list[VocObject]]]:
        """Each listed image and the objects of its annotation file, parsed once per split
        (discovery and the split's items share them)."""
        parsed = self.__dict__.setdefault("_parsed", {})
        if split not in parsed:
            parsed[split] = self._parse_list(split)
        return parsed[split]

    def _parse_list(self, split: str) -> list[tuple[str, list[VocObject]]]:
        list_file = self.list_file(split)
        if not self.files.is_file(list_file):
            raise DatasetError(f"{list_file} is missing: it lists the images of the {split} split")
        # The lines are checked first, up to the first refusal; the annotations of the lines
        # before it are parsed (many at once from a store) before that refusal is raised, so
        # the first bad line is the one named, as when reading line by line.
        listed, seen, refusal = [], set(), None
        for number, line in enumerate(list_file.read_text().splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            # Main/<list>.txt holds one id a line; class lists add a flag, which is ignored.
            try:
                listed.append(self._listed_image(list_file, number, fields[0], seen))
            except DatasetError as error:
                refusal = error
                break
        parsed = self.files.map(lambda entry: (entry[0], parse_annotation(entry[1])), listed)
        if refusal is not None:
            raise refusal
        if not parsed:
            raise DatasetError(f"{list_file} lists no images")
        return parsed

    def _listed_image(
        self, list_file: Path | UPath, number: int, image_id: str, seen: set[str]
    ) -> tuple[str, Path | UPath]:
        """(image relpath, annotation path) of a list's line, both checked to exist."""
        if image_id in seen:
            raise DatasetError(f"{list_file}:{number}: '{image_id}' is listed twice")
        seen.add(image_id)
        relpath = f"JPEGImages/{image_id}.jpg"
        try:
            image = self.resolve(relpath)
            annotation = self.resolve(f"Annotations/{image_id}.xml")
        except DatasetError as error:
            raise DatasetError(f"{list_file}:{number}: {error}") from None
        if not self.files.is_file(image):
            raise DatasetError(f"{list_file}:{number}: {image} does not exist")
        if not self.files.is_file(annotation):
            raise DatasetError(
                f"{list_file}:{number}: the annotation {annotation} of '{image_id}' does not exist"
            )
        return relpath, annotation

    def read_annotation(self, path: Path | UPath) -> dict:
        """The target of one annotation file: boxes (0-based pixel edges), labels, difficult."""
        return self._target(parse_annotation(path), Counter())

    def _target(self, objects: list[VocObject], skipped: Counter[str]) -> dict:
        """Objects as a target; an unknown class is an error, or skipped and counted."""
        boxes, labels, difficult = [], [], []
        for element in objects:
            label = self._labels.get(element.name)
            if label is None:
                if self.unknown_classes == "skip":
                    skipped[element.name] += 1
                    continue
                raise DatasetError(
                    f"{element.where}: {unknown_class_message(element.name, self._classes)}"
                )
            boxes.append(element.box)
            labels.append(label)
            difficult.append(element.difficult)
        return {"boxes": boxes, "labels": labels, "difficult": difficult}


def parse_annotation(path: Path | UPath) -> list[VocObject]:
    """The objects of one annotation file (or object), boxes checked and in 0-based pixel
    edges."""
    source = io.BytesIO(read_location(str(path))) if is_object_path(path) else path
    try:
        root = ET.parse(source).getroot()
    except ET.ParseError as error:
        raise DatasetError(f"{path}: not a readable VOC annotation ({error})") from None
    objects = []
    for number, element in enumerate(root.findall("object"), start=1):
        where = f"{path}: object {number}"
        name = (element.findtext("name") or "").strip()
        if not name:
            raise DatasetError(f"{where} has no <name>: every object needs its class")
        bndbox = element.find("bndbox")
        if bndbox is None:
            raise DatasetError(f"{where} ('{name}') has no <bndbox>")
        try:
            xmin, ymin, xmax, ymax = (float(bndbox.findtext(tag)) for tag in BOX_TAGS)
        except (TypeError, ValueError):
            raise DatasetError(
                f"{where} ('{name}'): <bndbox> needs numeric {', '.join(BOX_TAGS)}"
            ) from None
        if xmax < xmin or ymax < ymin:
            raise DatasetError(
                f"{where} ('{name}'): box xmin={xmin:g} ymin={ymin:g} xmax={xmax:g} "
                f"ymax={ymax:g} is empty"
            )
        flag = (element.findtext("difficult") or "0").strip()
        if flag not in ("0", "1"):
            raise DatasetError(f"{where} ('{name}'): <difficult> must be 0 or 1, got '{flag}'")
        objects.append(VocObject(where, name, [xmin - 1.0, ymin - 1.0, xmax, ymax], flag == "1"))
    return objects
