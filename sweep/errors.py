"""The errors a user acts on, importable from every layer (no torch, Ray or Hydra).

Two kinds, and the entry points map them to exit codes (sweep/cli.py):

* `OptionError`, the one error for a bad option: a config value, a component's argument or a
  command-line override that cannot work. Exit 2, before any work.
* `SweepError`, a failure whose message says it all (a stage that failed, a store that cannot
  be written, weights that cannot be read, a lock another driver holds): no traceback.
"""

from __future__ import annotations


class OptionError(ValueError):
    """An option that cannot work: what is wrong, what is allowed, and where it was set.

    Args:
        message: What is wrong and what is allowed.
        option: The config option that held the value (e.g. "task.kind.crop_size"), when
            known; a component that does not know its option leaves it to the config layer,
            which fills it in (`under`).
    """

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.option = option

    def __str__(self) -> str:
        return f"{self.option}: {self.message}" if self.option else self.message

    def under(self, option: str) -> OptionError:
        """This error, naming `option` if it names none yet."""
        if self.option is None:
            self.option = option
        return self


class SweepError(RuntimeError):
    """A failure whose message names what failed and what to do; shown without a traceback."""


def require_choice(value, choices, option: str):
    """`value` when it is one of `choices`, else an OptionError naming `option` and them."""
    if value not in choices:
        raise OptionError(f"'{value}' is not one of {list(choices)}", option=option)
    return value
