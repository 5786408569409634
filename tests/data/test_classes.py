"""task.reader.classes (a list, a file, discover) and task.reader.unknown_classes."""

from __future__ import annotations

import pytest

from sweep.data.base import DatasetError
from sweep.data.classes import (
    ClassList,
    class_list,
    read_class_file,
    unknown_class_message,
    unknown_class_policy,
)
from sweep.errors import OptionError


def test_none_is_the_readers_default_and_required_without_one():
    assert class_list(None, default=("a", "b")).load() == ["a", "b"]
    with pytest.raises(OptionError, match="is required") as raised:
        class_list(None)
    assert raised.value.option == "task.reader.classes"


def test_a_list_keeps_its_order():
    assert class_list(["zebra", "ant"]).load() == ["zebra", "ant"]


@pytest.mark.parametrize(
    ("names", "words"),
    [([], "names no class"), (["a", "a"], r"\['a'\] more than once"), (["a", " "], "blank")],
)
def test_a_bad_list_names_the_option(names, words):
    with pytest.raises(OptionError, match=words) as raised:
        class_list(names)
    assert raised.value.option == "task.reader.classes"


def test_a_string_is_a_file_read_when_needed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    chosen = class_list("classes.txt")  # relative: from the working folder, made absolute
    assert chosen == ClassList(file=tmp_path / "classes.txt")
    (tmp_path / "classes.txt").write_text("cat\r\n\r\ndog\n")
    assert chosen.load() == ["cat", "dog"]
    assert read_class_file(tmp_path / "classes.txt") == ["cat", "dog"]


def test_an_unreadable_class_file_names_it(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DatasetError, match=r"classes\.txt cannot be read as UTF-8"):
        read_class_file(path)


def test_discover_where_the_reader_allows_it():
    assert class_list("discover").discover
    with pytest.raises(OptionError, match="'discover' does not work here: masks") as raised:
        class_list("discover", discover_refusal="masks hold indices")
    assert raised.value.option == "task.reader.classes"


def test_unknown_classes_policy_and_message():
    assert unknown_class_policy("skip") == "skip"
    with pytest.raises(OptionError) as raised:
        unknown_class_policy("ignore")
    assert raised.value.option == "task.reader.unknown_classes"
    message = unknown_class_message("Tree", ["cat", "dog"])
    assert message.startswith("class 'Tree' is not one of the 2 classes ['cat', 'dog']: set ")
    assert "task.reader.classes=" in message and "unknown_classes=skip" in message
