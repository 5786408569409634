"""Cost of the measured-distortion stage against the encode stage, in one process and run.

Measuring is a stage of its own (not part of the encode figure): this says what it adds to a
sweep. Images: four of scikit-image's photographs at the Food-101 size (512x384), saved as
JPEG (quality 90) as the dataset's sources are. Timed in CPU seconds (of this process and of
the tool processes it starts), fastest of `rounds`: on a machine shared with other work the
wall clock measures the neighbours (Butteraugli's tool waits 4x its CPU time for a core under
load), the CPU time hardly. Each step runs on one thread:

* the encode stage's work per image and setting: decoding the source JPEG as the stage does
  (`read_pixels`) and encoding it with libjxl (imagecodecs, effort 7, one thread) at each of
  the 11 distances of conf/codec/jxl.yaml;
* the distortion stage's work per image and setting: decoding the source and the encoded
  file, then each measure (SSIMULACRA 2 in its fast form and in its exact form, the port
  before it was vectorised), at distances 0.5, 4 and 10.

From these, the stages' CPU time on Food-101's full grid (25,250 test images, 11 lossy
settings; the original setting costs neither stage anything) and the ratio of the
distortion stage's (test split, the default measures) to the encode stage's, for
`distortion.sample=1000` (the default) and `all`. Ray's own overhead is left out of both.
"""

from __future__ import annotations

import io
import resource
import tempfile
import time
from pathlib import Path

import imagecodecs
import numpy as np

from sweep.data.pixels import read_pixels
from sweep.distortion import DistortionOptions, measure_image, resolve_measurement
from sweep.distortion.ssimulacra2 import ssimulacra2

ROUNDS = 3
SIZE = (512, 384)
EFFORT = 7
# conf/codec/jxl.yaml: the settings of the full grid besides `original`.
DISTANCES = (0.5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
MEASURED_AT = (0.5, 4, 10)
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
# Food-101: test images, and the default of distortion.sample.
TEST_IMAGES = 25_250
DEFAULT_SAMPLE = 1000
MEASURES = ("psnr", "ssim", "ssimulacra2", "butteraugli")


def cpu_seconds() -> float:
    """CPU seconds of this process and of its finished child processes so far."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def fastest(work, rounds: int) -> float:
    """CPU seconds of the fastest of `rounds` runs of `work()` (after one untimed run)."""
    work()
    best = float("inf")
    for _ in range(rounds):
        started = cpu_seconds()
        work()
        best = min(best, cpu_seconds() - started)
    return best


def sources(folder: Path) -> list[Path]:
    """The photographs at 512x384 as JPEG files (quality 90), as a dataset holds them."""
    from PIL import Image
    from skimage import data

    paths = []
    for name in PHOTOS:
        photo = Image.fromarray(getattr(data, name)()).convert("RGB").resize(SIZE, Image.LANCZOS)
        buffer = io.BytesIO()
        photo.save(buffer, format="JPEG", quality=90)
        path = folder / f"{name}.jpg"
        path.write_bytes(buffer.getvalue())
        paths.append(path)
    return paths


def encode(pixels: np.ndarray, distance: float) -> bytes:
    return imagecodecs.jpegxl_encode(pixels, distance=distance, effort=EFFORT, numthreads=1)


def run(rounds: int = ROUNDS) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-distortion-") as folder:
        paths = sources(Path(folder))
        read_s = np.mean([fastest(lambda p=p: read_pixels(p), rounds) for p in paths])
        pixels = [read_pixels(path) for path in paths]
    encode_s = {
        d: np.mean([fastest(lambda p=p, d=d: encode(p, d), rounds) for p in pixels])
        for d in DISTANCES
    }
    pairs = [(p, encode(p, d)) for p in pixels for d in MEASURED_AT]
    decode_s = np.mean(
        [fastest(lambda e=e: imagecodecs.jpegxl_decode(e), rounds) for _, e in pairs]
    )
    decoded = [(p, imagecodecs.jpegxl_decode(e)) for p, e in pairs]
    measure_s: dict[str, float | None] = {}
    for measure in MEASURES:
        measurement = resolve_measurement(DistortionOptions(measures=(measure,)))
        if not measurement.measures:
            measure_s[measure] = None  # its tool is not installed
            continue
        measure_s[measure] = float(
            np.mean(
                [
                    fastest(lambda r=r, t=t, m=measurement: measure_image(r, t, m), rounds)
                    for r, t in decoded
                ]
            )
        )
    measure_s["ssimulacra2_exact"] = float(
        np.mean(
            [fastest(lambda r=r, t=t: ssimulacra2(r, t, exact=True), rounds) for r, t in decoded]
        )
    )
    per_image = {
        "read_source": float(read_s),
        "encode": float(np.mean(list(encode_s.values()))),
        "decode_jxl": float(decode_s),
        **measure_s,
    }
    return {
        "size": f"{SIZE[0]}x{SIZE[1]}",
        "ms_per_image": {name: None if s is None else s * 1e3 for name, s in per_image.items()},
        "encode_ms_by_distance": {str(d): s * 1e3 for d, s in encode_s.items()},
        "food101_test_grid": grid_costs(per_image),
    }


def grid_costs(per_image: dict[str, float | None]) -> dict:
    """CPU-hours of the encode and distortion stages on Food-101's test split at the full
    grid's 11 lossy settings, and their ratios, from seconds per image and setting."""
    settings = len(DISTANCES)
    encode_s = per_image["read_source"] + per_image["encode"]
    # What every measured image pays besides its measures: both decodes.
    reading_s = per_image["read_source"] + per_image["decode_jxl"]
    measures = [per_image[m] for m in MEASURES if per_image[m] is not None]
    before = [per_image[m] for m in MEASURES if m != "ssimulacra2" and per_image[m] is not None]
    distortion_s = {
        "default measures": reading_s + sum(measures),
        "default measures, SSIMULACRA 2 as before": reading_s
        + sum(before)
        + per_image["ssimulacra2_exact"],
    }
    encode_h = TEST_IMAGES * settings * encode_s / 3600
    rows = []
    for label, seconds in distortion_s.items():
        for sample in (DEFAULT_SAMPLE, "all"):
            images = TEST_IMAGES if sample == "all" else min(sample, TEST_IMAGES)
            hours = images * settings * seconds / 3600
            rows.append(
                {"measures": label, "sample": sample, "cpu_hours": hours, "ratio": hours / encode_h}
            )
    return {
        "images": TEST_IMAGES,
        "settings": settings,
        "skipped": [m for m in MEASURES if per_image[m] is None],
        "encode_cpu_hours": encode_h,
        "distortion": rows,
    }


def report(figures: dict) -> str:
    ms = figures["ms_per_image"]

    def cell(name: str) -> str:
        return "skipped" if ms[name] is None else f"{ms[name]:.1f}"

    old, new = ms["ssimulacra2_exact"], ms["ssimulacra2"]
    grid = figures["food101_test_grid"]
    lines = [
        f"distortion against encode, CPU ms per image and setting at {figures['size']}:",
        f"  encode stage: read source {cell('read_source')} + encode {cell('encode')} "
        f"(mean of {len(DISTANCES)} distances)",
        f"  distortion stage: read source {cell('read_source')} + decode .jxl "
        f"{cell('decode_jxl')} + measures:",
        f"    psnr {cell('psnr')}, ssim {cell('ssim')}, butteraugli {cell('butteraugli')}",
        f"    ssimulacra2 {new:.1f} (before: exact form {old:.1f}, {old / new:.1f}x)",
        f"  Food-101 test split, {grid['images']:,} images x {grid['settings']} lossy settings: "
        f"encode {grid['encode_cpu_hours']:.1f} CPU-h",
    ]
    if grid["skipped"]:
        lines.append(f"    (not installed, left out: {', '.join(grid['skipped'])})")
    for row in grid["distortion"]:
        lines.append(
            f"    distortion, {row['measures']}, sample={row['sample']}: "
            f"{row['cpu_hours']:.2f} CPU-h, {row['ratio']:.2f}x the encode"
        )
    return "\n".join(lines)
