"""Reading sources of every kind to the uint8 pixels that are encoded."""

from __future__ import annotations

import imagecodecs
import numpy as np
from PIL import Image

from sweep.data.pixels import read_pixels, to_rgb


def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    pixels = read_pixels(tmp_path / "deep.png")
    assert pixels.dtype == np.uint8 and pixels.shape == (64, 64)
    assert pixels.min() == 0 and pixels.max() == 255
    assert len(np.unique(pixels)) > 200


def test_alpha_palette_and_grey_sources(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert read_pixels(tmp_path / "a.png").shape == (8, 8, 3)
    Image.fromarray(rgba[..., 0]).convert("P").save(tmp_path / "p.png")
    assert read_pixels(tmp_path / "p.png").shape == (8, 8, 3)
    Image.fromarray(rgba[..., 0]).save(tmp_path / "g.jpg")
    grey = read_pixels(tmp_path / "g.jpg")
    assert grey.shape == (8, 8) and to_rgb(grey).shape == (8, 8, 3)


def test_jxl_with_alpha_drops_it(tmp_path):
    grey_alpha = np.full((8, 8, 2), 100, np.uint8)
    (tmp_path / "ga.jxl").write_bytes(imagecodecs.jpegxl_encode(grey_alpha, lossless=True))
    assert read_pixels(tmp_path / "ga.jxl").shape == (8, 8)
