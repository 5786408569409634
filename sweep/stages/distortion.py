"""Distortion: the measured distortion of one encode, image by image, in the encode's shards.

Its own stage, not part of the encode: measuring can be turned on, off or extended (a tool
installed) without re-encoding anything. The encode's key is part of its key.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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
from sweep.stages.encode import EncodeStage, read_encode_records
from sweep.stages.kind import Stage, StageContext, StageKind
from sweep.stages.shards import publish_merged, write_shard
from sweep.store import ArtifactStore

if TYPE_CHECKING:
    from sweep.plan import PlanInputs, SweepPlan

NAME = "distortion"
SHARD_FOLDER = "distortion-shards"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistortionStage(Stage):
    """The measured distortion of one encode, in the encode's shards of images."""

    kind = NAME
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

    def upstream(self) -> tuple[Stage, ...]:
        return (self.encode,)


def distortion_stage(encode: EncodeStage, measurement: Measurement) -> DistortionStage:
    key = KIND.key(
        encode=encode.key,
        measures=measurement.measures,
        tools=measurement.tools,
        # The summary names requested measures that could not run.
        skipped=sorted(name for name, _ in measurement.skipped),
    )
    return DistortionStage(key, encode, measurement)


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
            plan.add(distortion_stage(encode, measurement), (split, setting))


def measure_shard(
    context: StageContext,
    stage: DistortionStage,
    shard_index: int,
    items: list[ImageItem],
    *upstream: object,
) -> int:
    """Measures the distortion of one shard of a finished encode; returns its image count
    (0 if done before). `upstream` (the encode's result) only orders it after the encode.

    The reference is the source decoded as the encode decoded it; the distorted image is the
    codec's decode of the written file. The original setting records the values of an image
    against itself without reading anything. An image that cannot be measured gets None
    values and an "error" naming its file, so that an auxiliary measure never fails a sweep;
    the summary counts them.
    """
    del upstream
    store, dataset_root, codec = context.store, context.dataset_root, context.codec
    start, stop = stage.shards[shard_index]
    encoded = read_encode_records(store, stage.encode, start, stop)
    measurement = stage.measurement

    def record_of(index: int, item: ImageItem, out: Path, key: str) -> dict:
        record = {"index": index, "source": item.relpath}
        if stage.setting == ORIGINAL:
            return record | {"distortion": identical_values(measurement)}
        source = Path(dataset_root) / item.relpath
        try:
            encoded_record = encoded[index - start]
            if encoded_record["source"] != item.relpath:
                raise RuntimeError(f"encode record {index} is {encoded_record['source']}")
            reference = read_pixels(source)
            distorted = codec.decode((store.root / encoded_record["file"]).read_bytes())
            values = measure_image(reference, distorted, measurement)
        except Exception as error:  # any failure of one image: recorded, never fatal
            values = dict.fromkeys(measurement.fields)
            record["error"] = f"{source}: {type(error).__name__}: {error}"
        return record | {"distortion": values}

    return write_shard(store, SHARD_FOLDER, stage, shard_index, dataset_root, items, record_of)


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
            "images": len(records),
            # The original setting is the reference: its values hold by definition.
            "reference": stage.setting == ORIGINAL,
            "measures": summarize_distortion(records, measurement),
            "skipped": dict(measurement.skipped),
            "errors": len(failed),
            "error_examples": failed[:5],
            "tools": measurement.tools,
        }

    return publish_merged(context.store, KIND.name, SHARD_FOLDER, stage, summarize)


def distortion_records(store: ArtifactStore, stage: DistortionStage) -> list[dict]:
    """Per-image distortion of a finished distortion stage, in split order (the order of the
    encode's records): {"index", "source", "distortion": {field: value}, ["error"]}."""
    with (store.path(KIND.name, stage.key) / "records.jsonl").open() as stream:
        return [json.loads(line) for line in stream]


def read_summary(store: ArtifactStore, stage: DistortionStage) -> dict:
    """Per measure: median, p10, p90 and counts; skipped measures and errors."""
    return store.read_json(KIND.name, stage.key, "summary.json")


KIND = StageKind(
    name=NAME,
    schema=1,
    inputs=("encode",),
    key_fields=("encode", "measures", "tools", "skipped"),
    run=finalize_distortion,
    read=read_summary,
    plan=plan_distortions,
    shard=measure_shard,
    shard_folder=SHARD_FOLDER,
    unit="img",
    progress="measure",
)
