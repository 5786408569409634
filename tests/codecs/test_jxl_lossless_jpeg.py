"""Lossless JPEG -> JPEG XL transcoding: bit-exact JPEG back, the source's pixels, fallbacks."""

from __future__ import annotations

import io
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
from PIL import Image
from skimage import data

from sweep.codecs.base import ORIGINAL, SettingError
from sweep.codecs.jxl_lossless_jpeg import JxlLosslessJpegCodec, NotTranscodableError
from sweep.data.formats import has_jpeg_reconstruction
from sweep.data.pixels import read_pixels


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return data.astronaut()[100:228, 150:260]  # (128, 110, 3) uint8


def saved(pixels: np.ndarray, image_format: str = "JPEG", **options) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=image_format, **options)
    return out.getvalue()


def jpegs(photo: np.ndarray) -> dict[str, bytes]:
    rotated = Image.Exif()
    rotated[0x0112] = 6  # EXIF orientation: rotate 90 degrees on display
    return {
        "4:4:4": saved(photo, quality=92, subsampling=0),
        "4:2:0": saved(photo, quality=75, subsampling=2),
        "grey": saved(photo[..., 1].copy(), quality=85),
        "progressive": saved(photo, quality=85, progressive=True, optimize=True),
        "rotated": saved(photo, quality=85, exif=rotated.tobytes()),
        "bytes after EOI": saved(photo, quality=85) + b"trailing bytes",
    }


@pytest.mark.parametrize(
    "kind", ["4:4:4", "4:2:0", "grey", "progressive", "rotated", "bytes after EOI"]
)
def test_transcode_rebuilds_the_jpeg_bit_for_bit(photo, kind, tmp_path):
    source = jpegs(photo)[kind]
    codec = JxlLosslessJpegCodec()
    encoded = codec.encode_source(source, np.zeros((1, 1), np.uint8), "lossless")
    assert bytes(imagecodecs.jpegxl_decode_jpeg(encoded)) == source
    assert has_jpeg_reconstruction(encoded)
    # Decodes to exactly the pixels the sweep reads from the source (orientation applied).
    path = Path(tmp_path) / "source.jpg"
    path.write_bytes(source)
    assert np.array_equal(codec.decode(encoded), read_pixels(path))
    # The training loader reads the written .jxl file to the same pixels.
    written = Path(tmp_path) / "00000000.jxl"
    written.write_bytes(encoded)
    assert np.array_equal(read_pixels(written), read_pixels(path))


@pytest.mark.parametrize("subsampling", [0, 2])
def test_transcode_of_a_photo_saves_bytes(subsampling):
    # On tiny images the container and reconstruction data can outweigh the saving (a
    # 128 x 110 grey JPEG grows by 2%); on a photo the repacked coefficients are smaller.
    source = saved(data.astronaut(), quality=90, subsampling=subsampling)
    encoded = JxlLosslessJpegCodec().encode_source(source, data.astronaut(), "lossless")
    assert len(encoded) < 0.9 * len(source)


def test_pillow_opens_the_transcoded_file_as_its_jpeg(photo):
    import pillow_jxl  # noqa: F401

    source = jpegs(photo)["4:2:0"]
    encoded = JxlLosslessJpegCodec().encode_source(source, photo, "lossless")
    with Image.open(io.BytesIO(encoded)) as image:
        assert np.array_equal(np.array(image), np.array(Image.open(io.BytesIO(source))))


@pytest.mark.parametrize("pixels_of", [lambda p: p, lambda p: p[..., 0].copy()])
def test_a_png_source_is_encoded_losslessly_from_its_pixels(photo, pixels_of):
    pixels = pixels_of(photo)
    codec = JxlLosslessJpegCodec()
    encoded = codec.encode_source(saved(pixels, "PNG"), pixels, "lossless")
    assert not has_jpeg_reconstruction(encoded)
    assert np.array_equal(codec.decode(encoded), pixels)
    assert np.array_equal(imagecodecs.jpegxl_decode(encoded), pixels)


def test_a_jpeg_libjxl_cannot_transcode_falls_back_to_pixels(photo):
    cmyk = io.BytesIO()
    Image.fromarray(photo).convert("CMYK").save(cmyk, format="JPEG")
    codec = JxlLosslessJpegCodec()
    encoded = codec.encode_source(cmyk.getvalue(), photo, "lossless")
    assert np.array_equal(codec.decode(encoded), photo)


def test_refuse_names_the_reason_and_the_option(photo):
    codec = JxlLosslessJpegCodec(non_jpeg="refuse")
    with pytest.raises(NotTranscodableError, match="png, not a JPEG.*codec.non_jpeg=pixels"):
        codec.encode_source(saved(photo, "PNG"), photo, "lossless")


def test_settings_are_original_and_lossless_only():
    codec = JxlLosslessJpegCodec()
    assert codec.sweep_settings() == [ORIGINAL, "lossless"]
    assert codec.parse_setting("lossless") == "lossless"
    for bad in ("1", "q90", "Lossless", None):
        with pytest.raises(SettingError, match="original.*lossless"):
            codec.parse_setting(bad)
    assert codec.setting_position(ORIGINAL) < codec.setting_position("lossless")


def test_arguments_are_checked_and_part_of_the_identity():
    for arguments, option in (
        ({"non_jpeg": "skip"}, "codec.non_jpeg"),
        ({"effort": 11}, "codec.effort"),
    ):
        with pytest.raises(SettingError) as raised:
            JxlLosslessJpegCodec(**arguments)
        assert raised.value.option == option
    identity = JxlLosslessJpegCodec().identity("lossless")
    assert "libjxl" in identity["library"]
    assert identity != JxlLosslessJpegCodec(non_jpeg="refuse").identity("lossless")
    assert JxlLosslessJpegCodec().identity(ORIGINAL) == {"codec": ORIGINAL}


def test_container_walk_stops_on_a_bare_codestream_and_bad_sizes():
    assert not has_jpeg_reconstruction(b"\xff\x0a" + bytes(30))
    assert not has_jpeg_reconstruction(bytes(4) + b"JXL " + bytes(8))
