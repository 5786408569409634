"""How the audit report groups and orders records: splits, chroma subsampling, values."""

from __future__ import annotations

from sweep.audit.records import FileAudit

SPLITS = ("train", "test")
ALL = "all"
# Ordered from full chroma resolution to none, so the ordinal code means "less chroma".
SUBSAMPLING_ORDER = ("4:4:4", "4:4:0", "4:2:2", "4:2:0", "4:1:1", "grey")
NOT_JPEG = "not JPEG"
UNKNOWN = "other"


def splits_of(records: list[FileAudit]) -> list[str]:
    """Splits present in ``records``: train and test first, any others after, sorted."""
    present = {r.split for r in records}
    return [s for s in SPLITS if s in present] + sorted(present - set(SPLITS))


def is_readable(record: FileAudit) -> bool:
    """Whether the headers gave a usable size (unreadable files have no width/height)."""
    return not record.error and bool(record.width) and bool(record.height)


def subsampling_category(record: FileAudit) -> str:
    """Subsampling for JPEGs, ``NOT_JPEG`` for other formats, ``UNKNOWN`` for odd layouts."""
    if record.format != "jpeg":
        return NOT_JPEG
    if record.jpeg_subsampling in SUBSAMPLING_ORDER:
        return record.jpeg_subsampling
    return UNKNOWN


def subsampling_code(category: str) -> int:
    """Ordinal code: -1 for non-JPEGs (no chroma loss), 0 = 4:4:4 ... 5 = grey, 6 = other."""
    if category == NOT_JPEG:
        return -1
    if category in SUBSAMPLING_ORDER:
        return SUBSAMPLING_ORDER.index(category)
    return len(SUBSAMPLING_ORDER)


def value_key(value: object) -> tuple:
    """Sorts numbers numerically, known subsamplings in chroma order, other text alphabetically."""
    if isinstance(value, bool):
        return (1, int(value), "")
    if isinstance(value, int | float):
        return (0, value, "")
    if value in SUBSAMPLING_ORDER:
        return (2, SUBSAMPLING_ORDER.index(value), "")
    return (3, 0, str(value))
