"""The train x test grid's report, once its stages are finished, and its MLflow runs.

Reads the finished stages (never running a model itself): results.csv with intervals, the
figures, distortion, per-class values and the test images that change (breakdown.py), the
recommendation, the sensitivity maps, the model family's own figures (its `report_figures`
hook: DCTNet's gate, a learnable resizer's samples), the comparisons with sibling sweeps; then
one MLflow parent run for the sweep (its description: the answer at a glance) and one child
run per trained model (with its gallery of changed images).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from omegaconf import OmegaConf

from sweep.analysis.intervals import measure_intervals, with_intervals
from sweep.analysis.recommendation import SCENARIOS
from sweep.codecs.base import ORIGINAL
from sweep.models.base import FamilyFigures, TrainedModels
from sweep.report.breakdown import write_breakdown
from sweep.report.compare import compare_sweeps
from sweep.report.description import run_description
from sweep.report.distortion import distortion_metrics, distortion_rows, write_distortion
from sweep.report.sensitivity import log_sensitivity, write_sensitivity_report
from sweep.report.summarize import (
    REPORT_EXTRAS,
    collect_results,
    describe_setting,
    read_output,
    setting_axis,
    write_recommendation,
    write_sweep_report,
)
from sweep.report.tables import add_relative
from sweep.spec import Sweep
from sweep.stages.encode import encoded_files
from sweep.stages.graph import SweepPlan
from sweep.stages.validate import Screening
from sweep.store.objects import join, upload_folder
from sweep.tracking.description import RunDescription
from sweep.tracking.names import flatten_config, runs_url

log = logging.getLogger(__name__)


def family_figures(sweep: Sweep, plan: SweepPlan, out: Path) -> FamilyFigures:
    """The model family's own figures of the finished grid (its first seed's models)."""
    encodes = plan.encodes

    def test_files(setting: str) -> list:
        return encoded_files(
            sweep.store, encodes.get(("test", setting)) or encodes[("test", ORIGINAL)]
        )

    trained = TrainedModels(
        weights={s: sweep.store.path(t.kind, t.key) for s, t in plan.trains.items()},
        cells={cell: read_output(sweep.store, stage) for cell, stage in plan.evaluations.items()},
        test_settings=list(plan.test_settings),
        test_files=test_files,
        num_classes=len(plan.class_names),
    )
    return sweep.model.report_figures(trained, out)


def report_grid(
    sweep: Sweep, plan: SweepPlan, screening: Screening, tracker, started_at: float
) -> Path:
    """The finished grid's report folder, recommendation, figures and MLflow runs.

    Args:
        tracker: The run's tracker (`sweep.tracking.deferred.make_tracker`), None without.
        started_at: When the sweep started (epoch seconds): its parent run's start.
    """
    rows, dcr_rows = collect_results(sweep, plan)
    intervals = measure_intervals(
        sweep.store,
        plan.replicate_evaluations,
        sweep.task.resample,
        sweep.intervals,
        sweep.task.proportion_outcomes,
        sweep.task.chance_level,
    )
    rows = with_intervals(rows, intervals)
    out, paths = write_sweep_report(sweep, plan, screening, rows, dcr_rows)
    distortion = distortion_rows(sweep, plan)
    paths |= write_distortion(distortion, out, sweep.codec, plan)
    figures = family_figures(sweep, plan, out)
    paths |= figures.parent
    axis = setting_axis(sweep.codec, plan)
    breakdown = write_breakdown(sweep, plan, intervals, out, axis)
    paths |= breakdown.parent
    recommendation, paths["recommendation.json"] = write_recommendation(
        sweep, rows, dcr_rows, intervals, out
    )
    maps = write_sensitivity_report(sweep, plan, out)
    comparisons = compare_sweeps(sweep)
    if sweep.results_url is not None:  # the report beside the store, for every machine
        uploaded = join(sweep.results_url, "reports", out.name)
        upload_folder(out, uploaded)
        log.info("report uploaded to %s", uploaded)
    if tracker is not None:
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
        description = run_description(
            add_relative(rows),
            sweep.task.metric_names[0],
            recommendation,
            breakdown.hurt,
            [path.name for path in paths.values()],
            axis,
            lambda setting: describe_setting(sweep.codec, setting),
        )
        children = {
            setting: [*figures.children.get(setting, []), *breakdown.children.get(setting, [])]
            for setting in {*figures.children, *breakdown.children}
        }
        run_id = track_grid(
            tracker, sweep, plan, out, rows, dcr_rows, paths, metrics, children, started_at,
            description,
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


def track_grid(
    tracker,
    sweep: Sweep,
    plan: SweepPlan,
    out: Path,
    rows: list[dict],
    dcr_rows: list[dict],
    paths: dict[str, Path],
    metrics: dict[str, float],
    child_files: dict[str, list[Path]] | None = None,
    started_at: float | None = None,
    description: RunDescription | None = None,
) -> str:
    """One parent run for the sweep, one child per trained model (with its files of
    `child_files`, by train setting); returns the parent's id. `started_at` (epoch
    seconds) starts the parent run's clock; `description` is the parent's description."""
    summaries = {s: read_output(sweep.store, t) for s, t in plan.trains.items()}
    axis = setting_axis(sweep.codec, plan)
    return tracker.log_sweep(
        plan.key,
        out.name,
        # Read back as OmegaConf wrote it: the values keep their text (a resumed run logs the
        # same parameter values).
        flatten_config(OmegaConf.to_container(OmegaConf.create(sweep.config_yaml))),
        # The child runs are the first seed's models.
        [row for row in add_relative(rows) if row["seed"] == plan.seeds[0]],
        dcr_rows,
        summaries,
        {s: t.key for s, t in plan.trains.items()},
        [*paths.values(), *(out / name for name in REPORT_EXTRAS)],
        metrics,
        child_files,
        labels=sweep.labels,
        positions={s: axis.position(s) for s in {*plan.train_settings, *plan.test_settings}},
        started_at=started_at,
        description=description,
    )
