"""ResNet linear probe on frozen self-supervised (SwAV) features."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from sweep.models.base import ModelFamily
from sweep.models.errors import ModelUnavailableError

# The file torch.hub.load("facebookresearch/swav:main", "resnet50") caches.
SWAV_HUB_FILE = "swav_800ep_pretrain.pth.tar"
LAYERS = {
    10: (BasicBlock, [1, 1, 1, 1]),
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
}


def hub_checkpoint_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / SWAV_HUB_FILE


class ResNetClassifier(nn.Module):
    """A ResNet backbone and a linear head; a frozen backbone makes it a linear probe.

    A frozen backbone stays in eval mode (fixed batch-norm statistics) and gets no gradients.
    """

    def __init__(self, backbone: ResNet, num_labels: int, frozen_backbone: bool) -> None:
        super().__init__()
        feature_dim = backbone.fc.in_features
        backbone.fc = nn.Identity()
        backbone.requires_grad_(not frozen_backbone)
        self.backbone = backbone
        self.frozen_backbone = frozen_backbone
        # Standardising the features first (a BatchNorm without affine, which folds into the
        # linear layer at inference) makes one learning rate fit every backbone.
        self.head = nn.Sequential(
            nn.BatchNorm1d(feature_dim, affine=False), nn.Linear(feature_dim, num_labels)
        )

    def train(self, mode: bool = True) -> ResNetClassifier:
        super().train(mode)
        if self.frozen_backbone:
            self.backbone.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, C)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen_backbone):
            features = self.backbone(images)  # (B, feature_dim)
        return self.head(features)


@dataclass
class SwavResNet(ModelFamily):
    """A ResNet classifier: SwAV weights with a linear probe, or a random-init small sibling.

    Args:
        name: Model name in results.
        task_kind: The task kind it serves ("classification").
        weights: Checkpoint file of the backbone; None reads torch.hub's cache of
            facebookresearch/swav:main resnet50; "random" keeps random weights (tiny sibling).
        depth: ResNet depth: 10, 18, 34 or 50.
        frozen_backbone: Train the linear head only (the linear-probe protocol). Random
            weights carry no information to probe, so the random-init sibling trains it all.
        image_size: Side of the square input.
        mean: Per-channel normalisation mean.
        std: Per-channel normalisation standard deviation.
    """

    name: str
    task_kind: str = "classification"
    weights: str | None = None
    depth: int = 50
    frozen_backbone: bool = True
    image_size: int = 224
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)

    def __post_init__(self) -> None:
        self.mean, self.std = tuple(self.mean), tuple(self.std)
        if self.depth not in LAYERS:
            raise ValueError(f"model.depth={self.depth}: use one of {sorted(LAYERS)}")

    def identity(self) -> dict:
        """What determines trained weights: the fields (not the display name) and, for a
        checkpoint, its size and time, so that a replaced file gets new training keys."""
        identity = super().identity()
        path = self.checkpoint_path()
        if path is not None and path.is_file():
            stat = path.stat()
            identity["checkpoint"] = [str(path), stat.st_size, stat.st_mtime_ns]
        return identity

    def checkpoint_path(self) -> Path | None:
        if self.weights == "random":
            return None
        return Path(self.weights) if self.weights else hub_checkpoint_path()

    def check_available(self) -> None:
        """Raises ModelUnavailableError, saying how to provide it, when the checkpoint is not
        here (torch.hub's cache is only looked into: nothing is downloaded at run time)."""
        path = self.checkpoint_path()
        if path is None or path.is_file():
            return
        if self.weights:
            raise ModelUnavailableError(
                f"model.weights={self.weights}: no file at {path.absolute()}. Pass a SwAV "
                f"checkpoint such as {SWAV_HUB_FILE}, model.weights=null for torch.hub's cache, "
                f"or model.weights=random."
            )
        raise ModelUnavailableError(
            f"model.weights=null reads SwAV's {SWAV_HUB_FILE} from the torch hub cache "
            f"({path.parent}), and it is not there; nothing is downloaded at run time. On a "
            f'machine with internet run python -c "import torch; torch.hub.load('
            f"'facebookresearch/swav:main', 'resnet50')\" and copy {path.parent} here "
            f"(TORCH_HOME moves that folder), or download {SWAV_HUB_FILE} and pass "
            f"model.weights=/path/to/{SWAV_HUB_FILE}."
        )

    def build(self, num_classes: int, load_pretrained: bool = True) -> nn.Module:
        block, layers = LAYERS[self.depth]
        backbone = ResNet(block, layers)
        path = self.checkpoint_path()
        if load_pretrained and path is not None:
            self.check_available()
            load_backbone_weights(backbone, path)
        return ResNetClassifier(backbone, num_classes, self.frozen_backbone)


def load_backbone_weights(backbone: ResNet, path: Path) -> None:
    """Loads a SwAV checkpoint (keys prefixed "module.", with projection head and prototypes)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    state = {key.removeprefix("module."): value for key, value in state.items()}
    own_keys = set(backbone.state_dict())
    backbone_state = {key: value for key, value in state.items() if key in own_keys}
    missing = own_keys - set(backbone_state) - {"fc.weight", "fc.bias"}
    if missing:
        raise ModelUnavailableError(
            f"{path} is not a checkpoint of this ResNet: {len(missing)} weights missing, "
            f"e.g. {sorted(missing)[:3]}"
        )
    backbone.load_state_dict(backbone_state, strict=False)
