"""The `experiment` config group: the train x test grid (default), the storage budget, or the
grid run as a nightly job."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sweep.errors import OptionError

EXPERIMENTS = ("grid", "budget", "nightly")


@dataclass(frozen=True)
class BudgetOptions:
    """`experiment=budget` (conf/experiment/budget.yaml).

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
class NightlyOptions:
    """`experiment=nightly` (conf/experiment/nightly.yaml): the grid, run as a nightly job.

    Args:
        name: The name its snapshots go by (results_dir/nightly/<name>/); None: the sweep's
            task, model and codec, e.g. demo_swav_tiny_jxl.
        tolerance: Without intervals, a value moved when it changed by more than this.
    """

    name: str | None = None
    tolerance: float = 0.0

    def __post_init__(self) -> None:
        if self.name is not None and (
            not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name) or ".." in self.name
        ):
            raise OptionError(
                f"'{self.name}' may hold only letters, digits, '.', '_' and '-'",
                "experiment.name",
            )
        tolerance = self.tolerance
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or tolerance < 0:
            raise OptionError(f"must be a number >= 0, got {tolerance!r}", "experiment.tolerance")


def nightly_options(values: dict | None) -> NightlyOptions | None:
    """NightlyOptions for `experiment=nightly`, None for the other experiments."""
    values = dict(values or {})
    if values.pop("kind", "grid") != "nightly":
        return None
    known = {"name", "tolerance"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise OptionError(f"unknown option; known: {sorted(known)}", f"experiment.{unknown[0]}")
    name = values.get("name")
    return NightlyOptions(None if name is None else str(name), values.get("tolerance", 0.0))


def experiment_options(values: dict | None) -> BudgetOptions | None:
    """None for the grid (and the nightly grid: see `nightly_options`); BudgetOptions for
    `experiment=budget`."""
    values = dict(values or {"kind": "grid"})
    kind = values.pop("kind", "grid")
    if kind not in EXPERIMENTS:
        raise OptionError(f"'{kind}' is not one of {list(EXPERIMENTS)}", "experiment.kind")
    if kind == "nightly":
        return None
    if kind == "grid":
        if values:
            raise OptionError(f"the grid takes no options, got {sorted(values)}", "experiment")
        return None
    known = {"budgets", "settings", "test_on_same_setting", "subset_seed", "equal_steps"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise OptionError(f"unknown option; known: {sorted(known)}", f"experiment.{unknown[0]}")
    if "budgets" not in values:
        raise OptionError("is required, e.g. [0.1, 0.2, 0.4]", "experiment.budgets")
    settings = values.get("settings")
    return BudgetOptions(
        budgets=tuple(values["budgets"] or ()),
        settings=None if settings is None else tuple(str(s) for s in settings),
        test_on_same_setting=bool(values.get("test_on_same_setting", False)),
        subset_seed=int(values.get("subset_seed", 0)),
        equal_steps=bool(values.get("equal_steps", True)),
    )
