"""Sensitivity: the DCT sensitivity maps of one trained classifier, by one method.

Per model an 8x8 map for each of Y, Cb and Cr (sweep/sensitivity/methods.py), measured on a
seeded sample of the original test images, kept per image so that the report can bootstrap
its intervals over images. Its key holds the training's key, the test encode's and every
option that changes the maps; the report's bootstrap is not part of it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import numpy as np

from sweep.codecs.base import ORIGINAL
from sweep.sensitivity.options import TASK_KIND, SensitivityOptions
from sweep.stages.billing import BillScope
from sweep.stages.encode import EncodeStage, encoded_files
from sweep.stages.evaluate import evaluation_resources
from sweep.stages.graph import PlanInputs, SweepPlan
from sweep.stages.kind import Cost, Stage, StageContext, StageKind
from sweep.stages.train import TrainStage
from sweep.store import ArtifactStore

NAME = "sensitivity"
MAPS_FILE = "maps.npz"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SensitivityStage(Stage):
    """The maps of one trained classifier by one method (`options` says how)."""

    kind = NAME
    train: TrainStage
    encode: EncodeStage
    method: str
    options: SensitivityOptions

    @property
    def setting(self) -> str:
        """The train setting of the model it maps."""
        return self.train.setting

    def upstream(self) -> tuple[Stage, ...]:
        return (self.train, self.encode)


def sensitivity_stage(
    train: TrainStage,
    encode: EncodeStage,
    method: str,
    options: SensitivityOptions,
    seed: int,
    model: dict,
) -> SensitivityStage:
    """The stage of one model's maps by one method; `model` is the family's evaluation
    identity (the maps are measured on the evaluation's input: a test-time crop changes them)."""
    finite = method == "finite"
    key = KIND.key(
        train=train.key,
        encode=encode.key,
        model=model,
        method=method,
        statistics=list(options.statistic),
        images=options.images,
        chroma_subsampling=options.chroma_subsampling,
        seed=seed,
        # Only the finite method moves coefficients by epsilon, in sampled blocks.
        epsilon=float(options.epsilon) if finite else None,
        blocks=options.blocks if finite else None,
    )
    return SensitivityStage(key, train, encode, method, options)


def plan_sensitivities(plan: SweepPlan, inputs: PlanInputs) -> None:
    """A stage per trained classifier and method, on the original test images."""
    options = inputs.sensitivity
    if options is None or not options.enabled:
        return
    if inputs.task.kind != TASK_KIND:
        log.info("sensitivity maps are for classifiers: none for a %s task", inputs.task.kind)
        return
    encode = plan.encodes[("test", ORIGINAL)]
    model = inputs.model.eval_identity()
    for setting, train in plan.trains.items():
        for method in options.method:
            stage = sensitivity_stage(train, encode, method, options, inputs.seed, model)
            plan.add(stage, (setting, method))


def sample_indices(count: int, wanted: int, seed: int) -> list[int]:
    """A seeded sample of `wanted` image indices out of `count`, in split order."""
    if wanted >= count:
        return list(range(count))
    rng = np.random.default_rng([seed, count])
    return sorted(int(index) for index in rng.choice(count, size=wanted, replace=False))


def sensitivity_worker(context: StageContext, stage: SensitivityStage, *upstream: object) -> dict:
    """Measures one model's maps; writes them per image (maps.npz) and a summary.

    `upstream` (the training's and the encode's results) only orders it after them.
    """
    del upstream
    store = context.store
    if store.is_done(KIND.name, stage.key):
        return read_summary(store, stage)
    # torch loads only in this worker: the planner and encode workers import this module.
    from sweep.stages.sensitivity_measure import measure_model

    files = encoded_files(store, stage.encode)
    chosen = sample_indices(len(files), stage.options.images, context.seed)
    weights = store.path(stage.train.kind, stage.train.key)
    started = time.perf_counter()
    measured = measure_model(
        context.model,
        weights,
        [files[index] for index in chosen],
        context.num_classes,
        stage.method,
        stage.options,
        context.seed,
        context.options.eval_batch_size,
    )
    seconds = time.perf_counter() - started
    with store.writing(KIND.name, stage.key) as out:
        np.savez(out / MAPS_FILE, **measured.maps)
        summary = {
            "train_setting": stage.setting,
            "method": stage.method,
            "statistics": list(measured.maps),
            "n_images": len(chosen),
            # Positions in the test split (its original setting), in split order.
            "image_indices": chosen,
            "blocks_per_image": measured.blocks,
            "epsilon": stage.options.epsilon if stage.method == "finite" else None,
            "chroma_subsampling": stage.options.chroma_subsampling,
            # Forward passes of perturbed images (finite) or backward passes (gradient).
            "passes": measured.passes,
            "seconds": seconds,
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def read_summary(store: ArtifactStore, stage: SensitivityStage) -> dict:
    """Images, blocks, passes and seconds of a finished measurement."""
    return store.read_json(KIND.name, stage.key, "summary.json")


def read_maps(store: ArtifactStore, stage: SensitivityStage) -> dict[str, np.ndarray]:
    """statistic -> (n_images, 3, 8, 8) per-image maps of a finished measurement."""
    with np.load(store.path(KIND.name, stage.key) / MAPS_FILE) as maps:
        return {name: maps[name] for name in maps.files}


def bill_maps(stages: list[SensitivityStage], scope: BillScope) -> Cost:
    """Counted, not timed: a map's cost depends on its method and sample."""
    del scope
    return Cost(f"{len(stages)} maps to measure (not estimated)", runs={"maps": len(stages)})


KIND = StageKind(
    name=NAME,
    schema=1,
    inputs=("train", "encode"),
    key_fields=(
        "train",
        "encode",
        "model",
        "method",
        "statistics",
        "images",
        "chroma_subsampling",
        "seed",
        "epsilon",
        "blocks",
    ),  # fmt: skip
    run=sensitivity_worker,
    read=read_summary,
    plan=plan_sensitivities,
    resources=evaluation_resources,
    uses_torch=True,
    unit="map",
    progress="maps",
    optional_fields=("epsilon", "blocks"),
    bill=bill_maps,
)
