"""IJG quality estimation: libjpeg's scaled tables, encoder round trips, near misses."""

from __future__ import annotations

import io

import imagecodecs
import numpy as np
import pytest
from PIL import Image

from sweep.audit.jpeg_header import parse_jpeg_header
from sweep.audit.quality import (
    STD_CHROMINANCE,
    STD_LUMINANCE,
    QualityEstimate,
    estimate_quality,
    ijg_table,
)

RGB = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)


def encode(image: Image.Image, **save_args) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", **save_args)
    return buf.getvalue()


def estimate_file(data: bytes) -> tuple[QualityEstimate, str]:
    header = parse_jpeg_header(io.BytesIO(data))
    tables = [header.quant_tables[t] for t in header.component_tables[:2]]
    return estimate_quality(*tables), header.subsampling


def test_ijg_table_values():
    # Quality 50 is Annex K itself (scale 100); libjpeg's own numbers elsewhere.
    assert ijg_table(50) == STD_LUMINANCE
    assert ijg_table(50, chroma=True) == STD_CHROMINANCE
    assert STD_LUMINANCE[:8] == (16, 11, 10, 16, 24, 40, 51, 61)
    assert STD_CHROMINANCE[:8] == (17, 18, 24, 47, 99, 99, 99, 99)
    assert ijg_table(100) == (1,) * 64
    assert ijg_table(1) == (255,) * 64
    assert ijg_table(1, force_baseline=False)[:3] == (800, 550, 500)  # scale 5000
    assert ijg_table(75)[:3] == (8, 6, 5)  # scale 50: (16 x 50 + 50) // 100 = 8
    assert ijg_table(10)[:3] == (80, 55, 50)  # scale 500
    assert ijg_table(99)[0] == 1  # (16 x 2 + 50) // 100 = 0, raised to 1
    assert max(ijg_table(3, chroma=True, force_baseline=False)) == 1649  # (99 x 1666 + 50) // 100
    with pytest.raises(ValueError):
        ijg_table(0)
    with pytest.raises(ValueError):
        ijg_table(101)


def test_every_quality_has_its_own_luma_table():
    assert len({ijg_table(q) for q in range(1, 101)}) == 100


@pytest.mark.parametrize(("subsampling", "name"), [(0, "4:4:4"), (1, "4:2:2"), (2, "4:2:0")])
def test_pillow_every_quality_round_trips(subsampling, name):
    image = Image.fromarray(RGB)
    for quality in range(1, 101):
        estimate, found = estimate_file(encode(image, quality=quality, subsampling=subsampling))
        assert estimate == QualityEstimate(quality, True, 0.0), quality
        assert found == name


@pytest.mark.parametrize("quality", [1, 7, 30, 50, 64, 90, 99, 100])
def test_pillow_greyscale_round_trips(quality):
    data = encode(Image.fromarray(RGB[..., 1]), quality=quality)
    header = parse_jpeg_header(io.BytesIO(data))
    assert len(header.quant_tables) == 1
    estimate = estimate_quality(header.quant_tables[0])
    assert estimate == QualityEstimate(quality, True, 0.0)


@pytest.mark.parametrize(("subsampling", "name"), [("440", "4:4:0"), ("411", "4:1:1")])
@pytest.mark.parametrize("quality", [5, 48, 77, 100])
def test_imagecodecs_round_trips(subsampling, name, quality):
    data = bytes(imagecodecs.jpeg8_encode(RGB, level=quality, subsampling=subsampling))
    estimate, found = estimate_file(data)
    assert estimate == QualityEstimate(quality, True, 0.0)
    assert found == name


def test_custom_tables_give_nearest_quality():
    luma = [min(v + 1, 255) for v in ijg_table(60)]  # every luma value one off quality 60
    chroma = list(ijg_table(60, chroma=True))
    data = encode(Image.fromarray(RGB), qtables=[luma, chroma])
    header = parse_jpeg_header(io.BytesIO(data))
    assert header.quant_tables[0] == tuple(luma)  # Pillow takes qtables in natural order too
    estimate, _ = estimate_file(data)
    assert estimate.quality == 60
    assert not estimate.exact
    assert estimate.distance == pytest.approx(64 / 128)


def brute_force_nearest(luma, chroma=None) -> tuple[int, float]:
    """Quality with the least mean absolute difference, first on ties, in plain Python."""
    best = None
    for quality in range(1, 101):
        pairs = list(zip(luma, ijg_table(quality), strict=True))
        if chroma is not None:
            pairs += zip(chroma, ijg_table(quality, chroma=True), strict=True)
        distance = sum(abs(a - b) for a, b in pairs) / len(pairs)
        if best is None or distance < best[1]:
            best = (quality, distance)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_nearest_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    luma = rng.integers(1, 120, 64).tolist()
    chroma = rng.integers(1, 200, 64).tolist()
    for args in ((luma,), (luma, chroma)):
        estimate = estimate_quality(*args)
        quality, distance = brute_force_nearest(*args)
        assert (estimate.quality, estimate.exact) == (quality, False)
        assert estimate.distance == pytest.approx(distance)
        assert estimate.distance > 0


def test_flat_table_is_not_exact():
    estimate = estimate_quality([50] * 64, [50] * 64)
    assert not estimate.exact and estimate.distance > 0
    assert (estimate.quality, estimate.distance) == pytest.approx(
        brute_force_nearest([50] * 64, [50] * 64)
    )


def test_exact_needs_both_tables():
    # The luma table of quality 40 with the chroma table of quality 41 is not exactly either.
    estimate = estimate_quality(ijg_table(40), ijg_table(41, chroma=True))
    assert not estimate.exact and estimate.quality in (40, 41) and estimate.distance > 0
    assert estimate_quality(ijg_table(40)).exact


def test_accepts_lists_and_numpy_arrays():
    table = np.array(ijg_table(83), dtype=np.uint16)
    assert estimate_quality(table) == QualityEstimate(83, True, 0.0)
    assert estimate_quality(list(ijg_table(12)), list(ijg_table(12, True))).quality == 12


def test_wrong_table_length_raises():
    with pytest.raises(ValueError, match="64"):
        estimate_quality([1] * 63)
    with pytest.raises(ValueError, match="64"):
        estimate_quality([1] * 64, [1] * 65)
