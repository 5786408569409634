"""Distortion measures on known cases: identical images, a known perturbation, distance."""

from __future__ import annotations

import math

import imagecodecs
import numpy as np
import pytest

from sweep.distortion import (
    DistortionOptions,
    Measurement,
    identical_values,
    measure_image,
    resolve_measurement,
    summarize_distortion,
)
from sweep.distortion.butteraugli import find_tool
from sweep.distortion.summary import INTERVAL_FIELDS

needs_butteraugli = pytest.mark.skipif(
    find_tool() is None, reason="butteraugli_main not installed (apt-get install libjxl-devtools)"
)


def photo(size: int = 64, seed: int = 0) -> np.ndarray:
    """Smooth colour blobs with fine noise: something a lossy codec has to approximate."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.random((size, size, 3)) * 255, (3, 3, 0))
    smooth = (smooth - smooth.min()) / np.ptp(smooth) * 200 + 25
    return np.clip(smooth + rng.normal(0, 4, smooth.shape), 0, 255).astype(np.uint8)


def measurement(*measures: str) -> Measurement:
    return resolve_measurement(DistortionOptions(measures=measures or ("psnr", "ssim")))


def test_identical_images_have_the_values_of_the_original_setting():
    image = photo()
    wanted = measurement("psnr", "ssim", "ssimulacra2")
    assert measure_image(image, image, wanted) == identical_values(wanted)
    assert identical_values(wanted) == {"psnr": None, "ssim": 1.0, "ssimulacra2": 100.0}


@needs_butteraugli
def test_butteraugli_of_identical_images_is_zero():
    image = photo()
    values = measure_image(image, image, measurement("butteraugli"))
    assert values == {"butteraugli_max": 0.0, "butteraugli_3norm": 0.0}


def test_psnr_of_a_known_offset():
    image = photo()
    shifted = image + np.uint8(4)  # every sample 4 higher (no overflow: values <= 240)
    expected = 10 * math.log10(255**2 / 16)  # MSE 16
    assert measure_image(image, shifted, measurement())["psnr"] == pytest.approx(expected)


def test_grey_images_and_grey_against_rgb():
    grey = photo()[..., 1]
    noisy = np.clip(grey.astype(int) + 3, 0, 255).astype(np.uint8)
    values = measure_image(grey, noisy, measurement("psnr", "ssim", "ssimulacra2"))
    assert values["psnr"] == pytest.approx(10 * math.log10(255**2 / 9), abs=0.5)
    assert 0.9 < values["ssim"] < 1 and 80 < values["ssimulacra2"] < 100
    # A decoder may hand back RGB for a grey source: compared as RGB, same numbers.
    rgb = np.repeat(noisy[..., None], 3, axis=2)
    assert measure_image(grey, rgb, measurement())["psnr"] == pytest.approx(values["psnr"])


@pytest.mark.parametrize("shape", [(1, 1, 3), (5, 6, 3), (7, 3), (10, 12, 3)])
def test_small_images(shape):
    image = photo(16)[: shape[0], : shape[1]]
    image = image[..., 0] if len(shape) == 2 else image
    noisy = np.clip(image.astype(int) + 5, 0, 255).astype(np.uint8)
    values = measure_image(image, noisy, measurement("psnr", "ssim", "ssimulacra2"))
    assert values["psnr"] == pytest.approx(10 * math.log10(255**2 / 25))
    assert 0 < values["ssim"] <= 1
    if min(shape[:2]) < 8:
        # No scale to compare: undefined, not the tool's meaningless 100.
        assert values["ssimulacra2"] is None
    else:
        assert 50 < values["ssimulacra2"] < 100


def test_mismatched_sizes_are_an_error():
    with pytest.raises(ValueError, match="decoded image is 32x32 but its source is 64x64"):
        measure_image(photo(64), photo(32), measurement())


def test_every_measure_worsens_with_the_distance():
    image = photo(96)
    wanted = measurement("psnr", "ssim", "ssimulacra2", "butteraugli")
    rows = []
    for distance in (0.5, 2, 6, 15):
        data = imagecodecs.jpegxl_encode(image, distance=distance, effort=7, numthreads=1)
        rows.append(measure_image(image, imagecodecs.jpegxl_decode(data), wanted))
    for name in ("psnr", "ssim", "ssimulacra2"):
        values = [row[name] for row in rows]
        assert values == sorted(values, reverse=True), (name, values)
    if "butteraugli" in wanted.measures:
        values = [row["butteraugli_3norm"] for row in rows]
        assert values == sorted(values), values
    assert rows[0]["ssimulacra2"] > 70 > 40 > rows[-1]["ssimulacra2"]


def test_summary_counts_identical_psnr_as_infinite():
    wanted = measurement("psnr", "ssim")
    records = [
        {"distortion": {"psnr": value, "ssim": 0.9}} for value in (30.0, 40.0, None, 50.0, None)
    ]
    summary = summarize_distortion(records, wanted)
    assert summary["psnr"]["identical"] == 2 and summary["psnr"]["count"] == 5
    assert summary["psnr"]["median"] == 50.0
    assert summary["psnr"]["p90"] is None  # lands on an identical image
    assert summary["psnr"]["p10"] == 30.0 and summary["psnr"]["mean"] == 40.0
    assert summary["ssim"] == {
        "count": 5,
        "undefined": 0,
        "median": 0.9,
        "p10": 0.9,
        "p90": 0.9,
        "mean": pytest.approx(0.9),
        **dict.fromkeys(INTERVAL_FIELDS, pytest.approx(0.9)),
    }
    # A median on an identical image: its interval reaches infinity (None) above.
    assert summary["psnr"]["median_ci_low"] <= 50.0 and summary["psnr"]["median_ci_high"] is None
