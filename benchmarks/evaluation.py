"""Grouped evaluation against one cell at a time: images decoded per sweep, and images/s.

A sweep evaluates every trained model on every test setting. One cell at a time, each cell
decodes the whole test split: D x D x N_test decodes for D train and D test settings. Grouped
(`cluster.eval_group_size`), the cells of one test setting share one task that decodes each
test image once for all their models: D x N_test.

Set-up, through the sweep's own stages in this process (cluster=inline, one torch thread): a
generated image folder whose `TEST_IMAGES` test images are photographs at 512x384 (Food-101's
size); `MODEL` trained for one epoch at each of the `SETTINGS` (the original and three JPEG XL
distances); the test split encoded at the same settings (the original reads the source JPEGs):
4 x 4 cells on the same files.

Measured, grouped and one cell at a time, on the same trained models and files:

* the images decoded by the evaluations (a counter on the one decode function every reader
  calls, `sweep.data.pixels.decode_bytes`), and the same figure projected to Food-101's full
  grid (`FOOD101`);
* evaluation images/s: cells x test images over the seconds of evaluating every cell,
  fastest of `rounds`, and one .jxl decode's time alone, which the grouping saves.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

MODEL = "swav_tiny"
# The original (the dataset's JPEGs: every grid has it) and three JPEG XL distances.
SETTINGS = ("original", "1", "4", "8")
TEST_IMAGES = 24
TRAIN_IMAGES = 12
CLASSES = ("astronaut", "coffee", "chelsea")
ROUNDS = 2
# Food-101's full grid: 12 settings (original and the 11 distances of conf/codec/jxl.yaml),
# 25,250 test images, one seed, the shipped eval_group_size.
FOOD101 = {"settings": 12, "test_images": 25_250, "seeds": 1, "group_size": 12}


def write_images(root: Path) -> None:
    """<root>/{train,test}/<class>/*.jpg: random crops of a photograph per class; test images
    at 512x384, training images small (the training only has to produce weights)."""
    from PIL import Image
    from skimage import data

    rng = np.random.default_rng(0)
    for name in CLASSES:
        photo = Image.fromarray(getattr(data, name)()).convert("RGB")
        for split, count, size in (
            ("train", TRAIN_IMAGES // len(CLASSES), (64, 48)),
            ("test", TEST_IMAGES // len(CLASSES), (512, 384)),
        ):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                width, height = photo.size
                scale = rng.uniform(0.6, 1.0)
                box_w, box_h = int(width * scale), int(height * scale)
                left = int(rng.integers(0, width - box_w + 1))
                top = int(rng.integers(0, height - box_h + 1))
                crop = photo.crop((left, top, left + box_w, top + box_h)).resize(size)
                crop.save(folder / f"{index}.jpg", quality=90)


def sweep_of(root: Path):
    from hydra import compose, initialize_config_dir

    from sweep.config.build import build_sweep
    from sweep.config.compose import CONFIG_DIR

    grid = "[" + ",".join(SETTINGS) + "]"
    overrides = [
        "task=imagefolder",
        f"task.root={root / 'data'}",
        f"results_dir={root / 'results'}",
        f"model={MODEL}",
        "train.epochs=1",
        "train.batch_size=4",
        "train.loader_workers=0",
        f"grid.train={grid}",
        f"grid.test={grid}",
        "cluster=inline",
        "cluster.torch_threads=1",
        "tracking=none",
        "progress=false",
        "distortion.enabled=false",
        "sensitivity=off",
    ]
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        cfg = compose("config", overrides=overrides)
    return build_sweep(cfg, check_data=False)


@contextlib.contextmanager
def counting_decodes() -> Iterator[list[int]]:
    """Counts the images decoded in this process while it is open (count[0])."""
    from sweep.data import pixels

    count = [0]
    decode = pixels.decode_bytes

    def counted(data: bytes) -> np.ndarray:
        count[0] += 1
        return decode(data)

    pixels.decode_bytes = counted
    try:
        yield count
    finally:
        pixels.decode_bytes = decode


def evaluate_every_cell(sweep, plan, context, group_size: int) -> tuple[float, int]:
    """(seconds, images decoded) of evaluating every cell afresh, `group_size` models a task."""
    from sweep.engine.execute import execute
    from sweep.stages import evaluate

    shutil.rmtree(sweep.store.root / evaluate.NAME, ignore_errors=True)
    cells = plan.narrowed_to(plan.replicate_evaluations.values())
    cluster = replace(sweep.cluster, eval_group_size=group_size)
    with counting_decodes() as count:
        started = time.perf_counter()
        execute(cells, context, cluster, show_progress=False)
        seconds = time.perf_counter() - started
    return seconds, count[0]


def decode_seconds(files) -> float:
    """One decode of a test file, fastest pass over them all."""
    from sweep.data.pixels import read_pixels

    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        for file in files:
            read_pixels(file.path)
        best = min(best, (time.perf_counter() - started) / len(files))
    return best


def projected_decodes(settings: int, test_images: int, seeds: int, group_size: int) -> dict:
    """Images decoded by a sweep's evaluations, one cell at a time and grouped."""
    models = settings * seeds
    return {
        "per_cell": models * settings * test_images,
        "grouped": math.ceil(models / group_size) * settings * test_images,
    }


def run(rounds: int = ROUNDS) -> dict:
    import torch

    from sweep.engine.execute import execute
    from sweep.session.planning import plan_sweep, stage_context
    from sweep.stages.encode import encoded_files

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench-evaluation-") as folder:
        root = Path(folder)
        write_images(root / "data")
        sweep = sweep_of(root)
        plan = plan_sweep(sweep)
        context = stage_context(sweep, plan)
        tests = [plan.encodes[("test", setting)] for setting in plan.test_settings]
        execute(
            plan.narrowed_to([*plan.replicate_trains.values(), *tests]),
            context,
            sweep.cluster,
            show_progress=False,
        )
        models, cells = len(plan.replicate_trains), len(plan.replicate_evaluations)
        group_size = max(models, 2)
        evaluate_every_cell(sweep, plan, context, group_size)  # warm up: imports, caches
        timings = {"per_cell": [], "grouped": []}
        decodes = {}
        for _ in range(rounds):  # interleaved: a busy neighbour slows both alike
            for name, size in (("per_cell", 1), ("grouped", group_size)):
                seconds, decodes[name] = evaluate_every_cell(sweep, plan, context, size)
                timings[name].append(seconds)
        jxl = [stage for stage in tests if stage.setting != "original"]
        per_decode = decode_seconds(encoded_files(sweep.store, jxl[0]))
    images = cells * TEST_IMAGES
    return {
        "model": MODEL,
        "models": models,
        "test_settings": len(tests),
        "test_images": TEST_IMAGES,
        "image_size": "512x384",
        "group_size": group_size,
        "decodes": decodes,
        "expected_decodes": projected_decodes(len(tests), TEST_IMAGES, 1, group_size),
        "seconds": {name: min(values) for name, values in timings.items()},
        "images_per_second": {name: images / min(values) for name, values in timings.items()},
        "decode_ms": per_decode * 1e3,
        "food101": FOOD101 | {"decodes": projected_decodes(**FOOD101)},
        "threads": torch.get_num_threads(),
    }


def report(figures: dict) -> str:
    decodes, rate = figures["decodes"], figures["images_per_second"]
    food = figures["food101"]
    projected = food["decodes"]
    saved_hours = (projected["per_cell"] - projected["grouped"]) * figures["decode_ms"] / 3.6e6
    return "\n".join(
        [
            f"evaluation, {figures['models']} {figures['model']} models x "
            f"{figures['test_settings']} test settings, {figures['test_images']} test images "
            f"(.jxl, the original setting's JPEGs) at {figures['image_size']}, one process, "
            f"{figures['threads']} torch thread:",
            f"  images decoded: one cell at a time {decodes['per_cell']}, grouped "
            f"({figures['group_size']} models a task) {decodes['grouped']} "
            f"({decodes['per_cell'] / decodes['grouped']:.0f}x fewer)",
            f"  evaluation images/s (cells x images / s): one cell at a time "
            f"{rate['per_cell']:.1f}, grouped {rate['grouped']:.1f} "
            f"({rate['grouped'] / rate['per_cell']:.2f}x)",
            f"  one .jxl decode alone: {figures['decode_ms']:.1f} ms",
            f"  Food-101 full grid ({food['settings']} settings, {food['test_images']:,} test "
            f"images, eval_group_size={food['group_size']}): {projected['per_cell']:,} decodes "
            f"one cell at a time, {projected['grouped']:,} grouped; "
            f"{saved_hours:.1f} core-hours of decoding saved at the rate above",
        ]
    )


if __name__ == "__main__":
    print(report(run()))
