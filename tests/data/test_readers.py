"""Dataset readers on tiny folders in the real layouts."""

from __future__ import annotations

import pytest

from sweep.data.base import DatasetError
from sweep.data.demo import DemoReader
from sweep.data.food101 import Food101Reader
from sweep.data.imagefolder import ImageFolderReader
from sweep.data.pixels import read_pixels


def test_food101_reads_split_files_and_classes(food101):
    reader = Food101Reader(food101)
    reader.prepare()
    assert reader.class_names() == ["cat", "dog", "fish"]
    train, test = reader.read_split("train"), reader.read_split("test")
    assert len(train) == 9 and len(test) == 6
    assert train[0].relpath == "images/cat/1000.jpg" and train[0].target == 0
    assert {item.target for item in test} == {0, 1, 2}
    assert not {i.relpath for i in train} & {i.relpath for i in test}


def test_food101_without_classes_txt_uses_the_image_folders(food101):
    (food101 / "meta" / "classes.txt").unlink()
    assert Food101Reader(food101).class_names() == ["cat", "dog", "fish"]


def test_food101_missing_split_file_names_it(food101):
    (food101 / "meta" / "test.txt").unlink()
    with pytest.raises(DatasetError, match=r"meta/test.txt is missing"):
        Food101Reader(food101).prepare()


def test_food101_listed_image_that_does_not_exist_names_file_and_line(food101):
    with (food101 / "meta" / "train.txt").open("a") as stream:
        stream.write("dog/999\n")
    with pytest.raises(DatasetError, match=r"train.txt:10: .*dog/999.jpg does not exist"):
        Food101Reader(food101).read_split("train")


def test_split_entries_cannot_escape_the_dataset_root(food101):
    (food101.parent / "secret.jpg").write_bytes(b"x")
    with (food101 / "meta" / "train.txt").open("a") as stream:
        stream.write("cat/../../../secret\n")
    with pytest.raises(DatasetError, match="outside the dataset root"):
        Food101Reader(food101).read_split("train")


def test_imagefolder_reads_train_and_test(imagefolder):
    reader = ImageFolderReader(imagefolder)
    reader.prepare()
    assert reader.class_names() == ["cat", "dog", "fish"]
    assert len(reader.read_split("train")) == 18 and len(reader.read_split("test")) == 9
    (imagefolder / "train" / "cat" / "notes.txt").write_text("not an image")
    assert len(reader.read_split("train")) == 18


def test_imagefolder_test_class_unknown_to_train_is_refused(imagefolder):
    (imagefolder / "test" / "bird").mkdir()
    with pytest.raises(DatasetError, match=r"classes that train/ lacks: \['bird'\]"):
        ImageFolderReader(imagefolder).prepare()


def test_imagefolder_without_test_split_names_the_folder(imagefolder, tmp_path):
    import shutil

    shutil.rmtree(imagefolder / "test")
    with pytest.raises(DatasetError, match=r"test is missing"):
        ImageFolderReader(imagefolder).prepare()


def test_fingerprint_follows_file_changes(imagefolder):
    reader = ImageFolderReader(imagefolder)
    items = reader.read_split("train")
    before = reader.fingerprint(items)
    assert reader.fingerprint(items) == before
    (imagefolder / items[0].relpath).write_bytes(b"changed")
    assert reader.fingerprint(items) != before


def test_demo_is_generated_once_into_a_parameter_folder(tmp_path):
    reader = DemoReader(tmp_path, train_per_class=2, test_per_class=1, image_size=96)
    reader.prepare()
    files = sorted(reader.root.rglob("*.jpg"))
    assert len(files) == 3 * len(reader.class_names())
    stamp = files[0].stat().st_mtime_ns
    DemoReader(tmp_path, train_per_class=2, test_per_class=1, image_size=96).prepare()
    assert files[0].stat().st_mtime_ns == stamp
    assert DemoReader(tmp_path, train_per_class=3).root != reader.root
    assert read_pixels(files[0]).shape == (96, 96, 3)
