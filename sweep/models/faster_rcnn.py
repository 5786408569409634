"""Faster R-CNN detectors from torchvision: R50-FPN (COCO or ImageNet weights) and a tiny sibling.

Both build a `torchvision.models.detection.FasterRCNN`: in training mode it takes a list of
(3, H, W) float images in [0, 1] and a list of targets ({"boxes": (N, 4) xyxy pixels,
"labels": (N,) in 1..num_classes, 0 being the background}) and returns a dict of losses; in
eval mode it takes the images and returns one {"boxes", "labels", "scores"} dict per image.
Resizing (multi-scale in training) and normalisation happen inside the model.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models import ResNet50_Weights
from torchvision.models.detection import FasterRCNN, FasterRCNN_ResNet50_FPN_Weights
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.models.resnet import BasicBlock
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign
from torchvision.ops.misc import FrozenBatchNorm2d

from sweep.errors import OptionError
from sweep.models.base import ModelFamily
from sweep.models.errors import ModelUnavailableError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# model.weights of the R50-FPN: what each choice loads, as torchvision's weight enums.
TORCHVISION_WEIGHTS = {
    "coco": FasterRCNN_ResNet50_FPN_Weights.COCO_V1,
    "imagenet": ResNet50_Weights.IMAGENET1K_V1,
}
COCO_CLASSES_WITH_BACKGROUND = 91  # the box predictor of torchvision's COCO checkpoint


class ResizeTransform(GeneralizedRCNNTransform):
    """torchvision's detection transform with its own train sizes and test size.

    torchvision draws the shorter side of each training image from `min_size` and tests at its
    last entry; keeping the two apart lets a multi-scale recipe test at a size it does not train
    at (e.g. train at 480-800, test at 800 as detectron2 does).
    """

    def __init__(
        self,
        train_sizes: tuple[int, ...],
        test_size: int,
        max_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
    ) -> None:
        super().__init__(tuple(train_sizes), max_size, list(mean), list(std))
        self.train_sizes, self.test_size = tuple(train_sizes), test_size

    def train(self, mode: bool = True) -> ResizeTransform:
        super().train(mode)
        self.min_size = self.train_sizes if mode else (self.test_size,)
        return self


def _check_sizes(train_sizes, test_size: int, max_size: int) -> tuple[int, ...]:
    sizes = tuple(int(size) for size in train_sizes)
    if not sizes or min(sizes) < 16 or test_size < 16:
        raise OptionError(
            f"image sizes must be at least 16 pixels, got train_sizes={list(sizes)} and "
            f"test_size={test_size}",
            option="model.train_sizes",
        )
    if max_size < max(*sizes, test_size):
        raise OptionError(
            f"max_size={max_size} is smaller than a train or test size", option="model.max_size"
        )
    return sizes


def hub_checkpoint(weights) -> Path:
    """Where torch.hub caches a torchvision weight file (<torch hub dir>/checkpoints/<file>)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


@dataclass
class FasterRCNNResNet50(ModelFamily):
    """torchvision's fasterrcnn_resnet50_fpn with a new box predictor for the task's classes.

    Weights are read from torch.hub's cache only (no download at run time). With "coco" the
    whole detector starts from the COCO checkpoint and only the box predictor is new; with
    "imagenet" the ResNet-50 starts from ImageNet and FPN, RPN and heads are new (torchvision's
    default when training a detector); "random" starts from nothing.

    Args:
        name: Model name in results.
        task_kind: The task kind it serves ("detection").
        weights: "coco", "imagenet" or "random".
        trainable_backbone_layers: ResNet stages fine-tuned, counted from the top (0-5); the
            others are frozen. Batch norm is frozen whenever weights are pretrained.
        train_sizes: Shorter sides in training, one drawn per image (multi-scale); one value
            gives a fixed-size resize.
        test_size: Shorter side in evaluation.
        max_size: Longest side allowed after resizing.
    """

    eval_fields = ("test_size",)

    name: str
    task_kind: str = "detection"
    weights: str = "coco"
    trainable_backbone_layers: int = 3
    train_sizes: tuple[int, ...] = (480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800)
    test_size: int = 800
    max_size: int = 1333

    def __post_init__(self) -> None:
        if self.weights not in (*TORCHVISION_WEIGHTS, "random"):
            raise OptionError(
                f"'{self.weights}' is not one of {[*TORCHVISION_WEIGHTS, 'random']}",
                option="model.weights",
            )
        if not 0 <= self.trainable_backbone_layers <= 5:
            raise OptionError(
                f"must be 0-5, got {self.trainable_backbone_layers}",
                option="model.trainable_backbone_layers",
            )
        self.train_sizes = _check_sizes(self.train_sizes, self.test_size, self.max_size)

    def checkpoint_path(self) -> Path | None:
        if self.weights == "random":
            return None
        return hub_checkpoint(TORCHVISION_WEIGHTS[self.weights])

    def identity(self) -> dict:
        """The fields (not the display name) and the weight file's name and size: torchvision's
        file names carry a prefix of their SHA-256, so another file gets another training key."""
        identity = super().identity()
        path = self.checkpoint_path()
        if path is not None and path.is_file():
            identity["checkpoint"] = [path.name, path.stat().st_size]
        return identity

    def check_available(self) -> None:
        path = self.checkpoint_path()
        if path is None or path.is_file():
            return
        enum = TORCHVISION_WEIGHTS[self.weights]
        builder = (
            "fasterrcnn_resnet50_fpn(weights='COCO_V1')"
            if self.weights == "coco"
            else "resnet50(weights='IMAGENET1K_V1')"
        )
        module = "torchvision.models.detection" if self.weights == "coco" else "torchvision.models"
        raise ModelUnavailableError(
            f"model.weights={self.weights}: {path.name} is not in the torch hub cache "
            f"({path.parent}) and nothing is downloaded at run time. On a machine with internet "
            f'run python -c "from {module} import {builder.split("(")[0]}; {builder}" (or '
            f"download {enum.url}) and copy the file to {path.parent} (TORCH_HOME moves that "
            f"folder), or choose model.weights=random."
        )

    def build(self, num_classes: int, load_pretrained: bool = True) -> nn.Module:
        """A detector with num_classes + 1 outputs (0 is the background).

        Args:
            num_classes: Object classes of the task.
            load_pretrained: False builds the same architecture without reading any weights
                (for loading fine-tuned weights right after).
        """
        pretrained = self.weights != "random"
        # Pretrained batch-norm statistics stay fixed: detection batches are too small to
        # estimate them (torchvision and detectron2 freeze them the same way).
        backbone = resnet_fpn_backbone(
            backbone_name="resnet50",
            weights=None,
            norm_layer=FrozenBatchNorm2d if pretrained else nn.BatchNorm2d,
            trainable_layers=self.trainable_backbone_layers if pretrained else 5,
        )
        coco = self.weights == "coco"
        model = FasterRCNN(
            backbone, num_classes=COCO_CLASSES_WITH_BACKGROUND if coco else num_classes + 1
        )
        model.transform = ResizeTransform(
            self.train_sizes, self.test_size, self.max_size, IMAGENET_MEAN, IMAGENET_STD
        )
        if load_pretrained and pretrained:
            self.check_available()
            state = torch.load(self.checkpoint_path(), map_location="cpu", weights_only=True)
            if coco:
                self._load(model, state)
            else:
                self._load(model.backbone.body, state, ignore=("fc.",))
        if coco:
            in_features = model.roi_heads.box_predictor.cls_score.in_features
            model.roi_heads.box_predictor = FastRCNNPredictor(in_features, num_classes + 1)
        return model

    def _load(self, module: nn.Module, state: dict, ignore: tuple[str, ...] = ()) -> None:
        """Loads every weight of `module` from `state`; a foreign file is refused by name."""
        state = {key: value for key, value in state.items() if not key.startswith(ignore)}
        own = module.state_dict()
        missing = sorted(set(own) - set(state))
        if missing:
            raise ModelUnavailableError(
                f"{self.checkpoint_path()} is not torchvision's {self.weights} checkpoint for "
                f"this model: {len(missing)} weights missing, e.g. {missing[:3]}"
            )
        module.load_state_dict({key: state[key] for key in own})


class TinyBackbone(nn.Module):
    """A small ResNet (one basic block per stage) with an FPN over its last two stages.

    (B, 3, H, W) -> {"0": (B, C, H/8, W/8), "1": (B, C, H/16, W/16)}, C = fpn_channels.
    """

    def __init__(self, widths: tuple[int, ...], fpn_channels: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages, previous = [], widths[0]
        for width in widths[1:]:
            downsample = nn.Sequential(
                nn.Conv2d(previous, width, 1, stride=2, bias=False), nn.BatchNorm2d(width)
            )
            stages.append(BasicBlock(previous, width, stride=2, downsample=downsample))
            previous = width
        self.stages = nn.ModuleList(stages)
        self.fpn = FeaturePyramidNetwork(list(widths[-2:]), fpn_channels)
        self.out_channels = fpn_channels

    def forward(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        features = self.stem(images)  # (B, widths[0], H/2, W/2)
        outputs = []
        for stage in self.stages:
            features = stage(features)  # each stage halves H and W
            outputs.append(features)
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(outputs[-2:])))


@dataclass
class TinyFasterRCNN(ModelFamily):
    """A small random-init Faster R-CNN that learns the detection demo on a CPU in minutes.

    The architecture is torchvision's FasterRCNN (same RPN, RoIAlign, heads and losses as the
    R50-FPN) on a tiny backbone, with fewer proposals and samples than the R50 defaults.

    Args:
        name: Model name in results.
        task_kind: The task kind it serves ("detection").
        widths: Channels of the stem and of each stride-2 stage (at least 4 entries: the FPN
            reads the last two, at strides 2**(len-1) and 2**len).
        fpn_channels: Channels of the FPN outputs, the RPN and the RoI features.
        anchor_sizes: Anchor sides in pixels, one tuple per FPN level (same count on each).
        aspect_ratios: Anchor height / width ratios, the same on every level.
        representation_size: Width of the two-layer box head.
        train_sizes: Shorter sides in training, one drawn per image.
        test_size: Shorter side in evaluation.
        max_size: Longest side allowed after resizing.
        proposals_train: Proposals kept after NMS per image in training (pre-NMS: twice that).
        proposals_test: Proposals kept after NMS per image in evaluation.
        rpn_samples: Anchors sampled per image for the RPN loss.
        roi_samples: Proposals sampled per image for the box-head loss.
        detections_per_image: Most detections returned per image.
    """

    eval_fields = ("test_size", "proposals_test", "detections_per_image")

    name: str
    task_kind: str = "detection"
    widths: tuple[int, ...] = (16, 32, 64, 128)
    fpn_channels: int = 64
    anchor_sizes: tuple[tuple[int, ...], ...] = ((16, 24), (32, 48))
    aspect_ratios: tuple[float, ...] = (1.0,)
    representation_size: int = 256
    train_sizes: tuple[int, ...] = (128,)
    test_size: int = 128
    max_size: int = 128
    proposals_train: int = 256
    proposals_test: int = 100
    rpn_samples: int = 64
    roi_samples: int = 64
    detections_per_image: int = 50

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        self.anchor_sizes = tuple(tuple(int(s) for s in level) for level in self.anchor_sizes)
        self.aspect_ratios = tuple(float(r) for r in self.aspect_ratios)
        if len(self.widths) < 4:
            raise OptionError(f"needs at least 4 entries, got {self.widths}", "model.widths")
        if len(self.anchor_sizes) != 2 or len(set(map(len, self.anchor_sizes))) != 1:
            raise OptionError(
                f"needs two levels with the same number of sizes, got {self.anchor_sizes}",
                option="model.anchor_sizes",
            )
        self.train_sizes = _check_sizes(self.train_sizes, self.test_size, self.max_size)

    def check_available(self) -> None:
        """Random weights are always available."""

    def build(self, num_classes: int, load_pretrained: bool = True) -> nn.Module:
        del load_pretrained  # random init: nothing to load
        anchors = AnchorGenerator(self.anchor_sizes, (self.aspect_ratios,) * len(self.anchor_sizes))
        roi_pool = MultiScaleRoIAlign(["0", "1"], output_size=7, sampling_ratio=2)
        model = FasterRCNN(
            TinyBackbone(self.widths, self.fpn_channels),
            rpn_anchor_generator=anchors,
            box_roi_pool=roi_pool,
            box_head=TwoMLPHead(self.fpn_channels * 7 * 7, self.representation_size),
            box_predictor=FastRCNNPredictor(self.representation_size, num_classes + 1),
            rpn_pre_nms_top_n_train=2 * self.proposals_train,
            rpn_post_nms_top_n_train=self.proposals_train,
            rpn_pre_nms_top_n_test=2 * self.proposals_test,
            rpn_post_nms_top_n_test=self.proposals_test,
            rpn_batch_size_per_image=self.rpn_samples,
            box_batch_size_per_image=self.roi_samples,
            box_detections_per_img=self.detections_per_image,
        )
        model.transform = ResizeTransform(
            self.train_sizes, self.test_size, self.max_size, IMAGENET_MEAN, IMAGENET_STD
        )
        return model
