"""A run's MLflow parent marked FAILED or KILLED when the run stops early, and the logging that
an unreachable server deferred caught up by a later run (sweep/tracking/deferred.py)."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from sweep.session.experiment import Session
from sweep.spec import Sweep
from sweep.stages.graph import SweepPlan
from sweep.tracking.deferred import PENDING_FOLDER, DeferringTracker

log = logging.getLogger(__name__)


@contextlib.contextmanager
def failure_tracked(tracker, plan: SweepPlan) -> Iterator[None]:
    """A failure ends the sweep's MLflow parent run FAILED with the error as the tag
    `sweep.error`, an interruption (Ctrl-C, SIGTERM) KILLED. The next run of the same sweep
    logs into it. `tracker`: the run's tracker, or None without tracking."""
    if tracker is None:
        yield
        return
    try:
        yield
    except BaseException as error:
        interrupted = isinstance(error, KeyboardInterrupt | SystemExit)
        try:
            tracker.end_sweep(plan.key, error, interrupted)
        except Exception as logging_error:  # the sweep's own error is the one to report
            log.warning("MLflow: could not mark the run ended: %s", logging_error)
        raise


def catch_up_deferred(tracker, session: Session, rerun: Callable[[Sweep], Path]) -> None:
    """Logs the sweeps of results_dir whose logging to this run's server was deferred, when
    the server answers: each is rebuilt from its marker's config and rerun (every stage
    reused), before this run's own sweep so that its report stays the newest. A sweep that
    cannot be rebuilt keeps its marker, with a warning; this run's own config is left to it.
    Nothing to do in a session that cannot rebuild sweeps (`Session.rebuild`)."""
    sweep = session.sweep
    if session.rebuild is None:
        return
    if isinstance(tracker, DeferringTracker) and tracker.deferred is not None:
        return
    folder = Path(sweep.results_dir) / PENDING_FOLDER
    for marker in sorted(folder.glob("*.json")):
        try:
            pending = json.loads(marker.read_text())
        except (OSError, ValueError) as error:
            log.warning("MLflow: cannot read the deferred-logging marker %s: %s", marker, error)
            continue
        if (pending.get("uri"), pending.get("experiment")) != (
            sweep.tracking.uri,
            sweep.tracking.experiment,
        ):
            log.info("MLflow: %s waits for %s", marker.name, pending.get("uri"))
            continue
        if pending.get("config") == sweep.config_yaml:  # this run logs it
            continue
        log.info("MLflow: logging sweep %s, deferred earlier", pending["sweep"])
        try:
            deferred_sweep = session.rebuild(pending["config"])
            rerun(deferred_sweep)
        except Exception as error:
            log.warning(
                "MLflow: the deferred sweep %s is not logged yet (%s: %s); %s stays, and the "
                "next run tries again",
                pending["sweep"],
                type(error).__name__,
                error,
                marker,
            )
