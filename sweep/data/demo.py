"""The built-in demo dataset: generated on first use, then read as an image folder."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from sweep.data import demo_images
from sweep.data.base import DatasetReader, ImageItem
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
        digest = hashlib.sha256(json.dumps(self.parameters, sort_keys=True).encode()).hexdigest()
        self.root = Path(root).absolute() / f"v{GENERATOR_VERSION}-{digest[:12]}"
        self._folder = ImageFolderReader(self.root)

    def prepare(self) -> None:
        if not (self.root / "DONE").exists():
            self._generate()
        self._folder.prepare()

    def _generate(self) -> None:
        # Written under a temporary name and renamed, so a killed run never leaves a half
        # dataset that a later run would read.
        staging = self.root.with_name(f"{self.root.name}.tmp-{uuid.uuid4().hex[:8]}")
        p = self.parameters
        staging.mkdir(parents=True)
        for split, per_class in (("train", p["train_per_class"]), ("test", p["test_per_class"])):
            demo_images.generate_demo_split(
                staging, split, per_class, size=p["image_size"], seed=p["seed"]
            )
        (staging / "DONE").write_text(json.dumps(p) + "\n")
        try:
            os.rename(staging, self.root)
        except OSError:
            # Another process generated the same parameters first: its copy is identical.
            shutil.rmtree(staging, ignore_errors=True)

    def class_names(self) -> list[str]:
        return self._folder.class_names()

    def read_split(self, split: str) -> list[ImageItem]:
        return self._folder.read_split(split)
