"""Image classification: cross-entropy training, top-1 accuracy (torchmetrics)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torchmetrics.classification import MulticlassAccuracy
from torchvision.transforms import v2
from transformers import get_cosine_schedule_with_warmup

from sweep.tasks.base import (
    ImageFileDataset,
    OptimizerSteps,
    autocast,
    autocast_dtype,
    evaluation_loader,
    load_trained,
    pick_device,
    save_weights,
    seed_everything,
    train_summary,
    training_loader,
)
from sweep.tasks.options import LabelledFile, TrainOptions


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


class ClassificationTask:
    """Trains a classifier family on labelled image files and measures top-1 accuracy."""

    metric_names = ("accuracy",)

    def identity(self) -> dict:
        return {"kind": "classification", "metric": "top-1 accuracy (torchmetrics, micro)"}

    def train(
        self,
        model,
        files: list[LabelledFile],
        num_classes: int,
        options: TrainOptions,
        seed: int,
        out_dir: Path,
    ) -> dict:
        """Trains and writes the weights to out_dir; returns loss per epoch and throughput."""
        generator = seed_everything(seed)
        device = pick_device()
        module = model.build(num_classes).to(device)
        transform = train_transform(model.image_size, model.mean, model.std, options.min_crop_scale)
        dataset = ImageFileDataset(files, transform)
        # A last batch of one image breaks batch-norm layers in training mode.
        drop_last = len(dataset) > options.batch_size
        loader = training_loader(dataset, options, generator, device, drop_last)
        parameters = [p for p in module.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(parameters, lr=options.lr, weight_decay=options.weight_decay)
        total_steps = options.epochs * len(loader)
        scheduler = get_cosine_schedule_with_warmup(
            optimizer, math.ceil(options.warmup_fraction * total_steps), total_steps
        )
        dtype = autocast_dtype(options.amp, device)
        steps = OptimizerSteps(optimizer, scheduler, dtype)
        epoch_losses, seen, started = [], 0, time.perf_counter()
        for _ in range(options.epochs):
            module.train()
            loss_sum = 0.0
            for images, labels in loader:
                images = images.to(device, non_blocking=True)
                labels = labels.to(device, non_blocking=True)
                with autocast(device, dtype):
                    loss = torch.nn.functional.cross_entropy(module(images), labels)
                steps.step(loss)
                loss_sum += loss.item() * len(labels)
                seen += len(labels)
            epoch_losses.append(loss_sum / len(dataset))
        seconds = time.perf_counter() - started
        save_weights(module, out_dir)
        return train_summary(epoch_losses, len(dataset), seen, seconds, device, dtype)

    @torch.no_grad()
    def evaluate(
        self,
        model,
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
