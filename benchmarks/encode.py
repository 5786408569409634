"""Encode-stage throughput against the same library's single-thread speed, in one run.

Baseline: libjxl (imagecodecs) encoding the demo images in this process on one thread; times
the number of cores, that is the most any parallel encoder of this library can reach here.
Measured: the sweep's own encode stage (sharded Ray tasks writing to the store) on all cores.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from sweep.codecs.jxl import JxlCodec
from sweep.config import ClusterOptions
from sweep.data.demo import DemoReader
from sweep.data.pixels import read_pixels
from sweep.execute import Progress, SweepWork, run_on_ray
from sweep.plan import EncodeStage, SweepPlan, shard_ranges
from sweep.store import ArtifactStore
from sweep.tasks.options import TrainOptions

DISTANCE = "1"
EFFORT = 7


def demo_images(folder: Path) -> tuple[DemoReader, list]:
    reader = DemoReader(folder / "data")
    reader.prepare()
    return reader, reader.read_split("train") + reader.read_split("test")


def single_thread_seconds(reader: DemoReader, items: list) -> tuple[float, float]:
    """Seconds to encode every image once on one thread, and the megapixels encoded."""
    codec = JxlCodec(distances=[float(DISTANCE)], effort=EFFORT, threads=1)
    pixels = [read_pixels(reader.root / item.relpath) for item in items]
    started = time.perf_counter()
    for image in pixels:
        codec.encode(image, DISTANCE)
    seconds = time.perf_counter() - started
    return seconds, sum(image.shape[0] * image.shape[1] for image in pixels) / 1e6


def sweep_encode_seconds(reader: DemoReader, items: list, cores: int, folder: Path) -> float:
    """Seconds of the sweep's encode stage for the same images on `cores` Ray workers."""
    import ray

    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    try:
        # Start the workers first: their start-up is a once-per-sweep cost, not throughput.
        ray.get([ray.remote(num_cpus=1)(lambda: None).remote() for _ in range(2 * cores)])
        codec = JxlCodec(distances=[float(DISTANCE)], effort=EFFORT, threads=1)
        shard_size = max(1, len(items) // (4 * cores))
        stage = EncodeStage("bench", "train", DISTANCE, shard_ranges(len(items), shard_size))
        plan = SweepPlan({"train": items}, reader.class_names(), [DISTANCE], [])
        plan.encodes[("train", DISTANCE)] = stage
        store = ArtifactStore(folder / f"store-{cores}")
        work = SweepWork(plan, store, reader.root, codec, None, None, TrainOptions(), 0)
        cluster = ClusterOptions("ray", None, cores, 1, shard_size, 0, 0.25)
        progress = Progress(False, {})
        started = time.perf_counter()
        run_on_ray(work, progress, cluster)
        return time.perf_counter() - started
    finally:
        ray.shutdown()


def run() -> dict:
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        reader, items = demo_images(folder)
        baseline, megapixels = single_thread_seconds(reader, items)
        one_worker = sweep_encode_seconds(reader, items, 1, folder)
        all_workers = sweep_encode_seconds(reader, items, cores, folder)
    limit = cores * megapixels / baseline
    measured = megapixels / all_workers
    return {
        "images": len(items),
        "megapixels": megapixels,
        "cores": cores,
        "single_thread_mp_per_s": megapixels / baseline,
        "limit_mp_per_s": limit,
        "sweep_mp_per_s": measured,
        "sweep_images_per_s": len(items) / all_workers,
        "ratio_to_limit": measured / limit,
        "parallel_efficiency_1_to_n": (one_worker / all_workers) / cores,
    }


def report(figures: dict) -> str:
    return "\n".join(
        [
            f"encode stage, JPEG XL distance {DISTANCE} effort {EFFORT}, "
            f"{figures['images']} demo images ({figures['megapixels']:.2f} MP), "
            f"{figures['cores']} cores",
            f"  baseline, one thread in process : {figures['single_thread_mp_per_s']:.2f} MP/s",
            f"  limit, baseline x cores          : {figures['limit_mp_per_s']:.2f} MP/s",
            f"  sweep encode stage on Ray        : {figures['sweep_mp_per_s']:.2f} MP/s, "
            f"{figures['sweep_images_per_s']:.0f} images/s",
            f"  ratio to the limit               : {figures['ratio_to_limit']:.2f}",
            f"  parallel efficiency 1 -> {figures['cores']} workers : "
            f"{figures['parallel_efficiency_1_to_n']:.2f}",
        ]
    )
