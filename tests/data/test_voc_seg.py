"""The VOC 2012 segmentation reader and its palette masks on a tiny folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sweep.data.base import DatasetError
from sweep.data.masks import lookup_table, read_label_mask, read_training_mask
from sweep.data.voc_seg import VOC_CLASSES, VocSegmentationReader

# Class indices of the generated masks: background, aeroplane, person, the 255 border.
MASK_INDICES = np.array([[0, 1, 15, 255], [255, 0, 0, 20]], dtype=np.uint8)


def voc_palette() -> list[int]:
    """The PASCAL VOC colour map (bit-interleaved), as in the devkit's labelcolormap."""
    palette = []
    for index in range(256):
        red = green = blue = 0
        code = index
        for bit in range(8):
            red |= ((code >> 0) & 1) << (7 - bit)
            green |= ((code >> 1) & 1) << (7 - bit)
            blue |= ((code >> 2) & 1) << (7 - bit)
            code >>= 3
        palette += [red, green, blue]
    return palette


def write_voc_seg(root: Path, size: tuple[int, int] = (40, 24)) -> Path:
    """VOC2012/: 3 train and 2 val JPEGs with palette masks, plus a detection-only JPEG."""
    width, height = size
    ids = {
        "train": ["2007_000032", "2007_000033", "2008_000001"],
        "val": ["2009_000002", "2010_000005"],
    }
    (root / "JPEGImages").mkdir(parents=True)
    (root / "SegmentationClass").mkdir()
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    for number, image_id in enumerate(ids["train"] + ids["val"]):
        rng = np.random.default_rng(number)
        pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "JPEGImages" / f"{image_id}.jpg", quality=95)
        mask = Image.fromarray(np.roll(np.tile(MASK_INDICES, (height // 2, width // 4)), number))
        mask.putpalette(voc_palette())
        mask.save(root / "SegmentationClass" / f"{image_id}.png")
    Image.new("RGB", size).save(root / "JPEGImages" / "2012_999999.jpg")  # no mask, not listed
    for split, listed in ids.items():
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(listed) + "\n")
    return root


@pytest.fixture
def voc_seg(tmp_path: Path) -> Path:
    return write_voc_seg(tmp_path / "VOCdevkit" / "VOC2012")


def test_reader_lists_the_segmentation_image_sets(voc_seg):
    reader = VocSegmentationReader(voc_seg)
    reader.prepare()
    assert reader.class_names() == list(VOC_CLASSES) and len(VOC_CLASSES) == 21
    train, test = reader.read_split("train"), reader.read_split("test")
    assert [item.relpath for item in train] == [
        "JPEGImages/2007_000032.jpg",
        "JPEGImages/2007_000033.jpg",
        "JPEGImages/2008_000001.jpg",
    ]
    assert [item.mask for item in test] == [
        "SegmentationClass/2009_000002.png",
        "SegmentationClass/2010_000005.png",
    ]
    assert train[0].target == {"label_ids": list(range(21))}


def test_a_vocdevkit_root_finds_voc2012(voc_seg):
    reader = VocSegmentationReader(voc_seg.parent)
    reader.prepare()
    assert reader.root == voc_seg and len(reader.read_split("test")) == 2


def test_palette_masks_are_read_as_indices_not_colours(voc_seg):
    path = voc_seg / "SegmentationClass" / "2007_000032.png"
    with Image.open(path) as image:
        assert image.mode == "P"
        # Through RGB, person (15) would be (192, 128, 128): the reader must not go there.
        assert image.convert("RGB").getpixel((2, 0)) == (192, 128, 128)
    raw = read_label_mask(path)
    assert raw[:2, :4].tolist() == MASK_INDICES.tolist()
    mapped = read_training_mask(path, lookup_table(list(range(21))))
    assert mapped[:2, :4].tolist() == MASK_INDICES.tolist()  # 255 border stays ignored


def test_missing_mask_names_the_file_and_the_line(voc_seg):
    (voc_seg / "SegmentationClass" / "2010_000005.png").unlink()
    with pytest.raises(DatasetError, match=r"val.txt:2: .*2010_000005.png is missing"):
        VocSegmentationReader(voc_seg).read_split("test")


def test_listed_image_that_does_not_exist_names_it(voc_seg):
    with (voc_seg / "ImageSets" / "Segmentation" / "train.txt").open("a") as stream:
        stream.write("2011_000404\n")
    with pytest.raises(DatasetError, match=r"train.txt:4: .*2011_000404.jpg does not exist"):
        VocSegmentationReader(voc_seg).read_split("train")


def test_missing_segmentation_folder_names_the_layout(voc_seg):
    import shutil

    shutil.rmtree(voc_seg / "SegmentationClass")
    with pytest.raises(DatasetError, match="SegmentationClass is missing: task=voc_seg expects"):
        VocSegmentationReader(voc_seg).prepare()


def test_own_classes_as_a_list_or_a_file_in_index_order(voc_seg, tmp_path):
    reader = VocSegmentationReader(voc_seg, classes=["background", "plane"])
    reader.prepare()
    assert reader.class_names() == ["background", "plane"]
    assert reader.read_split("train")[0].target == {"label_ids": [0, 1]}
    names = tmp_path / "classes.txt"
    names.write_text("background\nplane\nperson\n")
    from_file = VocSegmentationReader(voc_seg, classes=str(names))
    assert from_file.class_names() == ["background", "plane", "person"]
    assert from_file.read_split("test")[0].target == {"label_ids": [0, 1, 2]}


def test_classes_cannot_be_discovered_from_palette_masks(voc_seg):
    from sweep.errors import OptionError

    with pytest.raises(OptionError, match="hold class indices, not names") as raised:
        VocSegmentationReader(voc_seg, classes="discover")
    assert raised.value.option == "task.reader.classes"


def test_a_symlinked_image_folder_is_followed(voc_seg, tmp_path):
    other_disk = tmp_path / "other_disk"
    other_disk.mkdir()
    (voc_seg / "JPEGImages").rename(other_disk / "JPEGImages")
    (voc_seg / "JPEGImages").symlink_to(other_disk / "JPEGImages", target_is_directory=True)
    reader = VocSegmentationReader(voc_seg)
    reader.prepare()
    assert len(reader.read_split("train")) == 3
