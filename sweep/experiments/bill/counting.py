"""What the plan holds and what of it is pending: the predicted screening, the stages per
kind (total, cached, to run), and each kind's pending work as its own bill says
(`StageKind.bill`). Nothing is written, no Ray starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sweep.data.digests import DIGEST_FOLDER, FileDigests
from sweep.spec import Sweep
from sweep.stages.billing import BillScope
from sweep.stages.graph import Plan
from sweep.stages.kind import Cost, Stage
from sweep.stages.table import STAGE_KINDS
from sweep.stages.validate import Screening, plan_validation, screening_of
from sweep.store import ArtifactStore


class ReadOnlyDigests(FileDigests):
    """The store's digest cache, read but never written: a dry run leaves the store as it
    found it (a file missing from the cache is hashed, and hashed again by the real run)."""

    def _save(self, root: Path, table: dict) -> None:
        del root, table


@dataclass(frozen=True)
class KindCount:
    """The stages of one kind: in the plan, finished in the store, to run."""

    kind: str
    total: int
    cached: int

    @property
    def to_run(self) -> int:
        return self.total - self.cached


def predicted_screening(sweep: Sweep) -> tuple[Plan, Screening]:
    """The validations of the listed images and the screening the sweep would plan over,
    made as the sweep makes them (`sweep.stages.validate`), so that the plan's keys are the
    real run's: a finished validation's verdicts are applied, an unfinished one is assumed to
    keep every image."""
    digests = ReadOnlyDigests(sweep.store.local_dir / DIGEST_FOLDER)
    validation = plan_validation(sweep.reader, sweep.cluster.encode_shard_size, digests)
    screening = screening_of(validation, sweep.store, sweep.reader.root, unfinished_kept=True)
    return validation, screening


def count_stages(store: ArtifactStore, stages: list[Stage]) -> dict[str, KindCount]:
    """Per kind (in the table's order): stages, and those finished in the store."""
    totals: dict[str, list[int]] = {name: [0, 0] for name in STAGE_KINDS}
    for stage in stages:
        totals.setdefault(stage.kind, [0, 0])
        totals[stage.kind][0] += 1
        totals[stage.kind][1] += store.is_done(stage.kind, stage.key)
    return {name: KindCount(name, *t) for name, t in totals.items() if t[0]}


def pending_costs(plans: list[Plan], scope: BillScope) -> dict[str, Cost]:
    """Each kind's cost of its stages that are not finished in the store (a kind without a
    bill of its own is counted, not estimated)."""
    costs = {}
    for name, kind in STAGE_KINDS.items():
        for plan in plans:
            pending = [
                stage
                for stage in plan.of_kind(name).values()
                if not scope.store.is_done(stage.kind, stage.key)
            ]
            if not pending:
                continue
            if kind.bill is None:
                costs[name] = Cost(f"{len(pending)} stages (not estimated)")
            else:
                costs[name] = kind.bill(pending, BillScope(scope.store, plan, scope.epochs,
                                                           scope.group_size))  # fmt: skip
    return costs
