"""Datasets as users have them, through the command line: own classes in VOC's layout behind
symlinks, COCO JSON, segmentation folders, and every bad input refused before any work."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.data.test_coco import write_coco
from tests.data.test_seg_folder import write_seg_folder
from tests.data.test_voc import write_voc_folder

REPO = Path(__file__).resolve().parent.parent
# Tiny detector and segmenter, one short training per setting, no extras.
DETECTION = (
    "model=faster_rcnn_tiny", "model.train_sizes=[64]", "model.test_size=64",
    "model.max_size=64", "task.kind.grad_clip=10", "train.epochs=1", "train.batch_size=4",
)  # fmt: skip
QUICK = (
    "grid.train=[original,4]", "grid.test=[original,4]", "cluster=inline",
    "cluster.torch_threads=1", "distortion.enabled=false", "sensitivity=off", "tracking=none",
    "progress=false",
)  # fmt: skip
# Aerial photos with boxes of one class that VOC does not have.
TREES = (
    ("tile_01", "train", [("Tree", 5, 7, 30, 40, False), ("Tree", 33, 2, 60, 45, False)]),
    ("tile_02", "train", [("Tree", 10, 10, 50, 40, False)]),
    ("tile_03", "train", [("Tree", 1, 1, 40, 30, False)]),
    ("tile_04", "train", [("Tree", 20, 5, 55, 35, False)]),
    ("tile_05", "val", [("Tree", 3, 3, 30, 30, False)]),
    ("tile_06", "val", [("Tree", 30, 10, 60, 44, False)]),
)


def sweep(*overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sweep", *QUICK, *overrides],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def linked_voc(tmp_path: Path) -> Path:
    """The trees' VOC folder with JPEGImages/ and Annotations/ as symlinks to another disk."""
    elsewhere = write_voc_folder(tmp_path / "disk2", TREES)
    root = tmp_path / "VOC"
    (root / "ImageSets").mkdir(parents=True)
    (root / "ImageSets" / "Main").symlink_to(elsewhere / "ImageSets" / "Main")
    for folder in ("JPEGImages", "Annotations"):
        (root / folder).symlink_to(elsewhere / folder)
    return root


def rows_of(stdout: str) -> list[dict]:
    [path] = [line.split(": ", 1)[1] for line in stdout.splitlines() if line.startswith("results:")]
    with open(path) as stream:
        return list(csv.DictReader(stream))


@pytest.mark.slow
@pytest.mark.parametrize("classes", ["[Tree]", "discover"])
def test_own_classes_behind_symlinks_sweep(tmp_path, classes):
    root = linked_voc(tmp_path)
    done = sweep("task=voc", f"task.root={root}", f"task.reader.classes={classes}",
                 f"results_dir={tmp_path / 'results'}", *DETECTION)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = rows_of(done.stdout)
    assert {r["metric"] for r in rows} == {"map_50", "map"} and len(rows) == 8
    assert all(0 <= float(r["value"]) <= 1 for r in rows)
    # The classes, given or discovered, are stored with the sweep's report.
    [report] = (tmp_path / "results" / "reports").glob("voc_*")
    assert (report / "classes.txt").read_text() == "Tree\n"


@pytest.mark.slow
def test_a_coco_folder_sweeps_over_its_own_categories(tmp_path):
    root = write_coco(tmp_path / "coco")
    done = sweep("task=coco", f"task.root={root}", f"results_dir={tmp_path / 'results'}",
                 *DETECTION)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = rows_of(done.stdout)
    assert rows[0]["metric"] == "map" and {r["metric"] for r in rows} == {"map", "map_50"}
    # COCO ids 2, 7 and 18 become labels 0, 1, 2 in id order, and the mapping is logged.
    assert "labels in id order: 2->0 cat, 7->1 dog, 18->2 bird" in done.stdout + done.stderr


@pytest.mark.slow
def test_a_segmentation_folder_sweeps(tmp_path):
    root = write_seg_folder(tmp_path / "seg")
    done = sweep("task=seg_folder", f"task.root={root}", f"results_dir={tmp_path / 'results'}",
                 "model=segformer_tiny", "train.epochs=1", "train.batch_size=2")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert {r["metric"] for r in rows_of(done.stdout)} == {"miou", "macc"}


def break_voc_class(tmp_path: Path) -> tuple[list[str], str]:
    root = linked_voc(tmp_path)
    return ["task=voc", f"task.root={root}"], "tile_01.xml"


def break_coco_box(tmp_path: Path) -> tuple[list[str], str]:
    root = write_coco(tmp_path / "coco")
    path = root / "annotations" / "instances_train2017.json"
    document = json.loads(path.read_text())
    document["annotations"][0]["bbox"] = [50, 10, 40, 20]  # leaves the 64 px wide image
    path.write_text(json.dumps(document))
    return ["task=coco", f"task.root={root}"], "instances_train2017.json"


def break_mask_size(tmp_path: Path) -> tuple[list[str], str]:
    root = write_seg_folder(tmp_path / "seg")
    Image.new("L", (8, 8)).save(root / "masks" / "train" / "train_1.png")
    return ["task=seg_folder", f"task.root={root}"], "train_1.png"


def break_missing_file(tmp_path: Path) -> tuple[list[str], str]:
    root = linked_voc(tmp_path)
    (tmp_path / "disk2" / "JPEGImages" / "tile_02.jpg").unlink()
    return ["task=voc", f"task.root={root}", "task.reader.classes=[Tree]"], "tile_02"


@pytest.mark.parametrize(
    "broken", [break_voc_class, break_coco_box, break_mask_size, break_missing_file]
)
def test_each_bad_input_exits_2_before_any_work_naming_the_file(tmp_path, broken):
    overrides, named = broken(tmp_path)
    results = tmp_path / "results"
    done = sweep(*overrides, f"results_dir={results}")
    assert done.returncode == 2, done.stderr[-3000:]
    assert named in done.stderr and "Traceback" not in done.stderr
    assert not (results / "store" / "encode").exists()  # before any work
