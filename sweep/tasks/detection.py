"""Object detection: Faster R-CNN style training, VOC mAP@0.5 and COCO mAP (torchmetrics).

Targets are {"boxes": [[x1, y1, x2, y2], ...] (0-based pixel edges of the stored image),
"labels": [class index, ...], "difficult": [bool, ...]} (see `sweep.data.voc`; COCO's crowd
regions arrive as difficult objects, `sweep.data.coco`). Models follow torchvision's detection
interface: labels 1..num_classes, 0 being the background.

Both metrics come from one evaluation; `metric` decides which one is the headline (first in
`metric_names`: the report's relative metric, recommendation and budget law use it):
`voc` puts VOC mAP@0.5 first, `coco` COCO's mAP@[.5:.95], as each benchmark reports.

Difficult objects follow the VOC protocol as far as COCO's evaluation allows: they are left out
of the training targets; in evaluation they are COCO "crowd" regions, so a detection on one is
neither a true nor a false positive and a missed one is no false negative. Two deviations from
the VOC devkit remain, both from pycocotools (behind torchmetrics' MeanAveragePrecision):

* AP is COCO's 101-point interpolated precision, not VOC 2010+'s all-point area (the two differ
  by less than 1 point of mAP on real detectors);
* a detection overlaps a difficult object by intersection over the detection's own area, and is
  matched to a regular object first when it could match both.

Training is seeded and bit-reproducible on the CPU; on a GPU, RoIAlign's backward pass adds with
atomics, so two trainings agree only up to float rounding.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset
from torchmetrics.detection import MeanAveragePrecision

from sweep.analysis.detection_chance import detection_chance
from sweep.analysis.detection_map import MapResample
from sweep.analysis.detection_matching import ImageDetections, detection_outcomes
from sweep.data.files import LabelledFile
from sweep.data.pixels import read_pixels, to_rgb
from sweep.errors import OptionError, require_choice
from sweep.models.base import ModelFamily
from sweep.options import TrainOptions
from sweep.tasks.base import Score, TaskKind
from sweep.tasks.runtime import (
    evaluation_loader,
)

METRIC = (
    "VOC mAP@0.5 and COCO mAP@[.5:.95] (torchmetrics MeanAveragePrecision, pycocotools, "
    "101-point interpolation, difficult objects as crowd regions)"
)
# The headline first. The VOC entry keeps its identity string as it was before COCO's existed,
# so that existing VOC evaluations keep their keys.
METRICS = {
    "voc": (("map_50", "map"), METRIC),
    "coco": (
        ("map", "map_50"),
        "COCO mAP@[.5:.95] and mAP@0.5 (torchmetrics MeanAveragePrecision, pycocotools, "
        "101-point interpolation, crowd regions neither found nor missed)",
    ),
}


def target_tensors(target: dict) -> dict[str, torch.Tensor]:
    """A target as tensors: boxes (N, 4) float32, labels (N,) int64, difficult (N,) bool."""
    boxes = torch.tensor(target["boxes"], dtype=torch.float32).reshape(-1, 4)
    labels = torch.tensor(target["labels"], dtype=torch.int64).reshape(-1)
    difficult = torch.tensor(target.get("difficult") or [False] * len(labels), dtype=torch.bool)
    return {"boxes": boxes, "labels": labels, "difficult": difficult.reshape(-1)}


def read_image(path: str) -> torch.Tensor:
    """(3, H, W) float32 in [0, 1]; the model normalises and resizes it."""
    pixels = to_rgb(read_pixels(path))  # (H, W, 3) uint8
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float().div_(255)


class DetectionDataset(Dataset):
    """Images and targets; in training, difficult objects are dropped and images flipped."""

    def __init__(self, files: list[LabelledFile], train: bool, hflip: float = 0.0) -> None:
        self.files = files
        self.train = train
        self.hflip = hflip

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        path, target, _ = self.files[index]
        image = read_image(path)
        target = target_tensors(target)
        if not self.train:
            return image, target
        keep = ~target["difficult"]
        boxes, labels = target["boxes"][keep], target["labels"][keep]
        height, width = image.shape[1:]
        # Boxes are clipped to the image; one that leaves nothing is dropped (torchvision
        # refuses empty boxes in training).
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
        kept = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, labels = boxes[kept], labels[kept]
        # The global generator (seeded per training) draws the flips: reproducible.
        if self.hflip > 0 and torch.rand(()) < self.hflip:
            image = image.flip(-1)
            boxes = torch.stack(
                [width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], 1
            )
        # The model's labels count the background as 0.
        return image, {"boxes": boxes, "labels": labels + 1}


def collate(batch: list) -> tuple[list, list]:
    """Images of different sizes stay a list; the model batches them after resizing."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)


def warmup_cosine(total_steps: int, warmup_steps: int):
    """Learning-rate factor: linear warm-up from 0.001, then cosine decay to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return 0.001 + (1 - 0.001) * step / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


class DetectionTask(TaskKind):
    """Trains a detector with SGD and measures VOC mAP@0.5 and COCO mAP@[.5:.95].

    Args:
        momentum: SGD momentum.
        hflip: Probability of a horizontal flip of a training image.
        grad_clip: Largest gradient norm (None: no clipping); keeps a random-init detector's
            first steps from diverging.
        metric: The headline: "voc" (mAP@0.5, then mAP) or "coco" (mAP, then mAP@0.5). Part
            of the evaluation keys only: changing it re-evaluates without retraining.
    """

    kind = "detection"
    # The class default is VOC's; an instance holds the order its `metric` chose.
    metric_names = METRICS["voc"][0]
    # Detection batches are small and the detectors' batch norm is frozen or absent.
    drop_incomplete_batch = False
    collate = staticmethod(collate)
    # A detector at chance: one answering every image with each class's median box.
    chance_level = staticmethod(detection_chance)

    def __init__(
        self,
        momentum: float = 0.9,
        hflip: float = 0.5,
        grad_clip: float | None = None,
        metric: str = "voc",
    ):
        if not 0 <= momentum < 1:
            raise OptionError(f"must be in [0, 1), got {momentum}", option="task.kind.momentum")
        if not 0 <= hflip <= 1:
            raise OptionError(f"must be in [0, 1], got {hflip}", option="task.kind.hflip")
        if grad_clip is not None and not grad_clip > 0:
            raise OptionError(f"must be positive, got {grad_clip}", option="task.kind.grad_clip")
        self.momentum = momentum
        self.hflip = hflip
        self.max_norm = grad_clip
        self.metric = require_choice(metric, METRICS, "task.kind.metric")
        self.metric_names = METRICS[self.metric][0]
        # The bootstrap recounts each cell's stored match tables (sweep/analysis/).
        self.resample = MapResample(self.metric)

    def train_identity(self) -> dict:
        return {
            "optimizer": "sgd",
            "schedule": "linear warm-up, cosine",
            "momentum": self.momentum,
            "hflip": self.hflip,
            "grad_clip": self.max_norm,
        }

    def eval_identity(self) -> dict:
        # outcomes 2: outcomes.npz holds each image's detections, truth and match tables (the
        # bootstrap's); detection evaluations stored before it have none and rerun.
        return {"metric": METRICS[self.metric][1], "outcomes": 2}

    def training_dataset(
        self, model: ModelFamily, files: list[LabelledFile], options: TrainOptions
    ):
        return DetectionDataset(files, train=True, hflip=self.hflip)

    def optimizer(self, groups: list[dict], options: TrainOptions) -> torch.optim.Optimizer:
        return torch.optim.SGD(
            groups, lr=options.lr, momentum=self.momentum, weight_decay=options.weight_decay
        )

    def schedule(self, optimizer, total_steps: int, options: TrainOptions):
        warmup_steps = math.ceil(options.warmup_fraction * total_steps)
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, warmup_cosine(total_steps, warmup_steps)
        )

    def training_loss(self, module, batch, device: torch.device):
        images, targets = batch
        images = [image.to(device, non_blocking=True) for image in images]
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        losses = module(images, targets)
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the detection loss became {loss.item()} ({_describe(losses)}): "
                f"lower train.lr or set task.kind.grad_clip"
            )
        return loss, len(images)

    def grad_clip(self) -> float | None:
        return self.max_norm

    def summary_extras(self, files: list[LabelledFile]) -> dict:
        return {"objects": sum(len(target["labels"]) for _, target, _ in files)}

    def evaluation_loader(self, model, files, options, device):
        dataset = DetectionDataset(files, train=False)
        return evaluation_loader(
            dataset, options.eval_batch_size, options, device, collate_fn=collate
        )

    def evaluation_batch(self, batch, device):
        images, targets = batch
        return [image.to(device, non_blocking=True) for image in images], targets

    def evaluation_forward(self, module, inputs, truth, num_classes, options):
        return module(inputs)

    def evaluation_scores(self, modules, model, files, num_classes, device):
        return [MapScore(len(files), num_classes) for _ in modules]


class MapScore(Score):
    """COCO-style mAP of one detector (torchmetrics' MeanAveragePrecision, pycocotools), and
    per image its detections, truth and match tables: the outcomes the bootstrap recounts.

    "images_per_second" is the model's share of the group's time: the files times the models
    over the seconds the whole group took, decoding included.
    """

    def __init__(self, images: int, num_classes: int) -> None:
        self.images = images
        self.num_classes = num_classes
        self.metric = mean_average_precision()
        self.per_image: list[ImageDetections] = []

    def update(self, prediction: list[dict], truth: list[dict]) -> None:
        detections = [
            {
                "boxes": d["boxes"].float().cpu(),
                "scores": d["scores"].float().cpu(),
                "labels": d["labels"].cpu() - 1,
            }
            for d in prediction
        ]
        targets = [metric_target(t) for t in truth]
        self.metric.update(detections, targets)
        self.per_image.extend(
            ImageDetections(
                boxes=d["boxes"].numpy(),
                scores=d["scores"].numpy(),
                labels=d["labels"].numpy(),
                truth_boxes=t["boxes"].numpy(),
                truth_labels=t["labels"].numpy(),
                crowd=t["iscrowd"].numpy().astype(bool),
            )
            for d, t in zip(detections, targets, strict=True)
        )

    def result(self, seconds: float) -> dict:
        return compute_metrics(self.metric) | {
            "images": self.images,
            "images_per_second": self.images / seconds,
            "outcomes": detection_outcomes(self.per_image, self.num_classes),
        }


def mean_average_precision() -> MeanAveragePrecision:
    """COCO evaluation (pycocotools) of xyxy boxes: mAP@[.5:.95], mAP@0.5, mAP@0.75, recall."""
    return MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools")


def metric_target(target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A target for MeanAveragePrecision: difficult objects become crowd regions."""
    return {
        "boxes": target["boxes"],
        "labels": target["labels"],
        "iscrowd": target["difficult"].to(torch.int64),
    }


def compute_metrics(metric: MeanAveragePrecision) -> dict[str, float]:
    """The task's metrics; -1 (COCO's "no ground truth") where the test split has no object."""
    values = metric.compute()
    return {
        "map_50": values["map_50"].item(),
        "map": values["map"].item(),
        "map_75": values["map_75"].item(),
        "mar_100": values["mar_100"].item(),
    }


def _describe(losses: dict[str, torch.Tensor]) -> str:
    return ", ".join(f"{name} {value.item():.3g}" for name, value in losses.items())
