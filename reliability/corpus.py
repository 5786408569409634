"""A small imagefolder dataset with one file of every kind of bad image a real dataset holds.

    <root>/train/<class>/*   10 ordinary images per class, plus bad files
    <root>/test/<class>/*    4 ordinary images per class, plus bad files

The ordinary images are 64x64 JPEGs whose dominant colour is their class, with noise, so that a
tiny model learns them in a few epochs. The bad files are of two sorts:

* converted: readable oddities (a PNG named .JPEG, CMYK, greyscale, 16-bit, palette, alpha, an
  EXIF rotation, tiny or very elongated images, progressive JPEG, bytes before the end marker).
  A sweep keeps them, converting their pixels.
* quarantined: files no decoder can read (empty, truncated, text, a decompression bomb, no read
  permission). A sweep leaves them out of every cell.

Everything is derived from fixed seeds, so two writes give byte-identical files.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("blue", "green", "red")
# Channel that dominates each class's images (RGB order).
CLASS_CHANNEL = {"red": 0, "green": 1, "blue": 2}
TRAIN_PER_CLASS = 10
TEST_PER_CLASS = 4
SIZE = 64
CONVERTED = "converted"
QUARANTINED = "quarantined"
# Readable and needing no conversion, but odd: libjpeg skips extraneous bytes before the end
# marker with a warning that neither Pillow nor imagecodecs surfaces, so the sweep keeps such a
# file as an ordinary one (it decodes to the right pixels).
KEPT = "kept"

# Pillow refuses images above twice Image.MAX_IMAGE_PIXELS (about 179 Mpx) before decoding:
# 30000 x 30000 = 900 Mpx is a bomb whatever the limit's exact value.
BOMB_SIDE = 30000


def class_pixels(name: str, seed: int, width: int = SIZE, height: int = SIZE) -> np.ndarray:
    """RGB pixels whose dominant channel is the class's, with noise so they compress."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 70, (height, width, 3), dtype=np.uint8)
    pixels[..., CLASS_CHANNEL[name]] += 150
    return pixels


def jpeg_bytes(image: Image.Image, **options: object) -> bytes:
    stream = io.BytesIO()
    image.save(stream, format="JPEG", quality=90, **options)
    return stream.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    stream = io.BytesIO()
    image.save(stream, format="PNG")
    return stream.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data and the CRC of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png() -> bytes:
    """A small, well-formed PNG whose header declares 30000 x 30000 RGB pixels.

    Only a signature, the IHDR, a tiny IDAT (one compressed empty row) and IEND: a few dozen
    bytes that would decode to 2.7 GB, the shape of a decompression-bomb attack.
    """
    header = struct.pack(">IIBBBBB", BOMB_SIDE, BOMB_SIDE, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * (1 + 3 * 4)))
        + png_chunk(b"IEND", b"")
    )


def with_trailing_bytes(data: bytes) -> bytes:
    """Inserts garbage just before the final FFD9 marker of a valid JPEG.

    Decoders warn about "extraneous bytes before marker 0xd9" and decode the image. The garbage
    holds no 0xFF byte, so it cannot be read as a marker.
    """
    assert data.endswith(b"\xff\xd9")
    garbage = bytes(range(16)) * 8
    return data[:-2] + garbage + data[-2:]


def exif_rotated_jpeg(name: str, seed: int) -> bytes:
    """A 64x48 JPEG with EXIF Orientation=6 (rotate 90 degrees clockwise to display)."""
    image = Image.fromarray(class_pixels(name, seed, width=64, height=48))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    return jpeg_bytes(image, exif=exif.tobytes())


def bad_files(unreadable: bool) -> list[tuple[str, str, Callable[[], bytes]]]:
    """(relpath, expected, writer) of each bad file; expected is '<sort>:<kind>'.

    Args:
        unreadable: Whether to include the file without read permission.
    """

    def rgb(name: str, seed: int, width: int = SIZE, height: int = SIZE) -> Image.Image:
        return Image.fromarray(class_pixels(name, seed, width, height))

    def grey16(name: str, seed: int) -> bytes:
        # 16-bit samples over the full range, brighter for higher class indices.
        rng = np.random.default_rng(seed)
        base = 20000 * CLASSES.index(name)
        samples = base + rng.integers(0, 20000, (SIZE, SIZE))
        return png_bytes(Image.fromarray(samples.astype(np.uint16)))

    def rgba(name: str, seed: int) -> bytes:
        pixels = class_pixels(name, seed)
        alpha = np.full((SIZE, SIZE, 1), 255, dtype=np.uint8)
        alpha[: SIZE // 4] = 0  # a transparent band: alpha must be dropped, not composited
        return png_bytes(Image.fromarray(np.concatenate([pixels, alpha], axis=2), "RGBA"))

    def truncated() -> bytes:
        data = jpeg_bytes(rgb("red", 9102))
        return data[: int(len(data) * 0.6)]

    files: list[tuple[str, str, Callable[[], bytes]]] = [
        # Readable oddities, half in train and half in test.
        ("train/red/format_mismatch.JPEG", "format_mismatch", lambda: png_bytes(rgb("red", 9001))),
        ("train/green/cmyk.jpg", "cmyk", lambda: jpeg_bytes(rgb("green", 9002).convert("CMYK"))),
        (
            "train/blue/grayscale.jpg",
            "grayscale",
            lambda: jpeg_bytes(rgb("blue", 9003).convert("L")),
        ),
        ("test/red/16bit.png", "16bit", lambda: grey16("red", 9004)),
        (
            "train/red/palette.png",
            "palette",
            lambda: png_bytes(rgb("red", 9005).convert("P", palette=Image.Palette.ADAPTIVE)),
        ),
        ("test/green/alpha.png", "alpha", lambda: rgba("green", 9006)),
        (
            "train/green/exif_orientation.jpg",
            "exif_orientation",
            lambda: exif_rotated_jpeg("green", 9007),
        ),
        ("train/blue/tiny_1x1.jpg", "tiny", lambda: jpeg_bytes(rgb("blue", 9008, 1, 1))),
        ("test/blue/tiny_20x17.jpg", "tiny", lambda: jpeg_bytes(rgb("blue", 9009, 20, 17))),
        (
            "test/red/extreme_aspect.jpg",
            "extreme_aspect",
            lambda: jpeg_bytes(rgb("red", 9010, 500, 32)),
        ),
        (
            "train/red/progressive.jpg",
            "progressive",
            lambda: jpeg_bytes(rgb("red", 9011), progressive=True),
        ),
    ]
    files = [(path, f"{CONVERTED}:{kind}", write) for path, kind, write in files]
    files.append(
        (
            "test/green/trailing_bytes.jpg",
            f"{KEPT}:trailing_bytes",
            lambda: with_trailing_bytes(jpeg_bytes(rgb("green", 9012))),
        )
    )
    quarantined: list[tuple[str, str, Callable[[], bytes]]] = [
        ("train/green/empty.jpg", "empty", lambda: b""),
        ("test/red/truncated.jpg", "truncated", truncated),
        ("train/blue/not_an_image.jpg", "not_an_image", lambda: b"this is not an image\n" * 4),
        ("test/blue/decompression_bomb.png", "decompression_bomb", bomb_png),
    ]
    if unreadable:
        quarantined.append(
            ("train/red/unreadable.jpg", "unreadable", lambda: jpeg_bytes(rgb("red", 9013)))
        )
    return files + [(path, f"{QUARANTINED}:{kind}", write) for path, kind, write in quarantined]


def can_make_unreadable() -> bool:
    """Whether a chmod 000 file is unreadable here: root reads it regardless of permissions."""
    return hasattr(os, "geteuid") and os.geteuid() != 0


def bad_kinds() -> list[str]:
    """Every kind of bad file the corpus can hold, converted ones first."""
    kinds = [expected.split(":", 1)[1] for _, expected, _ in bad_files(unreadable=True)]
    return list(dict.fromkeys(kinds))


def write_corpus(root: Path, bad: bool = True) -> dict[str, str]:
    """Writes the imagefolder dataset under root; returns {relpath: expected} of its bad files.

    Args:
        root: Folder to write train/ and test/ into (created; existing files are overwritten).
        bad: Whether to add the bad files; without them the dataset holds ordinary images only.

    Returns:
        For each bad file, its path relative to root and "converted:<kind>" or
        "quarantined:<kind>". The unreadable file is only written when the current user is not
        root (root reads any file, so chmod 000 would not make it unreadable).
    """
    root = Path(root)
    for label, name in enumerate(CLASSES):
        for split, count, offset in (("train", TRAIN_PER_CLASS, 0), ("test", TEST_PER_CLASS, 500)):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                pixels = class_pixels(name, 1000 * label + offset + index)
                (folder / f"{index:03d}.jpg").write_bytes(jpeg_bytes(Image.fromarray(pixels)))
    expected: dict[str, str] = {}
    if not bad:
        return expected
    for relpath, outcome, write in bad_files(unreadable=can_make_unreadable()):
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.chmod(0o644)  # an earlier write's unreadable file
        path.write_bytes(write())
        if outcome.endswith(":unreadable"):
            path.chmod(0o000)
        expected[relpath] = outcome
    return expected
