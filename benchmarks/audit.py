"""Audit speed: header reads per second against full decodes of the same files, in one run.

The corpus is written once, then read once so that both measurements start from a warm page
cache, as the target says.
"""

from __future__ import annotations

import os
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from sweep.audit.scan import audit_file, audit_files

FILES = 4000


def write_corpus(folder: Path, count: int) -> list[tuple[str, str]]:
    """JPEGs of 512x384 crops (the size of Food-101 images) at varied qualities and subsamplings."""
    photo = data.astronaut()
    rng = np.random.default_rng(0)
    files = []
    for index in range(count):
        top = int(rng.integers(0, 512 - 384))
        crop = Image.fromarray(photo[top : top + 384])
        buffer = BytesIO()
        crop.save(
            buffer, "JPEG", quality=int(rng.integers(5, 100)), subsampling=int(rng.integers(0, 3))
        )
        relpath = f"{index % 50:02d}/{index:06d}.jpg"
        (folder / relpath).parent.mkdir(exist_ok=True)
        (folder / relpath).write_bytes(buffer.getvalue())
        files.append(("train", relpath))
    return files


def warm(folder: Path, files: list[tuple[str, str]]) -> None:
    for _, relpath in files:
        (folder / relpath).read_bytes()


def per_second(count: int, function) -> float:
    started = time.perf_counter()
    function()
    return count / (time.perf_counter() - started)


def run() -> dict:
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        files = write_corpus(folder, FILES)
        warm(folder, files)
        one_core = per_second(len(files), lambda: [audit_file(folder, s, p) for s, p in files])
        all_cores = per_second(len(files), lambda: audit_files(folder, files, workers=cores))

        def decode_all() -> None:
            for _, relpath in files:
                with Image.open(folder / relpath) as image:
                    image.load()

        decode = per_second(len(files), decode_all)
    return {
        "files": len(files),
        "cores": cores,
        "audit_files_per_s_one_core": one_core,
        "audit_files_per_s_all_cores": all_cores,
        "audit_files_per_s_per_core": all_cores / cores,
        "decode_files_per_s_one_core": decode,
        "audit_over_decode_per_core": one_core / decode,
    }


def report(figures: dict) -> str:
    f = figures
    lines = [
        f"audit, {f['files']} JPEGs 512x384, warm page cache, {f['cores']} cores",
        f"  full decode (Pillow), one core : {f['decode_files_per_s_one_core']:.0f} files/s",
        f"  audit headers, one core        : {f['audit_files_per_s_one_core']:.0f} files/s",
        f"  audit headers, all cores       : {f['audit_files_per_s_all_cores']:.0f} files/s "
        f"({f['audit_files_per_s_per_core']:.0f} per core)",
        f"  audit / full decode, per core  : {f['audit_over_decode_per_core']:.1f}x",
    ]
    return "\n".join(lines)
