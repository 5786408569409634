"""Image formats told by their first bytes, whatever a file's name says."""

from __future__ import annotations

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
    """The format of a file from its first 32 bytes."""
    with open(path, "rb") as stream:
        return sniff_format(stream.read(32))
