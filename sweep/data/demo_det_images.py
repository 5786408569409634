"""Built-in demo detection dataset: several shapes per image over photographs, in VOC layout.

Each image holds zero to three non-overlapping objects (disks, squares, triangles) of random
size, colour and texture over a random crop of a bundled scikit-image photograph (the same CC0
backgrounds as the classification demo). Their boxes are the tight boxes of the rendered shapes.
Small and low-contrast objects lose their edges at large Butteraugli distances, so heavy
compression costs recall, which is the effect the compression sweep is meant to show.

Files follow Pascal VOC: JPEGImages/<id>.jpg, Annotations/<id>.xml (1-based inclusive pixel
coordinates, as VOC writes them) and ImageSets/Main/<list>.txt, so that the VOC reader reads it.
"""

from __future__ import annotations

import hashlib
import pathlib
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image

from sweep.data.demo_images import _object_texture, _random_background

DEMO_DET_CLASSES: tuple[str, ...] = ("disk", "square", "triangle")
_SIDES = {"disk": 0, "square": 4, "triangle": 3}  # 0 sides means a circle
# How many objects an image holds: a few images hold none (they must work in train and eval).
_OBJECT_COUNTS = (0, 1, 2, 3)
_OBJECT_COUNT_WEIGHTS = (0.05, 0.3, 0.35, 0.3)
_RADIUS_FRACTION = (0.07, 0.2)  # of the image side: 9-26 px objects at 128 px
_GAP = 2  # pixels kept free between two objects' boxes, so that no object hides another
_PLACEMENT_TRIES = 30


def _shape_alpha(
    shape: str, cx: float, cy: float, radius: float, tilt: float, size: int
) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a shape centred at (cx, cy), mostly upright."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx, dy = xx - cx, yy - cy
    sides = _SIDES[shape]
    if sides == 0:
        inside = radius - np.hypot(dx, dy)
    else:
        # Signed distance to a regular polygon = smallest distance to any of its edge lines.
        theta0 = (np.pi / 2 if sides == 3 else 0.0) + tilt
        apothem = radius * np.cos(np.pi / sides) * (1.25 if sides == 3 else 1.0)
        normals = theta0 + 2 * np.pi * np.arange(sides) / sides
        proj = dx[..., None] * np.cos(normals) + dy[..., None] * np.sin(normals)
        inside = (apothem - proj).min(axis=-1)
    return np.clip(inside + 0.5, 0.0, 1.0)


def _tight_box(alpha: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x1, y1, x2, y2) in 0-based pixel-edge coordinates of the pixels at least half covered."""
    rows = np.flatnonzero((alpha >= 0.5).any(axis=1))
    cols = np.flatnonzero((alpha >= 0.5).any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _overlaps(box: tuple[int, ...], others: list[tuple[int, ...]]) -> bool:
    return any(
        box[0] < o[2] + _GAP
        and o[0] < box[2] + _GAP
        and box[1] < o[3] + _GAP
        and o[1] < box[3] + _GAP
        for o in others
    )


def render_demo_det_image(
    rng: np.random.Generator, size: int = 128
) -> tuple[np.ndarray, list[dict]]:
    """Render one demo detection image and its objects.

    Args:
        rng: Source of all randomness, so equal generator states give equal images.
        size: Height and width in pixels.

    Returns:
        A ``(size, size, 3)`` uint8 RGB array and its objects, each ``{"name": class name,
        "box": (x1, y1, x2, y2)}`` with 0-based pixel-edge coordinates (x2, y2 exclusive).
    """
    image = _random_background(rng, size)
    count = int(rng.choice(_OBJECT_COUNTS, p=_OBJECT_COUNT_WEIGHTS))
    objects: list[dict] = []
    for _ in range(count):
        name = DEMO_DET_CLASSES[int(rng.integers(len(DEMO_DET_CLASSES)))]
        for _ in range(_PLACEMENT_TRIES):
            radius = rng.uniform(*_RADIUS_FRACTION) * size
            cx, cy = rng.uniform(radius, size - radius, size=2)
            tilt = np.deg2rad(rng.uniform(-15, 15))
            alpha = _shape_alpha(name, cx, cy, radius, tilt, size)
            box = _tight_box(alpha)
            if box is not None and not _overlaps(box, [o["box"] for o in objects]):
                break
        else:
            continue  # no free place left: the image holds fewer objects
        texture = "grainy" if rng.random() < 0.5 else "smooth"
        colour = rng.uniform(40, 215, size=3).astype(np.float32)
        obj = colour + _object_texture(texture, rng, size)[..., None]
        image = alpha[..., None] * obj + (1.0 - alpha[..., None]) * image
        objects.append({"name": name, "box": box})
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), objects


def voc_annotation(image_id: str, size: int, objects: list[dict]) -> ET.ElementTree:
    """A VOC annotation; boxes become 1-based inclusive pixel indices as in VOC's own files."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "demo_det"
    ET.SubElement(root, "filename").text = f"{image_id}.jpg"
    size_element = ET.SubElement(root, "size")
    for tag, value in (("width", size), ("height", size), ("depth", 3)):
        ET.SubElement(size_element, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    for found in objects:
        element = ET.SubElement(root, "object")
        ET.SubElement(element, "name").text = found["name"]
        ET.SubElement(element, "pose").text = "Unspecified"
        ET.SubElement(element, "truncated").text = "0"
        ET.SubElement(element, "difficult").text = "0"
        x1, y1, x2, y2 = found["box"]
        bndbox = ET.SubElement(element, "bndbox")
        for tag, value in (("xmin", x1 + 1), ("ymin", y1 + 1), ("xmax", x2), ("ymax", y2)):
            ET.SubElement(bndbox, tag).text = str(value)
    ET.indent(root)
    return ET.ElementTree(root)


def _split_rng(seed: int, split: str) -> np.random.Generator:
    """Generator for one split, stable across runs (unlike Python's ``hash``)."""
    digest = hashlib.sha256(f"demo_det/{seed}/{split}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def generate_demo_det_split(
    out_dir: pathlib.Path,
    list_name: str,
    images: int,
    size: int = 128,
    seed: int = 0,
    quality: int = 95,
) -> int:
    """Write ``images`` images, their annotations and ``ImageSets/Main/<list_name>.txt``.

    Args:
        out_dir: Dataset root (the VOC folders are created inside it).
        list_name: Image-set name such as ``"train"`` or ``"val"``; it changes the random stream.
        images: Number of images.
        size: Image height and width in pixels.
        seed: Base seed; the same seed and list give byte-identical files.
        quality: JPEG quality; chroma is not subsampled (4:4:4).

    Returns:
        The number of objects written.
    """
    out_dir = pathlib.Path(out_dir)
    for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
    rng = _split_rng(seed, list_name)
    ids, objects_written = [], 0
    for index in range(images):
        image_id = f"{list_name}_{index:05d}"
        pixels, objects = render_demo_det_image(rng, size)
        Image.fromarray(pixels).save(
            out_dir / "JPEGImages" / f"{image_id}.jpg", quality=quality, subsampling=0
        )
        voc_annotation(image_id, size, objects).write(out_dir / "Annotations" / f"{image_id}.xml")
        ids.append(image_id)
        objects_written += len(objects)
    (out_dir / "ImageSets" / "Main" / f"{list_name}.txt").write_text("\n".join(ids) + "\n")
    return objects_written
