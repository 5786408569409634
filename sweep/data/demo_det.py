"""The built-in detection demo: generated on first use in VOC layout, then read as VOC."""

from __future__ import annotations

from pathlib import Path

from sweep.data import demo_det_images
from sweep.data.base import DatasetReader, ImageItem
from sweep.data.generated import generate_once, generated_folder
from sweep.data.voc import VocReader

# Bump when the generator's output changes, so that old folders are not reused.
GENERATOR_VERSION = 1
# The demo's image sets: its test split is VOC's usual test split, "val".
TRAIN_LIST, TEST_LIST = "train", "val"


class DemoDetReader(DatasetReader):
    """Writes the demo under root/<parameters digest>/ once, then reads it with VocReader.

    Args:
        root: Folder for generated demo datasets (one sub-folder per parameter set).
        train_images: Images of the train split.
        test_images: Images of the test split.
        image_size: Side of the square images in pixels.
        seed: Generator seed.
    """

    def __init__(
        self,
        root: str | Path,
        train_images: int = 400,
        test_images: int = 100,
        image_size: int = 128,
        seed: int = 0,
    ) -> None:
        self.parameters = {
            "version": GENERATOR_VERSION,
            "train_images": train_images,
            "test_images": test_images,
            "image_size": image_size,
            "seed": seed,
        }
        self.root = generated_folder(root, self.parameters)
        self._voc = VocReader(
            self.root, list(demo_det_images.DEMO_DET_CLASSES), TRAIN_LIST, TEST_LIST
        )

    def prepare(self) -> None:
        generate_once(self.root, self.parameters, self._write)
        self._voc.prepare()

    def _write(self, staging: Path) -> None:
        p = self.parameters
        for list_name, images in ((TRAIN_LIST, p["train_images"]), (TEST_LIST, p["test_images"])):
            demo_det_images.generate_demo_det_split(
                staging, list_name, images, size=p["image_size"], seed=p["seed"]
            )
        # For people and other tools: the label order of the annotations' class names.
        (staging / "labels.txt").write_text("\n".join(demo_det_images.DEMO_DET_CLASSES) + "\n")

    def class_names(self) -> list[str]:
        return self._voc.class_names()

    def read_split(self, split: str) -> list[ImageItem]:
        return self._voc.read_split(split)
