"""Logits at the labels' resolution: bilinear upsampling and sliding-window inference."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def upsampled_logits(logits: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, H, W) float32, bilinear as in SegFormer."""
    return F.interpolate(logits.float(), size=tuple(size), mode="bilinear", align_corners=False)


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Window offsets along one axis that cover it, the last one flush with the end."""
    count = max(length - window + stride - 1, 0) // stride + 1
    return sorted({max(min(i * stride, length - window), 0) for i in range(count)})


def sliding_logits(
    module, image: torch.Tensor, num_classes: int, window, stride, batch_size: int
) -> torch.Tensor:
    """Logits of a (1, 3, H, W) image from overlapping windows, averaged where they overlap.

    Windows are `window` (height, width) large (the image if it is smaller), `stride` apart,
    and the last one on each axis ends at the border, as in mmsegmentation's slide inference.
    """
    _, _, height, width = image.shape
    win_h, win_w = min(window[0], height), min(window[1], width)
    boxes = [
        (top, left)
        for top in window_starts(height, win_h, stride[0])
        for left in window_starts(width, win_w, stride[1])
    ]
    summed = image.new_zeros((1, num_classes, height, width), dtype=torch.float32)
    counts = image.new_zeros((1, 1, height, width), dtype=torch.float32)
    for start in range(0, len(boxes), batch_size):
        batch = boxes[start : start + batch_size]
        crops = torch.cat([image[:, :, y : y + win_h, x : x + win_w] for y, x in batch])
        logits = upsampled_logits(module(crops), (win_h, win_w))
        for (top, left), crop_logits in zip(batch, logits, strict=True):
            summed[0, :, top : top + win_h, left : left + win_w] += crop_logits
            counts[0, :, top : top + win_h, left : left + win_w] += 1
    return summed / counts
