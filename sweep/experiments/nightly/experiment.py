"""The grid as a nightly job, `python -m sweep experiment=nightly` (conf/experiment/nightly.yaml).

A nightly run is the ordinary grid sweep (sweep/session/grid.py): finished stages are reused
from the store, so only the missing cells run. Around it:

* it holds results_dir's lock from start to end (sweep/engine/lock.py): a second driver exits 75;
* it ends with a summary: cells total, reused, newly run and failed, wall time, and what
  changed; a failure exits 1 with the summary as its message;
* what changed since the previous nightly run of the same name (results_dir/nightly/<name>/
  keeps its results.csv): new cells, cells gone, and values that moved beyond their intervals
  (or, without intervals, by more than `experiment.tolerance`), written to changes.json and
  changes.md in the report folder (changes.py), logged to the sweep's MLflow parent run with
  the tracker the grid logged with, and printed;
* an MLflow server that is down defers the logging (tracking.on_unreachable=defer,
  sweep/tracking/deferred.py): the results land in the store and the report, and the run exits
  69 so that the job shows it; the next run logs them.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sweep.engine.execute import SweepFailedError
from sweep.engine.lock import LockHeldError, results_dir_lock
from sweep.errors import OptionError, SweepError
from sweep.experiments.nightly.changes import (
    changes_sentence,
    compare_results,
    describe_move,
    duration,
    read_json,
    read_results,
    write_changes,
)
from sweep.report.summarize import json_safe
from sweep.session.experiment import Experiment, Planned, Session
from sweep.session.grid import run_grid
from sweep.session.planning import plan_sweep
from sweep.spec import Sweep
from sweep.stages.graph import SweepPlan
from sweep.stages.validate import Screening
from sweep.store import write_json_atomic, write_text_atomic
from sweep.tracking.deferred import (
    LOGGING_DEFERRED_EXIT,
    DeferringTracker,
    logging_deferred,
    make_tracker,
    pending_marker,
)

log = logging.getLogger(__name__)

NIGHTLY_FOLDER = "nightly"
SNAPSHOT = "last_results.csv"
SNAPSHOT_RUN = "last_run.json"
# How many moved cells the printed summary lists (changes.md lists them all).
LISTED = 10


@dataclass
class CellCounts:
    """The sweep's evaluation cells (train setting x test setting x seed) in this run."""

    total: int
    reused: int
    run: int
    failed: int


@dataclass
class NightlySummary:
    """What a nightly run did, printed at its end and kept in results_dir/nightly/<name>/."""

    name: str
    started: str
    wall_seconds: float
    sweep: str | None = None
    cells: CellCounts | None = None
    changes: dict | None = None
    mlflow: str = "off (tracking=none)"
    report: str | None = None
    error: str | None = None
    moved: list[str] = field(default_factory=list)

    def text(self) -> str:
        status = "failed" if self.error else "finished"
        sweep = f" (sweep {self.sweep[:8]})" if self.sweep else ""
        lines = [f"nightly {self.name}: {status} in {duration(self.wall_seconds)}{sweep}"]
        if self.cells is not None:
            c = self.cells
            lines.append(
                f"  cells: {c.total} total, {c.reused} reused, {c.run} newly run, {c.failed} failed"
            )
        if self.changes is not None:
            lines.append(f"  changes: {changes_sentence(self.changes)}")
            lines.extend(f"    {line}" for line in self.moved)
        lines.append(f"  MLflow: {self.mlflow}")
        if self.report:
            lines.append(f"  report: {self.report}")
        return "\n".join(lines)


@dataclass(frozen=True)
class NightlyExperiment(Experiment):
    """The grid as a nightly job.

    Args:
        name: The name its snapshots go by (results_dir/nightly/<name>/); None: the sweep's
            task, model and codec, e.g. demo_swav_tiny_jxl.
        tolerance: Without intervals, a value moved when it changed by more than this.
    """

    name: str | None = None
    tolerance: float = 0.0

    def __post_init__(self) -> None:
        if self.name is not None and (
            not re.fullmatch(r"[A-Za-z0-9_.-]+", str(self.name)) or ".." in str(self.name)
        ):
            raise OptionError(
                f"'{self.name}' may hold only letters, digits, '.', '_' and '-'",
                "experiment.name",
            )
        tolerance = self.tolerance
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or tolerance < 0:
            raise OptionError(f"must be a number >= 0, got {tolerance!r}", "experiment.tolerance")

    def snapshot_name(self, sweep: Sweep) -> str:
        """The name its snapshots go by: experiment.name, or task_model_codec."""
        return self.name or f"{sweep.task_name}_{sweep.model.name}_{sweep.codec.name}"

    def folder(self, sweep: Sweep) -> Path:
        return sweep.results_dir / NIGHTLY_FOLDER / self.snapshot_name(sweep)

    def planned(self, session: Session, screening: Screening) -> Planned:
        plan = plan_sweep(session.sweep, screening)
        return Planned(plan, f"nightly {self.snapshot_name(session.sweep)}, sweep {plan.key[:8]}")

    def run(self, session: Session) -> int:
        """Runs the sweep as a nightly job; prints its summary and returns the exit code (0,
        or 69 when MLflow logging was deferred).

        Raises:
            SweepFailedError: The sweep failed; the message ends with the summary.
            LockHeldError: Another driver holds results_dir's lock.
        """
        sweep = session.sweep
        started = time.time()
        folder = self.folder(sweep)
        summary = NightlySummary(
            self.snapshot_name(sweep), datetime.now(UTC).isoformat(timespec="seconds"), 0.0
        )
        seen: dict = {}

        def on_plan(plan: SweepPlan) -> None:
            seen["plan"], seen["before"] = plan, finished_cells(sweep, plan)

        with results_dir_lock(sweep.results_dir, sweep.lock_wait):
            tracker = make_tracker(sweep.tracking, sweep.results_dir)
            try:
                report = run_grid(session, on_plan, tracker)
            except (OptionError, LockHeldError):
                raise
            except Exception as error:
                if not isinstance(error, SweepError):  # its message does not say it all
                    log.error("nightly %s failed", summary.name, exc_info=error)
                summary.error = f"{type(error).__name__}: {error}"
                if sweep.tracking.enabled:
                    summary.mlflow = (
                        f"the sweep's parent run at {sweep.tracking.uri} ends FAILED with the "
                        f"error (where the server answers)"
                    )
                finish(summary, sweep, seen, started)
                keep_record(folder, summary)
                raise SweepFailedError(
                    f"nightly run failed: {summary.error}\n{summary.text()}"
                ) from error
            summary.report = str(report)
            finish(summary, sweep, seen, started)
            changes = compare_results(
                read_results(folder / SNAPSHOT),
                read_results(report / "results.csv"),
                self.tolerance,
            )
            changes["previous_run"] = read_json(folder / SNAPSHOT_RUN)
            summary.changes = {k: len(v) if isinstance(v, list) else v for k, v in changes.items()}
            summary.moved = [describe_move(m) for m in changes["moved_cells"][:LISTED]]
            paths = write_changes(changes, report)
            deferred = log_changes(tracker, sweep, summary, paths)
            advance_snapshot(folder, report, summary)
            keep_record(folder, summary)
        print(summary.text())
        return LOGGING_DEFERRED_EXIT if deferred else 0


def finished_cells(sweep: Sweep, plan: SweepPlan) -> set[str]:
    """The keys of the plan's evaluations that are in the store."""
    return {
        stage.key
        for stage in plan.replicate_evaluations.values()
        if sweep.store.is_done(stage.kind, stage.key)
    }


def finish(summary: NightlySummary, sweep: Sweep, seen: dict, started: float) -> None:
    """The summary's wall time, sweep and cell counts (none when the run failed before its
    plan was made)."""
    summary.wall_seconds = time.time() - started
    plan = seen.get("plan")
    if plan is None:
        return
    summary.sweep = plan.key
    after = finished_cells(sweep, plan)
    total = len(plan.replicate_evaluations)
    summary.cells = CellCounts(
        total=total,
        reused=len(seen["before"]),
        run=len(after - seen["before"]),
        failed=total - len(after),
    )


def log_changes(tracker, sweep: Sweep, summary: NightlySummary, paths: list[Path]) -> bool:
    """Logs the changes and cell counts to the sweep's parent run with the run's tracker,
    unless tracking is off or its logging was deferred; returns whether the run's logging is
    incomplete."""
    if tracker is None:
        return False
    marker = pending_marker(sweep.results_dir, summary.sweep)
    if logging_deferred(sweep.results_dir, summary.sweep):
        summary.mlflow = (
            f"deferred ({read_json(marker).get('error')}); the results are in the store and "
            f"the report, and the next run that reaches {sweep.tracking.uri} logs them "
            f"({marker})"
        )
        return True
    counts, cells = summary.changes, summary.cells
    metrics = {f"nightly/{name}": float(counts[name]) for name in ("new_cells", "gone_cells")}
    metrics["nightly/moved_cells"] = float(counts["moved_cells"])
    metrics |= {f"nightly/cells_{name}": float(getattr(cells, name)) for name in ("run", "reused")}
    metrics["nightly/wall_seconds"] = summary.wall_seconds
    try:
        run_id = tracker.log_to_sweep(summary.sweep, metrics, paths, NIGHTLY_FOLDER)
        if isinstance(tracker, DeferringTracker) and tracker.deferred is not None:
            raise ConnectionError(tracker.deferred)
    except Exception as error:  # the sweep itself is logged: only the changes are missing
        summary.mlflow = (
            f"the sweep is logged, its changes are not ({type(error).__name__}: {error}); "
            f"they are in {paths[0].parent}"
        )
        log.warning("MLflow: %s", summary.mlflow)
        return True
    summary.mlflow = f"logged to {sweep.tracking.uri}, parent run {run_id}"
    return False


def advance_snapshot(folder: Path, report: Path, summary: NightlySummary) -> None:
    """This run's results.csv becomes the one the next nightly run compares with."""
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / SNAPSHOT, (report / "results.csv").read_text(encoding="utf-8"))
    write_json_atomic(
        folder / SNAPSHOT_RUN,
        {
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "sweep": summary.sweep,
            "report": str(report),
        },
    )


def keep_record(folder: Path, summary: NightlySummary) -> None:
    """Every nightly run's summary, failed ones too, under results_dir/nightly/<name>/runs/."""
    runs = folder / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    stamp = summary.started.replace(":", "").replace("+0000", "Z")
    write_json_atomic(runs / f"{stamp}.json", json_safe(asdict(summary)))
