"""The SSIMULACRA 2 port against scores of libjxl's C++ tool on reproducible images.

Reference scores and the image generators (flat grey, a horizontal ramp, LCG noise) are those
of the C++-parity tests of the Rust port (imazen/ssimulacra2, src/reference_data.rs, captured
from the C++ `ssimulacra2` binary).
"""

from __future__ import annotations

import numpy as np
import pytest

from sweep.distortion.ssimulacra2 import ssimulacra2


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
def test_structured_images_match_the_cpp_tool(reference, distorted, expected):
    assert ssimulacra2(reference(), distorted()) == pytest.approx(expected, abs=0.01)


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
def test_flat_images_with_a_brightness_shift_match_the_cpp_tool(size, shift, expected):
    # Flat images have no structure: both implementations are then dominated by rounding near
    # the borders (the C++ tool computes in float32), so the agreement is looser.
    assert ssimulacra2(flat(size, 128), flat(size, 128 + shift)) == pytest.approx(expected, abs=1)


def test_identical_images_score_100_and_grey_equals_its_rgb():
    noise = lcg_noise(32, 7)
    assert ssimulacra2(noise, noise) == 100.0
    grey = noise[..., 0]
    shifted = np.clip(grey.astype(int) + 9, 0, 255).astype(np.uint8)
    as_rgb = ssimulacra2(np.repeat(grey[..., None], 3, 2), np.repeat(shifted[..., None], 3, 2))
    assert ssimulacra2(grey, shifted) == pytest.approx(as_rgb)


def test_shapes_must_match():
    with pytest.raises(ValueError, match="shapes differ"):
        ssimulacra2(flat(16, 1), flat(32, 1))
