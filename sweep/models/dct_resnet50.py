"""jpeg2dct's ResNet-50 variants: classifiers that read JPEG's DCT coefficients.

Gueguen, Sergeev, Kadlec, Liu, Yosinski, "Faster Neural Networks Straight from JPEG" (NeurIPS
2018), the figure of the architectures; layer by layer (kernels, strides, widths) as drawn in
the authors' diagrams (uber-research/jpeg2dct, `diagrams/ResNet50-*.png`, which show no batch
norms: the input norms follow the figure's "BN" boxes). Where the figure's text and the diagram
differ (downsampling: a (14, 14, 192) concatenation and no stage-2 blocks in the text), the
diagram, the network the authors ran, is followed. The input is `DctPlanes`: at 224 px,
Y (64, 28, 28) and Cb, Cr (128, 14, 14), the resolution an RGB ResNet-50 reaches only after
conv1, the max-pool and stage 2 (stride 8). Every variant drops conv1 and the max-pool, puts
a batch norm on each input (the coefficients are unnormalised) and ends in ResNet-50's stage 5,
global pooling and a linear classifier. Shapes below are (channels, height, width) at 224 px.

* upsampling: Cb, Cr upsampled 2x (nearest) and concatenated with Y: (192, 28, 28). Stage 2
  dropped; stage 3 at stride 1 (512, 28, 28); stage 4 (1024, 14, 14); stage 5 (2048, 7, 7).
  Blocks 0/4/6/3.
* upsampling_rfa: the same input, then a receptive-field-aware stage of three 256/1024
  blocks with middle kernels 1, 2, 3 at stride 1 (1024, 28, 28); stage 3 at stride 1 (512,
  28, 28); stages 4 and 5. Blocks 3/4/6/3.
* deconvolution_rfa: as upsampling_rfa, but Cb and Cr each go through a learned transposed
  convolution (64 filters, 2x2, stride 2) to (64, 28, 28).
* downsampling: Y through a 2x2 stride-2 convolution to (256, 14, 14), concatenated with Cb,
  Cr: (384, 14, 14). The receptive-field-aware stage (1024, 14, 14), stage 3 (512, 14, 14) and
  stage 4 (1024, 14, 14) at stride 1, stage 5 at stride 2 (2048, 7, 7). Cheapest, least
  spatial detail.
* late_concat: Y alone through stage 3 at stride 1 (512, 28, 28) and a stride-2 block to
  (512, 14, 14); Cb, Cr through one 256/512 block with a 1x1 middle kernel (512, 14, 14);
  concatenated (1024, 14, 14), the rest of stage 4 (five blocks) and stage 5. Luma, which
  carries most of the information, gets more layers than chroma.
* late_concat_rfa: as late_concat with the receptive-field-aware stage on Y first
  (1024, 28, 28).
* late_concat_rfa_thinner: as late_concat_rfa with the layers before the concatenation
  thinner, for speed: Y's receptive-field-aware stage and stage 3 at 96/384 (384, 28, 28), its
  stride-2 block 192/768 (768, 14, 14), the chroma block 128/256 (256, 14, 14); after the
  concatenation (1024, 14, 14) it is ResNet-50's.

The paper's results table (ImageNet, one GPU): ResNet-50 on RGB 24.22% top-1 error at 208 img/s;
deconvolution_rfa 23.94% at 268 img/s (1.29x); late_concat_rfa_thinner 24.61% at 369 img/s
(1.77x). `make bench` measures the forward ratios here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sweep.errors import OptionError, require_choice
from sweep.inputs.dct_planes import DctPlanes
from sweep.models.base import ModelFamily
from sweep.models.resnet_blocks import (
    RESNET50_DEPTHS,
    Head,
    bottleneck,
    initialise,
    receptive_field_blocks,
    scaled,
    stage,
)

VARIANTS = (
    "upsampling",
    "upsampling_rfa",
    "deconvolution_rfa",
    "downsampling",
    "late_concat",
    "late_concat_rfa",
    "late_concat_rfa_thinner",
)
Y_CHANNELS, CHROMA_CHANNELS = 64, 128


class EarlyConcat(nn.Module):
    """upsampling, upsampling_rfa, deconvolution_rfa, downsampling: Y and chroma joined at the
    input, then one trunk."""

    def __init__(self, variant: str, num_classes: int, width: float, depths) -> None:
        super().__init__()
        w = lambda channels: scaled(channels, width)  # noqa: E731
        _, d3, d4, d5 = depths
        self.variant = variant
        self.input_norm_y = nn.BatchNorm2d(Y_CHANNELS)
        self.input_norm_cbcr = nn.BatchNorm2d(CHROMA_CHANNELS)
        if variant == "deconvolution_rfa":
            self.upsample_cb = nn.ConvTranspose2d(64, 64, kernel_size=2, stride=2)
            self.upsample_cr = nn.ConvTranspose2d(64, 64, kernel_size=2, stride=2)
        if variant == "downsampling":
            self.downsample_y = nn.Conv2d(Y_CHANNELS, w(256), kernel_size=2, stride=2)
            channels = w(256) + CHROMA_CHANNELS
        else:
            channels = Y_CHANNELS + CHROMA_CHANNELS
        # Stage 3 keeps the input's resolution; downsampling is at stride 16 already, so its
        # stage 4 keeps it too.
        stride4 = 1 if variant == "downsampling" else 2
        if variant != "upsampling":
            self.layer1 = receptive_field_blocks(channels, w(256))
            channels = w(1024)
        self.layer2 = stage(channels, w(128), d3, 1)
        self.layer3 = stage(w(512), w(256), d4, stride4)
        self.layer4 = stage(w(1024), w(512), d5, 2)
        self.head = Head(w(2048), num_classes)

    def forward(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        y, cbcr = inputs  # (B, 64, S/8, S/8), (B, 128, S/16, S/16)
        y, cbcr = self.input_norm_y(y), self.input_norm_cbcr(cbcr)
        if self.variant == "downsampling":
            x = torch.cat([self.downsample_y(y), cbcr], dim=1)  # (B, 256 + 128, S/16, S/16)
        elif self.variant == "deconvolution_rfa":
            cb, cr = cbcr.split(64, dim=1)
            x = torch.cat([y, self.upsample_cb(cb), self.upsample_cr(cr)], dim=1)
        else:
            x = torch.cat([y, nn.functional.interpolate(cbcr, scale_factor=2.0)], dim=1)
        if self.variant != "upsampling":
            x = self.layer1(x)
        return self.head(self.layer4(self.layer3(self.layer2(x))))


class LateConcat(nn.Module):
    """late_concat, late_concat_rfa, late_concat_rfa_thinner: Y through more layers alone,
    chroma through one block, joined at stride 16."""

    def __init__(self, variant: str, num_classes: int, width: float, depths) -> None:
        super().__init__()
        w = lambda channels: scaled(channels, width)  # noqa: E731
        _, d3, d4, d5 = depths
        thinner = variant == "late_concat_rfa_thinner"
        # (bottleneck, output) widths of Y's stages and stride-2 block, and the chroma block.
        y_stage = (96, 384) if thinner else (128, 512)
        y_rfa = (96, 384) if thinner else (256, 1024)
        y_down = (192, 768) if thinner else (256, 512)
        chroma = (128, 256) if thinner else (256, 512)
        self.input_norm_y = nn.BatchNorm2d(Y_CHANNELS)
        self.input_norm_cbcr = nn.BatchNorm2d(CHROMA_CHANNELS)
        y_layers, channels = [], Y_CHANNELS
        if variant != "late_concat":
            y_layers.append(receptive_field_blocks(channels, w(y_rfa[0]), w(y_rfa[1])))
            channels = w(y_rfa[1])
        y_layers.append(stage(channels, w(y_stage[0]), d3, 1, w(y_stage[1])))
        y_layers.append(bottleneck(w(y_stage[1]), w(y_down[0]), w(y_down[1]), stride=2))
        self.luma = nn.Sequential(*y_layers)
        self.chroma = bottleneck(CHROMA_CHANNELS, w(chroma[0]), w(chroma[1]), kernel=1)
        joined = w(y_down[1]) + w(chroma[1])
        # The rest of stage 4 (d4 - 1 blocks): its first block takes the concatenation.
        rest = [bottleneck(joined, w(256), w(1024))] if d4 > 1 else []
        rest += [bottleneck(w(1024), w(256)) for _ in range(d4 - 2)]
        self.layer3 = nn.Sequential(*rest)
        self.layer4 = stage(w(1024) if rest else joined, w(512), d5, 2)
        self.head = Head(w(2048), num_classes)

    def forward(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        y, cbcr = inputs  # (B, 64, S/8, S/8), (B, 128, S/16, S/16)
        luma = self.luma(self.input_norm_y(y))  # (B, 512 or 768, S/16, S/16)
        chroma = self.chroma(self.input_norm_cbcr(cbcr))  # (B, 512 or 256, S/16, S/16)
        x = torch.cat([luma, chroma], dim=1)  # (B, 1024, S/16, S/16)
        return self.head(self.layer4(self.layer3(x)))


@dataclass
class DctResNet50(ModelFamily):
    """A jpeg2dct ResNet-50 variant, randomly initialised (the paper trains from scratch).

    Args:
        name: Model name in results.
        task_kind: The task kind it serves ("classification").
        variant: One of `VARIANTS` (module docstring).
        image_size: Side of the input in pixels, a multiple of 16.
        geometry: "crop" (whole macroblocks at the file's resolution, coefficients read
            straight from JPEG files) or "resize" (the RGB families' resize, coefficients
            computed); see `sweep.inputs.dct_planes`.
        interpolation: Resampling filter of the resize geometry.
        crop_pct: Evaluation crop of the resize geometry.
        width: Factor on every channel count after the input (1.0: the paper's).
        depths: Blocks per ResNet-50 stage conv2_x..conv5_x (conv2_x counts for nothing: no
            variant keeps stage 2; the receptive-field-aware stage always has three blocks).
    """

    name: str
    task_kind: str = "classification"
    variant: str = "late_concat_rfa_thinner"
    image_size: int = 224
    geometry: str = "crop"
    interpolation: str = "bilinear"
    crop_pct: float = 1.0
    width: float = 1.0
    depths: tuple[int, ...] = RESNET50_DEPTHS

    eval_fields = ("crop_pct",)

    def __post_init__(self) -> None:
        self.depths = tuple(self.depths)
        require_choice(self.variant, VARIANTS, "model.variant")
        if len(self.depths) != 4 or min(self.depths[1:]) < 1 or self.width <= 0:
            raise OptionError(
                "depths needs 4 block counts (conv2_x..conv5_x), those of conv3_x..conv5_x at "
                "least 1, and width a positive factor",
                option="model.depths",
            )
        self.input_representation()  # refuses a bad geometry or image_size (not 16 k)

    def input_representation(self) -> DctPlanes:
        return DctPlanes(self.image_size, self.geometry, self.interpolation, self.crop_pct)

    def build(self, num_classes: int, load_pretrained: bool = True) -> nn.Module:
        trunk = LateConcat if self.variant.startswith("late_concat") else EarlyConcat
        module = trunk(self.variant, num_classes, self.width, self.depths)
        initialise(module)
        return module
