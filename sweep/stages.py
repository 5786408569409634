"""The work of each stage, as plain functions of explicit arguments.

The executor runs them in Ray tasks or in-process; they read their inputs from the store and
publish their output there atomically. They return small summaries for progress reporting; the
report reads the store, so a rerun of a finished sweep needs none of these functions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from sweep.codecs.base import ORIGINAL, Codec
from sweep.data.base import ImageItem
from sweep.data.formats import sniff_file
from sweep.data.pixels import read_pixels
from sweep.data.validate import QUARANTINED, inspect_image
from sweep.plan import EncodeStage, EvaluateStage, TrainStage, ValidateStage
from sweep.store import ArtifactStore
from sweep.tasks.options import LabelledFile, TrainOptions

SHARD_STAGE = "encode-shards"
VALIDATE_SHARD_STAGE = "validate-shards"


class ImageReadError(RuntimeError):
    """An image of the dataset that cannot be read or encoded; the message names the file."""


def shard_key(stage: EncodeStage, shard_index: int) -> str:
    """The shard's image range is part of its key: a rerun with another shard size must not
    take an old shard for a new one that covers other images."""
    start, stop = stage.shards[shard_index]
    return f"{stage.key}/{start:08d}-{stop:08d}"


def write_shard(
    store: ArtifactStore,
    shard_stage: str,
    stage: EncodeStage | ValidateStage,
    shard_index: int,
    dataset_root: Path,
    items: list[ImageItem],
    record_of: Callable[[int, ImageItem, Path, str], dict],
) -> int:
    """Publishes the records of one shard; returns its image count (0 if done before).

    `record_of(index, item, out, key)` makes one image's record (writing files into `out`);
    whatever goes wrong with an image becomes an ImageReadError naming the file.
    """
    key = shard_key(stage, shard_index)
    if store.is_done(shard_stage, key):
        return 0
    start = stage.shards[shard_index][0]
    with store.writing(shard_stage, key) as out:
        records = []
        for offset, item in enumerate(items):
            try:
                records.append(record_of(start + offset, item, out, key))
            except ImageReadError:
                raise
            except Exception as error:
                raise ImageReadError(
                    f"{Path(dataset_root) / item.relpath}: {type(error).__name__}: {error}"
                ) from None
        (out / "records.json").write_text(json.dumps(records))
    return len(items)


def merge_shards(store: ArtifactStore, shard_stage: str, stage) -> list[dict]:
    """The records of every shard of a stage, checked to cover each image exactly once."""
    records = []
    for index in range(len(stage.shards)):
        shard = store.path(shard_stage, shard_key(stage, index))
        records.extend(json.loads((shard / "records.json").read_text()))
    expected = list(range(stage.shards[-1][1])) if stage.shards else []
    if [record["index"] for record in records] != expected:
        raise RuntimeError(f"{shard_stage} {stage.key}: shard records do not cover every image")
    return records


def validate_shard(
    store: ArtifactStore,
    stage: ValidateStage,
    shard_index: int,
    dataset_root: Path,
    items: list[ImageItem],
    fail_fast: bool,
) -> int:
    """Decodes one shard of a split and records each file's verdict; returns the image count.

    With fail_fast the first unreadable file raises ImageReadError naming it, and nothing is
    published (data.on_error=fail).
    """

    def verdict_of(index: int, item: ImageItem, out: Path, key: str) -> dict:
        path = Path(dataset_root) / item.relpath
        found = inspect_image(path)
        if fail_fast and found["status"] == QUARANTINED:
            raise ImageReadError(
                f"{path}: {found['reason']} "
                f"(data.on_error=fail; data.on_error=quarantine leaves it out instead)"
            )
        return {"index": index, "path": item.relpath, **found}

    return write_shard(
        store, VALIDATE_SHARD_STAGE, stage, shard_index, dataset_root, items, verdict_of
    )


def finalize_validation(store: ArtifactStore, stage: ValidateStage, *shards_done: int) -> dict:
    """Merges the verdicts of a split."""
    del shards_done  # only orders this task after the shards
    if not store.is_done("validate", stage.key):
        records = merge_shards(store, VALIDATE_SHARD_STAGE, stage)
        with store.writing("validate", stage.key) as out:
            (out / "verdicts.json").write_text(json.dumps(records))
    return {"split": stage.split}


def read_verdicts(store: ArtifactStore, stage: ValidateStage) -> list[dict]:
    return store.read_json("validate", stage.key, "verdicts.json")


def image_geometry(path: Path) -> tuple[int, int, int]:
    """(height, width, channels) of the pixels the sweep would decode, from the header."""
    if sniff_file(path) == "jxl":
        pixels = read_pixels(path)
        return pixels.shape[0], pixels.shape[1], 1 if pixels.ndim == 2 else pixels.shape[2]
    with Image.open(path) as image:
        grey = image.mode in ("L", "LA", "La", "I", "F") or image.mode.startswith("I;16")
        channels = 1 if grey else 3
        return image.height, image.width, channels


def encode_shard(
    store: ArtifactStore,
    stage: EncodeStage,
    shard_index: int,
    dataset_root: Path,
    items: list[ImageItem],
    codec: Codec,
) -> int:
    """Encodes one shard of a split; returns the number of images (0 if it was done before)."""

    def record_of(index: int, item: ImageItem, out: Path, key: str) -> dict:
        return encode_image(stage, index, item, dataset_root, codec, out, key)

    return write_shard(store, SHARD_STAGE, stage, shard_index, dataset_root, items, record_of)


def encode_image(
    stage: EncodeStage,
    index: int,
    item: ImageItem,
    dataset_root: Path,
    codec: Codec,
    out: Path,
    key: str,
) -> dict:
    """Encodes one image into `out` and returns its record (sizes, geometry, file)."""
    source = Path(dataset_root) / item.relpath
    record = {
        "index": index,
        "source": item.relpath,
        "target": item.target,
        "original_bytes": source.stat().st_size,
    }
    if item.mask is not None:
        # Label masks are never re-encoded: every setting reads the dataset's own file.
        record["mask"] = str(Path(dataset_root) / item.mask)
    if stage.setting == ORIGINAL:
        # The original setting keeps the source bytes: nothing is copied or decoded.
        height, width, channels = image_geometry(source)
        record |= {"file": str(source), "encoded_bytes": record["original_bytes"]}
    else:
        pixels = read_pixels(source)
        height, width = pixels.shape[:2]
        channels = 1 if pixels.ndim == 2 else pixels.shape[2]
        data = codec.encode_source(source.read_bytes(), pixels, stage.setting)

        name = f"{index:08d}{codec.extension}"
        (out / name).write_bytes(data)
        # Relative to the store root, so that a moved store stays readable.
        record |= {"file": f"{SHARD_STAGE}/{key}/{name}", "encoded_bytes": len(data)}
    return record | {
        "height": height,
        "width": width,
        "channels": channels,
        "raw_bytes": height * width * channels,
    }


def finalize_encode(store: ArtifactStore, stage: EncodeStage, *shards_done: int) -> dict:
    """Merges the shard records of a split and computes its DCR; returns the summary."""
    del shards_done  # only orders this task after the shards
    if store.is_done("encode", stage.key):
        return store.read_json("encode", stage.key, "summary.json")
    # Never publish a split with a missing or repeated image.
    records = merge_shards(store, SHARD_STAGE, stage)
    summary = summarize_records(stage, records)
    with store.writing("encode", stage.key) as out:
        with (out / "records.jsonl").open("w") as stream:
            for record in records:
                stream.write(json.dumps(record) + "\n")
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


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


def encoded_files(store: ArtifactStore, stage: EncodeStage) -> list[LabelledFile]:
    """The image files of a finished encode with their labels, in split order."""
    files = []
    with (store.path("encode", stage.key) / "records.jsonl").open() as stream:
        for line in stream:
            record = json.loads(line)
            files.append(
                LabelledFile(str(store.root / record["file"]), record["target"], record.get("mask"))
            )

    return files


def train_stage(
    store: ArtifactStore,
    stage: TrainStage,
    task,
    model,
    options: TrainOptions,
    seed: int,
    num_classes: int,
    *upstream: object,
) -> dict:
    """Trains one model on the encoded train split; returns the training summary."""
    del upstream
    if store.is_done("train", stage.key):
        return store.read_json("train", stage.key, "summary.json")
    files = encoded_files(store, stage.encode)
    started = time.perf_counter()
    with store.writing("train", stage.key) as out:
        summary = task.train(model, files, num_classes, options, seed, out)
        summary |= {"setting": stage.setting, "seconds": time.perf_counter() - started}
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def evaluate_stage(
    store: ArtifactStore,
    stage: EvaluateStage,
    task,
    model,
    options: TrainOptions,
    num_classes: int,
    *upstream: object,
) -> dict:
    """Evaluates a trained model on one encoded test split; returns its metrics."""
    del upstream
    if store.is_done("evaluate", stage.key):
        return store.read_json("evaluate", stage.key, "metrics.json")
    files = encoded_files(store, stage.encode)
    weights = store.path("train", stage.train.key)
    with store.writing("evaluate", stage.key) as out:
        metrics = task.evaluate(model, weights, files, num_classes, options)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
