"""The reliability harness's quick run, so that CI fails when a change breaks the harness: one
driver kill and one worker kill in every kind its sweep plans, and the bad-input check.

The meta-tests show that the checks of that run catch a stale worker title and a new stage kind
that the run did not kill in (`make reliability` is the long run of the same harness).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from reliability.checks import title_problems
from reliability.stage_targets import coverage_problems, planned_kinds, task_titles
from reliability.sweep_command import REPO, sweep_env, sweep_overrides
from sweep.stages.table import STAGE_KINDS
from tests.extending.test_toy_stage_kind import toy_kind  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow

QUICK_EPOCHS = 2


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    """`python -m reliability --quick`: its work folder, its figures.json and its output."""
    workdir = tmp_path_factory.mktemp("reliability")
    command = [sys.executable, "-m", "reliability", "--quick", "--workdir", str(workdir)]
    command += ["--epochs", str(QUICK_EPOCHS), "--timeout", "240"]
    done = subprocess.run(
        command, cwd=REPO, env=sweep_env(), capture_output=True, text=True, timeout=900
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return workdir, json.loads((workdir / "figures.json").read_text()), output


def quick_overrides(workdir: Path) -> list[str]:
    return sweep_overrides(workdir / "corpus", workdir / "plan", QUICK_EPOCHS)


def test_every_planned_kind_survives_a_driver_and_a_worker_kill(quick_run):
    workdir, figures, output = quick_run
    assert figures["ok"] and not figures["failed_checks"], output[-4000:]
    # The demo sweep's kinds: the decode cache (train.decode_cache=false) is not among them.
    assert {"encode", "train", "evaluate"} <= set(figures["kinds"])
    assert "decoded" not in figures["kinds"]
    assert "  decoded: not in this sweep" in output.splitlines()
    assert sorted(figures["covered"]["driver"]) == sorted(figures["kinds"])
    assert sorted(figures["covered"]["worker"]) == sorted(figures["kinds"])
    # Grouped evaluation runs under its group worker's title, and the harness killed it.
    assert task_titles("evaluate") == ("ray::evaluate_group",)
    assert "killed ray::evaluate_group" in output
    line = figures["line"]
    assert "crashes 0" in line and "results lost 0" in line
    kills = len(figures["kinds"])
    assert f"driver kills survived {kills}/{kills}" in line
    assert f"worker kills survived {kills}/{kills}" in line
    # The bad-input check ran: the reports list the bad files, data.on_error=fail stops.
    assert "bad-input reports: ok" in output and "data.on_error=fail: ok" in output
    assert "bad inputs tried 0" not in line


def test_a_stale_worker_title_fails_the_check(quick_run, monkeypatch):
    workdir, figures, _ = quick_run
    kinds = tuple(figures["kinds"])
    assert title_problems(kinds, figures["titles"]) == []

    def renamed(*args):  # a train worker Ray would title otherwise
        raise AssertionError("never run")

    monkeypatch.setitem(STAGE_KINDS, "train", replace(STAGE_KINDS["train"], run=renamed))
    problems = title_problems(kinds, figures["titles"])
    assert len(problems) == 1 and problems[0].startswith("train: no worker titled ray::renamed")


def test_a_new_kind_without_a_kill_fails_the_coverage(quick_run, toy_kind):  # noqa: F811
    workdir, figures, _ = quick_run
    # The harness plans the sweep it runs: the toy kind is planned, so it is a target...
    kinds = planned_kinds(quick_overrides(workdir))
    assert toy_kind.NAME in kinds and set(figures["kinds"]) < set(kinds)
    # ...that the quick run did not kill in, and whose worker it never saw.
    problems = coverage_problems(kinds, figures["covered"]["driver"], figures["covered"]["worker"])
    assert problems == [
        f"{toy_kind.NAME}: planned but no driver kill in it survived",
        f"{toy_kind.NAME}: planned but no worker kill in it survived",
    ]
    assert [p.split(":")[0] for p in title_problems(kinds, figures["titles"])] == [toy_kind.NAME]


def test_no_process_of_the_run_outlives_it(quick_run):
    workdir, _, _ = quick_run
    # Every sweep of the run was started with the corpus' path: none runs any more.
    corpus = str(workdir / "corpus")
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                command = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            assert corpus.encode() not in command, command
