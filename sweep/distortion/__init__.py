"""Measured distortion of each encoded image against the pixels its codec was given.

Measures: PSNR and SSIM (scikit-image), SSIMULACRA 2 (a port of libjxl's tool, see
ssimulacra2.py) and Butteraugli, maximum and 3-norm, through libjxl's `butteraugli_main`
when it is installed (skipped with a stated reason when it is not). The reference is the
source decoded as the encode stage decodes it; the distorted image is the codec's decode of
the bytes the encode wrote.

Measuring is a stage of its own, keyed on the encode it reads, on the measures and their
tools' versions and on the sample of images it measures (sampling.py: `distortion.sample`
images of each split, the same for every setting), so that turning it on or off, or
installing a tool, never re-encodes. Its summary (summary.py) carries bootstrap intervals of
each measure's median and mean over the measured images.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

# Modules by their own names, functions by others: `sweep.distortion.butteraugli` stays the
# module.
from sweep.data.pixels import drop_alpha, to_rgb, to_uint8
from sweep.distortion import butteraugli as butteraugli_tool
from sweep.distortion import measures as pixel_measures
from sweep.distortion.sampling import ALL, DEFAULT_SAMPLE
from sweep.distortion.ssimulacra2 import ssimulacra2 as ssimulacra2_score
from sweep.distortion.summary import summarize_distortion as summarize_fields

MEASURES = ("psnr", "ssim", "ssimulacra2", "butteraugli")
SPLITS = ("train", "test")
# The fields of an image's "distortion" record that each measure fills.
FIELDS = {
    "psnr": ("psnr",),
    "ssim": ("ssim",),
    "ssimulacra2": ("ssimulacra2",),
    "butteraugli": ("butteraugli_max", "butteraugli_3norm"),
}
# Values of an image against itself: what the original setting records by definition
# (PSNR is infinite, stored as None).
IDENTICAL = {
    "psnr": None,
    "ssim": 1.0,
    "ssimulacra2": 100.0,
    "butteraugli_max": 0.0,
    "butteraugli_3norm": 0.0,
}
# Fields where a larger value means less distortion (for the direction of the bad tail).
HIGHER_IS_BETTER = ("psnr", "ssim", "ssimulacra2")
# SSIMULACRA 2 and Butteraugli compare nothing on images with a side under 8 pixels.
MIN_SIDE = 8
# Bump when the numbers a measure computes change (the implementation, not its tool).
# 2: float32 with the blur as its 9-tap kernel (scores move by under 0.01).
SSIMULACRA2_VERSION = 2
# `distortion.sample`: a number of images, or "all" (the config reads it unchecked: see
# sweep.config.distortion_options).
SampleSize = int | str

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistortionOptions:
    """The `distortion` config section.

    Args:
        enabled: Measure at all (distortion.enabled=false turns it off).
        splits: Splits whose encoded images are measured ("test", "train").
        measures: Any of psnr, ssim, ssimulacra2, butteraugli.
        sample: Images measured per split, a seeded sample that every setting shares; "all"
            measures every image.
        seed: Seed of the sample and of the summary's bootstrap intervals.
    """

    enabled: bool = True
    splits: Sequence[str] = ("test",)
    measures: Sequence[str] = MEASURES
    sample: SampleSize = DEFAULT_SAMPLE
    seed: int = 0


@dataclass(frozen=True)
class Measurement:
    """The measures a sweep runs, resolved on this machine (tools found, versions read)."""

    splits: tuple[str, ...]
    measures: tuple[str, ...]
    # JSON of {measure: identity}: what the numbers depend on, part of the stage keys.
    tools_json: str
    # (measure, reason) of each requested measure that cannot run here.
    skipped: tuple[tuple[str, str], ...] = field(default=())
    butteraugli_path: str | None = None
    # Images measured per split (None: every image) and the seed of their draw.
    sample: int | None = DEFAULT_SAMPLE
    seed: int = 0

    @property
    def tools(self) -> dict:
        return json.loads(self.tools_json)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(name for measure in self.measures for name in FIELDS[measure])


def resolve_measurement(options: DistortionOptions) -> Measurement | None:
    """The measurement a config asks for, with the tools of this machine; None when off.

    A requested tool that is missing is skipped with a logged reason, never an error.
    """
    if not options.enabled:
        return None
    import skimage

    tools, skipped, tool_path = {}, [], None
    for measure in options.measures:
        if measure in ("psnr", "ssim"):
            tools[measure] = {"library": f"scikit-image {skimage.__version__}"}
            if measure == "ssim":
                tools[measure]["parameters"] = pixel_measures.SSIM_PARAMETERS
        elif measure == "ssimulacra2":
            import scipy

            tools[measure] = {
                "implementation": "sweep.distortion.ssimulacra2",
                "version": SSIMULACRA2_VERSION,
                "library": f"scipy {scipy.__version__}",
            }
        elif measure == "butteraugli":
            tool_path = butteraugli_tool.find_tool()
            if tool_path is None:
                reason = (
                    f"{butteraugli_tool.TOOL} is not installed ({butteraugli_tool.INSTALL_HINT})"
                )
                skipped.append((measure, reason))
                log.warning("distortion: Butteraugli skipped: %s", reason)
                continue
            tools[measure] = butteraugli_tool.tool_identity(tool_path)
    return Measurement(
        splits=tuple(options.splits),
        measures=tuple(m for m in options.measures if m in tools),
        tools_json=json.dumps(tools, sort_keys=True),
        skipped=tuple(skipped),
        butteraugli_path=tool_path,
        sample=None if options.sample == ALL else int(options.sample),
        seed=options.seed,
    )


def same_layout(reference: np.ndarray, distorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both images as uint8 of one shape: grey against RGB compares as RGB."""
    reference, distorted = (to_uint8(drop_alpha(image)) for image in (reference, distorted))
    if reference.ndim != distorted.ndim:
        reference, distorted = to_rgb(reference), to_rgb(distorted)
    if reference.shape != distorted.shape:
        raise ValueError(
            f"the decoded image is {distorted.shape[1]}x{distorted.shape[0]} but its source "
            f"is {reference.shape[1]}x{reference.shape[0]}"
        )
    return reference, distorted


def measure_image(
    reference: np.ndarray, distorted: np.ndarray, measurement: Measurement
) -> dict[str, float | None]:
    """Every measure of `measurement` for one image: {field: value}; None where undefined
    (PSNR of identical images, SSIMULACRA 2 and Butteraugli under 8x8 pixels)."""
    reference, distorted = same_layout(reference, distorted)
    too_small = min(reference.shape[:2]) < MIN_SIDE
    values: dict[str, float | None] = {}
    for measure in measurement.measures:
        if measure == "psnr":
            values["psnr"] = pixel_measures.psnr(reference, distorted)
        elif measure == "ssim":
            values["ssim"] = pixel_measures.ssim(reference, distorted)
        elif measure == "ssimulacra2":
            values["ssimulacra2"] = None if too_small else ssimulacra2_score(reference, distorted)
        elif measure == "butteraugli":
            if too_small:
                values["butteraugli_max"] = values["butteraugli_3norm"] = None
            else:
                tool = measurement.butteraugli_path
                maximum, norm = butteraugli_tool.butteraugli(reference, distorted, tool)
                values["butteraugli_max"], values["butteraugli_3norm"] = maximum, norm
    return values


def identical_values(measurement: Measurement) -> dict[str, float | None]:
    """The record of an image compared with itself (the original setting)."""
    return {name: IDENTICAL[name] for name in measurement.fields}


def summarize_distortion(records: list[dict], measurement: Measurement) -> dict:
    """Per field of `measurement`: percentiles, mean, counts and the bootstrap intervals of
    the median and the mean over the measured images (see `summary.summarize_distortion`)."""
    return summarize_fields(records, measurement.fields, measurement.seed)
