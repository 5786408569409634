"""A JPEG's dequantised 8x8 DCT coefficients: read straight from the file, or computed from
pixels in the same layout.

Layout (the one libjpeg keeps in memory and jpeg2dct returns): JFIF YCbCr, chroma on the 4:2:0
grid (each Cb, Cr sample the mean of a 2x2 pixel box, as libjpeg's encoder downsamples), the
level shift by 128, the orthonormal 8x8 DCT-II of ITU-T T.81 A.3.3 (`sweep.sensitivity.dct`),
coefficients of a block in natural order: index 8 i + j, i the vertical frequency, j the
horizontal one. Dequantised: the stored integers times their quantisation table, so that the
scale is the transform's and a file read equals a computation from pixels within rounding.

Only whole 16x16 macroblocks count: a partial one at the right or bottom edge holds the
encoder's padding, so both paths drop it and agree on every block they keep.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jpeglib
import numpy as np
import torch
from PIL import Image

from sweep.data.formats import sniff_format
from sweep.dct import BLOCK, block_dct, rgb_to_ycbcr
from sweep.store.locations import read_location

# A 4:2:0 macroblock: 2x2 luma blocks and one block of each chroma plane.
MACROBLOCK = 2 * BLOCK
# libjpeg's sampling factors of 4:2:0 (Y at 2x2, Cb and Cr at 1x1).
SAMPLING_420 = [[2, 2], [1, 1], [1, 1]]
EXIF_ORIENTATION = 0x0112


@dataclass
class Coefficients:
    """Dequantised coefficients of whole macroblocks, float32, (rows, cols, 8, 8) per plane.

    `y` has 2 rows x 2 cols of blocks per macroblock, `cb` and `cr` one; `source` says where
    they came from: "file" (read from a JPEG, no inverse DCT) or "pixels" (computed).
    """

    y: np.ndarray
    cb: np.ndarray
    cr: np.ndarray
    source: str

    @property
    def macroblocks(self) -> tuple[int, int]:
        return self.cb.shape[0], self.cb.shape[1]


def reads_straight(path: str | Path) -> bool:
    """Whether `read_from_jpeg` can take the file's coefficients as stored (header only)."""
    return _layout_fits(path) is not None


def read_from_jpeg(path: str | Path) -> Coefficients | None:
    """The file's own dequantised coefficients, with no inverse DCT; None when it cannot give
    them in the layout: not a JPEG, colour that is not YCbCr or grey (an RGB, CMYK or YCCK
    JPEG), sampling other than 4:2:0, or an EXIF rotation (the pixel path applies it)."""
    # jpeglib's default libjpeg (6b) reads the coefficients; a bundled libjpeg-turbo reads the
    # same ones a quarter faster, but switching builds per call (jpeglib.version) costs more
    # than it saves, and setting it for the whole process would change other jpeglib users.
    jpeg = _layout_fits(path)
    if jpeg is None:
        return None
    try:  # the coefficients load here, past the header
        return _dequantised(jpeg)
    except OSError:  # the pixel path raises the error that names the file
        return None


def _dequantised(jpeg) -> Coefficients:
    rows, cols = jpeg.height // MACROBLOCK, jpeg.width // MACROBLOCK
    tables = jpeg.qt.astype(np.float32)
    table_of = jpeg.quant_tbl_no

    def dequantised(plane: np.ndarray, component: int, scale: int) -> np.ndarray:
        whole = plane[: rows * scale, : cols * scale].astype(np.float32)
        return whole * tables[table_of[component]]

    y = dequantised(jpeg.Y, 0, 2)
    if jpeg.num_components == 1:  # grey: Cb = Cr = 128, zero after the level shift
        empty = np.zeros((rows, cols, BLOCK, BLOCK), np.float32)
        return Coefficients(y, empty, empty.copy(), "file")
    return Coefficients(y, dequantised(jpeg.Cb, 1, 1), dequantised(jpeg.Cr, 2, 1), "file")


def _layout_fits(path: str | Path):
    """The opened jpeglib file when its coefficients are in the layout, else None."""
    try:
        data = read_location(path)
    except OSError:  # unreadable here: the pixel path raises the error that names the file
        return None
    if sniff_format(data[:32]) != "jpeg":
        return None
    try:
        jpeg = read_dct_bytes(data)
        space = jpeg.jpeg_color_space.name
    except OSError:
        return None
    if space == "JCS_GRAYSCALE" and jpeg.num_components == 1:
        pass
    elif space != "JCS_YCbCr" or jpeg.samp_factor.tolist() != SAMPLING_420:
        return None
    with Image.open(io.BytesIO(data)) as image:
        if image.getexif().get(EXIF_ORIENTATION, 1) != 1:
            return None
    return jpeg


def read_dct_bytes(data: bytes):
    """jpeglib's coefficients of a JPEG's bytes: jpeglib reads files only, so the bytes (a
    packed shard's member) go through a temporary file, in memory where /dev/shm exists."""
    folder = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.NamedTemporaryFile(suffix=".jpg", dir=folder) as stream:
        stream.write(data)
        stream.flush()
        jpeg = jpeglib.read_dct(stream.name)
        jpeg.load()  # read now: the file is gone after this block
        return jpeg


def from_pixels(pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Coefficient planes of RGB pixels in 0-255, differentiable and batched.

    Args:
        pixels: (B, 3, H, W), H and W multiples of 16.

    Returns:
        y: (B, 64, H/8, W/8), channel 8 i + j.
        cbcr: (B, 128, H/16, W/16): Cb's 64 channels, then Cr's.
    """
    y, chroma = _blocks(pixels)
    return as_channels(y), as_channels(chroma).flatten(1, 2)


def computed(pixels: np.ndarray) -> Coefficients:
    """`Coefficients` of (H, W, 3) uint8 RGB pixels: its whole macroblocks, computed (float64,
    then float32 like a file's)."""
    rows, cols = pixels.shape[0] // MACROBLOCK, pixels.shape[1] // MACROBLOCK
    whole = pixels[: rows * MACROBLOCK, : cols * MACROBLOCK]
    image = torch.from_numpy(np.ascontiguousarray(whole)).permute(2, 0, 1)[None].double()
    y, chroma = (blocks[0].float().numpy() for blocks in _blocks(image))
    return Coefficients(y, chroma[0], chroma[1], "pixels")


def _blocks(pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, H, W) RGB 0-255 -> Y blocks (B, H/8, W/8, 8, 8) and Cb, Cr blocks
    (B, 2, H/16, W/16, 8, 8), level-shifted."""
    ycbcr = rgb_to_ycbcr(pixels) - 128.0
    chroma = torch.nn.functional.avg_pool2d(ycbcr[:, 1:], 2)  # 4:2:0, a 2x2 box
    return block_dct(ycbcr[:, 0]), block_dct(chroma)


def as_channels(blocks: torch.Tensor) -> torch.Tensor:
    """(..., rows, cols, 8, 8) -> (..., 64, rows, cols): frequency 8 i + j as channel."""
    *lead, rows, cols, _, _ = blocks.shape
    return blocks.reshape(*lead, rows, cols, BLOCK * BLOCK).movedim(-1, -3)
