"""The sweep every run of the harness starts: its command, environment and grid."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The MLflow experiment of task=imagefolder.
EXPERIMENT = "sweep-imagefolder"
TRAIN_SETTINGS = ("original", "2", "8")
TEST_SETTINGS = ("original", "8")


def sweep_argv(corpus: Path, results_dir: Path, epochs: int, *extra: str) -> list[str]:
    """The sweep command of every run: a 3 x 2 grid of a tiny model on a local 2-CPU Ray."""
    return [sys.executable, "-m", "sweep", *sweep_overrides(corpus, results_dir, epochs, *extra)]


def sweep_overrides(corpus: Path, results_dir: Path, epochs: int, *extra: str) -> list[str]:
    """The Hydra overrides of that command (what the harness plans with)."""
    return [
        "task=imagefolder",
        f"task.root={corpus}",
        f"results_dir={results_dir}",
        "cluster=local",
        "cluster.num_cpus=2",
        "model=swav_tiny",
        "model.image_size=64",
        f"train.epochs={epochs}",
        "train.batch_size=8",
        f"grid.train=[{','.join(TRAIN_SETTINGS)}]",
        f"grid.test=[{','.join(TEST_SETTINGS)}]",
        "progress=false",
        *extra,
    ]


def sweep_env() -> dict[str, str]:
    """This interpreter's environment with the repository importable (no install needed)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env
