"""train.loader_workers: `auto` resolves from the task's CPUs; keys hold the option as written."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from sweep.config.build import build_sweep
from sweep.errors import OptionError
from sweep.options import (
    AUTO_WORKERS,
    MAX_AUTO_WORKERS,
    TrainOptions,
    loader_processes,
    ray_loader_workers,
    task_cpus,
)
from sweep.stages.kind import ResourceNeeds
from sweep.stages.train import KIND as TRAIN
from sweep.stages.train import result_options
from sweep.tasks.classification import ClassificationTask
from sweep.tasks.runtime import evaluation_loader, training_loader
from tests.conftest import CONFIG_DIR, compose_config

CPU, GPU = torch.device("cpu"), torch.device("cuda")


def fake_ray(monkeypatch, assigned: dict, task_id: str | None = "c8ef45") -> None:
    """A Ray worker process as `task_cpus` sees it: ray imported, a task holding `assigned`
    (task_id None: the driver, which runs no task)."""
    context = types.SimpleNamespace(
        get_task_id=lambda: task_id, get_assigned_resources=lambda: assigned
    )
    ray = types.SimpleNamespace(is_initialized=lambda: True, get_runtime_context=lambda: context)
    monkeypatch.setitem(sys.modules, "ray", ray)


def cores(monkeypatch, count: int) -> None:
    monkeypatch.delitem(sys.modules, "ray", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(count)))


@pytest.mark.parametrize("recipe", sorted(p.stem for p in (CONFIG_DIR / "train").glob("*.yaml")))
def test_every_training_recipe_defaults_to_auto(recipe, tmp_path):
    cfg = compose_config(f"train={recipe}", f"results_dir={tmp_path}")
    assert build_sweep(cfg, check_data=False).options.loader_workers == AUTO_WORKERS


@pytest.mark.parametrize("value", [0, 3])
def test_an_integer_is_kept_as_written(value, tmp_path):
    cfg = compose_config(f"train.loader_workers={value}", f"results_dir={tmp_path}")
    assert build_sweep(cfg, check_data=False).options.loader_workers == value


@pytest.mark.parametrize("value", ["-1", "many", "1.5", "true", "'4'", "null"])
def test_anything_else_is_refused_naming_the_option(value, tmp_path):
    cfg = compose_config(f"train.loader_workers={value}", f"results_dir={tmp_path}")
    with pytest.raises(OptionError) as raised:
        build_sweep(cfg, check_data=False)
    assert raised.value.option == "train.loader_workers"
    assert "auto" in str(raised.value) and ">= 0" in str(raised.value)


def test_an_integer_is_taken_as_written_everywhere(monkeypatch):
    cores(monkeypatch, 8)
    assert loader_processes(3, on_gpu=True) == loader_processes(3, on_gpu=False) == 3
    assert ray_loader_workers(5, [{"CPU": 16.0, "GPU": 1.0}]) == 5
    assert ray_loader_workers(0, []) == 0


def test_auto_on_the_cpu_decodes_in_the_training_process(monkeypatch):
    """CPU training is compute-bound in torch's threads: loader processes would take cores
    from it and from the trainings beside it."""
    cores(monkeypatch, 16)
    assert loader_processes(AUTO_WORKERS, on_gpu=False) == 0
    fake_ray(monkeypatch, {"CPU": 4.0})
    assert loader_processes(AUTO_WORKERS, on_gpu=False) == 0


def test_auto_on_a_gpu_uses_every_core_of_the_task_but_one(monkeypatch):
    cores(monkeypatch, 6)  # inline: the process's affinity
    assert task_cpus() == 6
    assert loader_processes(AUTO_WORKERS, on_gpu=True) == 5
    fake_ray(monkeypatch, {"CPU": 12.0, "GPU": 1.0})  # a Ray task: the CPUs it was given
    assert task_cpus() == 12
    assert loader_processes(AUTO_WORKERS, on_gpu=True) == 11
    fake_ray(monkeypatch, {"CPU": 1.0, "GPU": 1.0})
    assert loader_processes(AUTO_WORKERS, on_gpu=True) == 0
    # Ray's driver (a sweep with Ray started, evaluating in process): the affinity.
    fake_ray(monkeypatch, {}, task_id=None)
    assert task_cpus() == 6


def test_auto_is_capped(monkeypatch):
    cores(monkeypatch, 128)
    assert loader_processes(AUTO_WORKERS, on_gpu=True) == MAX_AUTO_WORKERS
    assert ray_loader_workers(AUTO_WORKERS, [{"CPU": 128.0, "GPU": 1.0}]) == MAX_AUTO_WORKERS


@pytest.mark.parametrize(
    ("nodes", "workers"),
    [
        ([], 0),
        ([{"CPU": 32.0}], 0),  # no GPU: one core per training
        ([{"CPU": 16.0, "GPU": 1.0}], 15),
        ([{"CPU": 64.0, "GPU": 8.0}], 7),
        ([{"CPU": 30.0, "GPU": 4.0}], 6),  # 7.5 cores per GPU: 7
        ([{"CPU": 2.0, "GPU": 4.0}], 0),
        # The node with the fewest cores per GPU sets it; CPU-only nodes do not count.
        ([{"CPU": 64.0, "GPU": 8.0}, {"CPU": 16.0, "GPU": 1.0}, {"CPU": 96.0}], 7),
    ],
)
def test_auto_on_ray_asks_for_one_gpus_share_of_its_node(nodes, workers):
    assert ray_loader_workers(AUTO_WORKERS, nodes) == workers


def test_a_training_on_auto_asks_for_its_gpus_share_of_the_cores():
    needs = ResourceNeeds(
        loader_workers=ray_loader_workers(AUTO_WORKERS, [{"CPU": 16.0, "GPU": 1.0}]),
        has_gpu=True,
    )
    assert TRAIN.resources(needs) == {"num_cpus": 16, "num_gpus": 1}


def test_the_key_holds_the_option_as_written_never_the_resolved_number(monkeypatch):
    task = ClassificationTask()
    # An integer enters the key as it always did: keys of existing configs do not change.
    for workers in (0, 2, 4):
        assert result_options(task, TrainOptions(loader_workers=workers))["loader_workers"] == (
            workers
        )
    keys = set()
    for count in (2, 16, 64):
        cores(monkeypatch, count)
        train = result_options(task, TrainOptions(loader_workers=AUTO_WORKERS))
        keys.add(TRAIN.key(**dict.fromkeys(TRAIN.key_fields, "x") | {"train": train}))
        assert train["loader_workers"] == AUTO_WORKERS
    assert len(keys) == 1


def test_the_loaders_resolve_auto(monkeypatch):
    cores(monkeypatch, 8)
    dataset = torch.utils.data.TensorDataset(torch.arange(10))
    options = TrainOptions(loader_workers=AUTO_WORKERS, batch_size=4)
    loader = training_loader(dataset, options, torch.Generator().manual_seed(0), CPU)
    assert loader.num_workers == 0 and not loader.persistent_workers
    assert evaluation_loader(dataset, 4, options, CPU).num_workers == 0
    # On a GPU (the loader is built, not iterated, so no GPU is needed here).
    loader = training_loader(dataset, options, torch.Generator().manual_seed(0), GPU)
    assert loader.num_workers == 7 and loader.persistent_workers
    assert evaluation_loader(dataset, 4, options, GPU).num_workers == 7
    explicit = TrainOptions(loader_workers=2, batch_size=4)
    assert evaluation_loader(dataset, 4, explicit, CPU).num_workers == 2
