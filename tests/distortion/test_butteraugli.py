"""libjxl's butteraugli_main: its output parsed, skipped with a reason when it is missing."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from sweep.distortion import DistortionOptions, resolve_measurement
from sweep.distortion.butteraugli import (
    ButteraugliError,
    butteraugli,
    find_tool,
    parse_output,
)


def test_output_of_the_tool_is_parsed():
    assert parse_output(0, "1.1350609064\n3-norm: 0.619250\n", "") == (1.1350609064, 0.61925)


@pytest.mark.parametrize(
    ("returncode", "stdout"), [(1, ""), (0, "garbage\n"), (0, "1.0\n"), (0, "x\n3-norm: 1\n")]
)
def test_unexpected_output_is_an_error_with_the_output(returncode, stdout):
    with pytest.raises(ButteraugliError, match="butteraugli_main exited"):
        parse_output(returncode, stdout, "Failed to read image")


def test_missing_tool_is_skipped_with_a_logged_reason(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no butteraugli_main
    with caplog.at_level(logging.WARNING):
        measurement = resolve_measurement(DistortionOptions())
    assert measurement.measures == ("psnr", "ssim", "ssimulacra2")
    (name, reason), *_ = measurement.skipped
    assert name == "butteraugli" and "libjxl-devtools" in reason
    assert "Butteraugli skipped" in caplog.text


@pytest.mark.skipif(find_tool() is None, reason="butteraugli_main not installed")
def test_the_tool_measures_grey_and_rgb():
    rng = np.random.default_rng(3)
    image = rng.integers(40, 200, (32, 40, 3), dtype=np.uint8)
    noisy = image + np.uint8(6)
    maximum, norm = butteraugli(image, noisy, find_tool())
    assert maximum >= norm > 0
    grey_max, grey_norm = butteraugli(image[..., 0], noisy[..., 0], find_tool())
    assert grey_max >= grey_norm > 0
