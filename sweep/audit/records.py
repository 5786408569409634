"""What the audit records per file, and which records are anomalies."""

from __future__ import annotations

from dataclasses import dataclass, fields

# Thresholds of the anomaly list.
LOW_QUALITY = 10
SHORT_SIDE = 32
EXTREME_ASPECT = 8.0


@dataclass
class FileAudit:
    """One image file as its headers describe it (no pixels decoded).

    Attributes:
        split: "train" or "test".
        path: Path relative to the dataset root.
        format: True format from the magic bytes: jpeg, png, gif, bmp, webp, tiff, jxl, avif,
            heif, or unknown.
        extension: File extension, lower case, without the dot.
        format_mismatch: The extension names another format than the content.
        width, height: Pixels; None when unreadable.
        mode: Colour mode (Pillow's names: L, RGB, CMYK, YCbCr, P, RGBA, ...).
        channels: Colour channels.
        file_bytes: Size on disk.
        bits_per_pixel: 8 x file_bytes / (width x height).
        jpeg_subsampling: 4:4:4, 4:4:0, 4:2:2, 4:2:0, 4:1:1, grey, or "HxV" text otherwise.
        jpeg_progressive: Progressive (True) or sequential (False) JPEG.
        jpeg_quality: Estimated IJG quality 1-100 (the nearest one when not exact).
        jpeg_quality_exact: The tables are exactly libjpeg's scaled standard tables.
        jpeg_quality_distance: Mean absolute difference to the nearest quality's tables.
        jpeg_qtables: Quantization tables, "id:v0 v1 ... v63" in natural order, ";"-joined.
        error: Why the file is unreadable; None when it was read.
    """

    split: str
    path: str
    format: str
    extension: str
    format_mismatch: bool
    file_bytes: int
    width: int | None = None
    height: int | None = None
    mode: str | None = None
    channels: int | None = None
    bits_per_pixel: float | None = None
    jpeg_subsampling: str | None = None
    jpeg_progressive: bool | None = None
    jpeg_quality: int | None = None
    jpeg_quality_exact: bool | None = None
    jpeg_quality_distance: float | None = None
    jpeg_qtables: str | None = None
    error: str | None = None


AUDIT_COLUMNS = [field.name for field in fields(FileAudit)]


def anomalies(record: FileAudit) -> list[str]:
    """The reasons a file stands out; empty for an ordinary file."""
    if record.error:
        return [f"unreadable: {record.error}"]
    reasons = []
    if record.format_mismatch:
        reasons.append(f"misnamed format: {record.format} content in a .{record.extension} file")
    if record.jpeg_quality is not None and record.jpeg_quality < LOW_QUALITY:
        reasons.append(f"JPEG quality {record.jpeg_quality} below {LOW_QUALITY}")
    if record.jpeg_subsampling == "4:1:1":
        reasons.append("4:1:1 chroma subsampling")
    if record.width and record.height:
        short, long = sorted((record.width, record.height))
        if short < SHORT_SIDE:
            reasons.append(f"shorter side {short} px under {SHORT_SIDE}")
        if long / short > EXTREME_ASPECT:
            reasons.append(f"aspect ratio {long / short:.1f}:1 beyond {EXTREME_ASPECT:g}:1")
    return reasons
