"""Built-in demo classification dataset: shapes with or without grain over photographs.

Each image shows one object over a random crop of a bundled scikit-image photograph. The class
is the pair (shape, texture). The shape is coarse and survives any JPEG XL distance; the texture
is either smooth or covered in pixel-level grain of moderate contrast, which libjxl keeps at small
Butteraugli distances and removes at large ones. Heavy compression therefore erases half of the
class evidence, which is the effect the compression sweep is meant to show.
"""

import functools
import hashlib
import pathlib

import numpy as np
from PIL import Image

SHAPES: tuple[str, ...] = ("disk", "square", "triangle")
TEXTURES: tuple[str, ...] = ("smooth", "grainy")
DEMO_CLASSES: tuple[str, ...] = tuple(f"{s}_{t}" for s in SHAPES for t in TEXTURES)

# Only photographs shipped inside the scikit-image wheel: the others need a pooch download.
_COLOUR_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")
_GREY_PHOTOS = ("camera", "brick", "grass", "gravel")

_SIDES = {"disk": 0, "square": 4, "triangle": 3}  # 0 sides means a circle
_GRAIN_AMPLITUDE = (16.0, 28.0)  # grey levels; visible but not dominant


@functools.lru_cache(maxsize=1)
def _backgrounds() -> tuple[np.ndarray, ...]:
    """Load the bundled photographs once, as uint8 RGB arrays."""
    from skimage import data  # imported lazily: only generation needs scikit-image

    photos = [getattr(data, name)()[..., :3] for name in _COLOUR_PHOTOS]
    photos += [np.repeat(getattr(data, name)()[..., None], 3, axis=2) for name in _GREY_PHOTOS]
    return tuple(np.ascontiguousarray(p, dtype=np.uint8) for p in photos)


def _random_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Crop a random square at a random scale from a random photograph, resized to ``size``."""
    photos = _backgrounds()
    photo = photos[rng.integers(len(photos))]
    height, width = photo.shape[:2]
    side = int(rng.uniform(0.2, 1.0) * min(height, width))
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    crop = photo[top : top + side, left : left + side]
    resized = Image.fromarray(crop).resize((size, size), Image.Resampling.BILINEAR)
    # A random tint keeps the grey photographs from being trivially recognisable as background.
    tint = rng.uniform(0.7, 1.15, size=3).astype(np.float32)
    return np.asarray(resized, dtype=np.float32) * tint


def _shape_alpha(shape: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a randomly placed, sized and tilted shape."""
    radius = rng.uniform(0.2, 0.32) * size
    cy, cx = rng.uniform(radius * 0.8, size - radius * 0.8, size=2)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dy, dx = yy - cy, xx - cx
    sides = _SIDES[shape]
    if sides == 0:
        inside = radius - np.hypot(dx, dy)
    else:
        # Signed distance to a regular polygon = smallest distance to any of its edge lines.
        # Mostly upright (square level, triangle apex up): with ~80 images per class a tiny
        # model cannot also learn rotation invariance, so only a small tilt is random.
        theta0 = (np.pi / 2 if sides == 3 else 0.0) + np.deg2rad(rng.uniform(-15, 15))
        apothem = radius * np.cos(np.pi / sides) * (1.25 if sides == 3 else 1.0)
        normals = theta0 + 2 * np.pi * np.arange(sides) / sides
        proj = dx[..., None] * np.cos(normals) + dy[..., None] * np.sin(normals)
        inside = (apothem - proj).min(axis=-1)
    return np.clip(inside + 0.5, 0.0, 1.0)


def _object_texture(texture: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """Zero-mean luminance pattern: gentle shading for both textures, plus grain if ``grainy``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    # Low-frequency shading survives any distance and keeps "smooth" from meaning "flat".
    shading = rng.uniform(10, 30) * (xx * np.cos(angle) + yy * np.sin(angle))
    if texture == "smooth":
        return shading
    # Pixel-level binary grain spreads its energy over every DCT coefficient, so libjxl keeps it
    # at small distances and quantises it to nothing at large ones.
    amplitude = rng.uniform(*_GRAIN_AMPLITUDE)
    grain = np.where(rng.random((size, size)) < 0.5, -amplitude, amplitude)
    return (shading + grain).astype(np.float32)


def render_demo_image(class_index: int, rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """Render one demo image of the given class.

    Args:
        class_index: Index into ``DEMO_CLASSES``.
        rng: Source of all randomness, so equal generator states give equal images.
        size: Height and width in pixels.

    Returns:
        A ``(size, size, 3)`` uint8 RGB array.
    """
    shape, texture = DEMO_CLASSES[class_index].split("_")
    background = _random_background(rng, size)
    alpha = _shape_alpha(shape, rng, size)[..., None]
    # Mid-range colours leave headroom so the grain is not clipped away at 0 or 255.
    colour = rng.uniform(60, 195, size=3).astype(np.float32)
    obj = colour + _object_texture(texture, rng, size)[..., None]
    image = alpha * obj + (1.0 - alpha) * background
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _split_rng(seed: int, split: str, class_index: int) -> np.random.Generator:
    """Generator for one class of one split, stable across runs (unlike Python's ``hash``)."""
    digest = hashlib.sha256(f"{seed}/{split}".encode()).digest()
    return np.random.default_rng([int.from_bytes(digest[:8], "little"), class_index])


def generate_demo_split(
    out_dir: pathlib.Path,
    split: str,
    per_class: int,
    size: int = 96,
    seed: int = 0,
    quality: int = 95,
) -> int:
    """Write ``per_class`` JPEG images per class to ``out_dir/split/<class>/``.

    Args:
        out_dir: Dataset root; the split folder is created inside it.
        split: Split name such as ``"train"`` or ``"test"``; it changes the random stream.
        per_class: Number of images per class.
        size: Image height and width in pixels.
        seed: Base seed; the same seed and split give byte-identical files.
        quality: JPEG quality; chroma is not subsampled (4:4:4) to keep colour detail.

    Returns:
        The number of files written.
    """
    count = 0
    for class_index, name in enumerate(DEMO_CLASSES):
        class_dir = pathlib.Path(out_dir) / split / name
        class_dir.mkdir(parents=True, exist_ok=True)
        rng = _split_rng(seed, split, class_index)
        for i in range(per_class):
            pixels = render_demo_image(class_index, rng, size)
            path = class_dir / f"{split}_{name}_{i:04d}.jpg"
            Image.fromarray(pixels).save(path, quality=quality, subsampling=0)
            count += 1
    return count
