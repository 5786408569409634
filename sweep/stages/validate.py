"""Validate: every image of a split decoded once, to apply the bad-image policy.

Planned before the sweep (the sweep plans over the images it keeps) by `plan_validation`, and
run by the same executor as every other kind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sweep.data.base import DatasetReader, ImageItem
from sweep.data.digests import FileDigests
from sweep.data.validate import QUARANTINED, inspect_image
from sweep.stages.kind import Stage, StageContext, StageKind
from sweep.stages.shards import ImageReadError, merge_shards, shard_ranges, write_shard
from sweep.store import ArtifactStore

NAME = "validate"
SHARD_FOLDER = "validate-shards"


@dataclass(frozen=True)
class ValidateStage(Stage):
    """Every image of one split decoded once, in shards of consecutive images."""

    kind = NAME
    split: str
    shards: tuple[tuple[int, int], ...]


def validate_stage(
    reader: DatasetReader,
    split: str,
    items: list[ImageItem],
    policy: dict,
    shard_size: int,
    digests: FileDigests | None = None,
) -> ValidateStage:
    """The validation of one split under a decoding policy (the decoders' versions).

    Its key holds the split's content fingerprint (`DatasetReader.fingerprint`, with the
    cached file digests `digests`), never the dataset's place: a moved dataset is not
    validated again.
    """
    key = KIND.key(policy=policy, split=split, dataset=reader.fingerprint(items, digests))
    return ValidateStage(key, split, shard_ranges(len(items), shard_size))


def validate_shard(
    context: StageContext, stage: ValidateStage, shard_index: int, items: list[ImageItem]
) -> int:
    """Decodes one shard of a split and records each file's verdict; returns the image count.

    With `context.fail_fast` the first unreadable file raises ImageReadError naming it, and
    nothing is published (data.on_error=fail).
    """
    dataset_root = context.dataset_root

    def verdict_of(index: int, item: ImageItem, out: Path, key: str) -> dict:
        path = Path(dataset_root) / item.relpath
        found = inspect_image(path)
        if context.fail_fast and found["status"] == QUARANTINED:
            raise ImageReadError(
                f"{path}: {found['reason']} "
                f"(data.on_error=fail; data.on_error=quarantine leaves it out instead)"
            )
        return {"index": index, "path": item.relpath, **found}

    return write_shard(
        context.store, SHARD_FOLDER, stage, shard_index, dataset_root, items, verdict_of
    )


def finalize_validation(context: StageContext, stage: ValidateStage, *shards_done: int) -> dict:
    """Merges the verdicts of a split."""
    del shards_done  # only orders this task after the shards
    store = context.store
    if not store.is_done(KIND.name, stage.key):
        records = merge_shards(store, SHARD_FOLDER, stage)
        with store.writing(KIND.name, stage.key) as out:
            (out / "verdicts.json").write_text(json.dumps(records))
    return {"split": stage.split}


def read_verdicts(store: ArtifactStore, stage: ValidateStage) -> list[dict]:
    """Each image's verdict, in split order: {"index", "path", "status", "reason", "kinds"}."""
    return store.read_json(KIND.name, stage.key, "verdicts.json")


KIND = StageKind(
    name=NAME,
    # 2: "dataset" is the content fingerprint (relative paths, sizes, content digests), no
    # longer one of modification times.
    schema=2,
    inputs=(),
    key_fields=("policy", "split", "dataset"),
    run=finalize_validation,
    read=read_verdicts,
    shard=validate_shard,
    shard_folder=SHARD_FOLDER,
    unit="img",
)
