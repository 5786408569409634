"""Runs any plan's unfinished stages, in this process or on Ray, kind by kind from the table.

Everything about a stage kind (its workers, resources, store folders, progress unit) comes
from `sweep.stages.STAGE_KINDS`; this module knows none of them by name. A finished stage
(its DONE marker) is never run again, so a killed sweep resumes where it stopped. The pending
stages of a kind that groups (`StageKind.group_of`, the evaluations of one test setting) go to
its `run_group` together, `cluster.eval_group_size` stages at most per task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any

from tqdm import tqdm

from sweep.engine.cluster import capped_placement, start_ray
from sweep.errors import SweepError
from sweep.options import ClusterOptions, ray_loader_workers
from sweep.stages.graph import Plan
from sweep.stages.kind import ResourceNeeds, Stage, StageContext, StageKind
from sweep.stages.shards import shard_key
from sweep.stages.table import STAGE_KINDS

log = logging.getLogger(__name__)


class SweepFailedError(SweepError):
    """Some stages failed after their retries; every finished stage stays in the store."""


def kind_of(stage: Stage) -> StageKind:
    return STAGE_KINDS[stage.kind]


def is_done(context: StageContext, stage: Stage) -> bool:
    return context.store.is_done(stage.kind, stage.key)


def pending_shards(context: StageContext, stage: Stage) -> list[int]:
    """The unfinished shards of a sharded stage ([] for a stage of a kind without shards)."""
    folder = kind_of(stage).shard_folder
    if folder is None:
        return []
    return [
        index
        for index in range(len(stage.shards))
        if not context.store.is_done(folder, shard_key(stage, index))
    ]


# Each unfinished stage with its unfinished shards, looked up in the store once per run.
Pending = list[tuple[Stage, list[int]]]


def work_units(pending: Pending, group_size: int) -> list[Pending]:
    """The pending stages as the tasks that run them, in order: one stage each, except that
    the stages of a kind that groups go to one task per group, `group_size` at most each (in
    the order of the plan, a task where its group's first stage was)."""
    units: list[Pending] = []
    open_groups: dict[tuple[str, Hashable], Pending] = {}
    for stage, shards in pending:
        kind = kind_of(stage)
        if not kind.grouped:
            units.append([(stage, shards)])
            continue
        group = (kind.name, kind.group_of(stage))
        members = open_groups.get(group)
        if members is None or len(members) >= group_size:
            members = open_groups[group] = []
            units.append(members)
        members.append((stage, shards))
    return units


class Progress:
    """One bar per stage kind of the plan: images for sharded kinds, stages for the others."""

    def __init__(self, enabled: bool, totals: dict[StageKind, int]) -> None:
        self.bars = {
            kind.name: tqdm(
                total=total,
                desc=f"{kind.bar:<8}",
                unit=kind.unit,
                position=position,
                disable=not enabled,
                leave=True,
                dynamic_ncols=True,
            )
            for position, (kind, total) in enumerate(totals.items())
        }

    def advance(self, kind: str, amount: int = 1) -> None:
        if kind in self.bars:
            self.bars[kind].update(amount)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def progress_totals(plan: Plan, pending: Pending) -> dict:
    """The work left per kind of the plan (every kind of the plan gets a bar)."""
    totals = {STAGE_KINDS[name]: 0 for name in STAGE_KINDS if plan.of_kind(name)}
    for stage, shards in pending:
        kind = kind_of(stage)
        if kind.sharded:
            totals[kind] += sum(len(plan.shard_items(stage, index)) for index in shards)
        else:
            totals[kind] += 1
    return totals


def set_torch_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def execute(
    plan: Plan,
    context: StageContext,
    cluster: ClusterOptions,
    show_progress: bool,
    stop_on_failure: bool = False,
) -> None:
    """Runs the plan's unfinished stages; does nothing (and starts no Ray) when none are.

    With stop_on_failure the first failed task cancels the others (data.on_error=fail).
    """
    pending = [
        (stage, pending_shards(context, stage))
        for stage in plan.in_order(STAGE_KINDS)
        if not is_done(context, stage)
    ]
    if not pending:
        kinds = ", ".join(name for name in STAGE_KINDS if plan.of_kind(name))
        log.info("every %s stage is already finished: nothing to run", kinds)
        return
    progress = Progress(show_progress, progress_totals(plan, pending))
    try:
        if cluster.mode == "inline":
            units = work_units(pending, cluster.eval_group_size)
            run_inline(plan, context, units, progress, cluster.torch_threads)
        else:
            run_on_ray(plan, context, pending, progress, cluster, stop_on_failure)
    finally:
        progress.close()


def run_inline(
    plan: Plan,
    context: StageContext,
    units: list[Pending],
    progress: Progress,
    threads: int | None,
) -> None:
    """Every pending stage in this process, in the table's order, task by task (`work_units`)."""
    if any(kind_of(stage).uses_torch for unit in units for stage, _ in unit):
        set_torch_threads(threads)
    for unit in units:
        stage, shards = unit[0]
        kind = kind_of(stage)
        if kind.grouped:
            kind.run_group(context, [member for member, _ in unit])
            progress.advance(kind.name, len(unit))
        elif kind.sharded:
            for index in shards:
                items = plan.shard_items(stage, index)
                kind.shard(context, stage, index, items)
                progress.advance(kind.name, len(items))
            kind.run(context, stage)
        else:
            kind.run(context, stage)
            progress.advance(kind.name)


def _in_ray_task(function: Callable, threads: int | None) -> Callable:
    def run(*args):
        set_torch_threads(threads)
        return function(*args)

    # Ray names tasks (process titles, dashboard, errors) after the function.
    run.__name__ = run.__qualname__ = function.__name__
    return run


def run_on_ray(
    plan: Plan,
    context: StageContext,
    pending: Pending,
    progress: Progress,
    cluster: ClusterOptions,
    stop_on_failure: bool,
) -> None:
    """Submits every pending stage to Ray with its dependencies, then waits for all of them."""
    import ray

    if not ray.is_initialized():
        start_ray(cluster)
    resources = ray.cluster_resources()
    # train.loader_workers=auto: one GPU's share of a node's cores (sweep/options.py).
    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    workers = context.options.loader_workers if context.options else 0
    needs = ResourceNeeds(
        loader_workers=ray_loader_workers(workers, nodes),
        has_gpu=resources.get("GPU", 0) > 0,
        eval_gpu_fraction=cluster.eval_gpu_fraction,
    )
    # The components go to the object store once; kinds that never touch torch get them
    # without the fields whose unpickling would import torch.
    contexts = {True: ray.put(context), False: ray.put(context.without_torch())}
    options = {"max_retries": cluster.max_retries, "retry_exceptions": False}
    pending_kinds = list(dict.fromkeys(kind_of(stage) for stage, _ in pending))
    # A joined cluster with cluster.num_cpus: every task inside a reservation of that many.
    placement = capped_placement(cluster, [k.resources(needs) for k in pending_kinds], resources)
    if placement is not None:
        options["scheduling_strategy"] = placement.strategy
    try:
        submit_and_wait(plan, pending, progress, cluster, stop_on_failure, needs, resources,
                        contexts, options, pending_kinds)  # fmt: skip
    finally:
        if placement is not None:
            placement.release()


def submit_and_wait(
    plan: Plan,
    pending: Pending,
    progress: Progress,
    cluster: ClusterOptions,
    stop_on_failure: bool,
    needs: ResourceNeeds,
    resources: dict,
    contexts: dict,
    options: dict,
    pending_kinds: list[StageKind],
) -> None:
    """Declares each pending kind's Ray tasks, submits every pending stage with its
    dependencies, and waits for all of them."""
    import ray

    tasks: dict[tuple[str, str], Any] = {}
    for kind in pending_kinds:
        wanted = kind.resources(needs)
        if wanted["num_cpus"] > resources.get("CPU", 0):
            raise SweepFailedError(
                f"a {kind.name} task needs {wanted['num_cpus']} CPUs (train.loader_workers="
                f"{needs.loader_workers} plus one) but the Ray cluster has "
                f"{resources.get('CPU', 0):g}: lower train.loader_workers"
            )
        threads = cluster.torch_threads if kind.uses_torch else None
        # A group's task asks what one stage's would (it runs one at a time). The roles and
        # their functions are the kind's `ray_workers`: the harness finds workers by them.
        for role, function in kind.ray_workers.items():
            remote = ray.remote(**options, **wanted)(_in_ray_task(function, threads))
            tasks[(kind.name, role)] = remote

    # Only unfinished stages are submitted; a stage waits on the references of the unfinished
    # stages it reads (finished ones are already in the store), a group on those of all its
    # stages, and every stage of a group stands for the group's task downstream.
    refs: dict[str, Any] = {}
    kinds: dict[Any, tuple[str, int]] = {}
    for unit in work_units(pending, cluster.eval_group_size):
        stage, shards = unit[0]
        kind = kind_of(stage)
        shared = contexts[kind.uses_torch]
        reads = dict.fromkeys(s.key for member, _ in unit for s in member.upstream())
        upstream = [refs[key] for key in reads if key in refs]
        if kind.grouped:
            members = [member for member, _ in unit]
            ref = tasks[(kind.name, "group")].remote(shared, members, *upstream)
            kinds[ref] = (kind.name, len(members))
            refs.update(dict.fromkeys((member.key for member in members), ref))
        elif kind.sharded:
            shard_refs = []
            for index in shards:
                items = plan.shard_items(stage, index)
                ref = tasks[(kind.name, "shard")].remote(shared, stage, index, items, *upstream)
                kinds[ref] = (kind.name, len(items))
                shard_refs.append(ref)
            refs[stage.key] = tasks[(kind.name, "run")].remote(shared, stage, *shard_refs)
            kinds[refs[stage.key]] = (kind.name, 0)
        else:
            refs[stage.key] = tasks[(kind.name, "run")].remote(shared, stage, *upstream)
            kinds[refs[stage.key]] = (kind.name, 1)
    wait_for_all(list(kinds), kinds, progress, stop_on_failure)


def wait_for_all(
    refs: list, kinds: dict, progress: Progress, stop_on_failure: bool = False
) -> None:
    """Advances the bars as tasks finish; raises SweepFailedError listing the failed tasks.

    With stop_on_failure the first failure cancels every task still queued or running.
    """
    import ray

    failures = []
    remaining = list(refs)
    while remaining:
        done, remaining = ray.wait(remaining, num_returns=1)
        kind, amount = kinds[done[0]]
        try:
            ray.get(done[0])
            progress.advance(kind, amount)
        except ray.exceptions.RayError as error:
            failures.append(f"{kind}: {describe_failure(error)}")
            log.error("a %s task failed: %s", kind, describe_failure(error))
            if stop_on_failure:
                for ref in remaining:
                    ray.cancel(ref, force=True)
                break
    if failures:
        unique = list(dict.fromkeys(failures))
        raise SweepFailedError(
            f"{len(failures)} task(s) failed; finished stages are kept, rerun to resume:\n  "
            + "\n  ".join(unique[:10])
        )


def describe_failure(error: Exception) -> str:
    cause = getattr(error, "cause", None)
    return f"{type(cause).__name__}: {cause}" if cause is not None else str(error).splitlines()[0]
