"""The plain option types every layer shares: training, cluster and tracking options.

The base of the package (like Ray's `ray.air.config`): plain dataclasses, importable without
torch, Ray or Hydra. The config layer (sweep/config/) fills them from the composed config and
checks their values; everything else only reads them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

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


@dataclass(frozen=True)
class ClusterOptions:
    """Where and how the stages run (the `cluster` config group, conf/cluster/)."""

    mode: str
    address: str | None
    num_cpus: int | None
    torch_threads: int | None
    encode_shard_size: int
    max_retries: int
    eval_gpu_fraction: float
    # Trained models per evaluation task: each test batch is decoded once for all of them.
    eval_group_size: int = 12


@dataclass(frozen=True)
class TrackingOptions:
    """Where the sweep logs (the `tracking` config group, conf/tracking/)."""

    enabled: bool
    uri: str | None
    experiment: str | None
    on_unreachable: str = "fail"
