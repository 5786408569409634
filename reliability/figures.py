"""The harness's one-line figures: what was tried, what survived, what was lost."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from reliability.trials import Trial

# The fault families of the summary line, in its order.
FAULTS = (
    ("driver", "driver kills"),
    ("worker", "worker kills"),
    ("node", "node losses"),
    ("server", "server outages"),
    ("disk", "disk-full"),
    ("lock", "lock races"),
)


@dataclass
class Figures:
    """Every trial of a run by fault family, and the families not run (with why)."""

    bad_inputs: int = 0
    crashes: int = 0
    failed_checks: list[str] = field(default_factory=list)
    trials: dict[str, list[Trial]] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)
    # The kinds the sweep plans, and the Ray task titles its reference ran (seconds in).
    kinds: tuple[str, ...] = ()
    titles: dict[str, float] = field(default_factory=dict)

    def add(self, family: str, trials: list[Trial]) -> None:
        self.trials.setdefault(family, []).extend(trials)

    def skip(self, family: str, why: str) -> None:
        self.not_run[family] = why

    def covered(self, family: str) -> list[str]:
        """The stage kinds that a survived trial of the family killed in."""
        return [t.target for t in self.trials.get(family, []) if t.outcome.ok and t.target]

    def write(self, path: Path) -> None:
        """The figures as JSON (what the test suite's quick run checks)."""
        record = {
            "line": self.line(),
            "ok": self.ok,
            "kinds": list(self.kinds),
            "titles": self.titles,
            "covered": {family: self.covered(family) for family, _ in FAULTS},
            "failed_checks": self.failed_checks,
            "not_run": self.not_run,
        }
        path.write_text(json.dumps(record, indent=1))

    @property
    def every_trial(self) -> list[Trial]:
        return [trial for trials in self.trials.values() for trial in trials]

    @property
    def lost(self) -> int:
        return sum(trial.outcome.lost for trial in self.every_trial)

    @property
    def ok(self) -> bool:
        crashed = self.crashes + sum(t.outcome.crashed for t in self.every_trial)
        return (
            not crashed
            and not self.lost
            and not self.failed_checks
            and all(t.outcome.ok for t in self.every_trial)
        )

    def line(self) -> str:
        crashes = self.crashes + sum(t.outcome.crashed for t in self.every_trial)
        fields = [f"bad inputs tried {self.bad_inputs}", f"crashes {crashes}"]
        for family, label in FAULTS:
            trials = self.trials.get(family, [])
            if trials:
                fields.append(f"{label} survived {sum(t.outcome.ok for t in trials)}/{len(trials)}")
            elif family in self.not_run:
                fields.append(f"{label} not run ({self.not_run[family]})")
        fields.append(f"results lost {self.lost}")
        if self.failed_checks:
            fields.append(f"failed checks {len(self.failed_checks)}")
        return "reliability: " + ", ".join(fields)
