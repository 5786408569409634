"""The plan graph: stages of any kind by ident, the sweep's plan, and what planning reads.

Every stage has a key: a digest of exactly what determines its output (the dataset's files,
the codec's identity, the model, the training hyper-parameters, the seed) and of the keys of
the stages it reads. Options that cannot change a result (cluster, tracking, evaluation batch
size) are left out, so changing them reuses every finished stage. Each kind plans its own
stages (its `plan` function, reading `PlanInputs`); the engine calls them in the table's order
(sweep/engine/plan.py).

This module knows no kind's module: the kinds import it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from sweep.codecs.base import Codec
from sweep.data.base import DatasetReader, ImageItem
from sweep.distortion import DistortionOptions
from sweep.models.base import ModelFamily
from sweep.options import TrainOptions
from sweep.sensitivity.options import SensitivityOptions
from sweep.stages.kind import Stage, digest

if TYPE_CHECKING:  # the task kinds import torch; the planner is imported by every worker
    from sweep.tasks.base import TaskKind


@dataclass
class Plan:
    """Stages to run and the images of each split that sharded stages work on.

    `stages[kind][ident]` is a stage of that kind (ident: a split, a setting, a cell).
    """

    splits: dict[str, list[ImageItem]]
    stages: dict[str, dict[Hashable, Stage]] = field(default_factory=dict)

    def add(self, stage: Stage, ident: Hashable) -> None:
        self.stages.setdefault(stage.kind, {})[ident] = stage

    def of_kind(self, kind: str) -> dict[Hashable, Stage]:
        """The stages of a kind by ident (an empty dict, kept in the plan, when none)."""
        return self.stages.setdefault(kind, {})

    def in_order(self, kinds: Iterable[str]) -> Iterator[Stage]:
        """Every stage, kind by kind in the order of `kinds` (the table's, `STAGE_KINDS`, where
        a kind comes after the kinds it reads), then any kind not listed."""
        kinds = list(kinds)
        for kind in [*kinds, *(kind for kind in self.stages if kind not in kinds)]:
            yield from self.of_kind(kind).values()

    def shard_items(self, stage: Stage, index: int) -> list[ImageItem]:
        """The images of a shard: a range of the split, or of the split's sampled images
        for a stage over a sample (`indices`, e.g. measured distortion)."""
        start, stop = stage.shards[index]
        items = self.splits[stage.split]
        indices = getattr(stage, "indices", None)
        if indices is None:
            return items[start:stop]
        return [items[i] for i in indices[start:stop]]

    def narrowed_to(self, stages: Iterable[Stage]) -> Plan:
        """A copy of the plan with only these stages and the stages they read, transitively
        (e.g. the sensitivity maps and the trainings they need, without the grid's cells)."""
        wanted: set[str] = set()
        pending = list(stages)
        while pending:
            stage = pending.pop()
            if stage.key not in wanted:
                wanted.add(stage.key)
                pending.extend(stage.upstream())
        kept = {
            kind: {ident: stage for ident, stage in by_ident.items() if stage.key in wanted}
            for kind, by_ident in self.stages.items()
        }
        return replace(self, stages=kept)


@dataclass
class SweepPlan(Plan):
    """Every stage of a sweep over the images that survived validation."""

    class_names: list[str] = field(default_factory=list)
    train_settings: list[str] = field(default_factory=list)
    test_settings: list[str] = field(default_factory=list)
    # The trainings' seeds; the first is the one the figures and maps show.
    seeds: list[int] = field(default_factory=lambda: [0])
    # Requested measures that cannot run on this machine, with the reason.
    skipped_measures: dict[str, str] = field(default_factory=dict)

    # The stages the report reads, by their kinds' names (each kind's module sets its NAME to
    # the same; tests/stages/test_graph.py checks them against the table).
    @property
    def encodes(self) -> dict[tuple[str, str], Stage]:
        """(split, setting) -> EncodeStage."""
        return self.of_kind("encode")

    @property
    def trains(self) -> dict[str, Stage]:
        """train setting -> TrainStage of the first seed: the model whose figures, sensitivity
        maps and MLflow child run the report shows."""
        return {
            setting: stage
            for (setting, seed), stage in self.replicate_trains.items()
            if seed == self.seeds[0]
        }

    @property
    def replicate_trains(self) -> dict[tuple[str, int], Stage]:
        """(train setting, seed) -> TrainStage: every seed's model."""
        return self.of_kind("train")

    @property
    def evaluations(self) -> dict[tuple[str, str], Stage]:
        """(train setting, test setting) -> EvaluateStage of the first seed's model."""
        return {
            (train_setting, test_setting): stage
            for (train_setting, test_setting, seed), stage in self.replicate_evaluations.items()
            if seed == self.seeds[0]
        }

    @property
    def replicate_evaluations(self) -> dict[tuple[str, str, int], Stage]:
        """(train setting, test setting, seed) -> EvaluateStage: every seed's cells."""
        return self.of_kind("evaluate")

    @property
    def distortions(self) -> dict[tuple[str, str], Stage]:
        """(split, setting) -> DistortionStage."""
        return self.of_kind("distortion")

    @property
    def sensitivities(self) -> dict[tuple[str, str], Stage]:
        """(train setting, method) -> SensitivityStage."""
        return self.of_kind("sensitivity")

    @property
    def key(self) -> str:
        """Identity of the whole sweep: the set of its cells' evaluation keys (every seed's)."""
        return digest(sorted(stage.key for stage in self.replicate_evaluations.values()))


@dataclass(frozen=True)
class PlanInputs:
    """What the kinds' plan functions read: the validated images and the components."""

    reader: DatasetReader
    # Identity of each split's kept images (see `DatasetReader.fingerprint`).
    fingerprints: dict[str, str]
    codec: Codec
    task: TaskKind
    model: ModelFamily
    options: TrainOptions
    # The first seed's models get sensitivity maps; every seed gets trainings and cells.
    seeds: tuple[int, ...]
    shard_size: int
    # None: no distortion stages.
    distortion: DistortionOptions | None = None
    # None or disabled: no sensitivity stages.
    sensitivity: SensitivityOptions | None = None
    # The settings the `mixed` train setting draws from (sweep/tasks/mixed.py).
    mixed: tuple[str, ...] = ()

    @property
    def seed(self) -> int:
        """The first seed: the sensitivity maps' (their model and their image sample)."""
        return self.seeds[0]
