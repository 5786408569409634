"""What every reader shares: resolving listed names under the dataset root."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweep.data.base import DatasetError, DatasetReader


class ListedReader(DatasetReader):
    """A reader with nothing listed: only `resolve` is under test."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def class_names(self) -> list[str]:
        return []

    def read_split(self, split: str):
        return []


@pytest.mark.parametrize(
    "name", ["../secret.jpg", "images/../../secret.jpg", "/etc/passwd", "..", "a/../../b"]
)
def test_names_that_climb_out_of_the_root_are_refused(tmp_path, name):
    with pytest.raises(DatasetError, match=r"points outside the dataset root .*'\.\./'"):
        ListedReader(tmp_path / "root").resolve(name)


def test_names_inside_the_root_resolve_lexically(tmp_path):
    reader = ListedReader(tmp_path / "root")
    assert reader.resolve("images/./a/../b.jpg") == tmp_path / "root" / "images" / "b.jpg"
    assert reader.resolve("..b.jpg") == tmp_path / "root" / "..b.jpg"  # a name, not a climb


def test_a_symlinked_folder_leading_elsewhere_is_followed(tmp_path):
    (tmp_path / "other_disk" / "images").mkdir(parents=True)
    (tmp_path / "other_disk" / "images" / "a.jpg").write_bytes(b"jpeg")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "images").symlink_to(tmp_path / "other_disk" / "images")
    path = ListedReader(tmp_path / "root").resolve("images/a.jpg")
    assert path == tmp_path / "root" / "images" / "a.jpg"
    assert path.read_bytes() == b"jpeg"


def test_dataset_errors_may_name_an_option():
    assert DatasetError("no such file").option is None
    assert DatasetError("bad class file", option="task.reader.classes").option == (
        "task.reader.classes"
    )
