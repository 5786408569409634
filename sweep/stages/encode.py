"""Encode: one split re-encoded at one codec setting, in shards of consecutive images.

The original setting keeps the source files (nothing is copied or decoded); every other
setting decodes each source to pixels and encodes them with the codec. Annotations pass through
untouched and label masks are never re-encoded. The merged stage holds one record per image
(`records.jsonl`: source, target, mask, where its bytes lie, sizes, geometry) and the split's
DCR (`summary.json`).

Each shard packs its encoded images into one file, `pack.bin` (`sweep.store.packs`), and its
records give each image's "offset" and "size" there ("file_in": "pack"): a stage is a few
large objects, not one per image, and a reader reads an image by its byte range.

No record holds an absolute path, and no key holds the dataset's place: a packed image is named
by its shard's key, which the store resolves, and the original setting's source ("file_in":
"dataset") and every "mask" relative to the dataset root. `encoded_files` joins them with the
roots of the run that reads them, so a moved dataset (or store) reuses every encode, and every
stage after it.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sweep.codecs.base import MIXED, ORIGINAL
from sweep.data.base import ImageItem
from sweep.data.files import LabelledFile
from sweep.stages.billing import BillScope
from sweep.stages.encoding import encode_batch, encode_image, next_batch
from sweep.stages.graph import PlanInputs, SweepPlan
from sweep.stages.kind import Cost, Stage, StageContext, StageKind
from sweep.stages.shards import publish_merged, shard_ranges, write_shard
from sweep.store import ArtifactStore
from sweep.store.locations import join_location, member
from sweep.store.packs import PACK_FILE, PackWriter

NAME = "encode"
SHARD_FOLDER = "encode-shards"
# Where a record's bytes lie: in its shard's pack, or in the dataset (the original setting).
IN_PACK, IN_DATASET = "pack", "dataset"


@dataclass(frozen=True)
class EncodeStage(Stage):
    """One split re-encoded at one setting, in shards of consecutive images.

    `dataset_root` is where the dataset lies in the run that planned the stage: the records'
    dataset files (the original setting's images, every mask) are read from there. It is not
    part of the key.
    """

    kind = NAME
    split: str
    setting: str
    shards: tuple[tuple[int, int], ...]
    dataset_root: Path | None = field(default=None, compare=False)


def plan_encodes(plan: SweepPlan, inputs: PlanInputs) -> None:
    """The train split at every train setting, then the test split at every test setting."""
    for split, settings in (("train", plan.train_settings), ("test", plan.test_settings)):
        shards = shard_ranges(len(plan.splits[split]), inputs.shard_size)
        for setting in (s for s in settings if s != MIXED):  # a mix reads the others
            # No root: records name dataset files relative to it (see the module's doc).
            key = KIND.key(
                split=split,
                dataset=inputs.fingerprints[split],
                codec=inputs.codec.identity(setting),
            )
            stage = EncodeStage(key, split, setting, shards, inputs.reader.root)
            plan.add(stage, (split, setting))


def encode_shard(
    context: StageContext, stage: EncodeStage, shard_index: int, items: list[ImageItem]
) -> int:
    """Encodes one shard of a split; returns the number of images (0 if it was done before)."""
    dataset_root, codec = context.dataset_root, context.codec
    start = stage.shards[shard_index][0]
    # index -> (pixels, bytes) of an image its batch encoded, or the error that stopped it
    # (raised, naming the file, when the image's turn comes).
    prepared: dict[int, tuple[np.ndarray, bytes] | Exception] = {}
    packs: list[PackWriter] = []  # the shard's pack, opened in the folder being written

    def record_of(index: int, item: ImageItem, out: Path, key: str) -> dict:
        if not packs:
            packs.append(PackWriter(out))
        outcome = None  # the original setting decodes and encodes nothing
        if stage.setting != ORIGINAL:
            if index not in prepared:
                batch = next_batch(items[index - start :], dataset_root)
                outcomes = encode_batch(batch, dataset_root, codec, stage.setting)
                prepared.update(zip(range(index, index + len(batch)), outcomes, strict=True))
            outcome = prepared.pop(index)
            if isinstance(outcome, Exception):
                raise outcome
        record = encode_image(stage.setting, index, item, dataset_root, codec, packs[0], outcome)
        return relative_record(record, item, stage.setting, key)

    def close_pack() -> None:
        for pack in packs:
            pack.close()

    return write_shard(
        context.store, SHARD_FOLDER, stage, shard_index, dataset_root, items, record_of, close_pack
    )


def relative_record(record: dict, item: ImageItem, setting: str, shard: str) -> dict:
    """An image's record as stored: files in the dataset named relative to its root, and
    where its bytes lie said by "file_in" (`encode_image` gives the dataset's files as the
    locations of this run, which a moved dataset would leave dangling)."""
    if item.mask is not None:
        record["mask"] = item.mask
    if setting == ORIGINAL:  # the dataset's own file
        return record | {"file": item.relpath, "file_in": IN_DATASET}
    return record | {"shard": shard, "file_in": IN_PACK}


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
    """Records [start, stop) of a finished encode (its merged records.jsonl); their "file" is
    relative to the root that "file_in" names (see `encoded_files`)."""
    with store.file(KIND.name, stage.key, "records.jsonl").open() as stream:
        return [json.loads(line) for line in itertools.islice(stream, start, stop)]


def read_summary(store: ArtifactStore, stage: EncodeStage) -> dict:
    """The split's sizes and DCR at the stage's setting (see `summarize_records`)."""
    return store.read_json(KIND.name, stage.key, "summary.json")


def encoded_files(store: ArtifactStore, stage: EncodeStage) -> list[LabelledFile]:
    """The image files of a finished encode with their annotations, in split order.

    Locations are resolved against this run's roots: a packed image's against its shard's
    pack in the store (a byte range of it: `sweep.store.locations`), the original setting's
    source and every mask against the dataset's (`stage.dataset_root`).
    """
    files = []
    with store.file(KIND.name, stage.key, "records.jsonl").open() as stream:
        for line in stream:
            record = json.loads(line)
            mask = record.get("mask")
            mask = None if mask is None else in_dataset(stage, mask)
            files.append(
                LabelledFile(record_location(store, stage, record), record["target"], mask)
            )
    return files


def record_location(store: ArtifactStore, stage: EncodeStage, record: dict) -> str:
    """Where an encode record's image bytes lie in this run: a pack's range, or a dataset
    file."""
    if record["file_in"] == IN_DATASET:
        return in_dataset(stage, record["file"])
    pack = store.location(SHARD_FOLDER, record["shard"], PACK_FILE)
    return member(pack, record["offset"], record["size"])


def in_dataset(stage: EncodeStage, relpath: str) -> str:
    """The absolute path of a record's dataset file in this run."""
    if stage.dataset_root is None:
        raise ValueError(
            f"encode {stage.key} ({stage.split} at {stage.setting}) reads files of the dataset, "
            f"but its stage was made without the dataset root (EncodeStage.dataset_root, "
            f"which `plan_encodes` sets)"
        )
    return join_location(stage.dataset_root, relpath)


def encoded_sources(store: ArtifactStore, stage: EncodeStage) -> list[str]:
    """Each encoded file's source path in the dataset, in the order of `encoded_files`: the
    image's identity across settings."""
    with store.file(KIND.name, stage.key, "records.jsonl").open() as stream:
        return [json.loads(line)["source"] for line in stream]


def bill_encodes(stages: list[EncodeStage], scope: BillScope) -> Cost:
    """The lossy settings' images encoded (decode included); the original setting keeps the
    dataset's files, so its images cost nothing."""
    encoded: dict[str, int] = {}
    kept = 0
    for stage in stages:
        images = scope.pending_shard_images(stage, SHARD_FOLDER)
        if stage.setting == ORIGINAL:
            kept += images
        else:
            encoded[stage.setting] = encoded.get(stage.setting, 0) + images
    images = sum(encoded.values())
    work = f"{images:,} images to encode" + (
        f", {kept:,} originals kept as they are" if kept else ""
    )
    return Cost(work, images={"encode": images}, encoded=encoded)


KIND = StageKind(
    name=NAME,
    # 2: records carry "target" (any annotation) and "mask" instead of "label".
    # 3: no "root" in the key and a content "dataset" fingerprint; records name dataset files
    # relative to the dataset root ("file_in", relative "mask").
    # 4: each shard packs its images into one pack.bin, read by byte range ("file_in": "pack",
    # "shard", "offset", "size"); every earlier encode, and every stage after it, is stale.
    schema=4,
    inputs=(),
    key_fields=("split", "dataset", "codec"),
    run=finalize_encode,
    read=read_summary,
    plan=plan_encodes,
    shard=encode_shard,
    shard_folder=SHARD_FOLDER,
    unit="img",
    flat_fields=("codec",),
    bill=bill_encodes,
)
