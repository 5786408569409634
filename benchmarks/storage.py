"""Where the encoded images live: one file per image (the layout before packed shards),
packed shards on a local disk, and packed shards in an S3 store (moto's server on loopback),
in one run. `python -m benchmarks storage`.

Photographs at Food-101's size (`benchmarks.loader.photographs`, 512x384) saved as JPEG q90
in an imagefolder are encoded at distance 1 by the product's own encode stage (its shards and
its merge, in this process) into a local store and into the S3 store, and then read twice (two
epochs) through the training's `ImageFileDataset`, decode included:

* files: each image's bytes as a file of its own, as the store kept them before schema 4;
* packed, local: the local store's packs, each image a byte range (`os.pread`);
* packed, S3: the S3 store's packs through this node's read cache: the first epoch fetches
  each pack whole, the second reads the copies;
* objects, S3: each image as an object of its own, a GET per image per epoch (what object
  storage would have served without packs).

Figures are images/s by the clock (the best of `rounds` for the local layouts), ratios to the
files layout, and the files, objects and bytes each layout holds. moto on loopback has no
network latency: against S3 a GET per image costs 10-50 ms more, which the packs save.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest

from benchmarks.loader import photographs, write_jpeg
from sweep.codecs.jxl import JxlCodec
from sweep.data.files import LabelledFile
from sweep.data.imagefolder import ImageFolderReader
from sweep.stages.encode import EncodeStage, encode_shard, encoded_files, finalize_encode
from sweep.stages.kind import StageContext
from sweep.stages.shards import shard_ranges
from sweep.store import open_store
from sweep.store.locations import read_location, split_location
from tests.s3_server import start_s3_server  # moto on loopback, as the tests start it

IMAGES = 192
# Images per shard (and so per pack): a 512x384 photograph at distance 1 is ~40 kB, so a pack
# of 2048 (cluster=ray) is ~80 MB; here 64, three packs.
SHARD_SIZE = 64
DISTANCE = "1"
ROUNDS = 3


def run(rounds: int = ROUNDS, count: int = IMAGES) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="storage-bench-"))
    patch = pytest.MonkeyPatch()  # the S3 server's AWS variables, undone at the end
    server = start_s3_server(patch)
    try:
        root = folder / "images"
        images = photographs(count)
        for name, part in (("a", images[: count // 2]), ("b", images[count // 2 :])):
            write_jpeg(root / "train" / name, part, 90)
        (root / "test" / "a").mkdir(parents=True)
        reader = ImageFolderReader(root)
        items = reader.read_split("train")
        layouts = {}
        encode = {}
        stages = {}
        for name, url in (("local", folder / "store"), ("s3", f"{server.url}/store")):
            store = open_store(url, cache_dir=folder / f"cache-{name}")
            seconds, stage = encode_seconds(store, reader, items)
            encode[name] = seconds
            stages[name] = (store, stage)
        local_store, local_stage = stages["local"]
        packed_local = encoded_files(local_store, local_stage)
        files = as_files(packed_local, folder / "files")
        s3_store, s3_stage = stages["s3"]
        packed_s3 = encoded_files(s3_store, s3_stage)
        objects = as_objects(packed_local, server, "objects")
        layouts["files"] = epochs(files, rounds)
        layouts["packed_local"] = epochs(packed_local, rounds)
        layouts["packed_s3"] = epochs(packed_s3, 1)  # the first epoch must fetch: no rounds
        layouts["objects_s3"] = epochs(objects, 1)
        counts = {
            "files": {
                "files": len(files),
                "bytes": sum(Path(f.path).stat().st_size for f in files),
            },
            "packed_local": stored(folder / "store"),
            "packed_s3": {"objects": len(server.objects("store"))},
            "objects_s3": {"objects": len(server.objects("objects"))},
        }
        return {
            "images": count,
            "shard_size": SHARD_SIZE,
            "encode_seconds": encode,
            "layouts": layouts,
            "counts": counts,
        }
    finally:
        server.stop()
        patch.undo()
        shutil.rmtree(folder, ignore_errors=True)


def encode_seconds(store, reader, items) -> tuple[float, EncodeStage]:
    """Seconds of the encode stage (every shard, then the merge) into `store`."""
    codec = JxlCodec(distances=[float(DISTANCE)], threads=1)
    stage = EncodeStage(
        "bench", "train", DISTANCE, shard_ranges(len(items), SHARD_SIZE), reader.root
    )
    context = StageContext(store, reader.root, codec=codec)
    started = time.perf_counter()
    for index, (start, stop) in enumerate(stage.shards):
        encode_shard(context, stage, index, items[start:stop])
    finalize_encode(context, stage)
    return time.perf_counter() - started, stage


def as_files(files: list[LabelledFile], folder: Path) -> list[LabelledFile]:
    """Each image's bytes in a file of its own (the layout before packed shards)."""
    folder.mkdir(parents=True)
    out = []
    for index, file in enumerate(files):
        path = folder / f"{index:08d}.jxl"
        path.write_bytes(read_location(file.path))
        out.append(file._replace(path=str(path)))
    return out


def as_objects(files: list[LabelledFile], server, prefix: str) -> list[LabelledFile]:
    """Each image as an S3 object of its own (read without a cache: a GET each time)."""
    fs = server.filesystem()
    out = []
    for index, file in enumerate(files):
        key = f"{server.bucket}/{prefix}/{index:08d}.jxl"
        fs.pipe_file(key, read_location(file.path))
        out.append(file._replace(path=f"s3://{key}"))
    return out


def stored(folder: Path) -> dict:
    paths = [p for p in folder.rglob("*") if p.is_file()]
    packs = [p for p in paths if p.name == "pack.bin"]
    return {
        "files": len(paths),
        "packs": len(packs),
        "bytes": sum(p.stat().st_size for p in packs),
    }


def epochs(files: list[LabelledFile], rounds: int) -> dict:
    """Images/s of the first and the second epoch through ImageFileDataset (decode
    included), the best of `rounds` each."""
    from sweep.inputs.files import ImageFileDataset

    dataset = ImageFileDataset(files, transform=lambda image: image)
    rates = {}
    for epoch in ("first", "second"):
        best = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            for index in range(len(dataset)):
                dataset[index]
            best = min(best, time.perf_counter() - started)
        rates[epoch] = len(dataset) / best
    rates["objects_read"] = len({split_location(f.path)[0] for f in files})
    return rates


def report(figures: dict) -> str:
    layouts, counts = figures["layouts"], figures["counts"]
    base = layouts["files"]["second"]
    lines = [
        f"storage: {figures['images']} photographs at 512x384, JPEG XL d{DISTANCE}, packs of "
        f"{figures['shard_size']} images; encode stage "
        f"{figures['encode_seconds']['local']:.1f} s local, "
        f"{figures['encode_seconds']['s3']:.1f} s into S3 "
        f"({figures['encode_seconds']['s3'] / figures['encode_seconds']['local']:.2f}x)",
        f"  {'layout':<14} {'epoch 1 img/s':>14} {'epoch 2 img/s':>14} {'x files':>8}  held as",
    ]
    held = {
        "files": f"{counts['files']['files']} files",
        "packed_local": f"{counts['packed_local']['files']} files "
        f"({counts['packed_local']['packs']} packs)",
        "packed_s3": f"{counts['packed_s3']['objects']} objects",
        "objects_s3": f"{counts['objects_s3']['objects']} objects",
    }
    for name, rates in layouts.items():
        lines.append(
            f"  {name:<14} {rates['first']:14.0f} {rates['second']:14.0f} "
            f"{rates['second'] / base:8.2f}  {held[name]}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run()))
