"""Training data loader throughput: how many cores keep a GPU fed, JPEG XL against JPEG.

`python -m benchmarks loader`. Photographs at Food-101's size (512x384: scikit-image's
bundled photographs, scaled and cropped, with a little noise so that no two files are alike)
are written as JPEG at quality 90 (as datasets ship) and as JPEG XL by the sweep's own codec
at distances 1 and 4, then read through the classes a training uses:

* decode: `ImageFileDataset` decoding each file to a (3, H, W) uint8 tensor, in one process
  on one thread (what one loader worker does per image);
* decode + ViT-B/16 recipe: the training dataset of `model=vit` (`train=finetune`: random
  resized crop at scale 0.5-1 to 224, flip, normalisation), in one process on one thread;
* DataLoader: `sweep.tasks.runtime.training_loader` with 2 worker processes and batches of
  32 (as a training builds it), collation and the copy between processes included; also
  with uint8 batches (the recipe's geometry only: ToDtype and Normalize would run on the
  GPU), a quarter of the bytes;
* a decode cache: the files of JPEG XL distance 1 decoded once by the product's decode
  cache (train.decode_cache, sweep/stages/decoded.py: one flat uint8 file and its index in
  a store), then read through the classes a training with the cache uses
  (`DecodedImageDataset`, memory-mapped by each process): what building it costs, what
  reading it gives ("decode" is the read alone).

Per core is images per CPU-second: the CPU time of every process that took part (the
loader's workers too) is counted, so other work on a shared machine does not lower it. Each
figure is the best of `rounds`. The earlier single-format figure (`decode_throughput`, on
the encode benchmark's .jxl files) stays for `benchmarks/encode.py`.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.processes import tree_cpu_seconds as of_tree
from sweep.data.files import DecodedFiles, LabelledFile
from sweep.stages.encode import EncodeStage, encoded_files
from sweep.store import ArtifactStore
from sweep.store.locations import size_of

WIDTH, HEIGHT = 512, 384
JPEG_QUALITY = 90
DISTANCES = ("1", "4")
IMAGES = 192
ROUNDS = 3
# conf/train/finetune.yaml (ViT-B/16 fine-tuning)
BATCH_SIZE = 32
MIN_CROP_SCALE = 0.5
LOADER_WORKERS = 2
# Images/s a ViT-B/16 training in bf16 takes from its loader on one H100 or H200. ViT-B/16 is
# ~105 GFLOP a training image (3x its 17.6 GMAC forward). timm measures 391 img/s on an RTX
# 3090 (results/benchmark-train-amp-nchw-pt112-cu113-rtx3090.csv, AMP, batch 192): 41 TFLOP/s,
# 58% of its 71. An H200 multiplies bf16 matrices at ~790 TFLOP/s (measured), so 1,500 img/s
# is 20% of that (batches of 32, eager PyTorch) and 3,000 is 38% (large batches, compiled).
# `make gpu-check` measures the product's own rate.
GPU_RATES = (1500, 3000)

PHOTOGRAPHS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble")


def photographs(count: int, width: int = WIDTH, height: int = HEIGHT, seed: int = 0):
    """`count` distinct (height, width, 3) uint8 photographs: scikit-image's bundled colour
    photographs scaled to cover the size at a random zoom, cropped at a random place, with
    Gaussian noise (sigma 2), so that every file encodes and decodes as a real photo would."""
    from PIL import Image
    from skimage import data

    sources = [
        getattr(data, "hubble_deep_field" if name == "hubble" else name)() for name in PHOTOGRAPHS
    ]
    rng = np.random.default_rng(seed)
    images = []
    for index in range(count):
        source = Image.fromarray(sources[index % len(sources)][..., :3])
        cover = max(width / source.width, height / source.height) * rng.uniform(1.0, 1.5)
        scaled = source.resize(
            (max(width, round(source.width * cover)), max(height, round(source.height * cover))),
            Image.BILINEAR,
        )
        left = int(rng.integers(0, scaled.width - width + 1))
        top = int(rng.integers(0, scaled.height - height + 1))
        crop = np.asarray(scaled.crop((left, top, left + width, top + height)), dtype=np.float32)
        noisy = crop + rng.normal(0.0, 2.0, crop.shape)
        images.append(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
    return images


def write_jpeg(folder: Path, images: list[np.ndarray], quality: int) -> list[LabelledFile]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for index, image in enumerate(images):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=quality)
        path = folder / f"{index:05d}.jpg"
        path.write_bytes(buffer.getvalue())
        files.append(LabelledFile(str(path), index % 101))
    return files


def write_jxl(folder: Path, images: list[np.ndarray], distance: str) -> list[LabelledFile]:
    """The images as the encode stage writes them (sweep/codecs/jxl.py, effort 7, one thread)."""
    from sweep.codecs.jxl import JxlCodec

    codec = JxlCodec(distances=[float(distance)])
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for index, image in enumerate(images):
        path = folder / f"{index:05d}.jxl"
        path.write_bytes(codec.encode(image, codec.parse_setting(distance)))
        files.append(LabelledFile(str(path), index % 101))
    return files


def tree_cpu_seconds() -> float:
    """CPU seconds used so far by this process and its live children (loader workers)."""
    return of_tree(os.getpid())


def one_process(dataset, rounds: int) -> dict:
    """Images/s of reading every sample of `dataset` in this process, on one thread: by the
    clock and per CPU-second, the best of `rounds` each."""
    for index in range(min(5, len(dataset))):  # warm up the decoders
        dataset[index]
    wall, cpu = float("inf"), float("inf")
    for _ in range(rounds):
        started, used = time.perf_counter(), time.process_time()
        for index in range(len(dataset)):
            dataset[index]
        wall = min(wall, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - used)
    return {"images_per_s": len(dataset) / wall, "images_per_cpu_s": len(dataset) / cpu}


def through_loader(dataset, workers: int, rounds: int) -> dict:
    """Images/s of `training_loader` (the product's training loader) with `workers` worker
    processes, one pass per round after a first that starts the workers."""
    import torch

    from sweep.options import TrainOptions
    from sweep.tasks.runtime import training_loader

    options = TrainOptions(batch_size=BATCH_SIZE, loader_workers=workers)
    loader = training_loader(
        dataset, options, torch.Generator().manual_seed(0), torch.device("cpu")
    )
    for _ in loader:  # start the workers (once per training)
        pass
    wall, cpu = float("inf"), float("inf")
    for _ in range(rounds):
        started, used = time.perf_counter(), tree_cpu_seconds()
        for _ in loader:
            pass
        wall = min(wall, time.perf_counter() - started)
        cpu = min(cpu, tree_cpu_seconds() - used)
    del loader
    return {"images_per_s": len(dataset) / wall, "images_per_cpu_s": len(dataset) / cpu}


def unchanged(image):
    """The transform of the decode-only column: the (3, H, W) uint8 pixels as read."""
    return image


def build_cache(files: list[LabelledFile], folder: Path) -> tuple[DecodedFiles, dict]:
    """The product's decode cache of the files (sweep/stages/decoded.py: `write_cache` in a
    store's stage folder, read back by `decoded_files`), and its CPU seconds per image."""
    from sweep.stages.decoded import NAME, DecodedStage, decoded_files, write_cache

    store = ArtifactStore(folder / "store")
    stage = DecodedStage("benchmark", EncodeStage("benchmark", "train", "benchmark", ()))
    used = time.process_time()
    with store.writing(NAME, stage.key) as out:
        written = write_cache(files, out)
    seconds = time.process_time() - used
    build = {
        "images_per_cpu_s": len(files) / seconds,
        "bytes_per_image": written["bytes"] / written["images"],
    }
    return decoded_files(store, stage, files), build


def vit_recipe():
    """(the whole training transform, its geometry alone) of model=vit with train=finetune:
    the geometry gives uint8 crops, as a loader would that left ToDtype and Normalize to the
    GPU."""
    from sweep.inputs.rgb import interpolation_of, train_geometry, train_transform
    from sweep.models.vit import VitClassifier

    representation = VitClassifier(name="vit", image_size=224).input_representation()
    size, mean, std = representation.image_size, representation.mean, representation.std
    interpolation = interpolation_of(representation)
    return (
        train_transform(size, mean, std, MIN_CROP_SCALE, interpolation),
        train_geometry(size, MIN_CROP_SCALE, interpolation),
    )


def format_rates(files: list[LabelledFile], rounds: int) -> dict:
    from sweep.inputs.files import ImageFileDataset
    from sweep.models.vit import VitClassifier

    vit = VitClassifier(name="vit", pretrained=None, image_size=224)  # conf/model/vit.yaml
    training = vit.input_representation().training_dataset(files, MIN_CROP_SCALE)
    _, geometry = vit_recipe()
    sizes = [size_of(file.path) for file in files]
    return {
        "bits_per_pixel": 8 * sum(sizes) / (len(files) * WIDTH * HEIGHT),
        "decode": one_process(ImageFileDataset(files, transform=lambda image: image), rounds),
        "decode_vit_recipe": one_process(training, rounds),
        "loader_2_workers": through_loader(training, LOADER_WORKERS, rounds),
        "loader_2_workers_uint8": through_loader(
            ImageFileDataset(files, geometry), LOADER_WORKERS, rounds
        ),
    }


def cache_rates(files: list[LabelledFile], folder: Path, rounds: int) -> dict:
    """The decode cache of one setting's files (train.decode_cache): building it, and reading
    it through the product's classes (`DecodedImageDataset`, which the ViT's training dataset
    becomes when its files carry a cache)."""
    from sweep.inputs.files import DecodedImageDataset
    from sweep.models.vit import VitClassifier

    cached, build = build_cache(files, folder)
    vit = VitClassifier(name="vit", pretrained=None, image_size=224)  # conf/model/vit.yaml
    training = vit.input_representation().training_dataset(cached, MIN_CROP_SCALE)
    if not isinstance(training, DecodedImageDataset):
        raise TypeError(f"the ViT's training dataset of cached files is a {type(training)}")
    _, geometry = vit_recipe()
    return {
        "build": build,
        "decode": one_process(DecodedImageDataset(cached, unchanged), rounds),
        "decode_vit_recipe": one_process(training, rounds),
        "loader_2_workers": through_loader(training, LOADER_WORKERS, rounds),
        "loader_2_workers_uint8": through_loader(
            DecodedImageDataset(cached, geometry), LOADER_WORKERS, rounds
        ),
    }


def run(rounds: int = ROUNDS, count: int = IMAGES) -> dict:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one loader worker's view: one thread
    try:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            images = photographs(count)
            formats = {f"jpeg_q{JPEG_QUALITY}": write_jpeg(folder / "jpeg", images, JPEG_QUALITY)}
            for distance in DISTANCES:
                formats[f"jxl_d{distance}"] = write_jxl(folder / f"d{distance}", images, distance)
            rates = {label: format_rates(files, rounds) for label, files in formats.items()}
            cache = cache_rates(formats[f"jxl_d{DISTANCES[0]}"], folder, rounds)
    finally:
        torch.set_num_threads(threads)
    return {
        "size": f"{WIDTH}x{HEIGHT}",
        "images": count,
        "rounds": rounds,
        "cores": os.cpu_count() or 1,
        "batch_size": BATCH_SIZE,
        "formats": rates,
        "decode_cache": cache,
        "cores_needed": cores_needed(rates | {"decode_cache": cache}),
    }


def cores_needed(rates: dict) -> dict:
    """Loader cores a ViT-B/16 training at each of GPU_RATES needs (beside the one that runs
    the training), from the loader's images per CPU-second with 2 workers: as the loader is
    (float32 batches) and with uint8 batches (normalised on the GPU)."""
    return {
        label: {
            mode: {str(gpu): gpu / figures[mode]["images_per_cpu_s"] for gpu in GPU_RATES}
            for mode in ("loader_2_workers", "loader_2_workers_uint8")
        }
        for label, figures in rates.items()
    }


def report(figures: dict) -> str:
    f = figures
    gpus = " / ".join(map(str, GPU_RATES))

    def cell(rate: dict | None) -> str:
        if rate is None:
            return f"{'-':>13}"
        return f"{rate['images_per_cpu_s']:5.0f} ({rate['images_per_s']:5.0f})"

    def need(label: str, mode: str) -> str:
        return " / ".join(f"{n:4.1f}" for n in f["cores_needed"][label][mode].values())

    lines = [
        f"training data loader, {f['images']} photographs at {f['size']}, best of "
        f"{f['rounds']} rounds, {f['cores']} cores: images per CPU-second (per core), and by "
        "the clock in brackets; ViT-B/16 recipe = conf/model/vit.yaml + train=finetune",
        f"  {'format':<12} {'bpp':>5}  {'decode':>13}  {'+ recipe':>13}  "
        f"{'loader, 2 w.':>13}  {'uint8 batches':>13}   cores for {gpus} img/s (uint8)",
    ]
    rows = dict(f["formats"]) | {"decode_cache": f["decode_cache"]}
    for label, rates in rows.items():
        bpp = f"{rates['bits_per_pixel']:5.2f}" if "bits_per_pixel" in rates else f"{'-':>5}"
        lines.append(
            f"  {label:<12} {bpp}  {cell(rates.get('decode'))}  "
            f"{cell(rates['decode_vit_recipe'])}  {cell(rates['loader_2_workers'])}  "
            f"{cell(rates['loader_2_workers_uint8'])}   {need(label, 'loader_2_workers')} "
            f"({need(label, 'loader_2_workers_uint8')})"
        )
    base = f["formats"][f"jpeg_q{JPEG_QUALITY}"]
    for label, rates in f["formats"].items():
        if label.startswith("jxl"):
            ratio = rates["decode"]["images_per_cpu_s"] / base["decode"]["images_per_cpu_s"]
            recipe = (
                rates["decode_vit_recipe"]["images_per_cpu_s"]
                / base["decode_vit_recipe"]["images_per_cpu_s"]
            )
            lines.append(
                f"  {label}: decode {ratio:.2f}x, decode + recipe {recipe:.2f}x the JPEG rate"
            )
    build = f["decode_cache"]["build"]
    lines.append(
        f"  decode cache (train.decode_cache: jxl_d{DISTANCES[0]} decoded once into the store, "
        f"{build['bytes_per_image'] / 1e3:.0f} kB an image): built at "
        f"{build['images_per_cpu_s']:.0f} images per CPU-second"
    )
    return "\n".join(lines)


# ---- the encode benchmark's figure (benchmarks/encode.py) --------------------------------


def images_per_second(files: list[LabelledFile], rounds: int) -> tuple[float, float]:
    """(images/s, MP/s) of ImageFileDataset decoding every file, fastest of `rounds`."""
    from sweep.inputs.files import ImageFileDataset

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


if __name__ == "__main__":
    print(report(run()))
