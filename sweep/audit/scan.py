"""Reads the headers of every image file of a dataset, on all cores, without decoding pixels.

The true format comes from the magic bytes; JPEG headers are parsed by our own reader (it stops
at the first scan, so the entropy-coded data is never read); other formats go through Pillow,
whose `Image.open` reads the header only.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import imagecodecs
from PIL import Image, UnidentifiedImageError

from sweep.audit.jpeg_header import JpegHeaderError, parse_jpeg_header
from sweep.audit.quality import estimate_quality
from sweep.audit.records import FileAudit
from sweep.data.formats import EXTENSION_FORMAT, sniff_format

CHANNELS = {
    "1": 1,
    "L": 1,
    "P": 1,
    "I": 1,
    "F": 1,
    "LA": 2,
    "RGB": 3,
    "YCbCr": 3,
    "LAB": 3,
    "HSV": 3,
    "RGBA": 4,
    "CMYK": 4,
}
# Most files per task of the process pool, and the fewest worth starting a pool for.
CHUNK = 2000
SMALL = 512


def audit_file(root: Path, split: str, relpath: str) -> FileAudit:
    """Everything the headers of one file say; an unreadable file gets `error` set."""
    path = root / relpath
    extension = path.suffix.lower().lstrip(".")
    record = FileAudit(split, relpath, "unknown", extension, False, 0)
    try:
        with open(path, "rb") as stream:
            record.file_bytes = os.fstat(stream.fileno()).st_size
            head = stream.read(32)
            record.format = sniff_format(head)
            expected = EXTENSION_FORMAT.get(extension)
            record.format_mismatch = expected is not None and expected != record.format
            if record.file_bytes == 0:
                record.error = "empty file"
                return record
            stream.seek(0)
            if record.format == "jpeg":
                read_jpeg(stream, record)
            elif record.format == "jxl":
                read_jxl(stream, record)
            else:
                read_with_pillow(stream, record)
    except (
        OSError,
        JpegHeaderError,
        UnidentifiedImageError,
        Image.DecompressionBombError,
        SyntaxError,
        ValueError,
    ) as error:
        record.error = f"{type(error).__name__}: {error}"
        return record
    if record.width and record.height:
        record.bits_per_pixel = 8 * record.file_bytes / (record.width * record.height)
    return record


def read_jpeg(stream, record: FileAudit) -> None:
    header = parse_jpeg_header(stream)
    record.width, record.height = header.width, header.height
    record.mode, record.channels = header.mode, len(header.components)
    record.jpeg_subsampling = header.subsampling
    record.jpeg_progressive = header.progressive
    tables = header.quant_tables
    record.jpeg_qtables = ";".join(
        f"{table_id}:{' '.join(map(str, values))}" for table_id, values in sorted(tables.items())
    )
    luma_id = header.component_tables[0]
    chroma_id = header.component_tables[1] if len(header.component_tables) > 1 else None
    if luma_id in tables and (chroma_id is None or chroma_id in tables):
        estimate = estimate_quality(
            tables[luma_id], tables[chroma_id] if chroma_id is not None else None
        )
        record.jpeg_quality = estimate.quality
        record.jpeg_quality_exact = estimate.exact
        record.jpeg_quality_distance = estimate.distance


def read_jxl(stream, record: FileAudit) -> None:
    """JPEG XL has no header reader here (Pillow needs a plugin): decoded with libjxl."""
    pixels = imagecodecs.jpegxl_decode(stream.read())
    record.height, record.width = pixels.shape[:2]
    record.channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    record.mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}.get(record.channels, "unknown")


def read_with_pillow(stream, record: FileAudit) -> None:
    with Image.open(stream) as image:  # lazy: reads the header, not the pixels
        record.width, record.height = image.size
        record.mode = image.mode
        record.channels = CHANNELS.get(image.mode, len(image.getbands()))
        if record.format == "unknown" and image.format:
            record.format = image.format.lower()


def audit_files(
    root: Path, files: list[tuple[str, str]], workers: int | None = None
) -> list[FileAudit]:
    """Audits (split, relpath) pairs under root on `workers` processes (all cores by default).

    Results keep the input order. Small datasets stay in this process: starting a pool would
    cost more than reading their headers.
    """
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(files) < SMALL:
        return _audit_pairs(root, files)
    chunk = min(CHUNK, len(files) // (4 * workers) + 1)
    chunks = [files[start : start + chunk] for start in range(0, len(files), chunk)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_audit_pairs, root, part) for part in chunks]
        return [record for future in futures for record in future.result()]


def _audit_pairs(root: Path, pairs: list[tuple[str, str]]) -> list[FileAudit]:
    return [audit_file(root, split, relpath) for split, relpath in pairs]
