"""Runs the unfinished stages of a plan: on Ray (local or a cluster) or in this process.

Ray schedules by data dependencies: a training receives its encode's result reference, an
evaluation receives its training's and its test encode's, so every stage starts as soon as its
inputs exist and the cores stay busy. Stages already DONE in the store are not submitted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sweep import stages
from sweep.config import ClusterOptions, ConfigError
from sweep.plan import DistortionStage, EncodeStage, SweepPlan, ValidateStage
from sweep.store import ArtifactStore
from sweep.tasks.options import TrainOptions

log = logging.getLogger(__name__)


class SweepFailedError(RuntimeError):
    """Some stages failed after their retries; every finished stage stays in the store."""


@dataclass
class SweepWork:
    """The plan and the components its stages need."""

    plan: SweepPlan
    store: ArtifactStore
    dataset_root: Path
    codec: Any
    task: Any
    model: Any
    options: TrainOptions
    seed: int

    def pending_encodes(self) -> list[EncodeStage]:
        return [s for s in self.plan.encodes.values() if not self.store.is_done("encode", s.key)]

    def pending_shards(self, stage: EncodeStage) -> list[int]:
        return [
            index
            for index in range(len(stage.shards))
            if not self.store.is_done(stages.SHARD_STAGE, stages.shard_key(stage, index))
        ]

    def pending_distortions(self) -> list[DistortionStage]:
        return [
            s for s in self.plan.distortions.values() if not self.store.is_done("distortion", s.key)
        ]

    def pending_measure_shards(self, stage: DistortionStage) -> list[int]:
        return [
            index
            for index in range(len(stage.shards))
            if not self.store.is_done(stages.DISTORTION_SHARD_STAGE, stages.shard_key(stage, index))
        ]

    def pending_trains(self):
        return [s for s in self.plan.trains.values() if not self.store.is_done("train", s.key)]

    def pending_evaluations(self):
        return [
            s for s in self.plan.evaluations.values() if not self.store.is_done("evaluate", s.key)
        ]

    def has_pending(self) -> bool:
        return bool(
            self.pending_encodes()
            or self.pending_distortions()
            or self.pending_trains()
            or self.pending_evaluations()
        )

    def shard_items(self, stage: EncodeStage | DistortionStage, index: int):
        start, stop = stage.shards[index]
        return self.plan.splits[stage.split][start:stop]


class Progress:
    """One bar per stage kind: validate, encode and measure (images), train (models),
    evaluate (cells)."""

    UNITS = {
        "validate": "img",
        "encode": "img",
        "measure": "img",
        "train": "model",
        "evaluate": "cell",
    }

    def __init__(self, enabled: bool, totals: dict[str, int]) -> None:
        self.bars = {
            name: tqdm(
                total=total,
                desc=f"{name:<8}",
                unit=self.UNITS[name],
                position=position,
                disable=not enabled,
                leave=True,
                dynamic_ncols=True,
            )
            for position, (name, total) in enumerate(totals.items())
        }

    def advance(self, kind: str, amount: int = 1) -> None:
        if kind in self.bars:
            self.bars[kind].update(amount)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def set_torch_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def run_inline(work: SweepWork, progress: Progress, threads: int | None) -> None:
    """Every pending stage in this process, in dependency order."""
    set_torch_threads(threads)
    for stage in work.pending_encodes():
        for index in work.pending_shards(stage):
            items = work.shard_items(stage, index)
            stages.encode_shard(work.store, stage, index, work.dataset_root, items, work.codec)
            progress.advance("encode", len(items))
        stages.finalize_encode(work.store, stage)
    num_classes = len(work.plan.class_names)
    for stage in work.pending_trains():
        stages.train_stage(
            work.store, stage, work.task, work.model, work.options, work.seed, num_classes
        )
        progress.advance("train")
    for stage in work.pending_evaluations():
        stages.evaluate_stage(work.store, stage, work.task, work.model, work.options, num_classes)
        progress.advance("evaluate")
    # Last: the measures are for the report, the trainings are the long pole.
    for stage in work.pending_distortions():
        for index in work.pending_measure_shards(stage):
            items = work.shard_items(stage, index)
            stages.measure_shard(work.store, stage, index, work.dataset_root, items, work.codec)
            progress.advance("measure", len(items))
        stages.finalize_distortion(work.store, stage)


def start_ray(cluster: ClusterOptions) -> None:
    """Starts a local Ray, or joins a cluster and ships this package to its workers."""
    import ray

    if not cluster.address:
        ray.init(num_cpus=cluster.num_cpus, include_dashboard=False, log_to_driver=True)
        return
    import sweep

    try:
        # The nodes need the pinned dependencies installed; the package travels with the job.
        ray.init(address=cluster.address, log_to_driver=True, runtime_env={"py_modules": [sweep]})
    except (ConnectionError, RuntimeError) as error:
        raise ConfigError(
            "cluster.address",
            f"cannot join the Ray cluster at '{cluster.address}' ({error}): start it with "
            f"`ray start --head`, fix the address, or use cluster=local",
        ) from None


def _in_ray_task(function: Callable, threads: int | None) -> Callable:
    def run(*args):
        set_torch_threads(threads)
        return function(*args)

    # Ray names tasks (process titles, dashboard, errors) after the function.
    run.__name__ = run.__qualname__ = function.__name__
    return run


def run_on_ray(work: SweepWork, progress: Progress, cluster: ClusterOptions) -> None:
    """Submits every pending stage to Ray with its dependencies, then waits for all of them."""
    import ray

    if not ray.is_initialized():
        start_ray(cluster)
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    retries = {"max_retries": cluster.max_retries, "retry_exceptions": False}

    def remote(function: Callable, torch_threads: int | None = None, **resources) -> Any:
        return ray.remote(**retries, **resources)(_in_ray_task(function, torch_threads))

    # Encode and measure tasks never touch torch: importing it to set its threads would cost
    # each worker seconds of start-up before its first image.
    encode_shard = remote(stages.encode_shard, num_cpus=1)
    finalize_encode = remote(stages.finalize_encode, num_cpus=1)
    measure_shard = remote(stages.measure_shard, num_cpus=1)
    finalize_distortion = remote(stages.finalize_distortion, num_cpus=1)
    # A training or evaluation reserves the cores of its data-loader processes too.
    loader_cpus = 1 + work.options.loader_workers
    cluster_cpus = ray.cluster_resources().get("CPU", 0)
    if loader_cpus > cluster_cpus:
        raise SweepFailedError(
            f"train.loader_workers={work.options.loader_workers} needs {loader_cpus} CPUs per "
            f"training but the Ray cluster has {cluster_cpus:g}: lower train.loader_workers"
        )
    threads = cluster.torch_threads
    train = remote(stages.train_stage, threads, num_cpus=loader_cpus, num_gpus=1 if has_gpu else 0)
    evaluate = remote(
        stages.evaluate_stage,
        threads,
        num_cpus=loader_cpus,
        num_gpus=cluster.eval_gpu_fraction if has_gpu else 0,
    )
    # Put the shared components in the object store once instead of once per task.
    store, codec, task, model = (
        ray.put(x) for x in (work.store, work.codec, work.task, work.model)
    )
    # Only unfinished stages are submitted; a stage waits on the references of the unfinished
    # stages it reads (finished ones are already in the store).
    kinds: dict[Any, tuple[str, int]] = {}
    encode_refs = {}
    for stage in work.pending_encodes():
        shard_refs = []
        for index in work.pending_shards(stage):
            items = work.shard_items(stage, index)
            ref = encode_shard.remote(store, stage, index, work.dataset_root, items, codec)
            kinds[ref] = ("encode", len(items))
            shard_refs.append(ref)
        encode_refs[stage.key] = finalize_encode.remote(store, stage, *shard_refs)
        kinds[encode_refs[stage.key]] = ("encode", 0)
    num_classes = len(work.plan.class_names)
    train_refs = {}
    for stage in work.pending_trains():
        upstream = [encode_refs[k] for k in [stage.encode.key] if k in encode_refs]
        train_refs[stage.key] = train.remote(
            store, stage, task, model, work.options, work.seed, num_classes, *upstream
        )
        kinds[train_refs[stage.key]] = ("train", 1)
    for stage in work.pending_evaluations():
        upstream = [train_refs[stage.train.key]] if stage.train.key in train_refs else []
        upstream += [encode_refs[k] for k in [stage.encode.key] if k in encode_refs]
        ref = evaluate.remote(store, stage, task, model, work.options, num_classes, *upstream)
        kinds[ref] = ("evaluate", 1)
    # Submitted last, so that free cores go to trainings first; each waits for its encode.
    for stage in work.pending_distortions():
        upstream = [encode_refs[k] for k in [stage.encode.key] if k in encode_refs]
        shard_refs = []
        for index in work.pending_measure_shards(stage):
            items = work.shard_items(stage, index)
            ref = measure_shard.remote(
                store, stage, index, work.dataset_root, items, codec, *upstream
            )
            kinds[ref] = ("measure", len(items))
            shard_refs.append(ref)
        kinds[finalize_distortion.remote(store, stage, *shard_refs)] = ("measure", 0)
    wait_for_all(list(kinds), kinds, progress)


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


def execute(work: SweepWork, cluster: ClusterOptions, show_progress: bool) -> None:
    """Runs all pending stages of the plan; does nothing (and starts no Ray) when none are."""
    if not work.has_pending():
        log.info("every stage is already finished: nothing to run")
        return
    pending = work.pending_encodes()
    images = sum(
        work.shard_items(stage, index).__len__()
        for stage in pending
        for index in work.pending_shards(stage)
    )
    measured = sum(
        len(work.shard_items(stage, index))
        for stage in work.pending_distortions()
        for index in work.pending_measure_shards(stage)
    )
    totals = {
        "encode": images,
        "train": len(work.pending_trains()),
        "evaluate": len(work.pending_evaluations()),
    }
    if work.plan.distortions:
        totals["measure"] = measured
    progress = Progress(show_progress, totals)
    try:
        if cluster.mode == "inline":
            run_inline(work, progress, cluster.torch_threads)
        else:
            run_on_ray(work, progress, cluster)
    finally:
        progress.close()


def validate_splits(
    store: ArtifactStore,
    stages_to_run: list[ValidateStage],
    splits: dict,
    dataset_root: Path,
    cluster: ClusterOptions,
    show_progress: bool,
    fail_fast: bool,
) -> None:
    """Runs the unfinished validation stages (the bad-image policy) of every split."""
    pending = [s for s in stages_to_run if not store.is_done("validate", s.key)]
    # A list for the order of work, a set for the membership test (millions of images).
    shards = [
        (stage, index)
        for stage in pending
        for index in range(len(stage.shards))
        if not store.is_done(stages.VALIDATE_SHARD_STAGE, stages.shard_key(stage, index))
    ]
    unfinished = set(shards)
    if not pending:
        return

    def items_of(stage: ValidateStage, index: int) -> list:
        start, stop = stage.shards[index]
        return splits[stage.split][start:stop]

    images = sum(len(items_of(stage, index)) for stage, index in shards)
    progress = Progress(show_progress, {"validate": images})
    try:
        if cluster.mode == "inline":
            for stage, index in shards:
                stages.validate_shard(
                    store, stage, index, dataset_root, items_of(stage, index), fail_fast
                )
                progress.advance("validate", len(items_of(stage, index)))
            for stage in pending:
                stages.finalize_validation(store, stage)
            return
        import ray

        if not ray.is_initialized():
            start_ray(cluster)
        options = {"max_retries": cluster.max_retries, "retry_exceptions": False, "num_cpus": 1}
        shard_task = ray.remote(**options)(_in_ray_task(stages.validate_shard, None))
        finalize = ray.remote(**options)(_in_ray_task(stages.finalize_validation, None))
        shared_store = ray.put(store)
        kinds: dict[Any, tuple[str, int]] = {}
        for stage in pending:
            refs = []
            for index in range(len(stage.shards)):
                if (stage, index) in unfinished:
                    items = items_of(stage, index)
                    ref = shard_task.remote(
                        shared_store, stage, index, dataset_root, items, fail_fast
                    )
                    kinds[ref] = ("validate", len(items))
                    refs.append(ref)
            kinds[finalize.remote(shared_store, stage, *refs)] = ("validate", 0)
        wait_for_all(list(kinds), kinds, progress, stop_on_failure=fail_fast)
    finally:
        progress.close()
