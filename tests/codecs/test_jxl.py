"""JPEG XL codec: round trips, setting validation, identity in keys."""

from __future__ import annotations

import imagecodecs
import numpy as np
import pytest
from skimage import data

from sweep.codecs.base import ORIGINAL, SettingError
from sweep.codecs.jxl import JxlCodec


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return 10 * np.log10(255**2 / mse)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return data.astronaut()[100:228, 150:278]  # (128, 128, 3) uint8


def test_round_trip_quality_falls_and_size_shrinks_with_distance(photo):
    codec = JxlCodec(distances=[0.5, 1, 4, 15])
    sizes, qualities = [], []
    for setting in ["0.5", "1", "4", "15"]:
        encoded = codec.encode(photo, setting)
        decoded = codec.decode(encoded)
        assert decoded.shape == photo.shape and decoded.dtype == np.uint8
        sizes.append(len(encoded))
        qualities.append(psnr(photo, decoded))
    assert sizes == sorted(sizes, reverse=True)
    assert qualities == sorted(qualities, reverse=True)
    assert qualities[0] > 38 and qualities[-1] < 33


def test_greyscale_stays_one_channel(photo):
    grey = photo[..., 0].copy()
    decoded = JxlCodec().decode(JxlCodec().encode(grey, "1"))
    assert decoded.shape == grey.shape


def test_other_libjxl_readers_decode_its_files(photo):
    encoded = JxlCodec().encode(photo, "2")
    assert np.array_equal(imagecodecs.jpegxl_decode(encoded), JxlCodec().decode(encoded))


def test_settings_are_canonical_strings():
    codec = JxlCodec(distances=[0.50, 1.0, 10])
    assert codec.sweep_settings() == ["original", "0.5", "1", "10"]
    assert codec.parse_setting("2.0") == "2" and codec.parse_setting(2) == "2"
    assert codec.parse_setting(ORIGINAL) == ORIGINAL


@pytest.mark.parametrize("bad", ["-1", "0", "25.5", "fast", None])
def test_settings_outside_libjxl_range_are_refused(bad):
    with pytest.raises(SettingError, match="original|range"):
        JxlCodec().parse_setting(bad)


def test_effort_is_checked_and_part_of_the_identity():
    with pytest.raises(SettingError) as raised:
        JxlCodec(effort=0)
    assert raised.value.option == "codec.effort"
    assert JxlCodec(effort=7).identity("1") != JxlCodec(effort=3).identity("1")


def test_identity_names_the_library_version_and_original_is_codec_free():
    identity = JxlCodec().identity("1")
    assert imagecodecs.__version__ in identity["library"]
    assert "libjxl" in identity["library"]
    assert JxlCodec(effort=3).identity(ORIGINAL) == JxlCodec(effort=9).identity(ORIGINAL)
