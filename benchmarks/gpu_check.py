"""`make gpu-check` (`python -m benchmarks.gpu_check`): does a real-size training keep a GPU busy
on JPEG XL data?

On a CUDA device, through the product's own code (`TaskKind.train`, i.e. the fit loop and its
DataLoader with `train.loader_workers=auto`, then `TaskKind.evaluate` and
`TaskKind.evaluate_group`), for each of ViT-B/16 fine-tuning (model=vit, train=finetune),
Faster R-CNN R50-FPN (model=faster_rcnn, train=detection, task=voc) and SegFormer-B5
(model=segformer, train=segformer, task=voc_seg), all from random weights so that nothing is
downloaded:

* generated real-size data: 512x384 photographs (benchmarks/loader.py) encoded as JPEG XL at
  distance 1 by the sweep's codec, with generated boxes and label masks;
* a few hundred training steps (`--steps`), timed after the first WARMUP_STEPS;
* GPU utilisation sampled with NVML (or `nvidia-smi`) over the same steps, peak memory
  (`torch.cuda.max_memory_allocated`), the loader workers `auto` resolved to;
* the gain of grouped evaluation: EVAL_MODELS trained models evaluated on the same files one
  `evaluate` after the other, against one `evaluate_group` (each batch decoded once).

Prints a table and writes the figures as JSON (`--out`). Without a CUDA device it says so
and exits 0. `--allow-cpu --tiny` runs the same path with the tiny model configs on the CPU
(the test suite's smoke run).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import yaml

from benchmarks.gpu_sampling import GpuSampler, StepClock, cuda_index

CONF = Path(__file__).resolve().parent.parent / "conf"
GOAL_UTILISATION = 90.0
# Steps left out of the timing: CUDA context, cuDNN autotuning, the loader's first batches.
WARMUP_STEPS = 10
EVAL_MODELS = 3
DISTANCE = "1"
# MiT-B5 (nvidia/mit-b5's SegformerConfig): what model=segformer loads, here with random weights.
MIT_B5 = {
    "depths": [3, 6, 40, 3],
    "hidden_sizes": [64, 128, 320, 512],
    "num_attention_heads": [1, 2, 5, 8],
    "decoder_hidden_size": 768,
}


@dataclass(frozen=True)
class Check:
    """One model of the check: its config files, and what random init and the data need.

    Args:
        model: conf/model/<model>.yaml; its defaults list names the train recipe.
        task: conf/task/<task>.yaml, whose `kind` node builds the task kind.
        classes: Number of classes.
        model_overrides: Fields replaced in the model config (random init, no downloads).
        kind_overrides: Fields replaced in the task kind's config.
    """

    model: str
    task: str
    classes: int
    model_overrides: dict = field(default_factory=dict)
    kind_overrides: dict = field(default_factory=dict)


CHECKS = {
    "vit": Check("vit", "food101", 101, {"pretrained": None}),
    # Clipped as the random-init demo detector is (conf/task/demo_det.yaml): from random weights
    # the fine-tuning learning rate can otherwise make the loss infinite in the first steps.
    "faster_rcnn": Check("faster_rcnn", "voc", 20, {"weights": "random"}, {"grad_clip": 10.0}),
    "segformer": Check("segformer", "voc_seg", 21, {"pretrained": None, "architecture": MIT_B5}),
}
# --tiny: the tests' models, on small images.
TINY_CHECKS = {
    "vit": Check("vit_tiny", "food101", 4),
    "faster_rcnn": Check("faster_rcnn_tiny", "voc", 3),
    "segformer": Check(
        "segformer_tiny",
        "voc_seg",
        3,
        kind_overrides={"crop_size": 64, "resize_short_side": 72, "window": 64, "stride": 48},
    ),
}


# ---- configs: read from conf/ as the sweep composes them (no Hydra: the GPU machine may lack it)


def load_yaml(group: str, name: str) -> dict:
    return yaml.safe_load((CONF / group / f"{name}.yaml").read_text())


def instantiate(node: dict, **overrides):
    """The object a `_target_` node names, built with its other fields and the overrides."""
    values = {key: value for key, value in node.items() if key not in ("_target_", "defaults")}
    module, _, name = node["_target_"].rpartition(".")
    return getattr(importlib.import_module(module), name)(**(values | overrides))


def train_recipe(model_node: dict) -> str:
    """The train recipe a model config picks (`override /train@_global_.train: <recipe>`)."""
    for entry in model_node.get("defaults", []):
        for key, value in entry.items():
            if key.startswith("override /train"):
                return value
    raise ValueError(f"conf/model/{model_node['name']}.yaml names no train recipe")


def components(check: Check):
    """The model family, task kind and training options of a check, from conf/."""
    from sweep.options import TrainOptions

    node = load_yaml("model", check.model)
    # The resizer is a wrapper that sweep.config adds; none here, as in the shipped configs.
    node = {k: v for k, v in node.items() if k not in ("resizer", "resizer_options")}
    model = instantiate(node, **check.model_overrides)
    task = instantiate(load_yaml("task", check.task)["kind"], **check.kind_overrides)
    options = TrainOptions(**load_yaml("train", train_recipe(node)))
    return model, task, options


# ---- data: generated real-size images, encoded as JPEG XL by the sweep's codec ------------


def encode_jxl(job: tuple[np.ndarray, str]) -> None:
    from sweep.codecs.jxl import JxlCodec

    image, path = job
    codec = JxlCodec(distances=[float(DISTANCE)])
    Path(path).write_bytes(codec.encode(image, codec.parse_setting(DISTANCE)))


def write_images(folder: Path, count: int, width: int, height: int) -> list[str]:
    """`count` photographs as .jxl files, encoded on every core."""
    from benchmarks.loader import photographs

    folder.mkdir(parents=True, exist_ok=True)
    images = photographs(count, width, height)
    paths = [str(folder / f"{index:05d}.jxl") for index in range(count)]
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(encode_jxl, zip(images, paths, strict=True), chunksize=4))
    return paths


def labelled_files(kind: str, paths: list[str], classes: int, folder: Path, size) -> list:
    """The files with generated annotations of the task kind: a class, boxes, or a mask."""
    from PIL import Image

    from sweep.data.files import LabelledFile

    width, height = size
    rng = np.random.default_rng(1)
    files = []
    for index, path in enumerate(paths):
        if kind == "classification":
            files.append(LabelledFile(path, index % classes))
        elif kind == "detection":
            boxes = []
            for _ in range(int(rng.integers(1, 7))):
                w, h = rng.uniform(0.1, 0.6) * width, rng.uniform(0.1, 0.6) * height
                x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
                boxes.append([x, y, x + w, y + h])
            labels = rng.integers(0, classes, len(boxes)).tolist()
            files.append(LabelledFile(path, {"boxes": boxes, "labels": labels}))
        else:  # segmentation: rectangles of classes on background 0, a border ignored (255)
            mask = np.zeros((height, width), dtype=np.uint8)
            for _ in range(int(rng.integers(2, 6))):
                top, left = rng.integers(0, height - 8), rng.integers(0, width - 8)
                bottom = top + rng.integers(8, height - top + 1)
                right = left + rng.integers(8, width - left + 1)
                mask[top:bottom, left:right] = rng.integers(1, classes)
            mask[:2], mask[-2:] = 255, 255
            mask_path = folder / f"{index:05d}.png"
            Image.fromarray(mask, mode="L").save(mask_path)
            target = {"label_ids": list(range(classes))}
            files.append(LabelledFile(path, target, str(mask_path)))
    return files


def check_model(name: str, check: Check, folder: Path, paths: list[str], size, args) -> dict:
    import torch

    from sweep.models.trained import WEIGHTS_FILE
    from sweep.options import loader_processes

    model, task, options = components(check)
    (folder / f"{name}_masks").mkdir()
    files = labelled_files(task.kind, paths, check.classes, folder / f"{name}_masks", size)
    # One epoch of `steps` batches, each file read `repeat` times: a real dataset's epoch is
    # thousands of steps, and short epochs would add a loader restart every few steps.
    wanted = args.steps * options.batch_size
    repeat = math.ceil(wanted / len(files))
    options = replace(options, epochs=1)
    on_gpu = torch.cuda.is_available()
    if on_gpu:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    clock = StepClock(task)
    out = folder / f"{name}_weights"
    out.mkdir()
    with GpuSampler(cuda_index()) as sampler:
        started = time.perf_counter()
        summary = task.train(model, (files * repeat)[:wanted], check.classes, options, 0, out)
        train_seconds = time.perf_counter() - started
    start, stop, steps, images = clock.window(WARMUP_STEPS)
    utilisation = sampler.between(start, stop)
    peak = torch.cuda.max_memory_allocated() / 2**30 if on_gpu else None

    # Grouped evaluation: the same weights in EVAL_MODELS folders (as many trainings would be).
    dirs = [out]
    for copy in range(1, EVAL_MODELS):
        dirs.append(folder / f"{name}_weights_{copy}")
        dirs[-1].mkdir()
        shutil.copy(out / WEIGHTS_FILE, dirs[-1] / WEIGHTS_FILE)
    test = files[: args.eval_images]
    task.evaluate(model, out, test[: options.eval_batch_size], check.classes, options)  # warm-up
    started = time.perf_counter()
    for weights in dirs:
        task.evaluate(model, weights, test, check.classes, options)
    separate = time.perf_counter() - started
    started = time.perf_counter()
    task.evaluate_group(model, dirs, test, check.classes, options)
    grouped = time.perf_counter() - started
    return {
        "model": check.model,
        "recipe": train_recipe(load_yaml("model", check.model)),
        "batch_size": options.batch_size,
        "steps": len(clock.moments),
        "timed_steps": steps,
        "precision": summary.get("precision"),
        "loader_workers": loader_processes(options.loader_workers, on_gpu),
        "images_per_s": images / (stop - start) if stop > start else None,
        "fit_images_per_s": summary.get("images_per_second"),
        "train_seconds": train_seconds,
        "gpu_utilisation_mean": statistics.fmean(utilisation) if utilisation else None,
        "gpu_utilisation_median": statistics.median(utilisation) if utilisation else None,
        "gpu_samples": len(utilisation),
        "gpu_sampler": sampler.source,
        "peak_memory_gib": peak,
        "eval_images": len(test),
        "eval_models": len(dirs),
        "eval_separate_s": separate,
        "eval_grouped_s": grouped,
        "eval_grouped_gain": separate / grouped if grouped > 0 else None,
    }


def run(args) -> dict:
    import torch

    checks = TINY_CHECKS if args.tiny else CHECKS
    size = (128, 96) if args.tiny else (512, 384)
    results = {}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        # Before CUDA starts in this process: the encoders are forked from it.
        paths = write_images(folder / "images", args.images, *size)
        for model in args.models:
            print(f"gpu-check: {model} ...", file=sys.stderr, flush=True)
            try:
                results[model] = check_model(model, checks[model], folder, paths, size, args)
            except Exception as error:  # reported, and the other models still run
                results[model] = {"model": checks[model].model, "error": repr(error)}
                print(f"gpu-check: {model} failed: {error!r}", file=sys.stderr, flush=True)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    utilisations = [r.get("gpu_utilisation_mean") for r in results.values()]
    return {
        "device": device,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpus": len(os.sched_getaffinity(0)),
        "image_size": f"{size[0]}x{size[1]}",
        "images": args.images,
        "codec": f"JPEG XL distance {DISTANCE}, effort 7 (sweep/codecs/jxl.py)",
        "steps": args.steps,
        "warmup_steps": WARMUP_STEPS,
        "tiny": args.tiny,
        "goal_gpu_utilisation": GOAL_UTILISATION,
        "goal_met": bool(utilisations)
        and all(u is not None and u >= GOAL_UTILISATION for u in utilisations),
        "models": results,
    }


def report(figures: dict) -> str:
    def number(value, digits: int = 0) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    f = figures
    lines = [
        f"gpu-check on {f['device']} (torch {f['torch']}, CUDA {f['cuda']}, {f['cpus']} CPUs): "
        f"{f['images']} generated {f['image_size']} images, {f['codec']}; {f['steps']} steps "
        f"a model, timed after {f['warmup_steps']}",
        f"  {'model':<18} {'batch':>5} {'workers':>7} {'img/s':>8} {'GPU % mean':>10} "
        f"{'median':>6} {'peak GiB':>8}   evaluation of {EVAL_MODELS}: one by one / grouped",
    ]
    for result in f["models"].values():
        if "error" in result:
            lines.append(f"  {result['model']:<18} failed: {result['error']}")
            continue
        lines.append(
            f"  {result['model']:<18} {result['batch_size']:>5} {result['loader_workers']:>7} "
            f"{number(result['images_per_s']):>8} {number(result['gpu_utilisation_mean'], 1):>10} "
            f"{number(result['gpu_utilisation_median']):>6} "
            f"{number(result['peak_memory_gib'], 1):>8}   {result['eval_separate_s']:.2f} s / "
            f"{result['eval_grouped_s']:.2f} s = {number(result['eval_grouped_gain'], 2)}x"
        )
    verdict = "met" if f["goal_met"] else "NOT met"
    lines.append(f"  goal: >= {f['goal_gpu_utilisation']:.0f}% GPU utilisation: {verdict}")
    return "\n".join(lines)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__)
    parser.add_argument("--steps", type=int, default=300, help="training steps a model")
    parser.add_argument(
        "--models", default=",".join(CHECKS), help=f"comma-separated, of {list(CHECKS)}"
    )
    parser.add_argument("--out", type=Path, default=Path("results/gpu_check.json"))
    parser.add_argument("--images", type=int, default=256, help="generated images")
    parser.add_argument("--eval-images", type=int, default=128, help="images evaluated")
    parser.add_argument("--allow-cpu", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.models = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = [name for name in args.models if name not in CHECKS]
    if unknown or not args.models:
        parser.error(f"--models: unknown {unknown}; known: {list(CHECKS)}")
    if args.steps < 2 or args.images < 1 or args.eval_images < 1:
        parser.error("--steps must be >= 2, --images and --eval-images >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        print(
            "gpu-check: no CUDA device here, nothing to measure. On a machine with one it "
            f"trains {', '.join(args.models)} ({args.steps} steps each, random init) on "
            "generated 512x384 JPEG XL images and reports images/s, GPU utilisation (NVML), "
            "peak memory and the gain of grouped evaluation."
        )
        return 0
    figures = run(args)
    print(report(figures))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figures: {args.out}")
    return 1 if any("error" in result for result in figures["models"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
