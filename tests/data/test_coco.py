"""The COCO JSON reader on tiny generated exports: category ids, boxes, crowds, errors."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from sweep.data.base import DatasetError
from sweep.data.coco import BOX_TOLERANCE, CocoReader
from sweep.data.files import LabelledFile
from sweep.errors import OptionError
from sweep.tasks.detection import DetectionDataset, metric_target
from tests.data.coco_files import CATEGORIES, write_coco


def edit_annotations(root: Path, split: str, edit) -> None:
    """Rewrites a split's annotation file with edit(document) applied."""
    path = root / "annotations" / f"instances_{split}.json"
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))


def annotation(document: dict, annotation_id: int) -> dict:
    return next(a for a in document["annotations"] if a["id"] == annotation_id)


@pytest.fixture
def coco_root(tmp_path: Path) -> Path:
    return write_coco(tmp_path / "coco")


def test_category_ids_become_contiguous_labels_in_id_order(coco_root, caplog):
    reader = CocoReader(coco_root)
    with caplog.at_level(logging.INFO, logger="sweep.data.coco"):
        reader.prepare()
    assert reader.class_names() == ["cat", "dog", "bird"]
    assert reader.category_labels() == {2: 0, 7: 1, 18: 2}
    assert "2->0 cat, 7->1 dog, 18->2 bird" in caplog.text


def test_boxes_become_pixel_edges_and_items_follow_image_ids(coco_root):
    train = CocoReader(coco_root).read_split("train")
    assert [item.relpath for item in train] == [
        "train2017/000001.jpg",
        "train2017/000003.jpg",
        "train2017/000005.jpg",
    ]
    # [x, y, w, h] -> [x, y, x + w, y + h]; dog (id 7) is label 1, cat (id 2) label 0.
    assert train[1].target == {
        "boxes": [[4.0, 6.0, 30.0, 40.0], [32.0, 1.0, 60.0, 45.0]],
        "labels": [1, 0],
        "difficult": [False, False],
    }


def test_crowd_regions_are_carried_like_difficult_objects(coco_root):
    reader = CocoReader(coco_root)
    [crowded] = [item for item in reader.read_split("train") if item.relpath.endswith("1.jpg")]
    assert crowded.target["labels"] == [0, 2]
    assert crowded.target["difficult"] == [True, False]
    # Through the detection task: left out of training, a crowd region in evaluation.
    file = LabelledFile(str(coco_root / crowded.relpath), crowded.target)
    _, training = DetectionDataset([file], train=True)[0]
    assert training["labels"].tolist() == [3]  # bird only, counting the background as 0
    _, evaluated = DetectionDataset([file], train=False)[0]
    assert metric_target(evaluated)["iscrowd"].tolist() == [1, 0]


def test_images_without_annotations_are_kept(coco_root):
    reader = CocoReader(coco_root)
    assert reader.read_split("train")[2].target == {"boxes": [], "labels": [], "difficult": []}
    assert [item.relpath for item in reader.read_split("test")] == [
        "val2017/000010.jpg",
        "val2017/000011.jpg",
    ]


def test_the_category_mapping_enters_the_fingerprint(coco_root):
    reader = CocoReader(coco_root)
    before = reader.fingerprint(reader.read_split("train"))

    def rename(document):
        document["categories"][0]["name"] = "sparrow"

    edit_annotations(coco_root, "train2017", rename)
    renamed = CocoReader(coco_root)
    assert renamed.class_names() == ["cat", "dog", "sparrow"]
    assert renamed.fingerprint(renamed.read_split("train")) != before


@pytest.mark.parametrize(
    ("bbox", "words"),
    [
        ([50, 10, 30, 10], r"spans x 50\.\.80, y 10\.\.20, beyond the 64x48 image"),
        ([-3, 10, 10, 10], "beyond the 64x48 image by more than 1 px"),
        ([10, 40, 10, 10], "beyond the 64x48 image"),
        ([10, 10, -4, 10], "negative width or height"),
        ([10, 10, 5], r"must be \[x, y, width, height\]"),
        ([10, "a", 5, 5], r"must be \[x, y, width, height\]"),
    ],
)
def test_a_bad_box_names_the_file_and_the_annotation_id(coco_root, bbox, words):
    edit_annotations(coco_root, "train2017", lambda d: annotation(d, 32).update(bbox=bbox))
    with pytest.raises(
        DatasetError, match=rf"instances_train2017\.json: annotation id 32 .*{words}"
    ):
        CocoReader(coco_root).read_split("train")


def test_overshoots_within_a_pixel_are_clipped(coco_root):
    assert BOX_TOLERANCE == pytest.approx(1.0)

    def overshoot(document):
        annotation(document, 31)["bbox"] = [-0.6, 6, 10, 42.8]  # y2 = 48.8, x1 = -0.6

    edit_annotations(coco_root, "train2017", overshoot)
    train = CocoReader(coco_root).read_split("train")
    assert train[1].target["boxes"][0] == pytest.approx([0.0, 6.0, 9.4, 48.0])


def test_a_box_of_zero_size_is_left_out_and_listed(coco_root, caplog):
    edit_annotations(coco_root, "train2017", lambda d: annotation(d, 12).update(bbox=[2, 2, 8, 0]))
    reader = CocoReader(coco_root)
    with caplog.at_level(logging.WARNING, logger="sweep.data.coco"):
        train = reader.read_split("train")
    assert train[0].target == {
        "boxes": [[10.0, 10.0, 50.0, 40.0]],
        "labels": [0],
        "difficult": [True],
    }
    assert reader.dropped_boxes() == {"train": [12]}
    assert "zero width or height left out" in caplog.text and "ids 12" in caplog.text


def test_an_unknown_category_is_an_error_naming_the_annotation(coco_root):
    edit_annotations(coco_root, "val2017", lambda d: annotation(d, 102).update(category_id=99))
    with pytest.raises(DatasetError) as raised:
        CocoReader(coco_root).read_split("test")
    message = str(raised.value)
    assert "instances_val2017.json: annotation id 102" in message
    assert "category_id 99 is not one of the 3 categories" in message
    assert "task.reader.unknown_classes=skip" in message


def test_skip_leaves_unknown_categories_out_and_counts_them(coco_root, caplog):
    def add_category(document):
        document["categories"].append({"id": 40, "name": "zebra"})
        annotation(document, 102)["category_id"] = 40

    edit_annotations(coco_root, "val2017", add_category)
    reader = CocoReader(coco_root, unknown_classes="skip")
    with caplog.at_level(logging.WARNING, logger="sweep.data"):
        test = reader.read_split("test")
    assert test[0].target["labels"] == [1]  # the dog stays, the zebra is out
    assert reader.skipped_objects()["test"] == {"zebra": 1}
    assert "left 1 object(s) out of the test split" in caplog.text and "zebra 1" in caplog.text


def test_the_test_file_must_name_shared_category_ids_alike(coco_root):
    edit_annotations(coco_root, "val2017", lambda d: d["categories"][1].update(name="kitten"))
    with pytest.raises(DatasetError, match=r"id 2: 'cat' vs 'kitten'.*one category list"):
        CocoReader(coco_root).read_split("test")


def test_test_split_warnings_name_the_classes(coco_root, caplog):
    def only_birds(document):
        document["annotations"] = [
            {"id": 300, "image_id": 10, "category_id": 18, "bbox": [1, 1, 5, 5], "iscrowd": 0}
        ]

    edit_annotations(coco_root, "val2017", only_birds)
    reader = CocoReader(coco_root)
    with caplog.at_level(logging.WARNING, logger="sweep.data"):
        reader.items("test")
    assert "test split" not in caplog.text
    # Training has a bird (ann 12): the test's bird is no warning; a test-only class is.
    edit_annotations(coco_root, "train2017", lambda d: d["annotations"].pop(3))  # the bird
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sweep.data"):
        CocoReader(coco_root).items("test")
    assert "classes that the training split lacks: bird 1" in caplog.text
    assert "holds no object of the training classes ['cat', 'dog']" in caplog.text


def test_split_names_are_options(coco_root):
    for old, new in (("train2017", "train"), ("val2017", "valid")):
        (coco_root / old).rename(coco_root / new)
        (coco_root / "annotations" / f"instances_{old}.json").rename(
            coco_root / "annotations" / f"instances_{new}.json"
        )
    with pytest.raises(DatasetError, match=r"instances_train2017\.json is missing.*task\.train"):
        CocoReader(coco_root).prepare()
    reader = CocoReader(coco_root, train_split="train", test_split="valid")
    reader.prepare()
    assert reader.items("test")[0].relpath == "valid/000010.jpg"
    with pytest.raises(OptionError) as raised:
        CocoReader(coco_root, train_split="../elsewhere")
    assert raised.value.option == "task.train_split"


def test_image_names_may_not_leave_the_root(coco_root):
    edit_annotations(
        coco_root, "val2017", lambda d: d["images"][0].update(file_name="../../secret.jpg")
    )
    with pytest.raises(DatasetError, match=r"image id 10: '.*secret\.jpg' points outside"):
        CocoReader(coco_root).read_split("test")


def test_a_listed_image_that_does_not_exist_names_it(coco_root):
    (coco_root / "val2017" / "000011.jpg").unlink()
    with pytest.raises(DatasetError, match=r"image id 11: .*000011\.jpg does not exist"):
        CocoReader(coco_root).read_split("test")


def test_an_annotation_of_an_unlisted_image_is_refused(coco_root):
    edit_annotations(coco_root, "val2017", lambda d: annotation(d, 101).update(image_id=77))
    with pytest.raises(DatasetError, match=r"annotation id 101 refers to image_id 77"):
        CocoReader(coco_root).read_split("test")


def test_symlinked_image_folders_are_followed(coco_root, tmp_path):
    other_disk = tmp_path / "other_disk"
    other_disk.mkdir()
    (coco_root / "train2017").rename(other_disk / "train2017")
    (coco_root / "train2017").symlink_to(other_disk / "train2017", target_is_directory=True)
    reader = CocoReader(coco_root)
    reader.prepare()
    items = reader.items("train")
    assert items[0].relpath == "train2017/000001.jpg"
    assert reader.resolve(items[0].relpath).is_file()
    assert reader.fingerprint(items)


# ---- through the config and the whole sweep ---------------------------------------------------


def test_task_coco_composes_with_the_coco_metric_and_split_options(tmp_path):
    from sweep.config.build import build_sweep
    from tests.conftest import compose_config

    sweep = build_sweep(
        compose_config("task=coco", f"task.root={tmp_path}", f"results_dir={tmp_path}"),
        check_data=False,
    )
    assert sweep.model.name == "faster_rcnn" and sweep.task.metric_names == ("map", "map_50")
    assert sweep.reader.splits == {"train": "train2017", "test": "val2017"}
    renamed = compose_config(
        "task=coco", f"task.root={tmp_path}", "task.train_split=train", "task.test_split=valid"
    )
    assert build_sweep(renamed, check_data=False).reader.splits == {
        "train": "train",
        "test": "valid",
    }


def detection_images(count: int, first_id: int, seed: int) -> list:
    """count images with one or two objects of categories 2 and 7, and one without any."""
    rng = np.random.default_rng(seed)
    images = []
    for number in range(count):
        image_id = first_id + number
        objects = []
        for index in range(0 if number == count - 1 else 1 + number % 2):
            x, y = int(rng.integers(0, 30)), int(rng.integers(0, 20))
            category = (2, 7)[(number + index) % 2]
            objects.append((image_id * 10 + index, category, [x, y, 24, 20], 0))
        images.append((image_id, f"{image_id:06d}.jpg", objects))
    return images


def test_coco_sweep_reports_coco_map_first(tmp_path):
    from sweep.config.build import build_sweep
    from tests.conftest import compose_config, run_sweep

    images = {"train2017": detection_images(8, 1, 0), "val2017": detection_images(4, 100, 1)}
    root = write_coco(tmp_path / "coco", images, CATEGORIES[1:])
    sweep = build_sweep(
        compose_config(
            "task=coco",
            f"task.root={root}",
            f"results_dir={tmp_path / 'results'}",
            "model=faster_rcnn_tiny",
            "model.train_sizes=[64]",
            "model.test_size=64",
            "model.max_size=64",
            "task.kind.grad_clip=10",
            "train.epochs=2",
            "train.batch_size=4",
            "grid.train=[original,4]",
            "grid.test=[original,4]",
            "cluster=inline",
            "cluster.torch_threads=1",
            "distortion.enabled=false",
            "sensitivity=off",
            "tracking=none",
            "progress=false",
        )
    )
    assert sweep.task.metric_names == ("map", "map_50")
    assert sweep.reader.class_names() == ["cat", "dog"]
    report = run_sweep(sweep)
    with (report / "results.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert rows[0]["metric"] == "map" and {r["metric"] for r in rows} >= {"map", "map_50"}
    assert len([r for r in rows if r["metric"] in ("map", "map_50")]) == 8
    assert all(-1 <= float(r["value"]) <= 1 for r in rows)
    assert all(r["task"] == "coco" and r["model"] == "faster_rcnn_tiny" for r in rows)
