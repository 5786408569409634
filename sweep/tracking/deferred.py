"""MLflow logging deferred while the server is unreachable (`tracking.on_unreachable=defer`).

A nightly run must not lose its results to an MLflow server that is down at its start or dies
during it. With `defer`, the run's tracker is a `DeferringTracker`: the first call that fails
(or a server that does not answer at the start) turns logging off for the rest of the run with
one warning, and the stages, the store and the report go on as usual. At the end the run
leaves a marker, `<results_dir>/tracking_pending/<sweep key>.json`, with the sweep's config.

The next run that reaches the server first logs every pending sweep of that server
(`sweep.session.tracking.catch_up_deferred`): it rebuilds the sweep from the marker's config
and runs it again, which reuses every finished stage (the rerun only reports) and logs
idempotently into the runs found by their tags (`Tracker.log_sweep`), so nothing is
duplicated; each logged sweep's marker is removed. Then it runs its own sweep (whose marker,
if any, it removes once logged).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sweep.errors import OptionError
from sweep.options import TrackingOptions
from sweep.spec import Sweep
from sweep.store import write_json_atomic
from sweep.tracking.server import check_tracking_server

if TYPE_CHECKING:  # MLflow loads only when tracking is on (`make_tracker`)
    from sweep.tracking.tracker import Tracker

log = logging.getLogger(__name__)

PENDING_FOLDER = "tracking_pending"
# Exit code of a run that finished but could not log to MLflow (sysexits' EX_UNAVAILABLE).
LOGGING_DEFERRED_EXIT = 69


class DeferringTracker:
    """A Tracker whose calls, once one fails, do nothing for the rest of the run.

    Args:
        tracker: The tracker, prepared (its experiment exists), or None when the server did
            not answer at the start.
        uri: The tracking URI, for the warning.
        error: Why logging is deferred from the start (None: it is not).
    """

    def __init__(self, tracker: Tracker | None, uri: str, error: str | None = None) -> None:
        self.tracker = tracker
        self.uri = uri
        self.deferred: str | None = None
        if error is not None:
            self.defer(error)

    @property
    def experiment_id(self) -> str | None:
        return None if self.tracker is None else self.tracker.experiment_id

    def defer(self, error: str) -> None:
        if self.deferred is None:
            log.warning(
                "MLflow logging to %s failed (%s): it is deferred. The sweep goes on and its "
                "results land in the store and the report; the next run that reaches the "
                "server logs them",
                self.uri,
                error,
            )
        self.deferred = error

    def __getattr__(self, name: str):
        method = getattr(self.tracker, name) if self.tracker is not None else None

        def deferring(*args, **kwargs):
            if self.deferred is not None or method is None:
                return None
            try:
                return method(*args, **kwargs)
            except Exception as error:  # MLflow raises many types for a server that is gone
                self.defer(f"{type(error).__name__}: {first_line(error)}")
                return None

        return deferring


def first_line(error: Exception) -> str:
    """An error's message without MLflow's long response bodies."""
    lines = str(error).splitlines()
    return lines[0][:300] if lines else ""


def deferring_tracker(tracker: Tracker, uri: str) -> DeferringTracker:
    """The tracker prepared, or deferring from the start when the server does not answer."""
    try:
        check_tracking_server(uri)  # quick for a dead server: MLflow's client retries minutes
        tracker.prepare()
    except OptionError as error:
        return DeferringTracker(None, uri, str(error))
    except Exception as error:
        return DeferringTracker(None, uri, f"{type(error).__name__}: {error}")
    return DeferringTracker(tracker, uri)


def pending_marker(results_dir: Path, sweep_key: str) -> Path:
    return Path(results_dir) / PENDING_FOLDER / f"{sweep_key}.json"


def logging_deferred(results_dir: Path, sweep_key: str) -> bool:
    """Whether a sweep's MLflow logging waits for a later run."""
    return pending_marker(results_dir, sweep_key).is_file()


def report_logging_deferred(results_dir: Path, report: Path) -> bool:
    """Whether the logging of the sweep whose report folder this is waits for a later run."""
    try:
        sweep_key = json.loads((report / "stages.json").read_text())["sweep"]
    except (OSError, ValueError, KeyError):
        return False
    return logging_deferred(results_dir, sweep_key)


def settle(tracker: Tracker | DeferringTracker, sweep: Sweep, sweep_key: str, report: Path) -> None:
    """At the end of a run that tracks: leaves the sweep's marker when its logging was
    deferred, else removes the marker an earlier run left."""
    marker = pending_marker(sweep.results_dir, sweep_key)
    deferred = tracker.deferred if isinstance(tracker, DeferringTracker) else None
    if deferred is None:
        if marker.is_file():
            marker.unlink()
            log.info("MLflow: the deferred logging of sweep %s is done", sweep_key)
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        marker,
        {
            "sweep": sweep_key,
            "report": str(report),
            "uri": sweep.tracking.uri,
            "experiment": sweep.tracking.experiment,
            "error": deferred,
            "deferred_at": time.time(),
            "config": sweep.config_yaml,
        },
    )
    log.warning(
        "MLflow logging of sweep %s is deferred (%s): %s records it, and the next run that "
        "reaches %s logs it",
        sweep_key,
        deferred,
        marker,
        sweep.tracking.uri,
    )


def make_tracker(tracking: TrackingOptions, results_dir: Path) -> Tracker | DeferringTracker | None:
    """The MLflow tracker with its database and experiment created (before any worker); with
    tracking.on_unreachable=defer, one that defers logging when the server is unreachable.
    None when tracking is off."""
    if not tracking.enabled:
        return None
    # MLflow loads only when tracking is on: importing it costs a second or more.
    from sweep.tracking.tracker import Tracker

    tracker = Tracker(tracking.uri, tracking.experiment, Path(results_dir) / "mlartifacts")
    if tracking.on_unreachable == "defer":
        return deferring_tracker(tracker, tracking.uri)
    try:
        tracker.prepare()
    except Exception as error:  # MLflow raises many types for a bad store
        raise OptionError(
            f"MLflow cannot use {tracking.uri}: {error}", option="tracking.uri"
        ) from None
    return tracker
