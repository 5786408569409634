"""Validate: every image of a split decoded once, to apply the bad-image policy.

Planned before the sweep (the sweep plans over the images it keeps) by `plan_validation`, run
by the same executor as every other kind, and applied by `screening_of`: readable oddities are
converted and counted; unreadable files are quarantined (left out of every cell and listed)
or, with data.on_error=fail, stop the sweep naming the first one. The bill applies finished
validations the same way (`screening_of` with `unfinished_kept`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from sweep.data.base import SPLITS, DatasetReader, ImageItem
from sweep.data.digests import DIGEST_FOLDER, FileDigests
from sweep.data.validate import QUARANTINED, decoder_identity, inspect_image
from sweep.stages.billing import BillScope
from sweep.stages.graph import Plan
from sweep.stages.kind import Cost, Stage, StageContext, StageKind, digest
from sweep.stages.shards import ImageReadError, merge_shards, shard_ranges, write_shard
from sweep.store import ArtifactStore
from sweep.store.locations import join_location

NAME = "validate"
SHARD_FOLDER = "validate-shards"
log = logging.getLogger(__name__)


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
        path = join_location(dataset_root, item.relpath)  # a file, or an object's URL
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


def bill_validations(stages: list[ValidateStage], scope: BillScope) -> Cost:
    """Every image of the pending shards decoded once."""
    images = sum(scope.pending_shard_images(stage, SHARD_FOLDER) for stage in stages)
    return Cost(f"{images:,} images to decode once", images={"decode": images})


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
    bill=bill_validations,
)


# ---- screening: the verdicts applied ------------------------------------------------------


@dataclass
class Screening:
    """The images of each split after the bad-image policy, and what it found."""

    splits: dict[str, list[ImageItem]]
    # Identity of each split's kept images, derived from the validation: no second stat pass.
    fingerprints: dict[str, str] = field(default_factory=dict)
    quarantined: list[dict] = field(default_factory=list)
    converted: list[dict] = field(default_factory=list)

    def counts(self) -> dict[str, float]:
        counts = {}
        for split in SPLITS:
            counts[f"quarantined/{split}"] = sum(r["split"] == split for r in self.quarantined)
            counts[f"converted/{split}"] = sum(r["split"] == split for r in self.converted)
        return counts


def file_digests(store: ArtifactStore) -> FileDigests:
    """The content digests of dataset files, cached in the store: a file is read once while
    its size and modification time stay, and once more at each new place."""
    return FileDigests(store.local_dir / DIGEST_FOLDER)


def listed_screening(reader: DatasetReader, digests: FileDigests) -> Screening:
    """Every listed image kept, fingerprinted by the reader (for plans without validation)."""
    splits = {split: reader.items(split) for split in SPLITS}
    return Screening(splits, {s: reader.fingerprint(i, digests) for s, i in splits.items()})


def screened_fingerprint(validation_key: str, dropped: list[str]) -> str:
    """Identity of a split's kept images: its validation and the paths it quarantined. Every
    encode key holds it."""
    return digest({"validated": validation_key, "dropped": dropped})


def plan_validation(reader: DatasetReader, shard_size: int, digests: FileDigests) -> Plan:
    """One validation per split of the listed images, under this machine's decoders.

    The validation's key holds the content fingerprint, so hashing comes first: a new file is
    read twice (hashed, then decoded, mostly from the page cache), and a moved dataset is
    only hashed, reusing its validation and every later stage.
    """
    listed = {split: reader.items(split) for split in SPLITS}
    policy, plan = decoder_identity(), Plan(listed)
    for split, items in listed.items():
        plan.add(validate_stage(reader, split, items, policy, shard_size, digests), split)
    return plan


def screening_of(
    plan: Plan,
    store: ArtifactStore,
    dataset_root: Path | str,
    fail_fast: bool = False,
    unfinished_kept: bool = False,
) -> Screening:
    """The policy applied to the verdicts of a validation plan's finished stages.

    Args:
        plan: `plan_validation`'s plan.
        store: Where its verdicts are.
        dataset_root: Names a failing file (data.on_error=fail).
        fail_fast: The first quarantined file raises ImageReadError naming it.
        unfinished_kept: A validation that has not run keeps every image of its split (the
            bill's prediction); otherwise every validation must be finished.
    """
    screening = Screening({})
    for stage in plan.of_kind(NAME).values():
        listed = plan.splits[stage.split]
        if unfinished_kept and not store.is_done(NAME, stage.key):
            screening.splits[stage.split] = listed
            screening.fingerprints[stage.split] = screened_fingerprint(stage.key, [])
            continue
        kept = []
        for item, found in zip(listed, read_verdicts(store, stage), strict=True):
            if found["status"] == QUARANTINED:
                if fail_fast:
                    raise ImageReadError(
                        f"{join_location(dataset_root, item.relpath)}: {found['reason']} "
                        f"(data.on_error=fail)"
                    )
                screening.quarantined.append(
                    {"split": stage.split, "path": item.relpath, "reason": found["reason"]}
                )
                continue
            if found["kinds"]:
                screening.converted.append(
                    {"split": stage.split, "path": item.relpath, "kinds": " ".join(found["kinds"])}
                )
            kept.append(item)
        screening.splits[stage.split] = kept
        dropped = [r["path"] for r in screening.quarantined if r["split"] == stage.split]
        screening.fingerprints[stage.split] = screened_fingerprint(stage.key, dropped)
    if screening.quarantined and not unfinished_kept:
        log.warning(
            "%d unreadable image(s) quarantined, left out of every cell (listed in "
            "quarantine.csv): %s",
            len(screening.quarantined),
            ", ".join(r["path"] for r in screening.quarantined[:5]),
        )
    return screening
