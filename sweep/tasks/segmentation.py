"""Semantic segmentation: per-pixel cross-entropy training, mIoU and mAcc (torchmetrics).

The recipe follows SegFormer as mmsegmentation runs it: random rescale, random crop (padded with
ignored pixels when the image is smaller), horizontal flip; AdamW with polynomial decay; the
logits (1/4 resolution) upsampled bilinearly to the label size before the loss and before the
argmax. Evaluation is at the full resolution of the label masks, by whole-image or
sliding-window inference, and the metrics are accumulated over the whole split (one confusion
matrix, as the Cityscapes scripts and mmsegmentation do), not averaged over images.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF
from transformers import get_polynomial_decay_schedule_with_warmup

from sweep.data.masks import IGNORE_INDEX, lookup_table, read_training_mask
from sweep.data.pixels import read_pixels, to_rgb
from sweep.errors import OptionError
from sweep.tasks.base import (
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

EVAL_MODES = ("whole", "slide")


def _pair(value: int | Sequence[int], option: str) -> tuple[int, int]:
    """An int or [height, width] as (height, width) of positive ints."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise OptionError(f"must be a positive int or [height, width], got {value!r}", option)
    return pair


@functools.lru_cache(maxsize=16)
def _table(label_ids: tuple[int, ...]) -> np.ndarray:
    return lookup_table(label_ids)


def load_labelled_image(file: LabelledFile) -> tuple[torch.Tensor, torch.Tensor]:
    """Decodes an image and its mask: (3, H, W) uint8 pixels and (H, W) int64 class indices.

    The mask's raw ids become classes through the item's `target["label_ids"]` (see
    `sweep.data.cityscapes.CityscapesReader`); other ids become IGNORE_INDEX.
    """
    if file.mask is None:
        raise ValueError(f"{file.path} has no label mask: segmentation needs one per image")
    pixels = to_rgb(read_pixels(file.path))
    mask = read_training_mask(file.mask, _table(tuple((file.target or {})["label_ids"])))
    if mask.shape != pixels.shape[:2]:
        raise ValueError(
            f"the mask {file.mask} is {mask.shape[1]}x{mask.shape[0]} but its image "
            f"{file.path} is {pixels.shape[1]}x{pixels.shape[0]}"
        )
    image = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)
    return image, torch.from_numpy(mask).long()


def resize_pair(
    image: torch.Tensor, mask: torch.Tensor | None, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Bilinear (antialiased) for the pixels; nearest for the labels, never blended."""
    image = TF.resize(image, list(size), InterpolationMode.BILINEAR, antialias=True)
    if mask is not None:
        mask = TF.resize(mask[None], list(size), InterpolationMode.NEAREST_EXACT)[0]
    return image, mask


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    return max(1, round(height * scale)), max(1, round(width * scale))


class TrainSample:
    """Random rescale, random crop (padding ignored), flip and normalisation of one image.

    Randomness comes from torch's generator, which the DataLoader seeds in every worker, so
    a training is reproducible whatever train.loader_workers is.
    """

    def __init__(
        self,
        crop_size: tuple[int, int],
        scale_range: tuple[float, float],
        resize_short_side: int | None,
        flip: bool,
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        self.crop_size, self.scale_range = crop_size, scale_range
        self.resize_short_side, self.flip = resize_short_side, flip
        self.mean, self.std = list(mean), list(std)

    def __call__(
        self, image: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:  # (3, H, W) uint8, (H, W) -> (3, h, w), (h, w)
        height, width = mask.shape
        scale = base_scale(height, width, self.resize_short_side)
        low, high = self.scale_range
        scale *= low + (high - low) * torch.rand(()).item()
        if scale != 1.0:
            image, mask = resize_pair(image, mask, scaled_size(height, width, scale))
        # A random crop; where the image is smaller than the crop, the crop starts at 0 and is
        # padded at the bottom and right: with zeros after normalisation (the mean colour) and
        # with ignored labels, which count in no loss.
        crop_h, crop_w = self.crop_size
        top = int(torch.randint(max(mask.shape[0] - crop_h, 0) + 1, ()).item())
        left = int(torch.randint(max(mask.shape[1] - crop_w, 0) + 1, ()).item())
        image = image[:, top : top + crop_h, left : left + crop_w]
        mask = mask[top : top + crop_h, left : left + crop_w]
        # Normalised after cropping: a 2x rescaled Cityscapes frame is 4096x2048.
        image = TF.normalize(TF.to_dtype(image, torch.float32, scale=True), self.mean, self.std)
        pad_h, pad_w = crop_h - mask.shape[0], crop_w - mask.shape[1]
        if pad_h or pad_w:
            image = F.pad(image, (0, pad_w, 0, pad_h), value=0.0)
            mask = F.pad(mask, (0, pad_w, 0, pad_h), value=IGNORE_INDEX)
        if self.flip and torch.rand(()).item() < 0.5:
            image, mask = image.flip(-1), mask.flip(-1)
        return image.contiguous(), mask.contiguous()


class EvalSample:
    """The full image (rescaled if the task says so) and the mask at its own resolution."""

    def __init__(self, resize_short_side: int | None, mean, std) -> None:
        self.resize_short_side, self.mean, self.std = resize_short_side, list(mean), list(std)

    def __call__(
        self, image: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = mask.shape
        scale = base_scale(height, width, self.resize_short_side)
        if scale != 1.0:
            image, _ = resize_pair(image, None, scaled_size(height, width, scale))
        pixels = TF.to_dtype(image, torch.float32, scale=True)
        return TF.normalize(pixels, self.mean, self.std), mask


def base_scale(height: int, width: int, resize_short_side: int | None) -> float:
    return 1.0 if resize_short_side is None else resize_short_side / min(height, width)


class SegmentationFileDataset(Dataset):
    """Image files with their label masks, through a per-sample transform."""

    def __init__(self, files: list[LabelledFile], transform) -> None:
        self.files, self.transform = files, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(*load_labelled_image(self.files[index]))


def upsampled_logits(logits: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, H, W) float32, bilinear as in SegFormer."""
    return F.interpolate(logits.float(), size=tuple(size), mode="bilinear", align_corners=False)


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the labelled pixels; 0 (with a gradient) if none is labelled."""
    logits = upsampled_logits(logits, labels.shape[-2:])
    total = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (labels != IGNORE_INDEX).sum().clamp(min=1)


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
        self.jaccard = MulticlassJaccardIndex(average="macro", **common).to(device)
        self.accuracy = MulticlassAccuracy(average="none", **common).to(device)

    def update(self, predictions: torch.Tensor, labels: torch.Tensor) -> None:
        """Adds class predictions and labels of any (equal) shape."""
        self.jaccard.update(predictions.flatten(), labels.flatten())
        self.accuracy.update(predictions.flatten(), labels.flatten())

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


class SegmentationTask:
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

    metric_names = ("miou", "macc")

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

    def identity(self) -> dict:
        identity = {
            "kind": "segmentation",
            "metrics": "miou, macc (torchmetrics, dataset-level confusion, ignore 255)",
            "crop_size": list(self.crop_size),
            "scale_range": list(self.scale_range),
            "resize_short_side": self.resize_short_side,
            "flip": self.flip,
            "eval_mode": self.eval_mode,
            "poly_power": self.poly_power,
        }
        if self.eval_mode == "slide":
            identity |= {"window": list(self.window), "stride": list(self.stride)}
        return identity

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
        transform = TrainSample(
            self.crop_size,
            self.scale_range,
            self.resize_short_side,
            self.flip,
            model.mean,
            model.std,
        )
        dataset = SegmentationFileDataset(files, transform)
        # A last batch of one image breaks the decode head's batch norm in training mode.
        drop_last = len(dataset) > options.batch_size
        loader = training_loader(dataset, options, generator, device, drop_last)
        optimizer = torch.optim.AdamW(
            model.parameter_groups(module, options.lr, options.weight_decay), lr=options.lr
        )
        total_steps = options.epochs * len(loader)
        # At least one step of decay: transformers' schedule divides by the decay steps.
        warmup_steps = min(math.ceil(options.warmup_fraction * total_steps), total_steps - 1)
        scheduler = get_polynomial_decay_schedule_with_warmup(
            optimizer,
            warmup_steps,
            total_steps,
            lr_end=0.0,
            power=self.poly_power,
        )
        dtype = autocast_dtype(options.amp, device)
        steps = OptimizerSteps(optimizer, scheduler, dtype)
        epoch_losses, seen, started = [], 0, time.perf_counter()
        for _ in range(options.epochs):
            module.train()
            loss_sum, batches_seen = 0.0, 0
            for images, labels in loader:
                images = images.to(device, non_blocking=True)
                labels = labels.to(device, non_blocking=True)
                with autocast(device, dtype):
                    logits = module(images)  # (B, C, h/4, w/4)
                loss = segmentation_loss(logits, labels)
                steps.step(loss)
                loss_sum += loss.item() * len(labels)
                batches_seen += len(labels)
            seen += batches_seen
            epoch_losses.append(loss_sum / max(batches_seen, 1))
        seconds = time.perf_counter() - started
        save_weights(module, out_dir)
        return train_summary(epoch_losses, len(dataset), seen, seconds, device, dtype)

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

    @torch.no_grad()
    def evaluate(
        self,
        model,
        weights_dir: Path,
        files: list[LabelledFile],
        num_classes: int,
        options: TrainOptions,
    ) -> dict:
        """mIoU and mAcc of the weights in weights_dir on the given files, at mask resolution."""
        device = pick_device()
        module = load_trained(model, weights_dir, num_classes, device)
        dataset = SegmentationFileDataset(
            files, EvalSample(self.resize_short_side, model.mean, model.std)
        )
        # One image at a time: images may differ in size; windows are batched instead.
        # One image at a time: evaluation is at each mask's own resolution.
        loader = evaluation_loader(dataset, None, options, device)
        metrics = SegmentationMetrics(num_classes, device)
        dtype = autocast_dtype(options.amp, device)
        for image, mask in loader:
            image = image[None].to(device, non_blocking=True)
            with autocast(device, dtype):
                # At the mask's own resolution, also when the image was rescaled for inference.
                logits = self.predict(
                    module, image, mask.shape, num_classes, options.eval_batch_size
                )
            metrics.update(logits.argmax(1)[0], mask.to(device))
        return {**metrics.compute(), "images": len(dataset)}
