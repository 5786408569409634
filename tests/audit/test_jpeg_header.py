"""JPEG header parser: real files from libjpeg (Pillow, imagecodecs) and hand-built edge cases."""

from __future__ import annotations

import io
import struct

import imagecodecs
import numpy as np
import pytest
from PIL import Image

from sweep.audit.jpeg_header import JpegHeader, JpegHeaderError, parse_jpeg_header
from sweep.audit.quality import ijg_table

# Zigzag position k -> natural index, written out independently of the parser's table (T.81 A.6).
ZIGZAG = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
]  # fmt: skip


def rgb_pixels(height: int = 16, width: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def pillow_jpeg(image: Image.Image | None = None, **save_args) -> bytes:
    buf = io.BytesIO()
    (image or Image.fromarray(rgb_pixels())).save(buf, "JPEG", **save_args)
    return buf.getvalue()


def parse(data: bytes) -> JpegHeader:
    return parse_jpeg_header(io.BytesIO(data))


class CountingStream(io.BytesIO):
    """A BytesIO that counts the bytes handed out by read(), to prove segments are seeked past."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


# Hand-built JPEG headers (markers up to SOS, no entropy-coded data needed).


def segment(marker: int, body: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body


def dqt_body(table_id: int, zigzag_values: list[int], sixteen_bit: bool = False) -> bytes:
    if sixteen_bit:
        return bytes([0x10 | table_id]) + struct.pack(">64H", *zigzag_values)
    return bytes([table_id]) + bytes(zigzag_values)


def sof_body(width: int, height: int, components: list[tuple[int, int, int, int]], bits=8):
    body = struct.pack(">BHHB", bits, height, width, len(components))
    for cid, h, v, table in components:
        body += bytes([cid, (h << 4) | v, table])
    return body


SOS = segment(0xDA, bytes([1, 1, 0x00, 0, 63, 0])) + b"\x12\x34\xff\x00\x56"
YCBCR_420 = [(1, 2, 2, 0), (2, 1, 1, 1), (3, 1, 1, 1)]


def build(*segments: bytes, sof_marker: int = 0xC0, components=None) -> bytes:
    sof = segment(sof_marker, sof_body(40, 30, components or YCBCR_420))
    return b"\xff\xd8" + b"".join(segments) + sof + SOS


# Files written by libjpeg.


@pytest.mark.parametrize(("subsampling", "expected"), [(0, "4:4:4"), (1, "4:2:2"), (2, "4:2:0")])
def test_pillow_rgb_frame(subsampling, expected):
    header = parse(pillow_jpeg(quality=80, subsampling=subsampling))
    assert header.subsampling == expected
    assert header.mode == "RGB"
    assert header.components == (1, 2, 3)
    assert header.component_tables == (0, 1, 1)
    assert (header.width, header.height, header.precision) == (16, 16, 8)
    assert not header.progressive and not header.arithmetic
    assert header.adobe_transform is None


@pytest.mark.parametrize("quality", [1, 10, 50, 75, 95, 100])
def test_tables_match_pillow_and_are_in_natural_order(quality):
    data = pillow_jpeg(quality=quality)
    header = parse(data)
    # Pillow 13 reports its tables in natural order (its first row at quality 50 is Annex K's
    # 16 11 10 16 24 40 51 61), so they compare directly.
    pillow_tables = Image.open(io.BytesIO(data)).quantization
    assert header.quant_tables == {k: tuple(v) for k, v in pillow_tables.items()}
    assert header.quant_tables[0] == ijg_table(quality)
    assert header.quant_tables[1] == ijg_table(quality, chroma=True)


def test_zigzag_order_is_converted_to_natural():
    # DQT stores the table in zigzag order: value k goes to natural position ZIGZAG[k].
    data = build(segment(0xDB, dqt_body(0, list(range(64)))))
    table = parse(data).quant_tables[0]
    expected = [0] * 64
    for k, natural in enumerate(ZIGZAG):
        expected[natural] = k
    assert table == tuple(expected)
    assert table[:10] == (0, 1, 5, 6, 14, 15, 27, 28, 2, 4)


def test_progressive_and_non_square():
    header = parse(pillow_jpeg(Image.fromarray(rgb_pixels(24, 56)), quality=70, progressive=True))
    assert header.progressive
    assert (header.width, header.height) == (56, 24)
    assert header.quant_tables[0] == ijg_table(70)


def test_greyscale():
    header = parse(pillow_jpeg(Image.fromarray(rgb_pixels()[..., 0]), quality=60))
    assert header.mode == "L"
    assert header.subsampling == "grey"
    assert header.components == (1,)
    assert list(header.quant_tables) == [0]


def test_cmyk():
    data = pillow_jpeg(Image.fromarray(rgb_pixels()).convert("CMYK"), quality=85)
    header = parse(data)
    assert header.mode == "CMYK"
    assert len(header.components) == 4
    # libjpeg writes an Adobe marker with transform 0 (no colour transform) for CMYK.
    assert header.adobe_transform == 0
    assert header.subsampling == "4:4:4"
    assert Image.open(io.BytesIO(data)).mode == header.mode


def test_big_exif_is_seeked_past_not_read():
    exif = b"Exif\x00\x00" + bytes(range(256)) * 235  # about 60 KB of APP1
    data = pillow_jpeg(quality=42, exif=exif)
    assert len(data) > 60_000
    stream = CountingStream(data)
    header = parse_jpeg_header(stream)
    assert header.quant_tables[0] == ijg_table(42)
    assert header.subsampling == "4:2:0"
    assert stream.bytes_read < 10_000


def test_stream_not_at_offset_zero():
    # Seeks must be relative to where the JPEG starts: here other JPEGs come first in the stream,
    # so a seek from the stream's start would land in them and meet their EOI.
    prefix = b"".join(pillow_jpeg(quality=20, comment=b"p" * 3000) for _ in range(12))
    data = pillow_jpeg(quality=33, comment=b"c" * 30_000)
    stream = CountingStream(prefix + data)
    stream.seek(len(prefix))
    assert parse_jpeg_header(stream).quant_tables[0] == ijg_table(33)
    assert stream.bytes_read < 10_000


@pytest.mark.parametrize(
    ("subsampling", "expected", "sampling"),
    [("440", "4:4:0", (1, 2)), ("411", "4:1:1", (4, 1))],
)
def test_imagecodecs_440_and_411(subsampling, expected, sampling):
    data = imagecodecs.jpeg8_encode(rgb_pixels(32, 32), level=65, subsampling=subsampling)
    header = parse(bytes(data))
    assert header.subsampling == expected
    assert header.sampling == (sampling, (1, 1), (1, 1))
    assert header.quant_tables[0] == ijg_table(65)


# Hand-built edge cases.


def test_fill_bytes_standalone_markers_and_skipped_segments():
    data = build(
        b"\xff\xff\xff",  # fill bytes before the next marker
        segment(0xE1, b"Exif\x00\x00" + b"\xff" * 100),
        b"\xff\x01",  # TEM, no length
        b"\xff\xd3",  # RST3, no length
        segment(0xFE, b"comment \xff\xd9 that looks like EOI"),
        segment(0xC4, b"\x00" * 17),  # DHT, which lies in the SOF range but is not a frame
        segment(0xDD, b"\x00\x10"),  # DRI
        segment(0xDB, dqt_body(0, [7] * 64)),
    )
    header = parse(data)
    assert header.quant_tables == {0: (7,) * 64}
    assert (header.width, header.height) == (40, 30)


def test_several_tables_in_one_dqt_and_16_bit_precision():
    zigzag = list(range(1000, 1064))
    body = dqt_body(0, [3] * 64) + dqt_body(1, zigzag, sixteen_bit=True) + dqt_body(2, [9] * 64)
    header = parse(build(segment(0xDB, body)))
    assert header.quant_tables[0] == (3,) * 64
    assert header.quant_tables[2] == (9,) * 64
    table = header.quant_tables[1]
    assert all(table[natural] == 1000 + k for k, natural in enumerate(ZIGZAG))


def test_redefined_table_keeps_last_definition():
    header = parse(
        build(segment(0xDB, dqt_body(0, [1] * 64)), segment(0xDB, dqt_body(0, [2] * 64)))
    )
    assert header.quant_tables[0] == (2,) * 64


@pytest.mark.parametrize(
    ("marker", "progressive", "arithmetic"),
    [
        (0xC0, False, False),
        (0xC1, False, False),
        (0xC2, True, False),
        (0xC3, False, False),
        (0xC5, False, False),
        (0xC6, True, False),
        (0xC7, False, False),
        (0xC9, False, True),
        (0xCA, True, True),
        (0xCB, False, True),
        (0xCD, False, True),
        (0xCE, True, True),
        (0xCF, False, True),
    ],
)
def test_every_sof_marker(marker, progressive, arithmetic):
    header = parse(build(segment(0xDB, dqt_body(0, [5] * 64)), sof_marker=marker))
    assert (header.progressive, header.arithmetic) == (progressive, arithmetic)
    assert (header.width, header.height) == (40, 30)


def test_12_bit_precision():
    sof = segment(0xC1, sof_body(8, 8, [(1, 1, 1, 0)], bits=12))
    header = parse(b"\xff\xd8" + sof + SOS)
    assert header.precision == 12
    assert header.mode == "L"


def test_adobe_ycck():
    adobe = segment(0xEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, 2))
    four = [(1, 2, 2, 0), (2, 1, 1, 1), (3, 1, 1, 1), (4, 2, 2, 0)]
    header = parse(build(adobe, components=four))
    assert header.adobe_transform == 2
    assert header.mode == "CMYK"
    assert header.subsampling == "4:2:0"


def test_unnamed_sampling_is_spelled_out():
    odd = [(1, 2, 1, 0), (2, 1, 1, 1), (3, 2, 1, 1)]
    assert parse(build(components=odd)).subsampling == "2x1,1x1,2x1"


def test_segments_across_the_first_read_boundary():
    # The DQT and SOF straddle the parser's first 4 KiB read, after an APP segment of odd size.
    for padding in (4000, 4085, 4090, 4093, 4094, 4095, 4100):
        data = build(segment(0xE0, b"J" * padding), segment(0xDB, dqt_body(0, list(range(64)))))
        header = parse(data)
        assert header.quant_tables[0][ZIGZAG[63]] == 63, padding
        assert header.width == 40, padding


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\xff", "not a JPEG"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "not a JPEG"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "truncated"),
        (b"\xff\xd8" + segment(0xDB, dqt_body(0, [1] * 64)) + SOS, "no frame header"),
        (b"\xff\xd8\xff\xd9", "no frame header"),
        (b"\xff\xd8" + segment(0xDB, b"\x00" + b"\x01" * 10), "too short"),
        (b"\xff\xd8\xff\xc0\x00\x01", "bad length"),
    ],
)
def test_bad_data_raises(data, message):
    with pytest.raises(JpegHeaderError, match=message):
        parse(data)


def test_real_files_cut_short_raise():
    data = pillow_jpeg(quality=90)
    png = io.BytesIO()
    Image.fromarray(rgb_pixels()).save(png, "PNG")
    with pytest.raises(JpegHeaderError, match="truncated"):
        parse(data[:30])
    with pytest.raises(JpegHeaderError, match="not a JPEG"):
        parse(png.getvalue())
    # Cut anywhere before the SOS marker, the header is incomplete.
    sos = data.index(b"\xff\xda")
    for cut in range(2, sos + 2, 7):
        with pytest.raises(JpegHeaderError):
            parse(data[:cut])
    assert isinstance(JpegHeaderError("x"), ValueError)
