"""PSNR and SSIM through scikit-image, with the conventions the records rely on.

Both compare uint8 pixels, (H, W) grey or (H, W, 3) RGB, with a data range of 255.

* PSNR of identical images is infinite; records hold None (JSON has no infinity).
* SSIM uses the parameters of Wang et al. (2004): an 11-tap Gaussian window of sigma 1.5,
  population covariances, on each RGB channel, averaged. An image with a side under 11
  pixels cannot hold that window; it gets a uniform window of the largest odd size that
  fits (1 for a one-pixel side, where SSIM reduces to its luminance term).
"""

from __future__ import annotations

import math

import numpy as np

DATA_RANGE = 255.0
SSIM_SIGMA = 1.5
# The window scikit-image derives from sigma 1.5 (truncate 3.5): 2 * int(3.5 * 1.5 + 0.5) + 1.
SSIM_WINDOW = 11
SSIM_PARAMETERS = {
    "window": "gaussian",
    "sigma": SSIM_SIGMA,
    "sample_covariance": False,
    "data_range": DATA_RANGE,
    "channels": "mean of RGB",
    "small_images": "uniform window, largest odd size that fits",
}


def psnr(reference: np.ndarray, distorted: np.ndarray) -> float | None:
    """Peak signal-to-noise ratio in dB; None for identical images (infinite PSNR)."""
    from skimage.metrics import peak_signal_noise_ratio

    if np.array_equal(reference, distorted):
        return None
    value = peak_signal_noise_ratio(reference, distorted, data_range=DATA_RANGE)
    return float(value) if math.isfinite(value) else None


def ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Structural similarity, 1 for identical images."""
    from skimage.metrics import structural_similarity

    channel_axis = 2 if reference.ndim == 3 else None
    side = min(reference.shape[:2])
    if side >= SSIM_WINDOW:
        options = {"gaussian_weights": True, "sigma": SSIM_SIGMA}
    else:
        options = {"win_size": side if side % 2 else side - 1}
    return float(
        structural_similarity(
            reference,
            distorted,
            data_range=DATA_RANGE,
            channel_axis=channel_axis,
            use_sample_covariance=False,
            **options,
        )
    )
