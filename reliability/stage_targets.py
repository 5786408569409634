"""The stage kinds a trial kills in: the kinds the harness's sweep plans, their Ray task names
and their outputs in the store.

Everything comes from the package's table of stage kinds (`sweep.stages.table.STAGE_KINDS`) and
from the plan of the very sweep the harness runs (`planned_kinds`), so a new kind of the sweep
is a kill target without being named here, and a kind the sweep does not plan (the training
decode cache of `train.decode_cache=true`) is reported as not in this sweep instead of failing.
"""

from __future__ import annotations

from sweep.config.build import build_sweep
from sweep.config.compose import composed
from sweep.session.planning import plan_sweep
from sweep.stages.kind import StageKind
from sweep.stages.table import STAGE_KINDS


def kill_targets() -> tuple[str, ...]:
    """The stage kinds a trial can kill in, in the table's order: every kind that a sweep
    plans (validation runs before planning and has a fail-fast trial of its own)."""
    return tuple(name for name, kind in STAGE_KINDS.items() if kind.plan is not None)


def planned_kinds(overrides: list[str]) -> tuple[str, ...]:
    """The kill targets that the sweep of these overrides plans, in the table's order.

    The plan is the sweep's own (composed and planned as `python -m sweep` does, over every
    listed image), so a kind that this sweep never runs is no target.
    """
    plan = plan_sweep(build_sweep(composed(overrides)))
    return tuple(name for name in kill_targets() if plan.of_kind(name))


def not_in_sweep(planned: tuple[str, ...]) -> tuple[str, ...]:
    """The kill targets of the table that the sweep does not plan."""
    return tuple(name for name in kill_targets() if name not in planned)


def task_titles(stage: str) -> tuple[str, ...]:
    """The process titles of the Ray workers running the stage's tasks (e.g. ray::train_stage):
    Ray names a worker's process after the task it runs ("ray::IDLE" between tasks), and the
    executor hands Ray the kind's `ray_workers`, its longest work's first."""
    return tuple(f"ray::{title}" for title in _known(stage).worker_titles)


def task_title(stage: str) -> str:
    """The process title of a Ray worker running the stage's longest work."""
    return task_titles(stage)[0]


def store_patterns(stage: str) -> tuple[str, ...]:
    """Glob patterns, relative to the store, of the stage's output folders (and temporaries):
    <kind>/<key>/ and, for a sharded kind, <shard folder>/<key>/<range>/."""
    kind = _known(stage)
    patterns = (f"{kind.name}/*",)
    return (f"{kind.shard_folder}/*/*", *patterns) if kind.sharded else patterns


def kill_at_once(stage: str) -> bool:
    """Whether a task of the stage ends too soon for a random delay before its worker's kill:
    a shard of small images, or a group of evaluations, takes a fraction of a second here."""
    return _known(stage).killed_at_once


def coverage_problems(
    planned: tuple[str, ...], driver_kills: list[str], worker_kills: list[str]
) -> list[str]:
    """What the trials that survived left uncovered: every kind the sweep plans needs a
    driver kill and a worker kill (by the titles of `task_titles`) that it survived."""
    problems = []
    for name in planned:
        if name not in driver_kills:
            problems.append(f"{name}: planned but no driver kill in it survived")
        if name not in worker_kills:
            problems.append(f"{name}: planned but no worker kill in it survived")
    return problems


def _known(stage: str) -> StageKind:
    if stage not in kill_targets():
        raise ValueError(
            f"unknown stage kind {stage!r}; the known ones: {', '.join(kill_targets())}"
        )
    return STAGE_KINDS[stage]
