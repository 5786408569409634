"""Decode throughput of the training data loader: .jxl written by the encode stage against
the original JPEGs of the same images, through the dataset class training uses.

Decoding feeds every epoch of every training, so a slower format costs training time. One
process, as one data-loader worker sees it; no transform beyond the decode to a tensor.
"""

from __future__ import annotations

import time
from pathlib import Path

from sweep.stages.encode import EncodeStage, encoded_files
from sweep.store import ArtifactStore
from sweep.tasks.options import LabelledFile


def images_per_second(files: list[LabelledFile], rounds: int) -> tuple[float, float]:
    """(images/s, MP/s) of ImageFileDataset decoding every file, fastest of `rounds`."""
    from sweep.tasks.runtime import ImageFileDataset

    dataset = ImageFileDataset(files, transform=lambda image: image)
    for index in range(min(5, len(dataset))):  # warm up the decoders
        dataset[index]
    best, pixels = float("inf"), 0
    for _ in range(rounds):
        started = time.perf_counter()
        pixels = 0
        for index in range(len(dataset)):
            image, _ = dataset[index]  # (3, H, W) uint8
            pixels += image.shape[1] * image.shape[2]
        best = min(best, time.perf_counter() - started)
    return len(dataset) / best, pixels / best / 1e6


def decode_throughput(
    store: ArtifactStore, stage: EncodeStage, dataset_root: Path, items: list, rounds: int
) -> dict:
    jxl = encoded_files(store, stage)
    jpeg = [LabelledFile(str(Path(dataset_root) / item.relpath), item.target) for item in items]
    jpeg_rate, jpeg_mp = images_per_second(jpeg, rounds)
    jxl_rate, jxl_mp = images_per_second(jxl, rounds)
    return {
        "jpeg_images_per_s": jpeg_rate,
        "jpeg_mp_per_s": jpeg_mp,
        "jxl_images_per_s": jxl_rate,
        "jxl_mp_per_s": jxl_mp,
    }
