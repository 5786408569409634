"""The contract of an input representation.

A representation is a small frozen dataclass that a model family builds from its own fields,
so everything that shapes the input is already in the family's identity (its training keys).
It makes the training and evaluation datasets of a list of files (each sample an (input, label)
pair, the input a tensor or a tuple of tensors that torch's default collate stacks), and says
how its evaluation input follows from pixels: `evaluation_pixels` gives the RGB image the
evaluation sees, `from_pixels` turns a batch of it into the module's input, differentiably.
For every file, `from_pixels(evaluation_pixels(image))` equals the evaluation sample within
rounding; the sensitivity maps perturb those pixels' DCT coefficients through it.

To add one: a file here with a subclass, and a model family whose `input_representation`
returns it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from sweep.data.files import LabelledFile
from sweep.data.pixels import read_pixels, to_rgb


class InputRepresentation(ABC):
    """What a classification module takes, and how it is made from files and pixels.

    Attributes:
        reads_decode_cache: Its training dataset takes the pixels of files that carry a
            decode cache (`sweep.data.files.DecodedFiles`, train.decode_cache) from there;
            False: it reads the files (DCT coefficients straight from JPEG files).
    """

    reads_decode_cache: ClassVar[bool] = False

    @abstractmethod
    def training_dataset(self, files: list[LabelledFile], min_crop_scale: float) -> Dataset:
        """The augmented training samples (drawing randomness from torch's global generator)."""

    @abstractmethod
    def evaluation_dataset(self, files: list[LabelledFile]) -> Dataset:
        """The deterministic evaluation samples, in file order."""

    @abstractmethod
    def evaluation_pixels(self, image: torch.Tensor) -> torch.Tensor:
        """(3, H, W) uint8 RGB -> (3, h, w) float RGB in [0, 1]: what evaluation sees."""

    @abstractmethod
    def from_pixels(self, pixels: torch.Tensor) -> Any:
        """(B, 3, h, w) float RGB in [0, 1] -> the module's input for the batch."""

    def source_counts(self, files: list[LabelledFile]) -> dict[str, int]:
        """How many files give their input from each source (e.g. {"pixels": n})."""
        return {"pixels": len(files)}


class FileSamples(Dataset):
    """(sample(path), label) of each file; `sample` must pickle (loader worker processes)."""

    def __init__(self, files: list[LabelledFile], sample: Callable[[str], Any]) -> None:
        self.files = files
        self.sample = sample

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, label, _ = self.files[index]
        return self.sample(path), label


def read_image(path: str) -> torch.Tensor:
    """(3, H, W) uint8 RGB of any image file the sweep reads or writes."""
    pixels = to_rgb(read_pixels(path))
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)


def to_device(inputs: Any, device: torch.device) -> Any:
    """A batch's input (a tensor or a tuple of tensors) on `device`."""
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device, non_blocking=True)
    return type(inputs)(to_device(part, device) for part in inputs)
