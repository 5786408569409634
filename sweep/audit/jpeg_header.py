"""Fast JPEG header parser: reads the markers from SOI up to SOS, never the entropy-coded data.

The audit walks whole datasets, so the parser reads the first few KiB of a file in one call and
decodes the segments from that buffer with ``struct.unpack_from``; segments it does not need
(APPn, COM, DHT, DRI, ...) are skipped by their length, and only when a segment runs past the
buffer does it seek or read again. A big EXIF block therefore costs one seek, not a read.
"""

from __future__ import annotations

import struct
import typing
from dataclasses import dataclass
from operator import itemgetter

__all__ = ["JpegHeader", "JpegHeaderError", "parse_jpeg_header"]

# One read covers the whole header of a typical file written by libjpeg (about 600 bytes without
# metadata), so most parses never touch the stream again.
_FIRST_READ = 4096

# Natural (row-major) index of the k-th coefficient in zigzag order (ITU T.81 figure A.6).
_ZIGZAG_TO_NATURAL = (
    0, 1, 8, 16, 9, 2, 3, 10,
    17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34,
    27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36,
    29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46,
    53, 60, 61, 54, 47, 55, 62, 63,
)  # fmt: skip
_NATURAL_TO_ZIGZAG = tuple(sorted(range(64), key=lambda k: _ZIGZAG_TO_NATURAL[k]))
# Picks the 64 zigzag-ordered values of a table in natural order, in C rather than a Python loop.
_to_natural = itemgetter(*_NATURAL_TO_ZIGZAG)

# Start-of-frame markers; 0xC4 (DHT), 0xC8 (JPG) and 0xCC (DAC) share the range but are not frames.
_SOF_MARKERS = frozenset(
    (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)
)
_PROGRESSIVE_SOF = frozenset((0xC2, 0xC6, 0xCA, 0xCE))
_ARITHMETIC_SOF = frozenset((0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))
# Markers without a length field: TEM and RST0-7 (and a repeated SOI, which some writers emit).
_STANDALONE = frozenset((0x01, *range(0xD0, 0xD9)))
_DQT, _SOS, _EOI, _APP14 = 0xDB, 0xDA, 0xD9, 0xEE

_SUBSAMPLING_NAMES = {
    (1, 1): "4:4:4",
    (1, 2): "4:4:0",
    (2, 1): "4:2:2",
    (2, 2): "4:2:0",
    (4, 1): "4:1:1",
}
_MODES = {1: "L", 3: "RGB", 4: "CMYK"}


class JpegHeaderError(ValueError):
    """The data is not a readable JPEG header (truncated, no frame header, or not a JPEG)."""


@dataclass(frozen=True)
class JpegHeader:
    """What a JPEG's marker segments up to the first SOS say about it.

    Attributes:
        width: Samples per line.
        height: Lines; 0 when the file defines it later in a DNL segment.
        precision: Bits per sample (8 or 12; 2-16 for lossless).
        components: Component ids in frame order.
        sampling: (horizontal, vertical) sampling factors per component.
        component_tables: Quantization table id per component.
        progressive: A progressive frame (SOF2, SOF6, SOF10, SOF14).
        arithmetic: Arithmetic rather than Huffman entropy coding.
        quant_tables: Table id -> 64 values in natural (row-major) order; a table redefined
            before the SOS keeps its last definition, as a decoder would use it.
        adobe_transform: The APP14 "Adobe" colour transform (0 none/CMYK, 1 YCbCr, 2 YCCK), or
            None without that segment.
    """

    width: int
    height: int
    precision: int
    components: tuple[int, ...]
    sampling: tuple[tuple[int, int], ...]
    component_tables: tuple[int, ...]
    progressive: bool
    arithmetic: bool
    quant_tables: dict[int, tuple[int, ...]]
    adobe_transform: int | None

    @property
    def subsampling(self) -> str:
        """Chroma subsampling: grey, 4:4:4, 4:4:0, 4:2:2, 4:2:0, 4:1:1, or "HxV,..." text.

        The name comes from the luma sampling factors over the chroma ones; it needs both chroma
        components alike and, with four components, the fourth (K) sampled like luma. Any other
        layout is spelled out per component, e.g. "2x1,1x1,1x1".
        """
        sampling = self.sampling
        if len(sampling) == 1:
            return "grey"
        if len(sampling) in (3, 4) and sampling[1] == sampling[2]:
            (luma_h, luma_v), (chroma_h, chroma_v) = sampling[0], sampling[1]
            if (
                (len(sampling) == 3 or sampling[3] == sampling[0])
                and luma_h % chroma_h == 0
                and luma_v % chroma_v == 0
            ):
                name = _SUBSAMPLING_NAMES.get((luma_h // chroma_h, luma_v // chroma_v))
                if name is not None:
                    return name
        return ",".join(f"{h}x{v}" for h, v in sampling)

    @property
    def mode(self) -> str:
        """Pillow's mode name: L, RGB (YCbCr shows as RGB, as in Pillow), CMYK, or "unknown"."""
        return _MODES.get(len(self.components), "unknown")


def parse_jpeg_header(stream: typing.BinaryIO) -> JpegHeader:
    """Parse the header of the JPEG that starts at the stream's current position.

    Reads from SOI up to the first SOS marker and stops there, before the entropy-coded data.
    Segments that are not needed are skipped with ``stream.seek`` when they run past the bytes
    already read, so large APP1 (EXIF/XMP) blocks are never read. Fill bytes (0xFF padding) before
    a marker, standalone markers (TEM, RST0-7), several tables per DQT segment and 16-bit tables
    are handled.

    Args:
        stream: A binary stream positioned at the SOI marker; it needs ``seek`` with whence 1
            only when a segment extends past the first 4 KiB. It is left somewhere after the
            SOS marker.

    Returns:
        The frame parameters, quantization tables and Adobe transform.

    Raises:
        JpegHeaderError: The data is empty, does not start with SOI, ends before the SOS marker,
            has a malformed segment, or has no frame header (SOF) before SOS or EOI.
    """
    buf = stream.read(_FIRST_READ)
    if not buf:
        raise JpegHeaderError("not a JPEG: the file is empty")
    if buf[:2] != b"\xff\xd8":
        if len(buf) < 2:
            raise JpegHeaderError(f"not a JPEG: only {len(buf)} byte")
        raise JpegHeaderError(f"not a JPEG: starts with {buf[:4].hex()}, not the SOI marker ffd8")

    # `buf` holds the stream's bytes from offset `base` (relative to where the parse began) and
    # the stream sits at `base + len(buf)`; `pos` indexes into `buf`.
    base = 0
    pos = 2
    end = len(buf)

    def refill(start: int, length: int) -> None:
        """Make buf[start - base : start - base + length] available, or raise if it ends first."""
        nonlocal buf, base, end
        have_until = base + end
        if start >= have_until:
            # Skip the gap without reading it: this is where big EXIF blocks are jumped over.
            if start > have_until:
                stream.seek(start - have_until, 1)
            buf = stream.read(max(length, _FIRST_READ))
        else:
            buf = buf[start - base :] + stream.read(max(length - (have_until - start), _FIRST_READ))
        base = start
        end = len(buf)
        if end < length:
            raise JpegHeaderError(f"truncated JPEG: data ends at byte {base + end} in the header")

    frame: tuple | None = None
    quant_tables: dict[int, tuple[int, ...]] = {}
    adobe_transform: int | None = None
    unpack_h = struct.Struct(">H").unpack_from

    while True:
        # Fast path: the previous segment ends right at the next marker, as writers lay it out.
        if pos + 1 < end and buf[pos] == 0xFF and buf[pos + 1] not in (0x00, 0xFF):
            marker = buf[pos + 1]
            pos += 2
        else:
            # A marker is 0xFF, any number of 0xFF fill bytes, then a code byte other than 0x00
            # (0xFF00 is a stuffed byte). Stray bytes before it are skipped, as libjpeg does.
            seen_ff = False
            while True:
                if pos >= end:
                    refill(base + pos, 1)
                    pos = 0
                byte = buf[pos]
                pos += 1
                if byte == 0xFF:
                    seen_ff = True
                elif seen_ff and byte != 0x00:
                    marker = byte
                    break
                else:
                    seen_ff = False

        if marker in _STANDALONE:
            continue
        if marker == _EOI:
            raise JpegHeaderError("no frame header: reached EOI without an SOF marker")
        if marker == _SOS:
            if frame is None:
                raise JpegHeaderError("no frame header: reached SOS without an SOF marker")
            break

        if pos + 2 > end:
            refill(base + pos, 2)
            pos = 0
        (length,) = unpack_h(buf, pos)
        if length < 2:
            raise JpegHeaderError(f"bad length {length} in marker ff{marker:02x} segment")
        body = pos + 2
        pos += length  # the next marker, relative to buf
        needed = marker in _SOF_MARKERS or marker == _DQT or marker == _APP14
        if not needed:
            continue  # the marker search seeks past it when it runs beyond the buffer
        if pos > end:
            refill(base + body, length - 2)
            pos -= body
            body = 0
        if marker == _DQT:
            _parse_dqt(buf, body, pos, quant_tables)
        elif marker == _APP14:
            # "Adobe" + version(2) + flags0(2) + flags1(2) + transform(1).
            if length >= 14 and buf[body : body + 5] == b"Adobe":
                adobe_transform = buf[body + 11]
        else:
            if length < 8:
                raise JpegHeaderError(f"SOF segment of {length} bytes is too short")
            precision = buf[body]
            height, width = struct.unpack_from(">HH", buf, body + 1)
            count = buf[body + 5]
            if count == 0 or length < 8 + 3 * count:
                raise JpegHeaderError(f"SOF segment of {length} bytes for {count} components")
            specs = buf[body + 6 : body + 6 + 3 * count]
            frame = (
                marker,
                precision,
                width,
                height,
                tuple(specs[0::3]),
                tuple((factors >> 4, factors & 0x0F) for factors in specs[1::3]),
                tuple(specs[2::3]),
            )

    marker, precision, width, height, components, sampling, component_tables = frame
    return JpegHeader(
        width=width,
        height=height,
        precision=precision,
        components=components,
        sampling=sampling,
        component_tables=component_tables,
        progressive=marker in _PROGRESSIVE_SOF,
        arithmetic=marker in _ARITHMETIC_SOF,
        quant_tables=quant_tables,
        adobe_transform=adobe_transform,
    )


def _parse_dqt(buf: bytes, pos: int, end: int, tables: dict[int, tuple[int, ...]]) -> None:
    """Decode the tables of one DQT segment body buf[pos:end] into `tables`, in natural order."""
    while pos < end:
        spec = buf[pos]
        precision, table_id = spec >> 4, spec & 0x0F
        pos += 1
        if precision == 0:
            if pos + 64 > end:
                raise JpegHeaderError("DQT segment too short for its 8-bit table")
            tables[table_id] = _to_natural(buf[pos : pos + 64])
            pos += 64
        elif precision == 1:
            if pos + 128 > end:
                raise JpegHeaderError("DQT segment too short for its 16-bit table")
            tables[table_id] = _to_natural(struct.unpack_from(">64H", buf, pos))
            pos += 128
        else:
            raise JpegHeaderError(f"DQT table precision {precision} is neither 0 nor 1")
