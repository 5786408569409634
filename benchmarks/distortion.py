"""Cost of the measured-distortion stage, per measure and image size, in one process.

Measuring is a stage of its own (not part of the encode figure): this says what it adds to a
sweep. Images: a photograph at the demo size (96x96) and at the Food-101 size (512x384),
encoded at distance 1; each measure timed alone, fastest of `rounds`.
"""

from __future__ import annotations

import time

import imagecodecs
import numpy as np

from sweep.distortion import DistortionOptions, measure_image, resolve_measurement

ROUNDS = 3
SIZES = ((96, 96, 40), (512, 384, 4))


def run(rounds: int = ROUNDS) -> dict:
    from PIL import Image
    from skimage import data

    photo = Image.fromarray(data.astronaut())
    rows = []
    for width, height, count in SIZES:
        reference = np.asarray(photo.resize((width, height), Image.LANCZOS))
        encoded = imagecodecs.jpegxl_encode(reference, distance=1.0, effort=7, numthreads=1)
        distorted = imagecodecs.jpegxl_decode(encoded)
        row = {"size": f"{width}x{height}"}
        for measure in ("psnr", "ssim", "ssimulacra2", "butteraugli"):
            measurement = resolve_measurement(DistortionOptions(measures=(measure,)))
            if not measurement.measures:
                row[measure] = None
                continue
            measure_image(reference, distorted, measurement)  # imports, caches
            best = float("inf")
            for _ in range(rounds):
                started = time.perf_counter()
                for _ in range(count):
                    measure_image(reference, distorted, measurement)
                best = min(best, (time.perf_counter() - started) / count)
            row[measure] = best * 1e3
        rows.append(row)
    return {"ms_per_image": rows}


def report(figures: dict) -> str:
    lines = ["distortion measures, ms per image on one core (a stage apart from the encode):"]
    for row in figures["ms_per_image"]:
        cells = ", ".join(
            f"{name} {'skipped' if row[name] is None else f'{row[name]:.1f}'}"
            for name in ("psnr", "ssim", "ssimulacra2", "butteraugli")
        )
        lines.append(f"  {row['size']:>8}: {cells}")
    return "\n".join(lines)
