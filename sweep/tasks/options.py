"""Training options and labelled files: plain data, importable without torch.

Encode workers import the stage module; keeping torch out of its imports saves every encode
worker the seconds torch takes to load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

AMP_CHOICES = ("auto", "off", "bf16", "fp16")


class LabelledFile(NamedTuple):
    """An encoded image file with its annotation (see `sweep.data.base.ImageItem`).

    `mask` is the absolute path of the dataset's own per-pixel label file, if any.
    """

    path: str
    target: Any
    mask: str | None = None


@dataclass(frozen=True)
class TrainOptions:
    """Training and evaluation hyper-parameters (the `train` config group)."""

    epochs: int = 3
    batch_size: int = 32
    lr: float = 5e-5
    weight_decay: float = 0.05
    warmup_fraction: float = 0.1
    # Smallest area fraction of a random-resized-crop (1.0 disables cropping).
    min_crop_scale: float = 0.5
    amp: str = "auto"
    eval_batch_size: int = 64
    loader_workers: int = 0
