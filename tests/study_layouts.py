"""The study's datasets as empty shells: their folder layouts with the real number of files
(or a given share of it), each image a tiny picture, for billing the reproduction recipes
(`conf/experiment/study_*.yaml`) without the data. Used by tests/test_recipes.py and, at full
size, by hand for the bills in README.md:

    .venv/bin/python -m tests.study_layouts /tmp/study    # all three at full size

Every image of a dataset is a hard link to a tiny file (one file per LINKS_PER_FILE images: a
file system caps the links of one file, ext4 at 65,000), so 100,000 files take seconds.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

from PIL import Image

# The real sizes (train, test): Food-101's archive, VOC 2012's ImageSets/Main train and val,
# Cityscapes' gtFine train and val.
SIZES = {
    "food101": (75_750, 25_250),
    "voc": (5_717, 5_823),
    "cityscapes": (2_975, 500),
}
FOOD101_CLASSES = 101
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
CITIES = ("aachen", "bochum", "bremen")
SIDE = 16  # pixels of every generated image
LINKS_PER_FILE = 10_000


def scaled(dataset: str, share: float) -> tuple[int, int]:
    """(train, test) images of a dataset at a share of its real size (at least a few)."""
    train, test = SIZES[dataset]
    return max(round(train * share), 2), max(round(test * share), 2)


def tiny_image(suffix: str, grey: int = 128) -> bytes:
    """One SIDE x SIDE picture, as JPEG or PNG bytes."""
    buffer = io.BytesIO()
    image = Image.new("RGB", (SIDE, SIDE), (grey, 64, 192))
    image.save(buffer, format="JPEG" if suffix == ".jpg" else "PNG")
    return buffer.getvalue()


def linked(source: Path, path: Path, number: int) -> None:
    """path as the number-th link to source: a copy of it for every LINKS_PER_FILE links."""
    batch = source.with_name(f"{source.stem}_{number // LINKS_PER_FILE}{source.suffix}")
    if not batch.exists():
        batch.write_bytes(source.read_bytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    os.link(batch, path)


def food101(root: Path, train: int, test: int) -> Path:
    """images/<class>/<id>.jpg, meta/{train,test,classes}.txt; ids spread over 101 classes."""
    source = root / "tiny.jpg"
    root.mkdir(parents=True, exist_ok=True)
    source.write_bytes(tiny_image(".jpg"))
    classes = [f"class_{index:03d}" for index in range(FOOD101_CLASSES)]
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "classes.txt").write_text("\n".join(classes) + "\n")
    for split, count, first in (("train", train, 0), ("test", test, train)):
        entries = [f"{classes[n % FOOD101_CLASSES]}/{first + n}" for n in range(count)]
        for n, entry in enumerate(entries, start=first):
            linked(source, root / "images" / f"{entry}.jpg", n)
        (root / "meta" / f"{split}.txt").write_text("\n".join(entries) + "\n")
    return root


def voc_annotation(name: str) -> str:
    return (
        f"<annotation><size><width>{SIDE}</width><height>{SIDE}</height><depth>3</depth></size>"
        f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>2</xmin>"
        f"<ymin>2</ymin><xmax>12</xmax><ymax>12</ymax></bndbox></object></annotation>"
    )


def voc(root: Path, train: int, test: int) -> Path:
    """JPEGImages/<id>.jpg, Annotations/<id>.xml (one object each, the 20 classes in turn),
    ImageSets/Main/{train,val}.txt: VOCdevkit/VOC2012's layout."""
    root.mkdir(parents=True, exist_ok=True)
    source = root / "tiny.jpg"
    source.write_bytes(tiny_image(".jpg"))
    annotations = [root / f"class_{name}.xml" for name in VOC_CLASSES]
    for path, name in zip(annotations, VOC_CLASSES, strict=True):
        path.write_text(voc_annotation(name))
    (root / "ImageSets" / "Main").mkdir(parents=True)
    for split, count, first in (("train", train, 0), ("val", test, train)):
        ids = [f"2012_{first + n:06d}" for n in range(count)]
        for n, image_id in enumerate(ids):
            number = first + n
            linked(source, root / "JPEGImages" / f"{image_id}.jpg", number)
            annotation = annotations[n % len(annotations)]
            linked(annotation, root / "Annotations" / f"{image_id}.xml", number)
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return root


def cityscapes(root: Path, train: int, test: int) -> Path:
    """leftImg8bit/{train,val}/<city>/<name>_leftImg8bit.png with its gtFine labelIds mask."""
    root.mkdir(parents=True, exist_ok=True)
    image, mask = root / "tiny.png", root / "mask.png"
    image.write_bytes(tiny_image(".png"))
    Image.new("L", (SIDE, SIDE), 7).save(mask)  # label id 7: road
    for split, count, first in (("train", train, 0), ("val", test, train)):
        for n in range(count):
            city = CITIES[n % len(CITIES)]
            name = f"{city}_{n:06d}_000019"
            number = first + n
            linked(image, root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png", number)
            linked(mask, root / "gtFine" / split / city / f"{name}_gtFine_labelIds.png", number)
    return root


WRITERS = {"food101": food101, "voc": voc, "cityscapes": cityscapes}


def study_layout(dataset: str, root: Path, share: float = 1.0) -> Path:
    """The dataset's layout under root with `share` of its real number of images."""
    return WRITERS[dataset](root, *scaled(dataset, share))


if __name__ == "__main__":
    base = Path(sys.argv[1])
    for name in WRITERS:
        print(name, study_layout(name, base / name))
