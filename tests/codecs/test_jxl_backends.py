"""JPEG XL backends: distance -> quality mapping, refusals, cross-decoding, keys."""

from __future__ import annotations

import io

import imagecodecs
import jxlpy
import numpy as np
import pytest
from PIL import Image
from skimage import data

from sweep.codecs.base import SettingError
from sweep.codecs.jxl import JxlCodec
from sweep.codecs.jxl_backends import BACKENDS, JxlpyBackend, PillowJxlBackend

# Distances that every backend reaches: qualities 90, 80, 60, 30 on the shared linear part.
SHARED = ["1", "1.9", "3.7", "6.4"]


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return data.astronaut()[100:228, 150:278]  # (128, 128, 3) uint8


def decoders() -> dict:
    import pillow_jxl  # noqa: F401  (Pillow opens .jxl through it)

    def with_jxlpy(encoded: bytes) -> np.ndarray:
        return BACKENDS["jxlpy"]().decode(encoded, threads=1)

    def with_pillow(encoded: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(encoded)) as image:
            return np.array(image)

    return {"imagecodecs": imagecodecs.jpegxl_decode, "pillow": with_pillow, "jxlpy": with_jxlpy}


def test_default_backend_keeps_the_keys_it_had_before_backends():
    assert JxlCodec().identity("1") == {
        "codec": "jxl",
        "library": f"imagecodecs {imagecodecs.__version__} / {imagecodecs.jpegxl_version()}",
        "parameters": {"effort": 7},
        "setting": "1",
    }


def test_each_backend_names_its_own_library_in_the_key():
    identities = [JxlCodec(backend=name).identity("1")["library"] for name in BACKENDS]
    assert len(set(identities)) == 3
    assert "pillow-jxl-plugin" in identities[1]
    assert f"libjxl {jxlpy._jxl_version}" in identities[2]


@pytest.mark.parametrize(
    ("quality", "distance"),
    [
        (99, "0.19"),
        (90, "1"),
        (80, "1.9"),
        (30, "6.4"),
        (29, "6.50767"),
        (20, "9.06667"),
        (0, "25"),
    ],
)
def test_pillow_jxl_maps_quality_by_libjxl_formula(quality, distance):
    # JxlEncoderDistanceFromQuality: 0.1 + (100 - q) * 0.09 from 30 up, a parabola below.
    assert PillowJxlBackend().quality_for(float(distance)) == quality


@pytest.mark.parametrize("quality", [99, 90, 80, 30, 25, 20, 15, 10, 5, 0])
def test_jxlpy_maps_quality_by_its_own_get_distance(quality):
    assert JxlpyBackend.distance_of_quality(quality) == pytest.approx(jxlpy.get_distance(quality))
    assert JxlpyBackend().quality_for(JxlpyBackend.distance_of_quality(quality)) == quality


@pytest.mark.parametrize("backend", ["pillow_jxl", "jxlpy"])
def test_quality_backends_refuse_distances_no_quality_reaches(backend):
    with pytest.raises(SettingError) as raised:
        JxlCodec(backend=backend, distances=[1, 2])
    assert raised.value.option == "codec.distances"
    assert "1.99 (quality 79) and 2.08 (quality 78)" in str(raised.value)
    with pytest.raises(SettingError, match=r"0.46 \(quality 96\) and 0.55 \(quality 95\)"):
        JxlCodec(backend=backend).parse_setting("0.5")
    codec = JxlCodec(backend=backend, distances=[1, "1.90", 6.4])
    assert codec.sweep_settings() == ["original", "1", "1.9", "6.4"]


def test_the_two_quality_formulas_part_below_quality_30():
    assert JxlCodec(backend="pillow_jxl").parse_setting("9.06667") == "9.06667"
    assert JxlCodec(backend="jxlpy").parse_setting("7.4") == "7.4"
    with pytest.raises(SettingError):
        JxlCodec(backend="jxlpy").parse_setting("9.06667")
    with pytest.raises(SettingError):
        JxlCodec(backend="pillow_jxl").parse_setting("7.4")


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(SettingError, match="imagecodecs.*jxlpy.*pillow_jxl") as raised:
        JxlCodec(backend="libjxl")
    assert raised.value.option == "codec.backend"


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("grey", [False, True])
def test_files_of_each_backend_decode_with_the_others(photo, backend, grey):
    pixels = photo[..., 0].copy() if grey else photo
    codec = JxlCodec(backend=backend)
    encoded = codec.encode(pixels, "1.9")
    own = codec.decode(encoded)
    assert own.shape == pixels.shape and own.dtype == np.uint8
    assert np.abs(own.astype(int) - pixels).mean() < 4
    for name, decode in decoders().items():
        other = decode(encoded)
        assert other.shape == pixels.shape, name
        # libjxl 0.12 (pillow-jxl-plugin) rounds some samples one level away from 0.10/0.11.
        assert np.abs(other.astype(int) - own).max() <= 1, name


@pytest.mark.parametrize("distance", ["1", "1.9", "4.6", "6.4", "7.29167", "9.06667"])
def test_pillow_jxl_at_the_mapped_quality_encodes_what_imagecodecs_does_at_the_distance(
    photo, distance
):
    # At effort 1 libjxl 0.12 (pillow-jxl-plugin) and 0.11 (imagecodecs) make the same image
    # from the same distance, so equal pixels show that the quality reached the distance.
    # (Their bytes differ in coding details; above distance 10, and at higher efforts, the
    # two versions' encoders differ as well.)
    through_quality = JxlCodec(backend="pillow_jxl", effort=1).encode(photo, distance)
    direct = JxlCodec(effort=1).encode(photo, distance)
    assert np.array_equal(
        imagecodecs.jpegxl_decode(through_quality), imagecodecs.jpegxl_decode(direct)
    )
    nearby = JxlCodec(effort=1).encode(photo, str(float(distance) + 0.09))
    assert not np.array_equal(imagecodecs.jpegxl_decode(nearby), imagecodecs.jpegxl_decode(direct))


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_effort_reaches_every_backend(photo, backend):
    sizes = {len(JxlCodec(backend=backend, effort=e).encode(photo, "1")) for e in (1, 3, 7, 10)}
    assert len(sizes) >= 3
