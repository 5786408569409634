"""What every task kind runs on: device, mixed precision, seeding, loaders, weight files.

The fit loop (`sweep.tasks.base.fit`) and the evaluations use these; a task kind rarely needs
more than `pick_device`, `autocast`, `evaluation_loader` and `load_trained` itself.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from sweep.options import TrainOptions, loader_processes


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


def training_loader(
    dataset: Dataset,
    options: TrainOptions,
    generator: torch.Generator,
    device: torch.device,
    drop_last: bool = False,
    collate_fn=None,
) -> DataLoader:
    """The shuffled, seeded loader of a training; `options.loader_workers` decode processes
    (for "auto", as many as this task's cores allow: `loader_processes`)."""
    workers = loader_processes(options.loader_workers, on_gpu=device.type == "cuda")
    return DataLoader(
        dataset,
        batch_size=options.batch_size,
        shuffle=True,
        generator=generator,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        drop_last=drop_last,
        collate_fn=collate_fn,
    )


def evaluation_loader(
    dataset: Dataset, batch_size: int | None, options: TrainOptions, device: torch.device,
    collate_fn=None,
) -> DataLoader:  # fmt: skip
    """The loader of an evaluation, in split order (batch_size None: one sample at a time)."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=loader_processes(options.loader_workers, on_gpu=device.type == "cuda"),
        pin_memory=device.type == "cuda",
        collate_fn=collate_fn,
    )


class OptimizerSteps:
    """Backward pass, optimiser and schedule step of each batch, for every task kind.

    Loss scaling is used for fp16 only (bf16 has fp32's exponent range); with `max_norm` the
    gradients of `clipped` are clipped to that norm after unscaling.
    """

    def __init__(
        self, optimizer, scheduler, dtype: torch.dtype | None, clipped=None, max_norm=None
    ) -> None:
        self.optimizer, self.scheduler = optimizer, scheduler
        self.scaler = torch.amp.GradScaler(enabled=dtype == torch.float16)
        self.clipped, self.max_norm = clipped, max_norm

    def step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.max_norm is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.clipped, self.max_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()


def train_summary(
    epoch_losses: list[float], images: int, seen: int, seconds: float, device, dtype
) -> dict:
    """What every training returns (and the train stage stores in summary.json)."""
    return {
        "train_loss": epoch_losses,
        "images": images,
        "device": str(device),
        "precision": str(dtype or torch.float32),
        "images_per_second": seen / seconds,
    }
