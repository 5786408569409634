"""DCTNet's input: 192 frequency channels of the image upsampled to twice the input size."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import torch
from PIL import Image

from sweep.data.files import LabelledFile
from sweep.dct import rgb_to_ycbcr
from sweep.errors import OptionError
from sweep.inputs.frequency_channels import FrequencyChannels
from tests.inputs.test_coefficients import photograph


def test_channel_64c_8i_j_holds_frequency_i_j_of_component_c_on_the_stem_grid():
    channels = FrequencyChannels(32)  # backbone input 32: a 64 px image, an 8 x 8 grid
    pixels = torch.rand(1, 3, 64, 64, dtype=torch.float64)
    out = channels.from_pixels(pixels)
    assert out.shape == (1, 192, 8, 8)
    ycbcr = (rgb_to_ycbcr(pixels * 255) - 128)[0].numpy()
    for component in range(3):
        block = ycbcr[component, 16:24, 40:48]  # block row 2, column 5
        expected = scipy.fft.dctn(block, type=2, norm="ortho")
        for i, j in ((0, 0), (0, 3), (5, 1), (7, 7)):
            value = out[0, 64 * component + 8 * i + j, 2, 5].item()
            assert value == pytest.approx(expected[i, j], abs=1e-9)


def test_samples_are_the_evaluation_pixels_made_into_channels(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(photograph(120, 90)).save(path)
    channels = FrequencyChannels(48, crop_pct=0.875)
    files = [LabelledFile(str(path), 0)]
    sample, label = channels.evaluation_dataset(files)[0]
    assert label == 0 and sample.shape == (192, 12, 12)
    from sweep.inputs.base import read_image

    pixels = channels.evaluation_pixels(read_image(str(path)))
    assert pixels.shape == (3, 96, 96)  # upsampled to 2 x 48
    np.testing.assert_allclose(channels.from_pixels(pixels[None])[0], sample, atol=1e-3)
    torch.manual_seed(0)
    trained, _ = channels.training_dataset(files, min_crop_scale=0.5)[0]
    assert trained.shape == (192, 12, 12)
    assert channels.source_counts(files) == {"pixels": 1}


def test_an_input_size_off_the_stem_grid_is_refused():
    with pytest.raises(OptionError) as error:
        FrequencyChannels(30)
    assert error.value.option == "model.image_size"
