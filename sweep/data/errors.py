"""The error of a dataset whose files do not have the expected layout."""

from __future__ import annotations

from sweep.errors import OptionError


class DatasetError(OptionError):
    """A dataset folder that does not have the expected layout; the message names the path.

    Args:
        message: What is wrong, naming the file, and what to do.
        option: The config option to change when the fix is an option rather than the files
            (e.g. "task.reader.classes"); None names the dataset itself (task.root).
    """
