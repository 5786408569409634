"""Errors shared by components, importable without torch."""

from __future__ import annotations


class OptionError(ValueError):
    """A component argument that cannot work; the config check reports it under `option`.

    Args:
        message: What is wrong and what is allowed.
        option: The config option that held the value (e.g. "task.kind.crop_size"), when known.
    """

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


def require_choice(value, choices, option: str):
    """`value` when it is one of `choices`, else an OptionError naming `option` and them."""
    if value not in choices:
        raise OptionError(f"'{value}' is not one of {list(choices)}", option=option)
    return value
