"""The built-in segmentation demo: generated on first use, then read as a Cityscapes folder."""

from __future__ import annotations

from pathlib import Path

from sweep.data import demo_seg_images
from sweep.data.cityscapes import SPLIT_FOLDERS, CityscapesReader
from sweep.data.generated import generate_once, generated_folder
from sweep.errors import OptionError

# Bump when the generator's output changes, so that old folders are not reused.
GENERATOR_VERSION = 1
CITIES = {"train": ("north", "south"), "val": ("east",)}


class DemoSegReader(CityscapesReader):
    """Writes the demo under root/<parameters digest>/ once, then reads it like Cityscapes.

    Args:
        root: Folder for generated demo datasets (one sub-folder per parameter set).
        train_images: Images of the train split.
        test_images: Images of the test (val) split.
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
        for option, value, minimum in (
            ("train_images", train_images, 1),
            ("test_images", test_images, 1),
            # SegFormer's first stage (1/4) is reduced 8x for attention: 32 pixels at least.
            ("image_size", image_size, 32),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise OptionError(
                    f"must be an integer >= {minimum}, got {value!r}", f"task.reader.{option}"
                )
        self.parameters = {
            "version": GENERATOR_VERSION,
            "train_images": train_images,
            "test_images": test_images,
            "image_size": image_size,
            "seed": seed,
        }
        # The same reader as task=cityscapes, with the demo's classes and label table.
        super().__init__(
            generated_folder(root, self.parameters),
            classes=demo_seg_images.DEMO_SEG_CLASSES,
            label_ids=demo_seg_images.DEMO_SEG_LABEL_IDS,
        )

    def prepare(self) -> None:
        generate_once(self.root, self.parameters, self._write)
        super().prepare()

    def _write(self, staging: Path) -> None:
        p = self.parameters
        for split, count in (("train", p["train_images"]), ("test", p["test_images"])):
            folder = SPLIT_FOLDERS[split]
            demo_seg_images.generate_demo_seg_split(
                staging, folder, count, CITIES[folder], size=p["image_size"], seed=p["seed"]
            )
