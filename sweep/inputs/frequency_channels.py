"""DCTNet's input: the same DCT frequency of every 8x8 block grouped into one channel.

Xu et al. (CVPR 2020, "Learning in the Frequency Domain"; the authors' pipeline in kaix90/DCTNet,
classification/datasets/cvtransforms.py): the image is upsampled, converted to YCbCr, cut into
8x8 blocks and transformed; each of the 64 frequencies of each of Y, Cb and Cr becomes one
channel, 192 in all, on a grid of one sample per block. The upsampling is chosen so that the
grid is the resolution a backbone has after its stem: for ResNet-50 at S = 224, a 448 x 448
image (shorter side 512, centre 448) and a 56 x 56 x 192 input (S / 4 per side, the stride of
conv1 and the max-pool). All three planes are on that grid: the authors take Y from the 448 px
image and Cb, Cr from a 2x bilinear upscale stored at 4:2:0, which puts chroma back at 448 px;
here chroma is simply not subsampled. The authors also pass the image through a quality-100
JPEG to read its coefficients with jpeg2dct; here they are computed directly (a quality-100
table quantises with steps of 1).

A sample is one float32 tensor (192, S/4, S/4): channel 64 c + 8 i + j for component c (Y, Cb,
Cr) and frequency (i, j). The resize and crop are the RGB families', at 2 S: a random-resized
crop and flip in training, the shorter side to int(2 S / crop_pct) and a centre crop at
evaluation. The coefficients always come from pixels: those of an upsampled image exist in
no file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from sweep.data.files import LabelledFile
from sweep.dct import BLOCK, block_dct, rgb_to_ycbcr
from sweep.errors import OptionError
from sweep.inputs.base import FileSamples, InputRepresentation, read_image
from sweep.inputs.coefficients import as_channels
from sweep.inputs.rgb import resize_and_crop, train_geometry

# The DCT grid is the backbone's input resolution divided by its stem's stride (ResNet: 4), so
# the upsampled image is 8 / 4 = 2 times the backbone's input.
STEM_STRIDE = 4
UPSAMPLING = BLOCK // STEM_STRIDE
CHANNELS = 3 * BLOCK * BLOCK


@dataclass(frozen=True)
class FrequencyChannels(InputRepresentation):
    """(192, S/4, S/4) frequency channels of an image upsampled to 2 S.

    Args:
        image_size: S, the backbone's input size; a multiple of 4.
        interpolation: Resampling filter of the resize.
        crop_pct: Evaluation crop (the shorter side to 2 S / crop_pct, then the centre).
    """

    image_size: int
    interpolation: str = "bilinear"
    crop_pct: float = 1.0

    def __post_init__(self) -> None:
        if self.image_size <= 0 or self.image_size % STEM_STRIDE:
            raise OptionError(
                f"image_size {self.image_size} is no positive multiple of {STEM_STRIDE}: the "
                f"frequency grid is image_size / {STEM_STRIDE} blocks per side",
                option="model.image_size",
            )

    @property
    def upsampled_size(self) -> int:
        return self.image_size * UPSAMPLING

    @property
    def _filter(self) -> v2.InterpolationMode:
        return v2.InterpolationMode(self.interpolation)

    def training_dataset(self, files: list[LabelledFile], min_crop_scale: float) -> Dataset:
        geometry = train_geometry(self.upsampled_size, min_crop_scale, self._filter)
        pixels = v2.Compose([geometry, v2.ToDtype(torch.float32, scale=True)])
        return FileSamples(files, partial(self._sample, pixels))

    def evaluation_dataset(self, files: list[LabelledFile]) -> Dataset:
        return FileSamples(files, partial(self._sample, self.evaluation_pixels))

    def _sample(self, pixels, path: str) -> torch.Tensor:
        """The channels of one file, `pixels` its (3, 2S, 2S) float image."""
        return self.from_pixels(pixels(read_image(path))[None])[0]

    def evaluation_pixels(self, image: torch.Tensor) -> torch.Tensor:
        return resize_and_crop(self.upsampled_size, self.crop_pct, self._filter)(image)

    def from_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, 2S, 2S) RGB in [0, 1] -> (B, 192, S/4, S/4)."""
        ycbcr = rgb_to_ycbcr(pixels * 255.0) - 128.0
        return as_channels(block_dct(ycbcr)).flatten(1, 2)
