"""JPEG's coefficient planes, as jpeg2dct gives them: Y (64, S/8, S/8), CbCr (128, S/16, S/16).

Gueguen et al. (NeurIPS 2018, section 3) feed a network the dequantised coefficients that a
JPEG decoder holds before its inverse DCT: at S = 224, Y 28x28x64 and Cb, Cr 14x14x64 (4:2:0).
Here a sample is the pair (y, cbcr) of float32 tensors, channel 8 i + j of each plane
(`sweep.inputs.coefficients`).

Two geometries:

* `crop` (the default): no resampling, so the coefficients of a baseline 4:2:0 JPEG are read
  straight from the file. The input is a window of whole 16x16 macroblocks at the file's own
  resolution: random in training, central at evaluation; an image smaller than S is centred
  on zero coefficients (mid-grey). Training flips half the samples horizontally in the DCT
  domain (block columns reversed, odd horizontal frequencies negated: exact). Any other file
  (JPEG XL, PNG, a 4:4:4 or rotated JPEG) is decoded and its coefficients computed in the same
  layout, then cropped and flipped the same way, with the same random draws.
* `resize`: the RGB families' geometry (random-resized crop and flip in training; shorter
  side to int(S / crop_pct) and a centre crop at evaluation), then the coefficients computed
  from those pixels. Every file takes the pixel path: a resize cannot be done on stored
  coefficients. For datasets whose images are much larger than S, where a window at full
  resolution would see a small part of each image.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from sweep.data.files import LabelledFile
from sweep.dct import BLOCK
from sweep.errors import OptionError, require_choice
from sweep.inputs.base import FileSamples, InputRepresentation, read_image
from sweep.inputs.coefficients import (
    MACROBLOCK,
    Coefficients,
    as_channels,
    computed,
    from_pixels,
    read_from_jpeg,
    reads_straight,
)
from sweep.inputs.rgb import resize_and_crop, train_geometry

GEOMETRIES = ("crop", "resize")
# A horizontal flip of a block negates its odd horizontal frequencies: cos((2(7-x)+1) j pi/16)
# = (-1)^j cos((2x+1) j pi/16).
FLIP_SIGNS = np.array([(-1.0) ** j for j in range(BLOCK)], np.float32)


@dataclass(frozen=True)
class DctPlanes(InputRepresentation):
    """Coefficient planes of an S x S input.

    Args:
        image_size: S in pixels, a multiple of 16 (a whole number of macroblocks).
        geometry: "crop" (full resolution, read from JPEG files) or "resize".
        interpolation: Resampling filter of the resize geometry.
        crop_pct: Evaluation crop of the resize geometry (shorter side to S / crop_pct).
    """

    image_size: int
    geometry: str = "crop"
    interpolation: str = "bilinear"
    crop_pct: float = 1.0

    def __post_init__(self) -> None:
        if self.image_size <= 0 or self.image_size % MACROBLOCK:
            raise OptionError(
                f"image_size {self.image_size} is no positive multiple of {MACROBLOCK}: DCT "
                f"planes hold whole 16x16 macroblocks (Y 2x2 blocks, Cb and Cr one each)",
                option="model.image_size",
            )
        require_choice(self.geometry, GEOMETRIES, "model.geometry")

    @property
    def macroblocks(self) -> int:
        return self.image_size // MACROBLOCK

    # ---- datasets ------------------------------------------------------------------------

    def training_dataset(self, files: list[LabelledFile], min_crop_scale: float) -> Dataset:
        return FileSamples(files, partial(self.sample, train=True, min_crop_scale=min_crop_scale))

    def evaluation_dataset(self, files: list[LabelledFile]) -> Dataset:
        return FileSamples(files, partial(self.sample, train=False))

    def sample(
        self, path: str, train: bool, min_crop_scale: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(y, cbcr) of one file."""
        if self.geometry == "resize":
            image = read_image(path)
            if train:
                geometry = train_geometry(self.image_size, min_crop_scale, self._filter)
                pixels = v2.ToDtype(torch.float32, scale=True)(geometry(image))
            else:
                pixels = self.evaluation_pixels(image)
            y, cbcr = from_pixels(pixels[None].double() * 255.0)
            return y[0].float(), cbcr[0].float()
        coefficients = self.coefficients(path)
        return self.planes(window(coefficients, self.macroblocks, train), train)

    def coefficients(self, path: str) -> Coefficients:
        """The file's coefficients: read straight from a JPEG in the layout, else computed."""
        return read_from_jpeg(path) or computed(read_image(path).permute(1, 2, 0).numpy())

    def planes(self, coefficients: Coefficients, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(y, cbcr) tensors of an S x S window, flipped at random in training."""
        y, cb, cr = coefficients.y, coefficients.cb, coefficients.cr
        if train and torch.rand(()) < 0.5:
            y, cb, cr = (flipped(plane) for plane in (y, cb, cr))
        y_planes = as_channels(torch.from_numpy(np.ascontiguousarray(y)))
        chroma = torch.from_numpy(np.ascontiguousarray(np.stack([cb, cr])))
        return y_planes, as_channels(chroma).flatten(0, 1)

    def source_counts(self, files: list[LabelledFile]) -> dict[str, int]:
        if self.geometry == "resize":
            return {"pixels": len(files)}
        from_files = sum(reads_straight(file.path) for file in files)
        return {"file": from_files, "pixels": len(files) - from_files}

    # ---- the evaluation input as pixels (sensitivity maps) -----------------------------

    @property
    def _filter(self) -> v2.InterpolationMode:
        return v2.InterpolationMode(self.interpolation)

    def evaluation_pixels(self, image: torch.Tensor) -> torch.Tensor:
        """The pixels of the evaluation window: for crop, the central whole macroblocks on a
        mid-grey (128) canvas; for resize, the resize and centre crop."""
        if self.geometry == "resize":
            return resize_and_crop(self.image_size, self.crop_pct, self._filter)(image)
        size = self.image_size
        rows, cols = image.shape[1] // MACROBLOCK, image.shape[2] // MACROBLOCK
        canvas = torch.full((3, size, size), 128, dtype=torch.uint8)
        (top, into_top, height), (left, into_left, width) = (
            central(count, self.macroblocks) for count in (rows, cols)
        )
        canvas[
            :,
            into_top * MACROBLOCK : (into_top + height) * MACROBLOCK,
            into_left * MACROBLOCK : (into_left + width) * MACROBLOCK,
        ] = image[
            :,
            top * MACROBLOCK : (top + height) * MACROBLOCK,
            left * MACROBLOCK : (left + width) * MACROBLOCK,
        ]
        return canvas.float() / 255.0

    def from_pixels(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return from_pixels(pixels * 255.0)


def central(available: int, wanted: int) -> tuple[int, int, int]:
    """(first macroblock taken, where it lands, how many) of a centred window or placement."""
    if available >= wanted:
        return (available - wanted) // 2, 0, wanted
    return 0, (wanted - available) // 2, available


def window(coefficients: Coefficients, size: int, train: bool) -> Coefficients:
    """A size x size macroblock window: random (train) or central where the image is larger,
    centred on zeros where it is smaller. Draws one offset per axis from torch's generator,
    whatever the source, so the file and pixel paths crop alike."""
    rows, cols = coefficients.macroblocks
    spans = []
    for available in (rows, cols):
        first, into, count = central(available, size)
        if train and available > size:
            first = int(torch.randint(available - size + 1, ()))
        spans.append((first, into, count))
    (top, into_top, height), (left, into_left, width) = spans

    def cut(plane: np.ndarray, scale: int) -> np.ndarray:
        out = np.zeros((size * scale, size * scale, BLOCK, BLOCK), np.float32)
        out[
            into_top * scale : (into_top + height) * scale,
            into_left * scale : (into_left + width) * scale,
        ] = plane[top * scale : (top + height) * scale, left * scale : (left + width) * scale]
        return out

    return Coefficients(
        cut(coefficients.y, 2), cut(coefficients.cb, 1), cut(coefficients.cr, 1),
        coefficients.source,
    )  # fmt: skip


def flipped(plane: np.ndarray) -> np.ndarray:
    """The blocks of the horizontally mirrored image: columns reversed, odd j negated."""
    return plane[:, ::-1] * FLIP_SIGNS
