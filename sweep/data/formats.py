"""Image formats told by their first bytes, whatever a file's name says."""

from __future__ import annotations

from sweep.store.locations import member, read_location
from sweep.store.objects import is_url

# How many first bytes tell a format.
HEAD_BYTES = 32
# (magic prefix, offset, format); checked in order.
MAGIC = (
    (b"\xff\xd8\xff", 0, "jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"GIF8", 0, "gif"),
    (b"BM", 0, "bmp"),
    (b"II*\x00", 0, "tiff"),
    (b"MM\x00*", 0, "tiff"),
    (b"\xff\x0a", 0, "jxl"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", 0, "jxl"),
)
EXTENSION_FORMAT = {
    "jpg": "jpeg",
    "jpeg": "jpeg",
    "jpe": "jpeg",
    "jfif": "jpeg",
    "png": "png",
    "gif": "gif",
    "bmp": "bmp",
    "tif": "tiff",
    "tiff": "tiff",
    "webp": "webp",
    "jxl": "jxl",
    "avif": "avif",
    "heic": "heif",
    "heif": "heif",
}


def sniff_format(head: bytes) -> str:
    """The format named by a file's first bytes (RIFF and ISO-BMFF containers included)."""
    for magic, offset, name in MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "avif" if brand in (b"avif", b"avis") else "heif"
    return "unknown"


def sniff_file(path) -> str:
    """The format of a file (or of an object, by its URL) from its first 32 bytes."""
    if is_url(path):
        try:
            head = read_location(member(str(path), 0, HEAD_BYTES))  # one ranged GET
        except OSError:  # an empty object has no first byte to ask a range of
            head = read_location(str(path))[:HEAD_BYTES]
        return sniff_format(head)
    with open(path, "rb") as stream:
        return sniff_format(stream.read(HEAD_BYTES))


def has_jpeg_reconstruction(data: bytes) -> bool:
    """Whether JPEG XL data carries a "jbrd" box, the data that rebuilds a transcoded JPEG.

    Walks the top-level boxes of the container (ISO BMFF: 32-bit size, type, a 64-bit size
    when the size is 1, to the end when it is 0); a bare codestream has no boxes.
    """
    offset = 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        if kind == b"jbrd":
            return True
        if size == 1:
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        if size == 0 or size < 8:
            return False
        offset += size
    return False
