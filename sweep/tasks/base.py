"""Shared pieces of every task kind: device, mixed precision, seeding, image files."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from sweep.data.pixels import read_pixels, to_rgb
from sweep.tasks.options import LabelledFile


def pick_device() -> torch.device:
    """The GPU Ray assigned to this task (it sets CUDA_VISIBLE_DEVICES), else the CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """Mixed-precision dtype: bf16 where the GPU has it, fp16 otherwise, none on the CPU."""
    if device.type != "cuda" or amp == "off":
        return None
    native_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)  # Ampere or newer
    if amp == "fp16" or (amp == "auto" and not native_bf16):
        return torch.float16
    return torch.bfloat16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> torch.Generator:
    """Seeds Python, NumPy and torch; returns a generator for the data order."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


class ImageFileDataset(Dataset):
    """Decodes image files of any format the sweep writes (JPEG, PNG, JPEG XL) to tensors."""

    def __init__(self, files: list[LabelledFile], transform) -> None:
        self.files = files
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label, _ = self.files[index]

        pixels = to_rgb(read_pixels(path))  # (H, W, 3) uint8
        image = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)  # (3, H, W)
        return self.transform(image), label


# The trained weights in a training's output folder (a state dict, loaded with weights_only).
WEIGHTS_FILE = "model.pt"


def save_weights(module: torch.nn.Module, out_dir: Path) -> None:
    torch.save(module.state_dict(), Path(out_dir) / WEIGHTS_FILE)


def load_trained(model, weights_dir: Path, num_classes: int, device: torch.device):
    """The module a training wrote to weights_dir, on `device`, in eval mode."""
    module = model.build(num_classes, load_pretrained=False)
    state = torch.load(Path(weights_dir) / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    module.load_state_dict(state)
    return module.to(device).eval()
