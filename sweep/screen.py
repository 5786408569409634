"""Screening: every image decoded once (the validate stages), then the bad-image policy.

Readable oddities are converted and counted; unreadable files are quarantined (left out of
every cell and listed) or, with data.on_error=fail, stop the sweep naming the first one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sweep.config import Sweep
from sweep.data.base import SPLITS, ImageItem
from sweep.data.digests import DIGEST_FOLDER, FileDigests
from sweep.data.validate import QUARANTINED, decoder_identity
from sweep.engine.execute import execute
from sweep.stages import validate
from sweep.stages.graph import Plan
from sweep.stages.kind import StageContext, digest
from sweep.stages.shards import ImageReadError
from sweep.stages.validate import read_verdicts, validate_stage

log = logging.getLogger(__name__)


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


def file_digests(sweep: Sweep) -> FileDigests:
    """The content digests of dataset files, cached in the sweep's store: a file is read once
    while its size and modification time stay, and once more at each new place."""
    return FileDigests(sweep.store.root / DIGEST_FOLDER)


def listed_screening(sweep: Sweep) -> Screening:
    """Every listed image kept, fingerprinted by the reader (for plans without validation)."""
    splits = {split: sweep.reader.items(split) for split in SPLITS}
    digests = file_digests(sweep)
    return Screening(splits, {s: sweep.reader.fingerprint(i, digests) for s, i in splits.items()})


def screened_fingerprint(validation_key: str, dropped: list[str]) -> str:
    """Identity of a split's kept images: its validation and the paths it quarantined. Every
    encode key holds it, so the dry run's bill (sweep/bill.py) makes it the same way."""
    return digest({"validated": validation_key, "dropped": dropped})


def screen_images(sweep: Sweep) -> Screening:
    """Decodes every image once (cached by dataset fingerprint) and applies the policy.

    The validation's key holds the content fingerprint, so hashing comes first: a new file is
    read twice (hashed here, then decoded, mostly from the page cache), and a moved dataset
    is only hashed, reusing its validation and every later stage.
    """
    listed = {split: sweep.reader.items(split) for split in SPLITS}
    shard_size, policy = sweep.cluster.encode_shard_size, decoder_identity()
    plan = Plan(listed)
    digests = file_digests(sweep)
    for split, items in listed.items():
        stage = validate_stage(sweep.reader, split, items, policy, shard_size, digests)
        plan.add(stage, split)
    fail_fast = sweep.on_error == "fail"
    context = StageContext(sweep.store, sweep.reader.root, fail_fast=fail_fast)
    execute(plan, context, sweep.cluster, sweep.progress, stop_on_failure=fail_fast)
    screening = Screening({})
    for stage in plan.of_kind(validate.NAME).values():
        verdicts = read_verdicts(sweep.store, stage)
        kept = []
        for item, found in zip(listed[stage.split], verdicts, strict=True):
            if found["status"] == QUARANTINED:
                if fail_fast:
                    raise ImageReadError(
                        f"{sweep.reader.root / item.relpath}: {found['reason']} "
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
    if screening.quarantined:
        log.warning(
            "%d unreadable image(s) quarantined, left out of every cell (listed in "
            "quarantine.csv): %s",
            len(screening.quarantined),
            ", ".join(r["path"] for r in screening.quarantined[:5]),
        )
    return screening
