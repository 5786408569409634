"""The contract of an experiment, and the session a driver runs it with.

An experiment is what `python -m sweep experiment=<name>` runs: its module under
sweep/experiments/<name>/ and conf/experiment/<name>.yaml, whose `_target_` names its class
and passes its options as keyword arguments (Hydra builds it, as it builds codecs and models).
The entry point knows no experiment by name; experiments never import each other, and share
what they need through this package. `dry_run=true` wraps any of them in the bill
(sweep/experiments/bill/), which asks it for `planned`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

from sweep.spec import Sweep
from sweep.stages.graph import SweepPlan
from sweep.stages.validate import Screening


@dataclass
class Session:
    """What a driver runs with.

    Attributes:
        sweep: The validated sweep.
        rebuild: A sweep from the config.yaml another sweep stored (the config layer's
            build): deferred MLflow logging reruns the sweeps it deferred with it. None: no
            catching up in this session.
    """

    sweep: Sweep
    rebuild: Callable[[str], Sweep] | None = None


@dataclass
class Planned:
    """What an experiment would run now: its plan, what the bill calls it, and notes."""

    plan: SweepPlan
    name: str
    notes: list[str] = field(default_factory=list)


class Experiment(ABC):
    """An experiment: built from conf/experiment/<name>.yaml, run by the entry point."""

    def bind(self, sweep: Sweep) -> Experiment:
        """This experiment checked against the sweep (an OptionError naming the option for
        what cannot work, before any work), its options in the sweep's canonical form. The
        default has nothing to check."""
        del sweep
        return self

    @abstractmethod
    def run(self, session: Session) -> int:
        """Runs the experiment to its end, prints what its user reads, and returns the exit
        code (0, or another code the experiment documents)."""

    @abstractmethod
    def planned(self, session: Session, screening: Screening) -> Planned:
        """The stages it would run over the screened images, for the bill: nothing may run
        or be written."""
