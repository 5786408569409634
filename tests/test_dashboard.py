"""The MLflow dashboard of a logged sweep, rendered by headless Chromium as a reviewer sees it.

MLflow's interface is a JavaScript application: its pages are checked on the DOM that Chromium
renders (`--dump-dom`), and screenshotted. The screenshots go to $SWEEP_DASHBOARD_SHOTS when
set (for a note or a review), else to the test's temporary folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from sweep.config.build import build_sweep
from sweep.tracking.names import runs_url
from tests.conftest import FAST_SWEEP, compose_config, run_sweep
from tests.test_mlflow_server import free_port, serving

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WINDOW = (1600, 1000)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="needs headless Chromium (Debian package chromium: `apt-get install chromium`)",
    ),
]


@pytest.fixture
def logged_sweep(imagefolder, tmp_path: Path) -> Path:
    """A small sweep over original, 4 and 15 (as strings 15 sorts before 4), logged to a
    local MLflow database; returns its results folder."""
    results = tmp_path / "results"
    cfg = compose_config(
        "task=imagefolder",
        f"task.root={imagefolder}",
        f"results_dir={results}",
        "cluster=inline",
        "cluster.torch_threads=1",
        *FAST_SWEEP,
        "grid.train=[original,4,15]",
        "grid.test=[original,4,15]",
        "distortion.measures=[psnr]",
        "sensitivity=off",
    )
    run_sweep(build_sweep(cfg))
    return results


@pytest.fixture
def dashboard(logged_sweep: Path):
    """`mlflow ui` over the sweep's database (as `make ui` serves it); yields its address."""
    arguments = ["ui", "--backend-store-uri", f"sqlite:///{logged_sweep}/mlflow.db"]
    with serving(arguments, free_port()) as url:
        yield url


class Browser:
    """Headless Chromium that opens each page as a first visit: a fresh profile every time
    (MLflow keeps a page's filter and sort in the browser's storage, which would carry one
    page's state into the next); waits for the page's scripts to settle."""

    def __init__(self, profiles: Path, shots: Path) -> None:
        self.profiles, self.shots, self.visits = profiles, shots, 0
        shots.mkdir(parents=True, exist_ok=True)

    def _run(self, url: str, *flags: str) -> str:
        self.visits += 1
        command = [
            CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
            f"--user-data-dir={self.profiles / str(self.visits)}",
            "--window-size={},{}".format(*WINDOW),
            "--virtual-time-budget=15000", *flags, url,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    def text(self, url: str) -> str:
        """The rendered page's visible text, whitespace collapsed."""
        html = self._run(url, "--dump-dom")
        html = re.sub(r"<script.*?</script>|<style.*?</style>", " ", html, flags=re.S)
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))

    def screenshot(self, url: str, name: str) -> np.ndarray:
        path = self.shots / f"{name}.png"
        self._run(url, f"--screenshot={path}")
        return np.asarray(Image.open(path).convert("L"), dtype=np.float32)


def in_order(text: str, names: list[str]) -> bool:
    """Every name is on the page, each after the one before it."""
    positions = [text.find(name) for name in names]
    return -1 not in positions and positions == sorted(positions)


def test_the_dashboard_of_a_sweep_renders_its_runs_in_compression_order(
    dashboard, logged_sweep, tmp_path
):
    client = MlflowClient(f"sqlite:///{logged_sweep}/mlflow.db")
    experiment = client.get_experiment_by_name("sweep-imagefolder")
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if "sweep.key" in r.data.tags)
    child = next(r for r in runs if r.data.tags.get("train_setting") == "15")
    shots = Path(os.environ.get("SWEEP_DASHBOARD_SHOTS", tmp_path / "shots"))
    browser = Browser(tmp_path / "chromium", shots)
    base = f"{dashboard}/#/experiments/{experiment.experiment_id}"

    # The experiment's page opens on its runs (not MLflow 3's GenAI overview).
    runs_page = runs_url(dashboard, experiment.experiment_id)
    text = browser.text(runs_page)
    assert parent.info.run_name in text and "matching runs" in text
    assert "Token usage" not in text

    # The sweep's models page lists the trained models flat, in the order of compression.
    models_page = runs_url(dashboard, experiment.experiment_id, parent.info.run_id)
    text = browser.text(models_page)
    assert in_order(text, ["train_000.0_original", "train_004.0_4", "train_015.0_15"]), text
    assert "Sort: train_position" in text

    # The parent: DCR per setting in compression order, the wall time, the stage counts,
    # the recommendation; parameters hold the science, not the operations.
    text = browser.text(f"{base}/runs/{parent.info.run_id}?workflowType=machine_learning")
    assert in_order(text, ["dcr/test/000.0_original", "dcr/test/004.0_4", "dcr/test/015.0_15"])
    # A recommended setting's metrics (recommend/...) show where the sweep recommends one; on
    # this sweep's 9 test images the intervals support none.
    recommended = [name for name in parent.data.metrics if name.startswith("recommend/")]
    for name in ("sweep/wall_seconds", "stages/evaluate", *recommended):
        assert name in text
    assert "grid.train" in text and f"Parameters ({len(parent.data.params)})" in text
    assert not any(name.startswith(("cluster.", "tracking.")) for name in parent.data.params)

    # A model: each test setting's accuracy with its interval, in compression order.
    model_page = f"{base}/runs/{child.info.run_id}?workflowType=machine_learning"
    text = browser.text(model_page)
    tests = ["accuracy/test_000.0_original", "accuracy/test_004.0_4", "accuracy/test_015.0_15"]
    assert in_order(text, tests), text
    assert "accuracy_ci_low/test_004.0_4" in text and "train_position" in text

    # The results table previews with its header and rows.
    artifact = f"{base}/runs/{parent.info.run_id}/artifacts/results.csv"
    text = browser.text(artifact)
    assert "Previewing the first" in text
    assert in_order(text, ["train_setting", "test_setting"]) and "imagefolder" in text

    # Every page paints: a screenshot of each, neither blank nor uniform.
    pages = {"runs": runs_page, "models": models_page, "results_csv": artifact,
             "parent": f"{base}/runs/{parent.info.run_id}?workflowType=machine_learning",
             "model": model_page}  # fmt: skip
    for name, url in pages.items():
        pixels = browser.screenshot(url, name)
        assert pixels.shape == (WINDOW[1], WINDOW[0]), name
        assert pixels.std() > 10, f"{name} looks blank"
