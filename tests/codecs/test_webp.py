"""WebP codec: settings, round trips, grey input, identity in keys."""

from __future__ import annotations

import io

import imagecodecs
import numpy as np
import pytest
from PIL import Image
from skimage import data

from sweep.codecs.base import ORIGINAL, SettingError
from sweep.codecs.webp import WebpCodec


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return data.astronaut()[100:228, 150:278]  # (128, 128, 3) uint8


def test_settings_are_canonical_strings():
    codec = WebpCodec(qualities=[90, 5, 0])
    assert codec.sweep_settings() == ["original", "q90", "q5", "q0"]
    assert codec.parse_setting("Q007") == "q7" and codec.parse_setting(ORIGINAL) == ORIGINAL


@pytest.mark.parametrize("bad", ["1", 80, "q101", "q-1", "80q", "q80-420", None])
def test_bad_settings_are_refused_naming_the_syntax(bad):
    with pytest.raises(SettingError, match="original.*q90"):
        WebpCodec().parse_setting(bad)


@pytest.mark.parametrize("qualities", [[80, 80], [], ["q80"], [80.5], [101]])
def test_bad_qualities_are_reported_under_their_option(qualities):
    with pytest.raises(SettingError) as raised:
        WebpCodec(qualities=qualities)
    assert raised.value.option == "codec.qualities"


def test_bad_method_is_reported_under_its_option():
    with pytest.raises(SettingError) as raised:
        WebpCodec(method=7)
    assert raised.value.option == "codec.method"


def test_size_falls_with_the_quality(photo):
    codec = WebpCodec()
    sizes, errors = [], []
    for setting in ["q95", "q75", "q40", "q5"]:
        encoded = codec.encode(photo, setting)
        decoded = codec.decode(encoded)
        assert decoded.shape == photo.shape and decoded.dtype == np.uint8
        sizes.append(len(encoded))
        errors.append(np.abs(decoded.astype(int) - photo).mean())
    assert sizes == sorted(sizes, reverse=True)
    assert errors == sorted(errors)


def test_grey_is_written_as_rgb_with_equal_channels(photo):
    grey = photo[..., 0].copy()
    decoded = WebpCodec().decode(WebpCodec().encode(grey, "q90"))
    assert decoded.shape == (*grey.shape, 3)
    assert np.abs(decoded.astype(int) - grey[..., None]).mean() < 3


def test_other_decoders_read_its_files(photo):
    encoded = WebpCodec().encode(photo, "q80")
    with Image.open(io.BytesIO(encoded)) as image:
        assert image.format == "WEBP"
    assert np.array_equal(imagecodecs.webp_decode(encoded), WebpCodec().decode(encoded))


def test_method_changes_bytes_and_identity(photo):
    assert WebpCodec(method=0).encode(photo, "q80") != WebpCodec(method=6).encode(photo, "q80")
    assert WebpCodec(method=0).identity("q80") != WebpCodec(method=6).identity("q80")
    assert WebpCodec().identity("q80") != WebpCodec().identity("q70")
    assert "libwebp" in WebpCodec().identity("q80")["library"]


def test_position_grows_with_compression():
    codec = WebpCodec(qualities=[100, 90, 0])
    assert [codec.setting_position(s) for s in codec.sweep_settings()] == [0, 0.5, 10, 100]
