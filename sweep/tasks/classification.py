"""Image classification: cross-entropy training, top-1 accuracy (torchmetrics)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torchmetrics.classification import MulticlassAccuracy
from torchvision.transforms import v2
from transformers import get_cosine_schedule_with_warmup

from sweep.models.base import ModelFamily
from sweep.tasks.base import TaskKind
from sweep.tasks.options import LabelledFile, TrainOptions
from sweep.tasks.runtime import (
    ImageFileDataset,
    autocast,
    autocast_dtype,
    evaluation_loader,
    load_trained,
    pick_device,
)


def train_transform(image_size: int, mean, std, min_crop_scale: float) -> v2.Compose:
    """Random-resized-crop and flip; with min_crop_scale 1 only a resize and a flip.

    Resampling blurs pixel-level detail, the very detail compression removes, so a dataset
    whose classes live in fine texture wants min_crop_scale=1.
    """
    if min_crop_scale < 1:
        crop = v2.RandomResizedCrop(image_size, scale=(min_crop_scale, 1.0), antialias=True)
    else:
        crop = v2.Compose([v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)])
    return v2.Compose(
        [
            crop,
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ]
    )


def eval_transform(image_size: int, mean, std) -> v2.Compose:
    return v2.Compose(
        [
            v2.Resize(image_size, antialias=True),
            v2.CenterCrop(image_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ]
    )


class ClassificationTask(TaskKind):
    """Trains a classifier family on labelled image files and measures top-1 accuracy.

    Recipe: random-resized crop (`train.min_crop_scale`) and flip, cross-entropy, AdamW, a
    linear warm-up then cosine decay.
    """

    kind = "classification"
    metric_names = ("accuracy",)
    option_fields = ("min_crop_scale",)

    def train_identity(self) -> dict:
        return {"loss": "cross-entropy", "optimizer": "adamw", "schedule": "warm-up, cosine"}

    def eval_identity(self) -> dict:
        return {"metric": "top-1 accuracy (torchmetrics, micro)"}

    def training_dataset(
        self, model: ModelFamily, files: list[LabelledFile], options: TrainOptions
    ) -> ImageFileDataset:
        transform = train_transform(model.image_size, model.mean, model.std, options.min_crop_scale)
        return ImageFileDataset(files, transform)

    def optimizer(self, groups: list[dict], options: TrainOptions) -> torch.optim.Optimizer:
        return torch.optim.AdamW(groups, lr=options.lr, weight_decay=options.weight_decay)

    def schedule(self, optimizer, total_steps: int, options: TrainOptions):
        warmup_steps = math.ceil(options.warmup_fraction * total_steps)
        return get_cosine_schedule_with_warmup(optimizer, warmup_steps, total_steps)

    def training_loss(self, module, batch, device: torch.device):
        images, labels = batch
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        return torch.nn.functional.cross_entropy(module(images), labels), len(labels)

    @torch.no_grad()
    def evaluate(
        self,
        model: ModelFamily,
        weights_dir: Path,
        files: list[LabelledFile],
        num_classes: int,
        options: TrainOptions,
    ) -> dict:
        """Top-1 accuracy of the weights in weights_dir on the given files."""
        device = pick_device()
        module = load_trained(model, weights_dir, num_classes, device)
        dataset = ImageFileDataset(files, eval_transform(model.image_size, model.mean, model.std))
        loader = evaluation_loader(dataset, options.eval_batch_size, options, device)
        accuracy = MulticlassAccuracy(num_classes=num_classes, average="micro").to(device)
        dtype = autocast_dtype(options.amp, device)
        for images, labels in loader:
            with autocast(device, dtype):
                logits = module(images.to(device, non_blocking=True))
            accuracy.update(logits.float(), labels.to(device))
        return {"accuracy": accuracy.compute().item(), "images": len(dataset)}
