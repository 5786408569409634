"""Food-101: <root>/images/<class>/<id>.jpg, split lists in <root>/meta/{train,test}.txt.

The root is a local folder or an object store's URL (sweep/data/roots.py).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from sweep.data.base import SPLITS, DatasetError, DatasetReader, ImageItem
from sweep.data.roots import dataset_root


class Food101Reader(DatasetReader):
    """Reads the layout of the Food-101 archive (101 classes, 750 train / 250 test each).

    Class names come from meta/classes.txt when it exists (as in the archive), otherwise from
    the folders under images/. Split files list "<class>/<id>" without the extension.

    Args:
        root: The folder (or object-store URL) that holds images/ and meta/ (the archive's
            food-101/).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = dataset_root(root)

    def prepare(self) -> None:
        super().prepare()
        for needed in ["images", *(f"meta/{split}.txt" for split in SPLITS)]:
            if not self.files.exists(self.root / needed):
                raise DatasetError(
                    f"{self.root / needed} is missing: task=food101 expects the Food-101 "
                    f"layout (images/<class>/<id>.jpg, meta/train.txt, meta/test.txt) "
                    f"under task.root"
                )

    @cached_property
    def _classes(self) -> list[str]:
        listed = self.root / "meta" / "classes.txt"
        if self.files.exists(listed):
            return [line.strip() for line in listed.read_text().splitlines() if line.strip()]
        images = self.files.iterdir(self.root / "images")
        return sorted(p.name for p in images if self.files.is_dir(p))

    def class_names(self) -> list[str]:
        return self._classes

    def read_split(self, split: str) -> list[ImageItem]:
        split_file = self.root / "meta" / f"{split}.txt"
        labels = {name: index for index, name in enumerate(self.class_names())}
        items = []
        for number, line in enumerate(split_file.read_text().splitlines(), start=1):
            entry = line.strip()
            if not entry:
                continue
            class_name = entry.split("/", 1)[0]
            if class_name not in labels:
                raise DatasetError(
                    f"{split_file}:{number}: class '{class_name}' is not among the "
                    f"{len(labels)} classes of {self.root}"
                )
            relpath = f"images/{entry}.jpg"
            path = self.resolve(relpath)
            if not self.files.is_file(path):
                raise DatasetError(f"{split_file}:{number}: {path} does not exist")
            items.append(ImageItem(relpath, labels[class_name]))
        if not items:
            raise DatasetError(f"{split_file} lists no images")
        return items
