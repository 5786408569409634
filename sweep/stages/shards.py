"""Shards: consecutive ranges of a split's images, each published on its own, then merged.

A sharded stage (validate, encode, distortion) writes one output per shard under its kind's
shard folder, keyed by the stage's key and the shard's image range, and its merge task checks
that the shards cover every image exactly once before it publishes the stage.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from sweep.data.base import ImageItem
from sweep.errors import SweepError
from sweep.stages.kind import Stage
from sweep.store import ArtifactStore
from sweep.store.locations import join_location


class ImageReadError(SweepError):
    """An image of the dataset that cannot be read or encoded; the message names the file."""


def shard_ranges(count: int, shard_size: int) -> tuple[tuple[int, int], ...]:
    """Consecutive ranges of at most `shard_size` images, as few as that allows, of equal
    size give or take one: a short last shard would leave cores idle at the end of a stage."""
    shards = -(-count // shard_size)  # ceil
    bounds = [index * count // shards for index in range(shards + 1)] if shards else []
    return tuple(zip(bounds[:-1], bounds[1:], strict=True))


def shard_key(stage: Stage, shard_index: int) -> str:
    """The shard's image range is part of its key: a rerun with another shard size must not
    take an old shard for a new one that covers other images."""
    start, stop = stage.shards[shard_index]
    return f"{stage.key}/{start:08d}-{stop:08d}"


def write_shard(
    store: ArtifactStore,
    shard_folder: str,
    stage: Stage,
    shard_index: int,
    dataset_root: Path,
    items: list[ImageItem],
    record_of: Callable[[int, ImageItem, Path, str], dict],
    finish: Callable[[], None] | None = None,
) -> int:
    """Publishes the records of one shard; returns its image count (0 if done before).

    `record_of(index, item, out, key)` makes one image's record (writing files into `out`);
    whatever goes wrong with an image becomes an ImageReadError naming the file. `finish()`
    runs after the last image, before the shard is published (it closes a pack).
    """
    key = shard_key(stage, shard_index)
    if store.is_done(shard_folder, key):
        return 0
    start = stage.shards[shard_index][0]
    with store.writing(shard_folder, key) as out:
        records = []
        for offset, item in enumerate(items):
            try:
                records.append(record_of(start + offset, item, out, key))
            except ImageReadError:
                raise
            except Exception as error:
                raise ImageReadError(
                    f"{join_location(dataset_root, item.relpath)}: {type(error).__name__}: {error}"
                ) from None
        if finish is not None:
            finish()
        (out / "records.json").write_text(json.dumps(records))
    return len(items)


def merge_shards(store: ArtifactStore, shard_folder: str, stage: Stage) -> list[dict]:
    """The records of every shard of a stage, checked to cover each image exactly once."""
    records = []
    for index in range(len(stage.shards)):
        # Only the records: a remote shard's pack stays where it is.
        shard = store.file(shard_folder, shard_key(stage, index), "records.json")
        records.extend(json.loads(shard.read_text()))
    expected = list(range(stage.shards[-1][1])) if stage.shards else []
    if [record["index"] for record in records] != expected:
        raise RuntimeError(f"{shard_folder} {stage.key}: shard records do not cover every image")
    return records


def publish_merged(
    store: ArtifactStore,
    stage_folder: str,
    shard_folder: str,
    stage: Stage,
    summarize: Callable[[list[dict]], dict],
) -> dict:
    """Merges a stage's shard records and publishes them, one JSON line per image in
    `records.jsonl`, with `summarize(records)` in `summary.json`; returns the summary (the
    stored one when the stage was published before). Never publishes a split with a missing
    or repeated image."""
    if store.is_done(stage_folder, stage.key):
        return store.read_json(stage_folder, stage.key, "summary.json")
    records = merge_shards(store, shard_folder, stage)
    summary = summarize(records)
    with store.writing(stage_folder, stage.key) as out:
        with (out / "records.jsonl").open("w") as stream:
            for record in records:
                stream.write(json.dumps(record) + "\n")
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
