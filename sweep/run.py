"""A whole sweep: screen the images, plan, run the unfinished stages, report, log to MLflow."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sweep.analysis.intervals import measure_intervals, with_intervals
from sweep.analysis.recommendation import SCENARIOS
from sweep.config import Sweep
from sweep.engine.execute import execute
from sweep.engine.lock import results_dir_lock
from sweep.engine.plan import build_plan
from sweep.errors import OptionError
from sweep.options import TrackingOptions
from sweep.report.resizer_figures import write_resizer_figures
from sweep.report.tables import add_relative
from sweep.screen import Screening, listed_screening, screen_images
from sweep.sensitivity.pipeline import bind_tuning_map, log_sensitivity
from sweep.sensitivity.report import write_sensitivity_report
from sweep.stages.graph import PlanInputs, SweepPlan
from sweep.stages.kind import StageContext
from sweep.summarize import (
    REPORT_EXTRAS,
    collect_results,
    compare_sweeps,
    distortion_metrics,
    read_output,
    report_dir,
    setting_axis,
    write_recommendation,
    write_sweep_report,
)
from sweep.tracking_pending import (
    DeferringTracker,
    catch_up_deferred,
    deferring_tracker,
    settle,
)

if TYPE_CHECKING:  # MLflow loads only when tracking is on
    from sweep.track import Tracker

log = logging.getLogger(__name__)


def run_sweep(sweep: Sweep, on_plan: Callable[[SweepPlan], None] | None = None) -> Path:
    """Runs a validated sweep to the end; returns its report folder.

    Holds results_dir's lock throughout (sweep/engine/lock.py): a second driver waits `lock_wait`
    seconds, then stops with LockHeldError before any work and before any MLflow run.
    `on_plan(plan)` is called once the plan is made, before any of its stages runs.
    """
    with results_dir_lock(sweep.results_dir, sweep.lock_wait):
        return run_locked(sweep, on_plan)


def run_locked(
    sweep: Sweep, on_plan: Callable[[SweepPlan], None] | None = None, catch_up: bool = True
) -> Path:
    """`run_sweep`'s work, under the lock; with `catch_up`, a run that reaches MLflow first
    logs the sweeps whose logging an outage deferred (sweep/tracking_pending.py)."""
    tracker = make_tracker(sweep.tracking, sweep.results_dir)
    if catch_up and tracker is not None:  # before this sweep, whose report stays the newest
        catch_up_deferred(tracker, sweep, lambda deferred: run_locked(deferred, catch_up=False))
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
            tracker.start_sweep(plan.key, run_name, labels_of(sweep), started_at)
        with failure_tracked(tracker, plan):
            execute(plan, stage_context(sweep, plan), sweep.cluster, sweep.progress)
    with failure_tracked(tracker, plan):
        report = report_sweep(sweep, plan, screening, tracker, started_at)
    if tracker is not None:  # this sweep's deferred-logging marker left or removed
        settle(tracker, sweep, plan.key, report)
    return report


def labels_of(sweep: Sweep) -> dict[str, str]:
    """What MLflow runs are filtered and compared by across sweeps."""
    return {"task": sweep.task_name, "model": sweep.model.name, "codec": sweep.codec.name}


@contextlib.contextmanager
def failure_tracked(tracker: Tracker | None, plan: SweepPlan) -> Iterator[None]:
    """A failure ends the sweep's MLflow parent run FAILED with the error as the tag
    `sweep.error`, an interruption (Ctrl-C, SIGTERM) KILLED. The next run of the same sweep
    logs into it."""
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


def report_sweep(
    sweep: Sweep, plan: SweepPlan, screening: Screening, tracker: Tracker | None, started_at
) -> Path:
    """The finished sweep's report, recommendation, figures and MLflow runs."""
    rows, dcr_rows = collect_results(sweep, plan)
    intervals = measure_intervals(
        sweep.store, plan.replicate_evaluations, sweep.task.resample, sweep.intervals
    )
    rows = with_intervals(rows, intervals)
    out, paths, distortion = write_sweep_report(sweep, plan, screening, rows, dcr_rows)
    recommendation, paths["recommendation.json"] = write_recommendation(
        sweep, rows, dcr_rows, intervals, out
    )
    resizer_figures = write_resizer_figures(sweep, plan, out)
    maps = write_sensitivity_report(sweep, plan, out)
    comparisons = compare_sweeps(sweep)
    if tracker is not None:
        from sweep.track import runs_url

        metrics = screening.counts() | distortion_metrics(distortion)
        own = (sweep.codec.name, sweep.model.name)
        metrics |= {
            f"dcr_within_1pct/{r['metric']}/{r['curve']}": r["dcr_within"]
            for comparison in comparisons
            for r in comparison.table
            if (r["codec"], r["model"]) == own
        }
        metrics |= recommendation_metrics(recommendation)
        # How long the sweep took (stages reused from the store included) and its size.
        metrics["sweep/wall_seconds"] = time.time() - started_at
        metrics |= {f"stages/{kind}": len(stages) for kind, stages in plan.stages.items()}
        run_id = track_sweep(
            tracker, sweep, plan, out, rows, dcr_rows, paths, metrics, resizer_figures,
            started_at,
        )  # fmt: skip
        log_sensitivity(tracker, plan, out, maps)
        for comparison in comparisons:
            tracker.log_comparison(
                comparison.key,
                comparison.run_name,
                comparison.line,
                comparison.table,
                comparison.paths.values(),
            )
        log.info(
            "MLflow: %s, experiment '%s', run %s; runs at %s ; this sweep's models, in the "
            "order of compression, at %s",
            sweep.tracking.uri,
            sweep.tracking.experiment,
            run_id,
            runs_url(sweep.tracking.uri, tracker.experiment_id),
            runs_url(sweep.tracking.uri, tracker.experiment_id, run_id),
        )
    for scenario in SCENARIOS:
        log.info("recommendation: %s", recommendation["scenarios"][scenario.name]["sentence"])
    log.info("report: %s", out)
    return out


def recommendation_metrics(recommendation: dict) -> dict[str, float]:
    """MLflow metrics recommend/<scenario>/{dcr,relative,relative_lower_bound} of each
    recommended setting (the sentences are in recommendation.json)."""
    metrics = {}
    for name, scenario in recommendation["scenarios"].items():
        chosen = [c for c in scenario["candidates"] if c["setting"] == scenario["recommended"]]
        for candidate in chosen:
            for field in ("dcr", "relative", "relative_lower_bound"):
                metrics[f"recommend/{name}/{field}"] = candidate[field]
    return metrics


@contextlib.contextmanager
def workers_of(sweep: Sweep) -> Iterator[None]:
    """Around a run's stage work: stale temporary folders removed before and after (a worker
    killed mid-write leaves its own; its task was retried), Ray shut down after."""
    sweep.store.remove_stale_temporaries()
    try:
        yield
    finally:
        shutdown_ray()
        sweep.store.remove_stale_temporaries()


def screen_and_plan(sweep: Sweep) -> tuple[Screening, SweepPlan]:
    """The screened images and the sweep's plan over them; a codec tuned to a sensitivity
    map gets its map first (measured if missing), since its encode keys hold the map's."""
    screening = screen_images(sweep)
    if sweep.codec.needs_sensitivity_map:
        sweep.codec = bind_tuning_map(sweep, screening)
    return screening, plan_sweep(sweep, screening)


def plan_inputs(sweep: Sweep, screening: Screening) -> PlanInputs:
    """What the stage kinds' plan functions read, for this sweep over the screened images."""
    return PlanInputs(
        reader=sweep.reader,
        fingerprints=screening.fingerprints,
        codec=sweep.codec,
        task=sweep.task,
        model=sweep.model,
        options=sweep.options,
        seeds=tuple(sweep.seeds),
        mixed=tuple(sweep.mixed_settings),
        shard_size=sweep.cluster.encode_shard_size,
        distortion=sweep.distortion,
        sensitivity=sweep.sensitivity,
    )


def plan_sweep(
    sweep: Sweep, screening: Screening | None = None, test_settings: list[str] | None = None
) -> SweepPlan:
    """The sweep's stages over the screened images (by default every listed image), on its
    test settings or the given ones."""
    screening = screening or listed_screening(sweep)
    tests = sweep.test_settings if test_settings is None else test_settings
    return build_plan(screening.splits, plan_inputs(sweep, screening), sweep.train_settings, tests)


def stage_context(sweep: Sweep, plan: SweepPlan) -> StageContext:
    """What the sweep's workers are handed (the components, never the config)."""
    return StageContext(
        store=sweep.store,
        dataset_root=sweep.reader.root,
        codec=sweep.codec,
        task=sweep.task,
        model=sweep.model,
        options=sweep.options,
        seed=sweep.seed,
        num_classes=len(plan.class_names),
    )


def make_tracker(tracking: TrackingOptions, results_dir: Path) -> Tracker | DeferringTracker | None:
    """The MLflow tracker with its database and experiment created (before any worker); with
    tracking.on_unreachable=defer, one that defers logging when the server is unreachable."""
    if not tracking.enabled:
        return None
    from sweep.track import Tracker

    tracker = Tracker(tracking.uri, tracking.experiment, results_dir / "mlartifacts")
    if tracking.on_unreachable == "defer":
        return deferring_tracker(tracker, tracking.uri)
    try:
        tracker.prepare()
    except Exception as error:  # MLflow raises many types for a bad store
        raise OptionError(
            f"MLflow cannot use {tracking.uri}: {error}", option="tracking.uri"
        ) from None
    return tracker


def track_sweep(
    tracker: Tracker,
    sweep: Sweep,
    plan: SweepPlan,
    out: Path,
    rows: list[dict],
    dcr_rows: list[dict],
    paths: dict[str, Path],
    metrics: dict[str, float],
    child_files: dict[str, list[Path]] | None = None,
    started_at: float | None = None,
) -> str:
    """One parent run for the sweep, one child per trained model (with its files of
    `child_files`, by train setting); returns the parent's id. `started_at` (epoch
    seconds) starts the parent run's clock."""
    from omegaconf import OmegaConf

    from sweep.track import flatten_config

    summaries = {s: read_output(sweep.store, t) for s, t in plan.trains.items()}
    axis = setting_axis(sweep.codec, plan)
    return tracker.log_sweep(
        plan.key,
        out.name,
        flatten_config(OmegaConf.to_container(OmegaConf.create(sweep.config_yaml))),
        # The child runs are the first seed's models.
        [row for row in add_relative(rows) if row["seed"] == plan.seeds[0]],
        dcr_rows,
        summaries,
        {s: t.key for s, t in plan.trains.items()},
        [*paths.values(), *(out / name for name in REPORT_EXTRAS)],
        metrics,
        child_files,
        labels=labels_of(sweep),
        positions={s: axis.position(s) for s in {*plan.train_settings, *plan.test_settings}},
        started_at=started_at,
    )


def shutdown_ray() -> None:
    import sys

    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()
