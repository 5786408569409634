"""What a stage kind declares, what every stage is, and what its workers are handed.

A stage kind is declared once, as a `StageKind` in its own module under sweep/stages/, and
listed once in the table `sweep.stages.table.STAGE_KINDS`. The planner, the executor, the
bill, the report, the reliability harness and the tests read everything about it from there:
its inputs, the fields of its key, its worker functions, the resources its tasks ask for, how
its finished output is read, how its pending work is billed and how its tasks are killed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sweep.store import ArtifactStore

if TYPE_CHECKING:  # encode workers import this module and must not import torch
    from sweep.codecs.base import Codec
    from sweep.models.base import ModelFamily
    from sweep.options import TrainOptions
    from sweep.tasks.base import TaskKind


def digest(payload: object) -> str:
    """Stable short digest of JSON-serialisable data (dict key order does not matter)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Stage:
    """One unit of work of a plan: a kind, a key, and the stages whose outputs it reads.

    Subclasses (one per kind, frozen dataclasses) set `kind` to their StageKind's name and add
    what their worker needs; a sharded kind's stage has `split` and `shards`, consecutive
    (start, stop) ranges of that split's images. The kinds of `upstream()` are the kind's
    `inputs`.
    """

    key: str
    kind: ClassVar[str]

    def upstream(self) -> tuple[Stage, ...]:
        """The stages whose outputs this one reads (they finish first)."""
        return ()


@dataclass(frozen=True)
class ResourceNeeds:
    """What the resources of a task depend on: the loader processes, the cluster's GPUs.

    `loader_workers` is a number: train.loader_workers, or what `auto` gives on this cluster
    (`sweep.options.ray_loader_workers`).
    """

    loader_workers: int = 0
    has_gpu: bool = False
    eval_gpu_fraction: float = 0.25


@dataclass(frozen=True)
class Cost:
    """What a kind's pending stages ask of a machine, as the bill prices it (`StageKind.bill`;
    sweep/experiments/bill/).

    Attributes:
        work: The pending work in words, e.g. "1,234 images to encode".
        images: Image passes by kind of work, each priced by that work's throughput:
            "decode", "encode", "measure", "train", "evaluate".
        encoded: Images encoded, by codec setting (priced by the codec's timed bytes).
        cached: Images decoded into a cache of pixels (priced at height x width x 3 bytes).
        models: Models trained (priced by their parameters' bytes).
        runs: Counts for the bill's "to run" line, e.g. {"trainings": 12}.
    """

    work: str = ""
    images: dict[str, int] = field(default_factory=dict)
    encoded: dict[str, int] = field(default_factory=dict)
    cached: int = 0
    models: int = 0
    runs: dict[str, int] = field(default_factory=dict)


def one_cpu(needs: ResourceNeeds) -> dict:
    """A task on one core and no GPU (encoding, measuring, merging)."""
    del needs
    return {"num_cpus": 1}


# StageContext fields whose unpickling imports torch: kinds that do not use torch get the
# context without them (an encode worker would pay seconds of start-up for torch).
TORCH_FIELDS = ("task", "model")


@dataclass
class StageContext:
    """The components a plan's workers need, shipped to Ray's object store once per plan.

    Validation needs only the store, the dataset root and `fail_fast`; the rest is None there.
    A new field that holds torch objects belongs in TORCH_FIELDS.
    """

    store: ArtifactStore
    dataset_root: Path
    codec: Codec | None = None
    task: TaskKind | None = None
    model: ModelFamily | None = None
    options: TrainOptions | None = None
    seed: int = 0
    num_classes: int = 0
    # data.on_error=fail: the first unreadable image fails the validation.
    fail_fast: bool = False

    def without_torch(self) -> StageContext:
        """The context for kinds that never use torch (see TORCH_FIELDS)."""
        return replace(self, **dict.fromkeys(TORCH_FIELDS))


@dataclass(frozen=True)
class StageKind:
    """A kind of stage, declared once.

    Args:
        name: The store folder of its finished outputs (`<store>/<name>/<key>/`), its
            progress bar, and what `Stage.kind` says.
        schema: Bumped when its output format, its computation or its key's meaning changes.
        inputs: The kinds of the stages it reads (they come before it in the table).
        key_fields: The fields of its key, besides its name and schema.
        run: The worker of a whole stage, `run(context, stage, *upstream_refs) -> summary`; for
            a sharded kind the merge of its shards, `run(context, stage, *shard_refs)` (the
            shards wait for the stage's upstream stages, the merge for its shards). A
            module-level function: Ray pickles it by reference and names the task after it.
        read: Reads a finished output's summary, `read(store, stage) -> dict`.
        plan: Adds the kind's stages to a sweep plan, `plan(sweep_plan, inputs)`, after the
            stages of its inputs; None for a kind planned elsewhere (validation).
        resources: The Ray resources of its tasks, `resources(ResourceNeeds) -> dict`.
        shard: For a kind that works on shards of a split's images: the worker of one shard,
            `shard(context, stage, shard_index, items, *upstream_refs) -> images done`.
        shard_folder: The store folder of its finished shards.
        uses_torch: Its tasks run torch (their thread count is set); others never import it.
        unit: What its progress bar counts ("img" for sharded kinds).
        progress: Its progress bar's label.
        flat_fields: Key fields whose dict is merged into the key's top level (kept so that
            outputs stored before the table keep their keys).
        optional_fields: Key fields left out of the key when None.
        group_of: For a kind whose stages share their heaviest input (evaluations of many
            models on one encoded test split): the group a stage belongs to, `group_of(stage)
            -> hashable`. The executor then hands a group's pending stages to `run_group`
            together (`cluster.eval_group_size` at most per task).
        run_group: The worker of a group, `run_group(context, stages, *upstream_refs) ->
            [summary per stage]`. Each stage keeps its own key, store folder and resume: a
            stage already done is read, not run again. It runs every stage of such a kind,
            a group of one included; `run` stays the worker of one stage.
        bill: What the kind's pending stages cost, `bill(stages, scope) -> Cost` (the scope:
            `sweep.stages.billing.BillScope`); None: counted in the bill, not estimated.
        kill_at_once: How the reliability harness kills a task of the kind: at once (a task
            too short for a random delay, such as a shard of small images) or after a random
            delay into it; None: at once for a sharded or grouped kind.
    """

    name: str
    schema: int
    inputs: tuple[str, ...]
    key_fields: tuple[str, ...]
    run: Callable[..., dict]
    read: Callable[[ArtifactStore, Stage], Any]
    plan: Callable | None = None
    resources: Callable[[ResourceNeeds], dict] = one_cpu
    shard: Callable[..., int] | None = None
    shard_folder: str | None = None
    uses_torch: bool = False
    unit: str = "stage"
    progress: str = ""
    flat_fields: tuple[str, ...] = ()
    optional_fields: tuple[str, ...] = ()
    group_of: Callable[[Stage], Hashable] | None = None
    run_group: Callable[..., list[dict]] | None = None
    bill: Callable[..., Cost] | None = None
    kill_at_once: bool | None = None

    def __post_init__(self) -> None:
        if (self.group_of is None) != (self.run_group is None):
            raise TypeError(f"stage kind {self.name}: group_of and run_group go together")

    @property
    def grouped(self) -> bool:
        return self.run_group is not None

    @property
    def sharded(self) -> bool:
        return self.shard is not None

    @property
    def bar(self) -> str:
        return self.progress or self.name

    @property
    def task_name(self) -> str:
        """The Ray task of its longest work (a worker's process title is `ray::<it>`)."""
        return self.worker_titles[0]

    @property
    def ray_workers(self) -> dict[str, Callable]:
        """The functions the executor hands to Ray, by role: a grouped kind's `run_group`
        alone (it runs every stage of the kind, a group of one included), a sharded kind's
        `shard` and then its merge (`run`), any other kind's `run`."""
        if self.grouped:
            return {"group": self.run_group}
        if self.sharded:
            return {"shard": self.shard, "run": self.run}
        return {"run": self.run}

    @property
    def worker_titles(self) -> tuple[str, ...]:
        """The Ray task names of the kind's workers on Ray (`ray_workers`; a worker's process
        title is `ray::<name>` while it runs one), its longest work's first."""
        return tuple(dict.fromkeys(w.__name__ for w in self.ray_workers.values()))

    @property
    def killed_at_once(self) -> bool:
        """Whether the reliability harness kills its tasks at once (see `kill_at_once`)."""
        brief = self.sharded or self.grouped  # a shard, or a group of cheap evaluations
        return brief if self.kill_at_once is None else self.kill_at_once

    def key(self, **fields: Any) -> str:
        """The key of a stage of this kind: a digest of exactly its declared fields."""
        if set(fields) != set(self.key_fields):
            raise TypeError(
                f"a {self.name} key takes the fields {sorted(self.key_fields)}, "
                f"got {sorted(fields)}"
            )
        payload: dict[str, Any] = {"stage": self.name, "schema": self.schema}
        for name in self.key_fields:
            value = fields[name]
            if value is None and name in self.optional_fields:
                continue
            if name in self.flat_fields:
                payload |= value
            else:
                payload[name] = value
        return digest(payload)
