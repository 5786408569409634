"""The checks of a finished sweep: against the reference run, and of its bad-input reports."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reliability.corpus import CONVERTED, QUARANTINED
from reliability.results_folder import (
    REPORT_FILES,
    finished_outputs,
    half_published,
    mlflow_runs,
    report_files,
    temporaries,
)
from reliability.stage_targets import task_title
from reliability.sweep_command import TRAIN_SETTINGS


@dataclass
class Reference:
    """What every run must reproduce: the report files of the uninterrupted sweep."""

    files: dict[str, bytes | None]
    seconds: float
    # The Ray task titles seen running, with the seconds into the run each was first seen.
    titles: dict[str, float] = field(default_factory=dict)


@dataclass
class Outcome:
    """The verdict of one trial."""

    problems: list[str] = field(default_factory=list)
    lost: int = 0
    crashed: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems and not self.lost and not self.crashed


def check_finished(
    results_dir: Path,
    reference: Reference,
    before: dict[str, tuple[int, int]],
    returncode: int,
    leaked: list[int],
    stderr: Callable[[], str],
    tracking_db: Path | None = None,
) -> Outcome:
    """Checks a finished sweep against the reference and the outputs finished at the kill
    (its MLflow runs in tracking_db, by default the results_dir's mlflow.db)."""
    outcome = Outcome()
    if returncode != 0:
        outcome.crashed = True
        outcome.problems.append(f"exit code {returncode}: {stderr()}")
        return outcome
    if leaked:
        outcome.problems.append(f"processes outlived the sweep: {leaked}")
    files = report_files(results_dir)
    for name in REPORT_FILES:
        if files[name] != reference.files[name]:
            outcome.problems.append(f"{name} differs from the reference's")
    store = results_dir / "store"
    after = finished_outputs(store)
    for output, stamps in sorted(before.items()):
        if output not in after:
            outcome.lost += 1
            outcome.problems.append(f"lost: {output} is gone")
        elif after[output] != stamps:
            outcome.lost += 1
            outcome.problems.append(f"lost: {output} was rewritten")
    left = temporaries(store)
    if left:
        outcome.problems.append(f"temporary folders left in the store: {left[:5]}")
    broken = half_published(store)
    if broken:
        outcome.problems.append(f"published outputs unlike their DONE manifest: {broken[:5]}")
    parents, children = mlflow_runs(tracking_db or results_dir / "mlflow.db")
    if (parents, children) != (1, len(TRAIN_SETTINGS)):
        outcome.problems.append(
            f"MLflow holds {parents} parent and {children} child runs, "
            f"not 1 and {len(TRAIN_SETTINGS)}"
        )
    return outcome


def title_problems(kinds: tuple[str, ...], titles: dict[str, float]) -> list[str]:
    """Planned kinds whose longest work never ran under its Ray title in the reference run (a
    worker the harness could not find and kill)."""
    return [
        f"{kind}: no worker titled {task_title(kind)} ran in the reference sweep "
        f"(titles seen: {', '.join(sorted(titles)) or 'none'})"
        for kind in kinds
        if task_title(kind) not in titles
    ]


def split_kinds(text: str) -> set[str]:
    return {kind for kind in re.split(r"[;,|\s]+", text) if kind}


def read_csv_rows(data: bytes | None) -> list[dict[str, str]] | None:
    if data is None:
        return None
    return list(csv.DictReader(io.StringIO(data.decode())))


def check_policy(reference: Reference, expected: dict[str, str]) -> list[str]:
    """Whether the reference's quarantine.csv and conversions.csv list exactly the bad files."""
    problems = []
    want_out = {path for path, outcome in expected.items() if outcome.startswith(QUARANTINED)}
    want_kinds = {
        path: outcome.split(":", 1)[1]
        for path, outcome in expected.items()
        if outcome.startswith(CONVERTED)
    }
    quarantine = read_csv_rows(reference.files["quarantine.csv"])
    conversions = read_csv_rows(reference.files["conversions.csv"])
    if quarantine is None or conversions is None:
        return ["the report has no quarantine.csv or conversions.csv"]
    listed_out = {row["path"] for row in quarantine}
    for path in sorted(want_out - listed_out):
        problems.append(f"not quarantined: {path} ({expected[path]})")
    for path in sorted(listed_out - want_out):
        problems.append(f"quarantined but readable: {path}")
    listed_kinds = {row["path"]: split_kinds(row["kinds"]) for row in conversions}
    for path, kind in sorted(want_kinds.items()):
        if path not in listed_kinds:
            problems.append(f"not in conversions.csv: {path} ({kind})")
        elif kind not in listed_kinds[path]:
            problems.append(
                f"conversions.csv gives {path} kinds {sorted(listed_kinds[path])}, not {kind}"
            )
    ordinary = sorted(set(listed_kinds) - set(want_kinds))
    if ordinary:
        problems.append(f"ordinary images listed as converted: {ordinary[:5]}")
    for row in quarantine + conversions:
        if row["split"] != row["path"].split("/", 1)[0]:
            problems.append(f"{row['path']} is listed under split {row['split']}")
    return problems
