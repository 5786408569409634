"""The plain options of the composed config, checked: each bad value an OptionError that
names its option and what is allowed."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from sweep.codecs.base import MIXED, Codec, SettingError, grid_settings
from sweep.distortion import MEASURES, DistortionOptions
from sweep.distortion import SPLITS as MEASURE_SPLITS
from sweep.distortion.sampling import ALL as MEASURE_ALL
from sweep.errors import OptionError
from sweep.options import AMP_CHOICES, AUTO_WORKERS, ClusterOptions, TrackingOptions, TrainOptions
from sweep.sensitivity.options import SensitivityOptions, sensitivity_options
from sweep.store import ArtifactStore, StoreError, open_store
from sweep.store.cache import DEFAULT_CACHE_BYTES
from sweep.store.locations import join_location

CLUSTER_MODES = ("ray", "inline")
# The built-in demo task of each task kind, named in errors.
DEMO_TASKS = {"classification": "demo", "detection": "demo_det", "segmentation": "demo_seg"}
ON_ERROR_CHOICES = ("quarantine", "fail")
# tracking.on_unreachable: an MLflow server that cannot be reached fails the run, or the run
# goes on and its logging is deferred to the next run (sweep/tracking/deferred.py).
ON_UNREACHABLE_CHOICES = ("fail", "defer")
# URI schemes MLflow 3 accepts for its tracking store (the plain file store is refused).
TRACKING_SCHEMES = ("sqlite:///", "postgresql://", "mysql://", "http://", "https://", "databricks")


def dataclass_options(cls: type, option: str, node: DictConfig) -> Any:
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


def folder_name(option: str, name: str) -> str:
    """Names become folder names: letters, digits, '.', '_' and '-' only."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(name)) or ".." in str(name):
        raise OptionError(
            f"'{name}' may hold only letters, digits, '.', '_' and '-'", option=option
        )
    return str(name)


def store_of(cfg: DictConfig) -> ArtifactStore:
    """The artifact store under results_dir (a folder or an object-store URL), with each
    node's read cache as `store.cache_dir` and `store.cache_bytes` say."""
    section = cfg.get("store") or {}
    cache_bytes = integer("store.cache_bytes", section.get("cache_bytes", DEFAULT_CACHE_BYTES), 1)
    try:
        return open_store(
            join_location(str(cfg.results_dir), "store"), section.get("cache_dir"), cache_bytes
        )
    except StoreError as error:
        raise OptionError(str(error), option="results_dir") from None


def local_dir_of(cfg: DictConfig) -> Path:
    """This machine's own folder (`local_dir`: results_dir itself unless that is a URL)."""
    return Path(cfg.get("local_dir") or cfg.results_dir).absolute()


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
    options = dataclass_options(TrainOptions, "train", node)
    # 0 epochs: the model is evaluated as loaded (train=none).
    integer("train.epochs", options.epochs, minimum=0)
    for name in ("batch_size", "eval_batch_size"):
        integer(f"train.{name}", getattr(options, name), minimum=1)
    integer_or_word(
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
    options = dataclass_options(ClusterOptions, "cluster", node)
    if options.mode not in CLUSTER_MODES:
        raise OptionError(
            f"'{options.mode}' is not one of {list(CLUSTER_MODES)}", option="cluster.mode"
        )
    integer("cluster.encode_shard_size", options.encode_shard_size, minimum=1)
    integer("cluster.max_retries", options.max_retries, minimum=0)
    integer("cluster.eval_group_size", options.eval_group_size, minimum=1)
    for name in ("num_cpus", "torch_threads"):
        if getattr(options, name) is not None:
            integer(f"cluster.{name}", getattr(options, name), minimum=1)
    if not 0 < options.eval_gpu_fraction <= 1:
        raise OptionError("must be in (0, 1]", option="cluster.eval_gpu_fraction")
    return options


def distortion_options(node: DictConfig | None) -> DistortionOptions:
    """The `distortion` section: which splits' encodes are measured, on how many images, and
    by what."""
    if node is None:
        return DistortionOptions()
    options = dataclass_options(DistortionOptions, "distortion", node)
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
    sample = integer_or_word(
        "distortion.sample", options.sample, MEASURE_ALL, 1,
        f"a number of images >= 1 (a seeded sample of each split) or '{MEASURE_ALL}' (every "
        "image)",
    )  # fmt: skip
    seed = integer("distortion.seed", options.seed, minimum=0)
    return DistortionOptions(options.enabled, **lists, sample=sample, seed=seed)


def self_checked_options(cls: type, option: str, node: DictConfig | None) -> Any:
    """An options dataclass that checks its own values (OptionError), errors under its name."""
    if node is None:
        return cls()
    try:
        return dataclass_options(cls, option, node)
    except OptionError as error:
        raise error.under(option) from None


def lock_wait(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise OptionError(
            f"must be a number of seconds >= 0 (0: do not wait), got {value!r}", option="lock_wait"
        )
    return float(value)


def sensitivity_section(node: DictConfig | None) -> SensitivityOptions:
    """The `sensitivity` group (sweep/sensitivity/options.py), errors under its option."""
    values = None if node is None else OmegaConf.to_container(node)
    try:
        return sensitivity_options(values)
    except OptionError as error:
        raise error.under("sensitivity") from None


def tracking_options(node: DictConfig) -> TrackingOptions:
    options = dataclass_options(TrackingOptions, "tracking", node)
    choice("tracking.on_unreachable", options.on_unreachable, ON_UNREACHABLE_CHOICES)
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


def flag(option: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise OptionError(f"must be true or false, got {value!r}", option=option)
    return value


def choice(option: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise OptionError(f"'{value}' is not one of {list(choices)}", option=option)
    return value


def seeds_of(cfg: DictConfig) -> list[int]:
    """`seeds` (distinct integers >= 0, the first the seed of the figures and maps), or
    [`seed`] when it is null."""
    seeds = cfg.get("seeds")
    if seeds is None:
        return [integer("seed", cfg.seed, minimum=0)]
    if not isinstance(seeds, ListConfig) or not seeds:
        raise OptionError(
            f"must be a non-empty list such as [0,1,2], got {seeds!r}", option="seeds"
        )
    values = [integer("seeds", value, minimum=0) for value in seeds]
    if len(set(values)) != len(values):
        raise OptionError(f"lists a seed more than once: {values}", option="seeds")
    return values


def integer_or_word(option: str, value: Any, word: str, minimum: int, allowed: str) -> Any:
    """An option that is either `word` (e.g. auto, all) or an integer >= minimum."""
    if value != word and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
        raise OptionError(f"must be {allowed}, got {value!r}", option=option)
    return value


def integer(option: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise OptionError(f"must be an integer >= {minimum}, got {value!r}", option=option)
    return value
