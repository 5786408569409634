"""The storage-budget experiment, `python -m sweep experiment=budget`.

The question that pays (Mentzer & Montanari, "Scaling Training Data with Lossy Image
Compression", 2024): with a fixed number of bytes for the training images, is it better to
keep fewer originals or more compressed images? For every train setting and budget, the cell
trains on the largest subset of train images whose bytes at that setting fit the budget, and
is evaluated on the original test split (and, if asked, on the test split at its own setting).

Subsets are nested and comparable: one seeded order of the split's images, and each cell takes
the longest prefix of it that fits, so a larger budget holds every image of a smaller one and
a more compressed setting holds every image a less compressed one holds. Encodes, trainings and
evaluations are ordinary stages in the store: a cell whose subset is the whole split is the
grid's own training, and a rerun reuses everything.

The run has two phases: the encodes (a cell's subset depends on its images' encoded bytes),
then the cells. The report (sweep/experiments/budget_report.py) tables and draws the cells and
fits the scaling law (sweep/experiments/scaling_law.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sweep.codecs.base import MIXED, ORIGINAL
from sweep.config import Sweep
from sweep.engine.execute import execute
from sweep.stages import evaluate, train
from sweep.stages.encode import EncodeStage
from sweep.stages.evaluate import EvaluateStage
from sweep.stages.graph import Plan, PlanInputs, SweepPlan
from sweep.stages.train import TrainStage, result_options

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BudgetCell:
    """One (setting, budget) cell: its subset and training, or why it has none."""

    setting: str
    budget: float
    budget_bytes: int
    images: int
    bytes_used: int
    split_images: int
    train: TrainStage | None
    reason: str | None = None

    @property
    def bits_per_image(self) -> float:
        """L: the mean size of the cell's images in bits."""
        return 8 * self.bytes_used / self.images if self.images else float("nan")


def image_order(count: int, seed: int) -> np.ndarray:
    """The seeded order in which the split's images enter every budget."""
    return np.random.default_rng(seed).permutation(count)


def fitting_prefix(sizes_in_order: np.ndarray, budget_bytes: int) -> int:
    """How many images, taken in order, fit in the budget."""
    return int(np.searchsorted(np.cumsum(sizes_in_order), budget_bytes, side="right"))


def encoded_sizes(store, stage: EncodeStage) -> np.ndarray:
    """Each encoded image's bytes, in split order."""
    with (store.path("encode", stage.key) / "records.jsonl").open() as stream:
        return np.array([json.loads(line)["encoded_bytes"] for line in stream], dtype=np.int64)


def plan_cells(
    base: SweepPlan, inputs: PlanInputs, sweep: Sweep, settings: list[str]
) -> tuple[Plan, list[BudgetCell]]:
    """The cells' trainings and evaluations, over the finished encodes of `base`."""
    options, store = sweep.budget, sweep.store
    sizes = {s: encoded_sizes(store, base.encodes[("train", s)]) for s in settings}
    split_images = len(sizes[ORIGINAL])
    original_bytes = int(sizes[ORIGINAL].sum())
    order = image_order(split_images, options.subset_seed)
    task = inputs.task
    plan = Plan(base.splits)
    for ident, stage in base.encodes.items():
        plan.add(stage, ident)
    tests = [
        ORIGINAL,
        *([s for s in settings if s != ORIGINAL] if options.test_on_same_setting else []),
    ]
    cells = []
    for setting in settings:
        encode = base.encodes[("train", setting)]
        for budget in options.budgets:
            budget_bytes = options.budget_bytes(budget, original_bytes)
            count = fitting_prefix(sizes[setting][order], budget_bytes)
            chosen = tuple(sorted(int(i) for i in order[:count]))
            used = int(sizes[setting][list(chosen)].sum()) if count else 0
            cell = BudgetCell(setting, budget, budget_bytes, count, used, split_images, None)
            if count < sweep.options.batch_size:
                reason = (
                    f"{count} image(s) fit, fewer than one batch (train.batch_size="
                    f"{sweep.options.batch_size}): raise the budget or lower the batch size"
                )
                log.warning("budget %s at %s: %s", budget, setting, reason)
                cells.append(replace(cell, reason=reason))
                continue
            whole = count == split_images
            epochs = sweep.options.epochs
            if not whole and options.equal_steps:
                epochs = max(1, round(epochs * split_images / count))
            stage = TrainStage(
                "",
                setting,
                encode,
                sweep.seed,
                None if whole else chosen,
                None if whole else epochs,
            )
            key = train.KIND.key(
                encode=encode.key,
                task={"kind": task.kind, **task.train_identity()},
                model=inputs.model.identity(),
                train=result_options(task, inputs.options),
                seed=sweep.seed,
                classes=base.class_names,
                subset=stage.subset_identity(),
            )
            stage = replace(stage, key=key)
            plan.add(stage, (setting, budget))
            cells.append(replace(cell, train=stage))
            for test in tests if setting != ORIGINAL else [ORIGINAL]:
                test_encode = base.encodes[("test", test)]
                eval_key = evaluate.KIND.key(
                    train=key,
                    encode=test_encode.key,
                    task={"kind": task.kind, **task.eval_identity()},
                    model=inputs.model.eval_identity(),
                )
                plan.add(EvaluateStage(eval_key, stage, test_encode), (setting, budget, test))
    return plan, cells


def run_budget(sweep: Sweep) -> Path:
    """Runs the budget experiment to the end; returns its report folder."""
    from sweep.experiments.budget_report import write_budget_report
    from sweep.run import make_tracker, plan_inputs, plan_sweep, stage_context, workers_of
    from sweep.screen import screen_images

    options = sweep.budget
    # A mix has no bytes of its own to fit a budget (sweep/tasks/mixed.py).
    settings = [s for s in options.settings or sweep.train_settings if s != MIXED]
    if ORIGINAL not in settings:
        settings.insert(0, ORIGINAL)
    tracker = make_tracker(sweep.tracking, sweep.results_dir)
    tests = [ORIGINAL, *(settings if options.test_on_same_setting else [])]
    shaped = replace(sweep, train_settings=settings, test_settings=list(dict.fromkeys(tests)))
    with workers_of(sweep):
        screening = screen_images(shaped)
        base = plan_sweep(shaped, screening)
        context = stage_context(shaped, base)
        log.info(
            "budget experiment: %d settings x %d budgets, %d train / %d test images",
            len(settings),
            len(options.budgets),
            len(base.splits["train"]),
            len(base.splits["test"]),
        )
        execute(base.narrowed_to(base.encodes.values()), context, sweep.cluster, sweep.progress)
        # One seed: a cell is one training (the budget's question is about data, not seeds).
        inputs = replace(plan_inputs(sweep, screening), seeds=(sweep.seed,))
        plan, cells = plan_cells(base, inputs, shaped, settings)
        execute(plan, context, sweep.cluster, sweep.progress)
    return write_budget_report(shaped, plan, cells, tracker)
