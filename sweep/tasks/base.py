"""The contract of a task kind, the one fit loop that trains every kind, and the one loop
that evaluates several trained models of a kind on one decode of the test files.

A task kind (classification, detection, segmentation) knows its annotations, its loss, its
recipe (optimiser, schedule, augmentation) and its metric. It is instantiated from the
`task.kind` node of `conf/task/<name>.yaml` with explicit keyword arguments, never sees the
config object, and is shipped to Ray workers, so it holds plain values only.

To add a task kind: write `sweep/tasks/<kind>.py` with a subclass of `TaskKind` that fills in
the abstract members below, a dataset reader that yields its annotations (`sweep/data/`), a
model family of the kind with a `*_tiny` sibling (`sweep/models/base.py`), a
`conf/task/<name>.yaml` and a built-in demo task (named in `sweep.config.DEMO_TASKS`). Raise
`sweep.errors.OptionError(message, option="task.kind.<arg>")` for a bad argument. Draw every
random augmentation from torch's global generator: the fit loop seeds it, and the loader
seeds it in each worker process, so a seed gives the same weights on the CPU. Metrics are
JSON numbers (None where undefined: JSON has no NaN).

Keys: everything in `train_identity()` is part of every training key, everything in
`eval_identity()` only of the evaluation keys. So an option that changes only how a trained
model is evaluated (segmentation's sliding window) re-evaluates without retraining.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch.utils.data import DataLoader, Dataset

from sweep.data.files import LabelledFile
from sweep.models.base import ModelFamily
from sweep.models.trained import load_trained, save_weights
from sweep.options import TrainOptions
from sweep.tasks import mixed
from sweep.tasks.runtime import (
    OptimizerSteps,
    autocast,
    autocast_dtype,
    pick_device,
    seed_everything,
    train_summary,
    training_loader,
)


class TaskKind(ABC):
    """A task kind: how a model family of its kind is trained and evaluated.

    Attributes:
        kind: "classification", "detection" or "segmentation"; matches the model family's
            `task_kind`.
        metric_names: The metrics that `evaluate` returns and the report shows, headline first.
        option_fields: `train` options (fields of `sweep.options.TrainOptions`, set in
            `conf/train/`) that only this kind reads; they enter its training keys and no
            other kind's. The config check refuses a name that is no such field.
        drop_incomplete_batch: Drop the last training batch when it is smaller than the
            batch size (a batch of one image breaks batch-norm layers in training mode).
        collate: The training loader's collate function, wrapped in staticmethod (None:
            torch's default stacking).
    """

    kind: ClassVar[str]
    metric_names: ClassVar[tuple[str, ...]]
    option_fields: ClassVar[tuple[str, ...]] = ()
    drop_incomplete_batch: ClassVar[bool] = True
    collate: ClassVar[Callable[[list], Any] | None] = None

    # ---- identity: what the keys hold ---------------------------------------------------

    @abstractmethod
    def train_identity(self) -> dict:
        """What of this task changes the trained weights: recipe, augmentation, loss."""

    def eval_identity(self) -> dict:
        """What changes only the evaluation of trained weights: metric, inference mode."""
        return {}

    def identity(self) -> dict:
        """The whole task as JSON data (for people and logs; keys use the two parts)."""
        return {"kind": self.kind, **self.train_identity(), **self.eval_identity()}

    # ---- training: the fit loop calls these --------------------------------------------

    @abstractmethod
    def training_dataset(
        self, model: ModelFamily, files: list[LabelledFile], options: TrainOptions
    ) -> Dataset:
        """The augmented training samples of the files, as the model family takes them."""

    @abstractmethod
    def optimizer(self, groups: list[dict], options: TrainOptions) -> torch.optim.Optimizer:
        """The optimiser over the model family's parameter groups."""

    @abstractmethod
    def schedule(
        self, optimizer: torch.optim.Optimizer, total_steps: int, options: TrainOptions
    ) -> torch.optim.lr_scheduler.LRScheduler:
        """The learning-rate schedule, stepped once per batch."""

    @abstractmethod
    def training_loss(
        self, module: torch.nn.Module, batch: Any, device: torch.device
    ) -> tuple[torch.Tensor, int]:
        """The mean loss per image of one training batch, as the loader yields it (moved to
        `device` here), and the batch's number of images. Runs under autocast."""

    def reads_decode_cache(self, model: ModelFamily) -> bool:
        """Whether this kind's training of `model` reads its pixels from a decode cache when
        the files carry one (train.decode_cache, `sweep.data.files.DecodedFiles`); the
        planner makes caches only then. False: its datasets decode the files themselves."""
        return False

    def grad_clip(self) -> float | None:
        """Largest gradient norm (None: no clipping)."""
        return None

    def summary_extras(self, files: list[LabelledFile]) -> dict:
        """Figures of the training set that the training summary adds (e.g. objects)."""
        return {}

    def train(
        self,
        model: ModelFamily,
        files: list[LabelledFile],
        num_classes: int,
        options: TrainOptions,
        seed: int,
        out_dir: Path,
    ) -> dict:
        """Trains a model on the files, writes its weights to out_dir; returns the summary."""
        return fit(self, model, files, num_classes, options, seed, out_dir)

    # ---- evaluation ----------------------------------------------------------------------

    def evaluate(
        self,
        model: ModelFamily,
        weights_dir: Path,
        files: list[LabelledFile],
        num_classes: int,
        options: TrainOptions,
    ) -> dict:
        """The metrics (every name in `metric_names`, and "images") of the weights that a
        training wrote to weights_dir, on the files: `evaluate_group` of those weights alone.

        A kind whose metric can be resampled also returns "outcomes": {name: array with one
        row per file, in file order}, what its `resample` needs. The evaluate stage stores
        them beside the metrics (sweep/analysis/outcomes.py), not in metrics.json.
        """
        return self.evaluate_group(model, [weights_dir], files, num_classes, options)[0]

    def evaluate_group(
        self,
        model: ModelFamily,
        weights_dirs: list[Path],
        files: list[LabelledFile],
        num_classes: int,
        options: TrainOptions,
    ) -> list[dict]:
        """`evaluate` of several trainings' weights (of one model family) on the same files,
        one metrics dict per weights dir, in order.

        Each batch of files is read and decoded once and goes through every model in turn
        (`evaluate_models`), so N models cost one decode of the files, not N. Each model's
        metrics are those of evaluating it alone: the same batches, its own scores.
        """
        return evaluate_models(self, model, weights_dirs, files, num_classes, options)

    # ---- evaluation: the grouped loop calls these ----------------------------------------

    @abstractmethod
    def evaluation_loader(
        self,
        model: ModelFamily,
        files: list[LabelledFile],
        options: TrainOptions,
        device: torch.device,
    ) -> DataLoader:
        """The test files' samples in file order, as the model family takes them."""

    @abstractmethod
    def evaluation_batch(self, batch: Any, device: torch.device) -> tuple[Any, Any]:
        """(inputs, truth) of one batch of `evaluation_loader`, moved to `device` once for
        every model of a group."""

    @abstractmethod
    def evaluation_forward(
        self,
        module: torch.nn.Module,
        inputs: Any,
        truth: Any,
        num_classes: int,
        options: TrainOptions,
    ) -> Any:
        """One model's predictions of a batch (runs under autocast)."""

    @abstractmethod
    def evaluation_scores(
        self,
        modules: Sequence[torch.nn.Module],
        model: ModelFamily,
        files: list[LabelledFile],
        num_classes: int,
        device: torch.device,
    ) -> list[Score]:
        """A fresh `Score` per module: what accumulates its predictions into its metrics."""

    # The metrics recomputed on a bootstrap draw of test images (sweep/analysis/bootstrap.py):
    # `resample(outcomes, counts)` takes one cell's outcomes (aligned, N rows) and a (B, N)
    # array of how often each image is drawn, and returns {metric: (B,) values}. None: the
    # kind's metrics get no intervals.
    resample: ClassVar[Callable[[dict, Any], dict] | None] = None
    # The metrics that are the share of test images with a per-image 0/1 outcome, and that
    # outcome's name, e.g. {"accuracy": "correct"}: one seed's cells of them get exact
    # intervals (Clopper-Pearson, Newcombe's paired score interval; sweep/analysis/
    # proportions.py), valid where every image is right or none changes its answer.
    proportion_outcomes: ClassVar[Mapping[str, str]] = MappingProxyType({})
    # `chance_level(outcomes)`: from original/original's outcomes (aligned, N rows), each
    # metric's value for a model that learnt nothing, {metric: ChanceLevel}
    # (sweep/analysis/chance.py). A sweep whose original/original is no better says the grid
    # cannot answer. None: no check.
    chance_level: ClassVar[Callable[[Mapping[str, Any]], dict] | None] = None


class Score(ABC):
    """One model's metrics, accumulated batch by batch over the test files."""

    @abstractmethod
    def update(self, prediction: Any, truth: Any) -> None:
        """Adds one batch's predictions (`TaskKind.evaluation_forward`) and truth."""

    @abstractmethod
    def result(self, seconds: float) -> dict:
        """The metrics (every name in `metric_names`, "images", and "outcomes" where the
        kind resamples them); `seconds` is this model's share of the group's time."""


def evaluate_models(
    task: TaskKind,
    model: ModelFamily,
    weights_dirs: list[Path],
    files: list[LabelledFile],
    num_classes: int,
    options: TrainOptions,
) -> list[dict]:
    """The one grouped-evaluation loop: every trained model of `weights_dirs` on the files,
    each batch decoded and moved to the device once for all of them."""
    device = pick_device()
    loader = task.evaluation_loader(model, files, options, device)
    dtype = autocast_dtype(options.amp, device)
    modules = [load_trained(model, path, num_classes, device) for path in weights_dirs]
    scores = task.evaluation_scores(modules, model, files, num_classes, device)
    started = time.perf_counter()
    with torch.no_grad():
        for batch in loader:
            inputs, truth = task.evaluation_batch(batch, device)
            for module, score in zip(modules, scores, strict=True):
                with autocast(device, dtype):
                    prediction = task.evaluation_forward(
                        module, inputs, truth, num_classes, options
                    )
                score.update(prediction, truth)
    seconds = (time.perf_counter() - started) / max(len(modules), 1)
    return [score.result(seconds) for score in scores]


class FitLoop:
    """One training, set up as the fit loop runs it: seeded, its module built, its dataset,
    loader, optimiser, schedule and mixed precision ready, stepped one batch at a time.

    Seeding comes first, then the module (its random initialisation), then the loader: the
    same seed gives the same weights on the CPU. The bill (sweep/experiments/bill/) times
    `step` on a few batches; `fit` runs it over every epoch.

    Args:
        total_steps: Steps of the schedule; None: every batch of every epoch.
    """

    def __init__(
        self,
        task: TaskKind,
        model: ModelFamily,
        files: list[LabelledFile],
        num_classes: int,
        options: TrainOptions,
        seed: int,
        total_steps: int | None = None,
    ) -> None:
        self.task, self.options = task, options
        self.generator = seed_everything(seed)
        self.device = pick_device()
        self.module = model.build(num_classes).to(self.device)
        self.dataset = mixed.training_dataset(task, model, files, options)
        drop_last = task.drop_incomplete_batch and len(self.dataset) > options.batch_size
        self.loader = self.batches(options.batch_size, drop_last)
        self.groups = model.parameter_groups(self.module, options.lr, options.weight_decay)
        optimizer = task.optimizer(self.groups, options)
        if total_steps is None:
            total_steps = options.epochs * len(self.loader)
        scheduler = task.schedule(optimizer, total_steps, options)
        self.dtype = autocast_dtype(options.amp, self.device)
        clipped = [parameter for group in self.groups for parameter in group["params"]]
        self.steps = OptimizerSteps(optimizer, scheduler, self.dtype, clipped, task.grad_clip())

    def batches(self, batch_size: int, drop_last: bool = False) -> DataLoader:
        """The shuffled, seeded loader of the training set in batches of `batch_size`."""
        options = replace(self.options, batch_size=batch_size)
        return training_loader(
            self.dataset, options, self.generator, self.device, drop_last, self.task.collate
        )

    def step(self, batch: Any) -> tuple[torch.Tensor, int]:
        """One optimiser step on a batch: its mean loss per image, and its images."""
        with autocast(self.device, self.dtype):
            loss, images = self.task.training_loss(self.module, batch, self.device)
        self.steps.step(loss)
        return loss, images


def fit(
    task: TaskKind,
    model: ModelFamily,
    files: list[LabelledFile],
    num_classes: int,
    options: TrainOptions,
    seed: int,
    out_dir: Path,
) -> dict:
    """The one training loop: seeded data order, mixed precision with fp16 loss scaling,
    clipping, a per-batch schedule, the mean loss per epoch, weights and a summary.

    With 0 epochs (train=none) the module is written as built, see `save_as_loaded`.
    """
    if options.epochs == 0:
        return save_as_loaded(model, num_classes, seed, out_dir)
    loop = FitLoop(task, model, files, num_classes, options, seed)
    epoch_losses, seen, started = [], 0, time.perf_counter()
    for _ in range(options.epochs):
        loop.module.train()
        loss_sum, epoch_images = 0.0, 0
        for batch in loop.loader:
            loss, images = loop.step(batch)
            loss_sum += loss.item() * images
            epoch_images += images
        seen += epoch_images
        # The mean over the images the epoch trained on (a dropped last batch is not).
        epoch_losses.append(loss_sum / max(epoch_images, 1))
    seconds = time.perf_counter() - started
    save_weights(loop.module, out_dir)
    summary = train_summary(epoch_losses, len(loop.dataset), seen, seconds, loop.device, loop.dtype)
    return summary | {"parameters": parameter_counts(loop.module)} | task.summary_extras(files)


def parameter_counts(module: torch.nn.Module) -> dict[str, int]:
    """Trainable parameters: "total", and each part a module names (`parameter_counts()`,
    e.g. a resizer and its backbone)."""
    total = sum(p.numel() for p in module.parameters() if p.requires_grad)
    parts = getattr(module, "parameter_counts", None)
    return {"total": total} | (parts() if parts is not None else {})


def save_as_loaded(model: ModelFamily, num_classes: int, seed: int, out_dir: Path) -> dict:
    """train=none: writes the module as built, pretrained weights and head included, with no
    optimiser step; returns its summary. The evaluations load it as any trained weights."""
    seed_everything(seed)  # a random-init family still builds the same weights from a seed
    save_weights(model.build(num_classes), out_dir)
    return {"as_loaded": True, "epochs": 0, "train_loss": [], "images": 0}
