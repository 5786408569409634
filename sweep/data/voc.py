"""Pascal VOC detection: JPEGImages/, Annotations/*.xml and ImageSets/Main/<list>.txt.

Box convention: VOC files hold 1-based, inclusive pixel indices (xmin = 1 is the first column,
xmax = width the last). Targets hold 0-based pixel-edge coordinates, the convention of
torchvision and COCO: x1 = xmin - 1, y1 = ymin - 1, x2 = xmax, y2 = ymax (as detectron2 reads
VOC), so that a box covering the whole image is [0, 0, width, height].

Boxes refer to the stored pixels. The sweep's pixel reader applies EXIF orientation, which would
move every box of a rotated photograph; VOC's JPEGs carry no orientation, and the bad-image
check counts any file that does under `exif_orientation` in conversions.csv.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import cached_property
from pathlib import Path

from sweep.data.base import DatasetError, DatasetReader, ImageItem

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
BOX_TAGS = ("xmin", "ymin", "xmax", "ymax")


class VocReader(DatasetReader):
    """Reads a VOC-layout folder; 'train' and 'test' are two image sets of ImageSets/Main.

    VOC 2012's test annotations are not public, so its 'val' set is the usual test split.
    Objects marked `difficult` stay in the target with `difficult: true`: the detection task
    trains without them and evaluates them as in the VOC protocol (neither found nor missed).

    Args:
        root: The folder holding JPEGImages/, Annotations/ and ImageSets/ (VOCdevkit/VOC2012).
        classes: Class names in label order; None means the 20 VOC classes in their standard
            order. An object of any other class is an error naming its annotation file.
        train_list: Image set of the train split (ImageSets/Main/<train_list>.txt).
        test_list: Image set of the test split.
    """

    def __init__(
        self,
        root: str | Path,
        classes: list[str] | None = None,
        train_list: str = "train",
        test_list: str = "val",
    ) -> None:
        self.root = Path(root).absolute()
        self._classes = list(classes) if classes is not None else list(VOC_CLASSES)
        if len(set(self._classes)) != len(self._classes) or not self._classes:
            raise DatasetError(f"VOC class list {self._classes} is empty or repeats a name")
        self.lists = {"train": train_list, "test": test_list}

    def list_file(self, split: str) -> Path:
        return self.root / "ImageSets" / "Main" / f"{self.lists[split]}.txt"

    def prepare(self) -> None:
        super().prepare()
        for needed in (
            "JPEGImages",
            "Annotations",
            self.list_file("train"),
            self.list_file("test"),
        ):
            path = self.root / needed
            if not path.exists():
                raise DatasetError(
                    f"{path} is missing: task=voc expects the Pascal VOC layout (JPEGImages/, "
                    f"Annotations/<id>.xml, ImageSets/Main/{self.lists['train']}.txt and "
                    f"{self.lists['test']}.txt) under task.root, e.g. VOCdevkit/VOC2012"
                )

    def class_names(self) -> list[str]:
        return self._classes

    @cached_property
    def _labels(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self._classes)}

    def read_split(self, split: str) -> list[ImageItem]:
        list_file = self.list_file(split)
        if not list_file.is_file():
            raise DatasetError(f"{list_file} is missing: it lists the images of the {split} split")
        items, seen = [], set()
        for number, line in enumerate(list_file.read_text().splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            # Main/<list>.txt holds one id a line; class lists add a flag, which is ignored.
            image_id = fields[0]
            if image_id in seen:
                raise DatasetError(f"{list_file}:{number}: '{image_id}' is listed twice")
            seen.add(image_id)
            relpath = f"JPEGImages/{image_id}.jpg"
            if not self.resolve(relpath).is_file():
                raise DatasetError(f"{list_file}:{number}: {self.root / relpath} does not exist")
            annotation = self.resolve(f"Annotations/{image_id}.xml")
            if not annotation.is_file():
                raise DatasetError(
                    f"{list_file}:{number}: the annotation {annotation} of '{image_id}' "
                    f"does not exist"
                )
            items.append(ImageItem(relpath, self.read_annotation(annotation)))
        if not items:
            raise DatasetError(f"{list_file} lists no images")
        return items

    def read_annotation(self, path: Path) -> dict:
        """The target of one annotation file: boxes (0-based pixel edges), labels, difficult."""
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as error:
            raise DatasetError(f"{path}: not a readable VOC annotation ({error})") from None
        boxes, labels, difficult = [], [], []
        for number, element in enumerate(root.findall("object"), start=1):
            where = f"{path}: object {number}"
            name = (element.findtext("name") or "").strip()
            if name not in self._labels:
                raise DatasetError(
                    f"{where}: class '{name}' is not one of the {len(self._classes)} classes "
                    f"{self._classes}"
                )
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
            boxes.append([xmin - 1.0, ymin - 1.0, xmax, ymax])
            labels.append(self._labels[name])
            flag = (element.findtext("difficult") or "0").strip()
            if flag not in ("0", "1"):
                raise DatasetError(f"{where} ('{name}'): <difficult> must be 0 or 1, got '{flag}'")
            difficult.append(flag == "1")
        return {"boxes": boxes, "labels": labels, "difficult": difficult}
