"""The grid as a nightly job, `python -m sweep experiment=nightly` (conf/experiment/nightly.yaml).

A nightly run is the ordinary grid sweep: finished stages are reused from the store, so only
the missing cells run. Around it:

* it holds results_dir's lock from start to end (sweep/engine/lock.py): a second driver exits 75;
* it ends with a summary: cells total, reused, newly run and failed, wall time, and what
  changed; a failure exits 1 with the summary as its message;
* what changed since the previous nightly run of the same name (results_dir/nightly/<name>/
  keeps its results.csv): new cells, cells gone, and values that moved beyond their intervals
  (or, without intervals, by more than `experiment.tolerance`), written to changes.json and
  changes.md in the report folder, logged to the sweep's MLflow parent run and printed;
* an MLflow server that is down defers the logging (tracking.on_unreachable=defer,
  sweep/tracking_pending.py): the results land in the store and the report, and the run exits
  69 so that the job shows it; the next run logs them.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sweep.config import Sweep
from sweep.engine.execute import SweepFailedError
from sweep.engine.lock import LockHeldError, results_dir_lock
from sweep.errors import OptionError
from sweep.models.errors import ModelUnavailableError
from sweep.stages.graph import SweepPlan
from sweep.stages.shards import ImageReadError
from sweep.store import StoreError, write_json_atomic, write_text_atomic
from sweep.summarize import json_safe
from sweep.tracking_pending import LOGGING_DEFERRED_EXIT, logging_deferred, pending_marker

log = logging.getLogger(__name__)

NIGHTLY_FOLDER = "nightly"
SNAPSHOT = "last_results.csv"
SNAPSHOT_RUN = "last_run.json"
# A cell of results.csv: one metric of one train setting, test setting and seed.
CELL_FIELDS = ("metric", "train_setting", "test_setting", "seed")
# Errors whose message says it all; any other failure also logs its traceback.
EXPLAINED = (SweepFailedError, StoreError, ImageReadError, ModelUnavailableError)
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


def nightly_name(sweep: Sweep) -> str:
    """The name a nightly's snapshots go by: experiment.name, or task_model_codec."""
    return sweep.nightly.name or f"{sweep.task_name}_{sweep.model.name}_{sweep.codec.name}"


def nightly_dir(sweep: Sweep) -> Path:
    return sweep.results_dir / NIGHTLY_FOLDER / nightly_name(sweep)


def run_nightly(sweep: Sweep) -> int:
    """Runs the sweep as a nightly job; prints its summary and returns the exit code (0, or
    69 when MLflow logging was deferred).

    Raises:
        SweepFailedError: The sweep failed; the message ends with the summary.
        LockHeldError: Another driver holds results_dir's lock.
    """
    from sweep.run import run_sweep

    started = time.time()
    summary = NightlySummary(
        nightly_name(sweep), datetime.now(UTC).isoformat(timespec="seconds"), 0.0
    )
    seen: dict = {}

    def on_plan(plan: SweepPlan) -> None:
        seen["plan"], seen["before"] = plan, finished_cells(sweep, plan)

    with results_dir_lock(sweep.results_dir, sweep.lock_wait):
        try:
            report = run_sweep(sweep, on_plan)
        except (OptionError, LockHeldError):
            raise
        except Exception as error:
            if not isinstance(error, EXPLAINED):
                log.error("nightly %s failed", summary.name, exc_info=error)
            summary.error = f"{type(error).__name__}: {error}"
            if sweep.tracking.enabled:
                summary.mlflow = (
                    f"the sweep's parent run at {sweep.tracking.uri} ends FAILED with the error "
                    f"(where the server answers)"
                )
            finish(summary, sweep, seen, started)
            keep_record(sweep, summary)
            raise SweepFailedError(
                f"nightly run failed: {summary.error}\n{summary.text()}"
            ) from error
        summary.report = str(report)
        finish(summary, sweep, seen, started)
        changes = compare_results(
            read_results(nightly_dir(sweep) / SNAPSHOT),
            read_results(report / "results.csv"),
            sweep.nightly.tolerance,
        )
        changes["previous_run"] = read_json(nightly_dir(sweep) / SNAPSHOT_RUN)
        summary.changes = {k: len(v) if isinstance(v, list) else v for k, v in changes.items()}
        summary.moved = [describe_move(m) for m in changes["moved_cells"][:LISTED]]
        paths = write_changes(changes, report)
        deferred = log_changes(sweep, summary, paths)
        advance_snapshot(sweep, report, summary)
        keep_record(sweep, summary)
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


def read_results(path: Path) -> list[dict] | None:
    """The rows of a results.csv, or None when there is none (a first nightly run)."""
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def number(text: str | None) -> float | None:
    """A CSV cell as a number: None when empty (no interval), NaN kept."""
    if text is None or text == "":
        return None
    return float(text)


def interval(row: dict) -> tuple[float, float] | None:
    low, high = number(row.get("ci_low")), number(row.get("ci_high"))
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return None
    return low, high


def cell_key(row: dict) -> tuple[str, ...]:
    return tuple(row.get(name, "") for name in CELL_FIELDS)


def cell_of(row: dict) -> dict:
    return {name: row.get(name, "") for name in CELL_FIELDS}


def compare_results(
    previous: list[dict] | None, current: list[dict], tolerance: float
) -> dict[str, list]:
    """What changed between two results.csv tables, cell by cell.

    A cell moved when its new value lies outside its previous interval, or its previous value
    outside its new interval (either way: a tighter interval around an old value counts too);
    where neither row has an interval, when the value changed by more than `tolerance`.

    Args:
        previous: The previous nightly run's rows (None: there is none, every cell is new).
        current: This run's rows.
        tolerance: The change that counts for values without intervals.

    Returns:
        {"new_cells", "gone_cells", "moved_cells", "unchanged_cells"}: lists of cells; new and
        gone cells carry their value, moved ones both values, intervals and how they moved.
    """
    before = {cell_key(row): row for row in previous or []}
    now = {cell_key(row): row for row in current}
    changes: dict[str, list] = {
        "new_cells": [],
        "gone_cells": [],
        "moved_cells": [],
        "unchanged_cells": [],
    }
    for cell, row in now.items():
        if cell not in before:
            changes["new_cells"].append(cell_of(row) | {"value": number(row["value"])})
            continue
        move = moved(before[cell], row, tolerance)
        changes["moved_cells" if move else "unchanged_cells"].append(cell_of(row) | (move or {}))
    for cell, row in before.items():
        if cell not in now:
            changes["gone_cells"].append(cell_of(row) | {"value": number(row["value"])})
    return changes


def moved(before: dict, after: dict, tolerance: float) -> dict | None:
    """How a cell's value moved between two rows, or None when it did not (see
    `compare_results`)."""
    old, new = number(before["value"]), number(after["value"])
    old_interval, new_interval = interval(before), interval(after)
    move = {
        "previous": old,
        "value": new,
        "previous_interval": old_interval,
        "interval": new_interval,
        "direction": "up" if (new or 0) > (old or 0) else "down",
    }
    if old is None or new is None or math.isnan(old) or math.isnan(new):
        both_missing = (old is None or math.isnan(old)) and (new is None or math.isnan(new))
        return None if both_missing else move | {"beyond": "value appeared or vanished"}
    if old_interval is None and new_interval is None:
        return move | {"beyond": "tolerance"} if abs(new - old) > tolerance else None
    outside_previous = old_interval is not None and not old_interval[0] <= new <= old_interval[1]
    outside_new = new_interval is not None and not new_interval[0] <= old <= new_interval[1]
    if not (outside_previous or outside_new):
        return None
    return move | {
        "beyond": "interval",
        "outside_previous_interval": outside_previous,
        "outside_new_interval": outside_new,
    }


def changes_sentence(counts: dict) -> str:
    if counts.get("previous_run") is None:
        return f"first nightly run: {counts['new_cells']} cells, nothing to compare with"
    return (
        f"{counts['new_cells']} new cell(s), {counts['gone_cells']} gone, "
        f"{counts['moved_cells']} moved beyond their intervals, "
        f"{counts['unchanged_cells']} unchanged"
    )


def describe_cell(cell: dict) -> str:
    return (
        f"{cell['metric']} train={cell['train_setting']} test={cell['test_setting']} "
        f"seed={cell['seed']}"
    )


def describe_value(value: float | None, bounds: list | tuple | None) -> str:
    text = "none" if value is None else f"{value:.4g}"
    return text if bounds is None else f"{text} [{bounds[0]:.4g}, {bounds[1]:.4g}]"


def describe_move(move: dict) -> str:
    return (
        f"moved {move['direction']}: {describe_cell(move)}: "
        f"{describe_value(move['previous'], move['previous_interval'])} -> "
        f"{describe_value(move['value'], move['interval'])}"
    )


def write_changes(changes: dict, report: Path) -> list[Path]:
    """changes.json (every cell) and changes.md (the counts and the cells that changed)."""
    counts = {k: len(v) if isinstance(v, list) else v for k, v in changes.items()}
    previous = changes.get("previous_run")
    when = previous["finished"] if previous else None
    title = f"Changes since the last nightly run ({when})" if when else "First nightly run"
    lines = [f"# {title}", "", changes_sentence(counts) + "."]
    if changes["moved_cells"]:
        lines += ["", "## Moved", ""]
        lines += [f"* {describe_move(m)}" for m in changes["moved_cells"]]
    for title, name in (("New", "new_cells"), ("Gone", "gone_cells")):
        if changes[name] and previous is not None:
            lines += ["", f"## {title}", ""]
            lines += [
                f"* {describe_cell(c)}: {describe_value(c['value'], None)}" for c in changes[name]
            ]
    content = {k: v for k, v in changes.items() if k != "unchanged_cells"}
    content["unchanged_cells"] = len(changes["unchanged_cells"])
    json_path, markdown_path = report / "changes.json", report / "changes.md"
    write_json_atomic(json_path, json_safe(content))
    write_text_atomic(markdown_path, "\n".join(lines) + "\n")
    return [json_path, markdown_path]


def log_changes(sweep: Sweep, summary: NightlySummary, paths: list[Path]) -> bool:
    """Logs the changes and cell counts to the sweep's parent run, unless tracking is off or
    its logging was deferred; returns whether the run's logging is incomplete."""
    if not sweep.tracking.enabled:
        return False
    marker = pending_marker(sweep.results_dir, summary.sweep)
    if logging_deferred(sweep.results_dir, summary.sweep):
        summary.mlflow = (
            f"deferred ({read_json(marker).get('error')}); the results are in the store and "
            f"the report, and the next run that reaches {sweep.tracking.uri} logs them "
            f"({marker})"
        )
        return True
    from sweep.track import Tracker

    counts, cells = summary.changes, summary.cells
    metrics = {f"nightly/{name}": float(counts[name]) for name in ("new_cells", "gone_cells")}
    metrics["nightly/moved_cells"] = float(counts["moved_cells"])
    metrics |= {f"nightly/cells_{name}": float(getattr(cells, name)) for name in ("run", "reused")}
    metrics["nightly/wall_seconds"] = summary.wall_seconds
    try:
        tracker = Tracker(
            sweep.tracking.uri, sweep.tracking.experiment, sweep.results_dir / "mlartifacts"
        )
        tracker.prepare()
        run_id = tracker.log_to_sweep(summary.sweep, metrics, paths, NIGHTLY_FOLDER)
    except Exception as error:  # the sweep itself is logged: only the changes are missing
        summary.mlflow = (
            f"the sweep is logged, its changes are not ({type(error).__name__}: {error}); "
            f"they are in {paths[0].parent}"
        )
        log.warning("MLflow: %s", summary.mlflow)
        return True
    summary.mlflow = f"logged to {sweep.tracking.uri}, parent run {run_id}"
    return False


def advance_snapshot(sweep: Sweep, report: Path, summary: NightlySummary) -> None:
    """This run's results.csv becomes the one the next nightly run compares with."""
    folder = nightly_dir(sweep)
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


def keep_record(sweep: Sweep, summary: NightlySummary) -> None:
    """Every nightly run's summary, failed ones too, under results_dir/nightly/<name>/runs/."""
    folder = nightly_dir(sweep) / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = summary.started.replace(":", "").replace("+0000", "Z")
    write_json_atomic(folder / f"{stamp}.json", json_safe(asdict(summary)))


def duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"
