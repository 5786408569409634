"""Image classification: cross-entropy training, top-1 accuracy (torchmetrics)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch
from torch.utils.data import Dataset
from torchmetrics.classification import MulticlassAccuracy
from transformers import get_cosine_schedule_with_warmup

from sweep.analysis.chance import classification_chance
from sweep.analysis.per_class import per_class_key
from sweep.data.files import LabelledFile
from sweep.inputs.base import to_device
from sweep.models.base import ModelFamily
from sweep.options import TrainOptions
from sweep.tasks.base import Score, TaskKind
from sweep.tasks.runtime import evaluation_loader


def resample_accuracy(outcomes: Mapping[str, np.ndarray], counts: np.ndarray) -> dict:
    """Top-1 accuracy of each bootstrap draw: the drawn images' share of hits; with the
    images' labels, also each class's accuracy ("per_class/accuracy", (B, classes))."""
    correct = np.asarray(outcomes["correct"], dtype=np.float64)
    drawn = {"accuracy": counts @ correct / counts.sum(1)}
    if "label" in outcomes:
        drawn[per_class_key("accuracy")] = per_class_accuracy(outcomes["label"], correct, counts)
    return drawn


def per_class_accuracy(label: np.ndarray, correct: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(B, classes) share of hits among each class's drawn images; NaN for a class with no
    image in a draw. Classes run to the highest label of the test split (every cell holds the
    same labels, so every cell has the same classes).

    A sum over each class's images, not a matmul with a one-hot (N, classes) matrix: that
    would cost B x N x classes per cell (25,250 images and 101 classes for Food-101)."""
    label = np.asarray(label, dtype=np.int64)
    classes = int(label.max()) + 1 if label.size else 0
    out = np.full((len(counts), classes), np.nan)
    if not label.size:
        return out
    order = np.argsort(label, kind="stable")
    present, starts = np.unique(label[order], return_index=True)
    drawn = counts[:, order].astype(np.float64)  # (B, N), images grouped by class
    images = np.add.reduceat(drawn, starts, axis=1)  # (B, present classes)
    hits = np.add.reduceat(drawn * correct[order], starts, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[:, present] = np.where(images > 0, hits / images, np.nan)
    return out


class ClassificationTask(TaskKind):
    """Trains a classifier family on labelled image files and measures top-1 accuracy.

    Recipe: cross-entropy (plus a module's own `auxiliary_loss`), AdamW, a linear warm-up then
    cosine decay. The family's input representation (`ModelFamily.input_representation`)
    makes its samples: for RGB a random-resized crop (`train.min_crop_scale`) and flip, and
    the family's resize and centre crop at evaluation (`sweep.inputs.rgb`).
    """

    kind = "classification"
    metric_names = ("accuracy",)
    option_fields = ("min_crop_scale",)
    resample = staticmethod(resample_accuracy)
    # Accuracy is the share of images whose answer is right: exact intervals where the
    # bootstrap is degenerate (sweep/analysis/intervals.py); chance is the majority class.
    proportion_outcomes = MappingProxyType({"accuracy": "correct"})
    chance_level = staticmethod(classification_chance)

    def train_identity(self) -> dict:
        return {"loss": "cross-entropy", "optimizer": "adamw", "schedule": "warm-up, cosine"}

    def eval_identity(self) -> dict:
        return {"metric": "top-1 accuracy (torchmetrics, micro)"}

    def training_dataset(
        self, model: ModelFamily, files: list[LabelledFile], options: TrainOptions
    ) -> Dataset:
        return model.input_representation().training_dataset(files, options.min_crop_scale)

    def reads_decode_cache(self, model: ModelFamily) -> bool:
        """RGB families read a decode cache's pixels; DCT ones read their JPEG files."""
        return model.input_representation().reads_decode_cache

    def train(
        self,
        model: ModelFamily,
        files: list[LabelledFile],
        num_classes: int,
        options: TrainOptions,
        seed: int,
        out_dir: Path,
    ) -> dict:
        """`fit`, and where the inputs came from (e.g. DCT coefficients read from JPEG files
        or computed from pixels)."""
        summary = super().train(model, files, num_classes, options, seed, out_dir)
        return summary | {"input_sources": model.input_representation().source_counts(files)}

    def optimizer(self, groups: list[dict], options: TrainOptions) -> torch.optim.Optimizer:
        return torch.optim.AdamW(groups, lr=options.lr, weight_decay=options.weight_decay)

    def schedule(self, optimizer, total_steps: int, options: TrainOptions):
        warmup_steps = math.ceil(options.warmup_fraction * total_steps)
        return get_cosine_schedule_with_warmup(optimizer, warmup_steps, total_steps)

    def training_loss(self, module, batch, device: torch.device):
        inputs, labels = batch
        labels = labels.to(device, non_blocking=True)
        loss = torch.nn.functional.cross_entropy(module(to_device(inputs, device)), labels)
        # A module with a training objective of its own (DCTNet's gate count) leaves the term
        # of this forward pass in `auxiliary_loss`.
        auxiliary = getattr(module, "auxiliary_loss", None)
        if auxiliary is not None:
            loss = loss + auxiliary
        return loss, len(labels)

    def evaluation_loader(self, model, files, options, device):
        dataset = model.input_representation().evaluation_dataset(files)
        return evaluation_loader(dataset, options.eval_batch_size, options, device)

    def evaluation_batch(self, batch, device):
        inputs, labels = batch
        return to_device(inputs, device), (labels, labels.to(device))

    def evaluation_forward(self, module, inputs, truth, num_classes, options):
        return module(inputs)  # (B, classes)

    def evaluation_scores(self, modules, model, files, num_classes, device):
        sources = model.input_representation().source_counts(files)
        return [AccuracyScore(module, num_classes, sources, device) for module in modules]


class AccuracyScore(Score):
    """Top-1 accuracy of one classifier (torchmetrics), and each image's hit."""

    def __init__(self, module, num_classes: int, sources: dict, device: torch.device) -> None:
        self.module, self.sources = module, sources
        self.accuracy = MulticlassAccuracy(num_classes=num_classes, average="micro").to(device)
        self.predictions: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []

    def update(self, prediction: torch.Tensor, truth) -> None:
        labels, on_device = truth
        self.accuracy.update(prediction.float(), on_device)
        self.predictions.append(prediction.argmax(1).cpu())
        self.labels.append(labels)

    def result(self, seconds: float) -> dict:
        label = torch.cat(self.labels).numpy()
        prediction = torch.cat(self.predictions).numpy()
        metrics = {
            "accuracy": self.accuracy.compute().item(),
            "images": len(label),
            "input_sources": dict(self.sources),
            # Per image, for the intervals: the label, the top-1 prediction and the hit.
            "outcomes": {"label": label, "prediction": prediction, "correct": label == prediction},
        }
        # A module that selects its input channels per image (DCTNet's gate) says how often
        # it opened each one on these files.
        gate_statistics = getattr(self.module, "gate_statistics", None)
        return metrics | ((gate_statistics and gate_statistics()) or {})
