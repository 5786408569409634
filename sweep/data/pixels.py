"""Reading image files to pixels, whatever their format (JPEG, PNG, JPEG XL, ...)."""

from __future__ import annotations

from pathlib import Path

import imagecodecs
import numpy as np
from PIL import Image


def read_pixels(path: str | Path) -> np.ndarray:
    """Decodes a source image to uint8 pixels: (H, W) for greyscale, (H, W, 3) otherwise.

    Greyscale stays one channel, so that its raw size (H x W x 1) and its encode are honest;
    every other mode (palette, CMYK, alpha, 16-bit) becomes RGB.
    """
    path = Path(path)
    if path.suffix.lower() == ".jxl":
        pixels = imagecodecs.jpegxl_decode(path.read_bytes())
        return pixels if pixels.ndim == 2 or pixels.shape[2] == 3 else pixels[..., :3]
    with Image.open(path) as image:
        image.load()
        if image.mode in ("L", "I;16", "I"):
            return np.array(image.convert("L"))
        return np.array(image.convert("RGB"))


def to_rgb(pixels: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 1) grey to (H, W, 3); RGB unchanged."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return pixels
