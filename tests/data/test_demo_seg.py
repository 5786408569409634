"""The built-in segmentation demo: deterministic, in the Cityscapes layout, read like Cityscapes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sweep.data.cityscapes import CityscapesReader
from sweep.data.demo_seg import DemoSegReader
from sweep.data.demo_seg_images import (
    DEMO_SEG_CLASSES,
    DEMO_SEG_LABEL_IDS,
    UNLABELED_ID,
    render_demo_seg_image,
)
from sweep.data.masks import lookup_table, read_label_mask, read_training_mask
from sweep.errors import OptionError


def small_demo(root) -> DemoSegReader:
    reader = DemoSegReader(root, train_images=6, test_images=3, image_size=64, seed=3)
    reader.prepare()
    return reader


def test_demo_is_written_like_cityscapes_and_read_by_its_reader(tmp_path):
    reader = small_demo(tmp_path)
    assert isinstance(reader, CityscapesReader)
    assert reader.class_names() == list(DEMO_SEG_CLASSES)
    train, test = reader.items("train"), reader.items("test")
    assert len(train) == 6 and len(test) == 3
    assert train[0].relpath.startswith("leftImg8bit/train/")
    assert train[0].relpath.endswith("_leftImg8bit.png")
    assert train[0].mask.startswith("gtFine/train/") and train[0].mask.endswith("_labelIds.png")
    assert all(item.relpath.startswith("leftImg8bit/val/") for item in test)
    assert train[0].target == {"label_ids": list(DEMO_SEG_LABEL_IDS)}
    with Image.open(reader.root / train[0].relpath) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGB", (64, 64))
    # Generated once, atomically: the folder is complete and no staging folder is left.
    assert (reader.root / "DONE").exists()
    assert [p.name for p in tmp_path.iterdir()] == [reader.root.name]


def test_generation_is_deterministic_and_keyed_by_its_parameters(tmp_path):
    first, second = small_demo(tmp_path / "a"), small_demo(tmp_path / "b")
    assert first.root.name == second.root.name
    for item in first.items("train") + first.items("test"):
        for relpath in (item.relpath, item.mask):
            assert (first.root / relpath).read_bytes() == (second.root / relpath).read_bytes()
    other = DemoSegReader(tmp_path / "a", train_images=6, test_images=3, image_size=64, seed=4)
    assert other.root != first.root


def test_masks_hold_every_class_and_an_ignored_rim(tmp_path):
    reader = small_demo(tmp_path)
    table = lookup_table(DEMO_SEG_LABEL_IDS)
    counts = np.zeros(256, dtype=np.int64)
    for item in reader.items("train"):
        raw = read_label_mask(reader.root / item.mask)
        assert set(np.unique(raw)) <= {UNLABELED_ID, *DEMO_SEG_LABEL_IDS}
        counts += np.bincount(
            read_training_mask(reader.root / item.mask, table).ravel(), minlength=256
        )
    assert counts[0] > counts[1:5].sum()  # background is the majority class
    assert (counts[: len(DEMO_SEG_CLASSES)] > 0).all()
    assert 0 < counts[255] < 0.1 * counts.sum()  # object rims, as Cityscapes' void


@pytest.mark.parametrize("class_name", ["red_grainy", "blue_grainy"])
def test_grainy_objects_carry_pixel_level_texture(class_name):
    """The grain that compression removes: neighbouring pixels of a grainy object differ."""
    rng = np.random.default_rng(0)
    wanted = DEMO_SEG_LABEL_IDS[DEMO_SEG_CLASSES.index(class_name)]
    smooth = DEMO_SEG_LABEL_IDS[DEMO_SEG_CLASSES.index(class_name.replace("grainy", "smooth"))]
    roughness = {}
    for _ in range(60):
        image, mask = render_demo_seg_image(rng, 96)
        luma = image.astype(np.float32).mean(axis=2)
        step = np.abs(np.diff(luma, axis=1))
        inside = (mask[:, 1:] == mask[:, :-1])[:, :]
        for label in (wanted, smooth):
            values = step[inside & (mask[:, 1:] == label)]
            if values.size:
                roughness.setdefault(label, []).append(values.mean())
    assert np.mean(roughness[wanted]) > 10 > 2 > np.mean(roughness[smooth])


@pytest.mark.parametrize(("option", "value"), [("train_images", 0), ("image_size", 16)])
def test_wrong_parameters_name_the_option(tmp_path, option, value):
    with pytest.raises(OptionError) as error:
        DemoSegReader(tmp_path, **{option: value})
    assert error.value.option == f"task.reader.{option}"
