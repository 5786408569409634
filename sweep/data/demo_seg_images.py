"""Built-in segmentation demo: objects with or without grain over photographs, with label masks.

Each image holds one to three disks and squares over a random crop of a bundled scikit-image
photograph (the classification demo's backgrounds). Every pixel's class is background or its
object's (colour family, texture): red or blue, smooth or grainy. The colour is coarse and
survives any JPEG XL distance; the grain is pixel-level noise, which libjxl keeps at small
Butteraugli distances and removes at large ones, so heavy compression erases the evidence that
separates the smooth and grainy classes of each colour. (Shape is no class: a tiny SegFormer
trained for minutes on a CPU does not learn it; it learns colour first and grain later.)

Files are written like Cityscapes: PNG camera images and `*_gtFine_labelIds.png` masks whose
ids go through a label table, with id 0 ("unlabeled", ignored) on the anti-aliased rim of every
object, as Cityscapes leaves void the pixels that no class owns.
"""

from __future__ import annotations

import hashlib
import pathlib

import numpy as np
from PIL import Image

# Private helpers of the classification demo, shared so that both demos look alike.
from sweep.data.demo_images import _object_texture, _random_background

SHAPES: tuple[str, ...] = ("disk", "square")
# Colour families: the channel that is strong (red, blue); the others stay weak.
COLOURS: dict[str, int] = {"red": 0, "blue": 2}
TEXTURES: tuple[str, ...] = ("smooth", "grainy")
DEMO_SEG_CLASSES: tuple[str, ...] = ("background",) + tuple(
    f"{c}_{t}" for c in COLOURS for t in TEXTURES
)
# Mask ids as written: 0 is unlabeled (ignored), class i has id i + 1.
UNLABELED_ID = 0
DEMO_SEG_LABEL_IDS: tuple[int, ...] = tuple(range(1, len(DEMO_SEG_CLASSES) + 1))
# Grey levels of the binary grain: stronger than the classification demo's (16-28), so that a
# tiny SegFormer learns it within minutes (measured: mIoU 0.86 against 0.80 at 16-28, learnt
# earlier in training); JPEG XL at distance 15 still removes about three quarters of it.
GRAIN_AMPLITUDE = (24.0, 36.0)
# Objects per image and their radius as a fraction of the image side.
OBJECTS_PER_IMAGE = (1, 3)
RADIUS_FRACTION = (0.12, 0.24)


def _shape_coverage(shape: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a randomly placed, sized and tilted disk or square."""
    radius = rng.uniform(*RADIUS_FRACTION) * size
    cy, cx = rng.uniform(radius * 0.7, size - radius * 0.7, size=2)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dy, dx = yy - cy, xx - cx
    if shape == "disk":
        inside = radius - np.hypot(dx, dy)
    else:
        # Signed distance to a square = smallest distance to its four edge lines.
        theta = np.deg2rad(rng.uniform(-30, 30)) + np.pi / 2 * np.arange(4)
        proj = dx[..., None] * np.cos(theta) + dy[..., None] * np.sin(theta)
        inside = (radius * 0.85 - proj).min(axis=-1)
    return np.clip(inside + 0.5, 0.0, 1.0)


def _saturated_colour(family: str, rng: np.random.Generator) -> np.ndarray:
    """A vivid colour of a family: its channel strong, the other two weak.

    Saturated objects stand out from the mostly grey, tinted photographs, so that a tiny model
    learns where the objects are and their colour within minutes; the texture takes longer.
    The channels stay in 55..195 to leave headroom for the grain and the shading.
    """
    colour = rng.uniform(55, 100, size=3)
    colour[COLOURS[family]] = rng.uniform(150, 195)
    return colour.astype(np.float32)


def render_demo_seg_image(
    rng: np.random.Generator, size: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """Render one demo image and its label-id mask.

    Args:
        rng: Source of all randomness, so equal generator states give equal images.
        size: Height and width in pixels.

    Returns:
        A `(size, size, 3)` uint8 RGB image and a `(size, size)` uint8 mask of label ids
        (`DEMO_SEG_LABEL_IDS`, and `UNLABELED_ID` on object rims).
    """
    image = _random_background(rng, size)
    mask = np.full((size, size), DEMO_SEG_LABEL_IDS[0], dtype=np.uint8)
    for _ in range(rng.integers(OBJECTS_PER_IMAGE[0], OBJECTS_PER_IMAGE[1] + 1)):
        class_index = int(rng.integers(1, len(DEMO_SEG_CLASSES)))
        family, texture = DEMO_SEG_CLASSES[class_index].split("_")
        alpha = _shape_coverage(SHAPES[rng.integers(len(SHAPES))], rng, size)
        colour = _saturated_colour(family, rng)
        obj = colour + _texture(texture, rng, size)[..., None]
        image = alpha[..., None] * obj + (1.0 - alpha[..., None]) * image
        # Later objects cover earlier ones; partly covered rim pixels belong to no class.
        mask[alpha >= 1.0] = DEMO_SEG_LABEL_IDS[class_index]
        mask[(alpha > 0.0) & (alpha < 1.0)] = UNLABELED_ID
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), mask


def _texture(texture: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """Zero-mean luminance: the classification demo's gentle shading, plus grain if grainy."""
    shading = _object_texture("smooth", rng, size)
    if texture == "smooth":
        return shading
    # Pixel-level binary grain spreads its energy over every DCT coefficient, so libjxl keeps it
    # at small distances and quantises most of it away at large ones.
    amplitude = rng.uniform(*GRAIN_AMPLITUDE)
    return shading + np.where(rng.random((size, size)) < 0.5, -amplitude, amplitude)


def _split_rng(seed: int, split: str) -> np.random.Generator:
    """Generator of one split, stable across runs (unlike Python's `hash`)."""
    digest = hashlib.sha256(f"demo_seg/{seed}/{split}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def generate_demo_seg_split(
    out_dir: pathlib.Path,
    folder: str,
    count: int,
    cities: tuple[str, ...],
    size: int = 128,
    seed: int = 0,
) -> int:
    """Write `count` images and masks in the Cityscapes layout, spread over `cities`.

    Args:
        out_dir: Dataset root; leftImg8bit/<folder>/ and gtFine/<folder>/ are created in it.
        folder: Cityscapes split folder ("train" or "val"); it changes the random stream.
        count: Number of images.
        cities: City folder names; image i goes to city i % len(cities).
        size: Image height and width in pixels.
        seed: Base seed; the same seed and folder give byte-identical files.

    Returns:
        The number of images written.
    """
    rng = _split_rng(seed, folder)
    for index in range(count):
        city = cities[index % len(cities)]
        image, mask = render_demo_seg_image(rng, size)
        stem = f"{city}_{index:06d}_000019"
        image_dir = pathlib.Path(out_dir) / "leftImg8bit" / folder / city
        mask_dir = pathlib.Path(out_dir) / "gtFine" / folder / city
        image_dir.mkdir(parents=True, exist_ok=True)
        mask_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(image_dir / f"{stem}_leftImg8bit.png")
        Image.fromarray(mask).save(mask_dir / f"{stem}_gtFine_labelIds.png")
    return count
