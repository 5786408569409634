"""DCTNet: ResNet-50 learning in the frequency domain, with static or dynamic channel selection.

Xu, Qin, Sun, Wang, Chen, Ren, "Learning in the Frequency Domain" (CVPR 2020), built as the
authors' code builds it (kaix90/DCTNet, `ResNetDCT_Upscaled_Static`, `GateModule192`):

* Input: `FrequencyChannels`, (192, S/4, S/4): at S = 224, 56 x 56 x 192 from a 448 x 448
  image (section 3.1). The grid already has the resolution ResNet-50 reaches after its stem,
  so conv1, bn1, ReLU and the max-pool are removed and the channels enter stage conv2_x
  (`layer1`), whose first block takes the selected channels (1x1 convolutions; at 64 channels
  torchvision's block unchanged). Stages, pooling and classifier are torchvision's ResNet-50.
* Static selection: the published subsets, low frequencies first
  and more of luma than of chroma: 24 channels = Y 16 + Cb 4 + Cr 4, 32 = 22 + 5 + 5, 48 =
  32 + 8 + 8, 64 = 44 + 10 + 10 (`SUBSETS`, the indices of the authors' code), or all 192.
* Dynamic selection (`GateModule192`): a gate on all 192 channels. Global average
  pooling, a 1x1 convolution 192 -> 192 with batch norm and ReLU, then a grouped 1x1
  convolution giving two logits per channel (off, on); a Gumbel-softmax at temperature 1 with
  a hard, straight-through sample keeps or drops each channel of each image. The logits
  start near (0.1, 2): every gate open. A loss term `gate_loss_weight` x (open gates per
  image) pushes gates shut (the paper's sum over channels, section 3.3; the authors' detection
  code averages over channels and images, a weight 192 times ours); the module leaves it in
  `auxiliary_loss` in training. The gate learns at `gate_lr_multiplier` times the training's
  rate (`DctNet.parameter_groups`): the released classifier code has no training loop, and at
  the network's rate the logits never cross within a short training (measured on the demo,
  docs/analyses/dct-models.md). The selection frequencies over the images a module evaluates
  are `gate_statistics()`.

Two departures, both written down: the authors normalise each channel with ImageNet
statistics computed beforehand; here a batch norm without affine parameters on the input
learns each channel's statistics from the training data, so any dataset works without a
statistics pass. At evaluation the gate opens a channel when its "on" logit is larger (the
released code samples Gumbel noise at inference too, which makes predictions random).

Published ImageNet top-1 (ResNet-50): RGB 75.78%, 24 channels 76.79%, 64 channels 77.16%.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sweep.errors import OptionError, require_choice
from sweep.inputs.frequency_channels import CHANNELS, FrequencyChannels
from sweep.models.base import FamilyFigures, ModelFamily, TrainedModels
from sweep.models.dctnet_figures import verdict_cells, write_gate_maps, write_gate_report
from sweep.models.errors import ModelUnavailableError
from sweep.models.resnet_blocks import RESNET50_DEPTHS, Head, initialise, scaled, stage
from sweep.models.weight_files import weights_file_identity

FREQUENCIES = 64
# kaix90/DCTNet classification/main/__init__.py `subset_channel_index`: frequency 8 i + j
# within each of Y, Cb, Cr.
_LOW_4 = [0, 1, 8, 9]
SUBSETS = {
    24: ([0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27], _LOW_4, _LOW_4),
    32: (
        [0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 16, 17, 18, 19, 20, 24, 25, 26, 27, 32, 33, 34],
        [0, 1, 2, 8, 9],
        [0, 1, 2, 8, 9],
    ),
    48: (
        [*range(0, 6), *range(8, 14), *range(16, 22), *range(24, 30), *range(32, 36)]
        + [*range(40, 44)],
        [0, 1, 2, 8, 9, 10, 16, 17],
        [0, 1, 2, 8, 9, 10, 16, 17],
    ),
    64: (
        [*range(0, 7), *range(8, 15), *range(16, 22), *range(24, 30), *range(32, 38)]
        + [*range(40, 46), *range(48, 54)],
        [0, 1, 2, 8, 9, 10, 16, 17, 24, 25],
        [0, 1, 2, 8, 9, 10, 16, 17, 24, 25],
    ),
}
CHANNEL_CHOICES = (*SUBSETS, CHANNELS)
SELECTIONS = ("static", "dynamic")
# The gate's initial logits (off, on): every channel starts open (the authors' init).
GATE_BIAS = (0.1, 2.0)


def subset_indices(channels: int) -> list[int]:
    """Indices into the 192 channels (64 c + 8 i + j) of a static selection."""
    if channels == CHANNELS:
        return list(range(CHANNELS))
    return [
        component * FREQUENCIES + index
        for component, indices in enumerate(SUBSETS[channels])
        for index in indices
    ]


class FrequencyGate(nn.Module):
    """DCTNet's dynamic channel selection: keeps or drops each channel of each image."""

    def __init__(self, channels: int = CHANNELS) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.squeeze = nn.Conv2d(channels, channels, kernel_size=1)
        self.norm = nn.BatchNorm2d(channels)
        self.logits = nn.Conv2d(channels, 2 * channels, kernel_size=1, groups=channels)
        nn.init.normal_(self.logits.weight, std=0.001)
        with torch.no_grad():
            self.logits.bias.copy_(torch.tensor(GATE_BIAS).repeat(channels))
        # Selection statistics over evaluated images: not weights, not saved.
        self.register_buffer("opened", torch.zeros(channels), persistent=False)
        self.register_buffer("probability", torch.zeros(channels), persistent=False)
        self.register_buffer("seen", torch.zeros(()), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, h, w) -> the gated channels and the gates (B, C) in {0, 1}."""
        hidden = torch.relu(self.norm(self.squeeze(self.pool(x))))  # (B, C, 1, 1)
        logits = self.logits(hidden).flatten(1).unflatten(1, (-1, 2))  # (B, C, [off, on])
        if self.training:
            gates = nn.functional.gumbel_softmax(logits, tau=1.0, hard=True)[..., 1]
        else:
            gates = (logits[..., 1] > logits[..., 0]).to(x.dtype)
            self.opened += gates.detach().sum(0)
            self.probability += torch.softmax(logits.detach().float(), -1)[..., 1].sum(0)
            self.seen += len(gates)
        return x * gates[:, :, None, None], gates


class DctNetResNet(nn.Module):
    """(B, 192, S/4, S/4) frequency channels -> (B, num_classes) logits."""

    def __init__(
        self,
        num_classes: int,
        channels: int,
        gate: bool,
        gate_loss_weight: float,
        width: float,
        depths,
    ) -> None:
        super().__init__()
        w = lambda c: scaled(c, width)  # noqa: E731
        d2, d3, d4, d5 = depths
        self.input_norm = nn.BatchNorm2d(CHANNELS, affine=False)
        self.register_buffer("selected", torch.tensor(subset_indices(channels)), persistent=False)
        self.gate = FrequencyGate(CHANNELS) if gate else None
        self.gate_loss_weight = gate_loss_weight
        self.auxiliary_loss: torch.Tensor | None = None
        self.layer1 = stage(channels, w(64), d2, 1)  # (256, S/4, S/4)
        self.layer2 = stage(w(256), w(128), d3, 2)  # (512, S/8, S/8)
        self.layer3 = stage(w(512), w(256), d4, 2)  # (1024, S/16, S/16)
        self.layer4 = stage(w(1024), w(512), d5, 2)  # (2048, S/32, S/32)
        self.head = Head(w(2048), num_classes)

    def forward(self, frequencies: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(frequencies)  # (B, 192, S/4, S/4)
        self.auxiliary_loss = None
        if self.gate is not None:
            x, gates = self.gate(x)
            if self.training:
                self.auxiliary_loss = self.gate_loss_weight * gates.sum(1).mean()
        else:
            x = x.index_select(1, self.selected)  # (B, channels, S/4, S/4)
        return self.head(self.layer4(self.layer3(self.layer2(self.layer1(x)))))

    def gate_statistics(self) -> dict[str, list[float]] | None:
        """Per channel (64 c + 8 i + j), over the evaluated images: `gate_open`, the share of
        images for which the gate opened it; `gate_probability`, the mean probability of
        opening it, the selection frequency as the authors measure it (their inference samples
        the Gumbel noise, so a channel is selected with that probability)."""
        if self.gate is None or self.gate.seen == 0:
            return None
        seen = self.gate.seen
        return {
            "gate_open": (self.gate.opened / seen).tolist(),
            "gate_probability": (self.gate.probability / seen).tolist(),
        }


@dataclass
class DctNet(ModelFamily):
    """DCTNet on ResNet-50.

    Args:
        name: Model name in results.
        task_kind: The task kind it serves ("classification").
        channels: Static selection: 24, 32, 48 or 64 (the published subsets) or 192 (all).
        selection: "static" (a fixed subset of `channels`) or "dynamic" (the gate over all
            192 channels; needs channels=192).
        gate_loss_weight: Weight of the open-gate count in the loss.
        gate_lr_multiplier: The gate's learning rate as a multiple of the training's (same
            warm-up and decay, no weight decay): the gate's own rate, so that its logits can
            cross from open to shut within a short training.
        image_size: The backbone's input size S (a multiple of 4): the image is upsampled
            to 2 S and its frequency grid is S / 4.
        interpolation: Resampling filter of the resize.
        crop_pct: Evaluation crop (the authors: 448 from 512, 0.875).
        width: Factor on every channel count after the input (1.0: ResNet-50's).
        depths: Blocks per stage conv2_x..conv5_x.
        weights: A torchvision ResNet-50 state-dict file (e.g. resnet50-11ad3fa6.pth from the
            torch hub cache), or null for random weights. Its stages load; a first block
            that takes fewer than 64 channels takes the first columns of its 1x1
            convolutions, as the authors do; 192 channels and the classifier start afresh.
    """

    name: str
    task_kind: str = "classification"
    selection: str = "static"
    channels: int = 24
    gate_loss_weight: float = 0.001
    gate_lr_multiplier: float = 1.0
    image_size: int = 224
    interpolation: str = "bilinear"
    crop_pct: float = 0.875
    width: float = 1.0
    depths: tuple[int, ...] = RESNET50_DEPTHS
    weights: str | None = None

    eval_fields = ("crop_pct",)

    def __post_init__(self) -> None:
        self.depths = tuple(self.depths)
        require_choice(self.channels, CHANNEL_CHOICES, "model.channels")
        require_choice(self.selection, SELECTIONS, "model.selection")
        if self.selection == "dynamic" and self.channels != CHANNELS:
            raise OptionError(
                f"the dynamic gate chooses among all {CHANNELS} channels: set "
                f"model.channels={CHANNELS} with model.selection=dynamic",
                option="model.channels",
            )
        if self.gate_loss_weight < 0:
            raise OptionError("gate_loss_weight must be >= 0", option="model.gate_loss_weight")
        if self.gate_lr_multiplier <= 0:
            raise OptionError("gate_lr_multiplier must be > 0", option="model.gate_lr_multiplier")
        if len(self.depths) != 4 or min(self.depths) < 1 or self.width <= 0:
            raise OptionError(
                "depths needs 4 block counts of at least 1 (conv2_x..conv5_x), and width a "
                "positive factor",
                option="model.depths",
            )
        self.input_representation()  # refuses an image_size that is no multiple of 4

    def input_representation(self) -> FrequencyChannels:
        return FrequencyChannels(self.image_size, self.interpolation, self.crop_pct)

    def identity(self) -> dict:
        identity = super().identity()
        if self.selection == "static":  # no gate: its loss weight and rate change nothing
            del identity["gate_loss_weight"], identity["gate_lr_multiplier"]
        if self.weights is not None and Path(self.weights).is_file():
            identity["weights_file"] = weights_file_identity(Path(self.weights))
        return identity

    def check_available(self) -> None:
        if self.weights is not None and not Path(self.weights).is_file():
            raise ModelUnavailableError(
                f"model.weights={self.weights} is no file. Give torchvision's ResNet-50 "
                f"state dict (on a machine with internet, torchvision.models.resnet50("
                f"weights='IMAGENET1K_V1') saves it under ~/.cache/torch/hub/checkpoints/), "
                f"or model.weights=null for random weights."
            )

    def parameter_groups(self, module: nn.Module, lr: float, weight_decay: float) -> list[dict]:
        """The network at the training's rate; the gate at `gate_lr_multiplier` times it,
        without weight decay (its biases are a decision, open or shut, not a weight to shrink).

        Why a rate of its own: AdamW moves a logit by about the learning rate per step, and the
        gate starts 1.9 logits open; the count term's gradient is small and steady beside the
        cross-entropy's noisy one, so at the network's rate (3e-3 for 15 demo epochs of 15
        steps, cosine decay) the logits cannot cross within the training.
        """
        if module.gate is None:
            return super().parameter_groups(module, lr, weight_decay)
        gate = {id(parameter) for parameter in module.gate.parameters()}
        network = [p for p in module.parameters() if p.requires_grad and id(p) not in gate]
        return [
            {"params": network, "lr": lr, "weight_decay": weight_decay},
            {
                "params": list(module.gate.parameters()),
                "lr": lr * self.gate_lr_multiplier,
                "weight_decay": 0.0,
            },
        ]

    def report_figures(self, trained: TrainedModels, out: Path) -> FamilyFigures:
        """With the dynamic gate, how often each channel was selected: gate.csv and
        gate_frequencies.* on the parent run, each model's map on its child run."""
        cells = {cell: metrics for cell, metrics in trained.cells.items() if "gate_open" in metrics}
        children = write_gate_maps(verdict_cells(cells), out) if cells else {}
        return FamilyFigures(parent=write_gate_report(cells, out), children=children)

    def build(self, num_classes: int, load_pretrained: bool = True) -> nn.Module:
        module = DctNetResNet(
            num_classes,
            self.channels,
            self.selection == "dynamic",
            self.gate_loss_weight,
            self.width,
            self.depths,
        )
        initialise(module)
        if module.gate is not None:  # its own initialisation (all gates open)
            nn.init.normal_(module.gate.logits.weight, std=0.001)
        if self.weights is not None and load_pretrained:
            self.check_available()
            load_resnet50_stages(module, Path(self.weights))
        return module


def load_resnet50_stages(module: DctNetResNet, path: Path) -> None:
    """torchvision ResNet-50 weights into the stages: every tensor of the same name and shape,
    and the first columns of layer1.0's 1x1 convolutions when it takes fewer channels."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, ValueError) as error:
        raise ModelUnavailableError(
            f"model.weights={path} is no torchvision state dict: {error}"
        ) from None
    own = module.state_dict()
    loaded = {}
    for name, tensor in state.items():
        if not name.startswith(("layer1.", "layer2.", "layer3.", "layer4.")) or name not in own:
            continue
        target = own[name]
        if tensor.shape == target.shape:
            loaded[name] = tensor
        elif tensor.dim() == 4 and tensor.shape[1] > target.shape[1] == len(module.selected):
            loaded[name] = tensor[:, : target.shape[1]]  # fewer input channels: first columns
    if not loaded:
        raise ModelUnavailableError(
            f"model.weights={path} holds no ResNet-50 stage of this width: use width 1.0 and "
            f"ResNet-50's depths with torchvision's resnet50 weights"
        )
    module.load_state_dict(loaded, strict=False)
