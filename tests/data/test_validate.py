"""The bad-image policy: readable oddities converted and counted, unreadable files quarantined."""

from __future__ import annotations

import struct
import zlib
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sweep.data.pixels import read_pixels
from sweep.data.validate import CONVERTED, OK, QUARANTINED, inspect_image


def rgb(width: int = 40, height: int = 30) -> Image.Image:
    rng = np.random.default_rng(width + height)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


def saved(tmp_path: Path, name: str, image: Image.Image, **options) -> Path:
    path = tmp_path / name
    image.save(path, **options)
    return path


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header declares width x height (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("name", "make", "kind"),
    [
        ("png.JPEG", lambda: (rgb(), {"format": "PNG"}), "format_mismatch"),
        ("cmyk.jpg", lambda: (rgb().convert("CMYK"), {}), "cmyk"),
        ("grey.jpg", lambda: (rgb().convert("L"), {}), "grayscale"),
        ("deep.png", lambda: (Image.fromarray(np.full((8, 8), 4000, np.uint16)), {}), "16bit"),
        ("palette.png", lambda: (rgb().convert("P"), {}), "palette"),
        ("alpha.png", lambda: (rgb().convert("RGBA"), {}), "alpha"),
        ("prog.jpg", lambda: (rgb(), {"progressive": True}), "progressive"),
        ("dot.jpg", lambda: (rgb(1, 1), {}), "tiny"),
        ("odd.jpg", lambda: (rgb(20, 17), {}), "tiny"),
        ("strip.jpg", lambda: (rgb(500, 32), {}), "extreme_aspect"),
    ],
)
def test_readable_oddities_are_converted_and_counted(tmp_path, name, make, kind):
    image, options = make()
    found = inspect_image(saved(tmp_path, name, image, **options))
    assert found["status"] == CONVERTED and kind in found["kinds"]
    assert read_pixels(tmp_path / name).dtype == np.uint8


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = saved(tmp_path, "rotated.jpg", rgb(64, 48), exif=exif)
    assert inspect_image(path)["kinds"] == ["exif_orientation"]
    assert read_pixels(path).shape == (64, 48, 3)


def test_ordinary_file_is_ok(tmp_path):
    assert inspect_image(saved(tmp_path, "plain.jpg", rgb(64, 48))) == {
        "status": OK,
        "kinds": [],
        "reason": None,
    }


def test_extraneous_bytes_before_the_end_marker_decode_and_are_kept(tmp_path):
    data = BytesIO()
    rgb(64, 48).save(data, "JPEG")
    body = data.getvalue()
    (tmp_path / "extra.jpg").write_bytes(body[:-2] + b"\x12\x34" * 20 + body[-2:])
    assert inspect_image(tmp_path / "extra.jpg")["status"] == OK


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.jpg", b"", "empty file"),
        ("text.jpg", b"this is not an image", "not an image"),
        ("bomb.png", png_claiming(30000, 30000), "decompression bomb"),
    ],
)
def test_unreadable_files_are_quarantined_with_a_reason(tmp_path, name, content, reason):
    (tmp_path / name).write_bytes(content)
    found = inspect_image(tmp_path / name)
    assert found["status"] == QUARANTINED and reason in found["reason"]


def test_truncated_jpeg_is_quarantined(tmp_path):
    data = BytesIO()
    rgb(64, 48).save(data, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(data.getvalue()[: len(data.getvalue()) * 6 // 10])
    found = inspect_image(tmp_path / "cut.jpg")
    assert found["status"] == QUARANTINED and "truncated" in found["reason"]


def test_decoder_follows_content_not_name(tmp_path):
    import imagecodecs

    rgb(64, 48).save(tmp_path / "png.jxl", "PNG")
    pixels = np.asarray(rgb(64, 48))
    (tmp_path / "jxl.jpg").write_bytes(imagecodecs.jpegxl_encode(pixels, distance=1.0))
    for name in ("png.jxl", "jxl.jpg"):
        found = inspect_image(tmp_path / name)
        assert found["status"] == CONVERTED and found["kinds"][0] == "format_mismatch", name
        assert read_pixels(tmp_path / name).shape == (48, 64, 3)


def test_float_images_are_scaled_not_black(tmp_path):
    ramp = np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(48, 64)
    Image.fromarray(ramp, "F").save(tmp_path / "float.tif")
    pixels = read_pixels(tmp_path / "float.tif")
    assert pixels.shape == (48, 64) and pixels.min() == 0 and pixels.max() == 255
    assert "float" in inspect_image(tmp_path / "float.tif")["kinds"]


def test_meaningless_exif_orientation_is_not_counted(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 9
    path = saved(tmp_path, "odd_exif.jpg", rgb(64, 48), exif=exif)
    assert inspect_image(path)["status"] == OK


def test_machine_io_errors_fail_instead_of_quarantining(tmp_path, monkeypatch):
    import errno

    import sweep.data.validate as validate

    path = saved(tmp_path, "plain.jpg", rgb(64, 48))

    def flaky(_path):
        raise OSError(errno.EIO, "Input/output error", str(_path))

    monkeypatch.setattr(validate, "read_pixels", flaky)
    with pytest.raises(OSError, match="Input/output error"):
        inspect_image(path)


def test_validation_key_follows_the_decoders(imagefolder):
    from sweep.data.imagefolder import ImageFolderReader
    from sweep.data.validate import decoder_identity
    from sweep.stages.validate import validate_stage

    reader = ImageFolderReader(imagefolder)
    items = reader.read_split("train")
    base = validate_stage(reader, "train", items, decoder_identity(), 8)
    other = validate_stage(reader, "train", items, {**decoder_identity(), "pillow": "0"}, 8)
    assert base.key != other.key
    assert validate_stage(reader, "train", items, decoder_identity(), 4).key == base.key
