"""SegFormer semantic segmentation from transformers (SegformerForSemanticSegmentation)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, SegformerConfig

from sweep.errors import OptionError
from sweep.models.base import ModelFamily
from sweep.models.errors import ModelUnavailableError
from sweep.models.local_weights import from_local_files

# Parameters of the all-MLP decoder: trained from scratch, hence the larger learning rate.
HEAD_PREFIX = "model.decode_head."


class SegmentationLogits(nn.Module):
    """Wraps a transformers segmenter so that forward(pixels) returns the logits tensor.

    SegFormer predicts at 1/4 of the input resolution: (B, 3, H, W) -> (B, C, H/4, W/4). The
    task upsamples the logits to the label size.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits


@dataclass
class SegformerSegmenter(ModelFamily):
    """A SegFormer family: a pretrained Mix Transformer encoder with a new decode head, or a
    random-init model built from `architecture`.

    Args:
        name: Model name in results.
        task_kind: The task kind it serves ("segmentation").
        pretrained: A Hugging Face id in the local cache (never downloaded) or a
            save_pretrained folder. An encoder (nvidia/mit-b0 .. mit-b5) gets a new decode
            head; a segmenter (such as nvidia/segformer-b5-finetuned-cityscapes-1024-1024)
            keeps its head, with a new classifier if its number of classes differs. None
            builds random weights from `architecture`.
        architecture: SegformerConfig fields for a random-init model (ignored when pretrained).
        mean: Per-channel normalisation mean of the input.
        std: Per-channel normalisation standard deviation.
        head_lr_multiplier: Learning rate of the decode head relative to the encoder's (the
            SegFormer recipe trains its new head at 10x the pretrained encoder's rate).
    """

    name: str
    task_kind: str = "segmentation"
    pretrained: str | None = None
    architecture: dict | None = None
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    head_lr_multiplier: float = 1.0

    def __post_init__(self) -> None:
        self.mean, self.std = tuple(self.mean), tuple(self.std)
        self.architecture = dict(self.architecture) if self.architecture else None
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise OptionError("mean and std need 3 values, std positive", option="model.mean")
        if not self.head_lr_multiplier > 0:
            raise OptionError(
                f"must be positive, got {self.head_lr_multiplier}",
                option="model.head_lr_multiplier",
            )
        if self.pretrained is None:
            self._check_architecture()

    def _check_architecture(self) -> None:
        """Unknown or ill-typed SegformerConfig fields are config errors, caught before work."""
        known = set(SegformerConfig().to_dict())
        unknown = sorted(set(self.architecture or {}) - known)
        if unknown:
            raise OptionError(
                f"{unknown} are not SegformerConfig fields (e.g. hidden_sizes, depths, "
                f"num_attention_heads, sr_ratios, decoder_hidden_size)",
                option="model.architecture",
            )
        try:
            SegformerConfig(**(self.architecture or {}))
        except Exception as error:  # transformers validates with its own error types
            raise OptionError(
                f"not a valid SegformerConfig: {error}", option="model.architecture"
            ) from None

    def build(self, num_classes: int, load_pretrained: bool = True) -> nn.Module:
        """A segmenter with `num_classes` output channels (logits at 1/4 resolution).

        Args:
            num_classes: Number of classes.
            load_pretrained: False builds the pretrained architecture without reading its
                weights (for loading trained weights right after).
        """
        # Lazy: transformers' modeling code imports torch._dynamo and torch.distributed (~2 s).
        from transformers import SegformerForSemanticSegmentation

        if self.pretrained is None:
            config = SegformerConfig(num_labels=num_classes, **(self.architecture or {}))
            return SegmentationLogits(SegformerForSemanticSegmentation(config))
        if load_pretrained:
            # An encoder-only checkpoint gets a new decode head; a segmenter trained on
            # other classes gets a new classifier (ignore_mismatched_sizes).
            model = from_local_files(
                SegformerForSemanticSegmentation.from_pretrained,
                self.pretrained,
                num_labels=num_classes,
                ignore_mismatched_sizes=True,
            )
        else:
            config = self._config(with_weights=False, num_labels=num_classes)
            model = SegformerForSemanticSegmentation(config)
        return SegmentationLogits(model)

    def _config(self, with_weights: bool = True, **overrides) -> SegformerConfig:
        config = from_local_files(
            AutoConfig.from_pretrained, self.pretrained, with_weights, **overrides
        )
        if not isinstance(config, SegformerConfig):
            raise ModelUnavailableError(
                f"model.pretrained={self.pretrained} is a {config.model_type} model, not a "
                f"SegFormer / Mix Transformer checkpoint (e.g. nvidia/mit-b5)"
            )
        return config

    def check_available(self) -> None:
        """Raises ModelUnavailableError before any work if the weights are not here (the
        local files only: nothing is downloaded, and no host is asked)."""
        if self.pretrained is not None:
            self._config()

    def parameter_groups(self, module: nn.Module, lr: float, weight_decay: float) -> list[dict]:
        """AdamW groups of the SegFormer recipe: the decode head at `head_lr_multiplier` x lr;
        no weight decay on biases and normalisation weights (1-d parameters)."""
        groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
        for name, parameter in module.named_parameters():
            if parameter.requires_grad:
                key = (name.startswith(HEAD_PREFIX), parameter.ndim > 1)
                groups.setdefault(key, []).append(parameter)
        return [
            {
                "params": parameters,
                "lr": lr * (self.head_lr_multiplier if head else 1.0),
                "weight_decay": weight_decay if decays else 0.0,
            }
            for (head, decays), parameters in sorted(groups.items())
        ]
