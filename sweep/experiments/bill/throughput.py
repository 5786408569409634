"""A throughput per kind of work (decode, encode, measure, train, evaluate), and its source:

measured in store   the train summaries (images per second, device) of finished trainings
                    of the same model config on the same device type as this machine
timed now           a bounded run on this machine (`dry_run_calibrate`): the codec on a
                    few of the dataset's images at each pending setting, a few steps of
                    the product's own fit loop (`sweep.tasks.base.FitLoop`), and one
                    evaluation of those weights through the task kind's own evaluation
derived             the evaluation rate from the training rate
none                no figure: that part of the estimate is left out, and said so
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from sweep.data.base import ImageItem
from sweep.data.files import LabelledFile
from sweep.data.pixels import read_pixels
from sweep.distortion import measure_image, resolve_measurement
from sweep.spec import Sweep
from sweep.stages import train
from sweep.stages.encoding import reads_source_bytes
from sweep.stages.graph import Plan, SweepPlan
from sweep.store.locations import join_location

# The bounded timed run: seconds for the codec and distortion, for training steps, and the
# most training steps timed after the first (which pays allocation and warm-up).
CODEC_SECONDS = 10.0
TRAIN_SECONDS = 20.0
TIMED_STEPS = 5
# Seconds of one timed training step on the CPU (its batch is sized to it).
STEP_SECONDS = 4.0
CODEC_SAMPLE = 4
# An evaluation's forward pass against a training step's forward and backward passes: the
# evaluation rate when only the training rate is known.
EVAL_SPEEDUP = 3.0
MEASURED, TIMED, DERIVED, NONE = "measured in store", "timed now", "derived", "none"
# The kinds of work the throughputs price, in the printed order (`Cost.images`).
WORK = ("decode", "encode", "measure", "train", "evaluate")


@dataclass(frozen=True)
class Throughput:
    """Images per second of one kind of work (on one core for the CPU kinds), and its source.

    `seconds_per_image` is None when there is no figure (`source` is NONE).
    """

    seconds_per_image: float | None
    source: str
    detail: str = ""

    @property
    def images_per_second(self) -> float | None:
        return None if not self.seconds_per_image else 1.0 / self.seconds_per_image


def machine_device() -> str:
    """The device type this machine trains on ("cuda" or "cpu")."""
    import torch  # the bill imports torch only to ask for its device

    return "cuda" if torch.cuda.is_available() else "cpu"


def stored_trainings(sweep: Sweep, plan: Plan) -> list[dict]:
    """Summaries of finished trainings of the same model config: the plan's own, and those of
    every report under results_dir whose config.yaml has the same `model` node."""
    store = sweep.store
    keys = {stage.key for stage in plan.of_kind(train.NAME).values()}
    own_model = (yaml.safe_load(sweep.config_yaml) or {}).get("model")
    for folder in sorted((sweep.results_dir / "reports").glob("*/")):
        try:
            config = yaml.safe_load((folder / "config.yaml").read_text()) or {}
            index = yaml.safe_load((folder / "stages.json").read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        if config.get("model") == own_model:
            keys |= set((index.get(train.NAME) or {}).values())
    summaries = []
    for key in sorted(keys):
        if store.is_done(train.NAME, key):
            try:
                summaries.append(store.read_json(train.NAME, key, "summary.json"))
            except (OSError, ValueError):
                continue
    return [s for s in summaries if s.get("images_per_second")]


def measured_training(summaries: list[dict], device: str) -> Throughput | None:
    """The median training rate of the stored trainings on this device type, if any."""
    same = [s for s in summaries if str(s.get("device", "")).split(":")[0] == device]
    if not same:
        return None
    rate = statistics.median(s["images_per_second"] for s in same)
    return Throughput(1.0 / rate, MEASURED, f"median of {len(same)} training(s) on {device}")


def sample_files(sweep: Sweep, items: list[ImageItem], count: int) -> list[LabelledFile]:
    """The first `count` listed images of a split as the files a training reads (originals)."""
    root = sweep.reader.root
    return [
        LabelledFile(join_location(root, item.relpath), item.target,
                     None if item.mask is None else join_location(root, item.mask))
        for item in items[:count]
    ]  # fmt: skip


def time_codec(sweep: Sweep, plan: SweepPlan, settings: list[str], measure: bool) -> dict:
    """The codec on a few test images, once per pending lossy setting (within CODEC_SECONDS):
    seconds per image to decode a source, to encode (decode included), to measure, encoded
    bytes per image by setting, and the images' mean pixels."""
    items = (plan.splits["test"] or plan.splits["train"])[:CODEC_SAMPLE]
    if not items:
        return {}
    paths = [join_location(sweep.reader.root, item.relpath) for item in items]
    started = time.perf_counter()
    pixels = [read_pixels(path) for path in paths]
    decode_seconds = (time.perf_counter() - started) / len(paths)
    timed: dict = {
        "decode": decode_seconds,
        "images": len(paths),
        "pixels": statistics.mean(image.shape[0] * image.shape[1] for image in pixels),
        "bytes": {},
        "encode": {},
    }
    deadline = time.perf_counter() + CODEC_SECONDS
    encoded: list[bytes] = []
    for setting in settings:
        if time.perf_counter() > deadline:
            break
        started = time.perf_counter()
        encoded = [
            sweep.codec.encode_source(
                path.read_bytes() if reads_source_bytes(sweep.codec) else b"", image, setting
            )
            for path, image in zip(paths, pixels, strict=True)
        ]
        timed["encode"][setting] = (time.perf_counter() - started) / len(paths) + decode_seconds
        timed["bytes"][setting] = sum(map(len, encoded)) / len(encoded)
    if measure and encoded and time.perf_counter() < deadline:
        measurement = resolve_measurement(sweep.distortion)
        if measurement is not None and measurement.measures:
            started = time.perf_counter()
            for image, data in zip(pixels[:2], encoded[:2], strict=False):
                measure_image(image, sweep.codec.decode(data), measurement)
            timed["measure"] = (time.perf_counter() - started) / min(2, len(encoded)) + (
                decode_seconds
            )
    return timed


def time_training(sweep: Sweep, plan: SweepPlan) -> dict:
    """A few steps of the product's own fit loop on the first train images (the first step
    untimed: it pays allocation and warm-up), then one evaluation of those weights on the
    first test images; within about TRAIN_SECONDS once the model is built. Returns seconds
    per image and the model's trainable parameters.

    On the CPU two steps of two images size the batch so that a step takes about
    STEP_SECONDS (the rate per image hardly depends on the batch there, and a large model's
    full batch could take longer than the time allowed); a GPU trains with the real batch.
    """
    # torch and the task kinds load only where a training is timed.
    import torch

    from sweep.models.trained import save_weights
    from sweep.tasks.base import FitLoop, parameter_counts

    task, model = sweep.task, sweep.model
    # In this process: no loader processes (the real run's rate with them can only be higher).
    options = replace(sweep.options, loader_workers=0, epochs=1)
    if sweep.cluster.torch_threads:
        torch.set_num_threads(sweep.cluster.torch_threads)
    files = sample_files(sweep, plan.splits["train"], options.batch_size * (TIMED_STEPS + 1) + 2)
    if not files:
        return {}
    num_classes = len(plan.class_names)
    loop = FitLoop(task, model, files, num_classes, options, sweep.seed, TIMED_STEPS + 2)
    loop.module.train()
    cuda = loop.device.type == "cuda"

    def step(batch) -> tuple[float, int]:
        """Seconds and images of one training step."""
        started = time.perf_counter()
        _, images = loop.step(batch)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - started, images

    started = time.perf_counter()
    batch_size = options.batch_size
    if cuda:
        loader = iter(loop.batches(batch_size))
        warm_seconds, warm_images = step(next(loader))
    else:  # a warm-up step of two images, then one more to size the batch by
        probe = iter(loop.batches(min(2, batch_size)))
        warm_seconds, warm_images = step(next(probe))
        second = next(probe, None)
        seconds, images = (warm_seconds, warm_images) if second is None else step(second)
        fitting = int(STEP_SECONDS / (seconds / max(images, 1)))
        batch_size = max(2, min(batch_size, fitting))
        loader = iter(loop.batches(batch_size))
    # Seconds per image of each timed step; the fastest is kept (other work on a shared
    # machine only ever slows a step down, as in benchmarks/).
    rates = []
    for _ in range(TIMED_STEPS):
        if time.perf_counter() - started > TRAIN_SECONDS / 2:
            break
        batch = next(loader, None)
        if batch is None:
            break
        seconds, images = step(batch)
        rates.append(seconds / max(images, 1))
    if rates:
        train_seconds, how = min(rates), f"fastest of {len(rates)} steps after a warm-up step"
    else:  # the warm-up step was all the time allowed: an upper bound
        train_seconds, how = warm_seconds / max(warm_images, 1), "warm-up step only"
    timed = {
        "train": train_seconds,
        "train_detail": f"original images in batches of {batch_size}, {how}, {loop.device.type}",
        "parameters": parameter_counts(loop.module)["total"],
    }
    remaining = TRAIN_SECONDS - (time.perf_counter() - started)
    # One evaluation (weights loaded, as each cell does) on as many test images as should fit.
    test_count = int(min(options.eval_batch_size, remaining / (train_seconds / EVAL_SPEEDUP)))
    test_files = sample_files(sweep, plan.splits["test"], test_count)
    if remaining > 0 and test_files:
        with tempfile.TemporaryDirectory(prefix="sweep-bill-") as weights:
            save_weights(loop.module, Path(weights))
            eval_started = time.perf_counter()
            task.evaluate(model, Path(weights), test_files, num_classes, options)
            seconds = time.perf_counter() - eval_started
        timed["evaluate"] = seconds / len(test_files)
        timed["evaluate_detail"] = f"{len(test_files)} images, weights loaded, {loop.device.type}"
    return timed


def throughputs(
    sweep: Sweep, plan: SweepPlan, images: dict[str, int], settings: list[str],
    calibrate: bool, device: str,
) -> tuple[dict[str, Throughput], dict]:  # fmt: skip
    """Each kind of work's figure, and the timed runs (encoded bytes per setting, pixels per
    image, the model's parameters).

    Args:
        images: The pending image passes by kind of work (the kinds' costs, summed).
        settings: The codec settings the pending encodes write.
    """
    figures: dict[str, Throughput] = {}
    none = Throughput(None, NONE, "dry_run_calibrate=true times it")
    codec_run: dict = {}
    if calibrate and any(images.get(work) for work in ("decode", "encode", "measure")):
        codec_run = time_codec(sweep, plan, settings, bool(images.get("measure")))
    if codec_run:
        sample = f"{codec_run['images']} images"
        figures["decode"] = Throughput(codec_run["decode"], TIMED, f"decode, {sample}")
        if codec_run["encode"]:
            mean = statistics.mean(codec_run["encode"].values())
            detail = f"{sample} x {len(codec_run['encode'])} settings, decode included"
            figures["encode"] = Throughput(mean, TIMED, detail)
        if "measure" in codec_run:
            figures["measure"] = Throughput(
                codec_run["measure"], TIMED, "2 images, decode included"
            )
    stored = stored_trainings(sweep, plan)
    measured = measured_training(stored, device)
    model_run: dict = {}
    if measured is not None:
        totals = [s["parameters"]["total"] for s in stored if "parameters" in s]
        model_run["parameters"] = totals[0] if totals else None
    elif calibrate and (images.get("train") or images.get("evaluate")):
        model_run = time_training(sweep, plan)
    if measured is not None:
        figures["train"] = measured
    elif "train" in model_run:
        figures["train"] = Throughput(model_run["train"], TIMED, model_run["train_detail"])
    if "evaluate" in model_run:
        figures["evaluate"] = Throughput(model_run["evaluate"], TIMED, model_run["evaluate_detail"])
    elif "train" in figures:
        seconds = figures["train"].seconds_per_image / EVAL_SPEEDUP
        figures["evaluate"] = Throughput(seconds, DERIVED, f"{EVAL_SPEEDUP:g}x the training rate")
    for name in WORK:
        figures.setdefault(name, none)
    return figures, codec_run | {"parameters": model_run.get("parameters")}
