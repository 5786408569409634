"""From a composed Hydra config to validated components, before any work starts.

Every user mistake becomes an OptionError that names the option and what would be valid; the
entry point prints it and exits with code 2. Components are instantiated here from their
`_target_` and never see the config object.
"""

from __future__ import annotations

import logging
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, fields, replace
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from sweep.analysis.bootstrap import BootstrapOptions
from sweep.analysis.recommendation import RecommendOptions
from sweep.codecs.base import MIXED, ORIGINAL, Codec, SettingError
from sweep.data.base import DatasetError, DatasetReader
from sweep.distortion import MEASURES, DistortionOptions
from sweep.distortion import SPLITS as MEASURE_SPLITS
from sweep.distortion.sampling import ALL as MEASURE_ALL
from sweep.errors import OptionError
from sweep.experiments.options import (
    BudgetOptions,
    NightlyOptions,
    experiment_options,
    nightly_options,
)
from sweep.models.errors import ModelUnavailableError
from sweep.options import AMP_CHOICES, AUTO_WORKERS, ClusterOptions, TrackingOptions, TrainOptions
from sweep.sensitivity.options import TASK_KIND as SENSITIVITY_TASK_KIND
from sweep.sensitivity.options import SensitivityOptions, sensitivity_options
from sweep.store import ArtifactStore, StoreError

if TYPE_CHECKING:  # the task kinds import torch; this module is imported by every worker
    from sweep.models.base import ModelFamily
    from sweep.tasks.base import TaskKind

log = logging.getLogger(__name__)

CLUSTER_MODES = ("ray", "inline")
# The built-in demo task of each task kind, named in errors.
DEMO_TASKS = {"classification": "demo", "detection": "demo_det", "segmentation": "demo_seg"}
ON_ERROR_CHOICES = ("quarantine", "fail")
# tracking.on_unreachable: an MLflow server that cannot be reached fails the run, or the run
# goes on and its logging is deferred to the next run (sweep/tracking_pending.py).
ON_UNREACHABLE_CHOICES = ("fail", "defer")
# URI schemes MLflow 3 accepts for its tracking store (the plain file store is refused).
TRACKING_SCHEMES = ("sqlite:///", "postgresql://", "mysql://", "http://", "https://", "databricks")


@dataclass
class Sweep:
    """Everything a sweep needs, validated."""

    task_name: str
    task: TaskKind
    reader: DatasetReader
    model: ModelFamily
    codec: Codec
    train_settings: list[str]
    test_settings: list[str]
    options: TrainOptions
    seed: int
    results_dir: Path
    store: ArtifactStore
    cluster: ClusterOptions
    tracking: TrackingOptions
    progress: bool
    on_error: str
    config_yaml: str
    # Measured distortion of the encoded images (PSNR, SSIM, SSIMULACRA 2, Butteraugli).
    distortion: DistortionOptions = dataclass_field(default_factory=DistortionOptions)
    # DCT sensitivity maps of the trained classifiers.
    sensitivity: SensitivityOptions = dataclass_field(default_factory=SensitivityOptions)
    # The trainings' seeds (`seeds`, or the one `seed`); the first is `seed`.
    seeds: list[int] = dataclass_field(default_factory=lambda: [0])
    # The paired bootstrap over test images behind every interval (sweep/analysis/).
    intervals: BootstrapOptions = dataclass_field(default_factory=BootstrapOptions)
    # The recommendation's threshold: the share of original/original to keep.
    recommend: RecommendOptions = dataclass_field(default_factory=RecommendOptions)
    # None: the train x test grid; BudgetOptions: the storage-budget experiment.
    budget: BudgetOptions | None = None
    # With `mixed` among the train settings: the settings it draws each image from.
    mixed_settings: tuple[str, ...] = ()
    # None: a plain run; NightlyOptions: the grid as a nightly job (sweep/experiments/nightly.py).
    nightly: NightlyOptions | None = None
    # Seconds to wait for another driver holding results_dir's lock (sweep/engine/lock.py).
    lock_wait: float = 0.0
    # Print the bill of the plan and run nothing (sweep/bill.py); time this machine for it.
    dry_run: bool = False
    dry_run_calibrate: bool = True


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
    results_dir = Path(cfg.results_dir).absolute()
    codec = _instantiate("codec", cfg.codec)
    train_settings, mixed_settings = train_grid(cfg.grid, codec)
    sweep = Sweep(
        task_name=str(cfg.task.name),
        task=_instantiate("task.kind", cfg.task.kind),
        reader=_instantiate("task.reader", cfg.task.reader),
        model=model_family(cfg.model),
        codec=codec,
        train_settings=train_settings,
        mixed_settings=mixed_settings,
        test_settings=grid_settings("grid.test", cfg.grid.test, codec),
        options=train_options(cfg.train),
        seed=seeds_of(cfg)[0],
        seeds=seeds_of(cfg),
        results_dir=results_dir,
        store=_store(results_dir),
        cluster=cluster_options(cfg.cluster),
        tracking=tracking_options(cfg.tracking),
        progress=bool(cfg.progress),
        on_error=_choice("data.on_error", cfg.data.on_error, ON_ERROR_CHOICES),
        config_yaml=OmegaConf.to_yaml(cfg),
        distortion=distortion_options(cfg.get("distortion")),
        sensitivity=_sensitivity_options(cfg.get("sensitivity")),
        intervals=_checked_options(BootstrapOptions, "intervals", cfg.get("intervals")),
        recommend=_checked_options(RecommendOptions, "recommend", cfg.get("recommend")),
        budget=_budget_options(cfg.get("experiment"), codec),
        nightly=_nightly_options(cfg.get("experiment")),
        lock_wait=_lock_wait(cfg.get("lock_wait", 0)),
        dry_run=_flag("dry_run", cfg.get("dry_run", False)),
        dry_run_calibrate=_flag("dry_run_calibrate", cfg.get("dry_run_calibrate", True)),
    )
    _check_contracts(sweep)
    _check_name("task.name", sweep.task_name)
    _check_name("model.name", sweep.model.name)
    _check_name("codec.name", sweep.codec.name)
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
        check_environment(sweep)
        if sweep.options.epochs == 0:
            sweep.model = model_as_loaded(sweep)
    return sweep


def _check_contracts(sweep: Sweep) -> None:
    """The `_target_` of task.kind and model must name classes of the two contracts."""
    from sweep.models.base import ModelFamily
    from sweep.tasks.base import TaskKind

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


def check_environment(sweep: Sweep) -> None:
    """Checks what lies outside the config: results folder, dataset, weights, server."""
    try:
        sweep.store.check_writable()
    except StoreError as error:
        raise OptionError(str(error), option="results_dir") from None
    try:
        sweep.reader.prepare()
        for split in ("train", "test"):
            sweep.reader.items(split)
    except DatasetError as error:
        raise error.under("task.root") from None
    try:
        sweep.model.check_available()
    except ModelUnavailableError as error:
        raise OptionError(str(error), option="model") from None
    if sweep.tracking.enabled:
        try:
            check_tracking_server(sweep.tracking.uri)
        except OptionError as error:
            if sweep.tracking.on_unreachable != "defer":
                raise
            log.warning("%s; tracking.on_unreachable=defer: the sweep runs, logging waits", error)


def model_as_loaded(sweep: Sweep) -> ModelFamily:
    """train=none: the model family keeping its pretrained head, mapped to the classes."""
    try:
        return sweep.model.as_loaded(sweep.reader.class_names())
    except OptionError as error:
        raise error.under("train") from None
    except ModelUnavailableError as error:  # the head is read from the weight file
        raise OptionError(str(error), option="model") from None


def model_family(node: DictConfig) -> ModelFamily:
    """The model family, behind the resizer its yaml names (`model.resizer`, RGB classifiers
    only; see sweep/models/resized.py)."""
    from sweep.models.resized import with_resizer

    values = OmegaConf.to_container(node, resolve=True)
    kind = values.pop("resizer", "none")
    options = values.pop("resizer_options", None) or {}
    family = _instantiate("model", values)
    try:
        return with_resizer(family, str(kind), options)
    except OptionError as error:
        raise error.under("model.resizer") from None


def _instantiate(option: str, node: DictConfig | dict) -> Any:
    try:
        return instantiate(node, _convert_="all")
    except InstantiationException as error:
        cause = error.__cause__ or error
        if isinstance(cause, OptionError):
            raise cause.under(option) from None
        raise OptionError(str(cause), option=option) from None


def _options(cls: type, option: str, node: DictConfig) -> Any:
    """Builds an options dataclass; unknown keys and wrong types name the option."""
    allowed = [field.name for field in fields(cls)]
    values = OmegaConf.to_container(node)
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise OptionError(f"unknown option; known: {allowed}", option=f"{option}.{unknown[0]}")
    for field in fields(cls):
        value = values.get(field.name)
        expected = {"int": int, "float": (int, float), "bool": bool}.get(
            str(field.type).split(" |")[0]
        )
        if (
            value is not None
            and expected
            and (
                not isinstance(value, expected)
                or (expected is not bool and isinstance(value, bool))
            )
        ):
            raise OptionError(
                f"must be {field.type}, got {value!r}", option=f"{option}.{field.name}"
            )
    return cls(**values)


def _check_name(option: str, name: str) -> str:
    """Names become folder names: letters, digits, '.', '_' and '-' only."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(name)) or ".." in str(name):
        raise OptionError(
            f"'{name}' may hold only letters, digits, '.', '_' and '-'", option=option
        )
    return str(name)


def _store(results_dir: Path) -> ArtifactStore:
    try:
        return ArtifactStore(results_dir / "store")
    except StoreError as error:
        raise OptionError(str(error), option="results_dir") from None


def grid_settings(option: str, value: Any, codec: Codec) -> list[str]:
    """`all` or a list of the codec's settings, canonical, without duplicates, with original."""
    if value == "all":
        return codec.sweep_settings()
    if not isinstance(value, ListConfig | list | tuple) or len(value) == 0:
        raise OptionError(
            f"must be 'all' or a non-empty list of settings, got {value!r}", option=option
        )
    try:
        settings = [codec.parse_setting(setting) for setting in value]
    except SettingError as error:
        raise OptionError(str(error), option=option) from None
    duplicated = sorted({s for s in settings if settings.count(s) > 1})
    if duplicated:
        raise OptionError(f"lists {duplicated} more than once", option=option)
    if ORIGINAL not in settings:
        raise OptionError(
            "must include 'original': relative metrics divide by the original cell", option=option
        )
    return settings


def train_grid(grid: DictConfig, codec: Codec) -> tuple[list[str], tuple[str, ...]]:
    """grid.train's settings, `mixed` last if listed, and the settings `mixed` draws from:
    grid.mixed, or (when null) every other train setting. A mix reads encodes the sweep
    already has, so its settings must be train settings too."""
    value = grid.train
    listed = isinstance(value, ListConfig | list | tuple) and MIXED in value
    if not listed:
        return grid_settings("grid.train", value, codec), ()
    settings = grid_settings("grid.train", [s for s in value if s != MIXED], codec)
    chosen = grid.get("mixed")
    if chosen is None:
        mix = list(settings)
    elif not isinstance(chosen, ListConfig | list | tuple):
        raise OptionError(f"must be a list of train settings, got {chosen!r}", option="grid.mixed")
    else:
        try:
            mix = list(dict.fromkeys(codec.parse_setting(setting) for setting in chosen))
        except SettingError as error:
            raise OptionError(str(error), option="grid.mixed") from None
        absent = [s for s in mix if s not in settings]
        if absent:
            raise OptionError(
                f"{absent} not in grid.train {settings}: a mix draws from the train split's "
                "encodes, so add them to grid.train",
                option="grid.mixed",
            )
    if len(mix) < 2:
        raise OptionError(
            f"needs two or more settings to draw from, got {mix}", option="grid.mixed"
        )
    return [*settings, MIXED], tuple(mix)


def train_options(node: DictConfig) -> TrainOptions:
    decode_cache = node.get("decode_cache", False)
    if not isinstance(decode_cache, bool):
        raise OptionError(
            f"must be true (decode each train setting's images once into a cache of pixels "
            f"that its trainings read, ~H*W*3 bytes an image) or false, got {decode_cache!r}",
            option="train.decode_cache",
        )
    options = _options(TrainOptions, "train", node)
    # 0 epochs: the model is evaluated as loaded (train=none).
    _integer("train.epochs", options.epochs, minimum=0)
    for name in ("batch_size", "eval_batch_size"):
        _integer(f"train.{name}", getattr(options, name), minimum=1)
    _integer_or_word(
        "train.loader_workers", options.loader_workers, AUTO_WORKERS, 0,
        f"{AUTO_WORKERS} (from the CPUs each task gets) or an integer >= 0",
    )  # fmt: skip
    if not options.lr > 0:
        raise OptionError(f"must be positive, got {options.lr}", option="train.lr")
    if options.weight_decay < 0:
        raise OptionError(f"must be >= 0, got {options.weight_decay}", option="train.weight_decay")
    if not 0 <= options.warmup_fraction < 1:
        raise OptionError(
            f"must be in [0, 1), got {options.warmup_fraction}", option="train.warmup_fraction"
        )
    if not 0 < options.min_crop_scale <= 1:
        raise OptionError(
            f"must be in (0, 1], got {options.min_crop_scale}", option="train.min_crop_scale"
        )
    if options.amp not in AMP_CHOICES:
        raise OptionError(f"'{options.amp}' is not one of {list(AMP_CHOICES)}", option="train.amp")
    return options


def cluster_options(node: DictConfig) -> ClusterOptions:
    options = _options(ClusterOptions, "cluster", node)
    if options.mode not in CLUSTER_MODES:
        raise OptionError(
            f"'{options.mode}' is not one of {list(CLUSTER_MODES)}", option="cluster.mode"
        )
    _integer("cluster.encode_shard_size", options.encode_shard_size, minimum=1)
    _integer("cluster.max_retries", options.max_retries, minimum=0)
    _integer("cluster.eval_group_size", options.eval_group_size, minimum=1)
    for name in ("num_cpus", "torch_threads"):
        if getattr(options, name) is not None:
            _integer(f"cluster.{name}", getattr(options, name), minimum=1)
    if not 0 < options.eval_gpu_fraction <= 1:
        raise OptionError("must be in (0, 1]", option="cluster.eval_gpu_fraction")
    return options


def distortion_options(node: DictConfig | None) -> DistortionOptions:
    """The `distortion` section: which splits' encodes are measured, on how many images, and
    by what."""
    if node is None:
        return DistortionOptions()
    options = _options(DistortionOptions, "distortion", node)
    if not isinstance(options.enabled, bool):
        raise OptionError(
            f"must be true or false, got {options.enabled!r}", option="distortion.enabled"
        )
    lists = {}
    for name, allowed in (("splits", MEASURE_SPLITS), ("measures", MEASURES)):
        value = getattr(options, name)
        if not isinstance(value, list | tuple) or (options.enabled and not value):
            raise OptionError(
                f"must be a non-empty list of {list(allowed)} (distortion.enabled=false turns "
                f"measuring off), got {value!r}",
                option=f"distortion.{name}",
            )
        unknown = [item for item in value if item not in allowed]
        if unknown:
            raise OptionError(
                f"'{unknown[0]}' is not one of {list(allowed)}", option=f"distortion.{name}"
            )
        if len(set(value)) != len(value):
            raise OptionError(
                f"lists an entry more than once: {value}", option=f"distortion.{name}"
            )
        lists[name] = tuple(value)
    sample = _integer_or_word(
        "distortion.sample", options.sample, MEASURE_ALL, 1,
        f"a number of images >= 1 (a seeded sample of each split) or '{MEASURE_ALL}' (every "
        "image)",
    )  # fmt: skip
    seed = _integer("distortion.seed", options.seed, minimum=0)
    return DistortionOptions(options.enabled, **lists, sample=sample, seed=seed)


def _checked_options(cls: type, option: str, node: DictConfig | None) -> Any:
    """An options dataclass that checks its own values (OptionError), errors under its name."""
    if node is None:
        return cls()
    try:
        return _options(cls, option, node)
    except OptionError as error:
        raise error.under(option) from None


def _budget_options(node: DictConfig | None, codec: Codec) -> BudgetOptions | None:
    """The `experiment` group: None for the grid, or the budget experiment's options with its
    settings in the codec's canonical form."""
    values = None if node is None else OmegaConf.to_container(node)
    try:
        options = experiment_options(values)
    except OptionError as error:
        raise error.under("experiment") from None
    if options is None or options.settings is None:
        return options
    settings = grid_settings("experiment.settings", list(options.settings), codec)
    return replace(options, settings=tuple(settings))


def _nightly_options(node: DictConfig | None) -> NightlyOptions | None:
    """The nightly run's options (`experiment=nightly`), None for the other experiments."""
    values = None if node is None else OmegaConf.to_container(node)
    try:
        return nightly_options(values)
    except OptionError as error:
        raise error.under("experiment") from None


def _lock_wait(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise OptionError(
            f"must be a number of seconds >= 0 (0: do not wait), got {value!r}", option="lock_wait"
        )
    return float(value)


def _sensitivity_options(node: DictConfig | None) -> SensitivityOptions:
    """The `sensitivity` group (sweep/sensitivity/options.py), errors under its option."""
    values = None if node is None else OmegaConf.to_container(node)
    try:
        return sensitivity_options(values)
    except OptionError as error:
        raise error.under("sensitivity") from None


def tracking_options(node: DictConfig) -> TrackingOptions:
    options = _options(TrackingOptions, "tracking", node)
    _choice("tracking.on_unreachable", options.on_unreachable, ON_UNREACHABLE_CHOICES)
    if not options.enabled:
        return options
    if not options.uri or not str(options.uri).startswith(TRACKING_SCHEMES):
        raise OptionError(
            f"'{options.uri}' is not an MLflow tracking URI MLflow 3 accepts: "
            f"use sqlite:///path/mlflow.db or http://host:port (or tracking=none)",
            option="tracking.uri",
        )
    if not options.experiment:
        raise OptionError("must name an MLflow experiment", option="tracking.experiment")
    return options


def check_tracking_server(uri: str, timeout: float = 5.0) -> None:
    """For a server URI, checks that an MLflow server answers before any work starts."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            pass
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise OptionError(
            f"no MLflow server answers at {uri} ({reason}): start it, fix the "
            f"address, or use tracking=local",
            option="tracking.uri",
        ) from None


def _flag(option: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise OptionError(f"must be true or false, got {value!r}", option=option)
    return value


def _choice(option: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise OptionError(f"'{value}' is not one of {list(choices)}", option=option)
    return value


def seeds_of(cfg: DictConfig) -> list[int]:
    """`seeds` (distinct integers >= 0, the first the seed of the figures and maps), or
    [`seed`] when it is null."""
    seeds = cfg.get("seeds")
    if seeds is None:
        return [_integer("seed", cfg.seed, minimum=0)]
    if not isinstance(seeds, ListConfig) or not seeds:
        raise OptionError(
            f"must be a non-empty list such as [0,1,2], got {seeds!r}", option="seeds"
        )
    values = [_integer("seeds", value, minimum=0) for value in seeds]
    if len(set(values)) != len(values):
        raise OptionError(f"lists a seed more than once: {values}", option="seeds")
    return values


def _integer_or_word(option: str, value: Any, word: str, minimum: int, allowed: str) -> Any:
    """An option that is either `word` (e.g. auto, all) or an integer >= minimum."""
    if value != word and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
        raise OptionError(f"must be {allowed}, got {value!r}", option=option)
    return value


def _integer(option: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise OptionError(f"must be an integer >= {minimum}, got {value!r}", option=option)
    return value
