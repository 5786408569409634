"""The bad-image policy: every image is decoded once before a sweep; the verdict is the same
for every codec setting, so every cell of the grid sees exactly the same images.

* Readable oddities are kept, converted to the pixels the sweep uses, and counted by kind:
  content that is not what the extension says, CMYK, greyscale, 16-bit, palette, alpha, EXIF
  orientation (applied), tiny images, extreme aspect ratios, progressive JPEGs.
* Unreadable files are quarantined with their reason: empty, truncated or corrupt, not an image,
  over Pillow's decompression-bomb limit, not readable by this user.

A file on an object store (a URL) is fetched once and judged from its bytes, by the same rules.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import imagecodecs
from PIL import Image, UnidentifiedImageError

from sweep.data.formats import EXTENSION_FORMAT, sniff_format
from sweep.data.pixels import decode_bytes, read_pixels
from sweep.store.locations import read_location
from sweep.store.objects import is_url

# Bump when the verdict for some file could change: validations are cached under this.
POLICY_VERSION = 1
OK, CONVERTED, QUARANTINED = "ok", "converted", "quarantined"
TINY_SIDE = 32
EXTREME_ASPECT = 8.0
MODE_KINDS = {
    "CMYK": "cmyk",
    "L": "grayscale",
    "1": "bilevel",
    "P": "palette",
    "PA": "alpha",
    "RGBA": "alpha",
    "LA": "alpha",
    "La": "alpha",
    "RGBa": "alpha",
    "I": "16bit",
    "I;16": "16bit",
    "I;16B": "16bit",
    "I;16L": "16bit",
    "YCbCr": "ycbcr",
    "LAB": "lab",
    "HSV": "hsv",
    "F": "float",
}


def decoder_identity() -> dict:
    """What else decides a verdict: the decoders' versions and Pillow's pixel limit."""
    return {
        "policy": POLICY_VERSION,
        "pillow": Image.__version__,
        "imagecodecs": imagecodecs.__version__,
        "max_image_pixels": Image.MAX_IMAGE_PIXELS,
    }


def verdict(status: str, kinds: list[str] | None = None, reason: str | None = None) -> dict:
    return {"status": status, "kinds": kinds or [], "reason": reason}


def inspect_image(path: Path | str) -> dict:
    """Decodes one file and returns its verdict: status, the oddities found, or why it is out.

    Args:
        path: A local file, or an object's URL (read once, through `read_location`; an error
            of the store other than a refused permission is raised, not taken for the file's).
    """
    if not is_url(path):
        return judged(lambda: examined_file(Path(path)))
    try:
        data = read_location(str(path))
    except PermissionError:
        return verdict(QUARANTINED, reason="not readable (permission denied)")
    return judged(lambda: examined_bytes(PurePosixPath(str(path)).suffix, data))


def examined_file(path: Path) -> dict:
    """The verdict of a local file, read from the disk (errors raised to `judged`)."""
    if path.stat().st_size == 0:
        return verdict(QUARANTINED, reason="empty file")
    with open(path, "rb") as stream:
        true_format = sniff_format(stream.read(32))
    kinds = oddities(path, true_format)
    with warnings.catch_warnings():
        # Between the limit and twice the limit Pillow only warns; both are out.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        read_pixels(path)
    return verdict(CONVERTED if kinds else OK, kinds)


def examined_bytes(suffix: str, data: bytes) -> dict:
    """The verdict of a file's bytes (an object's), named with `suffix` (errors raised to
    `judged`)."""
    if not data:
        return verdict(QUARANTINED, reason="empty file")
    true_format = sniff_format(data[:32])
    kinds = oddities(Path(f"object{suffix}"), true_format, io.BytesIO(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        decode_bytes(data)
    return verdict(CONVERTED if kinds else OK, kinds)


def judged(examine: Callable[[], dict]) -> dict:
    """The verdict `examine` gives, or the quarantine its decoding error calls for."""
    try:
        return examine()
    except PermissionError:
        return verdict(QUARANTINED, reason="not readable (permission denied)")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        return verdict(QUARANTINED, reason=f"decompression bomb: {error}")
    except UnidentifiedImageError:
        return verdict(QUARANTINED, reason="not an image")
    except OSError as error:
        if error.errno is not None:
            # An I/O failure of the machine (EIO, ESTALE, EMFILE, ...) says nothing about the
            # file: fail the task (the sweep names the file) rather than cache a quarantine.
            raise
        return verdict(QUARANTINED, reason=f"truncated or corrupt: {error}")
    except (SyntaxError, ValueError, RuntimeError) as error:
        return verdict(QUARANTINED, reason=f"truncated or corrupt: {error}")


def oddities(path: Path, true_format: str, content: io.BytesIO | None = None) -> list[str]:
    """What is unusual about a readable file, from its header (Pillow opens lazily).

    Args:
        path: The file (its extension names the format it claims).
        true_format: The format its first bytes show.
        content: The file's bytes, when they are not read from `path` (an object's).
    """
    kinds = []
    expected = EXTENSION_FORMAT.get(path.suffix.lower().lstrip("."))
    if expected is not None and expected != true_format:
        kinds.append("format_mismatch")
    if true_format == "jxl":
        return kinds
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path if content is None else content) as image:
            if image.mode in MODE_KINDS:
                kinds.append(MODE_KINDS[image.mode])
            if image.info.get("transparency") is not None and "alpha" not in kinds:
                kinds.append("alpha")
            # Orientations 2-8 transpose the image; 1 and malformed values change nothing.
            if image.getexif().get(0x0112, 1) in range(2, 9):
                kinds.append("exif_orientation")
            if image.info.get("progressive") or image.info.get("progression"):
                kinds.append("progressive")
            short, long = sorted(image.size)
    if short < TINY_SIDE:
        kinds.append("tiny")
    if short and long / short > EXTREME_ASPECT:
        kinds.append("extreme_aspect")
    return kinds
