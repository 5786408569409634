"""The SSIMULACRA 2 port against scores of libjxl's C++ tool on reproducible images, in its
fast (float32, FIR blur) and exact (float64, recursive blur) forms.

Reference scores and the image generators (flat grey, a horizontal ramp, LCG noise) are those
of the C++-parity tests of the Rust port (imazen/ssimulacra2, src/reference_data.rs, captured
from the C++ `ssimulacra2` binary).
"""

from __future__ import annotations

import numpy as np
import pytest

from sweep.distortion.ssimulacra2 import gaussian_kernel, kernel_blur, recursive_blur, ssimulacra2

BOTH = pytest.mark.parametrize("exact", [False, True], ids=["fast", "exact"])


def flat(size: int, value: int) -> np.ndarray:
    return np.full((size, size, 3), value, np.uint8)


def ramp(size: int) -> np.ndarray:
    row = (np.arange(size) * 255 // (size - 1)).astype(np.uint8)
    return np.repeat(np.repeat(row[None, :, None], size, axis=0), 3, axis=2)


def lcg_noise(size: int, seed: int) -> np.ndarray:
    """The reference generator: a 64-bit LCG, bits 33..40 of each state, R G B per pixel."""
    state, mask, values = seed, (1 << 64) - 1, []
    for _ in range(size * size * 3):
        state = (state * 6364136223846793005 + 1442695040888963407) & mask
        values.append((state >> 33) & 0xFF)
    return np.array(values, np.uint8).reshape(size, size, 3)


def test_generators_match_the_reference_images():
    import hashlib

    def sha(pixels):
        return hashlib.sha256(pixels.tobytes()).hexdigest()[:16]

    assert sha(lcg_noise(64, 42)) == "7f6be7f433ccb0a0"
    assert sha(ramp(64)) == "bfcfaa0618d28284"
    assert sha(flat(64, 128)) == "2203a98fd84adfbd"


@pytest.mark.parametrize(
    ("reference", "distorted", "expected"),
    [
        (lambda: lcg_noise(64, 42), lambda: flat(64, 128), -47.33572558),
        (lambda: ramp(64), lambda: flat(64, 128), -64.56872148),
    ],
    ids=["noise_vs_flat", "ramp_vs_flat"],
)
@BOTH
def test_structured_images_match_the_cpp_tool(reference, distorted, expected, exact):
    assert ssimulacra2(reference(), distorted(), exact=exact) == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize(
    ("size", "shift", "expected"),
    [
        (64, 10, 80.24289393),
        (64, 50, -8.75942256),
        (128, 10, 77.84296299),
        (128, 20, 54.27883917),
        (256, 50, -0.39085784),
    ],
)
@BOTH
def test_flat_images_with_a_brightness_shift_match_the_cpp_tool(size, shift, expected, exact):
    # Flat images have no structure: both implementations are then dominated by rounding near
    # the borders (the C++ tool computes in float32), so the agreement is looser.
    score = ssimulacra2(flat(size, 128), flat(size, 128 + shift), exact=exact)
    assert score == pytest.approx(expected, abs=1)


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colour blobs with fine noise."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.random((height, width, 3)) * 255, (4, 4, 0))
    smooth = (smooth - smooth.min()) / np.ptp(smooth) * 200 + 25
    return np.clip(smooth + rng.normal(0, 4, smooth.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("noise", [1, 3, 12])
def test_fast_form_matches_the_exact_form_on_a_photo(noise):
    # Odd sides exercise the repeated edge of every downsampling.
    reference = photo(75, 101)
    rng = np.random.default_rng(noise)
    distorted = np.clip(reference + rng.normal(0, noise, reference.shape), 0, 255)
    distorted = distorted.astype(np.uint8)
    fast, exact = (ssimulacra2(reference, distorted, exact=e) for e in (False, True))
    assert fast == pytest.approx(exact, abs=0.01)


def test_the_kernel_blur_is_the_recursive_blur():
    kernel = gaussian_kernel(np.float64)
    assert kernel.shape == (9,) and kernel.sum() == pytest.approx(1.0)
    assert np.allclose(kernel, kernel[::-1])
    image = np.random.default_rng(0).random((2, 13, 17))
    assert np.allclose(kernel_blur(image), recursive_blur(image), atol=1e-12)


@BOTH
def test_identical_images_score_100_and_grey_equals_its_rgb(exact):
    noise = lcg_noise(32, 7)
    assert ssimulacra2(noise, noise, exact=exact) == 100.0
    grey = noise[..., 0]
    shifted = np.clip(grey.astype(int) + 9, 0, 255).astype(np.uint8)
    as_rgb = ssimulacra2(np.repeat(grey[..., None], 3, 2), np.repeat(shifted[..., None], 3, 2))
    assert ssimulacra2(grey, shifted) == pytest.approx(as_rgb)


def test_shapes_must_match():
    with pytest.raises(ValueError, match="shapes differ"):
        ssimulacra2(flat(16, 1), flat(32, 1))
