"""MMDetection's Faster R-CNN R50-FPN (the 1x config), for users who have mmdet installed.

mmdet 3.3 needs mmcv 2.1 with its compiled ops, which has no wheel for this torch: `make mmdet`
builds it from source (scripts/install_mmdet.sh). Nothing here imports mmdet until a model is
built, so the config check and the rest of the sweep work without it.

The wrapper gives the detector torchvision's detection interface (see sweep.models.faster_rcnn),
so the detection task trains and evaluates it like the others: it resizes each image as the
config's pipeline does (keep-ratio into `scale`), builds mmdet's data samples, and returns
mmdet's losses in training and rescaled detections in evaluation.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from sweep.errors import OptionError
from sweep.models.base import ModelFamily
from sweep.models.errors import ModelUnavailableError
from sweep.models.faster_rcnn import TORCHVISION_WEIGHTS, hub_checkpoint

CONFIG = "faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py"
INSTALL_HINT = (
    "run `make mmdet` (the first time on a machine 10-30 minutes: it builds mmcv 2.1.0 from "
    "source with -std=c++20, keeps the wheel in ~/.cache/sweep/wheels, then installs mmdet "
    "3.3.0 and mmengine into the project's environment; later, a reinstall in seconds)"
)


def mmdet_available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("mmdet", "mmcv", "mmengine"))


def _versions() -> dict[str, str | None]:
    found = {}
    for name in ("mmdet", "mmcv", "mmengine"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


class MmdetDetector(nn.Module):
    """An mmdet detector behind torchvision's detection interface.

    forward(images, targets) -> dict of losses (training); forward(images) -> list of
    {"boxes", "labels", "scores"} in input pixel coordinates (evaluation). Images are (3, H, W)
    floats in [0, 1]; labels count the background as 0, as in torchvision.
    """

    def __init__(self, detector: nn.Module, scale: tuple[int, int]) -> None:
        super().__init__()
        self.detector = detector
        self.scale = scale  # (longest, shortest) side limits, mmdet's Resize(keep_ratio=True)

    def _inputs(self, images: list[torch.Tensor], targets: list[dict] | None) -> dict:
        from mmdet.structures import DetDataSample
        from mmengine.structures import InstanceData

        inputs, samples = [], []
        long_limit, short_limit = max(self.scale), min(self.scale)
        for index, image in enumerate(images):
            height, width = image.shape[-2:]
            factor = min(long_limit / max(height, width), short_limit / min(height, width))
            new_h, new_w = int(height * factor + 0.5), int(width * factor + 0.5)
            resized = F.interpolate(
                image[None], size=(new_h, new_w), mode="bilinear", align_corners=False
            )[0]
            inputs.append(resized * 255)  # mmdet normalises 0-255 pixels
            scale_x, scale_y = new_w / width, new_h / height
            sample = DetDataSample(
                metainfo={
                    "img_shape": (new_h, new_w),
                    "ori_shape": (height, width),
                    "scale_factor": (scale_x, scale_y),
                }
            )
            if targets is not None:
                boxes = targets[index]["boxes"] * boxes_scale(scale_x, scale_y, image.device)
                sample.gt_instances = InstanceData(
                    bboxes=boxes, labels=targets[index]["labels"] - 1
                )
            samples.append(sample)
        return self.detector.data_preprocessor(
            {"inputs": inputs, "data_samples": samples}, training=self.training
        )

    def forward(self, images: list[torch.Tensor], targets: list[dict] | None = None):
        data = self._inputs(images, targets if self.training else None)
        if self.training:
            losses = self.detector.loss(data["inputs"], data["data_samples"])
            # As mmengine's parse_losses: only entries named loss*, lists summed (per level).
            return {
                name: sum(value) if isinstance(value, list | tuple) else value
                for name, value in losses.items()
                if "loss" in name
            }
        results = self.detector.predict(data["inputs"], data["data_samples"], rescale=True)
        return [
            {
                "boxes": result.pred_instances.bboxes,
                "labels": result.pred_instances.labels + 1,
                "scores": result.pred_instances.scores,
            }
            for result in results
        ]


def boxes_scale(scale_x: float, scale_y: float, device: torch.device) -> torch.Tensor:
    return torch.tensor([scale_x, scale_y, scale_x, scale_y], device=device)


@dataclass
class MmdetFasterRCNN(ModelFamily):
    """MMDetection's faster-rcnn_r50_fpn_1x config with a head for the task's classes.

    Args:
        name: Model name in results.
        task_kind: The task kind it serves ("detection").
        weights: "imagenet" (the config's own start: torchvision's ResNet-50, read from the
            torch hub cache), "random", or the path of an MMDetection checkpoint of this
            config (e.g. the COCO one from its model zoo); its box head is replaced.
        scale: (longest, shortest) side limits of the keep-ratio resize (the config's 1333x800).
        config: The path of an MMDetection config file of the user's own (a Faster R-CNN whose
            box head has `num_classes`), instead of mmdet's faster-rcnn_r50_fpn_1x_coco.py; its
            content is part of the training key.
    """

    name: str
    task_kind: str = "detection"
    weights: str = "imagenet"
    scale: tuple[int, int] = (1333, 800)
    config: str | None = None

    def __post_init__(self) -> None:
        self.scale = tuple(int(side) for side in self.scale)
        if len(self.scale) != 2 or min(self.scale) < 16:
            raise OptionError(f"needs two sides of at least 16, got {self.scale}", "model.scale")
        if self.config is not None and not Path(self.config).is_file():
            raise OptionError(
                f"{self.config} is not a file: pass the path of an MMDetection config "
                f"(e.g. a copy of faster-rcnn_r50_fpn_1x_coco.py), or leave it out for mmdet's",
                "model.config",
            )

    def checkpoint_path(self) -> Path | None:
        if self.weights == "random":
            return None
        if self.weights == "imagenet":
            return hub_checkpoint(TORCHVISION_WEIGHTS["imagenet"])
        return Path(self.weights)

    def identity(self) -> dict:
        identity = super().identity()
        if self.config is None:
            identity["config"] = CONFIG
        else:  # the file's content, not its path: an edited config retrains
            text = Path(self.config).read_bytes()
            identity["config"] = [Path(self.config).name, hashlib.sha256(text).hexdigest()]
        identity["versions"] = _versions()
        path = self.checkpoint_path()
        if path is not None and path.is_file():
            identity["checkpoint"] = [path.name, path.stat().st_size]
        return identity

    def check_available(self) -> None:
        if not mmdet_available():
            raise ModelUnavailableError(
                f"model=faster_rcnn_mmdet needs MMDetection, which is not installed: "
                f"{INSTALL_HINT}. model=faster_rcnn is the same detector from torchvision."
            )
        if self.config is not None:
            self._read_users_config()
        path = self.checkpoint_path()
        if path is not None and not path.is_file():
            if self.weights == "imagenet":
                raise ModelUnavailableError(
                    f"model.weights=imagenet: {path.name} is not in the torch hub cache "
                    f"({path.parent}) and nothing is downloaded at run time. On a machine with "
                    f'internet run python -c "from torchvision.models import resnet50; '
                    f"resnet50(weights='IMAGENET1K_V1')\" and copy the file to {path.parent}, "
                    f"or choose model.weights=random."
                )
            raise ModelUnavailableError(f"model.weights={self.weights}: no such file")

    def _read_users_config(self):
        """model.config as mmengine reads it; a file it cannot read, or one with no Faster
        R-CNN box head, is refused before any work, naming the file."""
        from mmengine.config import Config

        try:
            cfg = Config.fromfile(self.config)
            cfg.model.roi_head.bbox_head  # noqa: B018  the head the task's classes go into
        except Exception as error:  # mmengine raises anything from a user's Python file
            raise ModelUnavailableError(
                f"model.config={self.config} is not an MMDetection Faster R-CNN config "
                f"({type(error).__name__}: {error}); pass a config file such as a copy of "
                f"mmdet's {CONFIG}"
            ) from None
        return cfg

    def mmdet_config(self, num_classes: int):
        """The mmdet config of the detector, with the head and normalisation set for us."""
        import mmdet
        from mmengine.config import Config

        path = Path(mmdet.__file__).parent / ".mim" / "configs" / CONFIG
        if self.config is not None:
            path = Path(self.config)
        elif not path.is_file():
            raise ModelUnavailableError(
                f"mmdet is installed without its configs ({path} is missing): reinstall it "
                f"with pip (`make mmdet`), which ships them inside the package"
            )
        cfg = Config.fromfile(str(path))
        cfg.model.roi_head.bbox_head.num_classes = num_classes
        # Our images are RGB already (mmdet's loader reads BGR with OpenCV).
        cfg.model.data_preprocessor.bgr_to_rgb = False
        checkpoint = self.checkpoint_path() if self.weights == "imagenet" else None
        # The local file instead of mmengine's torchvision:// download.
        cfg.model.backbone.init_cfg = (
            {"type": "Pretrained", "checkpoint": str(checkpoint)} if checkpoint else None
        )
        return cfg

    def build(self, num_classes: int, load_pretrained: bool = True) -> nn.Module:
        self.check_available()
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
        from mmengine.logging import MMLogger

        register_all_modules(init_default_scope=True)
        detector = MODELS.build(self.mmdet_config(num_classes).model)
        if load_pretrained:
            # Initialises every layer as the config says (the backbone from ImageNet), without
            # mmengine's log line for each of its weights.
            logger = MMLogger.get_current_instance()
            level = logger.level
            logger.setLevel(logging.WARNING)
            try:
                detector.init_weights()
            finally:
                logger.setLevel(level)
            if self.weights not in ("imagenet", "random"):
                self._load_checkpoint(detector)
        return MmdetDetector(detector, self.scale)

    def _load_checkpoint(self, detector: nn.Module) -> None:
        """An mmdet checkpoint of this config; weights whose shape differs (the head) are new."""
        try:
            state = torch.load(self.checkpoint_path(), map_location="cpu", weights_only=True)
        except Exception as error:  # unpickling refused: the file holds more than weights
            raise ModelUnavailableError(
                f"{self.checkpoint_path()} holds objects other than weights ({error}); save "
                f"its 'state_dict' alone with torch.save and pass that file"
            ) from None
        state = state.get("state_dict", state)
        own = detector.state_dict()
        usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        if len(usable) < len(own) // 2:
            raise ModelUnavailableError(
                f"{self.checkpoint_path()} is not a checkpoint of {CONFIG}: only {len(usable)} "
                f"of {len(own)} weights fit"
            )
        detector.load_state_dict(usable, strict=False)
