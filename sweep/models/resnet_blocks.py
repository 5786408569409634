"""torchvision's ResNet-50 bottleneck blocks at any width, kernel and stride.

The DCT-input families (dct_resnet50.py, dctnet.py) keep ResNet-50's later stages and change
what comes before them: the papers' blocks differ from torchvision's only in their input
channels, the kernel of the middle convolution (the receptive-field-aware blocks use 1, 2 and
3), the stride and, in a few blocks, an output that is not 4x the bottleneck width. Each block
here is a torchvision `Bottleneck` (ResNet v1.5: the stride sits on the middle convolution), so
at full width a stage has torchvision's module names and shapes and loads its weights.

Widths and depths scale by `width` and `depth` for the tiny siblings that tests and the demo
build on the CPU; at 1.0 and ResNet-50's depths they are ResNet-50's.
"""

from __future__ import annotations

from torch import nn
from torchvision.models.resnet import Bottleneck

# ResNet-50 (He et al. 2016, table 1): blocks per stage conv2_x..conv5_x, and each stage's
# bottleneck width (its output is 4x: 256, 512, 1024, 2048).
RESNET50_DEPTHS = (3, 4, 6, 3)
RESNET50_WIDTHS = (64, 128, 256, 512)
EXPANSION = Bottleneck.expansion


def scaled(channels: int, width: float) -> int:
    """Channels times the width factor, at least 8."""
    return max(8, round(channels * width))


def bottleneck(
    inplanes: int, planes: int, out: int | None = None, stride: int = 1, kernel: int = 3
) -> Bottleneck:
    """A torchvision bottleneck: 1x1 to `planes`, kernel x kernel (stride), 1x1 to `out`.

    Args:
        inplanes: Input channels.
        planes: Bottleneck width.
        out: Output channels (default 4 x planes, as in ResNet-50).
        stride: Stride of the middle convolution (and of the projection shortcut).
        kernel: Middle kernel (other than 3: stride 1 only, see `same_size_conv`).
    """
    out = out or planes * EXPANSION
    downsample = None
    if stride != 1 or inplanes != out:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, out, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out),
        )
    block = Bottleneck(inplanes, planes, stride, downsample)
    if kernel != 3:
        if stride != 1:
            raise ValueError(f"a {kernel}x{kernel} middle convolution takes stride 1 here")
        block.conv2 = same_size_conv(planes, kernel)
    if out != planes * EXPANSION:
        block.conv3 = nn.Conv2d(planes, out, kernel_size=1, bias=False)
        block.bn3 = nn.BatchNorm2d(out)
    return block


def same_size_conv(channels: int, kernel: int) -> nn.Module:
    """A stride-1 kernel x kernel convolution keeping the size; an even kernel pads one more
    at the bottom and right (as Keras's "same", the authors' framework)."""
    total = kernel - 1
    before, after = total // 2, total - total // 2
    if before == after:
        return nn.Conv2d(channels, channels, kernel, padding=before, bias=False)
    return nn.Sequential(
        nn.ZeroPad2d((before, after, before, after)),
        nn.Conv2d(channels, channels, kernel, bias=False),
    )


def stage(
    inplanes: int, planes: int, blocks: int, stride: int, out: int | None = None
) -> nn.Sequential:
    """torchvision's `_make_layer`: a projection block (stride) then identity blocks."""
    out = out or planes * EXPANSION
    layers = [bottleneck(inplanes, planes, out, stride)]
    layers += [bottleneck(out, planes, out) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def receptive_field_blocks(inplanes: int, planes: int, out: int | None = None) -> nn.Sequential:
    """The receptive-field-aware stage (Gueguen et al. 2018, section 4.2): three bottlenecks
    at stride 1 with middle kernels 1, 2 and 3, so that the receptive field grows 8 -> 8 ->
    16 -> 32 pixels as in the RGB network's first stages instead of starting at 8x8 blocks."""
    out = out or planes * EXPANSION
    return nn.Sequential(
        bottleneck(inplanes, planes, out, kernel=1),
        bottleneck(out, planes, out, kernel=2),
        bottleneck(out, planes, out, kernel=3),
    )


def initialise(module: nn.Module) -> None:
    """torchvision's ResNet initialisation: Kaiming-normal convolutions (fan out), unit
    batch-norm scales, zero shifts."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(layer, nn.BatchNorm2d) and layer.affine:
            nn.init.constant_(layer.weight, 1)
            nn.init.constant_(layer.bias, 0)


class Head(nn.Module):
    """Global average pooling and the classifier: (B, C, h, w) -> (B, num_classes)."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, features):
        return self.fc(self.avgpool(features).flatten(1))
