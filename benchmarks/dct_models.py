"""Models that read JPEG's DCT coefficients against ResNet-50 on RGB, and their data paths.

Two measurements in one run, each a ratio to a baseline measured beside it:

* Forward images/s at 224 px, batch 32, in eval mode without gradients, of every jpeg2dct
  variant (`sweep.models.dct_resnet50`) and of DCTNet at 24 and 192 channels, against
  torchvision's ResNet-50 on (3, 224, 224) RGB, fastest of `ROUNDS` batches. Gueguen et al.
  (NeurIPS 2018, results table, on a GPU) report deconvolution_rfa at 1.29x and
  late_concat_rfa_thinner at 1.77x ResNet-50's 208 img/s.
* The data path per core (one process, one torch thread): 512 x 384 JPEG files (quality 90,
  4:2:0, CC0 photographs from scikit-image) to a 224 px sample. JPEG -> coefficients read
  straight from the file (`DctPlanes`, crop geometry) against JPEG -> RGB decode, resize and
  centre crop (the RGB families' evaluation sample), and the coefficients computed from the
  decoded pixels (what a non-JPEG file costs).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

SIZE = 224
BATCH = 32
ROUNDS = 3
FILES = 24
PASSES = 3
# Gueguen et al. 2018, results table: speed relative to ResNet-50 on RGB (208 img/s).
PUBLISHED_RATIOS = {"deconvolution_rfa": 1.29, "late_concat_rfa_thinner": 1.77}


def forward_rate(module, inputs, rounds: int = ROUNDS) -> float:
    """Images/s of module(inputs) in eval mode without gradients, fastest of `rounds`."""
    import torch

    module.eval()
    best = float("inf")
    with torch.inference_mode():
        module(inputs)  # warm up
        for _ in range(rounds):
            started = time.perf_counter()
            module(inputs)
            best = min(best, time.perf_counter() - started)
    return BATCH / best


def multiply_adds(module, inputs) -> int:
    """Multiply-adds of one image through the convolutions and linear layers."""
    import torch

    total = 0

    def count(layer, _, out):
        nonlocal total
        spatial = out.shape[-1] * out.shape[-2] if out.dim() == 4 else 1
        total += layer.weight.numel() * spatial

    layers = (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)
    hooks = [m.register_forward_hook(count) for m in module.modules() if isinstance(m, layers)]
    with torch.inference_mode():
        module.eval()(inputs)
    for hook in hooks:
        hook.remove()
    return total


def forward_figures() -> dict:
    import torch
    import torchvision

    from sweep.models.dct_resnet50 import VARIANTS, DctResNet50
    from sweep.models.dctnet import DctNet

    torch.manual_seed(0)
    rgb = torch.randn(BATCH, 3, SIZE, SIZE)
    planes = (
        torch.randn(BATCH, 64, SIZE // 8, SIZE // 8),
        torch.randn(BATCH, 128, SIZE // 16, SIZE // 16),
    )
    frequencies = torch.randn(BATCH, 192, SIZE // 4, SIZE // 4)
    one = lambda batch: batch[:1] if torch.is_tensor(batch) else tuple(p[:1] for p in batch)  # noqa: E731
    resnet50 = torchvision.models.resnet50(num_classes=1000)
    baseline, baseline_macs = forward_rate(resnet50, rgb), multiply_adds(resnet50, one(rgb))
    models = {variant: (DctResNet50(variant, variant=variant), planes) for variant in VARIANTS}
    for channels, selection in ((24, "static"), (192, "dynamic")):
        model = DctNet(f"dctnet_{selection}{channels}", selection=selection, channels=channels)
        models[model.name] = (model, frequencies)
    rates, macs = {}, {}
    for name, (model, inputs) in models.items():
        module = model.build(1000)
        rates[name] = forward_rate(module, inputs)
        macs[name] = multiply_adds(module, one(inputs))
    return {
        "resnet50_rgb_images_per_s": baseline,
        "resnet50_rgb_gmacs": baseline_macs / 1e9,
        "images_per_s": rates,
        "gmacs": {name: value / 1e9 for name, value in macs.items()},
        "ratio_to_rgb": {name: rate / baseline for name, rate in rates.items()},
        "mac_ratio_to_rgb": {name: baseline_macs / value for name, value in macs.items()},
        "published_ratio": PUBLISHED_RATIOS,
        "threads": torch.get_num_threads(),
    }


def sample_files(folder: Path) -> list:
    """`FILES` 512 x 384 JPEGs (quality 90, 4:2:0) cut from scikit-image's photographs."""
    from PIL import Image
    from skimage import data

    from sweep.data.files import LabelledFile

    photos = [
        data.astronaut(),
        data.coffee(),
        data.chelsea(),
        data.rocket(),
        data.hubble_deep_field(),
    ]
    files = []
    for index in range(FILES):
        photo = Image.fromarray(photos[index % len(photos)]).convert("RGB")
        scale = max(512 / photo.width, 384 / photo.height) * (1 + 0.1 * (index // len(photos)))
        resized = photo.resize((round(photo.width * scale) + 1, round(photo.height * scale) + 1))
        left, top = (resized.width - 512) // 2, (resized.height - 384) // 2
        path = folder / f"{index}.jpg"
        resized.crop((left, top, left + 512, top + 384)).save(path, quality=90, subsampling=2)
        files.append(LabelledFile(str(path), 0))
    return files


def samples_per_second(dataset, passes: int = PASSES) -> float:
    for index in range(min(3, len(dataset))):  # warm up
        dataset[index]
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        for index in range(len(dataset)):
            dataset[index]
        best = min(best, time.perf_counter() - started)
    return len(dataset) / best


def data_path_figures() -> dict:
    import torch
    from PIL import Image

    from sweep.data.files import LabelledFile
    from sweep.inputs.coefficients import reads_straight
    from sweep.inputs.dct_planes import DctPlanes
    from sweep.inputs.rgb import RgbPixels

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # per core
    try:
        with tempfile.TemporaryDirectory() as folder:
            files = sample_files(Path(folder))
            assert all(reads_straight(f.path) for f in files)
            rgb = RgbPixels(SIZE, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
            coefficients = DctPlanes(SIZE)
            pixel_files = []
            for file in files:  # the same images as PNG: the coefficients must be computed
                png = Path(file.path).with_suffix(".png")
                Image.open(file.path).save(png)
                pixel_files.append(LabelledFile(str(png), 0))
            figures = {
                "rgb_decode_resize_per_s": samples_per_second(rgb.evaluation_dataset(files)),
                "coefficients_read_per_s": samples_per_second(
                    coefficients.evaluation_dataset(files)
                ),
                "coefficients_from_png_pixels_per_s": samples_per_second(
                    coefficients.evaluation_dataset(pixel_files)
                ),
                "rgb_from_png_per_s": samples_per_second(rgb.evaluation_dataset(pixel_files)),
            }
    finally:
        torch.set_num_threads(threads)
    figures["read_ratio"] = figures["coefficients_read_per_s"] / figures["rgb_decode_resize_per_s"]
    figures["computed_ratio"] = (
        figures["coefficients_from_png_pixels_per_s"] / figures["rgb_from_png_per_s"]
    )
    figures["image"] = "512x384 JPEG q90 4:2:0"
    return figures


def run() -> dict:
    return {"forward": forward_figures(), "data_path": data_path_figures()}


def report(figures: dict) -> str:
    forward, data_path = figures["forward"], figures["data_path"]
    lines = [
        f"DCT-input models, forward at {SIZE} px, batch {BATCH}, eval, {forward['threads']} "
        f"CPU threads: ResNet-50 on RGB {forward['resnet50_rgb_images_per_s']:.1f} img/s, "
        f"{forward['resnet50_rgb_gmacs']:.2f} GMACs/image",
    ]
    for name, ratio in forward["ratio_to_rgb"].items():
        published = forward["published_ratio"].get(name)
        paper = f"; paper, GPU: {published:.2f}x" if published else ""
        lines.append(
            f"  {name}: {forward['images_per_s'][name]:.1f} img/s, {ratio:.2f}x RGB "
            f"({forward['gmacs'][name]:.2f} GMACs, {forward['mac_ratio_to_rgb'][name]:.2f}x "
            f"fewer{paper})"
        )
    lines += [
        f"data path per core, {data_path['image']} -> {SIZE} px sample:",
        f"  JPEG -> RGB decode, resize, crop: {data_path['rgb_decode_resize_per_s']:.0f} img/s",
        f"  JPEG -> coefficients read from the file: {data_path['coefficients_read_per_s']:.0f} "
        f"img/s ({data_path['read_ratio']:.2f}x)",
        f"  PNG -> coefficients computed from pixels: "
        f"{data_path['coefficients_from_png_pixels_per_s']:.0f} img/s against PNG -> RGB "
        f"{data_path['rgb_from_png_per_s']:.0f} img/s ({data_path['computed_ratio']:.2f}x)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run()))
