"""Training options and labelled files: plain data, importable without torch.

Encode workers import the stage module; keeping torch out of its imports saves every encode
worker the seconds torch takes to load.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, NamedTuple

AMP_CHOICES = ("auto", "off", "bf16", "fp16")

# train.loader_workers: a number of DataLoader worker processes, or AUTO_WORKERS for as many as
# the cores the task holds allow (`loader_processes`). The key holds the option as written,
# never the number it resolves to on a machine.
AUTO_WORKERS = "auto"
LoaderWorkers = int | str
# At most this many processes for "auto": about what JPEG XL at 512x384 through the ViT-B/16
# recipe takes to feed one GPU at 3,000 images/s (benchmarks/loader.py, ~100 images/s a core).
# More would only hold more prefetched batches in shared memory and start more processes.
MAX_AUTO_WORKERS = 32


class LabelledFile(NamedTuple):
    """An encoded image file with its annotation (see `sweep.data.base.ImageItem`).

    `mask` is the absolute path of the dataset's own per-pixel label file, if any.
    """

    path: str
    target: Any
    mask: str | None = None


@dataclass(frozen=True)
class TrainOptions:
    """Training and evaluation hyper-parameters (the `train` config group)."""

    epochs: int = 3
    batch_size: int = 32
    lr: float = 5e-5
    weight_decay: float = 0.05
    warmup_fraction: float = 0.1
    # Smallest area fraction of a random-resized-crop (1.0 disables cropping).
    min_crop_scale: float = 0.5
    amp: str = "auto"
    eval_batch_size: int = 64
    # DataLoader worker processes, or "auto" (conf/train sets it): see `loader_processes`.
    loader_workers: LoaderWorkers = 0
    # Decode each train setting's images once into a cache of uint8 pixels that its trainings
    # read instead of the files (sweep/stages/decoded.py). The same pixels either way, so it
    # is in no key.
    decode_cache: bool = False


class DecodedFiles(list):
    """Labelled files whose decoded pixels a decode cache holds (sweep/stages/decoded.py).

    File i's pixels, (heights[i], widths[i], 3) uint8 RGB in row-major order, are the bytes
    [offsets[i], offsets[i] + heights[i] * widths[i] * 3) of the flat file `pixels`: exactly
    what decoding the file gives (`sweep.data.pixels.read_pixels`, then `to_rgb`).

    Args:
        files: The files, in the cache's order.
        pixels: The cache's flat pixel file.
        offsets, heights, widths: Each file's place and size in it.
    """

    def __init__(self, files: list[LabelledFile], pixels: str, offsets, heights, widths):
        if not len(files) == len(offsets) == len(heights) == len(widths):
            raise ValueError(
                f"the decode cache {pixels} indexes {len(offsets)} images for {len(files)} files"
            )
        super().__init__(files)
        self.pixels, self.offsets, self.heights, self.widths = pixels, offsets, heights, widths

    def subset(self, indices) -> DecodedFiles:
        """The files at `indices` (positions in this list), with their pixels' places."""
        chosen = list(indices)

        def pick(values) -> list[int]:
            return [int(values[index]) for index in chosen]

        return DecodedFiles(
            [self[index] for index in chosen],
            self.pixels,
            pick(self.offsets),
            pick(self.heights),
            pick(self.widths),
        )


def loader_processes(workers: LoaderWorkers, on_gpu: bool) -> int:
    """The DataLoader worker processes of a training or an evaluation running in this process.

    An integer is taken as written. "auto": on a GPU, every core the task holds but the one
    that runs the model (at most MAX_AUTO_WORKERS); on the CPU none, since the model's own
    torch threads keep the task's cores busy and decoding in the training process costs no
    more than decoding beside it.

    Args:
        workers: The `train.loader_workers` option.
        on_gpu: The model runs on a GPU.
    """
    if workers != AUTO_WORKERS:
        return int(workers)
    if not on_gpu:
        return 0
    return min(max(task_cpus() - 1, 0), MAX_AUTO_WORKERS)


def task_cpus() -> int:
    """The CPUs Ray gave the task running in this process; outside a Ray task, the cores this
    process may run on (its affinity, which container limits and `taskset` narrow)."""
    ray = sys.modules.get("ray")  # imported in every Ray worker; never imported here
    if ray is not None and ray.is_initialized():
        context = ray.get_runtime_context()
        if context.get_task_id() is not None:  # a task (the driver runs none)
            cpus = context.get_assigned_resources().get("CPU")
            if cpus:
                return int(cpus)
    return len(os.sched_getaffinity(0))


def ray_loader_workers(workers: LoaderWorkers, nodes: list[dict]) -> int:
    """The loader processes a training on a Ray cluster asks cores for (it asks 1 + these).

    An integer is taken as written. "auto": one training per GPU, each GPU's share of its
    node's cores (on the node with the fewest cores per GPU) less the core that trains; 0 on
    a cluster without GPUs, where trainings run on one core each and keep the others free for
    trainings beside them.

    Args:
        workers: The `train.loader_workers` option.
        nodes: The resources of each live node ({"CPU": 16.0, "GPU": 1.0, ...}).
    """
    if workers != AUTO_WORKERS:
        return int(workers)
    shares = [node.get("CPU", 0) / node["GPU"] for node in nodes if node.get("GPU", 0) > 0]
    if not shares:
        return 0
    return min(max(int(min(shares)) - 1, 0), MAX_AUTO_WORKERS)
