"""The Pascal VOC reader on small generated VOC folders: boxes, difficult objects, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sweep.data.base import DatasetError
from sweep.data.voc import VOC_CLASSES, VocReader

# (image id, list, [(class, xmin, ymin, xmax, ymax, difficult), ...]) in VOC's 1-based pixels.
VOC_IMAGES = (
    ("2008_000001", "train", [("dog", 5, 7, 30, 40, False), ("person", 33, 2, 60, 45, False)]),
    ("2008_000002", "train", [("cat", 10, 10, 50, 40, False), ("cat", 2, 30, 12, 46, True)]),
    ("2008_000003", "train", []),  # an image without objects
    ("2008_000004", "train", [("car", 1, 1, 64, 48, False)]),
    ("2008_000005", "val", [("dog", 20, 5, 55, 35, False), ("bird", 3, 3, 9, 9, True)]),
    ("2008_000006", "val", []),
)
WIDTH, HEIGHT = 64, 48


def annotation_xml(image_id: str, objects: list) -> str:
    parts = [
        f"<annotation><folder>VOC2012</folder><filename>{image_id}.jpg</filename>",
        f"<size><width>{WIDTH}</width><height>{HEIGHT}</height><depth>3</depth></size>",
        "<segmented>0</segmented>",
    ]
    for name, xmin, ymin, xmax, ymax, difficult in objects:
        parts.append(
            f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
            f"<difficult>{int(difficult)}</difficult><bndbox><xmin>{xmin}</xmin>"
            f"<ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
        )
    return "\n".join(parts) + "</annotation>\n"


def write_voc_folder(root: Path, images=VOC_IMAGES) -> Path:
    """A VOC-layout folder: noisy JPEGs with bright rectangles where the objects are."""
    for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    lists: dict[str, list[str]] = {"train": [], "val": []}
    for number, (image_id, list_name, objects) in enumerate(images):
        rng = np.random.default_rng(number)
        pixels = rng.integers(0, 80, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        for name, xmin, ymin, xmax, ymax, _ in objects:
            colour = 120 + 6 * VOC_CLASSES.index(name) if name in VOC_CLASSES else 200
            pixels[ymin - 1 : ymax, xmin - 1 : xmax] = colour
        Image.fromarray(pixels).save(root / "JPEGImages" / f"{image_id}.jpg", quality=95)
        (root / "Annotations" / f"{image_id}.xml").write_text(annotation_xml(image_id, objects))
        lists[list_name].append(image_id)
    for list_name, ids in lists.items():
        (root / "ImageSets" / "Main" / f"{list_name}.txt").write_text("\n".join(ids) + "\n")
    return root


@pytest.fixture
def voc_root(tmp_path: Path) -> Path:
    return write_voc_folder(tmp_path / "VOC2012")


def test_reads_the_standard_classes_splits_and_boxes(voc_root):
    reader = VocReader(voc_root)
    reader.prepare()
    assert reader.class_names() == list(VOC_CLASSES) and len(VOC_CLASSES) == 20
    assert reader.class_names()[:3] == ["aeroplane", "bicycle", "bird"]
    train, test = reader.read_split("train"), reader.read_split("test")
    assert [item.relpath for item in train] == [
        f"JPEGImages/2008_00000{i}.jpg" for i in (1, 2, 3, 4)
    ]
    assert [item.relpath for item in test] == [
        "JPEGImages/2008_000005.jpg",
        "JPEGImages/2008_000006.jpg",
    ]
    dog, person = VOC_CLASSES.index("dog"), VOC_CLASSES.index("person")
    # 1-based inclusive VOC pixels become 0-based pixel edges: x1 = xmin - 1, x2 = xmax.
    assert train[0].target == {
        "boxes": [[4.0, 6.0, 30.0, 40.0], [32.0, 1.0, 60.0, 45.0]],
        "labels": [dog, person],
        "difficult": [False, False],
    }
    # A box over the whole image is [0, 0, width, height].
    assert train[3].target["boxes"] == [[0.0, 0.0, WIDTH, HEIGHT]]


def test_difficult_objects_are_kept_and_flagged(voc_root):
    train = VocReader(voc_root).read_split("train")
    cat = VOC_CLASSES.index("cat")
    assert train[1].target["labels"] == [cat, cat]
    assert train[1].target["difficult"] == [False, True]


def test_an_image_without_objects_has_empty_lists(voc_root):
    train = VocReader(voc_root).read_split("train")
    assert train[2].target == {"boxes": [], "labels": [], "difficult": []}


def test_targets_are_json_and_enter_the_fingerprint(voc_root):
    reader = VocReader(voc_root)
    before = reader.fingerprint(reader.read_split("train"))
    xml = voc_root / "Annotations" / "2008_000001.xml"
    xml.write_text(xml.read_text().replace("<xmin>5</xmin>", "<xmin>6</xmin>"))
    assert VocReader(voc_root).fingerprint(VocReader(voc_root).read_split("train")) != before


def test_own_class_list_and_image_sets(voc_root):
    (voc_root / "ImageSets" / "Main" / "mini.txt").write_text("2008_000003 -1\n2008_000004  1\n")
    reader = VocReader(voc_root, classes=["car"], train_list="mini", test_list="mini")
    items = reader.read_split("train")
    assert reader.class_names() == ["car"]
    assert [item.target["labels"] for item in items] == [[], [0]]


def test_missing_annotation_names_the_file_and_the_list_line(voc_root):
    (voc_root / "Annotations" / "2008_000002.xml").unlink()
    with pytest.raises(DatasetError, match=r"train\.txt:2: the annotation .*2008_000002\.xml"):
        VocReader(voc_root).read_split("train")


def test_missing_image_names_the_list_line(voc_root):
    (voc_root / "JPEGImages" / "2008_000006.jpg").unlink()
    with pytest.raises(DatasetError, match=r"val\.txt:2: .*2008_000006\.jpg does not exist"):
        VocReader(voc_root).read_split("test")


def test_unknown_class_names_the_annotation_and_the_known_classes(voc_root):
    xml = voc_root / "Annotations" / "2008_000004.xml"
    xml.write_text(xml.read_text().replace("<name>car</name>", "<name>spaceship</name>"))
    with pytest.raises(
        DatasetError, match=r"2008_000004\.xml: object 1: class 'spaceship'.*aeroplane"
    ):
        VocReader(voc_root).read_split("train")


@pytest.mark.parametrize(
    ("replace", "words"),
    [
        (("<xmax>30</xmax>", "<xmax>3</xmax>"), "is empty"),
        (("<ymin>7</ymin>", "<ymin>seven</ymin>"), "needs numeric"),
        (("<difficult>0</difficult>", "<difficult>maybe</difficult>"), "must be 0 or 1"),
        (("</annotation>", ""), "not a readable VOC annotation"),
    ],
)
def test_malformed_annotation_names_the_file(voc_root, replace, words):
    xml = voc_root / "Annotations" / "2008_000001.xml"
    xml.write_text(xml.read_text().replace(*replace, 1))
    with pytest.raises(DatasetError, match=rf"2008_000001\.xml.*{words}"):
        VocReader(voc_root).read_split("train")


def test_missing_layout_names_what_is_missing(voc_root):
    (voc_root / "ImageSets" / "Main" / "val.txt").unlink()
    with pytest.raises(DatasetError, match=r"ImageSets/Main/val\.txt is missing: task=voc"):
        VocReader(voc_root).prepare()


def test_an_id_listed_twice_is_refused(voc_root):
    (voc_root / "ImageSets" / "Main" / "val.txt").write_text("2008_000005\n2008_000005\n")
    with pytest.raises(DatasetError, match=r"val\.txt:2: '2008_000005' is listed twice"):
        VocReader(voc_root).read_split("test")
