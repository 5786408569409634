"""A trained module's weights in its training's folder: written by the fit loop, read by
every evaluation and by a family's report hook."""

from __future__ import annotations

from pathlib import Path

import torch

from sweep.models.base import ModelFamily

# The trained weights in a training's output folder (a state dict, loaded with weights_only).
WEIGHTS_FILE = "model.pt"


def save_weights(module: torch.nn.Module, out_dir: Path) -> None:
    torch.save(module.state_dict(), Path(out_dir) / WEIGHTS_FILE)


def load_trained(
    model: ModelFamily, weights_dir: Path, num_classes: int, device: torch.device
) -> torch.nn.Module:
    """The module a training wrote to weights_dir, on `device`, in eval mode."""
    module = model.build(num_classes, load_pretrained=False)
    state = torch.load(Path(weights_dir) / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    module.load_state_dict(state)
    return module.to(device).eval()
