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


def interpolation_of(model: ModelFamily) -> v2.InterpolationMode:
    """The family's resampling filter: its `interpolation`, bilinear without one."""
    return v2.InterpolationMode(getattr(model, "interpolation", None) or "bilinear")


def train_transform(
    image_size: int,
    mean,
    std,
    min_crop_scale: float,
    interpolation: v2.InterpolationMode = v2.InterpolationMode.BILINEAR,
) -> v2.Compose:
    """Random-resized-crop and flip; with min_crop_scale 1 only a resize and a flip.

    Resampling blurs pixel-level detail, the very detail compression removes, so a dataset
    whose classes live in fine texture wants min_crop_scale=1.
    """
    if min_crop_scale < 1:
        crop = v2.RandomResizedCrop(
            image_size, scale=(min_crop_scale, 1.0), interpolation=interpolation, antialias=True
        )
    else:
        crop = v2.Compose(
            [
                v2.Resize(image_size, interpolation=interpolation, antialias=True),
                v2.CenterCrop(image_size),
            ]
        )
    return v2.Compose(
        [
            crop,
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ]
    )


def eval_geometry(model: ModelFamily) -> v2.Compose:
    """The pixels a classifier family evaluates, before normalisation: (3, H, W) uint8 ->
    (3, image_size, image_size) float32 RGB in [0, 1].

    The shorter side is resized to int(image_size / crop_pct) with the family's filter, then
    the centre is cropped. A family without `interpolation` and `crop_pct` is resized
    bilinearly to image_size (crop_pct 1.0), as before those attributes existed.
    """
    size = model.image_size
    crop_pct = getattr(model, "crop_pct", None) or 1.0
    return v2.Compose(
        [
            v2.Resize(int(size / crop_pct), interpolation=interpolation_of(model), antialias=True),
            v2.CenterCrop(size),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )


def eval_transform(model: ModelFamily) -> v2.Compose:
    """`eval_geometry` normalised with the family's mean and std: what the module takes."""
    return v2.Compose([eval_geometry(model), v2.Normalize(model.mean, model.std)])


class ClassificationTask(TaskKind):
    """Trains a classifier family on labelled image files and measures top-1 accuracy.

    Recipe: random-resized crop (`train.min_crop_scale`) and flip, cross-entropy, AdamW, a
    linear warm-up then cosine decay. Evaluation resizes and crops as the family says
    (`eval_transform`).
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
        transform = train_transform(
            model.image_size,
            model.mean,
            model.std,
            options.min_crop_scale,
            interpolation_of(model),
        )
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
        dataset = ImageFileDataset(files, eval_transform(model))
        loader = evaluation_loader(dataset, options.eval_batch_size, options, device)
        accuracy = MulticlassAccuracy(num_classes=num_classes, average="micro").to(device)
        dtype = autocast_dtype(options.amp, device)
        for images, labels in loader:
            with autocast(device, dtype):
                logits = module(images.to(device, non_blocking=True))
            accuracy.update(logits.float(), labels.to(device))
        return {"accuracy": accuracy.compute().item(), "images": len(dataset)}
