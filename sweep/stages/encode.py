"""Encode: one split re-encoded at one codec setting, in shards of consecutive images.

The original setting keeps the source files (nothing is copied or decoded); every other
setting decodes each source to pixels and encodes them with the codec. Annotations pass through
untouched and label masks are never re-encoded. The merged stage holds one record per image
(`records.jsonl`: source, target, mask, file, sizes, geometry) and the split's DCR
(`summary.json`).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sweep.codecs.base import MIXED, ORIGINAL
from sweep.data.base import ImageItem
from sweep.stages.encoding import encode_batch, encode_image, next_batch
from sweep.stages.kind import Stage, StageContext, StageKind
from sweep.stages.shards import publish_merged, shard_ranges, write_shard
from sweep.store import ArtifactStore
from sweep.tasks.options import LabelledFile

if TYPE_CHECKING:
    from sweep.plan import PlanInputs, SweepPlan

NAME = "encode"
SHARD_FOLDER = "encode-shards"


@dataclass(frozen=True)
class EncodeStage(Stage):
    """One split re-encoded at one setting, in shards of consecutive images."""

    kind = NAME
    split: str
    setting: str
    shards: tuple[tuple[int, int], ...]


def plan_encodes(plan: SweepPlan, inputs: PlanInputs) -> None:
    """The train split at every train setting, then the test split at every test setting."""
    for split, settings in (("train", plan.train_settings), ("test", plan.test_settings)):
        items = plan.splits[split]
        has_masks = any(item.mask for item in items)
        shards = shard_ranges(len(items), inputs.shard_size)
        for setting in (s for s in settings if s != MIXED):  # a mix reads the others
            # The original encode points at the dataset's own image files, and every encode
            # at its mask files: a moved dataset must not reuse their records.
            points_at_dataset = setting == ORIGINAL or has_masks
            key = KIND.key(
                split=split,
                dataset=inputs.fingerprints[split],
                codec=inputs.codec.identity(setting),
                root=str(inputs.reader.root) if points_at_dataset else None,
            )
            plan.add(EncodeStage(key, split, setting, shards), (split, setting))


def stored_as(shard_key: str) -> str:
    """Where a shard's files lie relative to the store root (records point there, so that a
    moved store stays readable)."""
    return f"{SHARD_FOLDER}/{shard_key}"


def encode_shard(
    context: StageContext, stage: EncodeStage, shard_index: int, items: list[ImageItem]
) -> int:
    """Encodes one shard of a split; returns the number of images (0 if it was done before)."""
    dataset_root, codec = context.dataset_root, context.codec
    start = stage.shards[shard_index][0]
    # index -> (pixels, bytes) of an image its batch encoded, or the error that stopped it
    # (raised, naming the file, when the image's turn comes).
    prepared: dict[int, tuple[np.ndarray, bytes] | Exception] = {}

    def record_of(index: int, item: ImageItem, out: Path, key: str) -> dict:
        if stage.setting == ORIGINAL:
            return encode_image(
                stage.setting, index, item, dataset_root, codec, out, stored_as(key)
            )
        if index not in prepared:
            batch = next_batch(items[index - start :], dataset_root)
            outcomes = encode_batch(batch, dataset_root, codec, stage.setting)
            prepared.update(zip(range(index, index + len(batch)), outcomes, strict=True))
        outcome = prepared.pop(index)
        if isinstance(outcome, Exception):
            raise outcome
        return encode_image(
            stage.setting, index, item, dataset_root, codec, out, stored_as(key), outcome
        )

    return write_shard(
        context.store, SHARD_FOLDER, stage, shard_index, dataset_root, items, record_of
    )


def finalize_encode(context: StageContext, stage: EncodeStage, *shards_done: int) -> dict:
    """Merges the shard records of a split and computes its DCR; returns the summary."""
    del shards_done  # only orders this task after the shards

    def summarize(records: list[dict]) -> dict:
        return summarize_records(stage, records)

    return publish_merged(context.store, KIND.name, SHARD_FOLDER, stage, summarize)


def summarize_records(stage: EncodeStage, records: list[dict]) -> dict:
    """Byte totals and both DCR definitions of a split at one setting."""
    original = sum(r["original_bytes"] for r in records)
    encoded = sum(r["encoded_bytes"] for r in records)
    raw = sum(r["raw_bytes"] for r in records)
    return {
        "split": stage.split,
        "setting": stage.setting,
        "images": len(records),
        "original_bytes": original,
        "encoded_bytes": encoded,
        "raw_bytes": raw,
        "dcr": 1.0 - encoded / original,
        "dcr_raw": 1.0 - encoded / raw,
    }


def read_encode_records(store: ArtifactStore, stage: EncodeStage, start: int, stop: int):
    """Records [start, stop) of a finished encode (its merged records.jsonl)."""
    with (store.path(KIND.name, stage.key) / "records.jsonl").open() as stream:
        return [json.loads(line) for line in itertools.islice(stream, start, stop)]


def read_summary(store: ArtifactStore, stage: EncodeStage) -> dict:
    """The split's sizes and DCR at the stage's setting (see `summarize_records`)."""
    return store.read_json(KIND.name, stage.key, "summary.json")


def encoded_files(store: ArtifactStore, stage: EncodeStage) -> list[LabelledFile]:
    """The image files of a finished encode with their annotations, in split order."""
    files = []
    with (store.path(KIND.name, stage.key) / "records.jsonl").open() as stream:
        for line in stream:
            record = json.loads(line)
            files.append(
                LabelledFile(str(store.root / record["file"]), record["target"], record.get("mask"))
            )
    return files


def encoded_sources(store: ArtifactStore, stage: EncodeStage) -> list[str]:
    """Each encoded file's source path in the dataset, in the order of `encoded_files`: the
    image's identity across settings."""
    with (store.path(KIND.name, stage.key) / "records.jsonl").open() as stream:
        return [json.loads(line)["source"] for line in stream]


KIND = StageKind(
    name=NAME,
    # 2: records carry "target" (any annotation) and "mask" instead of "label".
    schema=2,
    inputs=(),
    key_fields=("split", "dataset", "codec", "root"),
    run=finalize_encode,
    read=read_summary,
    plan=plan_encodes,
    shard=encode_shard,
    shard_folder=SHARD_FOLDER,
    unit="img",
    flat_fields=("codec",),
    optional_fields=("root",),
)
