"""RGB pixels, resized and cropped as the family says and normalised: every family's default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from sweep.data.files import LabelledFile
from sweep.inputs.base import InputRepresentation
from sweep.inputs.files import ImageFileDataset, image_dataset


def interpolation_of(model) -> v2.InterpolationMode:
    """The family's resampling filter: its `interpolation`, bilinear without one."""
    return v2.InterpolationMode(getattr(model, "interpolation", None) or "bilinear")


def train_transform(
    image_size: int,
    mean,
    std,
    min_crop_scale: float,
    interpolation: v2.InterpolationMode = v2.InterpolationMode.BILINEAR,
) -> v2.Compose:
    """Random-resized-crop and flip; with min_crop_scale 1 only a resize and a flip.

    Resampling blurs pixel-level detail, the very detail compression removes, so a dataset
    whose classes live in fine texture wants min_crop_scale=1.
    """
    return v2.Compose(
        [
            train_geometry(image_size, min_crop_scale, interpolation),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ]
    )


def train_geometry(
    image_size: int, min_crop_scale: float, interpolation: v2.InterpolationMode
) -> v2.Compose:
    """(3, H, W) uint8 -> (3, image_size, image_size) uint8: the random crop (or resize and
    centre crop when min_crop_scale is 1) and a horizontal flip."""
    if min_crop_scale < 1:
        crop = v2.RandomResizedCrop(
            image_size, scale=(min_crop_scale, 1.0), interpolation=interpolation, antialias=True
        )
    else:
        crop = v2.Compose(
            [
                v2.Resize(image_size, interpolation=interpolation, antialias=True),
                v2.CenterCrop(image_size),
            ]
        )
    return v2.Compose([crop, v2.RandomHorizontalFlip()])


def eval_geometry(model) -> v2.Compose:
    """The pixels a classifier family evaluates, before normalisation: (3, H, W) uint8 ->
    (3, image_size, image_size) float32 RGB in [0, 1].

    The shorter side is resized to int(image_size / crop_pct) with the family's filter, then
    the centre is cropped. A family without `interpolation` and `crop_pct` is resized
    bilinearly to image_size (crop_pct 1.0), as before those attributes existed.
    """
    crop_pct = getattr(model, "crop_pct", None) or 1.0
    return resize_and_crop(model.image_size, crop_pct, interpolation_of(model))


def resize_and_crop(size: int, crop_pct: float, interpolation: v2.InterpolationMode) -> v2.Compose:
    """(3, H, W) uint8 -> (3, size, size) float32 in [0, 1]: the shorter side resized to
    int(size / crop_pct), the centre cropped (every representation's evaluation geometry)."""
    return v2.Compose(
        [
            v2.Resize(int(size / crop_pct), interpolation=interpolation, antialias=True),
            v2.CenterCrop(size),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )


def eval_transform(model) -> v2.Compose:
    """`eval_geometry` normalised with the family's mean and std: what the module takes."""
    return v2.Compose([eval_geometry(model), v2.Normalize(model.mean, model.std)])


@dataclass(frozen=True)
class RgbPixels(InputRepresentation):
    """(3, image_size, image_size) pixels normalised with mean and std.

    Training: `train_transform`; evaluation: `eval_transform`.
    """

    reads_decode_cache: ClassVar[bool] = True

    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str | None = None
    crop_pct: float | None = None

    @classmethod
    def of(cls, model) -> RgbPixels:
        """The representation of a family with `image_size`, `mean`, `std` and optionally
        `interpolation` and `crop_pct`."""
        return cls(
            model.image_size,
            tuple(model.mean),
            tuple(model.std),
            getattr(model, "interpolation", None),
            getattr(model, "crop_pct", None),
        )

    def training_dataset(self, files: list[LabelledFile], min_crop_scale: float) -> Dataset:
        transform = train_transform(
            self.image_size, self.mean, self.std, min_crop_scale, interpolation_of(self)
        )
        return image_dataset(files, transform)  # a decode cache's pixels where there is one

    def evaluation_dataset(self, files: list[LabelledFile]) -> Dataset:
        return ImageFileDataset(files, eval_transform(self))

    def evaluation_pixels(self, image: torch.Tensor) -> torch.Tensor:
        return eval_geometry(self)(image)

    def from_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        shape = (3, 1, 1)
        mean = torch.tensor(self.mean, dtype=pixels.dtype, device=pixels.device).view(shape)
        std = torch.tensor(self.std, dtype=pixels.dtype, device=pixels.device).view(shape)
        return (pixels - mean) / std
