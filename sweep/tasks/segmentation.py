"""Semantic segmentation: per-pixel cross-entropy training, mIoU and mAcc (torchmetrics).

The recipe follows SegFormer as mmsegmentation runs it: random rescale, random crop (padded with
ignored pixels when the image is smaller), horizontal flip; AdamW with polynomial decay; the
logits (1/4 resolution) upsampled bilinearly to the label size before the loss and before the
argmax. Evaluation is at the full resolution of the label masks, by whole-image or
sliding-window inference, and the metrics are accumulated over the whole split (one confusion
matrix, as the Cityscapes scripts and mmsegmentation do), not averaged over images.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex
from transformers import get_polynomial_decay_schedule_with_warmup

from sweep.analysis.chance import segmentation_chance
from sweep.analysis.per_class import per_class_key
from sweep.data.files import LabelledFile
from sweep.data.masks import IGNORE_INDEX
from sweep.errors import OptionError
from sweep.models.base import ModelFamily
from sweep.options import TrainOptions
from sweep.tasks.base import Score, TaskKind
from sweep.tasks.runtime import (
    evaluation_loader,
)
from sweep.tasks.segmentation_samples import EvalSample, SegmentationFileDataset, TrainSample
from sweep.tasks.sliding_window import sliding_logits, upsampled_logits

EVAL_MODES = ("whole", "slide")


def _pair(value: int | Sequence[int], option: str) -> tuple[int, int]:
    """An int or [height, width] as (height, width) of positive ints."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise OptionError(f"must be a positive int or [height, width], got {value!r}", option)
    return pair


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the labelled pixels; 0 (with a gradient) if none is labelled."""
    logits = upsampled_logits(logits, labels.shape[-2:])
    total = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (labels != IGNORE_INDEX).sum().clamp(min=1)


class SegmentationMetrics:
    """mIoU and mAcc over a whole split, from torchmetrics' dataset-level confusion counts.

    * mIoU: torchmetrics' macro Jaccard index. A class absent from both the ground truth and
      the predictions has no IoU and is left out of the mean; a class predicted but absent
      from the ground truth has IoU 0 and counts (as in the Cityscapes scripts and mmseg).
    * mAcc: the mean of the per-class accuracies (recall, torchmetrics) over the classes that
      occur in the ground truth. torchmetrics' own macro accuracy would also count a class
      that is only predicted, as 0; mmsegmentation leaves it out (its accuracy is undefined),
      and so does this.

    Pixels labelled IGNORE_INDEX count in neither.
    """

    def __init__(self, num_classes: int, device: torch.device) -> None:
        common = {"num_classes": num_classes, "ignore_index": IGNORE_INDEX, "validate_args": False}
        self.num_classes = num_classes
        self.jaccard = MulticlassJaccardIndex(average="macro", **common).to(device)
        self.accuracy = MulticlassAccuracy(average="none", **common).to(device)
        self.confusions: list[torch.Tensor] = []

    def update(self, predictions: torch.Tensor, labels: torch.Tensor) -> None:
        """Adds one image's class predictions and labels of any (equal) shape."""
        self.jaccard.update(predictions.flatten(), labels.flatten())
        self.accuracy.update(predictions.flatten(), labels.flatten())
        labelled = labels.flatten() != IGNORE_INDEX
        pairs = labels.flatten()[labelled] * self.num_classes + predictions.flatten()[labelled]
        counts = torch.bincount(pairs, minlength=self.num_classes**2)
        self.confusions.append(counts.reshape(self.num_classes, self.num_classes).cpu())

    def image_confusions(self) -> np.ndarray:
        """(images, C, C) confusion counts per image (rows: ground truth): the outcomes that
        the intervals resample (their sum is the split's confusion matrix)."""
        if not self.confusions:
            return np.zeros((0, self.num_classes, self.num_classes), dtype=np.int64)
        return torch.stack(self.confusions).numpy().astype(np.int64)

    def compute(self) -> dict:
        confusion = self.jaccard.confmat.double()  # rows: ground truth, columns: prediction
        in_truth = confusion.sum(1) > 0
        per_class_accuracy = self.accuracy.compute().double()
        union = confusion.sum(0) + confusion.sum(1) - confusion.diag()
        iou = confusion.diag() / union
        return {
            "miou": self.jaccard.compute().item() if union.sum() > 0 else float("nan"),
            "macc": per_class_accuracy[in_truth].mean().item() if in_truth.any() else float("nan"),
            # Per class, None where undefined (JSON has no NaN).
            "class_iou": [v.item() if u > 0 else None for v, u in zip(iou, union, strict=True)],
            "class_accuracy": [
                v.item() if present else None
                for v, present in zip(per_class_accuracy, in_truth, strict=True)
            ],
            "labelled_pixels": int(confusion.sum().item()),
        }


def resample_segmentation(outcomes: Mapping[str, np.ndarray], counts: np.ndarray) -> dict:
    """mIoU and mAcc of each bootstrap draw, from the drawn images' summed confusion matrices,
    by the rules of `SegmentationMetrics` (a class with no union has no IoU; mAcc over the
    classes in the drawn ground truth); and each class's IoU ("per_class/iou", (B, C), NaN
    where the class has no union in a draw)."""
    per_image = np.asarray(outcomes["confusion"], dtype=np.float64)
    images, classes = per_image.shape[0], per_image.shape[1]
    confusion = (counts @ per_image.reshape(images, classes * classes)).reshape(
        -1, classes, classes
    )
    diagonal = np.diagonal(confusion, axis1=1, axis2=2)
    truth, predicted = confusion.sum(2), confusion.sum(1)
    union = truth + predicted - diagonal

    def mean_where(numerator, denominator):  # NaN for a draw where no class is defined
        defined = denominator > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(defined, numerator / denominator, 0.0)
            return ratio.sum(1) / defined.sum(1)

    with np.errstate(divide="ignore", invalid="ignore"):
        class_iou = np.where(union > 0, diagonal / union, np.nan)  # (B, C)
    return {
        "miou": mean_where(diagonal, union),
        "macc": mean_where(diagonal, truth),
        per_class_key("iou"): class_iou,
    }


class SegmentationTask(TaskKind):
    """Trains a segmentation model family on images with label masks; measures mIoU and mAcc.

    Args:
        crop_size: Training crop, an int or [height, width]; smaller images are padded with
            ignored pixels.
        scale_range: [low, high] of the random rescale factor in training ([1, 1]: none).
        resize_short_side: Rescale every image so that its short side has this length before
            the random rescale and before inference (VOC: 512); null keeps the dataset's size
            (Cityscapes is 2048x1024 already). Metrics are always at the masks' resolution.
        flip: Random horizontal flips in training.
        eval_mode: "whole" (one forward pass per image) or "slide" (overlapping windows,
            logits averaged where they overlap).
        window: Sliding window size, an int or [height, width].
        stride: Sliding window stride, an int or [height, width].
        poly_power: Power of the polynomial learning-rate decay to 0 (1 = linear, SegFormer).
    """

    kind = "segmentation"
    metric_names = ("miou", "macc")
    resample = staticmethod(resample_segmentation)
    chance_level = staticmethod(segmentation_chance)

    def __init__(
        self,
        crop_size: int | Sequence[int] = 512,
        scale_range: Sequence[float] = (0.5, 2.0),
        resize_short_side: int | None = None,
        flip: bool = True,
        eval_mode: str = "whole",
        window: int | Sequence[int] = 512,
        stride: int | Sequence[int] = 341,
        poly_power: float = 1.0,
    ) -> None:
        self.crop_size = _pair(crop_size, "task.kind.crop_size")
        self.scale_range = tuple(float(s) for s in scale_range)
        if len(self.scale_range) != 2 or not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise OptionError(
                f"must be [low, high] with 0 < low <= high, got {scale_range!r}",
                "task.kind.scale_range",
            )
        if resize_short_side is not None and not (
            isinstance(resize_short_side, int) and resize_short_side > 0
        ):
            raise OptionError(
                f"must be a positive int or null, got {resize_short_side!r}",
                "task.kind.resize_short_side",
            )
        if eval_mode not in EVAL_MODES:
            raise OptionError(
                f"'{eval_mode}' is not one of {list(EVAL_MODES)}", "task.kind.eval_mode"
            )
        self.resize_short_side, self.flip, self.eval_mode = resize_short_side, flip, eval_mode
        self.window = _pair(window, "task.kind.window")
        self.stride = _pair(stride, "task.kind.stride")
        if eval_mode == "slide" and any(
            s > w for s, w in zip(self.stride, self.window, strict=True)
        ):
            raise OptionError(
                f"stride {list(self.stride)} is larger than the window {list(self.window)}: "
                f"pixels between windows would get no prediction",
                "task.kind.stride",
            )
        if not poly_power > 0:
            raise OptionError(f"must be positive, got {poly_power}", "task.kind.poly_power")
        self.poly_power = float(poly_power)

    def train_identity(self) -> dict:
        return {
            "loss": "per-pixel cross-entropy, ignore 255",
            "crop_size": list(self.crop_size),
            "scale_range": list(self.scale_range),
            "resize_short_side": self.resize_short_side,
            "flip": self.flip,
            "poly_power": self.poly_power,
        }

    def eval_identity(self) -> dict:
        identity = {
            "metrics": "miou, macc (torchmetrics, dataset-level confusion, ignore 255)",
            "resize_short_side": self.resize_short_side,
            "eval_mode": self.eval_mode,
        }
        if self.eval_mode == "slide":
            identity |= {"window": list(self.window), "stride": list(self.stride)}
        return identity

    def training_dataset(
        self, model: ModelFamily, files: list[LabelledFile], options: TrainOptions
    ):
        transform = TrainSample(
            self.crop_size,
            self.scale_range,
            self.resize_short_side,
            self.flip,
            model.mean,
            model.std,
        )
        return SegmentationFileDataset(files, transform)

    def optimizer(self, groups: list[dict], options: TrainOptions) -> torch.optim.Optimizer:
        return torch.optim.AdamW(groups, lr=options.lr)

    def schedule(self, optimizer, total_steps: int, options: TrainOptions):
        # At least one step of decay: transformers' schedule divides by the decay steps.
        warmup_steps = min(math.ceil(options.warmup_fraction * total_steps), total_steps - 1)
        return get_polynomial_decay_schedule_with_warmup(
            optimizer, warmup_steps, total_steps, lr_end=0.0, power=self.poly_power
        )

    def training_loss(self, module, batch, device: torch.device):
        images, labels = batch
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        logits = module(images)  # (B, C, h/4, w/4)
        return segmentation_loss(logits, labels), len(labels)

    @torch.no_grad()
    def predict(
        self, module, image: torch.Tensor, size: Sequence[int], num_classes: int, batch_size: int
    ) -> torch.Tensor:
        """Logits of a (1, 3, h, w) image upsampled to `size` (H, W): (1, C, H, W) float32."""
        if self.eval_mode == "slide":
            logits = sliding_logits(
                module, image, num_classes, self.window, self.stride, batch_size
            )
        else:
            logits = module(image)
        return upsampled_logits(logits, size)

    def evaluation_loader(self, model, files, options, device):
        dataset = SegmentationFileDataset(
            files, EvalSample(self.resize_short_side, model.mean, model.std)
        )
        # One image at a time: evaluation is at each mask's own resolution.
        return evaluation_loader(dataset, None, options, device)

    def evaluation_batch(self, batch, device):
        image, mask = batch
        return image[None].to(device, non_blocking=True), mask.to(device)  # (1, 3, h, w), (H, W)

    def evaluation_forward(self, module, inputs, truth, num_classes, options):
        # At the mask's resolution, also when the image was rescaled for inference.
        return self.predict(module, inputs, truth.shape, num_classes, options.eval_batch_size)

    def evaluation_scores(self, modules, model, files, num_classes, device):
        return [IouScore(num_classes, device) for _ in modules]


class IouScore(Score):
    """mIoU and mAcc of one segmenter over the split (`SegmentationMetrics`), and each
    image's confusion counts."""

    def __init__(self, num_classes: int, device: torch.device) -> None:
        self.metrics = SegmentationMetrics(num_classes, device)
        self.images = 0

    def update(self, prediction: torch.Tensor, truth: torch.Tensor) -> None:
        self.metrics.update(prediction.argmax(1)[0], truth)  # (1, C, H, W) logits, (H, W)
        self.images += 1

    def result(self, seconds: float) -> dict:
        return {
            **self.metrics.compute(),
            "images": self.images,
            "outcomes": {"confusion": self.metrics.image_confusions()},
        }
