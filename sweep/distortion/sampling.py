"""Which images of a split are measured: a seeded sample, the same for every setting.

Measuring costs several times the encode per image (benchmarks/distortion.py), while a
setting's median over 1,000 images is known to a fraction of the gap between two settings. So
`distortion.sample` images of each split are drawn, without replacement, from the split's
size and `distortion.seed` alone: every setting of the split measures the same images, and a
setting compared with another is compared on the same images.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

ALL = "all"
DEFAULT_SAMPLE = 1000


@lru_cache(maxsize=16)
def sampled_indices(images: int, sample: int | None, seed: int) -> tuple[int, ...]:
    """The indices, in split order, of the measured images of a split of `images` images:
    every one when `sample` is None or at least `images`, else `sample` of them drawn with
    `seed`."""
    if sample is None or sample >= images:
        return tuple(range(images))
    drawn = np.random.default_rng(seed).choice(images, size=sample, replace=False)
    return tuple(int(index) for index in np.sort(drawn))


def sample_identity(images: int, sample: int | None, seed: int) -> dict:
    """What the measured images of a split and their summary's intervals depend on, for stage
    keys: the sample's size, "all" when every image is measured (a sample as large as the
    split measures every image), and the seed (of the draw and of the intervals)."""
    size = ALL if sample is None or sample >= images else sample
    return {"images": size, "seed": seed}
