"""Reading image files to pixels, whatever their format (JPEG, PNG, JPEG XL, ...)."""

from __future__ import annotations

import io
from pathlib import Path

import imagecodecs
import numpy as np

# Registers JPEG XL with Pillow, so that Image.open reads the .jxl files the sweep writes.
import pillow_jxl  # noqa: F401
from PIL import Image, ImageOps

from sweep.data.formats import has_jpeg_reconstruction, sniff_format
from sweep.store.locations import read_location


def read_pixels(path: str | Path) -> np.ndarray:
    """Decodes an image file (a path, a URL or a packed shard's member: see
    `sweep.store.locations`) to uint8 pixels: (H, W) for greyscale, (H, W, 3) otherwise.

    Greyscale stays one channel, so that its raw size (H x W x 1) and its encode are honest;
    alpha is dropped; palette and CMYK become RGB; 16-bit samples are scaled to 8 bits (a plain
    conversion would clip them to white); EXIF orientation is applied.
    """
    return decode_bytes(read_location(path))


def decode_bytes(data: bytes) -> np.ndarray:
    """`read_pixels` of a file's bytes.

    The decoder follows the content, not the name: a PNG named .jxl is still a PNG. A JPEG
    XL that losslessly transcodes a JPEG is turned back into that JPEG and decoded like the
    original file, so the lossless cell trains on exactly the original's pixels (libjxl's own
    decode of the same coefficients differs by a few levels).
    """
    if sniff_format(data[:32]) == "jxl":
        if not has_jpeg_reconstruction(data):
            return to_uint8(drop_alpha(imagecodecs.jpegxl_decode(data)))
        data = bytes(imagecodecs.jpegxl_decode_jpeg(data))
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        # Pixels as the camera meant them: EXIF orientation applied.
        image = ImageOps.exif_transpose(opened)
        if image.mode.startswith("I;16") or image.mode in ("I", "F"):
            return to_uint8(np.array(image))
        if image.mode in ("L", "LA", "La"):
            return np.array(image.convert("L"))
        return np.array(image.convert("RGB"))


def drop_alpha(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 2) grey+alpha to (H, W); (H, W, 4) RGBA to (H, W, 3)."""
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):
        pixels = pixels[..., : pixels.shape[2] - 1]
    return pixels[..., 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Scales 16-bit, 32-bit integer and float samples to 8 bits; uint8 unchanged."""
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype.kind == "f":
        # Floats in [0, 1] by convention; a wider range is scaled by its maximum.
        peak = float(np.nanmax(pixels)) if pixels.size else 1.0
        scale = 255.0 if peak <= 1.0 else 255.0 / peak
        return np.clip(np.rint(np.nan_to_num(pixels) * scale), 0, 255).astype(np.uint8)
    # 16-bit data in a 32-bit container ("I" mode) still spans 0..65535.
    return (np.clip(pixels, 0, 65535).astype(np.uint32) >> 8).astype(np.uint8)


def to_rgb(pixels: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 1) grey to (H, W, 3); RGB unchanged."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return pixels
