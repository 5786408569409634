"""Which classes a detection split covers, and the warnings when that changes what a score means.

Two things are logged as warnings, because neither stops a sweep but both change its numbers:

* objects left out by `task.reader.unknown_classes=skip`, counted per class and split;
* a test split with classes that the training split lacks (no model learns them, so every
  cell misses them alike), or with no object of a training class at all (mAP is undefined:
  torchmetrics reports -1).

Difficult (VOC) and crowd (COCO) objects are not counted: training leaves them out, and
evaluation neither finds nor misses them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

from sweep.data.base import ImageItem

log = logging.getLogger(__name__)


def class_counts(items: Sequence[ImageItem], class_names: Sequence[str]) -> Counter[str]:
    """Objects per class name in a split's detection targets, difficult and crowd ones aside."""
    counts: Counter[str] = Counter()
    for item in items:
        labels = item.target["labels"]
        difficult = item.target.get("difficult") or [False] * len(labels)
        for label, flagged in zip(labels, difficult, strict=True):
            if not flagged:
                counts[class_names[label]] += 1
    return counts


def describe_counts(counts: Counter[str]) -> str:
    """'Tree 3, Bush 1': most frequent first, then by name (deterministic)."""
    ordered = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
    return ", ".join(f"{name} {count}" for name, count in ordered)


def log_skipped(
    where: str, split: str, skipped: Counter[str], known: str = "task.reader.classes"
) -> None:
    """Warns how many objects of which classes unknown_classes=skip left out of a split.

    Args:
        where: The dataset, for the message.
        split: "train" or "test".
        skipped: Objects left out per class name.
        known: What lists the classes that are kept, for the message.
    """
    if skipped:
        log.warning(
            "%s: task.reader.unknown_classes=skip left %d object(s) out of the %s split, of "
            "classes that are not in %s: %s",
            where,
            sum(skipped.values()),
            split,
            known,
            describe_counts(skipped),
        )


def check_test_classes(where: str, train: Counter[str], test: Counter[str]) -> list[str]:
    """Warns about test classes that training lacks, and a test split with none it has.

    Args:
        where: The dataset, for the message (its root or annotation file).
        train: Objects per class of the training split (`class_counts`).
        test: Objects per class of the test split.

    Returns:
        The warnings logged (empty when the splits fit together).
    """
    warnings = []
    absent = Counter({name: count for name, count in test.items() if name not in train})
    if absent:
        warnings.append(
            f"{where}: the test split has objects of classes that the training split lacks: "
            f"{describe_counts(absent)}. No model learns them, so every cell misses them "
            f"alike; add training examples, or leave them out of task.reader.classes with "
            f"task.reader.unknown_classes=skip"
        )
    if not set(test) & set(train):
        found = f"its objects are {describe_counts(test)}" if test else "it has no objects"
        warnings.append(
            f"{where}: the test split holds no object of the training classes "
            f"{sorted(train)} ({found}): mAP is undefined (-1) in every cell; check the test "
            f"split's annotations and task.reader.classes"
        )
    for warning in warnings:
        log.warning("%s", warning)
    return warnings
