"""A classification folder: <root>/train/<class>/<image> and <root>/test/<class>/<image>.

The root is a local folder or an object store's URL (sweep/data/roots.py).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from sweep.data.base import SPLITS, DatasetError, DatasetReader, ImageItem, is_image_file
from sweep.data.roots import dataset_root


class ImageFolderReader(DatasetReader):
    """Classes are the sub-folders of train/; test/ may not hold a class that train/ lacks.

    Args:
        root: Folder (or object-store URL) holding train/ and test/.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = dataset_root(root)

    def prepare(self) -> None:
        super().prepare()
        for split in SPLITS:
            if not self.files.is_dir(self.root / split):
                raise DatasetError(
                    f"{self.root / split} is missing: task=imagefolder expects "
                    f"{self.root}/train/<class>/* and {self.root}/test/<class>/*"
                )
        if not self.class_names():
            raise DatasetError(f"{self.root / 'train'} holds no class folders")
        unknown = self._class_dirs("test") - set(self.class_names())
        if unknown:
            raise DatasetError(
                f"{self.root / 'test'} has classes that train/ lacks: {sorted(unknown)}"
            )

    def _class_dirs(self, split: str) -> set[str]:
        return {p.name for p in self.files.iterdir(self.root / split) if self.files.is_dir(p)}

    @cached_property
    def _classes(self) -> list[str]:
        return sorted(self._class_dirs("train"))

    def class_names(self) -> list[str]:
        return self._classes

    def read_split(self, split: str) -> list[ImageItem]:
        items = []
        for label, name in enumerate(self.class_names()):
            class_dir = self.root / split / name
            if not self.files.is_dir(class_dir):
                continue
            for path in sorted(self.files.iterdir(class_dir)):
                if is_image_file(path, self.files):
                    items.append(ImageItem(f"{split}/{name}/{path.name}", label))
        if not items:
            raise DatasetError(f"{self.root / split} holds no images")
        return items
