"""Segmentation samples: an image and its label mask, decoded, rescaled, cropped, flipped.

Training samples follow SegFormer as mmsegmentation runs it: random rescale, random crop
(padded with ignored pixels when the image is smaller), horizontal flip. Evaluation samples keep
the mask at its own resolution: metrics are always computed there.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from sweep.data.files import LabelledFile
from sweep.data.masks import IGNORE_INDEX, lookup_table, read_training_mask
from sweep.data.pixels import read_pixels, to_rgb


@functools.lru_cache(maxsize=16)
def _table(label_ids: tuple[int, ...]) -> np.ndarray:
    return lookup_table(label_ids)


def load_labelled_image(file: LabelledFile) -> tuple[torch.Tensor, torch.Tensor]:
    """Decodes an image and its mask: (3, H, W) uint8 pixels and (H, W) int64 class indices.

    The mask's raw ids become classes through the item's `target["label_ids"]` (see
    `sweep.data.cityscapes.CityscapesReader`); other ids become IGNORE_INDEX.
    """
    if file.mask is None:
        raise ValueError(f"{file.path} has no label mask: segmentation needs one per image")
    pixels = to_rgb(read_pixels(file.path))
    mask = read_training_mask(file.mask, _table(tuple((file.target or {})["label_ids"])))
    if mask.shape != pixels.shape[:2]:
        raise ValueError(
            f"the mask {file.mask} is {mask.shape[1]}x{mask.shape[0]} but its image "
            f"{file.path} is {pixels.shape[1]}x{pixels.shape[0]}"
        )
    image = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)
    return image, torch.from_numpy(mask).long()


def resize_pair(
    image: torch.Tensor, mask: torch.Tensor | None, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Bilinear (antialiased) for the pixels; nearest for the labels, never blended."""
    image = TF.resize(image, list(size), InterpolationMode.BILINEAR, antialias=True)
    if mask is not None:
        mask = TF.resize(mask[None], list(size), InterpolationMode.NEAREST_EXACT)[0]
    return image, mask


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    return max(1, round(height * scale)), max(1, round(width * scale))


class TrainSample:
    """Random rescale, random crop (padding ignored), flip and normalisation of one image.

    Randomness comes from torch's generator, which the DataLoader seeds in every worker, so
    a training is reproducible for a given number of loader workers (the draws an image gets
    depend on which worker loads it).
    """

    def __init__(
        self,
        crop_size: tuple[int, int],
        scale_range: tuple[float, float],
        resize_short_side: int | None,
        flip: bool,
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        self.crop_size, self.scale_range = crop_size, scale_range
        self.resize_short_side, self.flip = resize_short_side, flip
        self.mean, self.std = list(mean), list(std)

    def __call__(
        self, image: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:  # (3, H, W) uint8, (H, W) -> (3, h, w), (h, w)
        height, width = mask.shape
        scale = base_scale(height, width, self.resize_short_side)
        low, high = self.scale_range
        scale *= low + (high - low) * torch.rand(()).item()
        if scale != 1.0:
            image, mask = resize_pair(image, mask, scaled_size(height, width, scale))
        # A random crop; where the image is smaller than the crop, the crop starts at 0 and is
        # padded at the bottom and right: with zeros after normalisation (the mean colour) and
        # with ignored labels, which count in no loss.
        crop_h, crop_w = self.crop_size
        top = int(torch.randint(max(mask.shape[0] - crop_h, 0) + 1, ()).item())
        left = int(torch.randint(max(mask.shape[1] - crop_w, 0) + 1, ()).item())
        image = image[:, top : top + crop_h, left : left + crop_w]
        mask = mask[top : top + crop_h, left : left + crop_w]
        # Normalised after cropping: a 2x rescaled Cityscapes frame is 4096x2048.
        image = TF.normalize(TF.to_dtype(image, torch.float32, scale=True), self.mean, self.std)
        pad_h, pad_w = crop_h - mask.shape[0], crop_w - mask.shape[1]
        if pad_h or pad_w:
            image = F.pad(image, (0, pad_w, 0, pad_h), value=0.0)
            mask = F.pad(mask, (0, pad_w, 0, pad_h), value=IGNORE_INDEX)
        if self.flip and torch.rand(()).item() < 0.5:
            image, mask = image.flip(-1), mask.flip(-1)
        return image.contiguous(), mask.contiguous()


class EvalSample:
    """The full image (rescaled if the task says so) and the mask at its own resolution."""

    def __init__(self, resize_short_side: int | None, mean, std) -> None:
        self.resize_short_side, self.mean, self.std = resize_short_side, list(mean), list(std)

    def __call__(
        self, image: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = mask.shape
        scale = base_scale(height, width, self.resize_short_side)
        if scale != 1.0:
            image, _ = resize_pair(image, None, scaled_size(height, width, scale))
        pixels = TF.to_dtype(image, torch.float32, scale=True)
        return TF.normalize(pixels, self.mean, self.std), mask


def base_scale(height: int, width: int, resize_short_side: int | None) -> float:
    return 1.0 if resize_short_side is None else resize_short_side / min(height, width)


class SegmentationFileDataset(Dataset):
    """Image files with their label masks, through a per-sample transform."""

    def __init__(self, files: list[LabelledFile], transform) -> None:
        self.files, self.transform = files, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(*load_labelled_image(self.files[index]))
