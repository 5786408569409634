"""The budget experiment's cells: for every setting and budget, the largest seeded, nested
subset of train images whose encoded bytes fit, trained and evaluated as ordinary stages.

Subsets are nested and comparable: one seeded order of the split's images, and each cell takes
the longest prefix of it that fits, so a larger budget holds every image of a smaller one and
a more compressed setting holds every image a less compressed one holds. A cell whose subset
is the whole split is the grid's own training, and a rerun reuses everything.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace

import numpy as np

from sweep.codecs.base import ORIGINAL
from sweep.errors import OptionError
from sweep.spec import Sweep
from sweep.stages import evaluate, train
from sweep.stages.encode import EncodeStage
from sweep.stages.evaluate import EvaluateStage
from sweep.stages.graph import Plan, PlanInputs, SweepPlan
from sweep.stages.train import TrainStage, result_options

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BudgetOptions:
    """The budget experiment's options (conf/experiment/budget.yaml), checked.

    Args:
        budgets: Storage budgets of the train split: fractions of the original train split's
            bytes (a number up to 1), or bytes (a number above 1).
        settings: Train settings compared at each budget (None: the grid's train settings);
            they include original.
        test_on_same_setting: Also evaluate each cell on the test split at its own setting
            (always on the original test split).
        subset_seed: Seed of the order in which images enter the budget: every setting and
            budget takes the longest prefix of one seeded order that fits, so subsets are
            nested (a larger budget holds every image of a smaller one).
        equal_steps: Train every cell for as many images as a training on the whole split
            (epochs scaled by whole split / subset), so that a cell's score reflects its data,
            not a shorter training; false keeps train.epochs over the subset.
    """

    budgets: tuple[float, ...]
    settings: tuple[str, ...] | None = None
    test_on_same_setting: bool = False
    subset_seed: int = 0
    equal_steps: bool = True

    def __post_init__(self) -> None:
        # Built by Hydra from yaml lists: kept as tuples (the options are frozen).
        object.__setattr__(self, "budgets", tuple(self.budgets or ()))
        if self.settings is not None:
            object.__setattr__(self, "settings", tuple(str(s) for s in self.settings))
        for name in ("test_on_same_setting", "equal_steps"):
            if not isinstance(getattr(self, name), bool):
                raise OptionError(
                    f"must be true or false, got {getattr(self, name)!r}", f"experiment.{name}"
                )
        if isinstance(self.subset_seed, bool) or not isinstance(self.subset_seed, int):
            raise OptionError(
                f"must be an integer, got {self.subset_seed!r}", "experiment.subset_seed"
            )
        if not self.budgets or any(
            isinstance(b, bool) or not isinstance(b, int | float) or b <= 0 for b in self.budgets
        ):
            raise OptionError(
                "must be a non-empty list of positive numbers: fractions of the original train "
                f"split's bytes (e.g. [0.1, 0.2]) or bytes (e.g. [5e8]), got {list(self.budgets)}",
                "experiment.budgets",
            )
        if len(set(self.budgets)) != len(self.budgets):
            raise OptionError(f"lists a budget twice: {list(self.budgets)}", "experiment.budgets")

    def budget_bytes(self, budget: float, original_bytes: int) -> int:
        """A budget in bytes: a fraction of the original train split, or bytes."""
        return int(budget * original_bytes) if budget <= 1 else int(budget)


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
    with store.file("encode", stage.key, "records.jsonl").open() as stream:
        return np.array([json.loads(line)["encoded_bytes"] for line in stream], dtype=np.int64)


def plan_cells(
    base: SweepPlan,
    inputs: PlanInputs,
    sweep: Sweep,
    settings: list[str],
    options: BudgetOptions,
) -> tuple[Plan, list[BudgetCell]]:
    """The cells' trainings and evaluations, over the finished encodes of `base`."""
    store = sweep.store
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
