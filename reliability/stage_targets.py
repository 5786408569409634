"""The stage kinds a trial kills in: their Ray task names and their outputs in the store.

Everything comes from the package's table of stage kinds (`sweep.stages.table.STAGE_KINDS`), so a
new kind of the sweep is a kill target without being named here.
"""

from __future__ import annotations

from sweep.stages.kind import StageKind
from sweep.stages.table import STAGE_KINDS


def kill_targets() -> tuple[str, ...]:
    """The stage kinds a trial can kill in, in the table's order: every kind that the sweep
    plans (validation runs before planning and has a fail-fast trial of its own)."""
    return tuple(name for name, kind in STAGE_KINDS.items() if kind.plan is not None)


def task_title(stage: str) -> str:
    """The process title of a Ray worker running a task of the stage (e.g. ray::train_stage):
    Ray names a worker's process after the task it runs ("ray::IDLE" between tasks)."""
    return f"ray::{_known(stage).worker_titles[0]}"


def store_patterns(stage: str) -> tuple[str, ...]:
    """Glob patterns, relative to the store, of the stage's output folders (and temporaries):
    <kind>/<key>/ and, for a sharded kind, <shard folder>/<key>/<range>/."""
    kind = _known(stage)
    patterns = (f"{kind.name}/*",)
    return (f"{kind.shard_folder}/*/*", *patterns) if kind.sharded else patterns


def kill_at_once(stage: str) -> bool:
    """Whether a task of the stage ends too soon for a random delay before its worker's kill:
    a shard of small images takes a fraction of a second here."""
    return _known(stage).killed_at_once


def _known(stage: str) -> StageKind:
    if stage not in kill_targets():
        raise ValueError(
            f"unknown stage kind {stage!r}; the known ones: {', '.join(kill_targets())}"
        )
    return STAGE_KINDS[stage]
