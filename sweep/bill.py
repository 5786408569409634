"""The bill of a sweep before launch (`python -m sweep dry_run=true`): what it would run, and
for how long, without running any of it.

Per stage kind: the stages of the plan, those finished in the store (cached) and those to run;
the images the pending stages decode and encode; and an estimate of CPU- and GPU-hours from a
throughput per kind of work. Each throughput says where it came from:

    measured in store   the train summaries (images per second, device) of finished trainings
                        of the same model config on the same device type as this machine
    timed now           a bounded run on this machine (`dry_run_calibrate`): the codec on a
                        few of the dataset's images at each pending setting, a few training
                        steps of the sweep's own model, one evaluation of those weights
    none                no figure: that part of the estimate is left out, and said so

The plan's keys are the real run's: the validations' keys are computed from the content
digests (read from the store's digest cache, never written), and a finished validation's
verdicts are applied as the sweep applies them (`sweep.screen.screen_images`). Nothing is
written to the store, no Ray starts, no MLflow run is made.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sweep.codecs.base import MIXED, ORIGINAL
from sweep.data.base import SPLITS, ImageItem
from sweep.data.digests import DIGEST_FOLDER, FileDigests
from sweep.data.files import LabelledFile
from sweep.data.validate import QUARANTINED, decoder_identity
from sweep.screen import Screening, screened_fingerprint
from sweep.stages import distortion, encode, evaluate, sensitivity, train, validate
from sweep.stages.encoding import reads_source_bytes
from sweep.stages.graph import Plan, SweepPlan
from sweep.stages.kind import Stage
from sweep.stages.shards import shard_key
from sweep.stages.table import STAGE_KINDS
from sweep.stages.validate import read_verdicts, validate_stage
from sweep.store import ArtifactStore

if TYPE_CHECKING:
    from sweep.config import Sweep

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


class ReadOnlyDigests(FileDigests):
    """The store's digest cache, read but never written: a dry run leaves the store as it
    found it (a file missing from the cache is hashed, and hashed again by the real run)."""

    def _save(self, root: Path, table: dict) -> None:
        del root, table


@dataclass(frozen=True)
class KindCount:
    """The stages of one kind: in the plan, finished in the store, to run."""

    kind: str
    total: int
    cached: int

    @property
    def to_run(self) -> int:
        return self.total - self.cached


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


@dataclass(frozen=True)
class PendingWork:
    """The images the pending stages handle, and the trainings and evaluations to run."""

    validate_images: int = 0
    encode_images: int = 0
    # Encode stages at the original setting keep the dataset's files: nothing is decoded.
    original_images: int = 0
    # (setting, images) of the pending lossy encodes.
    encode_by_setting: dict[str, int] = field(default_factory=dict)
    measure_images: int = 0
    trainings: int = 0
    train_decodes: int = 0
    evaluations: int = 0
    # Model-image forward passes of the evaluations; decodes are fewer when evaluations are
    # grouped (each test image decoded once per test setting for all models).
    eval_images: int = 0
    eval_decodes: int = 0
    # The tasks the evaluations run in (fewer than the evaluations when grouped).
    eval_tasks: int = 0
    sensitivities: int = 0


@dataclass
class Bill:
    """The bill of one plan: counts, work, throughputs and the estimate."""

    plan_key: str
    # What is billed ("sweep 02a9ba50", "budget experiment") and its shape, in words.
    name: str
    title: str
    device: str
    counts: list[KindCount]
    work: PendingWork
    throughput: dict[str, Throughput]
    cpu_hours: float
    gpu_hours: float
    hours_by_kind: dict[str, float | None]
    bytes_to_write: dict[str, int | None]
    # The cores of a local run (cluster.num_cpus or this machine's), for a wall-time figure.
    cores: int = 1
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "plan_key": self.plan_key,
            "name": self.name,
            "title": self.title,
            "device": self.device,
            "stages": {
                c.kind: {"total": c.total, "cached": c.cached, "to_run": c.to_run}
                for c in self.counts
            },
            "work": asdict(self.work),
            "throughput": {
                name: asdict(figure) | {"images_per_second": figure.images_per_second}
                for name, figure in self.throughput.items()
            },
            "cpu_hours": self.cpu_hours,
            "gpu_hours": self.gpu_hours,
            "hours_by_kind": self.hours_by_kind,
            "bytes_to_write": self.bytes_to_write,
            "cores": self.cores,
            "notes": self.notes,
        }


# ---- the plan, with the real run's keys --------------------------------------------------


def predicted_screening(sweep: Sweep) -> tuple[Plan, Screening]:
    """The validations of the listed images and the screening the sweep would plan over.

    A finished validation's verdicts are applied (quarantined images left out, as
    `screen_images` does); an unfinished one is assumed to keep every image. The kept
    images' fingerprints are made the way `screen_images` makes them, so that the plan's
    keys are those of the real run.
    """
    listed = {split: sweep.reader.items(split) for split in SPLITS}
    digests = ReadOnlyDigests(sweep.store.root / DIGEST_FOLDER)
    policy, shard_size = decoder_identity(), sweep.cluster.encode_shard_size
    validation = Plan(listed)
    screening = Screening({})
    for split, items in listed.items():
        stage = validate_stage(sweep.reader, split, items, policy, shard_size, digests)
        validation.add(stage, split)
        kept, dropped = items, []
        if sweep.store.is_done(validate.NAME, stage.key):
            verdicts = read_verdicts(sweep.store, stage)
            out = {i for i, found in enumerate(verdicts) if found["status"] == QUARANTINED}
            kept = [item for i, item in enumerate(items) if i not in out]
            dropped = [item.relpath for i, item in enumerate(items) if i in out]
            screening.quarantined += [{"split": split, "path": path} for path in dropped]
        screening.splits[split] = kept
        screening.fingerprints[split] = screened_fingerprint(stage.key, dropped)
    return validation, screening


def grid_plan(sweep: Sweep, screening: Screening) -> SweepPlan:
    """The sweep's plan over the predicted screening (the grid of experiment=grid, or the
    encodes of experiment=budget, whose cells are planned from them)."""
    from sweep.run import plan_sweep

    if sweep.budget is None:
        return plan_sweep(sweep, screening)
    plan = plan_sweep(budget_shaped(sweep), screening)
    return plan.narrowed_to(plan.encodes.values())


def budget_shaped(sweep: Sweep) -> Sweep:
    """The sweep as the budget experiment runs its encodes (see `run_budget`)."""
    options = sweep.budget
    settings = [s for s in options.settings or sweep.train_settings if s != MIXED]
    if ORIGINAL not in settings:
        settings.insert(0, ORIGINAL)
    tests = [ORIGINAL, *(settings if options.test_on_same_setting else [])]
    return replace(sweep, train_settings=settings, test_settings=list(dict.fromkeys(tests)))


def budget_cells(sweep: Sweep, plan: SweepPlan, screening: Screening) -> tuple[Plan | None, str]:
    """The budget experiment's cells when the train encodes they are sized from are finished
    (the plan of the cells, read-only), else None; and a sentence saying which."""
    from sweep.experiments.budget import plan_cells
    from sweep.run import plan_inputs

    shaped = budget_shaped(sweep)
    settings, budgets = shaped.train_settings, sweep.budget.budgets
    cells = len(settings) * len(budgets)
    encodes = [plan.encodes[("train", s)] for s in settings]
    if not all(sweep.store.is_done(encode.NAME, stage.key) for stage in encodes):
        return None, (
            f"experiment=budget: {len(settings)} settings x {len(budgets)} budgets = {cells} "
            f"cells, each a training sized from the encoded train split: they are planned once "
            f"the encodes below exist, so only the encodes are counted and estimated here"
        )
    inputs = replace(plan_inputs(sweep, screening), seeds=(sweep.seed,))
    cell_plan, _ = plan_cells(plan, inputs, shaped, settings)
    return cell_plan, f"experiment=budget: {cells} cells planned from the finished encodes"


# ---- counting ----------------------------------------------------------------------------


def pending_shard_images(store: ArtifactStore, plan: Plan, stage: Stage) -> int:
    """The images of a sharded stage's unfinished shards."""
    folder = STAGE_KINDS[stage.kind].shard_folder
    return sum(
        len(plan.shard_items(stage, index))
        for index in range(len(stage.shards))
        if not store.is_done(folder, shard_key(stage, index))
    )


def count_stages(store: ArtifactStore, stages: list[Stage]) -> dict[str, KindCount]:
    """Per kind (in the table's order): stages, and those finished in the store."""
    totals: dict[str, list[int]] = {name: [0, 0] for name in STAGE_KINDS}
    for stage in stages:
        totals[stage.kind][0] += 1
        totals[stage.kind][1] += store.is_done(stage.kind, stage.key)
    return {name: KindCount(name, *t) for name, t in totals.items() if t[0]}


def pending_work(
    store: ArtifactStore, validation: Plan, plan: Plan, epochs: int, group_size: int = 1
) -> PendingWork:
    """The images and runs of every stage that is not finished in the store.

    Args:
        epochs: `train.epochs`, for trainings that do not set their own (budget cells do).
        group_size: `cluster.eval_group_size`: the pending evaluations of one test setting
            run in tasks of that many at most, each decoding the test images once.
    """
    work = PendingWork()
    values: dict = asdict(work)
    pending = [
        stage
        for stage in [*validation.in_order(STAGE_KINDS), *plan.in_order(STAGE_KINDS)]
        if not store.is_done(stage.kind, stage.key)
    ]
    # Pending evaluations per test encode (a group's decodes are shared).
    tested: dict[str, int] = {}
    for stage in pending:
        source = validation if stage.kind == validate.NAME else plan
        if stage.kind == validate.NAME:
            values["validate_images"] += pending_shard_images(store, source, stage)
        elif stage.kind == encode.NAME:
            images = pending_shard_images(store, source, stage)
            if stage.setting == ORIGINAL:
                values["original_images"] += images
            else:
                values["encode_images"] += images
                by_setting = values["encode_by_setting"]
                by_setting[stage.setting] = by_setting.get(stage.setting, 0) + images
        elif stage.kind == train.NAME:
            images = len(stage.subset) if stage.subset is not None else len(plan.splits["train"])
            values["trainings"] += 1
            values["train_decodes"] += (stage.epochs or epochs) * images
        elif stage.kind == evaluate.NAME:
            images = len(plan.splits["test"])
            values["evaluations"] += 1
            values["eval_images"] += images
            tested[stage.encode.key] = tested.get(stage.encode.key, 0) + 1
        elif stage.kind == distortion.NAME:
            if stage.setting != ORIGINAL:  # the reference is measured without reading
                values["measure_images"] += pending_shard_images(store, plan, stage)
        elif stage.kind == sensitivity.NAME:
            values["sensitivities"] += 1
    tasks = sum(-(-cells // group_size) for cells in tested.values())  # ceil
    values["eval_tasks"] = tasks
    values["eval_decodes"] = tasks * len(plan.splits["test"])
    return PendingWork(**values)


# ---- throughput: measured in the store, or timed now -------------------------------------


def machine_device() -> str:
    """The device type this machine trains on ("cuda" or "cpu")."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def stored_trainings(sweep: Sweep, plan: Plan) -> list[dict]:
    """Summaries of finished trainings of the same model config: the plan's own, and those of
    every report under results_dir whose config.yaml has the same `model` node."""
    import yaml

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
    root = Path(sweep.reader.root)
    return [
        LabelledFile(str(root / item.relpath), item.target,
                     None if item.mask is None else str(root / item.mask))
        for item in items[:count]
    ]  # fmt: skip


def time_codec(sweep: Sweep, plan: SweepPlan, work: PendingWork) -> dict:
    """The codec on a few test images, once per pending lossy setting (within CODEC_SECONDS):
    seconds per image to decode a source, to encode (decode included), to measure, and
    encoded bytes per image by setting."""
    from sweep.data.pixels import read_pixels

    items = (plan.splits["test"] or plan.splits["train"])[:CODEC_SAMPLE]
    if not items:
        return {}
    paths = [Path(sweep.reader.root) / item.relpath for item in items]
    started = time.perf_counter()
    pixels = [read_pixels(path) for path in paths]
    decode_seconds = (time.perf_counter() - started) / len(paths)
    timed: dict = {"decode": decode_seconds, "images": len(paths), "bytes": {}, "encode": {}}
    deadline = time.perf_counter() + CODEC_SECONDS
    encoded: list[bytes] = []
    for setting in work.encode_by_setting:
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
    if work.measure_images and encoded and time.perf_counter() < deadline:
        from sweep.distortion import measure_image, resolve_measurement

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
    """A few training steps of the sweep's model on the first train images (the first step
    untimed: it pays allocation and warm-up), then one evaluation of those weights on the
    first test images; within about TRAIN_SECONDS once the model is built. Returns seconds
    per image and the model's trainable parameters.

    On the CPU two steps of two images size the batch so that a step takes about
    STEP_SECONDS (the rate per image hardly depends on the batch there, and a large model's
    full batch could take longer than the time allowed); a GPU trains with the real batch.
    """
    import torch

    from sweep.tasks import mixed
    from sweep.tasks.base import parameter_counts
    from sweep.tasks.runtime import (
        OptimizerSteps,
        autocast,
        autocast_dtype,
        pick_device,
        save_weights,
        seed_everything,
        training_loader,
    )

    task, model = sweep.task, sweep.model
    device = pick_device()
    # In this process: no loader processes (the real run's rate with them can only be higher).
    options = replace(sweep.options, loader_workers=0, epochs=1)
    if sweep.cluster.torch_threads:
        torch.set_num_threads(sweep.cluster.torch_threads)
    files = sample_files(sweep, plan.splits["train"], options.batch_size * (TIMED_STEPS + 1) + 2)
    if not files:
        return {}
    num_classes = len(plan.class_names)
    generator = seed_everything(sweep.seed)
    module = model.build(num_classes).to(device)
    dataset = mixed.training_dataset(task, model, files, options)
    groups = model.parameter_groups(module, options.lr, options.weight_decay)
    optimizer = task.optimizer(groups, options)
    scheduler = task.schedule(optimizer, TIMED_STEPS + 2, options)
    dtype = autocast_dtype(options.amp, device)
    clipped = [parameter for group in groups for parameter in group["params"]]
    steps = OptimizerSteps(optimizer, scheduler, dtype, clipped, task.grad_clip())
    module.train()

    def batches(batch_size: int):
        sized = replace(options, batch_size=batch_size)
        return iter(training_loader(dataset, sized, generator, device, False, task.collate))

    def step(batch) -> tuple[float, int]:
        """Seconds and images of one training step."""
        started = time.perf_counter()
        with autocast(device, dtype):
            loss, images = task.training_loss(module, batch, device)
        steps.step(loss)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started, images

    started = time.perf_counter()
    batch_size = options.batch_size
    if device.type == "cuda":
        loader = batches(batch_size)
        warm_seconds, warm_images = step(next(loader))
    else:  # a warm-up step of two images, then one more to size the batch by
        probe = batches(min(2, batch_size))
        warm_seconds, warm_images = step(next(probe))
        second = next(probe, None)
        seconds, images = (warm_seconds, warm_images) if second is None else step(second)
        fitting = int(STEP_SECONDS / (seconds / max(images, 1)))
        batch_size = max(2, min(batch_size, fitting))
        loader = batches(batch_size)
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
        "train_detail": f"original images in batches of {batch_size}, {how}, {device.type}",
        "parameters": parameter_counts(module)["total"],
    }
    remaining = TRAIN_SECONDS - (time.perf_counter() - started)
    # One evaluation (weights loaded, as each cell does) on as many test images as should fit.
    test_count = int(min(options.eval_batch_size, remaining / (train_seconds / EVAL_SPEEDUP)))
    test_files = sample_files(sweep, plan.splits["test"], test_count)
    if remaining > 0 and test_files:
        with tempfile.TemporaryDirectory(prefix="sweep-bill-") as weights:
            save_weights(module, Path(weights))
            eval_started = time.perf_counter()
            task.evaluate(model, Path(weights), test_files, num_classes, options)
            seconds = time.perf_counter() - eval_started
        timed["evaluate"] = seconds / len(test_files)
        timed["evaluate_detail"] = f"{len(test_files)} images, weights loaded, {device.type}"
    return timed


def throughputs(
    sweep: Sweep, plan: SweepPlan, work: PendingWork, calibrate: bool, device: str
) -> tuple[dict[str, Throughput], dict]:
    """Each kind of work's figure, and the codec's timed run (encoded bytes per setting)."""
    figures: dict[str, Throughput] = {}
    none = Throughput(None, NONE, "dry_run_calibrate=true times it")
    codec_run: dict = {}
    if calibrate and (work.validate_images or work.encode_images or work.measure_images):
        codec_run = time_codec(sweep, plan, work)
    if codec_run:
        sample = f"{codec_run['images']} images"
        figures["validate"] = Throughput(codec_run["decode"], TIMED, f"decode, {sample}")
        if codec_run["encode"]:
            mean = statistics.mean(codec_run["encode"].values())
            detail = f"{sample} x {len(codec_run['encode'])} settings, decode included"
            figures["encode"] = Throughput(mean, TIMED, detail)
        if "measure" in codec_run:
            figures["distortion"] = Throughput(
                codec_run["measure"], TIMED, "2 images, decode included"
            )
    stored = stored_trainings(sweep, plan)
    measured = measured_training(stored, device)
    model_run: dict = {}
    if measured is not None:
        totals = [s["parameters"]["total"] for s in stored if "parameters" in s]
        model_run["parameters"] = totals[0] if totals else None
    elif calibrate and (work.trainings or work.evaluations):
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
    for name in ("validate", "encode", "distortion", "train", "evaluate"):
        figures.setdefault(name, none)
    return figures, codec_run | {"parameters": model_run.get("parameters")}


# ---- the bill ----------------------------------------------------------------------------


def estimate(
    work: PendingWork, figures: dict[str, Throughput], device: str, threads: int
) -> tuple[float, float, dict[str, float | None]]:
    """CPU-hours, GPU-hours and hours per kind of work (None: no figure for work to do).

    The CPU kinds run one image stream per core. Trainings and evaluations on the CPU use
    `threads` cores each (`cluster.torch_threads`, else every core); on a GPU their hours
    are GPU-hours (an evaluation's share of its GPU, `cluster.eval_gpu_fraction`, is not
    taken off: its rate was timed on a whole one).
    """
    images = {
        "validate": work.validate_images,
        "encode": work.encode_images,
        "distortion": work.measure_images,
        "train": work.train_decodes,
        "evaluate": work.eval_images,
    }
    hours: dict[str, float | None] = {}
    cpu = gpu = 0.0
    for name, count in images.items():
        seconds = figures[name].seconds_per_image
        if not count:
            hours[name] = 0.0
            continue
        if seconds is None:
            hours[name] = None
            continue
        hours[name] = count * seconds / 3600
        if name in ("train", "evaluate") and device == "cuda":
            gpu += hours[name]
        elif name in ("train", "evaluate"):
            cpu += hours[name] * threads
        else:
            cpu += hours[name]
    return cpu, gpu, hours


def bytes_to_write(work: PendingWork, codec_run: dict) -> dict[str, int | None]:
    """Encoded images (from the timed bytes per image at each setting; the mean of the timed
    settings for the others) and trained weights (float32 parameters)."""
    written = codec_run.get("bytes") or {}
    encoded = None
    if written:
        mean = statistics.mean(written.values())
        encoded = int(sum(n * written.get(s, mean) for s, n in work.encode_by_setting.items()))
    elif not work.encode_images:
        encoded = 0
    parameters = codec_run.get("parameters")
    weights = None if parameters is None else 4 * parameters * work.trainings
    if not work.trainings:
        weights = 0
    return {"encoded_images": encoded, "weights": weights}


def bill_of(sweep: Sweep, calibrate: bool = True) -> Bill:
    """The bill of the sweep's plan: nothing is run and nothing written."""
    validation, screening = predicted_screening(sweep)
    plan = grid_plan(sweep, screening)
    notes, name = [], None
    if sweep.budget is not None:
        cells, sentence = budget_cells(sweep, plan, screening)
        notes.append(sentence)
        name = "budget experiment" + ("" if cells is not None else " (its encodes)")
        if cells is not None:
            plan = replace(plan, stages={**plan.stages, **cells.stages})
    if sweep.codec.needs_sensitivity_map:
        notes.append(
            f"codec={sweep.codec.name} measures its sensitivity map first, and its encodes' "
            f"keys hold the map: its lossy encodes and the stages after them count as to run"
        )
    stages = [*validation.in_order(STAGE_KINDS), *plan.in_order(STAGE_KINDS)]
    counts = count_stages(sweep.store, stages)
    group_size = getattr(sweep.cluster, "eval_group_size", None) or 1
    work = pending_work(sweep.store, validation, plan, sweep.options.epochs, group_size)
    device = machine_device()
    figures, codec_run = throughputs(sweep, plan, work, calibrate, device)
    threads = sweep.cluster.torch_threads or os.cpu_count() or 1
    cpu, gpu, hours = estimate(work, figures, device, threads)
    if any(value is None for value in hours.values()):
        notes.append(
            "a figure without a source is left out of the hours: dry_run_calibrate=true times "
            "it on this machine, a finished training of this model in the store measures it"
        )
    if screening.quarantined and sweep.on_error == "fail":
        notes.append(
            f"data.on_error=fail: the run would stop at {screening.quarantined[0]['path']}, "
            f"which the finished validation found unreadable"
        )
    elif screening.quarantined:
        notes.append(
            f"{len(screening.quarantined)} image(s) quarantined by the finished validation "
            f"are left out"
        )
    if sweep.cluster.mode == "ray" and sweep.cluster.address:
        notes.append(
            f"the hours are for this machine's device ({device}); the cluster at "
            f"{sweep.cluster.address} may have others"
        )
    return Bill(
        plan_key=plan.key,
        name=name or f"sweep {plan.key[:8]}",
        title=(
            f"{sweep.task_name}, {sweep.model.name}, {sweep.codec.name}: "
            f"{len(plan.train_settings)} train x {len(plan.test_settings)} test settings, "
            f"{len(plan.seeds)} seed(s), {len(plan.splits['train'])} train / "
            f"{len(plan.splits['test'])} test images"
        ),
        device=device,
        counts=list(counts.values()),
        work=work,
        throughput=figures,
        cpu_hours=cpu,
        gpu_hours=gpu,
        hours_by_kind=hours,
        bytes_to_write=bytes_to_write(work, codec_run),
        cores=sweep.cluster.num_cpus or os.cpu_count() or 1,
        notes=notes,
    )


def describe_work(kind: str, work: PendingWork) -> str:
    """What a kind's pending stages handle, in words."""
    if kind == validate.NAME:
        return f"{work.validate_images:,} images to decode once"
    if kind == encode.NAME:
        kept = f", {work.original_images:,} originals kept as they are"
        return f"{work.encode_images:,} images to encode" + (kept if work.original_images else "")
    if kind == train.NAME:
        return f"{work.train_decodes:,} image decodes ({work.trainings} trainings)"
    if kind == evaluate.NAME:
        tasks = f" in {work.eval_tasks} tasks" if work.eval_tasks < work.evaluations else ""
        return f"{work.eval_decodes:,} image decodes ({work.evaluations} evaluations{tasks})"
    if kind == distortion.NAME:
        return f"{work.measure_images:,} images to measure"
    if kind == sensitivity.NAME:
        return f"{work.sensitivities} maps to measure (not estimated)"
    return ""


def format_hours(hours: float | None) -> str:
    if hours is None:
        return "?"
    return f"{hours:.2f} h" if hours >= 0.01 else f"{hours * 3600:.0f} s"


def format_bytes(count: int | None) -> str:
    if count is None:
        return "?"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def format_bill(bill: Bill) -> str:
    """The bill as a plain-text table."""
    lines = [f"bill of the {bill.name} ({bill.title})", ""]
    lines.append(f"{'stage kind':<12} {'total':>7} {'cached':>7} {'to run':>7}  pending work")
    for count in bill.counts:
        work = describe_work(count.kind, bill.work)
        lines.append(
            f"{count.kind:<12} {count.total:>7,} {count.cached:>7,} {count.to_run:>7,}  {work}"
        )
    lines += [
        "",
        f"to run: {bill.work.trainings} trainings, {bill.work.evaluations} evaluations",
        "",
        f"{'throughput':<12} {'img/s':>9} {'hours':>9}  source",
    ]
    for name, figure in bill.throughput.items():
        if figure.source == NONE and bill.hours_by_kind.get(name) == 0:
            continue  # nothing of that kind to run
        rate = figure.images_per_second
        shown = "-" if rate is None else f"{rate:,.1f}"
        where = figure.source + (f" ({figure.detail})" if figure.detail else "")
        hours = format_hours(bill.hours_by_kind.get(name))
        lines.append(f"{name:<12} {shown:>9} {hours:>9}  {where}")
    written = bill.bytes_to_write
    missing = [name for name, hours in bill.hours_by_kind.items() if hours is None]
    left_out = f", without {', '.join(missing)} (no figure)" if missing else ""
    lines += [
        "",
        f"estimate: {bill.cpu_hours:.2f} CPU-hours, {bill.gpu_hours:.2f} GPU-hours "
        f"(trainings and evaluations on {bill.device}){left_out}",
        *(
            [f"at least {bill.cpu_hours / bill.cores:.2f} h of wall time on {bill.cores} cores"]
            if bill.device == "cpu" and bill.cpu_hours and not missing
            else []
        ),
        f"to write: {format_bytes(written['encoded_images'])} of encoded images, "
        f"{format_bytes(written['weights'])} of trained weights",
    ]
    lines += [f"note: {note}" for note in bill.notes]
    lines.append("dry run: nothing was run or written (dry_run=false runs it)")
    return "\n".join(lines)
