"""The sensitivity methods: JPEG's DCT, the finite procedure and its first-order equivalent."""

from __future__ import annotations

import jpeglib
import numpy as np
import pytest
import scipy.fft
import torch
from PIL import Image, ImageFilter
from scipy.stats import spearmanr

from sweep.dct import basis_images, block_dct, block_idct, rgb_to_ycbcr, ycbcr_to_rgb
from sweep.inputs.rgb import RgbPixels
from sweep.sensitivity.methods import Classifier, finite_maps, gradient_maps


def tiny_classifier(classes: int = 5, dtype=torch.float64) -> Classifier:
    """A small convolutional classifier of any input size with smooth non-linearities (so
    that finite differences converge cleanly), random but seeded."""
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 5, stride=2, padding=2),
        torch.nn.Tanh(),
        torch.nn.Conv2d(8, 8, 3, stride=2, padding=1),
        torch.nn.Tanh(),
        torch.nn.AdaptiveAvgPool2d(4),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 16, classes),
    ).to(dtype)
    module.eval().requires_grad_(False)
    return Classifier(module, RgbPixels(32, (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)).from_pixels)


def test_block_dct_is_scipys_orthonormal_dct_ii_on_each_block():
    plane = torch.rand(2, 16, 24, dtype=torch.float64) * 255
    coefficients = block_dct(plane)
    assert coefficients.shape == (2, 2, 3, 8, 8)
    expected = scipy.fft.dctn(plane[1, 8:16, 16:24].numpy(), type=2, norm="ortho")
    np.testing.assert_allclose(coefficients[1, 1, 2].numpy(), expected, atol=1e-9)
    np.testing.assert_allclose(block_idct(coefficients).numpy(), plane.numpy(), atol=1e-9)


def test_a_unit_coefficient_moves_pixels_by_at_most_a_quarter():
    basis = basis_images()
    assert 0.24 < basis.abs().amax().item() <= 0.25  # a(i) a(j) cos(pi/16)^2
    assert basis[0].abs().amax().item() == pytest.approx(1 / 8)  # DC: a(0)^2


def test_block_dct_matches_the_coefficients_libjpeg_writes(tmp_path):
    """JPEG's own coefficients: quantised DCT of the level-shifted YCbCr planes (4:4:4)."""
    rng = np.random.default_rng(0)
    noise = Image.fromarray((rng.random((32, 32, 3)) * 60 + 100).astype(np.uint8))
    pixels = np.array(noise.filter(ImageFilter.SMOOTH))
    path = tmp_path / "smooth.jpg"
    Image.fromarray(pixels).save(path, format="JPEG", quality=95, subsampling=0)
    jpeg = jpeglib.read_dct(str(path))
    ycc = rgb_to_ycbcr(torch.from_numpy(pixels).permute(2, 0, 1).double())
    ours = block_dct(ycc[0] - 128)  # (4, 4, 8, 8)
    table = torch.from_numpy(jpeg.qt[0].astype(np.float64))
    quantised = torch.round(ours / table).numpy()
    # jpeglib: Y as (block rows, block cols, 8, 8); libjpeg's integer DCT rounds a little
    # differently from the exact transform: allow one step.
    assert np.abs(quantised - jpeg.Y).max() <= 1


@pytest.mark.parametrize("chroma", ["4:4:4", "4:2:0"])
def test_finite_differences_meet_the_gradient_in_float64(chroma):
    classifier = tiny_classifier()
    images = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    gradient = gradient_maps(classifier, images, ["clean_prob", "l1"], chroma)
    finite = finite_maps(classifier, images, ["clean_prob", "l1"], 1e-5, chroma)
    for name in ("clean_prob", "l1"):
        assert gradient.maps[name].shape == (2, 3, 8, 8)
        assert (gradient.maps[name] > 0).all()
        np.testing.assert_allclose(finite.maps[name], gradient.maps[name], rtol=1e-4)
    assert gradient.passes == 1 + 5  # one backward for clean_prob, one per class for l1
    blocks = 16 if chroma == "4:4:4" else 4
    assert finite.blocks == {"Y": 16, "Cb": blocks, "Cr": blocks}
    assert finite.passes == 2 * 64 * (16 + 2 * blocks)


def test_the_chroma_gradient_goes_through_the_adjoint_of_the_upsampling():
    """Under 4:2:0 a chroma coefficient moves a 16x16 pixel area: the gradient's Cb map at
    (0, 1) is the mean over the 4 chroma blocks of perturbations made here by hand (the
    pattern replicated over 2x2 pixels), not a derivative at the subsampled pixels."""
    classifier = tiny_classifier()
    image = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    measured = gradient_maps(classifier, image, ["clean_prob"], "4:2:0").maps["clean_prob"]
    eps = 1e-6
    pattern = basis_images()[1] * eps / 255  # coefficient (0, 1): one horizontal cycle
    cb_to_rgb = ycbcr_to_rgb()[:, 1].view(3, 1, 1)
    clean = classifier.probabilities(image)[0]
    winner = int(clean.argmax())
    changes = []
    for top in (0, 16):
        for left in (0, 16):
            delta = torch.zeros(1, 3, 32, 32, dtype=torch.float64)
            for row in range(16):
                for col in range(16):
                    value = pattern[row // 2, col // 2]
                    delta[0, :, top + row, left + col] = cb_to_rgb[:, 0, 0] * value
            moved = classifier.probabilities(image, delta)[0]
            changes.append(abs(moved[winner] - clean[winner]).item() / eps)
    assert measured[0, 1, 0, 1] == pytest.approx(np.mean(changes), rel=1e-4)


def test_odd_input_sizes_measure_the_whole_blocks():
    """A 35 px input (as 299 px models have): 4x4 whole luma blocks; the 18-sample chroma
    planes hold 2x2 whole blocks; both methods agree on them."""
    classifier = tiny_classifier()
    images = torch.rand(1, 3, 35, 35, dtype=torch.float64)
    gradient = gradient_maps(classifier, images, ["l1"], "4:2:0")
    finite = finite_maps(classifier, images, ["l1"], 1e-5, "4:2:0")
    assert gradient.blocks == finite.blocks == {"Y": 16, "Cb": 4, "Cr": 4}
    np.testing.assert_allclose(finite.maps["l1"], gradient.maps["l1"], rtol=1e-4)


def test_a_seeded_block_sample_is_reproducible_and_agrees_in_rank():
    classifier = tiny_classifier(dtype=torch.float32)
    images = torch.rand(3, 3, 32, 32)
    first = finite_maps(classifier, images, ["clean_prob"], 1.0, "4:4:4", blocks=4, seed=3)
    again = finite_maps(classifier, images, ["clean_prob"], 1.0, "4:4:4", blocks=4, seed=3)
    np.testing.assert_array_equal(first.maps["clean_prob"], again.maps["clean_prob"])
    assert first.blocks["Y"] == 4 and first.passes == 3 * 3 * 4 * 64
    full = finite_maps(classifier, images, ["clean_prob"], 1.0, "4:4:4")
    gradient = gradient_maps(classifier, images, ["clean_prob"], "4:4:4")
    rho = spearmanr(
        full.maps["clean_prob"].mean(0).ravel(), gradient.maps["clean_prob"].mean(0).ravel()
    )
    assert rho.statistic > 0.99
