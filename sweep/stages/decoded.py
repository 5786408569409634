"""Decoded: a train split's encode decoded once into a training-ready cache of its pixels.

With train.decode_cache=true, each train-split encode that a training reads is decoded once
here, and every training (seed) of its setting reads the cache instead of decoding the files
each epoch: one core decodes ~100-150 JPEG XL images a second at 512x384, a memory-mapped
cache reads several times faster (benchmarks/loader.py). Only the trainings of families whose
input representation reads RGB pixels use one (`TaskKind.reads_decode_cache`); DCT families
read their JPEG files, and evaluations keep reading files (grouped evaluation decodes each test
setting once already).

The cache holds exactly what decoding gives (`read_pixels`, then `to_rgb`), at full size:
the part files `pixels-00000.u8`, ... hold every image's (H, W, 3) uint8 pixels, row-major,
one after another in the encode's file order (images of different sizes allowed), at most
PART_BYTES a part (an image is never split), written as a stream, so that the split is never
held in memory; INDEX_FILE holds each image's part, offset, height and width. Parts of a few
hundred MB are objects an object store serves well, and what a node fetches to its cache. A
training reads the same pixels either way, so the option is in no training key; the cache's
key is the encode's and the decoders' identity.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sweep.data.files import DecodedFiles, LabelledFile
from sweep.data.pixels import read_pixels, to_rgb
from sweep.data.validate import decoder_identity
from sweep.stages.billing import BillScope
from sweep.stages.encode import EncodeStage, encoded_files
from sweep.stages.graph import PlanInputs, SweepPlan
from sweep.stages.kind import Cost, Stage, StageContext, StageKind
from sweep.store import ArtifactStore

NAME = "decoded"
INDEX_FILE = "index.npz"
# What the pixels are: full size, RGB, uint8, (H, W, 3) row-major. Part of the key.
LAYOUT = "rgb uint8 hwc, full size, concatenated in parts"
# The most bytes of pixels a part holds (~430 Food-101 images at 512x384), unless one image
# is larger alone.
PART_BYTES = 256 * 2**20


def part_name(part: int) -> str:
    return f"pixels-{part:05d}.u8"


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecodedStage(Stage):
    """The pixels of one train-split encode, decoded once for its trainings.

    `trainings` are the keys of the trainings that read it (`plan_trainings` sets them; not
    part of the key): when every one is finished, the cache is not made.
    """

    kind = NAME
    encode: EncodeStage
    trainings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def setting(self) -> str:
        return self.encode.setting

    def upstream(self) -> tuple[Stage, ...]:
        return (self.encode,)


def plan_decoded(plan: SweepPlan, inputs: PlanInputs) -> None:
    """With train.decode_cache: a cache of every train-split encode (each is read by a
    training: its setting's, or a mix's), when the trainings read RGB pixels."""
    if not inputs.options.decode_cache or inputs.options.epochs == 0:
        return  # train=none: the model is evaluated as built, nothing reads training pixels
    task, model = inputs.task, inputs.model
    if not task.reads_decode_cache(model):
        log.info(
            "train.decode_cache: no decode cache, since the %s trainings of %s read no decoded "
            "RGB pixels (DCT inputs read their JPEG files; detection and segmentation decode "
            "their own)",
            task.kind,
            model.name,
        )
        return
    decoder = decoder_identity()
    for (split, setting), encode in plan.encodes.items():
        if split == "train":
            key = KIND.key(encode=encode.key, decoder=decoder, layout=LAYOUT)
            plan.add(DecodedStage(key, encode), setting)


def write_cache(files: list[LabelledFile], out: Path) -> dict:
    """Decodes each file once and appends its pixels to PIXELS_FILE in `out`, one image in
    memory at a time; writes INDEX_FILE; returns the images' count and bytes."""
    offsets = np.zeros(len(files), dtype=np.int64)
    heights = np.zeros(len(files), dtype=np.int64)
    widths = np.zeros(len(files), dtype=np.int64)
    parts = np.zeros(len(files), dtype=np.int64)
    written, part, in_part = 0, 0, 0
    stream = (out / part_name(part)).open("wb")
    try:
        for index, file in enumerate(files):
            pixels = np.ascontiguousarray(to_rgb(read_pixels(file.path)))  # (H, W, 3) uint8
            if in_part and in_part + pixels.nbytes > PART_BYTES:
                stream.close()
                part, in_part = part + 1, 0
                stream = (out / part_name(part)).open("wb")
            offsets[index], parts[index] = in_part, part
            heights[index], widths[index] = pixels.shape[:2]
            stream.write(pixels.tobytes())
            in_part += pixels.nbytes
            written += pixels.nbytes
    finally:
        stream.close()
    np.savez(out / INDEX_FILE, offsets=offsets, heights=heights, widths=widths, parts=parts)
    return {"images": len(files), "bytes": written, "parts": part + 1}


def decode_worker(context: StageContext, stage: DecodedStage, *upstream: object) -> dict:
    """Decodes the encode's files into the cache; returns its summary.

    `upstream` (the encode's result) only orders it after the encode.
    """
    del upstream
    store = context.store
    if store.is_done(KIND.name, stage.key):
        return read_summary(store, stage)
    # "train": the kind of its readers (train.py imports this module, not the reverse).
    if stage.trainings and all(store.is_done("train", key) for key in stage.trainings):
        # Trained before the option was on: 45 GB a setting for nothing. Not published, so a
        # later training (a new seed) still gets its cache.
        log.info("no decode cache of %s: its trainings are finished", stage.setting)
        return {"split": stage.encode.split, "setting": stage.setting, "skipped": True}
    files = encoded_files(store, stage.encode)
    started = time.perf_counter()
    with store.writing(KIND.name, stage.key) as out:
        summary = write_cache(files, out)
        seconds = time.perf_counter() - started
        summary |= {
            "split": stage.encode.split,
            "setting": stage.setting,
            "seconds": seconds,
            "images_per_second": summary["images"] / seconds if seconds else None,
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def read_summary(store: ArtifactStore, stage: DecodedStage) -> dict:
    """Images, bytes and seconds of a finished cache."""
    return store.read_json(KIND.name, stage.key, "summary.json")


def decoded_files(
    store: ArtifactStore, stage: DecodedStage, files: list[LabelledFile]
) -> DecodedFiles:
    """The encode's files (`encoded_files`, in its order) with their pixels' places in the
    finished cache of `stage`."""
    folder = f"{store.url}/{KIND.name}/{stage.key}"
    with np.load(store.file(KIND.name, stage.key, INDEX_FILE)) as index:
        offsets, heights, widths = index["offsets"], index["heights"], index["widths"]
        parts = index["parts"]
    if len(offsets) != len(files):
        raise ValueError(
            f"the decode cache {folder} holds {len(offsets)} images, its encode "
            f"({stage.encode.split} at {stage.setting}) {len(files)}: delete the folder and "
            "rerun the sweep to decode it again"
        )
    # Mapped where they are read (a node's copy, from an object store).
    pixels = [
        store.location(KIND.name, stage.key, part_name(p))
        for p in range(int(parts.max(initial=0)) + 1)
    ]
    return DecodedFiles(files, pixels, offsets, heights, widths, parts)


def bill_caches(stages: list[DecodedStage], scope: BillScope) -> Cost:
    """Each pending cache's images decoded once and written as pixels; a cache whose
    trainings are all finished is not made (see `decode_worker`)."""
    needed = [
        stage for stage in stages if not all(scope.is_done("train", key) for key in stage.trainings)
    ]
    images = sum(scope.split_images(stage.encode.split) for stage in needed)
    return Cost(
        f"{images:,} images to decode into {len(needed)} cache(s) of pixels",
        images={"decode": images},
        cached=images,
    )


KIND = StageKind(
    name=NAME,
    # 2: the pixels in parts of at most PART_BYTES (pixels-00000.u8, ...); every cache of
    # schema 1 is stale (only caches: no training key holds one).
    schema=2,
    inputs=("encode",),
    key_fields=("encode", "decoder", "layout"),
    run=decode_worker,
    read=read_summary,
    plan=plan_decoded,
    unit="split",
    bill=bill_caches,
)
