"""The table of stage kinds, in the order of planning and of submission.

A kind comes after the kinds it reads, and the measures go last, so that free cores go to the
trainings first. Adding a kind is its module plus one entry here (see sweep/stages/__init__.py).
"""

from __future__ import annotations

from sweep.stages import decoded, distortion, encode, evaluate, sensitivity, train, validate
from sweep.stages.kind import StageKind

STAGE_KINDS: dict[str, StageKind] = {
    kind.name: kind
    for kind in (
        validate.KIND,
        encode.KIND,
        decoded.KIND,
        train.KIND,
        evaluate.KIND,
        sensitivity.KIND,
        distortion.KIND,
    )  # fmt: skip
}
