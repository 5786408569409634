"""Which classes a reader uses: `task.reader.classes` and `task.reader.unknown_classes`.

`task.reader.classes` takes three forms:

* a list of names in label order, `task.reader.classes=[car,person]`;
* a file of one name a line (blank lines ignored), `task.reader.classes=/data/classes.txt`
  (or an object store's URL, `s3://bucket/data/classes.txt`);
* `discover`: the sorted names found in the training annotations (readers whose annotations
  name their classes, such as VOC's XML files).

A file is read when the classes are first needed, not when the config is built, so a reader
can default to a file inside its dataset folder. `task.reader.unknown_classes` decides what
happens to an object of a class that is not in the list: `error` (the default) stops with the
annotation's name, `skip` leaves the object out and counts it (sweep/data/class_coverage.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from upath import UPath

from sweep.data.base import DatasetError
from sweep.data.roots import dataset_root
from sweep.errors import OptionError, require_choice
from sweep.store.objects import is_url

CLASSES_OPTION = "task.reader.classes"
UNKNOWN_OPTION = "task.reader.unknown_classes"
DISCOVER = "discover"
UNKNOWN_CLASS_POLICIES = ("error", "skip")
CLASS_FORMS = (
    f"{CLASSES_OPTION}=[name,...] (label order), {CLASSES_OPTION}=<file> (one class a line)"
)


@dataclass(frozen=True)
class ClassList:
    """What `task.reader.classes` asked for: names, a file of names, or discovery.

    Attributes:
        names: The names in label order, when given as a list (or a reader's default).
        file: The file of names, one a line, when given as a path.
        discover: Whether the reader finds the names in its training annotations.
    """

    names: tuple[str, ...] | None = None
    file: Path | UPath | None = None
    discover: bool = False

    def load(self) -> list[str]:
        """The names of a list or a file (discovery is the reader's job).

        Raises:
            DatasetError: If the file is missing, unreadable, empty or repeats a name; the
                message names the file and the option.
        """
        if self.discover:
            raise ValueError("discovered classes come from the reader's annotations")
        if self.names is not None:
            return list(self.names)
        return read_class_file(self.file)


def class_list(
    value: str | Sequence[str] | None,
    default: Sequence[str] | None = None,
    discover_refusal: str | None = None,
) -> ClassList:
    """Parses `task.reader.classes`.

    Args:
        value: A list of names, a file path, "discover", or None for the reader's default.
        default: The reader's own classes (None: the option is required).
        discover_refusal: Why this reader cannot discover its classes (None: it can).

    Raises:
        OptionError: Naming task.reader.classes, for an empty list, a repeated or blank name,
            a missing default, or discovery where the reader cannot discover.
    """
    if value is None:
        if default is None:
            raise OptionError(f"is required: {CLASS_FORMS}", option=CLASSES_OPTION)
        return ClassList(names=tuple(default))
    if isinstance(value, str):
        if value.strip() != DISCOVER:
            if is_url(value):
                return ClassList(file=dataset_root(value))
            return ClassList(file=Path(value).expanduser().absolute())
        if discover_refusal is not None:
            raise OptionError(
                f"'{DISCOVER}' does not work here: {discover_refusal}; give {CLASS_FORMS}",
                option=CLASSES_OPTION,
            )
        return ClassList(discover=True)
    if not isinstance(value, Sequence):
        raise OptionError(
            f"must be a list of names, a file or '{DISCOVER}', got {value!r}", CLASSES_OPTION
        )
    try:
        names = checked_class_names([str(name) for name in value], "the list")
    except ValueError as error:
        raise OptionError(str(error), option=CLASSES_OPTION) from None
    return ClassList(names=tuple(names))


def read_class_file(path: Path | UPath) -> list[str]:
    """The class names of a file (or object), one a line, in label order (blank lines
    ignored)."""
    if not path.is_file():
        raise DatasetError(
            f"{CLASSES_OPTION}: the class file {path} does not exist (a relative path is taken "
            f"from the folder the command runs in); write one class a line, or give "
            f"{CLASSES_OPTION}=[name,...] or {CLASSES_OPTION}={DISCOVER}",
            option=CLASSES_OPTION,
        )
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(
            f"{CLASSES_OPTION}: the class file {path} cannot be read as UTF-8 text ({error})",
            option=CLASSES_OPTION,
        ) from None
    try:
        return checked_class_names([line.strip() for line in lines if line.strip()], str(path))
    except ValueError as error:
        raise DatasetError(f"{CLASSES_OPTION}: {error}", option=CLASSES_OPTION) from None


def checked_class_names(names: list[str], source: str) -> list[str]:
    """The names, refused when there are none, one is blank or one repeats.

    Raises:
        ValueError: Saying what is wrong with the names of `source` (a file, "the list").
    """
    if not names:
        raise ValueError(f"{source} names no class")
    if any(not name.strip() for name in names):
        raise ValueError(f"{source} holds a blank class name: {names}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{source} names {repeated} more than once: a class is one label")
    return names


def unknown_class_policy(value: str) -> str:
    """`task.reader.unknown_classes`, checked: "error" or "skip"."""
    return require_choice(value, UNKNOWN_CLASS_POLICIES, UNKNOWN_OPTION)


def unknown_class_message(name: str, classes: Sequence[str]) -> str:
    """Why an object's class is refused, and the three ways to accept or leave it out."""
    return (
        f"class '{name}' is not one of the {len(classes)} classes {list(classes)}: set "
        f"{CLASSES_OPTION}=[name,...] (label order) or {CLASSES_OPTION}=<file> (one class a "
        f"line), or {CLASSES_OPTION}={DISCOVER} (the classes of the training annotations), or "
        f"{UNKNOWN_OPTION}=skip to leave such objects out"
    )
