"""From a composed Hydra config to a validated sweep and the experiment it runs.

Every user mistake becomes an OptionError that names the option and what would be valid; the
entry point prints it and exits with code 2, before any work. Components (codec, dataset
reader, task kind, model family, experiment) are instantiated here from their `_target_` and
never see the config object.
"""

from __future__ import annotations

import importlib
import logging
import re
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from sweep.analysis.bootstrap import BootstrapOptions
from sweep.analysis.recommendation import RecommendOptions
from sweep.codecs.base import ORIGINAL, grid_settings
from sweep.config.environment import check_inputs, check_tracking, model_as_loaded
from sweep.config.values import (
    ON_ERROR_CHOICES,
    choice,
    cluster_options,
    distortion_options,
    flag,
    folder_name,
    local_dir_of,
    lock_wait,
    seeds_of,
    self_checked_options,
    sensitivity_section,
    store_of,
    tracking_options,
    train_grid,
    train_options,
)
from sweep.errors import OptionError
from sweep.models.base import ModelFamily
from sweep.models.resized import with_resizer
from sweep.options import TrainOptions
from sweep.sensitivity.options import TASK_KIND as SENSITIVITY_TASK_KIND
from sweep.session.experiment import Experiment, Session
from sweep.spec import Sweep
from sweep.store.objects import is_url
from sweep.tasks.base import TaskKind

log = logging.getLogger(__name__)

# What `dry_run=true` wraps the experiment in (sweep/experiments/bill/).
BILL_TARGET = "sweep.experiments.bill.experiment.BillExperiment"
# The built-in demo task of each task kind, named in errors.
DEMO_TASKS = {"classification": "demo", "detection": "demo_det", "segmentation": "demo_seg"}


@dataclass
class Launch:
    """What the entry point runs: an experiment, on its session."""

    session: Session
    experiment: Experiment

    def run(self) -> int:
        """Runs the experiment; returns its exit code."""
        return self.experiment.run(self.session)


def build_launch(cfg: DictConfig, check_data: bool = True) -> Launch:
    """The sweep and the experiment of a composed config (`experiment=`, wrapped in the bill
    with `dry_run=true`), checked; raises OptionError before any work (`check_data`: see
    `build_sweep`)."""
    sweep = build_sweep(cfg, check_data)
    # After the sweep: an experiment's module loads the report and the engine, seconds that
    # a refusal of the sweep's options, data or weights need not wait for.
    experiment = build_experiment(cfg)
    return Launch(Session(sweep, rebuild=rebuild_sweep), experiment.bind(sweep))


def build_experiment(cfg: DictConfig) -> Experiment:
    """The experiment the `experiment` group names, and with `dry_run=true` its bill."""
    node = cfg.get("experiment")
    if node is None or "_target_" not in node:
        raise OptionError(
            "names no experiment: choose one of conf/experiment/ (experiment=grid, budget, "
            "nightly, sensitivity_maps)",
            option="experiment",
        )
    experiment = instantiate_component("experiment", node)
    if not isinstance(experiment, Experiment):
        raise OptionError(
            f"{node._target_} is not an Experiment (see sweep/session/experiment.py for what "
            f"one provides)",
            option="experiment._target_",
        )
    if flag("dry_run", cfg.get("dry_run", False)):
        calibrate = flag("dry_run_calibrate", cfg.get("dry_run_calibrate", True))
        # Built by its _target_ like every experiment: the bill's modules load for a dry run.
        bill = instantiate({"_target_": BILL_TARGET, "_partial_": True, "calibrate": calibrate})
        return bill(experiment)
    return experiment


def importable(target: str) -> Any:
    """The class a dotted `_target_` names, or None when it cannot be imported (Hydra's own
    instantiation then says why)."""
    module, _, name = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


def rebuild_sweep(config_yaml: str) -> Sweep:
    """The sweep of a config.yaml a sweep stored (its report's, or a deferred-logging
    marker's), validated as on its first run."""
    return build_sweep(OmegaConf.create(config_yaml))


def build_sweep(cfg: DictConfig, check_data: bool = True) -> Sweep:
    """Validates the config and instantiates its components; raises OptionError.

    Args:
        cfg: The composed config.
        check_data: Also check the dataset folder, the model weights and the tracking server
            (False when only the config itself is inspected, as in tests of composition).
    """
    if "root" in cfg.task.keys() and OmegaConf.is_missing(cfg.task, "root"):
        raise OptionError(
            "is required: the dataset folder, e.g. task.root=/data/food-101", option="task.root"
        )
    try:
        OmegaConf.resolve(cfg)
        missing = sorted(OmegaConf.missing_keys(cfg))
    except MissingMandatoryValue as error:
        # An interpolation of a missing value: the message names the missing one.
        found = re.search(r"Missing mandatory value: ([\w.]+)", str(error))
        missing = [found.group(1) if found else error.full_key]
    if missing:
        raise OptionError("is required", option=missing[0])
    results_dir = local_dir_of(cfg)
    codec = instantiate_component("codec", cfg.codec)
    train_settings, mixed_settings = train_grid(cfg.grid, codec)
    reader = instantiate_component("task.reader", cfg.task.reader)
    model = model_family(cfg.model)
    store = store_of(cfg)
    if check_data:  # before the task kind: missing data or weights are refused at once
        check_inputs(store, reader, model)
    sweep = Sweep(
        task_name=str(cfg.task.name),
        task=instantiate_component("task.kind", cfg.task.kind),
        reader=reader,
        model=model,
        codec=codec,
        train_settings=train_settings,
        mixed_settings=mixed_settings,
        test_settings=grid_settings("grid.test", cfg.grid.test, codec),
        options=train_options(cfg.train),
        seed=seeds_of(cfg)[0],
        seeds=seeds_of(cfg),
        results_dir=results_dir,
        results_url=str(cfg.results_dir) if is_url(cfg.results_dir) else None,
        store=store,
        cluster=cluster_options(cfg.cluster),
        tracking=tracking_options(cfg.tracking),
        progress=bool(cfg.progress),
        on_error=choice("data.on_error", cfg.data.on_error, ON_ERROR_CHOICES),
        config_yaml=OmegaConf.to_yaml(cfg),
        distortion=distortion_options(cfg.get("distortion")),
        sensitivity=sensitivity_section(cfg.get("sensitivity")),
        intervals=self_checked_options(BootstrapOptions, "intervals", cfg.get("intervals")),
        recommend=self_checked_options(RecommendOptions, "recommend", cfg.get("recommend")),
        lock_wait=lock_wait(cfg.get("lock_wait", 0)),
    )
    _check_contracts(sweep)
    folder_name("task.name", sweep.task_name)
    folder_name("model.name", sweep.model.name)
    folder_name("codec.name", sweep.codec.name)
    task_kind = sweep.task.kind
    if sweep.model.task_kind != task_kind:
        raise OptionError(
            f"{sweep.model.name} is a {sweep.model.task_kind} model but task="
            f"{sweep.task_name} is {task_kind}: choose a {task_kind} model (each task picks "
            f"one by default when model= is left out), or a {sweep.model.task_kind} task "
            f"such as task={DEMO_TASKS.get(sweep.model.task_kind, 'demo')}",
            option="model",
        )
    if sweep.options.epochs == 0 and sweep.train_settings != [ORIGINAL]:
        # train=none: one model, as loaded, whatever the train split is encoded at.
        log.info(
            "train=none (train.epochs=0) evaluates the model as loaded: grid.train %s is "
            "ignored, the train axis is the one model",
            sweep.train_settings,
        )
        sweep.train_settings = [ORIGINAL]
    _check_tuning_map(sweep)
    if check_data:
        check_tracking(sweep.tracking)
        if sweep.options.epochs == 0:
            sweep.model = model_as_loaded(sweep)
    return sweep


def _check_contracts(sweep: Sweep) -> None:
    """The `_target_` of task.kind and model must name classes of the two contracts."""
    for option, component, contract in (
        ("task.kind", sweep.task, TaskKind),
        ("model", sweep.model, ModelFamily),
    ):
        if not isinstance(component, contract):
            raise OptionError(
                f"{type(component).__module__}.{type(component).__qualname__} is not a "
                f"{contract.__name__} (see {contract.__module__.replace('.', '/')}.py for "
                f"what one provides)",
                option=f"{option}._target_",
            )
    # A task kind's own training options must exist: they enter its training keys.
    known = {field.name for field in fields(TrainOptions)}
    unknown = [name for name in sweep.task.option_fields if name not in known]
    if unknown:
        raise OptionError(
            f"{type(sweep.task).__qualname__}.option_fields names {unknown}, which are not "
            f"train options (sweep/options.py TrainOptions: {sorted(known)})",
            option="task.kind._target_",
        )


def _check_tuning_map(sweep: Sweep) -> None:
    """A codec tuned to a sensitivity map the sweep measures needs a classifier to measure,
    on the chroma grid the codec quantises."""
    codec = sweep.codec
    if not codec.needs_sensitivity_map:
        return
    if sweep.task.kind != SENSITIVITY_TASK_KIND:
        raise OptionError(
            f"codec={codec.name} measures its map on a classifier, and task={sweep.task_name} "
            f"is {sweep.task.kind}: give a map file of a classifier, codec.map=<map.json> (the "
            f"sensitivity/ folder of a classification sweep's report holds them)",
            option="codec.map",
        )
    if getattr(codec, "subsampling", None) == "422":
        raise OptionError(
            "4:2:2 has no measured sensitivity map (maps are 4:2:0 or 4:4:4): use 4:2:0 or "
            "4:4:4, or give codec.map=<map.json>",
            option="codec.subsampling",
        )


def model_family(node: DictConfig) -> ModelFamily:
    """The model family, behind the resizer its yaml names (`model.resizer`, RGB classifiers
    only; see sweep/models/resized.py)."""
    values = OmegaConf.to_container(node, resolve=True)
    kind = values.pop("resizer", "none")
    options = values.pop("resizer_options", None) or {}
    family = instantiate_component("model", values)
    try:
        return with_resizer(family, str(kind), options)
    except OptionError as error:
        raise error.under("model.resizer") from None


def instantiate_component(option: str, node: DictConfig | dict) -> Any:
    """The component a config node's `_target_` names, built with the node's keyword
    arguments; every failure an OptionError under `option`. For a dataclass, a key that is
    none of its fields is named as an unknown option."""
    values = node if isinstance(node, dict) else OmegaConf.to_container(node, resolve=True)
    target = values.get("_target_") if isinstance(values, dict) else None
    component = importable(target) if isinstance(target, str) else None
    if component is not None and is_dataclass(component):
        known = [field.name for field in fields(component) if field.init]
        unknown = sorted(set(values) - set(known) - {"_target_", "_convert_"})
        if unknown:
            raise OptionError(f"unknown option; known: {known}", option=f"{option}.{unknown[0]}")
    try:
        return instantiate(node, _convert_="all")
    except InstantiationException as error:
        cause = error.__cause__ or error
        if isinstance(cause, OptionError):
            raise cause.under(option) from None
        raise OptionError(str(cause), option=option) from None
