"""The DAG of a sweep: encode stages, one training per train setting, one evaluation per cell.

Every stage has a key: a digest of exactly what determines its output (the dataset's files, the
codec's identity, the model, the training hyper-parameters, the seed) and of the keys of the
stages it reads. Options that cannot change a result (cluster, tracking, loader workers, batch
size of evaluation) are left out, so changing them reuses every finished stage.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from sweep.codecs.base import ORIGINAL, Codec
from sweep.data.base import DatasetReader, ImageItem
from sweep.distortion import DistortionOptions, Measurement, resolve_measurement

# Bump a stage's schema when its output format or its computation changes.
# encode 2: records carry "target" (any annotation) and "mask" instead of "label".
# distortion 1: per-image PSNR, SSIM, SSIMULACRA 2, Butteraugli of an encode, and a summary.
SCHEMA = {"validate": 1, "encode": 2, "distortion": 1, "train": 1, "evaluate": 1}
# Training options that change the trained weights; the others only change speed.
TRAIN_RESULT_OPTIONS = (
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "warmup_fraction",
    "min_crop_scale",
    # Each loader process draws its own augmentation stream.
    "loader_workers",
    "amp",
)


def digest(payload: object) -> str:
    """Stable short digest of JSON-serialisable data (dict key order does not matter)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class ValidateStage:
    """Every image of one split decoded once, to apply the bad-image policy."""

    key: str
    split: str
    shards: tuple[tuple[int, int], ...]


def validate_stage(
    reader: DatasetReader,
    split: str,
    items: list[ImageItem],
    policy: dict,
    shard_size: int,
) -> ValidateStage:
    key = digest(
        {
            "stage": "validate",
            "schema": SCHEMA["validate"],
            "policy": policy,
            "split": split,
            "dataset": reader.fingerprint(items),
        }
    )
    return ValidateStage(key, split, shard_ranges(len(items), shard_size))


@dataclass(frozen=True)
class EncodeStage:
    """One split re-encoded at one setting, in shards of consecutive images."""

    key: str
    split: str
    setting: str
    shards: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class DistortionStage:
    """The measured distortion of one encode, in the encode's shards of images.

    Its own stage, not part of the encode: measuring can be turned on, off or extended
    (a tool installed) without re-encoding anything. `encode.key` is part of its key.
    """

    key: str
    encode: EncodeStage
    measurement: Measurement

    @property
    def split(self) -> str:
        return self.encode.split

    @property
    def setting(self) -> str:
        return self.encode.setting

    @property
    def shards(self) -> tuple[tuple[int, int], ...]:
        return self.encode.shards


def distortion_stage(encode: EncodeStage, measurement: Measurement) -> DistortionStage:
    key = digest(
        {
            "stage": "distortion",
            "schema": SCHEMA["distortion"],
            "encode": encode.key,
            "measures": measurement.measures,
            "tools": measurement.tools,
            # The summary names requested measures that could not run.
            "skipped": sorted(name for name, _ in measurement.skipped),
        }
    )
    return DistortionStage(key, encode, measurement)


@dataclass(frozen=True)
class TrainStage:
    key: str
    setting: str
    encode: EncodeStage


@dataclass(frozen=True)
class EvaluateStage:
    key: str
    train: TrainStage
    encode: EncodeStage

    @property
    def cell(self) -> tuple[str, str]:
        return (self.train.setting, self.encode.setting)


@dataclass
class SweepPlan:
    """Every stage of a sweep and the images of each split."""

    splits: dict[str, list[ImageItem]]
    class_names: list[str]
    train_settings: list[str]
    test_settings: list[str]
    encodes: dict[tuple[str, str], EncodeStage] = field(default_factory=dict)
    trains: dict[str, TrainStage] = field(default_factory=dict)
    evaluations: dict[tuple[str, str], EvaluateStage] = field(default_factory=dict)
    distortions: dict[tuple[str, str], DistortionStage] = field(default_factory=dict)
    # Requested measures that cannot run on this machine, with the reason.
    skipped_measures: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Identity of the whole sweep: the set of its cells' evaluation keys."""
        return digest(sorted(stage.key for stage in self.evaluations.values()))


def shard_ranges(count: int, shard_size: int) -> tuple[tuple[int, int], ...]:
    """Consecutive ranges of at most `shard_size` images, as few as that allows, of equal
    size give or take one: a short last shard would leave cores idle at the end of a stage."""
    shards = -(-count // shard_size)  # ceil
    bounds = [index * count // shards for index in range(shards + 1)] if shards else []
    return tuple(zip(bounds[:-1], bounds[1:], strict=True))


def build_plan(
    reader: DatasetReader,
    splits: dict[str, list[ImageItem]],
    fingerprints: dict[str, str],
    codec: Codec,
    task_identity: dict,
    model_identity: dict,
    train_options: dict,
    seed: int,
    train_settings: list[str],
    test_settings: list[str],
    shard_size: int,
    distortion: DistortionOptions | None = None,
) -> SweepPlan:
    """Lists the stages of a sweep over the given (validated) images and computes their keys.

    `fingerprints` identify each split's images (see `DatasetReader.fingerprint`).
    `distortion` adds a distortion stage to every encode of the splits it names (None: none).
    """
    plan = SweepPlan(splits, reader.class_names(), train_settings, test_settings)

    def encode_stage(split: str, setting: str) -> EncodeStage:
        if (split, setting) not in plan.encodes:
            payload = {
                "stage": "encode",
                "schema": SCHEMA["encode"],
                "split": split,
                "dataset": fingerprints[split],
                **codec.identity(setting),
            }
            if setting == ORIGINAL or any(item.mask for item in splits[split]):
                # The original encode points at the dataset's own image files, and every
                # encode at its mask files: a moved dataset must not reuse their records.
                payload["root"] = str(reader.root)

            key = digest(payload)
            shards = shard_ranges(len(splits[split]), shard_size)
            plan.encodes[(split, setting)] = EncodeStage(key, split, setting, shards)
        return plan.encodes[(split, setting)]

    result_options = {name: train_options[name] for name in TRAIN_RESULT_OPTIONS}
    for setting in train_settings:
        encode = encode_stage("train", setting)
        key = digest(
            {
                "stage": "train",
                "schema": SCHEMA["train"],
                "encode": encode.key,
                "task": task_identity,
                "model": model_identity,
                "train": result_options,
                "seed": seed,
                "classes": plan.class_names,
            }
        )
        plan.trains[setting] = TrainStage(key, setting, encode)
    for train in plan.trains.values():
        for setting in test_settings:
            encode = encode_stage("test", setting)
            key = digest(
                {
                    "stage": "evaluate",
                    "schema": SCHEMA["evaluate"],
                    "train": train.key,
                    "encode": encode.key,
                    "task": task_identity,
                }
            )
            plan.evaluations[(train.setting, setting)] = EvaluateStage(key, train, encode)
    measurement = resolve_measurement(distortion) if distortion is not None else None
    if measurement is not None:
        plan.skipped_measures = dict(measurement.skipped)
        for (split, setting), encode in plan.encodes.items():
            if split in measurement.splits and measurement.measures:
                plan.distortions[(split, setting)] = distortion_stage(encode, measurement)
    return plan
