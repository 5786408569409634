"""The DCT-input families at full size: jpeg2dct's seven ResNet-50 variants and DCTNet.

Every variant builds at its published size and runs forward and backward on random input of
the right shapes; the shapes its docstring gives are checked inside the network; the stages
it keeps are torchvision's ResNet-50 stages.
"""

from __future__ import annotations

import pytest
import torch
import torchvision

from sweep.errors import OptionError
from sweep.models.dct_resnet50 import VARIANTS, DctResNet50
from sweep.models.dctnet import SUBSETS, DctNet, subset_indices
from sweep.models.errors import ModelUnavailableError

BATCH = 2


def dct_input(size: int = 224) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    y = torch.randn(BATCH, 64, size // 8, size // 8, generator=generator) * 50
    cbcr = torch.randn(BATCH, 128, size // 16, size // 16, generator=generator) * 20
    return y, cbcr


def output_shapes(module: torch.nn.Module, names: list[str], inputs) -> dict:
    """The output shape (C, H, W) of each named submodule on one forward pass."""
    shapes, hooks = {}, []
    for name in names:
        part = module.get_submodule(name)
        hooks.append(
            part.register_forward_hook(
                lambda _, __, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:]))
            )
        )
    module(inputs)
    for hook in hooks:
        hook.remove()
    return shapes


# The shapes of each variant's docstring at 224 px: (submodule, (C, H, W)).
DOCUMENTED_SHAPES = {
    "upsampling": {"layer2": (512, 28, 28), "layer3": (1024, 14, 14), "layer4": (2048, 7, 7)},
    "upsampling_rfa": {"layer1": (1024, 28, 28), "layer2": (512, 28, 28), "layer4": (2048, 7, 7)},
    "deconvolution_rfa": {
        "upsample_cb": (64, 28, 28),
        "layer1": (1024, 28, 28),
        "layer2": (512, 28, 28),
        "layer4": (2048, 7, 7),
    },
    "downsampling": {
        "downsample_y": (256, 14, 14),
        "layer1": (1024, 14, 14),
        "layer2": (512, 14, 14),
        "layer3": (1024, 14, 14),
        "layer4": (2048, 7, 7),
    },
    "late_concat": {"luma": (512, 14, 14), "chroma": (512, 14, 14), "layer3": (1024, 14, 14)},
    "late_concat_rfa": {
        "luma.0": (1024, 28, 28),
        "luma": (512, 14, 14),
        "chroma": (512, 14, 14),
        "layer4": (2048, 7, 7),
    },
    "late_concat_rfa_thinner": {
        "luma.0": (384, 28, 28),
        "luma.1": (384, 28, 28),
        "luma": (768, 14, 14),
        "chroma": (256, 14, 14),
        "layer3": (1024, 14, 14),
        "layer4": (2048, 7, 7),
    },
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_builds_at_full_size_and_runs_forward_and_backward(variant):
    torch.manual_seed(0)
    module = DctResNet50("full", variant=variant).build(num_classes=1000).train()
    inputs = dct_input()
    documented = DOCUMENTED_SHAPES[variant]
    assert output_shapes(module, list(documented), inputs) == documented
    logits = module(inputs)
    assert logits.shape == (BATCH, 1000)
    torch.nn.functional.cross_entropy(logits, torch.tensor([3, 999])).backward()
    assert all(p.grad is not None for p in module.parameters())


def test_the_stages_kept_are_torchvisions_resnet50_stages():
    reference = torchvision.models.resnet50().state_dict()
    for variant, kept in (("upsampling", ("layer3", "layer4")), ("late_concat", ("layer4",))):
        module = DctResNet50("full", variant=variant).build(1000)
        own = module.state_dict()
        for stage in kept:
            names = {k: v.shape for k, v in reference.items() if k.startswith(stage + ".")}
            assert {k: own[k].shape for k in names} == names, (variant, stage)
    # The head is ResNet-50's classifier on 2048 channels.
    assert module.head.fc.in_features == 2048


def test_the_thinner_variant_is_the_cheapest_late_concatenation():
    def multiply_adds(variant: str) -> int:
        module = DctResNet50("full", variant=variant).build(1000)
        total = 0

        def count(layer, _, out):
            nonlocal total
            total += layer.weight.numel() * out.shape[-1] * out.shape[-2]

        hooks = [
            m.register_forward_hook(count)
            for m in module.modules()
            if isinstance(m, torch.nn.Conv2d)
        ]
        with torch.no_grad():
            module(tuple(part[:1] for part in dct_input()))
        for hook in hooks:
            hook.remove()
        return total

    thinner, rfa = multiply_adds("late_concat_rfa_thinner"), multiply_adds("late_concat_rfa")
    assert thinner < 0.75 * rfa


def test_dct_resnet50_refuses_bad_options_by_name():
    for options, field in (
        ({"variant": "sideways"}, "model.variant"),
        ({"image_size": 200}, "model.image_size"),
        ({"geometry": "stretch"}, "model.geometry"),
        ({"depths": (3, 4, 6)}, "model.depths"),
    ):
        with pytest.raises(OptionError) as error:
            DctResNet50("x", **options)
        assert error.value.option == field


def test_the_published_channel_subsets():
    for channels, (y, cb, cr) in SUBSETS.items():
        assert len(y) + len(cb) + len(cr) == channels
        assert len(y) > len(cb) == len(cr)  # more luma than chroma
        assert y[0] == cb[0] == cr[0] == 0  # DC first: low frequencies first
        indices = subset_indices(channels)
        assert indices == sorted(set(indices)) and max(indices) < 192
    assert (len(SUBSETS[24][0]), len(SUBSETS[64][0])) == (16, 44)
    assert subset_indices(192) == list(range(192))


@pytest.mark.parametrize(
    ("selection", "channels"), [("static", 24), ("static", 64), ("dynamic", 192)]
)
def test_dctnet_builds_at_full_size_and_runs_forward_and_backward(selection, channels):
    torch.manual_seed(0)
    model = DctNet("full", selection=selection, channels=channels)
    module = model.build(num_classes=1000).train()
    frequencies = torch.randn(BATCH, 192, 56, 56)  # 224 px: a 448 px image's 56 x 56 grid
    shapes = output_shapes(module, ["layer1", "layer4"], frequencies)
    assert shapes == {"layer1": (256, 56, 56), "layer4": (2048, 7, 7)}
    logits = module(frequencies)
    assert logits.shape == (BATCH, 1000)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1]))
    if selection == "dynamic":
        # Logits start at (off 0.1, on 2): a Gumbel sample opens a gate with probability
        # softmax = 0.87, so the count term starts near the weight times 0.87 x 192.
        opened = module.auxiliary_loss.item() / model.gate_loss_weight / 192
        assert 0.75 < opened <= 1.0
        loss = loss + module.auxiliary_loss
    loss.backward()
    if selection == "dynamic":  # the straight-through sample passes gradients to the gate
        assert module.gate.logits.weight.grad.abs().sum() > 0
        module.eval()
        with torch.no_grad():
            module(frequencies)
        statistics = module.gate_statistics()
        assert statistics["gate_open"] == [1.0] * 192
        # Initial logits (0.1, 2): opened with probability softmax = 0.87 by the authors' sampling.
        assert statistics["gate_probability"] == pytest.approx([0.8699] * 192, abs=0.01)
    else:
        assert module.gate_statistics() is None
    # At 64 channels the first block is torchvision's, unchanged.
    if channels == 64:
        reference = torchvision.models.resnet50().layer1.state_dict()
        own = module.layer1.state_dict()
        assert {k: v.shape for k, v in own.items()} == {k: v.shape for k, v in reference.items()}


def test_dctnet_loads_torchvision_resnet50_weights_as_the_authors_do(tmp_path):
    torch.manual_seed(1)
    reference = torchvision.models.resnet50()
    path = tmp_path / "resnet50.pth"
    torch.save(reference.state_dict(), path)
    module = DctNet("x", channels=24, weights=str(path)).build(num_classes=5)
    assert torch.equal(module.layer3[2].conv2.weight, reference.layer3[2].conv2.weight)
    # Fewer input channels: the first columns of layer1.0's 1x1 convolutions.
    assert torch.equal(module.layer1[0].conv1.weight, reference.layer1[0].conv1.weight[:, :24])
    assert module.head.fc.out_features == 5
    model = DctNet("x", weights=str(path))
    assert model.identity()["weights_file"][0] == "resnet50.pth"
    with pytest.raises(ModelUnavailableError, match="no file"):
        DctNet("x", weights=str(tmp_path / "missing.pth")).check_available()


def test_dctnet_refuses_bad_options_by_name():
    for options, field in (
        ({"channels": 40}, "model.channels"),
        ({"selection": "dynamic", "channels": 24}, "model.channels"),
        ({"selection": "learned"}, "model.selection"),
        ({"image_size": 226}, "model.image_size"),
    ):
        with pytest.raises(OptionError) as error:
            DctNet("x", **options)
        assert error.value.option == field
    # The gate's loss weight is no part of a static selection's training key.
    assert DctNet("x", gate_loss_weight=0.5).identity() == DctNet("x").identity()
