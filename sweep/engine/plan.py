"""A sweep's plan: every stage kind's stages over the screened images, in the table's order."""

from __future__ import annotations

from sweep.data.base import ImageItem
from sweep.stages.graph import PlanInputs, SweepPlan
from sweep.stages.table import STAGE_KINDS


def build_plan(
    splits: dict[str, list[ImageItem]],
    inputs: PlanInputs,
    train_settings: list[str],
    test_settings: list[str],
) -> SweepPlan:
    """Lists the stages of a sweep over the given (validated) images and computes their keys."""
    plan = SweepPlan(
        splits,
        class_names=inputs.reader.class_names(),
        train_settings=list(train_settings),
        test_settings=list(test_settings),
        seeds=list(inputs.seeds),
    )
    for kind in STAGE_KINDS.values():
        if kind.plan is not None:
            kind.plan(plan, inputs)
    return plan
