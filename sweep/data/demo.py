"""The built-in demo dataset: generated on first use, then read as an image folder."""

from __future__ import annotations

from pathlib import Path

from sweep.data import demo_images
from sweep.data.base import DatasetReader, ImageItem
from sweep.data.generated import generate_once, generated_folder
from sweep.data.imagefolder import ImageFolderReader

# Bump when the generator's output changes, so that old folders are not reused.
GENERATOR_VERSION = 1


class DemoReader(DatasetReader):
    """Writes the demo images under root/<parameters digest>/ once, then reads them.

    Args:
        root: Folder for generated demo datasets (one sub-folder per parameter set).
        train_per_class: Train images per class.
        test_per_class: Test images per class.
        image_size: Side of the square images in pixels.
        seed: Generator seed.
    """

    def __init__(
        self,
        root: str | Path,
        train_per_class: int = 80,
        test_per_class: int = 40,
        image_size: int = 96,
        seed: int = 0,
    ) -> None:
        self.parameters = {
            "version": GENERATOR_VERSION,
            "train_per_class": train_per_class,
            "test_per_class": test_per_class,
            "image_size": image_size,
            "seed": seed,
        }
        self.root = generated_folder(root, self.parameters)
        self._folder = ImageFolderReader(self.root)

    def prepare(self) -> None:
        generate_once(self.root, self.parameters, self._write)
        self._folder.prepare()

    def _write(self, staging: Path) -> None:
        p = self.parameters
        for split, per_class in (("train", p["train_per_class"]), ("test", p["test_per_class"])):
            demo_images.generate_demo_split(
                staging, split, per_class, size=p["image_size"], seed=p["seed"]
            )

    def class_names(self) -> list[str]:
        return self._folder.class_names()

    def read_split(self, split: str) -> list[ImageItem]:
        return self._folder.read_split(split)
