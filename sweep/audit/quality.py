"""IJG (libjpeg) quality estimation from a JPEG's quantization tables.

libjpeg, and every encoder built on it (Pillow, OpenCV, imagecodecs, ImageMagick), derives its
tables by scaling the JPEG Annex K example tables by a factor of the quality setting. Scaling them
for each quality 1-100 and comparing recovers the setting exactly for such files, and gives the
nearest quality for files from encoders with tables of their own (cameras, Photoshop, mozjpeg).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "STD_CHROMINANCE",
    "STD_LUMINANCE",
    "QualityEstimate",
    "estimate_quality",
    "ijg_table",
]

# ITU T.81 Annex K tables K.1 and K.2 (libjpeg's std_luminance_quant_tbl and
# std_chrominance_quant_tbl), in natural (row-major) order.
STD_LUMINANCE: tuple[int, ...] = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
STD_CHROMINANCE: tuple[int, ...] = (
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
)  # fmt: skip


def ijg_table(quality: int, chroma: bool = False, force_baseline: bool = True) -> tuple[int, ...]:
    """The table libjpeg's ``jpeg_set_quality`` writes for a quality, in natural order.

    Follows ``jpeg_quality_scaling`` and ``jpeg_add_quant_table``: the scale is 5000 / quality
    below 50 and 200 - 2 x quality from 50 up, each value is (std x scale + 50) // 100 clamped to
    [1, 32767], and to 255 with ``force_baseline`` (what ``jpeg_set_quality(..., TRUE)`` asks for,
    as Pillow and most tools do).

    Args:
        quality: IJG quality, 1-100.
        chroma: The chrominance table instead of the luminance one.
        force_baseline: Clamp the values to 255 so they fit 8-bit (baseline) tables.

    Returns:
        The 64 quantization values in natural order.

    Raises:
        ValueError: The quality is outside 1-100.
    """
    if not 1 <= quality <= 100:
        # libjpeg clamps silently; a caller asking for quality 0 or 101 more likely has a bug.
        raise ValueError(f"IJG quality must be 1-100, got {quality}")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    ceiling = 255 if force_baseline else 32767
    std = STD_CHROMINANCE if chroma else STD_LUMINANCE
    return tuple(min(max((value * scale + 50) // 100, 1), ceiling) for value in std)


@dataclass(frozen=True)
class QualityEstimate:
    """The IJG quality whose tables come closest to a file's.

    Attributes:
        quality: IJG quality, 1-100.
        exact: Every table given equals the scaled standard table of that quality.
        distance: Mean absolute difference per coefficient to that quality's tables, over all
            tables given (0 when exact).
    """

    quality: int
    exact: bool
    distance: float


_QUALITIES = range(1, 101)
# Row q - 1 holds quality q's table; int32 so differences of 16-bit tables cannot wrap.
_LUMA_TABLES = np.array([ijg_table(q) for q in _QUALITIES], dtype=np.int32)
_CHROMA_TABLES = np.array([ijg_table(q, chroma=True) for q in _QUALITIES], dtype=np.int32)
# Luma then chroma per row: one array operation compares both tables, or the luma columns alone.
_TABLES = np.concatenate([_LUMA_TABLES, _CHROMA_TABLES], axis=1)
# Exact matches, the common case for datasets written by libjpeg, cost one dict lookup. Every
# quality's luma table differs from every other's (tests/audit/test_quality.py checks it), so the
# luma table alone identifies a quality; chroma tables would not (qualities 1-3 are all 255).
_EXACT_LUMA = {tuple(row): q for q, row in zip(_QUALITIES, _LUMA_TABLES.tolist(), strict=True)}
_EXACT_BOTH = {
    (tuple(luma), tuple(chroma)): q
    for q, luma, chroma in zip(
        _QUALITIES, _LUMA_TABLES.tolist(), _CHROMA_TABLES.tolist(), strict=True
    )
}


def estimate_quality(luma: Sequence[int], chroma: Sequence[int] | None = None) -> QualityEstimate:
    """Estimate the IJG quality a file's quantization tables were made with.

    Args:
        luma: The luminance table (the first component's), 64 values in natural order.
        chroma: The chrominance table (the second component's) in natural order, or None for
            greyscale files or when only the luma table should count.

    Returns:
        The quality whose standard tables equal the given ones (exact), or otherwise the quality
        with the smallest mean absolute difference over all given coefficients; ties go to the
        lower quality.

    Raises:
        ValueError: A table does not have 64 values.
    """
    luma = tuple(luma)
    if len(luma) != 64:
        raise ValueError(f"a quantization table has 64 values, the luma one has {len(luma)}")
    if chroma is None:
        quality = _EXACT_LUMA.get(luma)
    else:
        chroma = tuple(chroma)
        if len(chroma) != 64:
            raise ValueError(
                f"a quantization table has 64 values, the chroma one has {len(chroma)}"
            )
        quality = _EXACT_BOTH.get((luma, chroma))
    if quality is not None:
        return QualityEstimate(quality=quality, exact=True, distance=0.0)

    # Sum of absolute differences per quality, over the luma columns or both tables.
    given = luma if chroma is None else luma + chroma
    differences = _TABLES[:, : len(given)] - np.array(given, dtype=np.int32)
    np.abs(differences, out=differences)
    errors = differences.sum(axis=1)
    count = len(given)
    best = int(errors.argmin())  # the first minimum, so the lower quality on a tie
    return QualityEstimate(quality=best + 1, exact=False, distance=float(errors[best]) / count)
