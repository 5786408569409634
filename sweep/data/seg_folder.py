"""Any segmentation dataset as two folder trees: images, and masks of class indices.

    <root>/images/{train,test}/<name>.<ext>     images (re-encoded)
    <root>/masks/{train,test}/<name>.png        one class index per pixel (never re-encoded)
    <root>/classes.txt                          class names, one a line, in index order

A mask has its image's relative path with the extension .png (sub-folders are mirrored:
images/train/city/a.jpg pairs with masks/train/city/a.png) and its image's size. Its pixels
hold class indices: the value i is class i of `classes`, the ignore index (255 by default)
counts in no loss or metric, and any other value is ignored as well. Masks are single-channel
8-bit PNGs, greyscale or palette (the palette index is the value), as sweep/data/masks.py reads.
The root is a local folder or an object store's URL (sweep/data/roots.py).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path, PurePosixPath

from upath import UPath

from sweep.data.base import IMAGE_SUFFIXES, SPLITS, DatasetError, DatasetReader, ImageItem
from sweep.data.classes import class_list
from sweep.data.masks import IGNORE_INDEX, checked_mask_item, class_index_label_ids
from sweep.data.roots import DISK_FILES, DatasetFiles, dataset_root
from sweep.errors import OptionError

MASK_SUFFIX = ".png"


class SegmentationFolderReader(DatasetReader):
    """Pairs every image under images/<split>/ with its mask under masks/<split>/.

    Each item's target is `{"label_ids": [0, ..., N-1]}`: mask value i is class i, so the
    segmentation task maps these masks like Cityscapes' and VOC's; the classes enter the
    dataset fingerprint through `class_names()` and the targets.

    Args:
        root: The folder (or object-store URL) holding images/ and masks/.
        classes: Class names in index order: a list, or a file of one name a line (the
            yaml's default is <root>/classes.txt). Masks hold indices, not names, so the
            classes cannot be discovered.
        ignore_index: The mask value of pixels that belong to no class (0..255, above every
            class index).
    """

    def __init__(
        self,
        root: str | Path,
        classes: str | list[str] | None = None,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        self.root = dataset_root(root)
        self.classes = class_list(
            classes, discover_refusal="segmentation masks hold class indices, not names"
        )
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise OptionError(
                f"must be an integer mask value 0..255, got {ignore_index!r}",
                option="task.reader.ignore_index",
            )
        if not 0 <= ignore_index <= IGNORE_INDEX:
            raise OptionError(
                f"must be a mask value 0..255, got {ignore_index}",
                option="task.reader.ignore_index",
            )
        self.ignore_index = ignore_index

    def prepare(self) -> None:
        super().prepare()
        for folder in ("images", "masks"):
            for split in SPLITS:
                path = self.root / folder / split
                if not self.files.is_dir(path):
                    raise DatasetError(
                        f"{path} is missing: task=seg_folder expects "
                        f"{self.root}/images/{{train,test}}/<name>.<ext> with "
                        f"{self.root}/masks/{{train,test}}/<name>.png (class indices)"
                    )
        self.class_names()

    def class_names(self) -> list[str]:
        return self._classes

    @cached_property
    def _classes(self) -> list[str]:
        names = self.classes.load()
        class_index_label_ids(names, self.ignore_index)  # the ignore index is no class
        return names

    def read_split(self, split: str) -> list[ImageItem]:
        images = self.root / "images" / split
        target = {"label_ids": class_index_label_ids(self.class_names(), self.ignore_index)}
        # Pairs up to the first image whose mask another image takes; the masks before it are
        # checked (many at once from a store) before that is refused, as one by one.
        pairs, masks_taken, refusal = [], {}, None
        for image in image_files(images, self.files):
            relative = PurePosixPath(image.relative_to(images).as_posix())
            mask = self.root / "masks" / split / relative.with_suffix(MASK_SUFFIX).as_posix()
            if mask in masks_taken:
                refusal = DatasetError(
                    f"{image} and {masks_taken[mask]} would share the mask {mask}: a mask is "
                    f"named like its image with .png, so rename one of the two images"
                )
                break
            masks_taken[mask] = image
            pairs.append((image, mask))
        items = self.files.map(
            lambda pair: checked_mask_item(self.root, *pair, target, self.files), pairs
        )
        if refusal is not None:
            raise refusal
        if not items:
            raise DatasetError(f"{images} holds no images")
        return items


def image_files(folder: Path | UPath, files: DatasetFiles = DISK_FILES) -> list[Path | UPath]:
    """The image files under a folder and its sub-folders, sorted by relative path.

    On a disk, symlinked sub-folders are followed (a folder assembled from links to other
    disks), each real folder once, so a link back up the tree cannot loop (`DiskFiles.walk`).
    """
    return [path for path in files.walk(folder) if path.suffix.lower() in IMAGE_SUFFIXES]
