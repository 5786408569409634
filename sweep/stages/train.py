"""Train: one model trained on the train split encoded at one setting (or, for `mixed`, at
several: each image of each epoch drawn from one of them, sweep/tasks/mixed.py).

Its key holds exactly what changes the trained weights: the encode it reads, the task kind's
training identity (`TaskKind.train_identity`), the model family's identity, the training
options that change results (the general ones and the task kind's own `option_fields`), the
seed and the class list. How the model is evaluated is not part of it (see evaluate.py), nor
whether its pixels come from a decode cache (train.decode_cache, decoded.py): the same pixels.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sweep.codecs.base import MIXED
from sweep.data.files import DecodedFiles
from sweep.stages import decoded
from sweep.stages.billing import BillScope
from sweep.stages.decoded import DecodedStage, decoded_files
from sweep.stages.encode import EncodeStage, encoded_files, encoded_sources
from sweep.stages.graph import PlanInputs, SweepPlan
from sweep.stages.kind import Cost, ResourceNeeds, Stage, StageContext, StageKind, digest
from sweep.store import ArtifactStore

if TYPE_CHECKING:
    from sweep.data.files import LabelledFile
    from sweep.options import TrainOptions
    from sweep.tasks.base import TaskKind

# Training options of every task kind that change the trained weights; the others (evaluation
# batch size) only change speed. A task kind adds its own through `option_fields`.
RESULT_OPTIONS = (
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "warmup_fraction",
    # Each loader process draws its own augmentation stream.
    "loader_workers",
    "amp",
)


NAME = "train"


@dataclass(frozen=True)
class TrainStage(Stage):
    """One model trained on the train split at one setting."""

    kind = NAME
    setting: str
    encode: EncodeStage
    # The training's seed (data order, augmentation, initialisation): one model per seed.
    seed: int = 0
    # A subset of the split (indices in split order) and its epochs: the storage-budget
    # experiment's cells (sweep/experiments/budget.py). None: the whole split, train.epochs.
    subset: tuple[int, ...] | None = None
    epochs: int | None = None
    # The `mixed` setting's encodes, one per setting it draws from (`encode` is the first).
    mixed: tuple[EncodeStage, ...] = ()
    # train.decode_cache: the decode caches of the encodes it reads (one per setting of a
    # mix), whose pixels it reads instead of decoding the files. Not part of the key.
    decoded: tuple[DecodedStage, ...] = ()

    def subset_identity(self) -> dict | None:
        """The subset's part of the training key (None: the whole split)."""
        if self.subset is None:
            return None
        return {
            "images": digest(list(self.subset)),
            "count": len(self.subset),
            "epochs": self.epochs,
        }

    def upstream(self) -> tuple[Stage, ...]:
        return (*(self.mixed or (self.encode,)), *self.decoded)


def result_options(task: TaskKind, options: TrainOptions) -> dict:
    """The training options that change this task kind's trained weights."""
    names = (*RESULT_OPTIONS, *task.option_fields)
    return {name: getattr(options, name) for name in names}


def plan_trainings(plan: SweepPlan, inputs: PlanInputs) -> None:
    """One training per train setting and seed, on that setting's encode of the train split
    (every seed reads the same encode); `mixed` reads the encodes of its settings. Where
    those have decode caches (train.decode_cache) it reads their pixels from them."""
    task = inputs.task
    caches = plan.of_kind(decoded.NAME)  # setting -> DecodedStage
    readers: dict[str, list[str]] = {}  # setting -> keys of the trainings that read its cache
    for seed in inputs.seeds:
        for setting in plan.train_settings:
            if setting == MIXED:
                mixed = tuple(plan.encodes[("train", s)] for s in inputs.mixed)
                encode, encode_key = mixed[0], {e.setting: e.key for e in mixed}
            else:
                mixed, encode = (), plan.encodes[("train", setting)]
                encode_key = encode.key
            key = KIND.key(
                encode=encode_key,
                task={"kind": task.kind, **task.train_identity()},
                model=inputs.model.identity(),
                train=result_options(task, inputs.options),
                seed=seed,
                classes=plan.class_names,
                subset=None,
            )
            reads = tuple(caches[e.setting] for e in mixed or (encode,) if e.setting in caches)
            stage = TrainStage(key, setting, encode, seed, mixed=mixed, decoded=reads)
            plan.add(stage, (setting, seed))
            for cache in reads:
                readers.setdefault(cache.setting, []).append(key)
    # Each cache knows its trainings: when all are finished, it is not made (decoded.py).
    for setting, cache in caches.items():
        caches[setting] = replace(cache, trainings=tuple(readers.get(setting, ())))


def training_files(store: ArtifactStore, stage: TrainStage) -> list[LabelledFile]:
    """The files a training reads: its encode's, or for `mixed` every setting's, checked to
    hold the same images in the same order (each is drawn as any of them). An encode with a
    decode cache among `stage.decoded` gives `DecodedFiles`: its trainings read the pixels."""
    caches = {cache.encode.key: cache for cache in stage.decoded}

    def files_of(encode: EncodeStage) -> list[LabelledFile]:
        files = encoded_files(store, encode)
        cache = caches.get(encode.key)
        return files if cache is None else decoded_files(store, cache, files)

    if not stage.mixed:
        return files_of(stage.encode)
    from sweep.tasks.mixed import MixedFiles  # torch: the planner imports this module

    sources = [encoded_sources(store, encode) for encode in stage.mixed]
    for encode, listed in zip(stage.mixed[1:], sources[1:], strict=True):
        if listed != sources[0]:
            raise ValueError(
                f"the mix's encodes at {stage.mixed[0].setting} and {encode.setting} hold "
                "different images; rerun the sweep to re-encode them"
            )
    return MixedFiles(
        [encode.setting for encode in stage.mixed],
        [files_of(encode) for encode in stage.mixed],
    )


def train_stage(context: StageContext, stage: TrainStage, *upstream: object) -> dict:
    """Trains one model on the encoded train split; returns the training summary.

    `upstream` (the results of the encodes and decode caches it reads) only orders it after
    them.
    """
    del upstream
    store = context.store
    if store.is_done(KIND.name, stage.key):
        return read_summary(store, stage)
    files = training_files(store, stage)
    options = context.options
    if stage.subset is not None:
        if isinstance(files, DecodedFiles):
            files = files.subset(stage.subset)
        else:
            files = [files[index] for index in stage.subset]
        options = replace(options, epochs=stage.epochs)
    started = time.perf_counter()
    with store.writing(KIND.name, stage.key) as out:
        summary = context.task.train(
            context.model, files, context.num_classes, options, stage.seed, out
        )
        summary |= {
            "setting": stage.setting,
            "seconds": time.perf_counter() - started,
            "decode_cache": bool(stage.decoded),
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def read_summary(store: ArtifactStore, stage: TrainStage) -> dict:
    """Loss per epoch, images, device, precision, throughput and seconds of the training."""
    return store.read_json(KIND.name, stage.key, "summary.json")


def training_resources(needs: ResourceNeeds) -> dict:
    """A whole GPU where the cluster has one; the cores of its loader processes too."""
    return {"num_cpus": 1 + needs.loader_workers, "num_gpus": 1 if needs.has_gpu else 0}


def bill_trainings(stages: list[TrainStage], scope: BillScope) -> Cost:
    """Each training's image passes: its epochs times its images (a budget cell's subset)."""
    passes = 0
    for stage in stages:
        images = len(stage.subset) if stage.subset is not None else scope.split_images("train")
        passes += (stage.epochs or scope.epochs) * images
    return Cost(
        f"{passes:,} image decodes ({len(stages)} trainings)",
        images={"train": passes},
        models=len(stages),
        runs={"trainings": len(stages)},
    )


KIND = StageKind(
    name=NAME,
    # 2: the key holds the task's training identity only, and only the options its kind reads.
    schema=2,
    inputs=("encode", "decoded"),
    key_fields=("encode", "task", "model", "train", "seed", "classes", "subset"),
    run=train_stage,
    read=read_summary,
    plan=plan_trainings,
    resources=training_resources,
    uses_torch=True,
    unit="model",
    optional_fields=("subset",),
    bill=bill_trainings,
)
