"""The train x test grid run to its end: screen, plan, run the unfinished stages, report, log.

Shared by the grid and nightly experiments and by deferred logging's catch-up, which reruns a
deferred sweep (every stage reused, only the report and its MLflow runs made again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from sweep.engine.execute import execute
from sweep.engine.lock import results_dir_lock
from sweep.report.grid import report_grid
from sweep.report.summarize import report_dir
from sweep.session.experiment import Session
from sweep.session.planning import screen_and_plan, stage_context, workers_of
from sweep.session.tracking import catch_up_deferred, failure_tracked
from sweep.stages.graph import SweepPlan
from sweep.tracking.deferred import make_tracker, settle

log = logging.getLogger(__name__)
# What a run that logs nothing yet passes for its tracker: make one from the sweep's options.
NEW_TRACKER = object()


def run_grid(
    session: Session,
    on_plan: Callable[[SweepPlan], None] | None = None,
    tracker=NEW_TRACKER,
    catch_up: bool = True,
) -> Path:
    """Runs the session's grid sweep to the end; returns its report folder.

    Holds results_dir's lock throughout (sweep/engine/lock.py): a second driver waits
    `lock_wait` seconds, then stops with LockHeldError before any work and before any MLflow
    run.

    Args:
        on_plan: Called once the plan is made, before any of its stages runs.
        tracker: The run's tracker (None: tracking off); by default `make_tracker`'s.
        catch_up: First log the sweeps whose logging an outage deferred, when the server
            answers (sweep/tracking/deferred.py).
    """
    sweep = session.sweep
    with results_dir_lock(sweep.results_dir, sweep.lock_wait):
        if tracker is NEW_TRACKER:
            tracker = make_tracker(sweep.tracking, sweep.results_dir)
        if catch_up and tracker is not None:  # before this sweep, whose report stays newest
            catch_up_deferred(
                tracker,
                session,
                lambda deferred: run_grid(replace(session, sweep=deferred), catch_up=False),
            )
        started_at = time.time()
        with workers_of(sweep):
            screening, plan = screen_and_plan(sweep)
            log.info(
                "sweep %s: %d train x %d test settings, %d train / %d test images",
                plan.key,
                len(plan.train_settings),
                len(plan.test_settings),
                len(plan.splits["train"]),
                len(plan.splits["test"]),
            )
            if on_plan is not None:
                on_plan(plan)
            if tracker is not None:  # RUNNING from the start of its work (a nightly run shows)
                run_name = report_dir(sweep, plan).name
                tracker.start_sweep(plan.key, run_name, sweep.labels, started_at)
            with failure_tracked(tracker, plan):
                execute(plan, stage_context(sweep, plan), sweep.cluster, sweep.progress)
        with failure_tracked(tracker, plan):
            report = report_grid(sweep, plan, screening, tracker, started_at)
        if tracker is not None:  # this sweep's deferred-logging marker left or removed
            settle(tracker, sweep, plan.key, report)
        return report
