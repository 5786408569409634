"""Resizers in front of a classifier's backbone: fixed interpolation, or the learnable resizer.

Talebi & Milanfar, "Learning to Resize Images for Computer Vision Tasks" (ICCV 2021, figure 3),
built as the reference Keras tutorial builds it (keras-io examples/vision/learnable_resizer.py,
which the paper's figure describes):

1. a skip path: the input resized to the target size with a fixed filter;
2. a 7x7 convolution to `filters` channels (with bias) and LeakyReLU(0.2); a 1x1 convolution,
   LeakyReLU(0.2) and batch norm;
3. those features resized to the target size with the same filter (the "bottleneck");
4. `blocks` residual blocks: 3x3 convolution (no bias), batch norm, LeakyReLU(0.2), 3x3
   convolution (no bias), batch norm, plus the identity;
5. a 3x3 projection (no bias) with batch norm, added back to the bottleneck;
6. a 7x7 convolution to 3 channels (with bias), added to the skip path.

With 16 filters and one block: 12,035 trainable parameters (12,163 with the batch norms'
running statistics, the count Keras reports: 7,051,717 - 7,039,554 in the tutorial's table).
It works on any input size and aspect ratio; the output is the target size. Inputs and outputs
are the backbone's normalised pixels, so the skip path alone is exactly the fixed resize.
"""

from __future__ import annotations

import torch
from torch import nn

SLOPE = 0.2


def resized(x: torch.Tensor, size: int, interpolation: str) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, size, size), without antialiasing (as Keras's Resizing layer,
    which the reference uses: the learned path can make up for the aliasing)."""
    if x.shape[-2:] == (size, size):
        return x
    return nn.functional.interpolate(x, size=(size, size), mode=interpolation, align_corners=False)


class FixedResizer(nn.Module):
    """The skip path alone: a fixed resize to `size` (model.resizer=bilinear)."""

    def __init__(self, size: int, interpolation: str = "bilinear") -> None:
        super().__init__()
        self.size, self.interpolation = size, interpolation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resized(x, self.size, self.interpolation)


class ResidualBlock(nn.Module):
    """3x3 conv, BN, LeakyReLU, 3x3 conv, BN, plus the identity."""

    def __init__(self, filters: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(filters, filters, 3, padding=1, bias=False),
            nn.BatchNorm2d(filters),
            nn.LeakyReLU(SLOPE),
            nn.Conv2d(filters, filters, 3, padding=1, bias=False),
            nn.BatchNorm2d(filters),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class LearnableResizer(nn.Module):
    """(B, 3, H, W) -> (B, 3, size, size): the learnable resizer (module docstring)."""

    def __init__(
        self, size: int, filters: int = 16, blocks: int = 1, interpolation: str = "bilinear"
    ) -> None:
        super().__init__()
        self.size, self.interpolation = size, interpolation
        self.features = nn.Sequential(
            nn.Conv2d(3, filters, 7, padding=3),
            nn.LeakyReLU(SLOPE),
            nn.Conv2d(filters, filters, 1),
            nn.LeakyReLU(SLOPE),
            nn.BatchNorm2d(filters),
        )
        self.blocks = nn.Sequential(*(ResidualBlock(filters) for _ in range(blocks)))
        self.projection = nn.Sequential(
            nn.Conv2d(filters, filters, 3, padding=1, bias=False), nn.BatchNorm2d(filters)
        )
        self.to_pixels = nn.Conv2d(filters, 3, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = resized(x, self.size, self.interpolation)  # (B, 3, size, size)
        bottleneck = resized(self.features(x), self.size, self.interpolation)  # (B, F, size, size)
        refined = bottleneck + self.projection(self.blocks(bottleneck))
        return skip + self.to_pixels(refined)


class Resized(nn.Module):
    """A resizer, then the backbone: (B, 3, H, W) normalised pixels -> the backbone's output.

    `backbone` keeps its own module (and state-dict names under "backbone."), so the same
    seed builds the same backbone weights with or without a resizer (the family builds the
    backbone first).
    """

    def __init__(self, resizer: nn.Module, backbone: nn.Module) -> None:
        super().__init__()
        # Channels-last: the resizer's few-channel convolutions at full resolution cost as
        # much as a small backbone; in NHWC they train 1.2-1.6x faster on the CPU (oneDNN's
        # preferred layout; tensor cores' on the GPU). Loaded weights keep this layout.
        self.resizer = resizer.to(memory_format=torch.channels_last)
        self.backbone = backbone

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.resizer(pixels.contiguous(memory_format=torch.channels_last)))

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters of each part."""
        return {
            part: sum(p.numel() for p in getattr(self, part).parameters() if p.requires_grad)
            for part in ("resizer", "backbone")
        }
