"""The Cityscapes reader and label masks on a tiny folder in the real layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sweep.data.base import DatasetError
from sweep.data.cityscapes import CITYSCAPES_CLASSES, CITYSCAPES_LABEL_IDS, CityscapesReader
from sweep.data.masks import IGNORE_INDEX, lookup_table, read_label_mask, read_training_mask
from sweep.errors import OptionError

# Label ids of cityscapesScripts' labels.py: (name, id, trainId) of every label.
LABELS_PY = [
    ("unlabeled", 0, 255), ("ego vehicle", 1, 255), ("rectification border", 2, 255),
    ("out of roi", 3, 255), ("static", 4, 255), ("dynamic", 5, 255), ("ground", 6, 255),
    ("road", 7, 0), ("sidewalk", 8, 1), ("parking", 9, 255), ("rail track", 10, 255),
    ("building", 11, 2), ("wall", 12, 3), ("fence", 13, 4), ("guard rail", 14, 255),
    ("bridge", 15, 255), ("tunnel", 16, 255), ("pole", 17, 5), ("polegroup", 18, 255),
    ("traffic light", 19, 6), ("traffic sign", 20, 7), ("vegetation", 21, 8),
    ("terrain", 22, 9), ("sky", 23, 10), ("person", 24, 11), ("rider", 25, 12), ("car", 26, 13),
    ("truck", 27, 14), ("bus", 28, 15), ("caravan", 29, 255), ("trailer", 30, 255),
    ("train", 31, 16), ("motorcycle", 32, 17), ("bicycle", 33, 18),
]  # fmt: skip
# Label ids of the generated masks: road, sidewalk, car, and ids that are no training class.
MASK_IDS = np.array([[7, 8, 26, 0], [4, 7, 33, 7]], dtype=np.uint8)


def write_cityscapes(root: Path, size: tuple[int, int] = (48, 32)) -> Path:
    """Two train cities with two images each and one val city with two images.

    Every mask is MASK_IDS tiled over the image, shifted by the image index; the camera images
    are noisy PNGs (so that they compress), like the real leftImg8bit frames.
    """
    width, height = size
    layout = {"train": {"aachen": 2, "bochum": 2}, "val": {"frankfurt": 2}}
    for split, cities in layout.items():
        for city, count in cities.items():
            for index in range(count):
                stem = f"{city}_{index:06d}_000019"
                rng = np.random.default_rng(len(city) * 10 + index)
                pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
                mask = np.roll(np.tile(MASK_IDS, (height // 2, width // 4)), index, axis=1)
                image_dir = root / "leftImg8bit" / split / city
                mask_dir = root / "gtFine" / split / city
                image_dir.mkdir(parents=True, exist_ok=True)
                mask_dir.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(image_dir / f"{stem}_leftImg8bit.png")
                Image.fromarray(mask).save(mask_dir / f"{stem}_gtFine_labelIds.png")
                # The other gtFine files of the real dataset, which the reader must not take.
                Image.fromarray(np.zeros((height, width, 3), np.uint8)).save(
                    mask_dir / f"{stem}_gtFine_color.png"
                )
    return root


@pytest.fixture
def cityscapes(tmp_path: Path) -> Path:
    return write_cityscapes(tmp_path / "cityscapes")


def test_label_table_is_the_official_train_id_table():
    table = lookup_table(CITYSCAPES_LABEL_IDS)
    assert table.shape == (256,) and table.dtype == np.uint8
    for name, label_id, train_id in LABELS_PY:
        assert table[label_id] == train_id, name
        if train_id != 255:
            assert CITYSCAPES_CLASSES[train_id] == name
    assert (table[34:] == IGNORE_INDEX).all()  # license plate (-1) and anything else


def test_reader_pairs_images_with_label_id_masks(cityscapes):
    reader = CityscapesReader(cityscapes)
    reader.prepare()
    assert reader.class_names() == list(CITYSCAPES_CLASSES)
    train, test = reader.read_split("train"), reader.read_split("test")
    assert len(train) == 4 and len(test) == 2
    first = train[0]
    assert first.relpath == "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png"
    assert first.mask == "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png"
    assert first.target == {"label_ids": list(CITYSCAPES_LABEL_IDS)}
    assert all(item.relpath.startswith("leftImg8bit/val/frankfurt/") for item in test)


def test_masks_are_read_as_label_ids_and_mapped_to_train_ids(cityscapes):
    reader = CityscapesReader(cityscapes)
    item = reader.read_split("train")[0]
    raw = read_label_mask(cityscapes / item.mask)
    assert raw.dtype == np.uint8 and raw.shape == (32, 48)
    assert (raw[:2, :4] == MASK_IDS).all()
    mapped = read_training_mask(cityscapes / item.mask, lookup_table(item.target["label_ids"]))
    # road 0, sidewalk 1, car 13, bicycle 18; unlabeled (0) and static (4) are ignored.
    assert mapped[:2, :4].tolist() == [[0, 1, 13, 255], [255, 0, 18, 0]]


def test_missing_mask_names_the_file(cityscapes):
    mask = next((cityscapes / "gtFine" / "val").glob("*/*_labelIds.png"))
    mask.unlink()
    with pytest.raises(DatasetError, match=f"{mask.name} is missing"):
        CityscapesReader(cityscapes).read_split("test")


def test_mask_of_another_size_names_both_files(cityscapes):
    mask = next((cityscapes / "gtFine" / "train").glob("*/*_labelIds.png"))
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(mask)
    image_name = mask.name.replace("_gtFine_labelIds", "_leftImg8bit")
    with pytest.raises(DatasetError, match=rf"{mask.name} is 10x10 but its image .*{image_name}"):
        CityscapesReader(cityscapes).read_split("train")


def test_mask_truncated_after_its_header_names_the_file(cityscapes):
    mask = next((cityscapes / "gtFine" / "train").glob("*/*_labelIds.png"))
    data = mask.read_bytes()
    mask.write_bytes(data[: len(data) // 2])
    CityscapesReader(cityscapes).read_split("train")  # the header still reads
    with pytest.raises(DatasetError, match=rf"{mask.name}: the label mask cannot be decoded"):
        read_label_mask(mask)


def test_colour_mask_is_refused_with_an_explanation(cityscapes):
    mask = next((cityscapes / "gtFine" / "train").glob("*/*_labelIds.png"))
    Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(mask)
    with pytest.raises(DatasetError, match=r"not mode RGB.*_labelIds.png, not \*_color.png"):
        CityscapesReader(cityscapes).read_split("train")


def test_missing_split_folder_names_the_layout(cityscapes):
    import shutil

    shutil.rmtree(cityscapes / "gtFine" / "val")
    with pytest.raises(DatasetError, match=r"gtFine/val is missing: the Cityscapes layout"):
        CityscapesReader(cityscapes).prepare()


def test_label_table_must_fit_the_classes():
    with pytest.raises(OptionError, match="2 classes but 3 label ids") as error:
        CityscapesReader("/nowhere", classes=["a", "b"], label_ids=[1, 2, 3])
    assert error.value.option == "task.reader.label_ids"
    with pytest.raises(OptionError, match="repeat"):
        CityscapesReader("/nowhere", classes=["a", "b"], label_ids=[1, 1])
    with pytest.raises(OptionError, match="0..254"):
        CityscapesReader("/nowhere", classes=["a"], label_ids=[255])
