"""DctPlanes: the jpeg2dct layout from a JPEG file or from pixels, cropped and flipped alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sweep.data.files import LabelledFile
from sweep.errors import OptionError
from sweep.inputs.base import read_image
from sweep.inputs.coefficients import computed
from sweep.inputs.dct_planes import DctPlanes, flipped
from tests.inputs.test_coefficients import photograph, save_jpeg


@pytest.fixture
def files(tmp_path):
    """The same photograph as a 4:2:0 JPEG (read straight) and as the PNG of its decoded
    pixels (computed): both paths on one image."""
    jpeg, png = tmp_path / "photo.jpg", tmp_path / "photo.png"
    save_jpeg(jpeg, photograph(200, 152), quality=95)
    Image.fromarray(read_image(str(jpeg)).permute(1, 2, 0).numpy()).save(png)
    return str(jpeg), str(png)


def assert_close_planes(first, second, atol: float) -> None:
    for a, b in zip(first, second, strict=True):
        assert a.shape == b.shape
        assert (a - b).abs().max() <= atol


@pytest.mark.parametrize("size", [64, 128, 256])  # a crop, a crop, a grey surround
def test_evaluation_samples_agree_across_paths_and_with_the_evaluation_pixels(files, size):
    jpeg, png = files
    planes = DctPlanes(size)
    from_file = planes.sample(jpeg, train=False)
    from_pixels = planes.sample(png, train=False)
    assert from_file[0].shape == (64, size // 8, size // 8)
    assert from_file[1].shape == (128, size // 16, size // 16)
    # Within the rounding and the decoder's chroma upsampling (tests/inputs/test_coefficients).
    assert_close_planes(from_file, from_pixels, atol=16.0)
    assert (from_file[0] - from_pixels[0]).abs().mean() < 0.5
    # What the sensitivity maps perturb: the window's pixels, made into the same planes.
    pixels = planes.evaluation_pixels(read_image(png))[None]
    rebuilt = [part[0] for part in planes.from_pixels(pixels)]
    assert_close_planes(rebuilt, from_pixels, atol=1e-3)
    if size == 256:  # 12 x 9 macroblocks centred on 16 x 16: the surround is mid-grey, zero
        assert not from_file[0][:, :, :2].any() and not from_file[1][:, :2].any()


def test_training_draws_the_same_crop_and_flip_whatever_the_source(files):
    jpeg, png = files
    planes = DctPlanes(64)
    for seed in range(6):
        torch.manual_seed(seed)
        from_file = planes.sample(jpeg, train=True)
        torch.manual_seed(seed)
        from_pixels = planes.sample(png, train=True)
        assert_close_planes(from_file, from_pixels, atol=16.0)
    torch.manual_seed(0)
    crops = {tuple(planes.sample(png, train=True)[0][0, 0, :2].tolist()) for _ in range(8)}
    assert len(crops) > 1  # the window moves


def test_the_dct_domain_flip_is_the_mirrored_images_dct():
    pixels = photograph(64, 96)
    mirrored = np.ascontiguousarray(pixels[:, ::-1])
    straight, reference = computed(pixels), computed(mirrored)
    for plane in ("y", "cb", "cr"):
        np.testing.assert_allclose(
            flipped(getattr(straight, plane)), getattr(reference, plane), atol=1e-3
        )


def test_resize_geometry_computes_from_pixels_and_counts_its_sources(files):
    jpeg, png = files
    resized = DctPlanes(64, geometry="resize")
    y, cbcr = resized.sample(jpeg, train=True, min_crop_scale=0.5)
    assert y.shape == (64, 8, 8) and cbcr.shape == (128, 4, 4)
    labelled = [LabelledFile(jpeg, 0), LabelledFile(png, 1)]
    assert DctPlanes(64).source_counts(labelled) == {"file": 1, "pixels": 1}
    assert resized.source_counts(labelled) == {"pixels": 2}


def test_bad_options_name_themselves():
    with pytest.raises(OptionError) as error:
        DctPlanes(100)
    assert error.value.option == "model.image_size"
    with pytest.raises(OptionError) as error:
        DctPlanes(96, geometry="stretch")
    assert error.value.option == "model.geometry"
