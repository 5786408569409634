"""JPEG codec: settings, round trips, chroma subsampling in the file, identity in keys."""

from __future__ import annotations

import io

import imagecodecs
import numpy as np
import pytest
from PIL import Image
from skimage import data

from sweep.audit.jpeg_header import parse_jpeg_header
from sweep.codecs.base import ORIGINAL, SettingError
from sweep.codecs.jpeg import JpegCodec


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return 10 * np.log10(255**2 / mse)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return data.astronaut()[100:228, 150:278]  # (128, 128, 3) uint8


def test_settings_are_canonical_and_sweep_quality_at_each_subsampling():
    codec = JpegCodec(qualities=[90, 50], subsamplings=["4:4:4", 420])
    assert codec.sweep_settings() == ["original", "q90-444", "q90-420", "q50-444", "q50-420"]
    assert codec.parse_setting("q90") == "q90-420"
    assert codec.parse_setting("Q090-4:2:2") == "q90-422"
    assert codec.parse_setting(" q7-444 ") == "q7-444"
    assert codec.parse_setting(ORIGINAL) == ORIGINAL


@pytest.mark.parametrize(
    "bad", ["1", "90", 90, "q0", "q101", "q90-411", "q90-4:2", "q90-", "fast", None]
)
def test_bad_settings_are_refused_naming_the_syntax(bad):
    with pytest.raises(SettingError, match="original.*q90-420"):
        JpegCodec().parse_setting(bad)


@pytest.mark.parametrize(
    ("arguments", "option"),
    [
        ({"subsamplings": ["4:1:1"]}, "codec.subsamplings"),
        ({"subsamplings": []}, "codec.subsamplings"),
        ({"subsamplings": ["4:2:0", "420"]}, "codec.subsamplings"),
        ({"qualities": [150]}, "codec.qualities"),
        ({"qualities": ["q90"]}, "codec.qualities"),
        ({"qualities": [90, 90]}, "codec.qualities"),
        ({"qualities": []}, "codec.qualities"),
    ],
)
def test_bad_arguments_name_their_option(arguments, option):
    with pytest.raises(SettingError) as raised:
        JpegCodec(**arguments)
    assert raised.value.option == option


def test_size_and_quality_fall_with_the_quality(photo):
    codec = JpegCodec()
    sizes, qualities = [], []
    for setting in ["q95-420", "q75-420", "q40-420", "q10-420"]:
        encoded = codec.encode(photo, setting)
        decoded = codec.decode(encoded)
        assert decoded.shape == photo.shape and decoded.dtype == np.uint8
        sizes.append(len(encoded))
        qualities.append(psnr(photo, decoded))
    assert sizes == sorted(sizes, reverse=True)
    assert qualities == sorted(qualities, reverse=True)


@pytest.mark.parametrize(
    ("setting", "sampling"),
    [("q80-444", (1, 1)), ("q80-422", (2, 1)), ("q80-420", (2, 2))],
)
def test_the_subsampling_is_written_in_the_frame_header(photo, setting, sampling):
    encoded = JpegCodec().encode(photo, setting)
    header = parse_jpeg_header(io.BytesIO(encoded))
    # Luma carries the sampling factors; both chroma components are 1x1.
    assert header.sampling == (sampling, (1, 1), (1, 1))


def test_less_chroma_makes_smaller_files(photo):
    codec = JpegCodec()
    sizes = [len(codec.encode(photo, f"q80-{chroma}")) for chroma in ("444", "422", "420")]
    assert sizes == sorted(sizes, reverse=True)


def test_grey_stays_one_component(photo):
    grey = photo[..., 0].copy()
    encoded = JpegCodec().encode(grey, "q80-420")
    assert len(parse_jpeg_header(io.BytesIO(encoded)).components) == 1
    assert JpegCodec().decode(encoded).shape == grey.shape


def test_other_decoders_read_its_files(photo):
    encoded = JpegCodec().encode(photo, "q85-444")
    with Image.open(io.BytesIO(encoded)) as image:
        assert image.format == "JPEG"
    assert np.array_equal(imagecodecs.jpeg8_decode(encoded), JpegCodec().decode(encoded))


def test_optimize_and_progressive_change_bytes_not_pixels(photo):
    plain = JpegCodec(optimize=False).encode(photo, "q80-420")
    optimized = JpegCodec(optimize=True).encode(photo, "q80-420")
    progressive = JpegCodec(progressive=True).encode(photo, "q80-420")
    assert len(optimized) < len(plain)
    assert len({plain, optimized, progressive}) == 3
    decode = JpegCodec().decode
    assert np.array_equal(decode(plain), decode(optimized))


def test_identity_differs_by_setting_and_parameters_and_names_libjpeg_turbo():
    codec = JpegCodec()
    identity = codec.identity("q80-420")
    assert "libjpeg-turbo" in identity["library"] and "Pillow" in identity["library"]
    assert identity != codec.identity("q80-444") != codec.identity("q70-444")
    assert identity != JpegCodec(optimize=False).identity("q80-420")
    assert identity != JpegCodec(progressive=True).identity("q80-420")
    assert codec.identity(ORIGINAL) == {"codec": ORIGINAL}


def test_position_grows_with_compression_and_keeps_original_first():
    codec = JpegCodec(qualities=[100, 99, 90, 10], subsamplings=["4:4:4", "4:2:2", "4:2:0"])
    settings = codec.sweep_settings()
    positions = [codec.setting_position(s) for s in settings]
    assert positions[0] == 0 and all(p > 0 for p in positions[1:])
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert codec.setting_position("q90-420") == 10
