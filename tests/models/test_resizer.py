"""The learnable resizer (Talebi & Milanfar 2021) and any RGB classifier behind it."""

from __future__ import annotations

import pytest
import torch

from sweep.config.build import build_sweep, model_family
from sweep.errors import OptionError
from sweep.models.resized import ResizedFamily, ResizerOptions
from sweep.models.resizer import FixedResizer, LearnableResizer, Resized, resized
from tests.conftest import compose_config


@pytest.mark.parametrize(
    ("height", "width", "size"), [(300, 300, 150), (97, 130, 64), (48, 48, 96), (64, 64, 64)]
)
def test_any_input_size_and_aspect_becomes_the_target_square(height, width, size):
    pixels = torch.randn(2, 3, height, width)
    for resizer in (LearnableResizer(size), LearnableResizer(size, filters=8, blocks=3)):
        assert resizer(pixels).shape == (2, 3, size, size)
    assert FixedResizer(size)(pixels).shape == (2, 3, size, size)


def test_the_default_resizer_has_the_reference_parameter_count():
    """16 filters, one block: 12,035 trainable parameters, 12,163 with the batch norms'
    running statistics: the difference of the tutorial's table (7,051,717 - 7,039,554)."""
    resizer = LearnableResizer(150)
    trainable = sum(p.numel() for p in resizer.parameters())
    running = sum(b.numel() for name, b in resizer.named_buffers() if "running" in name)
    assert trainable == 12_035
    assert trainable + running == 7_051_717 - 7_039_554


def test_without_its_learned_path_the_resizer_is_the_fixed_resize():
    resizer = LearnableResizer(32).eval()
    torch.nn.init.zeros_(resizer.to_pixels.weight)
    torch.nn.init.zeros_(resizer.to_pixels.bias)
    pixels = torch.randn(1, 3, 64, 48)
    torch.testing.assert_close(resizer(pixels), resized(pixels, 32, "bilinear"))


def test_the_resizer_runs_channels_last_with_the_same_output_and_weights():
    """Resized keeps its resizer in NHWC (the faster layout) through a state-dict round trip,
    and computes what the NCHW resizer computes from the same weights."""
    torch.manual_seed(0)
    reference = LearnableResizer(32).eval()
    module = Resized(LearnableResizer(32), torch.nn.Identity()).eval()
    module.resizer.load_state_dict(reference.state_dict())
    assert module.resizer.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    pixels = torch.randn(2, 3, 48, 40)
    with torch.no_grad():
        torch.testing.assert_close(module(pixels), reference(pixels), rtol=1e-4, atol=1e-4)


def family(*overrides: str):
    cfg = compose_config("model=vit_tiny", "model.image_size=32", *overrides)
    return build_sweep(cfg, check_data=False).model


def test_the_backbone_starts_from_the_same_weights_with_and_without_the_resizer():
    plain, behind = family(), family("model.resizer=learnable")
    assert isinstance(behind, ResizedFamily) and behind.name == "vit_tiny_learnable_resizer"
    torch.manual_seed(7)
    alone = plain.build(4).state_dict()
    torch.manual_seed(7)
    module = behind.build(4)
    with_resizer = module.backbone.state_dict()
    assert alone.keys() == with_resizer.keys()
    assert all(torch.equal(alone[name], with_resizer[name]) for name in alone)
    assert module.parameter_counts()["resizer"] == 12_035


def test_the_resized_family_reads_input_size_and_keys_its_resizer():
    behind = family("model.resizer=learnable", "model.resizer_options.input_size=48")
    plain = family()
    assert behind.input_representation().image_size == 48
    assert plain.input_representation().image_size == behind.image_size == 32
    assert behind.identity()["resizer"]["input_size"] == 48
    assert behind.identity() != family("model.resizer=learnable").identity()  # input 64
    assert "filters" not in family("model.resizer=bilinear").identity()["resizer"]
    module = behind.build(3)
    groups = behind.parameter_groups(module, lr=1e-3, weight_decay=0.01)
    grouped = {id(p) for group in groups for p in group["params"]}
    assert grouped == {id(p) for p in module.parameters() if p.requires_grad}
    logits = module(torch.randn(2, 3, 48, 48))
    assert logits.shape == (2, 3)


def test_bad_resizer_options_name_themselves():
    for overrides, option in (
        (["model.resizer=sideways"], "model.resizer"),
        (["model.resizer=learnable", "model.resizer_options.interpolation=nearest"],
         "model.resizer_options.interpolation"),
        (["model=dctnet_tiny", "+model.resizer=learnable"], "model.resizer"),
        (["model.resizer=learnable", "+model.resizer_options.stride=2"],
         "model.resizer_options.stride"),
    ):  # fmt: skip
        with pytest.raises(OptionError) as error:
            build_sweep(compose_config(*overrides), check_data=False)
        assert error.value.option == option
    with pytest.raises(OptionError):
        ResizerOptions(filters=0)
    with pytest.raises(OptionError) as error:
        ResizerOptions(input_size="large")
    assert error.value.option == "model.resizer_options.input_size"


def test_train_none_keeps_a_fixed_resizer_and_refuses_an_untrained_one():
    timm = model_family(compose_config("model=timm_tiny").model)
    with pytest.raises(OptionError, match="untrained"):
        ResizedFamily(timm, "learnable").as_loaded(["0", "1"])
