"""Evaluate: one trained model on the test split encoded at one setting (one grid cell).

Cells are evaluated in groups of one test setting (`group_of`): each test image is decoded
once and goes through every trained model of the group (`TaskKind.evaluate_group`), so a sweep
decodes D x N_test images rather than D x D x N_test. Each cell of a group keeps its own key,
store folder and resume; its metrics are those of evaluating it alone.

Its key adds to the training's key only what changes the evaluation: the encode of the test
split, the task kind's evaluation identity (`TaskKind.eval_identity`: metric, inference mode)
and the model family's (`ModelFamily.eval_identity`: test-time size). Changing how models are
evaluated re-evaluates every cell and retrains nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sweep.analysis.outcomes import write_outcomes
from sweep.stages.billing import BillScope
from sweep.stages.encode import EncodeStage, encoded_files, encoded_sources
from sweep.stages.graph import PlanInputs, SweepPlan
from sweep.stages.kind import Cost, ResourceNeeds, Stage, StageContext, StageKind
from sweep.stages.train import TrainStage
from sweep.store import ArtifactStore

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
    return evaluate_group(context, [stage], *upstream)[0]


def group_of_cell(stage: EvaluateStage) -> str:
    """A cell's group: the encode of its test split (every model of a group reads it)."""
    return stage.encode.key


def evaluate_group(
    context: StageContext, stages: Sequence[EvaluateStage], *upstream: object
) -> list[dict]:
    """Evaluates trained models on one encoded test split, decoding each image once; returns
    each stage's metrics, in order.

    A stage already done is read from the store, not evaluated again; each of the others is
    written to its own folder under its own key. `upstream` (the trainings' and the encode's
    results) only orders it after them.
    """
    del upstream
    store = context.store
    encodes = {stage.encode.key for stage in stages}
    if len(encodes) > 1:
        raise ValueError(f"a group of evaluations reads one encode, got {len(encodes)}")
    pending = [stage for stage in stages if not store.is_done(KIND.name, stage.key)]
    if pending:
        encode = pending[0].encode
        files = encoded_files(store, encode)
        weights = [store.path(stage.train.kind, stage.train.key) for stage in pending]
        results = context.task.evaluate_group(
            context.model, weights, files, context.num_classes, context.options
        )
        sources = encoded_sources(store, encode)
        for stage, metrics in zip(pending, results, strict=True):
            write_metrics(store, stage, metrics, sources)
    return [read_metrics(store, stage) for stage in stages]


def write_metrics(
    store: ArtifactStore, stage: EvaluateStage, metrics: dict, sources: list[str]
) -> None:
    """Publishes a cell's metrics.json and, where its kind has them, outcomes.npz."""
    metrics = dict(metrics)
    with store.writing(KIND.name, stage.key) as out:
        outcomes = metrics.pop("outcomes", None)
        if outcomes is not None:  # per image, for the intervals (sweep/analysis/)
            write_outcomes(out, sources, outcomes)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


def read_metrics(store: ArtifactStore, stage: EvaluateStage) -> dict:
    """The task kind's metrics of the cell (every name in `metric_names`, and "images")."""
    return store.read_json(KIND.name, stage.key, "metrics.json")


def evaluation_resources(needs: ResourceNeeds) -> dict:
    """A fraction of a GPU (evaluations are light; several share one) and loader cores."""
    gpus = needs.eval_gpu_fraction if needs.has_gpu else 0
    return {"num_cpus": 1 + needs.loader_workers, "num_gpus": gpus}


def bill_evaluations(stages: list[EvaluateStage], scope: BillScope) -> Cost:
    """Every cell's forward passes over the test split; its decodes are shared by the cells
    of a group (one test setting, `cluster.eval_group_size` cells a task)."""
    test_images = scope.split_images("test")
    cells: dict[str, int] = {}
    for stage in stages:
        cells[group_of_cell(stage)] = cells.get(group_of_cell(stage), 0) + 1
    tasks = sum(-(-count // scope.group_size) for count in cells.values())  # ceil
    grouped = f" in {tasks} tasks" if tasks < len(stages) else ""
    return Cost(
        f"{tasks * test_images:,} image decodes ({len(stages)} evaluations{grouped})",
        images={"evaluate": len(stages) * test_images},
        runs={"evaluations": len(stages)},
    )


KIND = StageKind(
    name=NAME,
    # 2: the key holds the task's and the model's evaluation identities; the training key
    # holds the rest. 3: outcomes.npz, each image's outcome, beside metrics.json.
    schema=3,
    inputs=("train", "encode"),
    key_fields=("train", "encode", "task", "model"),
    run=evaluate_stage,
    read=read_metrics,
    group_of=group_of_cell,
    run_group=evaluate_group,
    plan=plan_evaluations,
    resources=evaluation_resources,
    uses_torch=True,
    unit="cell",
    bill=bill_evaluations,
)
