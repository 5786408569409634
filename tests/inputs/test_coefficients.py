"""A JPEG's coefficients read straight from the file equal those computed from its decoded
pixels and re-quantised with its own tables, within rounding; files the reader cannot take
as stored go to the pixel path."""

from __future__ import annotations

import io

import jpeglib
import numpy as np
import pytest
from PIL import Image
from skimage import data

from sweep.inputs.base import read_image
from sweep.inputs.coefficients import MACROBLOCK, computed, read_from_jpeg, reads_straight


def photograph(height: int = 200, width: int = 152) -> np.ndarray:
    """A real photograph kept inside 20..224, so that no decoded sample clips at 0 or 255
    (clipping is the one loss the pixel path cannot see past)."""
    crop = data.astronaut()[40 : 40 + height, 100 : 100 + width].astype(np.float64)
    return (crop * 0.8 + 20).astype(np.uint8)


def save_jpeg(path, pixels, **options) -> None:
    Image.fromarray(pixels).save(path, format="JPEG", **options)


def requantised_differences(path, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """|stored - round(computed / table)| per plane, in quantisation steps."""
    read = read_from_jpeg(path)
    from_pixels = computed(pixels)
    jpeg = jpeglib.read_dct(str(path))
    differences = {}
    for plane, component in (("y", 0), ("cb", 1), ("cr", 2)):
        table = jpeg.qt[jpeg.quant_tbl_no[component]].astype(np.float32)
        stored = getattr(read, plane) / table
        # The reader dequantises: stored integers times the table, nothing else.
        np.testing.assert_array_equal(stored, np.rint(stored))
        requantised = np.rint(getattr(from_pixels, plane) / table)
        assert requantised.shape == stored.shape
        differences[plane] = np.abs(requantised - stored)
    return differences


@pytest.mark.parametrize("quality", [50, 90])
def test_read_coefficients_equal_the_decoded_pixels_requantised_with_the_files_tables(
    tmp_path, quality
):
    path = tmp_path / "photo.jpg"
    save_jpeg(path, photograph(), quality=quality)  # 200 x 152: a partial macroblock at the right
    read = read_from_jpeg(path)
    assert read is not None and read.source == "file"
    assert read.macroblocks == (200 // MACROBLOCK, 152 // MACROBLOCK)
    # Luma: decoded samples are integers, each off by at most half a level, and a coefficient
    # sums 64 samples with weights of L1 norm <= 8: at most 4 in coefficient units, so after
    # re-quantisation at most one step (a value near a step's midpoint) and mostly none.
    # Chroma also passes through the decoder's colour conversion to RGB, which rounds and
    # clips saturated colours, and its upsampling (plain: each sample over its 2x2 box;
    # Pillow's, which the loader uses: libjpeg's smoothing "fancy" upsampling).
    path_text = str(path)
    plain = jpeglib.read_spatial(path_text, flags=["-DO_FANCY_UPSAMPLING"]).spatial
    loader = read_image(path_text).permute(1, 2, 0).numpy()
    for pixels in (plain, loader):
        differences = requantised_differences(path, pixels)
        assert differences["y"].max() <= 1 and (differences["y"] == 0).mean() >= 0.99
        for plane in ("cb", "cr"):
            assert differences[plane].max() <= 2, plane
            assert (differences[plane] == 0).mean() >= 0.99, plane
    luma = np.abs(computed(plain).y - read.y)
    assert luma.max() <= 4.0


def test_the_reader_takes_baseline_progressive_and_grey_jpegs_and_leaves_the_rest(tmp_path):
    pixels = photograph(64, 64)
    cases = {
        "baseline.jpg": dict(quality=80),
        "progressive.jpg": dict(quality=80, progressive=True),
        "full_chroma.jpg": dict(quality=80, subsampling=0),  # 4:4:4: not the layout
    }
    for name, options in cases.items():
        save_jpeg(tmp_path / name, pixels, **options)
    save_jpeg(tmp_path / "grey.jpg", pixels[..., 0], quality=80)
    Image.fromarray(pixels).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=80)
    Image.fromarray(pixels).save(tmp_path / "lossless.png")
    rotated = Image.fromarray(pixels)
    exif = rotated.getexif()
    exif[0x0112] = 6  # rotate 90 degrees: the pixel path turns it, stored blocks do not
    rotated.save(tmp_path / "rotated.jpg", quality=80, exif=exif)
    (tmp_path / "png_named.jpg").write_bytes((tmp_path / "lossless.png").read_bytes())

    straight = {path.name: reads_straight(path) for path in sorted(tmp_path.iterdir())}
    assert straight == {
        "baseline.jpg": True,
        "progressive.jpg": True,
        "grey.jpg": True,
        "full_chroma.jpg": False,
        "cmyk.jpg": False,
        "lossless.png": False,
        "rotated.jpg": False,
        "png_named.jpg": False,
    }
    grey = read_from_jpeg(tmp_path / "grey.jpg")
    assert not grey.cb.any() and not grey.cr.any()  # Cb = Cr = 128: zero after the shift
    progressive = read_from_jpeg(tmp_path / "progressive.jpg")
    baseline = read_from_jpeg(tmp_path / "baseline.jpg")
    np.testing.assert_array_equal(progressive.y, baseline.y)  # same coefficients, other scans


def test_a_truncated_jpeg_goes_to_the_pixel_path_which_names_it(tmp_path):
    stream = io.BytesIO()
    save_jpeg(stream, photograph(64, 64), quality=80)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(stream.getvalue()[:200])
    assert read_from_jpeg(broken) is None
    with pytest.raises(OSError):
        read_image(str(broken))


def test_dc_is_eight_times_the_block_mean_after_the_level_shift():
    """JPEG's scale (T.81 A.3.3): the orthonormal DCT, so DC = 8 x mean(sample - 128)."""
    pixels = np.full((16, 16, 3), 200, np.uint8)
    coefficients = computed(pixels)
    np.testing.assert_allclose(coefficients.y[..., 0, 0], 8 * (200 - 128), rtol=1e-5)
    assert np.abs(coefficients.y[..., 1:, :]).max() < 1e-3
    np.testing.assert_allclose(coefficients.cb, 0, atol=1e-3)  # grey: no chroma
