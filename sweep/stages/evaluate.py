"""Evaluate: one trained model on the test split encoded at one setting (one grid cell).

Its key adds to the training's key only what changes the evaluation: the encode of the test
split, the task kind's evaluation identity (`TaskKind.eval_identity`: metric, inference mode)
and the model family's (`ModelFamily.eval_identity`: test-time size). Changing how models are
evaluated re-evaluates every cell and retrains nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sweep.analysis.outcomes import write_outcomes
from sweep.stages.encode import EncodeStage, encoded_files, encoded_sources
from sweep.stages.kind import ResourceNeeds, Stage, StageContext, StageKind
from sweep.stages.train import TrainStage
from sweep.store import ArtifactStore

if TYPE_CHECKING:
    from sweep.plan import PlanInputs, SweepPlan


NAME = "evaluate"


@dataclass(frozen=True)
class EvaluateStage(Stage):
    """A trained model evaluated on one encoded test split: one cell of the grid."""

    kind = NAME
    train: TrainStage
    encode: EncodeStage

    @property
    def cell(self) -> tuple[str, str]:
        """(train setting, test setting)."""
        return (self.train.setting, self.encode.setting)

    def upstream(self) -> tuple[Stage, ...]:
        return (self.train, self.encode)


def plan_evaluations(plan: SweepPlan, inputs: PlanInputs) -> None:
    """Every trained model on every test setting: the train x test grid, once per seed."""
    task = {"kind": inputs.task.kind, **inputs.task.eval_identity()}
    model = inputs.model.eval_identity()
    for train in plan.replicate_trains.values():
        for setting in plan.test_settings:
            encode = plan.encodes[("test", setting)]
            key = KIND.key(train=train.key, encode=encode.key, task=task, model=model)
            plan.add(EvaluateStage(key, train, encode), (train.setting, setting, train.seed))


def evaluate_stage(context: StageContext, stage: EvaluateStage, *upstream: object) -> dict:
    """Evaluates a trained model on one encoded test split; returns its metrics.

    `upstream` (the training's and the encode's results) only orders it after them.
    """
    del upstream
    store = context.store
    if store.is_done(KIND.name, stage.key):
        return read_metrics(store, stage)
    files = encoded_files(store, stage.encode)
    weights = store.path(stage.train.kind, stage.train.key)
    with store.writing(KIND.name, stage.key) as out:
        metrics = context.task.evaluate(
            context.model, weights, files, context.num_classes, context.options
        )
        outcomes = metrics.pop("outcomes", None)
        if outcomes is not None:  # per image, for the intervals (sweep/analysis/)
            write_outcomes(out, encoded_sources(store, stage.encode), outcomes)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def read_metrics(store: ArtifactStore, stage: EvaluateStage) -> dict:
    """The task kind's metrics of the cell (every name in `metric_names`, and "images")."""
    return store.read_json(KIND.name, stage.key, "metrics.json")


def evaluation_resources(needs: ResourceNeeds) -> dict:
    """A fraction of a GPU (evaluations are light; several share one) and loader cores."""
    gpus = needs.eval_gpu_fraction if needs.has_gpu else 0
    return {"num_cpus": 1 + needs.loader_workers, "num_gpus": gpus}


KIND = StageKind(
    name=NAME,
    # 2: the key holds the task's and the model's evaluation identities; the training key
    # holds the rest. 3: outcomes.npz, each image's outcome, beside metrics.json.
    schema=3,
    inputs=("train", "encode"),
    key_fields=("train", "encode", "task", "model"),
    run=evaluate_stage,
    read=read_metrics,
    plan=plan_evaluations,
    resources=evaluation_resources,
    uses_torch=True,
    unit="cell",
)
