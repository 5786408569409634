"""What a stage kind's bill reads: the plan, the store, and the options that size the work.

Each kind prices its own pending stages (`StageKind.bill`, returning a `Cost`); the bill
(sweep/experiments/bill/) asks every kind of the table, sums their costs and applies the
throughputs it measured or timed. So a new kind is billed by its own module, and the bill
names no kind.
"""

from __future__ import annotations

from dataclasses import dataclass

from sweep.stages.graph import Plan
from sweep.stages.kind import Stage
from sweep.stages.shards import shard_key
from sweep.store import ArtifactStore


@dataclass(frozen=True)
class BillScope:
    """The plan being billed and what sizes its pending work.

    Attributes:
        store: Where finished stages (and shards) are found.
        plan: The plan (its splits and sampled images size the sharded kinds).
        epochs: `train.epochs`, for trainings that do not set their own.
        group_size: `cluster.eval_group_size`: grouped stages run that many per task.
    """

    store: ArtifactStore
    plan: Plan
    epochs: int
    group_size: int = 1

    def is_done(self, kind: str, key: str) -> bool:
        return self.store.is_done(kind, key)

    def pending_shard_images(self, stage: Stage, shard_folder: str) -> int:
        """The images of a sharded stage's unfinished shards."""
        return sum(
            len(self.plan.shard_items(stage, index))
            for index in range(len(stage.shards))
            if not self.store.is_done(shard_folder, shard_key(stage, index))
        )

    def split_images(self, split: str) -> int:
        return len(self.plan.splits[split])
