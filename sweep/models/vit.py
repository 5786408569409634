"""Vision Transformer classifiers from transformers (ViTForImageClassification)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import ViTConfig

from sweep.models.base import ModelFamily
from sweep.models.local_weights import from_local_files


class LogitsOf(nn.Module):
    """Wraps a transformers classifier so that forward(pixels) returns the logits tensor."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, C)
        return self.model(pixel_values=pixel_values).logits


@dataclass
class VitClassifier(ModelFamily):
    """A ViT family: pretrained (fine-tuned end to end) or built from `architecture`.

    Args:
        name: Model name in results.
        task_kind: The task kind it serves ("classification").
        pretrained: A Hugging Face id in the local cache (never downloaded) or a
            save_pretrained folder; None builds random weights from `architecture`.
        image_size: Side of the square input.
        mean: Per-channel normalisation mean.
        std: Per-channel normalisation standard deviation.
        architecture: ViTConfig fields for a random-init model (ignored when pretrained).
    """

    name: str
    task_kind: str = "classification"
    pretrained: str | None = None
    image_size: int = 224
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    architecture: dict | None = None

    def __post_init__(self) -> None:
        self.mean, self.std = tuple(self.mean), tuple(self.std)
        self.architecture = dict(self.architecture) if self.architecture else None

    def build(self, num_classes: int, load_pretrained: bool = True) -> nn.Module:
        """A classifier with `num_classes` outputs.

        Args:
            num_classes: Number of classes.
            load_pretrained: False builds the pretrained architecture without reading its
                weights (for loading fine-tuned weights right after).
        """
        # Lazy: transformers' modeling code imports torch._dynamo and torch.distributed (~2 s).
        from transformers import ViTForImageClassification

        if self.pretrained is None:
            config = ViTConfig(
                image_size=self.image_size, num_labels=num_classes, **(self.architecture or {})
            )
            return LogitsOf(ViTForImageClassification(config))
        if load_pretrained:
            model = from_local_files(
                ViTForImageClassification.from_pretrained,
                self.pretrained,
                num_labels=num_classes,
                ignore_mismatched_sizes=True,
            )
        else:
            config = from_local_files(
                ViTConfig.from_pretrained,
                self.pretrained,
                with_weights=False,
                num_labels=num_classes,
            )
            model = ViTForImageClassification(config)
        return LogitsOf(model)

    def check_available(self) -> None:
        """Raises ModelUnavailableError before any work if the weights are not here (the
        local files only: nothing is downloaded, and no host is asked)."""
        if self.pretrained is not None:
            from_local_files(ViTConfig.from_pretrained, self.pretrained)
