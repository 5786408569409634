"""SSIMULACRA 2 (Jon Sneyers, Cloudinary; libjxl `tools/ssimulacra2.cc`, April 2023 weights).

A NumPy/SciPy port of the reference C++ tool. It is ported here because no maintained
implementation can be installed from this project's registries: Debian 12 ships libjxl 0.7
tools, which predate `ssimulacra2`, and the PyPI package `ssimulacra2` 0.3.0 departs from
the reference (it stops one scale early and blurs with mirrored instead of zero borders):
on the reference cases below it gives -682 where the C++ tool gives -47.

Validated in tests/distortion/test_ssimulacra2.py against scores captured from the C++ tool
on synthetic images (noise or gradient against flat grey: within 0.01). The steps follow the
reference one to one:

* sRGB to linear RGB, then XYB (libjxl's opsin absorbance matrix and bias, cube root), each
  component shifted and scaled into about 0..1;
* at 6 scales, each half the previous one, downsampled (2x2 box, edge pixels repeated) in
  linear RGB, while the previous scale is at least 8x8 pixels;
* per scale and component: an SSIM error map (without the luminance denominator) and two
  edge maps ("ringing": distorted edges where the original is smooth; "blurring": the
  reverse), each reduced to its mean and its 4-norm;
* the 108 numbers weighted and mapped to a score: 100 for identical images, about 90 for
  visually lossless, 10 for very low quality; it can go negative.

The blur is libjxl's recursive Gaussian (Charalampidis 2016, sigma 1.5, zero outside the
image) run as three second-order IIR filters in both directions. Arithmetic is float64 where
the C++ tool uses float32; scores differ by less than 0.01 except on flat images, where both
are dominated by rounding near the borders.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

SIGMA = 1.5
SCALES = 6
# Smallest side, in pixels, of a scale that is still compared and halved.
MIN_SIDE = 8
SSIM_C2 = 0.0009
OPSIN_MATRIX = np.array(
    [
        [0.30, 0.622, 0.078],
        [0.23, 0.692, 0.078],
        [0.24342268924547819, 0.20476744424496821, 0.55180986650955360],
    ]
)
OPSIN_BIAS = 0.0037930732552754493
# Weights of the 108 sub-scores: for X, Y, B; for each scale; for the 1-norm and the 4-norm;
# for SSIM, ringing and blurring, in that order.
WEIGHTS = np.array(
    [
        0.0, 0.0007376606707406586, 0.0, 0.0, 0.0007793481682867309, 0.0, 0.0,
        0.0004371155730107379, 0.0, 1.1041726426657346, 0.00066284834129271,
        0.00015231632783718752, 0.0, 0.0016406437456599754, 0.0, 1.8422455520539298,
        11.441172603757666, 0.0, 0.0007989109436015163, 0.000176816438078653, 0.0,
        1.8787594979546387, 10.94906990605142, 0.0, 0.0007289346991508072, 0.9677937080626833,
        0.0, 0.00014003424285435884, 0.9981766977854967, 0.00031949755934435053,
        0.0004550992113792063, 0.0, 0.0, 0.0013648766163243398, 0.0, 0.0, 0.0, 0.0, 0.0,
        7.466890328078848, 0.0, 17.445833984131262, 0.0006235601634041466, 0.0, 0.0,
        6.683678146179332, 0.00037724407979611296, 1.027889937768264, 225.20515300849274,
        0.0, 0.0, 19.213238186143016, 0.0011401524586618361, 0.001237755635509985,
        176.39317598450694, 0.0, 0.0, 24.43300999870476, 0.28520802612117757,
        0.0004485436923833408, 0.0, 0.0, 0.0, 34.77906344483772, 44.835625328877896, 0.0,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0008680556573291698, 0.0, 0.0, 0.0, 0.0, 0.0,
        0.0005313191874358747, 0.0, 0.00016533814161379112, 0.0, 0.0, 0.0, 0.0, 0.0,
        0.0004179171803251336, 0.0017290828234722833, 0.0, 0.0020827005846636437, 0.0, 0.0,
        8.826982764996862, 23.19243343998926, 0.0, 95.1080498811086, 0.9863978034400682,
        0.9834382792465353, 0.0012286405048278493, 171.2667255897307, 0.9807858872435379,
        0.0, 0.0, 0.0, 0.0005130064588990679, 0.0, 0.00010854057858411537,
    ]
)  # fmt: skip


def ssimulacra2(reference: np.ndarray, distorted: np.ndarray, exact: bool = False) -> float:
    """The score of `distorted` against `reference`: uint8 (H, W) grey or (H, W, 3) sRGB.

    By default in float32 with the blur as its 9-tap kernel (scipy.ndimage); `exact` runs the
    reference's recursive blur in float64 (the port as first validated, about 5x slower). Both
    match the C++ tool's scores to 0.01 (tests/distortion/test_ssimulacra2.py).

    Images smaller than 8x8 pixels have no scale to compare; the reference tool then
    returns 100 whatever the pixels, so callers should not report it.
    """
    if reference.shape != distorted.shape:
        raise ValueError(f"shapes differ: {reference.shape} and {distorted.shape}")
    dtype, blur = (np.float64, recursive_blur) if exact else (np.float32, kernel_blur)
    # (3, H, W) linear RGB: channel-first, so that each blurred row is contiguous.
    linear = [srgb_to_linear(rgb(image), dtype) for image in (reference, distorted)]
    features = []  # per scale: (6 SSIM, 12 edge) numbers, component-major as in libjxl
    for scale in range(SCALES):
        # Checked before halving, as the reference does: the last scale may be under 8.
        if min(linear[0].shape[1:]) < MIN_SIDE:
            break
        if scale:
            linear = [downsample(image) for image in linear]
        features.append(scale_features(*(positive_xyb(image) for image in linear), blur=blur))
    return score(features)


def rgb(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3) of grey, grey with a channel axis, or RGB(A) pixels."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return pixels[..., :3]


@cache
def linear_table(dtype: type) -> np.ndarray:
    """Linear light of each 8-bit sRGB value (the sRGB transfer function, computed in
    float64, then rounded to `dtype`)."""
    value = np.arange(256, dtype=np.float64) / 255.0
    return np.where(value <= 0.04045, value / 12.92, ((value + 0.055) / 1.055) ** 2.4).astype(dtype)


def srgb_to_linear(pixels: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """(H, W, 3) uint8 sRGB -> (3, H, W) linear RGB in `dtype`."""
    return linear_table(dtype)[pixels.transpose(2, 0, 1)]


def positive_xyb(linear: np.ndarray) -> np.ndarray:
    """libjxl's XYB of (3, H, W) linear sRGB, with X, Y and B-Y moved into about 0..1."""
    channels, height, width = linear.shape
    matrix = OPSIN_MATRIX.astype(linear.dtype)
    mixed = (matrix @ linear.reshape(channels, -1)).reshape(linear.shape)
    mixed += linear.dtype.type(OPSIN_BIAS)
    np.maximum(mixed, 0.0, out=mixed)
    mixed = np.cbrt(mixed, out=mixed)
    mixed -= linear.dtype.type(np.cbrt(OPSIN_BIAS))
    x = 0.5 * (mixed[0] - mixed[1])
    y = 0.5 * (mixed[0] + mixed[1])
    return np.stack([x * 14.0 + 0.42, y + 0.01, (mixed[2] - y) + 0.55])


def downsample(image: np.ndarray) -> np.ndarray:
    """(C, H, W) 2x2 box average; an odd last row or column is averaged with itself."""
    if image.shape[1] % 2:
        image = np.concatenate([image, image[:, -1:]], axis=1)
    if image.shape[2] % 2:
        image = np.concatenate([image, image[:, :, -1:]], axis=2)
    total = image[:, 0::2, 0::2] + image[:, 1::2, 0::2]
    total += image[:, 0::2, 1::2]
    total += image[:, 1::2, 1::2]
    return total * image.dtype.type(0.25)


@cache
def recursive_gaussian(sigma: float = SIGMA) -> tuple[int, tuple[float, ...], tuple[float, ...]]:
    """Radius N and the (n2, d1) coefficients of the three IIR terms (libjxl gauss_blur.cc)."""
    radius = round(3.2795 * sigma + 0.2546)
    omega = [k * math.pi / (2.0 * radius) for k in (1, 3, 5)]
    p = [1.0 / math.tan(0.5 * omega[0]), -1.0 / math.tan(0.5 * omega[1])]
    p.append(1.0 / math.tan(0.5 * omega[2]))
    r = [p[0] ** 2 / math.sin(omega[0]), -(p[1] ** 2) / math.sin(omega[1])]
    r.append(p[2] ** 2 / math.sin(omega[2]))
    rho = [math.exp(-0.5 * sigma * sigma * w * w) / radius for w in omega]
    d_13 = p[0] * r[1] - r[0] * p[1]
    zeta_15 = (p[1] * r[2] - r[1] * p[2]) / d_13
    zeta_35 = (p[2] * r[0] - r[2] * p[0]) / d_13
    matrix = np.array([p, r, [zeta_15, zeta_35, 1.0]])
    gamma = [1.0, radius * radius - sigma * sigma, zeta_15 * rho[0] + zeta_35 * rho[1] + rho[2]]
    beta = np.linalg.solve(matrix, gamma)
    n2 = tuple(-beta[i] * math.cos(omega[i] * (radius + 1.0)) for i in range(3))
    d1 = tuple(-2.0 * math.cos(omega[i]) for i in range(3))
    return radius, n2, d1


def blur_axis(image: np.ndarray, axis: int) -> np.ndarray:
    """One pass of the recursive Gaussian along an axis, zero outside the image.

    Output n of each term is n2 * (in[n-N-1] + in[n+N-1]) - d1 * out[n-1] - out[n-2], run
    from n = -N+1 with zero state (libjxl's FastGaussian1D and its vertical twin).
    """
    from scipy.signal import lfilter

    radius, n2, d1 = recursive_gaussian()
    size = image.shape[axis]
    padding = [(0, 0)] * image.ndim
    padding[axis] = (2 * radius, radius)
    padded = np.pad(image, padding)
    length = size + radius - 1  # outputs n = -N+1 .. size-1
    taps = np.take(padded, np.arange(length), axis=axis) + np.take(
        padded, np.arange(2 * radius, 2 * radius + length), axis=axis
    )
    out = sum(lfilter([n], [1.0, d, 1.0], taps, axis=axis) for n, d in zip(n2, d1, strict=True))
    return np.take(out, np.arange(radius - 1, length), axis=axis)


def recursive_blur(image: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (C, H, W): horizontal pass, then vertical, as libjxl's FastGaussian."""
    return blur_axis(blur_axis(image, 2), 1)


@cache
def gaussian_kernel(dtype: type) -> np.ndarray:
    """The recursive Gaussian's impulse response: 2N-1 = 9 symmetric taps.

    Each IIR term is a resonator whose two input taps, 2N samples apart, cancel its response
    after 2N-1 outputs: the filter is exactly this FIR (beyond it the response is below
    1e-15), which `scipy.ndimage` runs in float32 with zeros outside the image.
    """
    radius = recursive_gaussian()[0]
    impulse = np.zeros((1, 4 * radius + 1))
    impulse[0, 2 * radius] = 1.0
    response = blur_axis(impulse, 1)[0]
    return response[radius + 1 : 3 * radius].astype(dtype)


def kernel_blur(image: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (C, H, W): the recursive Gaussian as its FIR kernel, zero borders."""
    from scipy.ndimage import correlate1d

    kernel = gaussian_kernel(image.dtype.type)
    horizontal = correlate1d(image, kernel, axis=2, mode="constant")
    return correlate1d(horizontal, kernel, axis=1, mode="constant")


def scale_features(
    image1: np.ndarray, image2: np.ndarray, blur=kernel_blur
) -> tuple[np.ndarray, np.ndarray]:
    """(3 components x [mean, 4-norm]) SSIM errors and (3 x [ringing mean, ringing 4-norm,
    blurring mean, blurring 4-norm]) edge differences of one (C, H, W) scale."""
    # The five blurred maps in one pass: (15, H, W) = 5 maps x 3 components.
    maps = np.concatenate([image1, image2, image1 * image1, image2 * image2, image1 * image2])
    mu1, mu2, blur11, blur22, blur12 = np.split(blur(maps), 5)
    # In the reference's order of operations: identical images then give exactly 0 errors.
    sigma11 = blur11 - mu1 * mu1
    sigma22 = blur22 - mu2 * mu2
    sigma12 = blur12 - mu1 * mu2
    # SSIM without the luminance denominator (see the reference's comment on gamma).
    num_m = mu1 - mu2
    num_m *= num_m
    num_m = 1.0 - num_m
    num_s = sigma12 * 2.0
    num_s += SSIM_C2
    denom_s = sigma11 + sigma22
    denom_s += SSIM_C2
    num_m *= num_s
    num_m /= denom_s
    ssim_error = np.maximum(1.0 - num_m, 0.0)
    edge = np.abs(image2 - mu2)
    edge += 1.0
    edge /= 1.0 + np.abs(image1 - mu1)
    edge -= 1.0
    ringing, blurring = np.maximum(edge, 0.0), np.maximum(-edge, 0.0)
    ssim = np.stack([mean(ssim_error), norm4(ssim_error)], axis=1)
    edges = np.stack([mean(ringing), norm4(ringing), mean(blurring), norm4(blurring)], axis=1)
    return ssim.astype(np.float64), edges.astype(np.float64)


def mean(values: np.ndarray) -> np.ndarray:
    """Per component of (C, H, W), summed in float64."""
    return values.mean((1, 2), dtype=np.float64)


def norm4(values: np.ndarray) -> np.ndarray:
    """Per component of (C, H, W): the 4th root of the mean 4th power."""
    square = values * values
    square *= square
    return np.sqrt(np.sqrt(square.mean((1, 2), dtype=np.float64)))


def score(features: list[tuple[np.ndarray, np.ndarray]]) -> float:
    total, index = 0.0, 0
    for component in range(3):
        for ssim, edges in features:
            for norm in range(2):
                for value in (ssim[component, norm], edges[component, norm]):
                    total += WEIGHTS[index] * abs(value)
                    index += 1
                total += WEIGHTS[index] * abs(edges[component, norm + 2])
                index += 1
    total *= 0.9562382616834844
    total = (
        2.326765642916932 * total
        - 0.020884521182843837 * total**2
        + 6.248496625763138e-05 * total**3
    )
    return float(100.0 - 10.0 * total**0.6276336467831387) if total > 0 else 100.0
