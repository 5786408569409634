"""Sensitivity maps within a sweep's run: the maps only (`python -m sweep.sensitivity`), the
map a tuned JPEG needs before its encodes, and the MLflow logging of the maps' report."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from sweep.codecs.base import ORIGINAL, Codec
from sweep.config import Sweep
from sweep.engine.execute import execute
from sweep.screen import Screening
from sweep.sensitivity.report import SensitivityReport
from sweep.stages.graph import SweepPlan
from sweep.stages.kind import digest

if TYPE_CHECKING:
    from sweep.track import Tracker

log = logging.getLogger(__name__)
# A tuned JPEG's chroma subsampling -> the grid of the chroma blocks of its map.
CHROMA_GRIDS = {"420": "4:2:0", "444": "4:4:4"}


def run_plan_part(sweep: Sweep, plan: SweepPlan) -> None:
    """Runs the unfinished stages of a (narrowed) plan."""
    from sweep.run import stage_context

    execute(plan, stage_context(sweep, plan), sweep.cluster, sweep.progress)


def sensitivity_only(plan: SweepPlan) -> SweepPlan:
    """The plan's sensitivity stages and what they read (trainings, encodes): no grid cells."""
    return plan.narrowed_to(plan.sensitivities.values())


def bind_tuning_map(sweep: Sweep, screening: Screening) -> Codec:
    """A tuned codec bound to its map: the sensitivity map of this sweep's model trained on
    the original images (by the codec's `map_method` and `map_statistic`), measured first
    if it is not in the store yet. The training on originals is shared with every codec's
    sweep of this task and model."""
    from sweep.run import plan_sweep
    from sweep.sensitivity.report import tuning_map
    from sweep.stages.sensitivity import read_maps

    codec = sweep.codec
    statistics = sweep.sensitivity.statistic
    if codec.map_statistic not in statistics:
        statistics = (*statistics, codec.map_statistic)
    # Its chroma blocks on the grid the codec quantises (the config refuses 4:2:2).
    options = replace(
        sweep.sensitivity,
        enabled=True,
        method=(codec.map_method,),
        statistic=statistics,
        chroma_subsampling=CHROMA_GRIDS[codec.subsampling],
    )
    narrowed = replace(sweep, sensitivity=options, train_settings=[ORIGINAL])
    plan = plan_sweep(narrowed, screening, test_settings=[ORIGINAL])
    stage = plan.sensitivities[(ORIGINAL, codec.map_method)]
    log.info("%s: tables from the sensitivity map %s", codec.name, stage.key)
    run_plan_part(narrowed, sensitivity_only(plan))
    mean = read_maps(sweep.store, stage)[codec.map_statistic].mean(axis=0)
    return codec.with_sensitivity_map(
        tuning_map(stage, codec.map_statistic, mean, sweep.model.name)
    )


def log_sensitivity(
    tracker: Tracker, plan: SweepPlan, out: Path, report: SensitivityReport | None
) -> None:
    """Logs a written sensitivity report to the sweep's MLflow parent and child runs."""
    if report is None:
        return
    tracker.log_sensitivity(
        plan.key,
        out.name,
        digest(report.stage_keys),
        {setting: stage.key for setting, stage in plan.trains.items()},
        report.files_by_setting,
        report.metrics_by_setting,
        report.parent_files,
        report.parent_metrics,
    )
