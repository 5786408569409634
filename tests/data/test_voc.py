"""The Pascal VOC reader on small generated VOC folders: boxes, difficult objects, errors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sweep.data.base import DatasetError
from sweep.data.pixels import read_pixels
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


# ---- own classes: a list, a file, discovery; unknown classes; the test split's classes --------


def test_the_unknown_class_error_says_how_to_set_the_classes(voc_root):
    xml = voc_root / "Annotations" / "2008_000004.xml"
    xml.write_text(xml.read_text().replace("<name>car</name>", "<name>Tree</name>"))
    with pytest.raises(DatasetError) as raised:
        VocReader(voc_root).read_split("train")
    message = str(raised.value)
    assert "class 'Tree' is not one of the 20 classes" in message
    assert "task.reader.classes=[name,...]" in message
    assert "task.reader.classes=<file>" in message
    assert "task.reader.classes=discover" in message
    assert "task.reader.unknown_classes=skip" in message


def test_classes_from_a_file_one_a_line(voc_root, tmp_path):
    names = tmp_path / "classes.txt"
    names.write_text("car\n\n  person \ncat\ndog\nbird\n")
    reader = VocReader(voc_root, classes=str(names))
    reader.prepare()
    assert reader.class_names() == ["car", "person", "cat", "dog", "bird"]
    assert reader.read_split("train")[0].target["labels"] == [3, 1]  # dog, person


@pytest.mark.parametrize(
    ("text", "words"),
    [("car\ncar\n", r"names \['car'\] more than once"), ("\n\n", "names no class")],
)
def test_a_bad_class_file_names_it(voc_root, tmp_path, text, words):
    names = tmp_path / "classes.txt"
    names.write_text(text)
    with pytest.raises(DatasetError, match=rf"classes\.txt {words}") as raised:
        VocReader(voc_root, classes=str(names)).prepare()
    assert raised.value.option == "task.reader.classes"


def test_a_missing_class_file_says_what_to_give(voc_root, tmp_path):
    with pytest.raises(DatasetError, match=r"nowhere\.txt does not exist.*one class a line"):
        VocReader(voc_root, classes=str(tmp_path / "nowhere.txt")).prepare()


def test_discover_takes_the_sorted_classes_of_the_training_annotations(voc_root, caplog):
    reader = VocReader(voc_root, classes="discover")
    with caplog.at_level(logging.INFO, logger="sweep.data.voc"):
        reader.prepare()
    # The train list's objects (difficult ones too), not the test list's bird.
    assert reader.class_names() == ["car", "cat", "dog", "person"]
    assert "4 classes in the training annotations" in caplog.text
    train = reader.items("train")
    assert train[0].target["labels"] == [2, 3]
    # Deterministic, and part of the dataset's identity: a new training class changes it.
    again = VocReader(voc_root, classes="discover")
    assert again.fingerprint(again.items("train")) == reader.fingerprint(train)
    xml = voc_root / "Annotations" / "2008_000004.xml"
    xml.write_text(xml.read_text().replace("<name>car</name>", "<name>bus</name>"))
    changed = VocReader(voc_root, classes="discover")
    assert changed.class_names() == ["bus", "cat", "dog", "person"]
    assert changed.fingerprint(changed.items("train")) != reader.fingerprint(train)


def test_discovered_classes_are_what_the_sweep_records(voc_root, tmp_path):
    from sweep.config.build import build_sweep
    from sweep.session.planning import plan_sweep
    from tests.conftest import compose_config

    sweep = build_sweep(
        compose_config(
            "task=voc",
            f"task.root={voc_root}",
            "task.reader.classes=discover",
            "task.reader.unknown_classes=skip",  # the test list's bird is not a training class
            "model=faster_rcnn_tiny",
            "cluster=inline",
            "tracking=none",
            f"results_dir={tmp_path / 'results'}",
        )
    )
    assert plan_sweep(sweep).class_names == ["car", "cat", "dog", "person"]


def test_skip_leaves_unknown_classes_out_and_counts_them(voc_root, caplog):
    reader = VocReader(voc_root, classes=["dog", "cat"], unknown_classes="skip")
    with caplog.at_level(logging.WARNING, logger="sweep.data"):
        train = reader.items("train")
    assert train[0].target["labels"] == [0]  # the dog; the person is left out
    assert train[1].target["labels"] == [1, 1]
    assert train[3].target == {"boxes": [], "labels": [], "difficult": []}  # the car
    assert reader.skipped_objects() == {"train": {"person": 1, "car": 1}}
    assert "left 2 object(s) out of the train split" in caplog.text
    assert "car 1, person 1" in caplog.text
    reader.items("test")
    assert reader.skipped_objects()["test"] == {"bird": 1}


def test_unknown_classes_takes_error_or_skip():
    from sweep.errors import OptionError

    with pytest.raises(OptionError, match=r"'drop' is not one of \['error', 'skip'\]") as raised:
        VocReader("/nowhere", unknown_classes="drop")
    assert raised.value.option == "task.reader.unknown_classes"


def test_a_test_class_that_training_lacks_is_named(voc_root, caplog):
    reader = VocReader(voc_root, classes=["dog", "cat", "person", "car", "horse", "bird"])
    xml = voc_root / "Annotations" / "2008_000005.xml"
    xml.write_text(xml.read_text().replace("<name>dog</name>", "<name>horse</name>"))
    with caplog.at_level(logging.WARNING, logger="sweep.data"):
        reader.items("test")
    # The bird is difficult (counted nowhere), the horse has no training example.
    assert "classes that the training split lacks: horse 1" in caplog.text
    assert "holds no object of the training classes ['car', 'cat', 'dog', 'person']" in (
        caplog.text
    )


def test_a_test_split_without_objects_of_the_training_classes_is_named(voc_root, caplog):
    (voc_root / "ImageSets" / "Main" / "val.txt").write_text("2008_000006\n")
    with caplog.at_level(logging.WARNING, logger="sweep.data"):
        VocReader(voc_root).items("test")
    assert "holds no object of the training classes" in caplog.text
    assert "it has no objects" in caplog.text


def test_a_test_split_that_fits_training_gives_no_warning(voc_root, caplog):
    with caplog.at_level(logging.WARNING, logger="sweep.data"):
        VocReader(voc_root).items("test")
    assert caplog.text == ""


# ---- symlinks: followed inside the root; '../' in a list refused ------------------------------


def test_symlinked_image_and_annotation_folders_are_followed(voc_root, tmp_path):
    other_disk = tmp_path / "other_disk"
    other_disk.mkdir()
    for folder in ("JPEGImages", "Annotations"):
        (voc_root / folder).rename(other_disk / folder)
        (voc_root / folder).symlink_to(other_disk / folder, target_is_directory=True)
    reader = VocReader(voc_root)
    reader.prepare()
    train = reader.items("train")
    assert train[0].relpath == "JPEGImages/2008_000001.jpg"
    assert train[1].target["difficult"] == [False, True]
    assert reader.fingerprint(train) == reader.fingerprint(train)
    path = reader.resolve(train[0].relpath)
    assert path == voc_root / "JPEGImages" / "2008_000001.jpg"  # named inside the root
    assert read_pixels(path).shape == (HEIGHT, WIDTH, 3)


def test_a_list_entry_climbing_out_of_the_root_is_refused(voc_root):
    (voc_root.parent / "secret.jpg").write_bytes(b"x")
    (voc_root / "ImageSets" / "Main" / "val.txt").write_text("../../secret\n")
    with pytest.raises(DatasetError) as raised:
        VocReader(voc_root).read_split("test")
    message = str(raised.value)
    assert message.startswith(f"{voc_root}/ImageSets/Main/val.txt:1: ")
    assert "'JPEGImages/../../secret.jpg' points outside the dataset root" in message
    assert "'../'" in message
