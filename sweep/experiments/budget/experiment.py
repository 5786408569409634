"""The storage-budget experiment (conf/experiment/budget.yaml).

For every train setting and budget, the cell trains on the largest subset of train images
whose bytes at that setting fit the budget (cells.py), and is evaluated on the original test
split (and, if asked, on the test split at its own setting). The run has two phases: the
encodes (a cell's subset depends on its images' encoded bytes), then the cells. The report
(report.py) tables and draws the cells and fits the scaling law (scaling_law.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from sweep.codecs.base import MIXED, ORIGINAL, grid_settings
from sweep.engine.lock import results_dir_lock
from sweep.experiments.budget.cells import BudgetOptions, plan_cells
from sweep.experiments.budget.report import write_budget_report
from sweep.session.experiment import Experiment, Planned, Session
from sweep.session.planning import (
    plan_inputs,
    plan_sweep,
    run_part,
    screen,
    workers_of,
)
from sweep.spec import Sweep
from sweep.stages.graph import SweepPlan
from sweep.stages.validate import Screening
from sweep.tracking.deferred import make_tracker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BudgetExperiment(BudgetOptions, Experiment):
    """The budget experiment, with its options (`BudgetOptions`)."""

    def bind(self, sweep: Sweep) -> BudgetExperiment:
        """Its settings in the codec's canonical form (None: the grid's train settings)."""
        if self.settings is None:
            return self
        settings = grid_settings("experiment.settings", list(self.settings), sweep.codec)
        return replace(self, settings=tuple(settings))

    def train_settings(self, sweep: Sweep) -> list[str]:
        """The settings compared: original first if not listed. A mix has no bytes of its
        own to fit a budget (sweep/tasks/mixed.py)."""
        settings = [s for s in self.settings or sweep.train_settings if s != MIXED]
        if ORIGINAL not in settings:
            settings.insert(0, ORIGINAL)
        return settings

    def shaped(self, sweep: Sweep) -> Sweep:
        """The sweep as the experiment encodes it: its settings, tested on originals (and on
        each setting with `test_on_same_setting`)."""
        settings = self.train_settings(sweep)
        tests = [ORIGINAL, *(settings if self.test_on_same_setting else [])]
        return replace(sweep, train_settings=settings, test_settings=list(dict.fromkeys(tests)))

    def cells_over(self, sweep: Sweep, base: SweepPlan, screening: Screening):
        """The cells' plan and cells, over the finished encodes of `base`; one seed: a cell
        is one training (the budget's question is about data, not seeds)."""
        inputs = replace(plan_inputs(sweep, screening), seeds=(sweep.seed,))
        shaped = self.shaped(sweep)
        return plan_cells(base, inputs, shaped, shaped.train_settings, self)

    def run(self, session: Session) -> int:
        report = self.report(session)
        print(f"results: {report / 'budget.csv'}")
        for sentence in json.loads((report / "budget_law.json").read_text())["sentences"]:
            print(f"budget: {sentence}")
        return 0

    def report(self, session: Session) -> Path:
        """Runs the experiment to its end; returns its report folder."""
        sweep = session.sweep
        shaped = self.shaped(sweep)
        with results_dir_lock(sweep.results_dir, sweep.lock_wait):  # one driver at a time
            tracker = make_tracker(sweep.tracking, sweep.results_dir)
            with workers_of(sweep):
                screening = screen(shaped)
                base = plan_sweep(shaped, screening)
                log.info(
                    "budget experiment: %d settings x %d budgets, %d train / %d test images",
                    len(shaped.train_settings),
                    len(self.budgets),
                    len(base.splits["train"]),
                    len(base.splits["test"]),
                )
                run_part(shaped, base, base.narrowed_to(base.encodes.values()))
                plan, cells = self.cells_over(sweep, base, screening)
                run_part(shaped, base, plan)
            return write_budget_report(shaped, plan, cells, tracker)

    def planned(self, session: Session, screening: Screening) -> Planned:
        """Its encodes; and its cells once the train encodes they are sized from exist."""
        sweep = session.sweep
        shaped = self.shaped(sweep)
        plan = plan_sweep(shaped, screening)
        encodes = plan.narrowed_to(plan.encodes.values())
        settings = shaped.train_settings
        count = len(settings) * len(self.budgets)
        shape = f"experiment=budget: {len(settings)} settings x {len(self.budgets)} budgets"
        trains = [plan.encodes[("train", s)] for s in settings]
        if not all(sweep.store.is_done(stage.kind, stage.key) for stage in trains):
            note = (
                f"{shape} = {count} cells, each a training sized from the encoded train split: "
                f"they are planned once the encodes below exist, so only the encodes are "
                f"counted and estimated here"
            )
            return Planned(encodes, "budget experiment (its encodes)", [note])
        cells, _ = self.cells_over(sweep, plan, screening)
        planned = replace(encodes, stages={**encodes.stages, **cells.stages})
        note = f"{shape}: {count} cells planned from the finished encodes"
        return Planned(planned, "budget experiment", [note])
