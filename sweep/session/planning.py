"""A sweep's screening, plan and stage context, and running part of a plan: what every driver
does before and around its stages."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from dataclasses import replace

from sweep.codecs.base import ORIGINAL, Codec
from sweep.engine.execute import execute
from sweep.engine.plan import build_plan
from sweep.report.sensitivity import tuning_map
from sweep.spec import Sweep
from sweep.stages.graph import Plan, PlanInputs, SweepPlan
from sweep.stages.kind import StageContext
from sweep.stages.sensitivity import read_maps
from sweep.stages.validate import (
    Screening,
    file_digests,
    listed_screening,
    plan_validation,
    screening_of,
)

log = logging.getLogger(__name__)
# A tuned JPEG's chroma subsampling -> the grid of the chroma blocks of its map.
CHROMA_GRIDS = {"420": "4:2:0", "444": "4:4:4"}


def screen(sweep: Sweep) -> Screening:
    """Every listed image decoded once (the validate stages, cached by the dataset's content),
    then the bad-image policy (`data.on_error`) applied to the verdicts."""
    plan = plan_validation(sweep.reader, sweep.cluster.encode_shard_size, file_digests(sweep.store))
    fail_fast = sweep.on_error == "fail"
    context = StageContext(sweep.store, sweep.reader.root, fail_fast=fail_fast)
    execute(plan, context, sweep.cluster, sweep.progress, stop_on_failure=fail_fast)
    return screening_of(plan, sweep.store, sweep.reader.root, fail_fast=fail_fast)


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
    screening = screening or listed_screening(sweep.reader, file_digests(sweep.store))
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


def run_part(sweep: Sweep, plan: SweepPlan, part: Plan | None = None) -> None:
    """Runs the unfinished stages of `part` (a narrowed plan; by default the whole plan)."""
    execute(part or plan, stage_context(sweep, plan), sweep.cluster, sweep.progress)


def sensitivity_only(plan: SweepPlan) -> SweepPlan:
    """The plan's sensitivity stages and what they read (trainings, encodes): no grid cells."""
    return plan.narrowed_to(plan.sensitivities.values())


def screen_and_plan(sweep: Sweep) -> tuple[Screening, SweepPlan]:
    """The screened images and the sweep's plan over them; a codec tuned to a sensitivity
    map gets its map first (measured if missing), since its encode keys hold the map's."""
    screening = screen(sweep)
    if sweep.codec.needs_sensitivity_map:
        sweep.codec = bind_tuning_map(sweep, screening)
    return screening, plan_sweep(sweep, screening)


def bind_tuning_map(sweep: Sweep, screening: Screening) -> Codec:
    """A tuned codec bound to its map: the sensitivity map of this sweep's model trained on
    the original images (by the codec's `map_method` and `map_statistic`), measured first
    if it is not in the store yet. The training on originals is shared with every codec's
    sweep of this task and model."""
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
    run_part(narrowed, plan, sensitivity_only(plan))
    mean = read_maps(sweep.store, stage)[codec.map_statistic].mean(axis=0)
    return codec.with_sensitivity_map(
        tuning_map(stage, codec.map_statistic, mean, sweep.model.name)
    )


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


def shutdown_ray() -> None:
    """Ends this process's Ray, if it started one (Ray is imported only by then)."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
