"""The DCT sensitivity maps of a sweep's models, training the models that are missing, without
evaluating the grid: `python -m sweep.sensitivity [the sweep's overrides]`, which is
`python -m sweep experiment=sensitivity_maps` (conf/experiment/sensitivity_maps.yaml adds both
methods: sensitivity=both).

The maps land in the sweep's report folder, under sensitivity/, and in its MLflow parent and
child runs; a later `python -m sweep` with the same arguments reuses them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sweep.engine.lock import results_dir_lock
from sweep.errors import OptionError
from sweep.report.sensitivity import log_sensitivity, write_sensitivity_report
from sweep.report.summarize import report_dir
from sweep.sensitivity.options import TASK_KIND
from sweep.session.experiment import Experiment, Planned, Session
from sweep.session.planning import (
    plan_sweep,
    run_part,
    screen_and_plan,
    sensitivity_only,
    workers_of,
)
from sweep.spec import Sweep
from sweep.stages.validate import Screening
from sweep.tracking.deferred import make_tracker

log = logging.getLogger("sweep.sensitivity")


@dataclass(frozen=True)
class SensitivityMaps(Experiment):
    """Every trained model's sensitivity maps, by the sweep's `sensitivity` options."""

    def bind(self, sweep: Sweep) -> SensitivityMaps:
        if sweep.task.kind != TASK_KIND:
            raise OptionError(
                f"sensitivity maps are for classifiers; task={sweep.task_name} is "
                f"{sweep.task.kind}",
                option="task",
            )
        if not sweep.sensitivity.enabled:
            raise OptionError("is false: nothing to measure", option="sensitivity.enabled")
        return self

    def run(self, session: Session) -> int:
        folder = self.maps(session)
        print(f"sensitivity maps: {folder / 'sensitivity.csv'}")
        return 0

    def maps(self, session: Session) -> Path:
        """Measures and reports the maps of every trained model of the sweep; returns the
        sensitivity folder of its report."""
        sweep = session.sweep
        with results_dir_lock(sweep.results_dir, sweep.lock_wait):  # one driver at a time
            tracker = make_tracker(sweep.tracking, sweep.results_dir)
            with workers_of(sweep):
                _, plan = screen_and_plan(sweep)
                run_part(sweep, plan, sensitivity_only(plan))
            out = report_dir(sweep, plan)
            report = write_sensitivity_report(sweep, plan, out)
            log.info("sensitivity maps: %s", out / "sensitivity")
            if tracker is not None:
                log_sensitivity(tracker, plan, out, report)
        return out / "sensitivity"

    def planned(self, session: Session, screening: Screening) -> Planned:
        plan = sensitivity_only(plan_sweep(session.sweep, screening))
        return Planned(plan, "sensitivity maps")
