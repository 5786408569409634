"""An experiment is its module plus its yaml under conf/experiment/: a toy experiment from a
temporary module and a temporary config folder runs through `python -m sweep experiment=toy`
and gets its bill from `dry_run=true`, with no edit anywhere else."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOY_EXPERIMENT = '''
"""Encodes the test split only and says how many bytes each setting took."""

from dataclasses import dataclass

from sweep.errors import OptionError
from sweep.session.experiment import Experiment, Planned, Session
from sweep.session.planning import plan_sweep, run_part, screen, workers_of


@dataclass(frozen=True)
class ToyExperiment(Experiment):
    greeting: str = "hello"

    def __post_init__(self):
        if not self.greeting:
            raise OptionError("must not be empty", "experiment.greeting")

    def encodes(self, plan):
        return plan.narrowed_to(e for (split, _), e in plan.encodes.items() if split == "test")

    def planned(self, session: Session, screening) -> Planned:
        return Planned(self.encodes(plan_sweep(session.sweep, screening)), "toy experiment")

    def run(self, session: Session) -> int:
        sweep = session.sweep
        with workers_of(sweep):
            plan = plan_sweep(sweep, screen(sweep))
            run_part(sweep, plan, self.encodes(plan))
        for (split, setting), stage in sorted(plan.encodes.items()):
            if split == "test":
                summary = sweep.store.read_json("encode", stage.key, "summary.json")
                print(f"{self.greeting}: {setting} {summary['encoded_bytes']} bytes")
        return 0
'''


def sweep_command(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    (tmp_path / "toy_experiment.py").write_text(textwrap.dedent(TOY_EXPERIMENT))
    (tmp_path / "conf" / "experiment").mkdir(parents=True, exist_ok=True)
    (tmp_path / "conf" / "experiment" / "toy.yaml").write_text(
        "# A toy experiment (tests/extending/).\n_target_: toy_experiment.ToyExperiment\n"
        "greeting: hello\n"
    )
    env = os.environ | {"PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"}
    return subprocess.run(
        [sys.executable, "-m", "sweep", f"hydra.searchpath=[file://{tmp_path / 'conf'}]"]
        + ["experiment=toy", "task=demo", "task.reader.train_per_class=2"]
        + ["task.reader.test_per_class=2", "grid.test=[original,4]", "grid.train=[original]"]
        + ["tracking=none", "progress=false", "cluster=inline", f"results_dir={tmp_path}/r"]
        + list(overrides),
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_a_toy_experiment_runs_from_its_module_and_its_yaml(tmp_path):
    result = sweep_command(tmp_path, "experiment.greeting=bonjour")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("bonjour:")]
    assert [line.split()[1] for line in lines] == ["4", "original"]
    store = tmp_path / "r" / "store"
    assert (store / "encode").is_dir() and not (store / "train").exists()  # encodes only


def test_the_bill_asks_the_toy_experiment_for_its_plan(tmp_path):
    result = sweep_command(tmp_path, "dry_run=true", "dry_run_calibrate=false")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "bill of the toy experiment" in result.stdout
    kinds = re.findall(r"^(\w+) +\d+ +\d+ +\d+  ", result.stdout, re.MULTILINE)
    assert kinds == ["validate", "encode"]  # its plan: the test encodes, no training


def test_a_toy_experiments_bad_option_exits_2_naming_it(tmp_path):
    result = sweep_command(tmp_path, "experiment.greeting=''")
    assert result.returncode == 2 and "experiment.greeting" in result.stderr
    result = sweep_command(tmp_path, "+experiment.colour=red")
    assert result.returncode == 2 and "experiment.colour: unknown option" in result.stderr
