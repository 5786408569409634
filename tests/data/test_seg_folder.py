"""The segmentation folder reader: images/ and masks/ of class indices, on tiny folders."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sweep.data.base import DatasetError
from sweep.data.masks import lookup_table, read_training_mask
from sweep.data.seg_folder import SegmentationFolderReader
from sweep.errors import OptionError

CLASSES = ("background", "road", "car")
# Class indices of the generated masks: background, road, car and the ignored 255.
MASK_VALUES = np.array([[0, 1, 2, 255], [1, 1, 0, 2]], dtype=np.uint8)


def write_seg_folder(
    root: Path, size: tuple[int, int] = (32, 24), counts: tuple[int, int] = (3, 2)
) -> Path:
    """images/{train,test}/*.jpg with masks/{train,test}/*.png, and classes.txt."""
    width, height = size
    for split, count in zip(("train", "test"), counts, strict=True):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "masks" / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            rng = np.random.default_rng(index + (0 if split == "train" else 100))
            mask = np.roll(np.tile(MASK_VALUES, (height // 2, width // 4)), index, axis=1)
            pixels = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
            pixels[mask == 1] += 120  # the classes are visible, so a model can learn them
            pixels[mask == 2, 2] += 180
            Image.fromarray(pixels).save(root / "images" / split / f"{split}_{index}.jpg")
            Image.fromarray(mask).save(root / "masks" / split / f"{split}_{index}.png")
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return root


@pytest.fixture
def seg_root(tmp_path: Path) -> Path:
    return write_seg_folder(tmp_path / "seg")


def test_reads_images_with_their_masks(seg_root):
    reader = SegmentationFolderReader(seg_root, classes=str(seg_root / "classes.txt"))
    reader.prepare()
    assert reader.class_names() == list(CLASSES)
    train, test = reader.read_split("train"), reader.read_split("test")
    assert [item.relpath for item in train] == [f"images/train/train_{i}.jpg" for i in range(3)]
    assert [item.mask for item in test] == ["masks/test/test_0.png", "masks/test/test_1.png"]
    assert train[0].target == {"label_ids": [0, 1, 2]}
    mapped = read_training_mask(seg_root / train[0].mask, lookup_table([0, 1, 2]))
    assert mapped[:2, :4].tolist() == MASK_VALUES.tolist()  # indices as they are, 255 ignored


def test_classes_as_a_list_and_an_ignore_index(seg_root):
    reader = SegmentationFolderReader(seg_root, classes=["background", "road"], ignore_index=2)
    assert reader.class_names() == ["background", "road"]
    assert reader.read_split("train")[0].target == {"label_ids": [0, 1]}
    # The ignore index may not be a class index.
    clash = SegmentationFolderReader(seg_root, classes=list(CLASSES), ignore_index=1)
    with pytest.raises(DatasetError, match="reach the ignore index 1") as raised:
        clash.prepare()
    assert raised.value.option == "task.reader.classes"


@pytest.mark.parametrize("ignore_index", [256, -1, "255", 2.5])
def test_a_bad_ignore_index_names_the_option(seg_root, ignore_index):
    with pytest.raises(OptionError) as raised:
        SegmentationFolderReader(seg_root, classes=list(CLASSES), ignore_index=ignore_index)
    assert raised.value.option == "task.reader.ignore_index"


def test_classes_cannot_be_discovered_from_masks(seg_root):
    with pytest.raises(OptionError, match="masks hold class indices, not names") as raised:
        SegmentationFolderReader(seg_root, classes="discover")
    assert raised.value.option == "task.reader.classes"


def test_a_missing_class_file_says_how_to_give_the_classes(seg_root):
    (seg_root / "classes.txt").unlink()
    reader = SegmentationFolderReader(seg_root, classes=str(seg_root / "classes.txt"))
    with pytest.raises(DatasetError, match=r"classes\.txt does not exist.*one class a line"):
        reader.prepare()


def test_a_mask_of_another_size_names_both_files(seg_root):
    mask = seg_root / "masks" / "train" / "train_1.png"
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(mask)
    with pytest.raises(DatasetError) as raised:
        SegmentationFolderReader(seg_root, classes=list(CLASSES)).read_split("train")
    message = str(raised.value)
    assert f"{mask} is 12x10 but its image" in message
    assert "images/train/train_1.jpg is 32x24" in message


def test_a_missing_mask_names_the_image(seg_root):
    (seg_root / "masks" / "test" / "test_1.png").unlink()
    with pytest.raises(DatasetError, match=r"test_1\.png is missing: .*images/test/test_1\.jpg"):
        SegmentationFolderReader(seg_root, classes=list(CLASSES)).read_split("test")


def test_a_colour_mask_is_refused(seg_root):
    mask = seg_root / "masks" / "train" / "train_0.png"
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(mask)
    with pytest.raises(DatasetError, match=r"train_0\.png: a label mask must be a single-channel"):
        SegmentationFolderReader(seg_root, classes=list(CLASSES)).read_split("train")


def test_missing_folders_name_the_layout(seg_root):
    import shutil

    shutil.rmtree(seg_root / "masks" / "test")
    with pytest.raises(DatasetError, match=r"masks/test is missing: task=seg_folder expects"):
        SegmentationFolderReader(seg_root, classes=list(CLASSES)).prepare()


def test_sub_folders_are_mirrored_and_symlinks_followed(seg_root, tmp_path):
    # A city sub-folder, its images and masks on "another disk", linked in.
    other = tmp_path / "other_disk"
    for folder in ("images", "masks"):
        (other / folder).mkdir(parents=True)
    (seg_root / "images" / "train" / "train_2.jpg").rename(other / "images" / "b.jpg")
    (seg_root / "masks" / "train" / "train_2.png").rename(other / "masks" / "b.png")
    (seg_root / "images" / "train" / "city").symlink_to(other / "images")
    (seg_root / "masks" / "train" / "city").symlink_to(other / "masks")
    reader = SegmentationFolderReader(seg_root, classes=list(CLASSES))
    items = reader.read_split("train")
    assert [item.relpath for item in items] == [
        "images/train/city/b.jpg",
        "images/train/train_0.jpg",
        "images/train/train_1.jpg",
    ]
    assert items[0].mask == "masks/train/city/b.png"
    assert reader.fingerprint(items)


def test_two_images_that_would_share_a_mask_are_refused(seg_root):
    Image.new("RGB", (32, 24)).save(seg_root / "images" / "train" / "train_0.png")
    with pytest.raises(DatasetError, match=r"would share the mask .*train_0\.png"):
        SegmentationFolderReader(seg_root, classes=list(CLASSES)).read_split("train")


def test_task_seg_folder_reads_classes_txt_under_the_root_by_default(tmp_path):
    from sweep.config.build import build_sweep
    from sweep.errors import OptionError
    from tests.conftest import compose_config

    root = write_seg_folder(tmp_path / "seg")
    cfg = ("task=seg_folder", f"task.root={root}", f"results_dir={tmp_path}", "tracking=none")
    sweep = build_sweep(compose_config(*cfg), check_data=False)
    assert sweep.model.name == "segformer" and sweep.task.metric_names == ("miou", "macc")
    assert sweep.reader.class_names() == list(CLASSES)
    (root / "classes.txt").unlink()
    with pytest.raises(OptionError, match=r"task.reader.classes: the class file .*classes\.txt"):
        build_sweep(compose_config(*cfg, "model=segformer_tiny"))


def test_seg_folder_sweep_writes_miou_and_macc(tmp_path):
    from sweep.config.build import build_sweep
    from tests.conftest import compose_config, run_sweep

    root = write_seg_folder(tmp_path / "seg", size=(32, 32), counts=(4, 2))
    sweep = build_sweep(
        compose_config(
            "task=seg_folder",
            f"task.root={root}",
            f"results_dir={tmp_path / 'results'}",
            "model=segformer_tiny",
            "model.architecture.hidden_sizes=[8,16,16,16]",
            "model.architecture.num_attention_heads=[1,1,1,1]",
            "model.architecture.decoder_hidden_size=16",
            "task.kind.crop_size=32",
            "task.kind.resize_short_side=null",
            "train.epochs=1",
            "train.batch_size=2",
            "grid.train=[original,4]",
            "grid.test=[original,4]",
            "cluster=inline",
            "cluster.torch_threads=1",
            "distortion.enabled=false",
            "tracking=none",
            "progress=false",
        )
    )
    assert sweep.reader.class_names() == list(CLASSES)  # <root>/classes.txt by default
    report = run_sweep(sweep)
    with (report / "results.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert {r["metric"] for r in rows} == {"miou", "macc"} and len(rows) == 8
    assert all(0 <= float(r["value"]) <= 1 and r["task"] == "seg_folder" for r in rows)
