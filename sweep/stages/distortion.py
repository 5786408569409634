"""Distortion: the measured distortion of one encode, image by image, in the encode's shards.

Its own stage, not part of the encode: measuring can be turned on, off or extended (a tool
installed) without re-encoding anything. The encode's key is part of its key, and so is the
sample of images it measures (`distortion.sample` and `distortion.seed`): its shards are
ranges of positions in that sample, and its records hold the sampled images only.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sweep.codecs.base import ORIGINAL
from sweep.data.base import ImageItem
from sweep.data.pixels import read_pixels
from sweep.distortion import (
    Measurement,
    identical_values,
    measure_image,
    resolve_measurement,
    summarize_distortion,
)
from sweep.distortion.sampling import sample_identity, sampled_indices
from sweep.stages.billing import BillScope
from sweep.stages.encode import KIND as ENCODE_KIND
from sweep.stages.encode import EncodeStage, record_location
from sweep.stages.graph import PlanInputs, SweepPlan
from sweep.stages.kind import Cost, Stage, StageContext, StageKind
from sweep.stages.shards import shard_key, shard_ranges, write_shard
from sweep.store import ArtifactStore
from sweep.store.locations import join_location, read_location

NAME = "distortion"
SHARD_FOLDER = "distortion-shards"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistortionStage(Stage):
    """The measured distortion of one encode's sampled images.

    `shards` are ranges of positions in `indices` (the sampled images of the split), not of
    the split: the executor's items of a shard are therefore not the measured images, which
    the shard reads from the encode's records instead.
    """

    kind = NAME
    encode: EncodeStage
    measurement: Measurement
    shards: tuple[tuple[int, int], ...]

    @property
    def split(self) -> str:
        return self.encode.split

    @property
    def setting(self) -> str:
        return self.encode.setting

    @property
    def images(self) -> int:
        """The number of images of the split."""
        return split_size(self.encode)

    @property
    def indices(self) -> tuple[int, ...]:
        """Split indices of the measured images, in split order: the same for every setting."""
        return sampled_indices(self.images, self.measurement.sample, self.measurement.seed)

    def upstream(self) -> tuple[Stage, ...]:
        return (self.encode,)


def split_size(encode: EncodeStage) -> int:
    """The number of images of an encode's split (its shards cover every one)."""
    return encode.shards[-1][1] if encode.shards else 0


def distortion_stage(
    encode: EncodeStage, measurement: Measurement, shard_size: int
) -> DistortionStage:
    images = split_size(encode)
    key = KIND.key(
        encode=encode.key,
        measures=measurement.measures,
        tools=measurement.tools,
        # The summary names requested measures that could not run.
        skipped=sorted(name for name, _ in measurement.skipped),
        sample=sample_identity(images, measurement.sample, measurement.seed),
    )
    measured = len(sampled_indices(images, measurement.sample, measurement.seed))
    return DistortionStage(key, encode, measurement, shard_ranges(measured, shard_size))


def plan_distortions(plan: SweepPlan, inputs: PlanInputs) -> None:
    """A distortion stage for every encode of the splits that `distortion.splits` names."""
    if inputs.distortion is None:
        return
    measurement = resolve_measurement(inputs.distortion)
    if measurement is None:
        return
    plan.skipped_measures = dict(measurement.skipped)
    if not measurement.measures:
        return
    for (split, setting), encode in plan.encodes.items():
        if split in measurement.splits:
            stage = distortion_stage(encode, measurement, inputs.shard_size)
            plan.add(stage, (split, setting))


def measure_shard(
    context: StageContext,
    stage: DistortionStage,
    shard_index: int,
    items: list[ImageItem],
    *upstream: object,
) -> int:
    """Measures the distortion of one shard of a finished encode's sampled images; returns
    its image count (0 if done before). `upstream` (the encode's result) only orders it after
    the encode; `items` only count (see DistortionStage): the encode's records name the
    sampled images.

    The reference is the source decoded as the encode decoded it; the distorted image is the
    codec's decode of the written file. The original setting records the values of an image
    against itself without reading anything. An image that cannot be measured gets None
    values and an "error" naming its file, so that an auxiliary measure never fails a sweep;
    the summary counts them.
    """
    del upstream, items
    store, dataset_root, codec = context.store, context.dataset_root, context.codec
    start, stop = stage.shards[shard_index]
    indices = stage.indices[start:stop]
    encoded = encode_records_at(store, stage.encode, indices)
    if len(encoded) != len(indices):
        raise RuntimeError(f"encode {stage.encode.key} has fewer records than its split")
    sampled = [ImageItem(record["source"], record.get("target")) for record in encoded]
    measurement = stage.measurement

    def record_of(position: int, item: ImageItem, out: Path, key: str) -> dict:
        index = indices[position - start]
        record = {"index": index, "source": item.relpath}
        if stage.setting == ORIGINAL:
            return record | {"distortion": identical_values(measurement)}
        source = join_location(dataset_root, item.relpath)
        try:
            encoded_record = encoded[position - start]
            reference = read_pixels(source)
            distorted = codec.decode(
                read_location(record_location(store, stage.encode, encoded_record))
            )
            values = measure_image(reference, distorted, measurement)
        except Exception as error:  # any failure of one image: recorded, never fatal
            values = dict.fromkeys(measurement.fields)
            record["error"] = f"{source}: {type(error).__name__}: {error}"
        return record | {"distortion": values}

    return write_shard(store, SHARD_FOLDER, stage, shard_index, dataset_root, sampled, record_of)


def encode_records_at(
    store: ArtifactStore, stage: EncodeStage, indices: tuple[int, ...]
) -> list[dict]:
    """The records of a finished encode at `indices` (increasing), read in one pass."""
    if not indices:
        return []
    wanted = set(indices)
    with store.file(ENCODE_KIND.name, stage.key, "records.jsonl").open() as stream:
        lines = itertools.islice(stream, indices[0], indices[-1] + 1)
        return [
            json.loads(line) for number, line in enumerate(lines, indices[0]) if number in wanted
        ]


def finalize_distortion(context: StageContext, stage: DistortionStage, *shards_done: int) -> dict:
    """Merges the measured shards of an encode and summarizes them; returns the summary."""
    del shards_done  # only orders this task after the shards

    def summarize(records: list[dict]) -> dict:
        measurement = stage.measurement
        failed = [record["error"] for record in records if "error" in record]
        if failed:
            log.warning(
                "distortion %s/%s: %d image(s) could not be measured, e.g. %s",
                stage.split,
                stage.setting,
                len(failed),
                failed[0],
            )
        return {
            "split": stage.split,
            "setting": stage.setting,
            # How many of the split's images were measured, and how they were drawn.
            "images": stage.images,
            "measured": len(records),
            "sample": sample_identity(
                stage.images, stage.measurement.sample, stage.measurement.seed
            ),
            # The original setting is the reference: its values hold by definition.
            "reference": stage.setting == ORIGINAL,
            "measures": summarize_distortion(records, measurement),
            "skipped": dict(measurement.skipped),
            "errors": len(failed),
            "error_examples": failed[:5],
            "tools": measurement.tools,
        }

    return publish_sampled(context.store, stage, summarize)


def publish_sampled(
    store: ArtifactStore, stage: DistortionStage, summarize: Callable[[list[dict]], dict]
) -> dict:
    """Merges the shards of a stage and publishes them, one JSON line per measured image in
    `records.jsonl`, with `summarize(records)` in `summary.json`; returns the summary (the
    stored one when published before). Never publishes a sample with a missing or repeated
    image (as `shards.publish_merged`, whose check is on whole splits)."""
    if store.is_done(KIND.name, stage.key):
        return store.read_json(KIND.name, stage.key, "summary.json")
    records = []
    for index in range(len(stage.shards)):
        shard = store.file(SHARD_FOLDER, shard_key(stage, index), "records.json")
        records.extend(json.loads(shard.read_text()))
    if [record["index"] for record in records] != list(stage.indices):
        raise RuntimeError(f"{SHARD_FOLDER} {stage.key}: shard records do not cover the sample")
    summary = summarize(records)
    with store.writing(KIND.name, stage.key) as out:
        with (out / "records.jsonl").open("w") as stream:
            for record in records:
                stream.write(json.dumps(record) + "\n")
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def distortion_records(store: ArtifactStore, stage: DistortionStage) -> list[dict]:
    """Per-image distortion of a finished distortion stage's sampled images, in split order:
    {"index" (in the split), "source", "distortion": {field: value}, ["error"]}."""
    with store.file(KIND.name, stage.key, "records.jsonl").open() as stream:
        return [json.loads(line) for line in stream]


def read_summary(store: ArtifactStore, stage: DistortionStage) -> dict:
    """Per measure: median, p10, p90, mean, counts and the intervals of the median and the
    mean; images measured of the split's; skipped measures and errors."""
    return store.read_json(KIND.name, stage.key, "summary.json")


def bill_distortions(stages: list[DistortionStage], scope: BillScope) -> Cost:
    """The sampled images measured at each lossy setting (the reference is not read)."""
    images = sum(
        scope.pending_shard_images(stage, SHARD_FOLDER)
        for stage in stages
        if stage.setting != ORIGINAL
    )
    return Cost(f"{images:,} images to measure", images={"measure": images})


KIND = StageKind(
    name=NAME,
    # 2: a sample of each split's images (`sample` in the key), summaries with intervals and
    # float32 SSIMULACRA 2; every stage of schema 1 is stale (it measured every image and its
    # summary has no intervals) and is measured again, without re-encoding.
    schema=2,
    inputs=("encode",),
    key_fields=("encode", "measures", "tools", "skipped", "sample"),
    run=finalize_distortion,
    read=read_summary,
    plan=plan_distortions,
    shard=measure_shard,
    shard_folder=SHARD_FOLDER,
    unit="img",
    progress="measure",
    bill=bill_distortions,
)
