"""AVIF codec: settings, round trips, grey and RGB input, identity in keys."""

from __future__ import annotations

import io

import imagecodecs
import numpy as np
import pytest
from PIL import Image
from skimage import data

from sweep.codecs.avif import AvifCodec
from sweep.codecs.base import ORIGINAL, SettingError


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return data.astronaut()[100:228, 150:278]  # (128, 128, 3) uint8


def test_settings_are_canonical_strings():
    codec = AvifCodec(qualities=[90, 30])
    assert codec.sweep_settings() == ["original", "q90", "q30"]
    assert codec.parse_setting("q050") == "q50" and codec.parse_setting(ORIGINAL) == ORIGINAL


@pytest.mark.parametrize("bad", ["4", 60, "q101", "quality60", None])
def test_bad_settings_are_refused_naming_the_syntax(bad):
    with pytest.raises(SettingError, match="original.*q90"):
        AvifCodec().parse_setting(bad)


@pytest.mark.parametrize(
    ("arguments", "option"),
    [
        ({"speed": 11}, "codec.speed"),
        ({"subsampling": "4:1:1"}, "codec.subsampling"),
        ({"subsampling": 14520}, "codec.subsampling"),  # what YAML makes of an unquoted 4:2:0
        ({"qualities": [200]}, "codec.qualities"),
    ],
)
def test_bad_arguments_name_their_option(arguments, option):
    with pytest.raises(SettingError) as raised:
        AvifCodec(**arguments)
    assert raised.value.option == option


def test_subsampling_is_canonical():
    assert AvifCodec(subsampling=444).subsampling == "4:4:4"
    assert AvifCodec(subsampling="420").identity("q50") == AvifCodec().identity("q50")


def test_size_falls_with_the_quality(photo):
    codec = AvifCodec()
    sizes, errors = [], []
    for setting in ["q95", "q70", "q40", "q5"]:
        encoded = codec.encode(photo, setting)
        decoded = codec.decode(encoded)
        assert decoded.shape == photo.shape and decoded.dtype == np.uint8
        sizes.append(len(encoded))
        errors.append(np.abs(decoded.astype(int) - photo).mean())
    assert sizes == sorted(sizes, reverse=True)
    assert errors == sorted(errors)


def test_grey_stays_one_channel(photo):
    grey = photo[..., 0].copy()
    encoded = AvifCodec().encode(grey, "q80")
    assert AvifCodec().decode(encoded).shape == grey.shape
    assert len(encoded) < len(AvifCodec().encode(np.repeat(grey[..., None], 3, 2), "q80"))


def test_subsampling_changes_the_bytes(photo):
    full = AvifCodec(subsampling="4:4:4").encode(photo, "q80")
    assert full != AvifCodec(subsampling="4:2:0").encode(photo, "q80")
    assert AvifCodec(subsampling="4:4:4").identity("q80") != AvifCodec().identity("q80")


def test_other_decoders_read_its_files(photo):
    encoded = AvifCodec().encode(photo, "q80")
    with Image.open(io.BytesIO(encoded)) as image:
        assert image.format == "AVIF"
    other = imagecodecs.avif_decode(encoded)
    assert np.abs(other.astype(int) - AvifCodec().decode(encoded)).max() <= 2


def test_encoding_is_deterministic_and_names_the_encoder(photo):
    assert AvifCodec().encode(photo, "q60") == AvifCodec().encode(photo, "q60")
    library = AvifCodec().library_version()
    assert "libavif" in library and "aom" in library
