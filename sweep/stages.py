"""The work of each stage, as plain functions of explicit arguments.

The executor runs them in Ray tasks or in-process; they read their inputs from the store and
publish their output there atomically. They return small summaries for progress reporting; the
report reads the store, so a rerun of a finished sweep needs none of these functions.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from sweep.codecs.base import ORIGINAL, Codec
from sweep.data.base import ImageItem
from sweep.data.formats import sniff_file
from sweep.data.pixels import read_pixels
from sweep.data.validate import QUARANTINED, inspect_image
from sweep.distortion import identical_values, measure_image, summarize_distortion
from sweep.plan import DistortionStage, EncodeStage, EvaluateStage, TrainStage, ValidateStage
from sweep.store import ArtifactStore
from sweep.tasks.options import LabelledFile, TrainOptions

SHARD_STAGE = "encode-shards"
VALIDATE_SHARD_STAGE = "validate-shards"
DISTORTION_SHARD_STAGE = "distortion-shards"

log = logging.getLogger(__name__)


class ImageReadError(RuntimeError):
    """An image of the dataset that cannot be read or encoded; the message names the file."""


def shard_key(stage: EncodeStage | DistortionStage, shard_index: int) -> str:
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


# An encode shard works in batches: all of a batch's sources are decoded, then all encoded,
# then all written, so that each phase runs with its code and data warm in the CPU caches
# (about 5-10% less CPU per image than one image after the other on 96x96 images). A batch
# holds at most this many images and, past the first image, this many bytes of pixels.
ENCODE_BATCH_IMAGES = 32
ENCODE_BATCH_BYTES = 64 * 2**20


def encode_shard(
    store: ArtifactStore,
    stage: EncodeStage,
    shard_index: int,
    dataset_root: Path,
    items: list[ImageItem],
    codec: Codec,
) -> int:
    """Encodes one shard of a split; returns the number of images (0 if it was done before)."""
    start = stage.shards[shard_index][0]
    # index -> (pixels, bytes) of an image its batch encoded, or the error that stopped it
    # (raised, naming the file, when the image's turn comes).
    prepared: dict[int, tuple[np.ndarray, bytes] | Exception] = {}

    def record_of(index: int, item: ImageItem, out: Path, key: str) -> dict:
        if stage.setting == ORIGINAL:
            return encode_image(stage, index, item, dataset_root, codec, out, key)
        if index not in prepared:
            batch = next_batch(items[index - start :], dataset_root)
            outcomes = encode_batch(batch, dataset_root, codec, stage.setting)
            prepared.update(zip(range(index, index + len(batch)), outcomes, strict=True))
        outcome = prepared.pop(index)
        if isinstance(outcome, Exception):
            raise outcome
        return encode_image(stage, index, item, dataset_root, codec, out, key, outcome)

    return write_shard(store, SHARD_STAGE, stage, shard_index, dataset_root, items, record_of)


def next_batch(items: list[ImageItem], dataset_root: Path) -> list[ImageItem]:
    """The first images of `items` that make one batch (by count and by file size, a cheap
    stand-in for the pixels, which are not decoded yet)."""
    batch, held = [], 0
    for item in items[:ENCODE_BATCH_IMAGES]:
        if batch and held >= ENCODE_BATCH_BYTES:
            break
        batch.append(item)
        try:
            # A compressed file holds several times fewer bytes than its pixels.
            held += 8 * (Path(dataset_root) / item.relpath).stat().st_size
        except OSError:
            pass  # the decode names the file
    return batch


def encode_batch(
    items: list[ImageItem], dataset_root: Path, codec: Codec, setting: str
) -> list[tuple[np.ndarray, bytes] | Exception]:
    """Decodes every source of a batch, then encodes them: (pixels, bytes) or the error, per
    image."""
    decoded: list[np.ndarray | Exception] = []
    for item in items:
        try:
            decoded.append(read_pixels(Path(dataset_root) / item.relpath))
        except Exception as error:  # raised at the image's turn, naming its file
            decoded.append(error)
    outcomes: list[tuple[np.ndarray, bytes] | Exception] = []
    for item, pixels in zip(items, decoded, strict=True):
        if isinstance(pixels, Exception):
            outcomes.append(pixels)
            continue
        try:
            # Only a transcoder reads the source file's bytes; the others are spared the read.
            source = Path(dataset_root) / item.relpath
            source_bytes = source.read_bytes() if reads_source_bytes(codec) else b""
            outcomes.append((pixels, codec.encode_source(source_bytes, pixels, setting)))
        except Exception as error:
            outcomes.append(error)
    return outcomes


def encode_image(
    stage: EncodeStage,
    index: int,
    item: ImageItem,
    dataset_root: Path,
    codec: Codec,
    out: Path,
    key: str,
    encoded: tuple[np.ndarray, bytes] | None = None,
) -> dict:
    """Encodes one image into `out` and returns its record (sizes, geometry, file).

    `encoded` is the image's decoded pixels and encoded bytes when a batch made them already.
    """
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
        if encoded is None:
            [encoded] = encode_batch([item], dataset_root, codec, stage.setting)
            if isinstance(encoded, Exception):
                raise encoded
        pixels, data = encoded
        height, width = pixels.shape[:2]
        channels = 1 if pixels.ndim == 2 else pixels.shape[2]
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


def reads_source_bytes(codec: Codec) -> bool:
    """Whether the codec's encode_source uses the file bytes (it overrides the default)."""
    return type(codec).encode_source is not Codec.encode_source


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


def read_encode_records(store: ArtifactStore, stage: EncodeStage, start: int, stop: int):
    """Records [start, stop) of a finished encode (its merged records.jsonl)."""
    with (store.path("encode", stage.key) / "records.jsonl").open() as stream:
        return [json.loads(line) for line in itertools.islice(stream, start, stop)]


def measure_shard(
    store: ArtifactStore,
    stage: DistortionStage,
    shard_index: int,
    dataset_root: Path,
    items: list[ImageItem],
    codec: Codec,
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

    return write_shard(
        store, DISTORTION_SHARD_STAGE, stage, shard_index, dataset_root, items, record_of
    )


def finalize_distortion(store: ArtifactStore, stage: DistortionStage, *shards_done: int) -> dict:
    """Merges the measured shards of an encode and summarizes them; returns the summary."""
    del shards_done  # only orders this task after the shards
    if store.is_done("distortion", stage.key):
        return store.read_json("distortion", stage.key, "summary.json")
    records = merge_shards(store, DISTORTION_SHARD_STAGE, stage)
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
    summary = {
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
    with store.writing("distortion", stage.key) as out:
        with (out / "records.jsonl").open("w") as stream:
            for record in records:
                stream.write(json.dumps(record) + "\n")
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def distortion_records(store: ArtifactStore, stage: DistortionStage) -> list[dict]:
    """Per-image distortion of a finished distortion stage, in split order (the order of the
    encode's records): {"index", "source", "distortion": {field: value}, ["error"]}."""
    with (store.path("distortion", stage.key) / "records.jsonl").open() as stream:
        return [json.loads(line) for line in stream]


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
